"""Dataset ids do not lie: the paper ids only for the complete official category sets."""

from __future__ import annotations

import pytest

from caadbench.errors import CaadError
from caadbench.eval.datasets import OFFICIAL_CATEGORIES, check_dataset_id, dataset_id, industrial_id

MVTEC = OFFICIAL_CATEGORIES["mvtec-ad"]


def test_official_category_lists():
    assert len(MVTEC) == 15 and len(OFFICIAL_CATEGORIES["visa"]) == 12
    assert {"metal_nut", "toothbrush", "zipper"} <= set(MVTEC) and "pipe_fryum" in OFFICIAL_CATEGORIES["visa"]


def test_ids_name_what_was_evaluated():
    assert industrial_id("mvtec-ad", reversed(MVTEC), "/data/mvtec") == "mvtec-ad"
    assert industrial_id("mvtec-ad", ["bottle"], "/data/mvtec") == "mvtec-ad-subset-bottle"
    assert industrial_id("mvtec-ad", ["zipper", "bottle"], "/x") == "mvtec-ad-subset-bottle-zipper"
    six = industrial_id("mvtec-ad", MVTEC[:6], "/x")
    assert six.startswith("mvtec-ad-subset-6of15-") and six == industrial_id("mvtec-ad", MVTEC[:6][::-1], "/y")
    assert industrial_id("mvtec-ad", [*MVTEC, "widget"], "/data/my set") == "mvtec-layout-my-set"
    assert industrial_id("visa", OFFICIAL_CATEGORIES["visa"][:1], "/v") == "visa-subset-candle"
    assert dataset_id({"name": "synthetic"}, ["cow"], "/d") == "caad-synth"
    assert dataset_id({"name": "folder", "root": "/data/My Parts"}, ["part"], "/d") == "My-Parts"


def test_only_the_default_synthetic_build_is_caad_synth():
    from caadbench.data.sources.synthetic import SyntheticSource

    def synth(split_seed=None, **kw):
        return dataset_id(SyntheticSource(**kw).describe(), ["cow"], "/d", split_seed)

    assert synth() == synth(0) == "caad-synth"
    assert synth(size=300, image_size=128) == "caad-synth-n300-128px"
    assert synth(1, seed=1) == "caad-synth-seed1" and synth(0, seed=1) == "caad-synth-seed1-split0"
    assert synth(2) == "caad-synth-split2"
    assert synth(occlusion=0.5, shadow=0.0) == "caad-synth-occ0.5-shadow0"
    rules = {**SyntheticSource().describe(), "rulebook": "/home/me/farm rules.json"}
    assert dataset_id(rules, ["cow"], "/d") == "caad-synth-rules-farm-rules"


def test_a_paper_id_is_refused_for_an_incomplete_set():
    check_dataset_id("mvtec-ad", MVTEC, "index.json")
    check_dataset_id("my-own", ["bottle"], "index.json")
    with pytest.raises(CaadError, match="index.json: dataset id 'mvtec-ad' names the complete official category "
                                        "set, these shards differ \\(missing cable, capsule"):
        check_dataset_id("mvtec-ad", ["bottle"], "index.json")


def test_a_one_category_mvtec_tree_is_not_labelled_mvtec_ad(tmp_path):
    from caadbench.data.shards import build_shards
    from caadbench.data.sources.mvtec import MVTecSource
    from caadbench.eval.results import read_results
    from caadbench.eval.runner import RunConfig, run
    from tests.data.sources.fixtures import write_mvtec

    write_mvtec(tmp_path / "tree")
    build_shards(MVTecSource(root=tmp_path / "tree", categories=["bottle"]), tmp_path / "shards", workers=1,
                 progress=False)
    cfg = RunConfig(model="clip", split="std", data=tmp_path / "shards", backbone="caad-tiny", image_size=64,
                    out=tmp_path / "out", progress=False)
    res = read_results(run(cfg))
    assert res.dataset == "mvtec-ad-subset-bottle" and res.categories == ["bottle"]
    with pytest.raises(CaadError, match="dataset id 'mvtec-ad' names the complete official category set"):
        run(RunConfig(**{**cfg.__dict__, "dataset_id": "mvtec-ad"}))
