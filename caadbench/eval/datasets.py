"""Dataset ids written into results: an id names exactly what was evaluated.

The paper ids ``mvtec-ad`` and ``visa`` — the ones the leaderboard matches with the papers' category means — are
given only to shards holding the complete official category set (:data:`OFFICIAL_CATEGORIES`). Any other tree in
those layouts gets an id of its own: a subset of the official categories ``mvtec-ad-subset-<categories>`` (up to
:data:`NAMED_SUBSET` categories by name, else ``mvtec-ad-subset-<k>of15-<sha256[:8] of the list>``); a dataset
with other categories ``mvtec-layout-<folder>`` (``visa-layout-<folder>``). The evaluated categories are always
listed in the results (``Results.categories``).

Likewise ``caad-synth`` names only the default synthetic build (the generator's defaults, split seed = generator
seed): a build with other recorded parameters (``source`` in ``index.json``) is ``caad-synth-`` followed by what
differs, ``n<size>``, ``<image_size>px``, ``seed<seed>``, ``split<split seed>``, ``occ<occlusion>``,
``shadow<shadow>``, ``rules-<rulebook file stem>`` (``caad-synth-n300-128px``), so its results never pass for the
benchmark's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from caadbench.errors import CaadError

OFFICIAL_CATEGORIES: dict[str, tuple[str, ...]] = {
    "mvtec-ad": ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
                 "screw", "tile", "toothbrush", "transistor", "wood", "zipper"),
    "visa": ("candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb2",
             "pcb3", "pcb4", "pipe_fryum"),
}
"""The 15 MVTec-AD categories (Bergmann et al., CVPR 2019) and the 12 VisA categories (Zou et al., ECCV 2022)."""

SOURCE_IDS = {"synthetic": "caad-synth", "composite": "caad-composite", "caad": "caad-3k", "mvtec": "mvtec-ad",
              "visa": "visa"}
"""The id of shards built from each source (``mvtec`` / ``visa`` only with the complete category set)."""

LAYOUT_PREFIX = {"mvtec-ad": "mvtec-layout", "visa": "visa-layout"}
NAMED_SUBSET = 4


def slug(text: str) -> str:
    """A file-name-safe id fragment: runs of other characters become ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "dataset"


def industrial_id(paper_id: str, categories: Iterable[str], root: str | Path) -> str:
    """The id of an industrial tree in ``paper_id``'s layout holding ``categories`` (see the module docstring)."""
    official = OFFICIAL_CATEGORIES[paper_id]
    cats = sorted(set(categories))
    if cats == sorted(official):
        return paper_id
    if cats and set(cats) <= set(official):
        if len(cats) <= NAMED_SUBSET:
            return f"{paper_id}-subset-{'-'.join(cats)}"
        digest = hashlib.sha256(",".join(cats).encode()).hexdigest()[:8]
        return f"{paper_id}-subset-{len(cats)}of{len(official)}-{digest}"
    return f"{LAYOUT_PREFIX[paper_id]}-{slug(Path(str(root)).name)}"


SYNTHETIC_LABELS = {"size": "n{}", "image_size": "{}px", "seed": "seed{}", "occlusion": "occ{:g}",
                    "shadow": "shadow{:g}"}
"""How a synthetic build parameter that differs from the default is written in the dataset id."""


def synthetic_id(source: dict, split_seed: int | None = None) -> str:
    """``caad-synth`` for the default synthetic build, else ``caad-synth-<what differs>`` (module docstring)."""
    from caadbench.data.sources.synthetic import SyntheticSource

    default = SyntheticSource().describe()
    parts = [label.format(source[key]) for key, label in SYNTHETIC_LABELS.items()
             if key in source and source[key] != default[key]]
    seed = source.get("seed", default["seed"])
    if split_seed is not None and split_seed != seed:
        parts.append(f"split{split_seed}")
    rulebook = source.get("rulebook", default["rulebook"])
    if rulebook != default["rulebook"]:
        parts.append(f"rules-{slug(Path(str(rulebook)).stem)}")
    return "-".join([SOURCE_IDS["synthetic"], *parts])


def dataset_id(source: dict, categories: Iterable[str], root: str | Path, split_seed: int | None = None) -> str:
    """The results' dataset id of shards built from ``source`` (the manifest's ``source`` record) with split seed
    ``split_seed`` (the manifest's ``seed``)."""
    name = source.get("name", "")
    if name in ("mvtec", "visa"):
        return industrial_id(SOURCE_IDS[name], categories, source.get("root") or root)
    if name == "synthetic":
        return synthetic_id(source, split_seed)
    if name in SOURCE_IDS:
        return SOURCE_IDS[name]
    return slug(Path(str(source.get("root") or root)).name)


def check_dataset_id(chosen: str, categories: Iterable[str], where: str | Path) -> None:
    """Refuse a paper id (``--dataset-id mvtec-ad``) for shards without the complete official category set.

    Raises:
        CaadError: naming the missing (or extra) categories.
    """
    if chosen not in OFFICIAL_CATEGORIES:
        return
    cats, official = set(categories), set(OFFICIAL_CATEGORIES[chosen])
    if cats != official:
        missing, extra = sorted(official - cats), sorted(cats - official)
        what = "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                       f"not official: {', '.join(extra)}" if extra else ""]))
        raise CaadError(where, f"dataset id {chosen!r} names the complete official category set, these shards "
                               f"differ ({what}); drop --dataset-id to get an id of their own")


__all__ = ["OFFICIAL_CATEGORIES", "SOURCE_IDS", "check_dataset_id", "dataset_id", "industrial_id", "slug",
           "synthetic_id"]
