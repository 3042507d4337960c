"""Throughput of the baselines, WinCLIP's speed-up over one-window-at-a-time encoding, and ``caadbench predict``
on image files against the model alone.

For each architecture (random init: no weights are downloaded) it measures images/s of ``predict`` for
``clip``, ``winclip``, ``winclip.plus``, ``aprilgan`` and ``anomalyclip`` on one batch (the trained baselines with
their freshly initialised trainable tensors: training does not change their prediction cost) and the ratio to
WinCLIP's; then the training throughput of the two trained baselines (one optimiser step on a batch, images/s);
then runs WinCLIP again with the backbone's ``encode_token_subsets`` replaced by a naive reference that encodes
each window separately (a Python loop of one-subset calls), checks both give the same maps, and prints the ratio.

``caadbench predict`` rows: the same ``clip`` model scores ``--predict-images`` PNG files of mixed sizes
(decoding, RGB conversion, resizing, prediction) with :func:`caadbench.predict`, and again through
``caadbench predict``'s writer (plus one overlay PNG per image); each row's images/s is set against
``AnomalyModel.predict`` on tensors already at the input size, measured in the same run.

``--precision`` adds, per model, images/s of ``predict`` under bf16 autocast against fp32 on this device (the
evidence ``caadbench.utils.devices.CPU_BF16_FASTER`` asks for). Everything is measured in this run.

    OMP_NUM_THREADS=1 python benchmarks/model_throughput.py --archs caad-tiny ViT-B-16-plus-240 --batch 2
    OMP_NUM_THREADS=1 python benchmarks/model_throughput.py --archs caad-tiny --precision

On one CPU thread the ViT-B-16-plus-240 part takes several minutes (WinCLIP encodes ~12x the tokens of CLIP).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tabulate import tabulate

from caadbench.data.batch import Batch
from caadbench.models import ClipBackbone, FitData, create_model
from caadbench.utils.devices import cpu_kind, resolve_device

MODELS = ("clip", "winclip", "winclip.plus", "aprilgan", "anomalyclip")
TRAINED = ("aprilgan", "anomalyclip")


def make_batch(n: int, size: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    gt = torch.rand(n, EVAL_RESOLUTION, EVAL_RESOLUTION, generator=g) > 0.9
    return Batch(images=images, subject_masks=torch.ones(n, size, size, dtype=torch.bool), gt_masks=gt,
                 labels=torch.arange(n) % 2, keys=[f"b{seed}_{i}" for i in range(n)],
                 subjects=["cow"] * n, contexts=["pasture"] * n)


PHOTO_SIZES = ((480, 640), (300, 200), (768, 1024), (90, 600), (256, 256))
"""(height, width) of the benchmark's image files, in turn: real folders mix sizes."""


def write_photos(folder: Path, n: int) -> list[Path]:
    """``n`` smooth random PNG photos of mixed sizes under ``folder/cow``."""
    (folder / "cow").mkdir(parents=True)
    paths = []
    for i in range(n):
        h, w = PHOTO_SIZES[i % len(PHOTO_SIZES)]
        coarse = np.random.default_rng(i).integers(0, 256, (max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8)
        path = folder / "cow" / f"{i:03d}.png"
        Image.fromarray(coarse).resize((w, h), Image.BILINEAR).save(path)
        paths.append(path)
    return paths


def predict_rows(arch: str, n: int, batch_size: int, repeats: int) -> list:
    """images/s of ``caadbench.predict`` on files, and with overlays, against ``AnomalyModel.predict``."""
    from caadbench.infer import load_model, predict
    from caadbench.infer.inputs import expand_paths
    from caadbench.infer.outputs import PredictionWriter
    from caadbench.infer.predictor import iter_predictions

    loaded = load_model(model="clip", backbone=arch, subjects=["cow"], device="cpu")
    model = loaded.model
    tensors = make_batch(n, model.image_size, 7)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp) / "photos", n)
        refs = expand_paths([Path(tmp) / "photos"])

        def chunks() -> None:
            for lo in range(0, n, batch_size):
                model.predict(Batch.from_images(tensors.images[lo:lo + batch_size], tensors.subjects[lo:lo + batch_size]))

        def files() -> None:
            predict(paths, model=model, batch_size=batch_size)

        def overlays() -> None:
            writer = PredictionWriter(Path(tmp) / "out")
            for p in iter_predictions(loaded, refs, batch_size=batch_size):
                writer.add(p)
            writer.finish(loaded.info, [])

        base, _ = timed(chunks, repeats)
        for label, fn in (("model.predict on tensors (reference)", chunks),
                          ("caadbench.predict on PNG files", files),
                          ("caadbench predict: files + overlays + scores.csv", overlays)):
            seconds = base if fn is chunks else timed(fn, repeats)[0]
            rows.append([arch, label, n, f"{seconds:.2f}", f"{n / seconds:.2f}", f"{base / seconds:.2f}x"])
    return rows


