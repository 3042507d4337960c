"""Throughput of every model, the ratios that should stay, WinCLIP against one-window-at-a-time encoding, and
``caadbench predict`` on image files against the model alone.

For each architecture (random init: no weights are downloaded) it measures images/s of ``predict`` for every
default model and baseline variant (:data:`MODELS`; the trained ones with freshly initialised trainable tensors:
training does not change their prediction cost), each set against CLIP's and WinCLIP's. Then, in the same run:

* **ratios**: WinCLIP's time per image over CLIP's beside their *token-FLOP ratio* (encoder multiply-adds of the
  full image plus every window over the full image alone, :func:`encoder_flops`), and CoRe-CLIP's (three
  branches) over CLIP's against its goal of at most 3.5x;
* **training**: one optimiser step of APRIL-GAN and AnomalyCLIP on a batch, and CoRe-CLIP's stage-2 step through
  its own trainer (:func:`coreclip_step_seconds`), as steps/s and images/s;
* WinCLIP with the backbone's ``encode_token_subsets`` replaced by a naive reference that encodes each window
  separately (a Python loop of one-subset calls): both must give the same maps; the ratio is printed.

``caadbench predict`` rows: the same ``clip`` model scores ``--predict-images`` PNG files of mixed sizes
(decoding, RGB conversion, resizing, prediction) with :func:`caadbench.predict`, and again through
``caadbench predict``'s writer (plus one overlay PNG per image); each row's images/s is set against
``AnomalyModel.predict`` on tensors already at the input size, measured in the same run.

``--precision`` adds, per model, images/s of ``predict`` under bf16 autocast against fp32 on this device and the
largest score difference (the evidence ``caadbench.utils.devices.CPU_BF16_FASTER`` asks for). Everything is
measured in this run.

    OMP_NUM_THREADS=1 python benchmarks/model_throughput.py --archs caad-tiny ViT-B-16-plus-240 --batch 2
    OMP_NUM_THREADS=2 python benchmarks/model_throughput.py --archs caad-tiny --batch 16 --precision

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

from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.models import ClipBackbone, FitData, create_model
from caadbench.models.feature_cache import IMAGE_FEATURES
from caadbench.utils.devices import cpu_kind, resolve_device

MODELS = ("clip", "clip.ensemble", "clip.few_shot", "winclip", "winclip.context", "winclip.plus", "aprilgan",
          "anomalyclip", "coreclip")
TRAINED = ("aprilgan", "anomalyclip", "coreclip")
CORECLIP_GOAL = 3.5
"""CoRe-CLIP inference (three branches) should take at most this many times CLIP's time."""


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


def precision_rows(arch: str, batch_size: int, repeats: int, device: str,
                   models: tuple[str, ...] = MODELS) -> list:
    """images/s of ``predict`` under bf16 autocast against fp32, per model, on ``device``."""
    backbone = ClipBackbone(arch, pretrained=None, init_seed=0).to(device)
    batch, support = make_batch(batch_size, backbone.image_size, 0), make_batch(1, backbone.image_size, 1)
    rows = []
    for name in models:
        seconds, outs = {}, {}
        for precision in ("fp32", "bf16"):
            model = create_model(name, backbone=backbone, precision=precision).to(device)
            if name in TRAINED:
                model.is_fitted = True  # freshly initialised trainable tensors: training does not change the cost
            else:
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


def encoder_flops(backbone: ClipBackbone, lengths: list[int]) -> float:
    """Multiply-adds ×2 of the image transformer over sequences of the given token counts.

    Per block and sequence of ``L`` tokens of width ``d``: ``24·L·d²`` (QKV, output projection, 4× MLP) plus
    ``4·L²·d`` (attention scores and their weighted sum); the patch embedding and the heads are left out.
    """
    d, blocks = backbone.width("image"), len(backbone.image_blocks)
    return float(blocks * sum(24 * n * d * d + 4 * n * n * d for n in lengths))


def winclip_flop_ratio(backbone: ClipBackbone, model) -> float:
    """WinCLIP's encoder FLOPs per image over CLIP's: the full image plus every window, each with a class token."""
    full = 1 + backbone.grid_size[0] * backbone.grid_size[1]
    windows = [1 + int(model.window_index(k).shape[1]) for k in model.config.scales
               for _ in range(int(model.window_index(k).shape[0]))]
    return encoder_flops(backbone, [full, *windows]) / encoder_flops(backbone, [full])


def coreclip_step_seconds(backbone: ClipBackbone, batch_size: int, steps: int) -> float:
    """Seconds per stage-2 training step of CoRe-CLIP through its own trainer (the text stage off).

    Two fits on the same in-memory batches, of 1 and ``1 + steps`` steps: their difference divided by ``steps``
    leaves out what every fit pays once (trainable init, text prototypes, the first step's allocations).
    """
    size = backbone.image_size
    batches = [make_batch(batch_size, size, 20 + i) for i in range(4)]

    def fit(n: int) -> float:
        model = create_model("coreclip", backbone=backbone, text_steps=0, max_steps=n, progress=False)
        data = FitData(subjects=["cow"], train=lambda epoch: iter(batches), train_size=batch_size * len(batches))
        start = time.perf_counter()
        with torch.enable_grad():
            model.fit(data)
        return time.perf_counter() - start

    fit(1)  # warm-up
    return max(fit(1 + steps) - fit(1), 0.0) / steps


