"""Train CoRe-CLIP variants on a split's train part and compare them with zero-shot CLIP / WinCLIP on its test part.

Evidence that the method learns what it should (on random-init backbones these are NOT paper numbers):
macro I-AUROC of each model, every loss at the start and end of training, α statistics (mean α per branch,
mean normalised entropy, share of near-one-hot α), the I-AUROC of each branch alone, steps per second, and a
check that prediction ignores masks. Runs under ``torchrun`` too (training split across ranks; rank 0 evaluates).

    caadbench build-shards --size 2900 --image-size 160 --out /tmp/caad-synth
    python benchmarks/coreclip_train.py --data /tmp/caad-synth --split cc --out /tmp/coreclip-cc.json
    torchrun --nproc_per_node 2 benchmarks/coreclip_train.py --data /tmp/caad-synth --baselines none
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from caadbench.data.loader import open_dataset
from caadbench.eval.evaluator import ALL, SEEN, Evaluator, role_of
from caadbench.eval.metrics import auroc, macro_mean
from caadbench.models import FitData, create_model
from caadbench.models.backbone import ClipBackbone
from caadbench.models.coreclip.losses import normalized_entropy
from caadbench.utils import distributed as D


def parse_value(text: str):
    """``key=value`` values: JSON when it parses (numbers, booleans, null), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def evaluate(model, ds, split: str, batch_size: int, seen) -> dict:
    """Macro metrics over subjects, pooled I-AUROC, α and per-branch statistics, and the no-mask check."""
    evaluator = Evaluator(seen_contexts=seen, examples_per_category=0)
    alphas, branch_scores, labels, subjects = [], [], [], []
    mask_check = None
    for batch in ds.batches(split, "test", image_size=model.image_size, batch_size=batch_size):
        out = model.predict(batch)
        evaluator.update(batch, out)
        if mask_check is None:
            garbage = torch.rand(batch.subject_masks.shape, generator=torch.Generator().manual_seed(0)) > 0.5
            other = [model.predict(replace(batch, subject_masks=m)).scores
                     for m in (torch.ones_like(batch.subject_masks), garbage)]
            mask_check = all(torch.equal(o, out.scores) for o in other)
        if "alpha" in out.extras:
            alphas.append(out.extras["alpha"].cpu())
            branch_scores.append(out.extras["branch_scores"].cpu())
        labels += batch.labels.tolist()
        subjects += batch.subjects
    result = evaluator.compute()
    samples = result.samples
    headline = np.array([role_of(v) == result.headline or result.headline == ALL for v in samples.seen])
    row = {"headline": result.headline,
           "macro": {k: float(v) for k, v in result.metrics.items()},
           "pooled_i_auroc": float(auroc(samples.scores[headline], samples.labels[headline])),
           "predict_ignores_masks": mask_check}
    if SEEN in result.scopes:
        row["seen_macro"] = {k: float(v) for k, v in result.scopes[SEEN].metrics.items()}
    if alphas:
        alpha = torch.cat(alphas)
        active = alpha.sum(0) > 0
        a = alpha[:, active]
        row["alpha"] = {
            "mean": [round(float(v), 4) for v in alpha.mean(0)],
            "mean_normalized_entropy": float(normalized_entropy(a).mean()) if a.shape[1] > 1 else None,
            "share_max_above_0.9": float((a.max(dim=1).values > 0.9).float().mean()),
        }
        scores = torch.cat(branch_scores).numpy()
        y, s = np.array(labels), np.array(subjects)
        row["branch_macro_i_auroc"] = [
            None if np.isnan(scores[:, b]).all() else
            macro_mean(auroc(scores[s == subj, b], y[s == subj]) for subj in sorted(set(subjects)))
            for b in range(scores.shape[1])]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="shard directory (caadbench build-shards)")
    p.add_argument("--split", default="cc")
    p.add_argument("--backbone", default="caad-tiny")
    p.add_argument("--pretrained", default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--variants", default="coreclip", help="comma-separated CoRe-CLIP variants")
    p.add_argument("--baselines", default="clip,winclip", help="comma-separated zero-shot baselines, or 'none'")
    p.add_argument("--batch-size", type=int, default=32, help="global training batch")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="CoRe-CLIP config override")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()

    ctx = D.init_from_env(args.device)
    device = D.local_device(args.device)
    torch.manual_seed(args.seed)
    ds = open_dataset(args.data)
    subjects = ds.subjects(args.split)
    train_subjects = ds.subjects(args.split, "train")  # trained models learn from the train part's names only
    seen = {s: v["seen"] for s, v in ds.context_sides(args.split).items()} or None
    backbone = ClipBackbone(args.backbone, args.pretrained, args.image_size).to(device)
    overrides = dict(parse_value_pair(kv) for kv in args.set)
    results: dict = {"data": args.data, "split": args.split, "backbone": backbone.identity.to_dict(),
                     "world_size": ctx.world_size, "device": device, "torch_threads": torch.get_num_threads(),
                     "models": {}}

    def report(name: str, row: dict) -> None:
        results["models"][name] = row
        if ctx.is_main:
            m = row["eval"]["macro"]
            print(f"{name:32s} I-AUROC {100 * m['i_auroc']:5.1f}  pooled {100 * row['eval']['pooled_i_auroc']:5.1f}"
                  f"  P-AUROC {100 * m['p_auroc']:5.1f}", file=sys.stderr, flush=True)

    if ctx.is_main:
        for name in [b for b in args.baselines.split(",") if b and b != "none"]:
            model = create_model(name, backbone=backbone)
            model.fit(FitData(subjects=subjects, device=device))
            report(name, {"eval": evaluate(model, ds, args.split, args.eval_batch_size, seen)})

    per_rank = max(1, args.batch_size // ctx.world_size)
    for k, name in enumerate(v for v in args.variants.split(",") if v):
        model = create_model(name, backbone=backbone, **overrides).to(device)
        if k == 0 and ctx.is_main:
            model.is_fitted = True  # the untrained model: zero-init adapters, initial fusion, frozen text
            report(f"{name} (untrained)", {"eval": evaluate(model, ds, args.split, args.eval_batch_size, seen)})
            model.is_fitted = False
        def train_reader(epoch: int):
            return ds.batches(args.split, "train", image_size=model.image_size, batch_size=per_rank,
                              rank=ctx.rank, world_size=ctx.world_size, shuffle=True, seed=args.seed,
                              epoch=epoch)

        start = time.perf_counter()
        model.fit(FitData(subjects=train_subjects, train=train_reader, train_size=ds.count(args.split, "train"),
                          seed=args.seed, device=device))
        wall = time.perf_counter() - start
        log = {k2: v for k2, v in model.train_log.items()}
        for stage in ("stage1", "stage2"):
            log[stage] = {k2: v for k2, v in log[stage].items() if k2 != "curve"}
        steps = log["stage2"].get("steps", 0)
        log["stage2_steps_per_s_incl_stage1"] = steps / wall if wall else math.nan
        if ctx.is_main:
            report(name, {"eval": evaluate(model, ds, args.split, args.eval_batch_size, seen), "train": log,
                          "config": model.config.to_dict()})
        D.barrier()

    if ctx.is_main:
        text = json.dumps(results, indent=1, sort_keys=True, default=float)
        if args.out:
            Path(args.out).write_text(text)
        print(text)
    D.shutdown()


def parse_value_pair(kv: str) -> tuple[str, object]:
    if "=" not in kv:
        raise SystemExit(f"--set expects KEY=VALUE, got {kv!r}")
    key, value = kv.split("=", 1)
    return key, parse_value(value)


if __name__ == "__main__":
    main()
