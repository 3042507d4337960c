"""A local weights file is built as the weights it holds were trained: OpenAI's release format, the sha256s of
open_clip's registry and a user-named tag give QuickGELU and the tag's mean/std; ``*-quickgelu`` architectures take
the same files; anything else is used as given and said once. Outputs are checked against a forward computed from
the file's own tensors with the activation written out (``tests/models/state_dict_clip.py``)."""

from __future__ import annotations

import dataclasses
import logging

import open_clip
import pytest
import torch

from caadbench.errors import WeightsUnavailable
from caadbench.eval.meter import ResourceMeter
from caadbench.eval.provenance import collect_provenance
from caadbench.models.backbone import ClipBackbone
from caadbench.models.weight_origin import registry_digests
from caadbench.utils.hashing import sha256_file
from tests.models import state_dict_clip as ref
from tests.models.openai_archive import ENTRIES, archive_state, save_openai_archive

IMAGE_HEADS, TEXT_HEADS = 3, 2  # caad-tiny: width 192 / head width 64; text width 128, 2 heads
TAG_MEAN, TAG_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def source() -> ClipBackbone:
    """The random-init weights every file here holds (seed 5, unlike the shared tiny backbone's)."""
    return ClipBackbone("caad-tiny", init_seed=5)


@pytest.fixture(scope="module")
def archive(source, tmp_path_factory):
    return save_openai_archive(source.model, tmp_path_factory.mktemp("openai") / "ViT-tiny.pt")


@pytest.fixture()
def plain_file(source, tmp_path):
    """The same weights as open_clip saves them: a plain state dict without OpenAI's entries."""
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(source.model.state_dict(), path)
    return path


def register_tag(monkeypatch, arch: str, tag: str, url: str = "", quick_gelu: bool = True, **extra) -> None:
    """An open_clip pretrained entry of ``arch`` for this test only (what the registry holds for real tags)."""
    from open_clip import pretrained

    cfg = {"url": url, "hf_hub": "", "mean": TAG_MEAN, "std": TAG_STD, "quick_gelu": quick_gelu, **extra}
    monkeypatch.setitem(pretrained._PRETRAINED, arch, {**pretrained._PRETRAINED.get(arch, {}), tag: cfg})


def openai_url(sha: str) -> str:
    return f"https://openaipublic.azureedge.net/clip/models/{sha}/ViT-tiny.pt"


@torch.no_grad()
def assert_runs_as(bb: ClipBackbone, state: dict, act, other) -> None:
    """Image and text embeddings equal the hand forward with ``act`` and differ from the one with ``other``."""
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    pixels = (images - bb.mean) / bb.std
    got = bb.encode_image(images, normalize=False)
    torch.testing.assert_close(got, ref.image_embedding(state, pixels, IMAGE_HEADS, act), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got, ref.image_embedding(state, pixels, IMAGE_HEADS, other), atol=1e-3)
    tokens = bb.tokenize(["a photo of a cow on a road", "metal nut"])
    torch.testing.assert_close(bb.encode_text(tokens, normalize=False),
                               ref.text_embedding(state, tokens, TEXT_HEADS, act), rtol=1e-4, atol=1e-5)


def test_registry_sha256s_are_those_of_open_clips_download_urls():
    """Every OpenAI entry of the installed open_clip maps to the hash its URL carries (the path segment before the
    file name, which open_clip's downloader checks); open_clip's own release files by their 8-digit prefix."""
    digests = registry_digests()
    openai = [(m, t) for m, t in open_clip.list_pretrained() if "openaipublic" in open_clip.get_pretrained_url(m, t)]
    assert ("ViT-L-14-336", "openai") in openai
    for model, tag in openai:
        assert (model, tag) in digests[open_clip.get_pretrained_url(model, tag).split("/")[-2]]
    url = open_clip.get_pretrained_url("RN50", "yfcc15m")
    assert ("RN50", "yfcc15m") in digests[url.rsplit("-", 1)[1].split(".")[0]]


def test_openai_archive_builds_quickgelu(archive, source):
    """OpenAI's release format (a TorchScript archive, float16 weights, three non-weight entries) is OpenAI's
    weights: QuickGELU in both towers, OpenAI's mean/std, recorded as such."""
    bb = ClipBackbone("caad-tiny", pretrained=str(archive))
    assert bb.identity.activation == "quickgelu" and bb.identity.weights == "file:ViT-tiny.pt (OpenAI archive)"
    assert bb.identity.sha256 == sha256_file(archive)
    assert bb.mean.flatten().tolist() == pytest.approx(open_clip.OPENAI_DATASET_MEAN)
    assert bb.std.flatten().tolist() == pytest.approx(open_clip.OPENAI_DATASET_STD)
    assert_runs_as(bb, archive_state(archive), ref.quick_gelu, ref.gelu)


def test_openai_state_dict_layout_builds_quickgelu(archive, tmp_path):
    """The archive's state saved as a plain state dict (its three entries included) is OpenAI's weights too."""
    path = tmp_path / "ViT-tiny-state.pt"
    torch.save({**archive_state(archive), **{k: torch.tensor(1) for k in ENTRIES}}, path)
    assert set(ENTRIES) <= set(torch.load(path, weights_only=True))
    bb = ClipBackbone("caad-tiny", pretrained=str(path))
    assert bb.identity.activation == "quickgelu"
    assert_runs_as(bb, archive_state(archive), ref.quick_gelu, ref.gelu)


