"""The shipped world weights: in the package, hash-checked, loaded offline, and they know the synthetic world."""

from __future__ import annotations

import json

import open_clip
import pytest

from caadbench.data.sources.synthetic.contexts import CONTEXTS
from caadbench.data.sources.synthetic.subjects import SUBJECTS
from caadbench.data.world import EVAL_PREFIX, EVAL_SEED, build_world, world_specs
from caadbench.errors import ModelError, WeightsUnavailable
from caadbench.models import ClipBackbone
from caadbench.models.backbone import sha256_file
from caadbench.models.world import weights as W
from caadbench.models.world.zeroshot import zero_shot


@pytest.fixture(scope="module")
def world_backbone() -> ClipBackbone:
    return ClipBackbone("caad-tiny", W.WORLD_TAG)


def test_the_shipped_file_matches_its_manifest():
    entry = W.manifest()["caad-tiny"]
    assert entry.path.is_file() and entry.path.stat().st_size <= 25 * 2**20
    assert sha256_file(entry.path) == entry.sha256
    recipe = entry.recipe
    for field in ("command", "seed", "steps", "wall_s", "machine", "held_out"):
        assert field in recipe, field
    assert json.loads(W.MANIFEST.read_text())["weights"]["caad-tiny"]["file"] == entry.path.name


def test_world_loads_offline_without_any_download(monkeypatch, world_backbone):
    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", no_download)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_hf", no_download)
    backbone = ClipBackbone("caad-tiny", "world")
    ident = backbone.identity
    assert ident.weights == "world" and not ident.is_random_init
    assert ident.sha256 == W.manifest()["caad-tiny"].sha256 == world_backbone.identity.sha256


def test_a_replaced_file_or_another_arch_is_refused(monkeypatch, tmp_path):
    with pytest.raises(WeightsUnavailable, match="no world weights are shipped for ViT-B-16"):
        ClipBackbone("ViT-B-16", "world")
    entry = W.manifest()["caad-tiny"]
    monkeypatch.setattr(W, "manifest", lambda: {"caad-tiny": W.ShippedWeights("caad-tiny", entry.path, "0" * 64, {})})
    with pytest.raises(ModelError, match="differs from the manifest"):
        ClipBackbone("caad-tiny", "world")


def test_the_world_weights_know_subjects_and_contexts(world_backbone):
    """A behaviour check on fresh scenes (the full measurement is benchmarks/world_zeroshot.py): far above chance
    (10 % subjects, 6.7 % contexts), while the random-init backbone stays near it."""
    specs = world_specs(150, EVAL_SEED + 99, prefix=EVAL_PREFIX)
    world = build_world(specs, world_backbone.image_size, variants=1, progress=False)

    def accuracy(backbone):
        return zero_shot(backbone.encode_image, backbone.encode_text, world.scenes, [s.subject for s in specs],
                         [s.context for s in specs], subject_names=list(SUBJECTS), context_names=list(CONTEXTS))

    trained, random = accuracy(world_backbone), accuracy(ClipBackbone("caad-tiny", None))
    assert trained.context_accuracy > 0.8 and trained.subject_accuracy > 0.4
    assert random.context_accuracy < 0.3 and random.subject_accuracy < 0.3
