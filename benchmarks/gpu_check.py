"""One GPU check: speed, memory and bf16 agreement of the methods on full-size backbones, printed as one table.

    python benchmarks/gpu_check.py                     # one GPU, about 5-8 minutes (see docs/evaluation.md)
    python benchmarks/gpu_check.py --out gpu.json      # the table's rows as JSON too
    python benchmarks/gpu_check.py --tiny              # caad-tiny on the CPU in seconds (the test suite runs this)

Rows (each measured by one small function below; the list is :func:`measurements`):

* WinCLIP and WinCLIP+ (1-shot) images/s on ViT-B-16-plus-240 in fp32 and under bf16 autocast, and the largest
  absolute difference of their image scores (fp32 vs bf16) over the same images;
* CoRe-CLIP stage-2 training steps/s and peak GPU memory on ViT-B-16 and ViT-L-14-336 (bf16 autocast, as the
  trainer runs on CUDA), on batches held in memory so that the figure is the model's, not the PNG decoder's.

Backbones are random-init (nothing is downloaded, so the check runs on a machine without internet): speed and
memory do not depend on the weights' values; the fp32/bf16 score difference is measured on random features and
says how far bf16 moves scores numerically, not how it moves a real model's accuracy. Data: a small synthetic
set built in a temporary directory by the project's own generator.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from tabulate import tabulate

from caadbench.data.batch import Batch
from caadbench.data.loader import CaadDataset, open_dataset
from caadbench.data.shards import build_shards
from caadbench.data.sources import get_source_class
from caadbench.models import ClipBackbone, FitData, Learning, create_model
from caadbench.models.feature_cache import IMAGE_FEATURES

WINCLIP_ARCH = "ViT-B-16-plus-240"
CORECLIP_ARCHS = ("ViT-B-16", "ViT-L-14-336")
TINY = "caad-tiny"


@dataclass
class Row:
    """One line of the table."""

    measure: str
    backbone: str
    setting: str
    value: float
    unit: str


@dataclass
class Context:
    """What every measurement shares: the data, the device and the sizes of one run."""

    ds: CaadDataset
    split: str
    device: torch.device
    batch_size: int
    images: int
    steps: int
    tiny: bool
    backbones: dict[str, ClipBackbone] = field(default_factory=dict)

    @property
    def image_size(self) -> int | None:
        """Model input side: the architecture's own, or 64 px for the tiny check (a 4 x 4 patch grid)."""
        return 64 if self.tiny else None

    def arch(self, full: str) -> str:
        return TINY if self.tiny else full

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def autocast(self, bf16: bool):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    def backbone(self, arch: str) -> ClipBackbone:
        """One frozen random-init backbone per architecture, shared by the rows that use it."""
        if arch not in self.backbones:
            self.backbones[arch] = ClipBackbone(arch, pretrained=None, image_size=self.image_size).to(self.device)
        return self.backbones[arch]

    def batches(self, part: str, image_size: int, **kw) -> list[Batch]:
        return list(self.ds.batches(self.split, part, image_size=image_size, batch_size=self.batch_size, **kw))


# ------------------------------------------------------------------------------------------ measurements


def winclip_rows(ctx: Context, name: str, arch: str) -> list[Row]:
    """Images/s of ``name`` in fp32 and bf16 on ``arch``, and the largest |score fp32 - score bf16|."""
    model = create_model(name, backbone=ctx.backbone(arch)).to(ctx.device)
    subjects = ctx.ds.subjects(ctx.split)
    support = None
    if model.learning == Learning.FEW_SHOT:
        keys = sorted(k for ks in ctx.ds.support_keys(ctx.split, 1, 0).values() for k in ks)
        support = ctx.batches("support", model.image_size, keys=keys)
    model.fit(FitData(subjects=subjects, support=support, seed=0, device=str(ctx.device)))
    test = ctx.batches("test", model.image_size)
    n = 0
    chosen = []
    for batch in test:  # the first ``ctx.images`` test images
        chosen.append(batch)
        n += len(batch)
        if n >= ctx.images:
            break
    scores, speed = {}, {}
    for bf16 in (False, True):
        with ctx.autocast(bf16):
            model.predict(chosen[0])  # warm-up (kernels, caches)
            ctx.sync()
            start = time.perf_counter()
            scores[bf16] = torch.cat([model.predict(b).scores.cpu() for b in chosen])
            ctx.sync()
        speed[bf16] = n / (time.perf_counter() - start)
    diff = float((scores[False] - scores[True]).abs().max())
    return [Row(f"{name} predict", arch, "fp32", speed[False], "images/s"),
            Row(f"{name} predict", arch, "bf16 autocast", speed[True], "images/s"),
            Row(f"{name} |score fp32 - bf16|", arch, f"max over {n} images", diff, "")]


