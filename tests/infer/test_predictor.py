"""``caadbench.predict`` / ``calibrate`` in Python: inputs, model sources, thresholds, evaluation, precision."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

import caadbench
from caadbench.data.batch import Batch
from caadbench.data.loader import open_dataset
from caadbench.errors import CaadError, ModelError
from caadbench.infer import Threshold, calibrate, load_model, predict
from caadbench.models import FitData, create_model
from tests.infer.photos import photos  # noqa: F401  (a fixture)
from tests.infer.probe import probe_checkpoint

TINY = "caad-tiny"


def _image(seed: int, h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    root = tmp_path_factory.mktemp("refs")
    for s, subject in enumerate(("cow", "car")):
        (root / subject).mkdir()
        for i in range(2):
            Image.fromarray(_image(100 * s + i)).save(root / subject / f"{i}.png")
    return root


def test_predict_on_a_photo_folder_skips_unreadable_files(photos):
    root, sizes, bad = photos
    result = predict(root, model="clip", backbone=TINY, on_error="skip", batch_size=5)
    rels = [str(Path(n).relative_to(root)) for n in result.names]
    assert sorted(rels) == sorted(sizes) and len(result) == len(sizes)
    assert [result.sizes[i] for i in range(len(result))] == [sizes[r] for r in rels]
    assert len(result.skipped) == 2 and all(any(b.split("/")[-1] in line for line in result.skipped) for b in bad)
    assert result.scores.shape == (len(sizes),) and np.isfinite(result.scores).all()
    assert tuple(result.maps.shape) == (len(sizes), 128, 128)
    assert result.full_map(rels.index("car/rotated_exif.jpg")).shape == (200, 60)
    assert result.labels is None and result.evaluation is None
    assert result.model["model"] == "clip" and result.model["random_init"] and result.model["precision"] == "fp32"
    with pytest.raises(CaadError, match="unreadable or corrupt image"):
        predict(root, model="clip", backbone=TINY)  # on_error="raise" by default


def test_predict_preprocesses_as_evaluation_does(tmp_path):
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    data = tmp_path / "synth"
    build_shards(get_source_class("synthetic")(seed=0, size=60, image_size=48), data, workers=1, progress=False,
                 splits=["cc"])
    ds = open_dataset(data)
    model = create_model("clip", backbone=TINY)
    model.fit(FitData(subjects=ds.subjects("cc")))
    batch = next(iter(ds.batches("cc", "test", image_size=model.image_size, batch_size=4)))
    reference = model.predict(batch).scores.numpy()
    from caadbench.data.shards import decode_record, iter_records, read_shard

    entry = next(e for e in ds.manifest.shards if e.split == "cc" and e.part == "test")
    samples = {k: decode_record(k, m, k) for k, m in iter_records(read_shard(data, entry), entry.path)}
    images = [samples[k].image for k in batch.keys]
    result = predict(images, model=model, subjects=batch.subjects)
    np.testing.assert_allclose(result.scores, reference, rtol=0, atol=1e-6)


def test_paths_pil_arrays_and_tensors_score_alike(tmp_path):
    rgb = _image(1)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    model = create_model("clip", backbone=TINY)
    model.fit(FitData(subjects=["cow"]))
    scores = [predict(x, model=model, subjects="cow").scores[0] for x in (
        tmp_path / "a.png", str(tmp_path / "a.png"), Image.fromarray(rgb), rgb, torch.from_numpy(rgb.copy()).permute(2, 0, 1))]
    assert scores == pytest.approx([scores[0]] * 5, abs=1e-7)
    assert caadbench.predict is predict


def test_labels_and_masks_give_the_benchmarks_metrics():
    images = [_image(i) for i in range(6)]
    labels = [0, 0, 0, 1, 1, 1]
    masks = [None, None, None] + [np.pad(np.full((10, 10), 255, np.uint8), ((5, 25), (8, 38))) for _ in range(3)]
    result = predict(images, model="clip", backbone=TINY, subjects="cow", labels=labels, masks=masks)
    ev = result.evaluation
    assert ev.metrics["i_auroc"] == pytest.approx(roc_auc_score(labels, result.scores), abs=1e-9)
    assert not math.isnan(ev.metrics["p_auroc"])
    no_masks = predict(images, model="clip", backbone=TINY, subjects="cow", labels=labels).evaluation
    assert no_masks.metrics["i_auroc"] == ev.metrics["i_auroc"] and math.isnan(no_masks.metrics["p_auroc"])
    assert any("no pixel ground truth" in n for n in no_masks.notes)
    with pytest.raises(CaadError, match="masks need labels"):
        predict(images, model="clip", backbone=TINY, subjects="cow", masks=masks)


def test_threshold_labels_images_strictly_above_it():
    images = [_image(i) for i in range(4)]
    base = predict(images, model="clip", backbone=TINY, subjects="cow")
    t = float(np.sort(base.scores)[1])
    result = predict(images, model="clip", backbone=TINY, subjects="cow", threshold=t)
    np.testing.assert_array_equal(result.labels, (base.scores > t).astype(np.int64))
    assert result.labels.sum() == 2 and (result.thresholds == t).all()


def test_references_checkpoint_and_calibration(refs, tmp_path):
    images = [_image(50 + i) for i in range(3)]
    few = predict(images, references=refs, backbone=TINY, subjects=["cow", "car", "cow"])
    assert few.model["model"] == "winclip.plus" and few.model["references"]["per_subject"] == {"car": 2, "cow": 2}
    loaded = load_model(model="clip.few_shot", references=refs, backbone=TINY, subjects=["cow", "car"])
    ckpt = loaded.model.save(tmp_path / "few.safetensors")
    from_refs = predict(images, model=loaded.model, subjects=["cow", "car", "cow"])
    from_ckpt = predict(images, checkpoint=ckpt, subjects=["cow", "car", "cow"])
    np.testing.assert_allclose(from_ckpt.scores, from_refs.scores, atol=1e-6)
    assert from_ckpt.model["fingerprint"] == from_refs.model["fingerprint"]
    assert from_ckpt.model["checkpoint"]["sha256"]

    normals = [_image(70 + i) for i in range(5)]
    out = tmp_path / "thr.json"
    threshold = calibrate(normals, checkpoint=ckpt, subjects="cow", quantile=0.8, out=out)
    scores = predict(normals, checkpoint=ckpt, subjects="cow").scores
    assert threshold.per_subject["cow"] == pytest.approx(float(np.quantile(scores, 0.8)))
    assert threshold.value == threshold.per_subject["cow"] and threshold.counts == {"all": 5, "cow": 5}
    labelled = predict(images, checkpoint=ckpt, subjects="cow", threshold=out)
    np.testing.assert_array_equal(labelled.labels, (labelled.scores > threshold.per_subject["cow"]).astype(int))
    with pytest.raises(ModelError, match="calibrated with another model or fitted state"):
        predict(images, model="clip", backbone=TINY, subjects="cow", threshold=out)


def test_a_model_without_maps_gives_scores_and_no_maps(tmp_path):
    ckpt = probe_checkpoint(tmp_path / "probe.safetensors")
    images = [_image(i) for i in range(4)]
    result = predict(images, checkpoint=ckpt, subjects="cow", labels=[0, 1, 0, 1])
    assert result.maps is None and np.isfinite(result.scores).all()
    with pytest.raises(ModelError, match="gives no anomaly maps"):
        result.full_map(0)
    assert math.isnan(result.evaluation.metrics["p_auroc"]) and not math.isnan(result.evaluation.metrics["i_auroc"])
    assert any("unavailable (the model gives no maps)" in n for n in result.evaluation.notes)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"model": "coreclip"}, "coreclip: is a trained model: pass --checkpoint"),
    ({"model": "winclip.plus"}, "is a few-shot model: pass --reference"),
    ({"model": "clip", "references": "REFS"}, "is a zero-shot model and uses no references"),
    ({}, "name a model (--model), a checkpoint (--checkpoint) or few-shot references"),
    ({"model": "clip", "options": {"promt_set": "two"}}, "did you mean 'prompt_set'?"),
])
def test_model_sources_are_checked(refs, kwargs, words):
    kwargs = {k: (refs if v == "REFS" else v) for k, v in kwargs.items()}
    with pytest.raises(CaadError) as err:
        predict(_image(0), subjects="cow", backbone=TINY, **kwargs)
    assert words in str(err.value)


def test_subjects_without_references_are_refused(refs):
    with pytest.raises(ModelError, match=r"no reference images of subject\(s\) horse"):
        predict(_image(0), references=refs, backbone=TINY, subjects="horse")


def test_calibration_on_the_reference_images_is_refused(refs):
    with pytest.raises(CaadError, match="is also a reference image"):
        calibrate(refs, references=refs, backbone=TINY)


def test_calibration_quantile_is_checked():
    with pytest.raises(CaadError, match="must be in \\(0, 1\\]"):
        calibrate(_image(0), model="clip", backbone=TINY, subjects="cow", quantile=1.5)
    assert Threshold(0.5).label(0.5, "x") == 0 and Threshold(0.5).label(0.50001, "x") == 1


BF16_SCORE_TOL, BF16_MAP_TOL = 0.01, 0.02
"""Stated tolerance of bf16 autocast vs fp32 on caad-tiny (docs/predict.md): absolute, scores and maps in [0, 1]."""


@pytest.mark.parametrize("name", ["clip", "coreclip"])
def test_bf16_predictions_equal_fp32_within_the_stated_tolerance(name):
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    outs = {}
    for precision in ("fp32", "bf16"):
        model = create_model(name, backbone=TINY, precision=precision)
        if name == "coreclip":
            model.is_fitted = True  # untrained adapters: the precision of the forward pass is what is compared
        else:
            model.fit(FitData(subjects=["cow"]))
        assert model.precision_for("predict") == precision
        outs[precision] = model.predict(Batch.from_images(images, ["cow", "cow"]))
    a, b = outs["fp32"], outs["bf16"]
    assert a.scores.dtype == b.scores.dtype == torch.float32
    assert (a.scores - b.scores).abs().max() <= BF16_SCORE_TOL
    assert (a.maps - b.maps).abs().max() <= BF16_MAP_TOL
    assert not torch.equal(a.maps, b.maps)  # bf16 really ran
