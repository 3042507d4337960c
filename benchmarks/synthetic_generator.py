"""Synthetic generator speed, and a contact sheet to look at.

Prints milliseconds per image of ``SyntheticSource.load`` at a given size on one core, next to the time to
PNG-encode the same images (the reference measured in the same run: what every shard build pays anyway).
With ``--sheet PATH`` also writes a contact sheet of the first samples (subject, context, label under each;
``--masks`` outlines the subject mask in red).

    OMP_NUM_THREADS=1 python benchmarks/synthetic_generator.py --count 200 --sheet /tmp/synthetic_sheet.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from caadbench.data.imageio import encode_png
from caadbench.data.sources import get_source_class


def contact_sheet(samples: list, cols: int = 8, tile: int = 192, masks: bool = False) -> Image.Image:
    """Grid of samples with ``subject / context / N|A`` written under each."""
    rows = (len(samples) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 16)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, s in enumerate(samples):
        im = Image.fromarray(s.image)
        if masks:
            m = Image.fromarray(s.mask)
            edge = np.asarray(m.filter(ImageFilter.MaxFilter(3))) != np.asarray(m.filter(ImageFilter.MinFilter(3)))
            arr = np.asarray(im).copy()
            arr[edge] = (255, 0, 0)
            im = Image.fromarray(arr)
        x, y = (i % cols) * tile, (i // cols) * (tile + 16)
        sheet.paste(im.resize((tile, tile), Image.BILINEAR), (x, y))
        draw.text((x + 3, y + tile + 2), f"{s.subject} / {s.context} / {'A' if s.label else 'N'}",
                  fill=(200, 0, 0) if s.label else (0, 0, 0))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200, help="images to time")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", default=None, help="write a contact sheet of the first 32 samples here")
    ap.add_argument("--masks", action="store_true", help="outline the masks on the sheet")
    args = ap.parse_args()
    src = get_source_class("synthetic")(seed=args.seed, size=max(args.count, 32), image_size=args.image_size)
    specs = src.specs()[: args.count]
    t0 = time.perf_counter()
    samples = [src.load(spec) for spec in specs]
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in samples:
        encode_png(s.image)
        encode_png(s.mask)
    enc = time.perf_counter() - t0
    n = len(samples)
    print(f"synthetic generator, {n} images of {args.image_size} px, one process")
    print(f"  generate: {gen / n * 1000:.1f} ms/image ({n / gen:.0f} images/s)")
    print(f"  PNG-encode image+mask (reference): {enc / n * 1000:.1f} ms/image")
    print(f"  generate / encode ratio: {gen / enc:.2f}")
    print(f"  default set (3,000 images) would take about {gen / n * 3000:.0f} s to generate on one core")
    if args.sheet:
        contact_sheet(samples[:32], masks=args.masks).save(args.sheet)
        print(f"  contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
