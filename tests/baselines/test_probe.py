"""The probes: scores against scikit-learn on independently computed features (the encoder run by hand), the
shared classifier for one-label and unknown subjects, per-patch maps, selection through a fake validation callback,
the safetensors round trip, no maps -> unavailable pixel metrics, registration, and runs through the runner.
Random-init caad-tiny (8 blocks, 8x8 grid at 128 px)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from caadbench.baselines.probe import ProbeModel
from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.errors import ModelError
from caadbench.eval.evaluator import Evaluator
from caadbench.models import AnomalyOutput, FitData, Learning, create_model, get_model_spec, list_models
from tests.baselines.reference import bilinear_reference, hand_embedding, hand_forward

SIZE = 128
MIDDLE = 3  # ⌈8 / 2⌉ − 1 of caad-tiny's 8 blocks
# cow and car have both labels in train, fish normal images only; ghost is not in train at all
TRAIN = [("cow", 0)] * 6 + [("cow", 1)] * 6 + [("car", 0)] * 5 + [("car", 1)] * 5 + [("fish", 0)] * 4
TEST = ["cow", "car", "fish", "ghost"] * 2


def make_batches(pairs: list[tuple[str, int]], seed: int, batch_size: int, prefix: str) -> list[Batch]:
    """Random images with the given (subject, label) pairs; anomalous ones have a ground-truth square."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(len(pairs), 3, SIZE, SIZE, generator=g)
    labels = torch.tensor([y for _, y in pairs])
    gt = torch.zeros(len(pairs), EVAL_RESOLUTION, EVAL_RESOLUTION, dtype=torch.bool)
    gt[labels == 1, 64:160, 64:160] = True
    batches = []
    for lo in range(0, len(pairs), batch_size):
        sl = slice(lo, lo + batch_size)
        batches.append(Batch(images[sl], None, gt[sl], labels[sl],
                             [f"{prefix}{i:03d}" for i in range(lo, min(lo + batch_size, len(pairs)))],
                             [s for s, _ in pairs[sl]], ["-"] * len(pairs[sl])))
    return batches


@pytest.fixture(scope="module")
def train() -> list[Batch]:
    return make_batches(TRAIN, seed=1, batch_size=10, prefix="t")


