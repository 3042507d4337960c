"""Results file names keep apart dataset, split, model, how it was fitted, backbone, input size and weights."""

from __future__ import annotations

import pytest

from caadbench.eval.naming import fit_part, results_name, weights_part

SHA = "0123456789abcdef" * 4


@pytest.mark.parametrize(("weights", "sha", "seed", "part"), [
    ("random-init", None, 0, "random-init"),
    ("random-init", None, 3, "random-init-seed3"),
    ("world", SHA, 0, "world"),
    ("openclip:laion400m_e31", SHA, 0, "laion400m_e31"),
    ("file:open_clip_pytorch_model.bin", SHA, 0, "file-01234567"),
    ("world-file:mine.safetensors", SHA, 0, "world-file-01234567"),
    ("hf-hub:org/model", SHA, 0, "hub-01234567"),
])
def test_weights_part(weights, sha, seed, part):
    assert weights_part(weights, sha, seed) == part


def test_fit_part_never_calls_a_trained_model_zero_shot():
    assert fit_part("zero-shot", 0) == "zeroshot"
    assert fit_part("few-shot", 4) == "4shot"
    assert fit_part("trained", 0) == "trained"
    assert fit_part("trained", 0, "visa-test-test") == "trained-on-visa-test-test"
    assert fit_part("few-shot", 2, checkpoint_sha256=SHA) == "2shot-ckpt01234567"


def test_results_name():
    assert results_name(dataset="caad-synth", split="cc", model="winclip.plus", fit="4shot", backbone="caad-tiny",
                        weights="world") == "caad-synth_cc_winclip.plus_4shot_caad-tiny-world.json"
    assert results_name(dataset="mvtec-ad", split="std", model="winclip", fit="zeroshot",
                        backbone="ViT-B-16-plus-240", weights="file-01234567", image_size=336) == (
        "mvtec-ad_std_winclip_zeroshot_ViT-B-16-plus-240-336px-file-01234567.json")
    assert results_name(dataset="d", split="cc", model="clip", fit="zeroshot", backbone="hf-hub:org/Name",
                        weights="hub-01234567") == "d_cc_clip_zeroshot_hf-hub-org-Name-hub-01234567.json"