def test_a_registry_sha256_names_the_tag(plain_file, source, monkeypatch):
    """A file whose sha256 open_clip's registry carries is that tag's file: its activation and mean/std, recorded
    as the tag; the ``*-quickgelu`` name of the architecture takes it too; another architecture is refused."""
    register_tag(monkeypatch, "caad-tiny", "openai", url=openai_url(sha256_file(plain_file)))
    bb = ClipBackbone("caad-tiny", pretrained=str(plain_file))
    assert bb.identity.weights == "openclip:openai" and bb.identity.activation == "quickgelu"
    assert bb.mean.flatten().tolist() == pytest.approx(TAG_MEAN) and bb.std.flatten().tolist() == pytest.approx(TAG_STD)
    assert_runs_as(bb, source.model.state_dict(), ref.quick_gelu, ref.gelu)

    cfg = {**open_clip.get_model_config("caad-tiny"), "quick_gelu": True}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "caad-tiny-quickgelu", cfg)
    explicit = ClipBackbone("caad-tiny-quickgelu", pretrained=str(plain_file))
    assert explicit.identity.weights == "openclip:openai" and explicit.identity.activation == "quickgelu"
    assert torch.equal(explicit.encode_image(torch.ones(1, 3, 128, 128)), bb.encode_image(torch.ones(1, 3, 128, 128)))

    with pytest.raises(WeightsUnavailable, match="sha256 is that of open_clip's caad-tiny:openai weights, not weights "
                                                 "of ViT-B-16; pass --backbone caad-tiny"):
        ClipBackbone("ViT-B-16", pretrained=str(plain_file))


def test_a_tag_builds_its_activation(plain_file, source, monkeypatch):
    """``--pretrained TAG`` builds what the tag says (open_clip itself only warns when it does not match)."""
    register_tag(monkeypatch, "caad-tiny", "quick", file=str(plain_file))
    bb = ClipBackbone("caad-tiny", pretrained="quick")
    assert bb.identity.weights == "openclip:quick" and bb.identity.activation == "quickgelu"
    assert_runs_as(bb, source.model.state_dict(), ref.quick_gelu, ref.gelu)


def test_a_named_tag(plain_file, source, monkeypatch):
    """``--pretrained TAG=PATH``: the user says which tag's file it is; a wrong tag or file is refused in one line,
    and so is a name the file's sha256 contradicts."""
    register_tag(monkeypatch, "caad-tiny", "openai")
    bb = ClipBackbone("caad-tiny", pretrained=f"openai={plain_file}")
    assert bb.identity.weights == "file:open_clip_pytorch_model.bin as openclip:openai"
    assert bb.identity.activation == "quickgelu" and bb.identity.sha256 == sha256_file(plain_file)
    assert bb.mean.flatten().tolist() == pytest.approx(TAG_MEAN)
    assert_runs_as(bb, source.model.state_dict(), ref.quick_gelu, ref.gelu)
    with pytest.raises(WeightsUnavailable, match=r"'laion' is not an open_clip pretrained tag of caad-tiny "
                                                 r"\(tags: openai\)"):
        ClipBackbone("caad-tiny", pretrained=f"laion={plain_file}")
    with pytest.raises(WeightsUnavailable, match="checkpoint file not found"):
        ClipBackbone("caad-tiny", pretrained=f"openai={plain_file}.missing")
    register_tag(monkeypatch, "caad-tiny", "laion", url=openai_url(sha256_file(plain_file)), quick_gelu=False)
    with pytest.raises(WeightsUnavailable, match="named 'openai', but its sha256 is that of open_clip's "
                                                 "caad-tiny:laion weights"):
        ClipBackbone("caad-tiny", pretrained=f"openai={plain_file}")


def test_a_file_of_unknown_origin_is_used_as_given_and_said_once(source, tmp_path, caplog):
    path = tmp_path / "mystery.pt"
    torch.save(ClipBackbone("caad-tiny", init_seed=11).model.state_dict(), path)
    with caplog.at_level(logging.WARNING, logger="caadbench.models.weight_origin"):
        first = ClipBackbone("caad-tiny", pretrained=str(path))
        ClipBackbone("caad-tiny", pretrained=str(path), image_size=160)
    said = [r for r in caplog.records if "origin unknown" in r.getMessage()]
    assert len(said) == 1 and str(path) in said[0].getMessage() and "--pretrained TAG=" in said[0].getMessage()
    assert first.identity.activation == "gelu" and first.identity.weights == "file:mystery.pt"


def test_provenance_records_the_activation(archive):
    """Results record it; checkpoints and caches tell the two networks of one file apart."""
    bb = ClipBackbone("caad-tiny", pretrained=str(archive))
    assert not bb.identity.same_weights(dataclasses.replace(bb.identity, activation="gelu"))
    with ResourceMeter("cpu") as meter:
        meter.count(1)
    prov = collect_provenance(bb.identity, dataset_fingerprint="f", dataset_path="d", device="cpu", meter=meter)
    assert prov.activation == "quickgelu" and prov.weights == "file:ViT-tiny.pt (OpenAI archive)"
