"""Probes on frozen features, reference rows that bound what a method can get from the backbone
(``docs/probes.md``), registered as ``probe`` (the linear probe on the global embedding), ``probe.linear_block``,
``probe.knn`` and ``probe.knn_block``."""

from caadbench.baselines.probe.model import KNN, LINEAR, ProbeConfig, ProbeModel
from caadbench.models.api import Learning, Variant, register_model

TRAINED = Learning.TRAINED

VARIANTS: dict[str, Variant] = {
    "default": Variant(TRAINED, {}, "linear probe: per-subject logistic regression on the frozen global image "
                                    "embedding (no maps)"),
    "linear_block": Variant(TRAINED, {"layer": "middle"},
                            "linear probe on the mean patch token of a middle image block; per-patch maps"),
    "knn": Variant(TRAINED, {"classifier": KNN},
                   "k-NN probe: per-subject distance-weighted share of anomalous neighbours, global embedding "
                   "(no maps)"),
    "knn_block": Variant(TRAINED, {"classifier": KNN, "layer": "middle"},
                         "k-NN probe on the mean patch token of a middle image block (no maps)"),
}

register_model("probe", VARIANTS)(ProbeModel)

__all__ = ["KNN", "LINEAR", "ProbeConfig", "ProbeModel", "VARIANTS"]