def precision_rows(arch: str, batch_size: int, repeats: int, device: str) -> list:
    """images/s of ``predict`` under bf16 autocast against fp32, per model, on ``device``."""
    backbone = ClipBackbone(arch, pretrained=None, init_seed=0).to(device)
    batch, support = make_batch(batch_size, backbone.image_size, 0), make_batch(1, backbone.image_size, 1)
    rows = []
    for name in MODELS:
        seconds, outs = {}, {}
        for precision in ("fp32", "bf16"):
            model = create_model(name, backbone=backbone, precision=precision).to(device)
            model.fit(FitData(subjects=["cow"], support=[support], device=device))
            seconds[precision], outs[precision] = timed(lambda model=model: model.predict(batch), repeats)
        diff = (outs["fp32"].scores - outs["bf16"].scores).abs().max().item()
        rows.append([arch, device, cpu_kind() if device == "cpu" else torch.cuda.get_device_name(device), name,
                     f"{batch_size / seconds['fp32']:.2f}", f"{batch_size / seconds['bf16']:.2f}",
                     f"{seconds['fp32'] / seconds['bf16']:.2f}x", f"{diff:.1e}"])
    return rows


def train_step(model) -> Callable[[object], None]:
    """One optimiser step of a trained baseline on a batch (Adam, as its trainer)."""
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)

    def step(batch) -> None:
        with torch.enable_grad():
            total, _ = model.training_loss(batch)
            opt.zero_grad()
            total.backward()
            opt.step()

    return step


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Seconds per call (best of ``repeats`` after one warm-up call) and the last result."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def naive_token_subsets(backbone: ClipBackbone) -> Callable:
    """``encode_token_subsets`` done one subset (window) at a time: the reference WinCLIP avoids."""
    vectorised = backbone.encode_token_subsets

    def encode(images, subsets, normalize=True, max_sequences=4096):
        return torch.cat([vectorised(images, subsets[m:m + 1], normalize=normalize) for m in range(len(subsets))], dim=1)

    return encode


def run(arch: str, batch_size: int, repeats: int) -> tuple[list, list]:
    backbone = ClipBackbone(arch, pretrained=None, init_seed=0)
    size = backbone.image_size
    batch, support = make_batch(batch_size, size, 0), make_batch(1, size, 1)
    rows, ratio_rows, train_rows, speeds = [], [], [], {}
    for name in MODELS:
        model = create_model(name, backbone=backbone, progress=False) if name in TRAINED else \
            create_model(name, backbone=backbone)
        if name in TRAINED:
            model.is_fitted = True
            model.predict(support)  # text prototypes outside the timing
            train_s, _ = timed(lambda step=train_step(model): step(batch), repeats)
            train_rows.append([arch, name, batch_size, f"{train_s:.3f}", f"{batch_size / train_s:.2f}"])
        else:
            model.fit(FitData(subjects=["cow"], support=[support]))  # prototypes (and memories) outside the timing
        seconds, _ = timed(lambda model=model: model.predict(batch), repeats)
        speeds[name] = batch_size / seconds
        rows.append([arch, f"{size}px {backbone.grid_size[0]}x{backbone.grid_size[1]}", name, batch_size,
                     f"{seconds:.3f}", f"{batch_size / seconds:.2f}"])
    for row in rows:
        row.append(f"{speeds[row[2]] / speeds['winclip']:.2f}x")
    model = create_model("winclip", backbone=backbone)
    model.fit(FitData(subjects=["cow"]))
    fast_s, fast = timed(lambda: model.predict(batch), repeats)
    windows = sum(len(model.window_index(k)) for k in model.config.scales)
    backbone.encode_token_subsets = naive_token_subsets(backbone)
    try:
        naive_s, naive = timed(lambda: model.predict(batch), max(1, repeats // 2))
    finally:
        del backbone.encode_token_subsets  # back to the class's vectorised method
    diff = (fast.maps - naive.maps).abs().max().item()
    ratio_rows.append([arch, windows, batch_size, f"{fast_s:.3f}", f"{naive_s:.3f}", f"{naive_s / fast_s:.1f}x",
                       f"{diff:.1e}"])
    return rows, ratio_rows, train_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["caad-tiny", "ViT-B-16-plus-240"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--predict-images", type=int, default=10, help="image files for the predict rows (0: none)")
    parser.add_argument("--precision", action="store_true", help="also bf16 vs fp32 predict throughput")
    parser.add_argument("--device", default="auto", help="device of the precision rows (auto | cpu | cuda)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rows, ratio_rows, train_rows, predict, precision = [], [], [], [], []
    for arch in args.archs:
        r, q, t = run(arch, args.batch, args.repeats)
        rows += r
        ratio_rows += q
        train_rows += t
        if args.predict_images:
            predict += predict_rows(arch, args.predict_images, args.batch, args.repeats)
        if args.precision:
            precision += precision_rows(arch, args.batch, args.repeats, resolve_device(args.device))
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s) "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), random-init weights, best of {args.repeats}")
    print(tabulate(rows, headers=["backbone", "input", "model", "batch", "s/batch", "images/s", "vs winclip"],
                   tablefmt="github"))
    print()
    print(tabulate(train_rows, headers=["backbone", "model", "batch", "s/training step", "training images/s"],
                   tablefmt="github"))
    print()
    print(tabulate(ratio_rows, headers=["backbone", "windows/image", "batch", "winclip s/batch (vectorised)",
                                       "s/batch (one window per call)", "speed-up", "max |map diff|"],
                   tablefmt="github"))
    if predict:
        print()
        print(tabulate(predict, headers=["backbone", "clip, batch " + str(args.batch), "images", "s", "images/s",
                                         "vs model.predict"], tablefmt="github"))
    if precision:
        print()
        print(tabulate(precision, headers=["backbone", "device", "kind", "model", "fp32 images/s", "bf16 images/s",
                                           "bf16 speed-up", "max |score diff|"], tablefmt="github"))


if __name__ == "__main__":
    main()