def coreclip_rows(ctx: Context, arch: str) -> list[Row]:
    """CoRe-CLIP stage-2 training steps/s and peak GPU memory of the whole fit on ``arch``."""
    model = create_model("coreclip", backbone=arch, image_size=ctx.image_size, max_steps=ctx.steps, text_steps=2,
                         grounding_images=32, progress=False).to(ctx.device)
    train = ctx.batches("train", model.image_size, shuffle=True, seed=0)
    stamps: list[float] = []

    def passes(epoch: int) -> Iterator[Batch]:
        for batch in train:
            ctx.sync()
            stamps.append(time.perf_counter())
            yield batch

    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
    model.fit(FitData(subjects=ctx.ds.subjects(ctx.split), train=passes, train_size=sum(len(b) for b in train),
                      seed=0, device=str(ctx.device)))
    ctx.sync()
    stamps.append(time.perf_counter())
    steps = model.train_log["stage2"]["steps"]
    stage2 = stamps[-steps - 1:]  # the stage-1 grounding pass reads batches first; stage 2 reads the last ones
    warm = min(2, steps - 1)
    rate = (len(stage2) - 1 - warm) / (stage2[-1] - stage2[warm])
    rows = [Row("coreclip train", arch, f"bf16 autocast, batch {ctx.batch_size}" if ctx.device.type == "cuda"
                else f"fp32, batch {ctx.batch_size}", rate, "steps/s")]
    if ctx.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(ctx.device) / 2**30
        rows.append(Row("coreclip train peak memory", arch, f"batch {ctx.batch_size}", peak, "GiB"))
    return rows


def measurements(ctx: Context) -> list[Callable[[], list[Row]]]:
    """The table's measurements, in order (each returns its rows)."""
    return [
        partial(winclip_rows, ctx, "winclip", ctx.arch(WINCLIP_ARCH)),
        partial(winclip_rows, ctx, "winclip.plus", ctx.arch(WINCLIP_ARCH)),
        *(partial(coreclip_rows, ctx, ctx.arch(arch)) for arch in CORECLIP_ARCHS),
    ]


# ------------------------------------------------------------------------------------------------- main


TINY_SUBJECTS = ("cow", "car")
"""The tiny check's subjects: two keep the prompt ensembles' text encoding (most of its CPU time) short."""


def build_data(folder: Path, size: int, image_size: int, subjects: tuple[str, ...] | None = None) -> CaadDataset:
    """A synthetic ``cc`` set; with ``subjects``, from the built-in rulebook cut down to them."""
    source = get_source_class("synthetic")
    root = None
    if subjects:
        book = source(seed=0).rulebook()
        rules = {s: book["rules"][s] for s in subjects}
        used = {c for r in rules.values() for side in r.values() for c in side}
        root = folder.with_name("rulebook")
        root.mkdir()
        (root / "rulebook.json").write_text(json.dumps({
            **book, "subjects": list(subjects), "rules": rules,
            "contexts": {c: f for c, f in book["contexts"].items() if c in used}}))
    build_shards(source(root=root, seed=0, size=size, image_size=image_size), folder, splits=["cc"], progress=False)
    return open_dataset(folder)


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="caad-tiny backbones and a tiny set (CPU, seconds)")
    ap.add_argument("--device", default=None, help="default: cuda when available (cpu with --tiny)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 32 (4 with --tiny)")
    ap.add_argument("--images", type=int, default=None, help="test images per speed row (default 128, 2 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="CoRe-CLIP stage-2 steps (default 30, 3 with --tiny)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu"))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="caad-gpu-check-") as tmp:
        ds = build_data(Path(tmp) / "set", 40 if args.tiny else 400, 64 if args.tiny else 256,
                        TINY_SUBJECTS if args.tiny else None)
        ctx = Context(ds=ds, split="cc", device=device, batch_size=args.batch_size or (4 if args.tiny else 32),
                      images=args.images or (2 if args.tiny else 128), steps=args.steps or (3 if args.tiny else 30),
                      tiny=args.tiny)
        rows: list[Row] = []
        with IMAGE_FEATURES.disabled():  # rows time repeated calls: measure the arithmetic, never cache hits
            for measure in measurements(ctx):
                rows += measure()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"caadbench GPU check on {name} (torch {torch.__version__}; random-init backbones; "
          f"{time.perf_counter() - start:.0f} s)")
    print(tabulate([(r.measure, r.backbone, r.setting, f"{r.value:.4g}", r.unit) for r in rows],
                   headers=["measure", "backbone", "setting", "value", "unit"], tablefmt="github"))
    if args.out:
        args.out.write_text(json.dumps({"device": name, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
