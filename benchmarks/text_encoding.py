"""Prompt encoding: the text tower vs the per-process cache vs the on-disk text cache, in one run.

Encodes a prompt set's (normal, anomalous) prototypes of some subjects with a fresh backbone, then reads them back
from memory and, after clearing the memory, from a temporary ``--text-cache`` directory (what a later process sees),
and checks that all three are bit-identical::

    OMP_NUM_THREADS=2 python benchmarks/text_encoding.py --archs caad-tiny ViT-B-16-plus-240 --subjects 1
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from caadbench.data.sources.synthetic.subjects import SUBJECTS
from caadbench.eval.tables import markdown_table
from caadbench.models import text_cache
from caadbench.models.backbone import ClipBackbone
from caadbench.models.prompts import get_prompt_set


def measure(arch: str, prompt_set: str, subjects: list[str]) -> list:
    """One table row: seconds to encode, to read from memory and from disk, and whether all agree."""
    backbone = ClipBackbone(arch, pretrained=None, init_seed=0)
    prompts = get_prompt_set(prompt_set)
    n_prompts = len(prompts.prompts(subjects[0], False)) + len(prompts.prompts(subjects[0], True))
    text_cache.clear()
    with tempfile.TemporaryDirectory() as root:
        text_cache.use_disk(root)
        try:
            times, values = [], []
            for clear_first in (False, False, True):  # encode (and write), memory hit, disk read
                if clear_first:
                    text_cache.clear()
                start = time.perf_counter()
                values.append(text_cache.frozen_prototypes(backbone, prompts, subjects))
                times.append(time.perf_counter() - start)
            disk = text_cache.disk_stats()
        finally:
            text_cache.use_disk(None)
    same = all(torch.equal(values[0], v) for v in values[1:])
    return [arch, prompt_set, len(subjects), n_prompts, f"{times[0]:.3f}", f"{times[1]:.4f}", f"{times[2]:.4f}",
            f"{times[0] / max(times[2], 1e-9):.0f}x", disk["reads"] == len(subjects) and same]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["caad-tiny", "ViT-B-16-plus-240"])
    parser.add_argument("--prompts", default="winclip", help="prompt set (winclip: 154 + 88 prompts per subject)")
    parser.add_argument("--subjects", type=int, default=1, help="how many of the synthetic world's subjects")
    args = parser.parse_args(argv)
    subjects = list(SUBJECTS)[: args.subjects]
    with torch.no_grad():
        rows = [measure(arch, args.prompts, subjects) for arch in args.archs]
    header = ["arch", "prompts", "subjects", "prompts/subject", "encode s", "memory s", "disk s", "encode/disk",
              "identical"]
    print("\n".join(markdown_table(header, rows)))


if __name__ == "__main__":
    main()
