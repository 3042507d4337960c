"""Zero-shot quality of world weights on freshly drawn scenes never used in pretraining.

Draws ``--scenes`` scenes (default 1,500) of every (subject, context) pair from the evaluation seed stream
(``caadbench.data.world.EVAL_SEED``, keys ``worldeval-…``: disjoint from pretraining and from the benchmark),
loads the weights exactly as a user does (``ClipBackbone(arch, pretrained)``) and recognises each scene's subject
with ``a photo of a {subject}.`` and its context with ``a photo of the {context}.``. The same scenes are scored
by the random-init backbone of the same architecture in the same run, as the reference (chance level).
Prints accuracies with chance, per-subject and per-context accuracies, and writes the confusion figure
(subject confusion, context confusion, subject accuracy per subject × context).

    python benchmarks/world_zeroshot.py                                  # the shipped caad-tiny world weights
    python benchmarks/world_zeroshot.py --pretrained runs/world.safetensors --figure runs/world-confusion.png

The bar for the shipped weights (docs/world.md): subject accuracy ≥ 80 % (chance 10 %), context ≥ 90 % (6.7 %).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tabulate import tabulate

from caadbench.data.sources.synthetic.contexts import CONTEXTS
from caadbench.data.sources.synthetic.subjects import SUBJECTS
from caadbench.data.world import EVAL_PREFIX, EVAL_SEED, build_world, world_specs
from caadbench.models import ClipBackbone
from caadbench.models.world.zeroshot import ZeroShotReport, zero_shot


def evaluate(backbone: ClipBackbone, world, batch: int) -> ZeroShotReport:
    return zero_shot(backbone.encode_image, backbone.encode_text, world.scenes, [s.subject for s in world.specs],
                     [s.context for s in world.specs], subject_names=list(SUBJECTS), context_names=list(CONTEXTS),
                     batch_size=batch)


def confusion_figure(report: ZeroShotReport, path: Path, title: str) -> None:
    """Three panels: subject confusion, context confusion, subject accuracy per (subject, context)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(19, 6.2), gridspec_kw={"width_ratios": [1, 1.3, 1.4]})
    rows = report.subject_confusion / report.subject_confusion.sum(1, keepdims=True).clip(min=1)
    ctx_rows = report.context_confusion / report.context_confusion.sum(1, keepdims=True).clip(min=1)
    pair = report.pair_subject_correct / report.pair_counts.clip(min=1)
    panels = [
        (rows, report.subjects, report.subjects, "subject: true (rows) vs predicted",
         f"subject accuracy {100 * report.subject_accuracy:.1f} %"),
        (ctx_rows, report.contexts, report.contexts, "context: true (rows) vs predicted",
         f"context accuracy {100 * report.context_accuracy:.1f} %"),
        (pair, report.contexts, report.subjects, "subject accuracy per subject (rows) x context", ""),
    ]
    for ax, (mat, xs, ys, head, sub) in zip(axes, panels):
        im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(xs)), xs, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(ys)), ys, fontsize=8)
        ax.set_title(f"{head}\n{sub}", fontsize=10)
        for (i, j), v in ((ij, mat[ij]) for ij in zip(*mat.nonzero())):
            if v >= 0.05:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6,
                        color="black" if v > 0.6 else "white")
    fig.colorbar(im, ax=axes, fraction=0.015)
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="caad-tiny")
    p.add_argument("--pretrained", default="world", help="world (the shipped weights), a file, or an open_clip tag")
    p.add_argument("--scenes", type=int, default=1500)
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="seed of the evaluation scenes")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--figure", type=Path, default=Path("runs/world-zeroshot.png"))
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = p.parse_args()

    trained = ClipBackbone(args.arch, args.pretrained)
    reference = ClipBackbone(args.arch, None, init_seed=0)
    start = time.perf_counter()
    world = build_world(world_specs(args.scenes, args.seed, prefix=EVAL_PREFIX), trained.image_size, variants=1,
                        workers=args.workers)
    drawn = time.perf_counter() - start
    report, chance = evaluate(trained, world, args.batch), evaluate(reference, world, args.batch)
    ident = trained.identity
    print(f"\n{args.scenes} fresh scenes (seed {args.seed}, drawn in {drawn:.0f} s); weights {ident.weights} "
          f"({ident.arch}, {ident.image_size} px, sha256 {str(ident.sha256)[:12]})\n")
    print(tabulate([
        ["subject", f"{100 * report.subject_accuracy:.1f}", f"{100 * chance.subject_accuracy:.1f}",
         f"{100 / len(SUBJECTS):.1f}", "≥ 80"],
        ["context", f"{100 * report.context_accuracy:.1f}", f"{100 * chance.context_accuracy:.1f}",
         f"{100 / len(CONTEXTS):.1f}", "≥ 90"],
    ], headers=["accuracy %", args.pretrained, "random init (same run)", "chance", "bar"], tablefmt="github"))
    figures = report.to_dict()
    print("\nper subject:", ", ".join(f"{k} {100 * v:.0f}" for k, v in figures["per_subject_accuracy"].items()))
    print("per context:", ", ".join(f"{k} {100 * v:.0f}" for k, v in figures["per_context_accuracy"].items()))
    confusion_figure(report, args.figure, f"{ident.arch} {ident.weights}: zero-shot on {args.scenes} fresh scenes")
    print(f"\nconfusion figure: {args.figure}")
    if args.json:
        args.json.write_text(json.dumps({"weights": ident.to_dict(), "seed": args.seed, **figures,
                                         "random_init": chance.to_dict()}, indent=2) + "\n")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
