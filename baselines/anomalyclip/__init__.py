"""AnomalyCLIP (Zhou et al., ICLR 2024, arXiv 2310.18961) and its ablations, registered as ``anomalyclip`` and
``anomalyclip.<variant>`` (``docs/anomalyclip.md``)."""

from caadbench.baselines.anomalyclip.dpam import dpam_features, plain_features
from caadbench.baselines.anomalyclip.model import AnomalyClip, AnomalyClipConfig
from caadbench.baselines.anomalyclip.prompts import LearnablePrompts, prompt_texts
from caadbench.baselines.trained import PAPER_BACKBONE, PAPER_IMAGE_SIZE, PAPER_PRETRAINED
from caadbench.models.api import Learning, Variant, register_model

TRAINED = Learning.TRAINED

VARIANTS: dict[str, Variant] = {
    "default": Variant(TRAINED, {}, "AnomalyCLIP as released: object-agnostic learnable prompts, DPAM, focal + dice on "
                                    "the top block's map + image CE (Zhou et al. 2024)"),
    "quarters": Variant(TRAINED, {"feature_layers": "quarters"},
                        "maps of the 4 quarter blocks (the paper's and the pre-2025 scripts' --features_list 6 12 18 "
                        "24)"),
    "no_dpam": Variant(TRAINED, {"dpam": False}, "ablation: patch features of the original attention, no DPAM"),
    "object_aware": Variant(TRAINED, {"object_agnostic": False},
                            "ablation: object-aware prompts ([V] {subject} / [W] damaged {subject})"),
    "no_text_tuning": Variant(TRAINED, {"text_depth": 1}, "ablation: no learnable tokens inside the text encoder"),
    "last_layer": Variant(TRAINED, {"feature_layers": [-1]},
                          "the last block's map, DPAM from the first quarter block (the released default's blocks)"),
    "no_global": Variant(TRAINED, {"w_global": 0.0}, "ablation: local (pixel) losses only"),
    "no_local": Variant(TRAINED, {"w_local": 0.0}, "ablation: global (image) loss only"),
}

register_model("anomalyclip", VARIANTS)(AnomalyClip)

__all__ = ["PAPER_BACKBONE", "PAPER_IMAGE_SIZE", "PAPER_PRETRAINED", "AnomalyClip", "AnomalyClipConfig",
           "LearnablePrompts", "VARIANTS", "dpam_features", "plain_features", "prompt_texts"]