@pytest.fixture(scope="module")
def test_batch() -> Batch:
    pairs = [(s, i // 4) for i, s in enumerate(TEST)]  # every subject: one normal, one anomalous
    return make_batches(pairs, seed=2, batch_size=len(pairs), prefix="q")[0]


def fit_data(train: list[Batch], validate=None) -> FitData:
    return FitData(subjects=["car", "cow", "fish"], train=lambda epoch: iter(train), seed=0, validate=validate)


def fitted(name: str, backbone, train, validate=None, **options) -> ProbeModel:
    model = create_model(name, backbone=backbone, progress=False, **options)
    model.fit(fit_data(train, validate))
    return model


# --------------------------------------------------------------------------- the independent reference
def hand_features(bb, images: torch.Tensor, block: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(image features (B, C), patch tokens (B, N, C) or None)`` from the encoder run by hand, float64."""
    with torch.no_grad():
        if block is None:
            return hand_embedding(bb, images).double().numpy(), None
        patches = hand_forward(bb, images)[block][:, 1:].double().numpy()
    return patches.mean(axis=1), patches


def train_arrays(bb, train: list[Batch], block: int | None):
    x = np.concatenate([hand_features(bb, b.images, block)[0] for b in train])
    return x, np.array([y for _, y in TRAIN]), np.array([s for s, _ in TRAIN])


def sklearn_linear(x, y, c):
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(scaler.transform(x), y)
    return lambda q: clf.decision_function(scaler.transform(q))


def reference_scores(kind: str, bb, train, test_batch, block: int | None = None, c: float = 1.0, k: int = 5):
    """Per test image, the scikit-learn score of its subject's classifier (the shared one for fish and ghost)."""
    x, y, subjects = train_arrays(bb, train, block)
    q, _ = hand_features(bb, test_batch.images, block)
    out = np.empty(len(test_batch))
    for i, subject in enumerate(test_batch.subjects):
        rows = subjects == subject if subject in ("cow", "car") else np.ones(len(y), dtype=bool)
        if kind == "linear":
            out[i] = sklearn_linear(x[rows], y[rows], c)(q[i:i + 1])[0]
        else:
            knn = KNeighborsClassifier(n_neighbors=min(k, rows.sum()), weights="distance", metric="cosine",
                                       algorithm="brute").fit(x[rows], y[rows])
            out[i] = knn.predict_proba(q[i:i + 1])[0, 1]
    return out


# --------------------------------------------------------------------------- registry and options
def test_the_registry_lists_the_probes_as_trained_models(tiny_backbone):
    specs = {s.name: s for s in list_models("probe")}
    assert set(specs) == {"probe", "probe.linear_block", "probe.knn", "probe.knn_block"}
    assert all(s.learning == Learning.TRAINED and s.family == "probe" for s in specs.values())
    built = {name: get_model_spec(name).build(backbone=tiny_backbone) for name in specs}
    assert {name: m.gives_maps for name, m in built.items()} == {
        "probe": False, "probe.linear_block": True, "probe.knn": False, "probe.knn_block": False}
    assert {name: m.block for name, m in built.items()} == {
        "probe": None, "probe.linear_block": MIDDLE, "probe.knn": None, "probe.knn_block": MIDDLE}
    assert create_model("probe", backbone=tiny_backbone, layer=-1).block == 7


@pytest.mark.parametrize(("options", "words"), [
    ({"classifier": "svm"}, "classifier must be one of"),
    ({"layer": 8}, "layer must be"),
    ({"layer": "last"}, "layer must be"),
    ({"knn_metric": "manhattan"}, "knn_metric"),
    ({"c_grid": [0.1, 0.0]}, "positive"),
    ({"k_grid": []}, ">= 1"),
])
def test_bad_options_are_refused(tiny_backbone, options, words):
    with pytest.raises(ModelError, match=words):
        create_model("probe", backbone=tiny_backbone, **options)


# --------------------------------------------------------------------------- scores against scikit-learn
@pytest.mark.parametrize(("name", "block"), [("probe", None), ("probe.linear_block", MIDDLE)])
def test_linear_probe_scores_are_sklearns_decision_function(tiny_backbone, train, test_batch, name, block):
    model = fitted(name, tiny_backbone, train)
    got = model.predict(test_batch).scores.double().numpy()
    np.testing.assert_allclose(got, reference_scores("linear", tiny_backbone, train, test_batch, block),
                               rtol=1e-4, atol=1e-4)
    log = model.train_log
    assert log["per_subject"] == ["car", "cow"] and log["shared_for"] == ["fish"] and log["train_images"] == 26
    assert log["selection"]["selected"] == {"c": 1.0} and log["selection"]["val_score"] is None


def test_knn_probe_scores_are_sklearns_distance_weighted_neighbours(tiny_backbone, train, test_batch):
    model = fitted("probe.knn", tiny_backbone, train)
    got = model.predict(test_batch).scores.double().numpy()
    np.testing.assert_allclose(got, reference_scores("knn", tiny_backbone, train, test_batch), atol=1e-5)


def test_knn_ties_go_to_the_earlier_key_and_exact_matches_decide():
    from caadbench.baselines.probe.knn import KnnMemory, knn_scores

    memory = KnnMemory(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64),
                       torch.tensor([0, 0, 1, 1]))
    query = torch.tensor([[0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    # query 0 sits exactly on entries 1 and 2 (labels 0, 1): they alone count, equally
    assert knn_scores(query[:1], memory, 3, "cosine", "distance").item() == pytest.approx(0.5)
    # query 1 is equally far from entries 0, 1 and 2 (labels 0, 0, 1): the first k in memory order are kept
    assert knn_scores(query[1:], memory, 2, "cosine", "uniform").item() == 0.0
    assert knn_scores(query[1:], memory, 1, "euclidean", "distance").item() == 0.0
    assert knn_scores(query[1:], memory, 3, "euclidean", "uniform").item() == pytest.approx(1 / 3)


def test_block_probe_map_is_the_per_patch_score_upsampled(tiny_backbone, train, test_batch):
    """Each patch token through the subject's head, on the 8x8 grid, bilinear to 128 px; the image score is the
    mean of the patch scores (the head is linear)."""
    model = fitted("probe.linear_block", tiny_backbone, train)
    out = model.predict(test_batch)
    x, y, subjects = train_arrays(tiny_backbone, train, MIDDLE)
    _, patches = hand_features(tiny_backbone, test_batch.images, MIDDLE)
    for i in (0, 2):  # cow (its own head), fish (the shared head)
        rows = subjects == test_batch.subjects[i] if test_batch.subjects[i] == "cow" else np.ones(len(y), bool)
        grid = sklearn_linear(x[rows], y[rows], 1.0)(patches[i]).reshape(8, 8)
        expected = bilinear_reference(grid, SIZE, SIZE, align_corners=False)
        np.testing.assert_allclose(out.maps[i].double().numpy(), expected, rtol=1e-4, atol=1e-4)
        assert out.scores[i].item() == pytest.approx(grid.mean(), rel=1e-4, abs=1e-4)


# --------------------------------------------------------------------------- selection
@pytest.mark.parametrize(("name", "option", "preset", "chosen"), [
    ("probe", "c", [0.7, 0.6, 0.9, 0.9, math.nan, 0.8], 2),  # a tie goes to the value listed first; NaN never wins
    ("probe.knn", "k", [0.5, 0.6, math.nan, 0.8, 0.1, 0.7], 3),
])
def test_selection_keeps_the_candidate_validation_prefers(tiny_backbone, train, test_batch, name, option, preset,
                                                          chosen):
    seen = []

    def validate(model):
        seen.append(model.predict(test_batch).scores.clone())
        return preset[len(seen) - 1]

    model = fitted(name, tiny_backbone, train, validate=validate)
    grid = getattr(model.config, f"{option}_grid")
    assert len(seen) == len(grid) == len(preset)
    kind = "linear" if option == "c" else "knn"
    for value, scores in zip(grid, seen):  # validation saw each candidate fitted on train
        expected = reference_scores(kind, tiny_backbone, train, test_batch, **{option: value})
        np.testing.assert_allclose(scores.double().numpy(), expected, rtol=1e-4, atol=1e-4)
    final = model.predict(test_batch).scores
    assert torch.equal(final, seen[chosen])
    sel = model.train_log["selection"]
    assert sel["searched"] == {option: list(grid)} and sel["selected"] == {option: grid[chosen]}
    assert sel["val_score"] == preset[chosen] and sel["val_scores"][:2] == preset[:2]


def test_selection_falls_back_to_the_default_when_no_score_is_defined(tiny_backbone, train):
    model = fitted("probe.knn", tiny_backbone, train, validate=lambda m: math.nan, k_grid=[1, 3])
    sel = model.train_log["selection"]
    assert sel["selected"] == {"k": 5} and sel["val_score"] is None and model.probe.k == 5


def test_train_part_of_one_label_is_refused(tiny_backbone, train):
    normal_only = [b for b in make_batches([("cow", 0)] * 4, seed=3, batch_size=4, prefix="n")]
    with pytest.raises(ModelError, match="one label only"):
        fitted("probe", tiny_backbone, normal_only)
    with pytest.raises(ModelError, match="FitData.train"):
        create_model("probe", backbone=tiny_backbone).fit(FitData(subjects=["cow"]))


# --------------------------------------------------------------------------- state and outputs
@pytest.mark.parametrize("name", ["probe.linear_block", "probe.knn"])
def test_saved_probe_predicts_identically_after_load(tiny_backbone, train, test_batch, tmp_path, name):
    model = fitted(name, tiny_backbone, train, validate=lambda m: 0.5)  # the first grid value, not the default
    path = model.save(tmp_path / "probe.safetensors")
    loaded = create_model(name, backbone=tiny_backbone).load(path)
    a, b = model.predict(test_batch), loaded.predict(test_batch)
    assert torch.equal(a.scores, b.scores)
    assert (a.maps is None and b.maps is None) or torch.equal(a.maps, b.maps)
    with pytest.raises(ModelError, match="checkpoint is for model"):
        create_model("probe", backbone=tiny_backbone).load(path)


def test_fitted_state_with_a_stray_tensor_is_refused(tiny_backbone, train):
    model = fitted("probe", tiny_backbone, train)
    state = model.fitted_state()
    assert {"coef/cow", "coef/car", "shared.coef"} <= set(state) and "coef/fish" not in state
    with pytest.raises(ModelError, match="unexpected tensor 'nope/cow'"):
        model.load_fitted_state({**state, "nope/cow": torch.zeros(1)})
    with pytest.raises(ModelError, match="lacks"):
        model.load_fitted_state({k: v for k, v in state.items() if k != "scale/cow"})


def test_a_probe_without_maps_has_unavailable_pixel_metrics(tiny_backbone, train, test_batch):
    model = fitted("probe", tiny_backbone, train)
    out = model.predict(test_batch)
    assert out.maps is None
    evaluator = Evaluator(None)
    evaluator.update(test_batch, out)
    result = evaluator.compute()
    assert all(math.isnan(result.metrics[m]) for m in ("p_auroc", "p_f1max", "aupro"))
    assert not math.isnan(result.metrics["i_auroc"])
    assert ("subject 'cow': P-AUROC, P-F1max, AUPRO unavailable (the model gives no maps); excluded from the macro "
            "mean") in result.notes


def test_predict_refuses_maps_that_disagree_with_gives_maps(tiny_backbone, train, test_batch):
    B = len(test_batch)
    for name, maps, words in (("probe", torch.zeros(B, SIZE, SIZE), "returned maps although the model gives none"),
                              ("probe.linear_block", None, "returned no maps although the model gives them")):
        model = fitted(name, tiny_backbone, train)
        model._predict = lambda batch, maps=maps: AnomalyOutput(torch.zeros(B), maps)
        with pytest.raises(ModelError, match=words):
            model.predict(test_batch)


# --------------------------------------------------------------------------- through the runner
@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    root = tmp_path_factory.mktemp("probe") / "synth"
    # 150 images: the smallest round size whose cc split holds a val part of both labels (60 leaves it empty)
    build_shards(get_source_class("synthetic")(seed=0, size=150, image_size=64), root, workers=1, progress=False)
    return root


@pytest.mark.parametrize(("name", "split", "select", "maps"), [("probe", "cc", "auto", False),
                                                               ("probe.linear_block", "cc", "auto", True),
                                                               ("probe.knn", "cs", "none", False)])
def test_runs_end_to_end_through_the_runner(shards, tmp_path, name, split, select, maps):
    """Fitted on the split's train part and selected on its val part (or the default with --select none), evaluated
    on test; on ``cs`` the held-out subjects are scored by the shared classifier; pixel metrics only where the probe
    gives maps, else n/a with the note."""
    from caadbench.eval.examples import examples_path, read_examples
    from caadbench.eval.results import read_results
    from caadbench.eval.runner import RunConfig, run, summarize

    seeds = (0, 1) if name == "probe" else (0,)
    path = run(RunConfig(model=name, split=split, data=shards, backbone="caad-tiny", out=tmp_path, batch_size=16,
                         progress=False, select=select, seeds=seeds))
    res = read_results(path)
    assert all(s.scores == [s.scores[0]] * len(seeds) for s in res.samples)  # no seed enters a probe's fit
    log = res.training["0"]
    assert res.learning == "trained" and res.train_data.part == "train"
    assert log["train_images"] == res.train_data.samples
    sel = log["selection"]
    option = "k" if name == "probe.knn" else "c"
    if select == "auto":
        grid = list(getattr(get_model_spec(name).make_config(), f"{option}_grid"))
        assert res.selection["mode"] == "early-stop" and sel["searched"] == {option: grid}
        assert sel["val_score"] == max(sel["val_scores"]) and sel["selected"][option] in grid
        assert res.selection["per_seed"]["0"] == {"selected": sel["selected"], "val_score": sel["val_score"]}
    else:
        assert res.selection["why"] == "--select none" and sel["selected"] == {option: 5} and sel["val_score"] is None
    pixel = [res.metrics[m].mean for m in ("p_auroc", "p_f1max", "aupro")]
    assert all(math.isnan(v) for v in pixel) != maps
    assert any("unavailable (the model gives no maps)" in n for n in res.notes) != maps
    headers, rows = summarize(res)
    assert (next(r for r in rows if r[0] == "P-AUROC")[1] == "n/a") != maps
    assert np.isnan(read_examples(examples_path(path)).maps.astype(np.float32)).all() != maps
    if split == "cs":
        held_out = set(res.categories) - set(log["per_subject"]) - set(log["shared_for"])
        assert held_out and all(math.isfinite(s.scores[0]) for s in res.samples)


def test_the_learning_rate_search_is_refused_for_a_probe(shards, tmp_path):
    from caadbench.eval.runner import RunConfig, run

    with pytest.raises(ModelError, match="no search space"):
        run(RunConfig(model="probe", split="cc", data=shards, backbone="caad-tiny", out=tmp_path, progress=False,
                      select="search"))