def ratio_table(arch: str, speeds: dict[str, float], flop_ratio: float) -> list:
    """The ratios that should stay: WinCLIP vs CLIP against their FLOP ratio, CoRe-CLIP vs CLIP against its goal."""
    winclip = speeds["clip"] / speeds["winclip"]
    coreclip = speeds["clip"] / speeds["coreclip"]
    return [[arch, "winclip vs clip (time per image)", f"{winclip:.2f}x",
             f"token-FLOP ratio {flop_ratio:.2f}x (time/FLOP ratio {winclip / flop_ratio:.2f})"],
            [arch, "coreclip vs clip (time per image, 3 branches)", f"{coreclip:.2f}x",
             f"goal <= {CORECLIP_GOAL}x: {'met' if coreclip <= CORECLIP_GOAL else 'NOT met'}"]]


def naive_token_subsets(backbone: ClipBackbone) -> Callable:
    """``encode_token_subsets`` done one subset (window) at a time: the reference WinCLIP avoids."""
    vectorised = backbone.encode_token_subsets

    def encode(images, subsets, normalize=True, max_sequences=4096):
        return torch.cat([vectorised(images, subsets[m:m + 1], normalize=normalize) for m in range(len(subsets))], dim=1)

    return encode


def run(arch: str, batch_size: int, repeats: int,
        models: tuple[str, ...] = MODELS) -> tuple[list, list, list, list]:
    backbone = ClipBackbone(arch, pretrained=None, init_seed=0)
    size = backbone.image_size
    batch, support = make_batch(batch_size, size, 0), make_batch(1, size, 1)
    rows, ratio_rows, train_rows, speeds = [], [], [], {}
    for name in models:
        model = create_model(name, backbone=backbone, progress=False) if name in TRAINED else \
            create_model(name, backbone=backbone)
        if name in TRAINED:
            model.is_fitted = True
            model.predict(support)  # text prototypes outside the timing
            if name == "coreclip":
                train_s = coreclip_step_seconds(backbone, batch_size, max(2, repeats))
            else:
                train_s, _ = timed(lambda step=train_step(model): step(batch), repeats)
            train_rows.append([arch, name, batch_size, f"{train_s:.3f}", f"{1 / train_s:.2f}",
                               f"{batch_size / train_s:.2f}"])
        else:
            model.fit(FitData(subjects=["cow"], support=[support]))  # prototypes (and memories) outside the timing
        seconds, _ = timed(lambda model=model: model.predict(batch), repeats)
        speeds[name] = batch_size / seconds
        rows.append([arch, f"{size}px {backbone.grid_size[0]}x{backbone.grid_size[1]}", name, batch_size,
                     f"{seconds:.3f}", f"{batch_size / seconds:.2f}"])
    for row in rows:
        row += [f"{speeds[row[2]] / speeds['clip']:.2f}x", f"{speeds[row[2]] / speeds['winclip']:.2f}x"]
    model = create_model("winclip", backbone=backbone)
    model.fit(FitData(subjects=["cow"]))
    ratios = ratio_table(arch, speeds, winclip_flop_ratio(backbone, model))
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
    return rows, ratio_rows, train_rows, ratios


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["caad-tiny", "ViT-B-16-plus-240"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated subset of the models (clip, winclip and coreclip are always measured)")
    parser.add_argument("--predict-images", type=int, default=10, help="image files for the predict rows (0: none)")
    parser.add_argument("--precision", action="store_true", help="also bf16 vs fp32 predict throughput")
    parser.add_argument("--device", default="auto", help="device of the precision rows (auto | cpu | cuda)")
    args = parser.parse_args(argv)
    chosen = {m.strip() for m in args.models.split(",") if m.strip()} | {"clip", "winclip", "coreclip"}
    unknown = chosen - set(MODELS)
    if unknown:
        parser.error(f"--models: unknown {', '.join(sorted(unknown))} (choose from {', '.join(MODELS)})")
    models = tuple(m for m in MODELS if m in chosen)
    # no_grad scoped to the run (importers, as the tests, keep their grad mode); every call is timed on the same
    # batch, so the feature cache is off: measure the arithmetic, not hits
    with torch.no_grad(), IMAGE_FEATURES.disabled():
        tables(args, models)


def tables(args: argparse.Namespace, models: tuple[str, ...]) -> None:
    """Measure and print every table of the module docstring."""
    rows, ratio_rows, train_rows, ratios, predict, precision = [], [], [], [], [], []
    for arch in args.archs:
        r, q, t, k = run(arch, args.batch, args.repeats, models)
        rows += r
        ratio_rows += q
        train_rows += t
        ratios += k
        if args.predict_images:
            predict += predict_rows(arch, args.predict_images, args.batch, args.repeats)
        if args.precision:
            precision += precision_rows(arch, args.batch, args.repeats, resolve_device(args.device), models)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s) "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), random-init weights, best of {args.repeats}")
    print(tabulate(rows, headers=["backbone", "input", "model", "batch", "s/batch", "images/s", "speed vs clip",
                                  "speed vs winclip"], tablefmt="github"))
    print()
    print(tabulate(ratios, headers=["backbone", "ratio", "measured", "against"], tablefmt="github"))
    print()
    print(tabulate(train_rows, headers=["backbone", "model", "batch", "s/training step", "steps/s",
                                        "training images/s"], tablefmt="github"))
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
