"""Your first caadbench experiment, end to end, in one file you can copy.

1. build a small synthetic contextual set (CAAD shards) — the same generator as the benchmark, fewer images;
2. run two models on its cross-context split ``cc`` (a zero-shot CLIP baseline and its few-shot variant);
3. load every results file into pandas (one row per run, then one row per run × subject);
4. score a few test images with :func:`caadbench.predict`, as you would your own photos.

Run it (a few minutes on a laptop CPU with the shipped ``world`` weights of ``caad-tiny``)::

    pip install 'caadbench[pandas]'
    python examples/first_benchmark.py --out my-first-run

The equivalents on the command line: ``caadbench build-shards``, ``caadbench run``, ``caadbench results DIR
--format csv`` and ``caadbench predict``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import caadbench
from caadbench.data.loader import open_dataset
from caadbench.data.shards import build_shards, manifest_path
from caadbench.data.sources import get_source_class
from caadbench.eval.runner import RunConfig, run
from caadbench.models import Learning, get_model_spec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example-run"), help="shards, results and predictions")
    parser.add_argument("--images", type=int, default=400, help="images in the synthetic set")
    parser.add_argument("--image-size", type=int, default=128, help="side of the generated images")
    parser.add_argument("--models", default="clip,clip.few_shot", help="comma-separated registry names")
    parser.add_argument("--shots", type=int, default=4, help="normal references per subject (few-shot models)")
    parser.add_argument("--backbone", default="caad-tiny")
    parser.add_argument("--pretrained", default="world", help="world, an open_clip tag, a file, or random-init")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # caadbench logs its progress lines

    # 1. a small synthetic set (built once; a second run reuses it)
    data = args.out / "data"
    if not manifest_path(data).is_file():
        source = get_source_class("synthetic")(seed=0, size=args.images, image_size=args.image_size)
        build_shards(source, data, workers=1, progress=False)

    # 2. two models on the cross-context split: one results JSON each
    results_dir = args.out / "results"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in models:
        shots = args.shots if get_model_spec(name).learning == Learning.FEW_SHOT else 0
        run(RunConfig(model=name, split="cc", data=data, shots=shots, backbone=args.backbone,
                      pretrained=args.pretrained, device=args.device, out=results_dir, progress=False))

    # 3. the results as pandas tables (the same rows as `caadbench results DIR --format csv`)
    runs = caadbench.results_frame(results_dir)
    print(runs[["model", "learning", "shots", "weights", "i_auroc", "i_ap", "p_auroc"]].to_string(index=False))
    subjects = caadbench.results_frame(results_dir, by="subject")
    print(subjects.pivot_table(index="subject", columns="model", values="i_auroc").round(3).to_string())

    # 4. predict on a few test images (tensors here; file paths, folders or PIL images work the same)
    batch = next(open_dataset(data).batches("cc", "test", image_size=args.image_size, batch_size=4))
    predictions = caadbench.predict(list(batch.images), model=models[0], subjects=list(batch.subjects),
                                    backbone=args.backbone, pretrained=args.pretrained, device=args.device)
    for key, subject, label, score in zip(batch.keys, predictions.subjects, batch.labels.tolist(),
                                          predictions.scores.tolist()):
        print(f"{key}: {subject}, true label {label}, anomaly score {score:.4f}")


if __name__ == "__main__":
    main()
