"""Choose CoRe-CLIP's training schedule on the validation part only: train candidates, print what ``val`` says.

Each candidate (``--candidate 'name:key=value,key=value'``, repeatable; the first is the baseline) is trained on
the split's train part by the runner's own fit (``Runner.fit_seed``: the same data, seeds and early stopping on
``val`` as ``caadbench run``) and reported by its validation history, its selected step and validation score,
the stage-1 losses at the end and the mean cos(t0, t1) of the refined prototypes, and the training time. The test
part is never opened. Candidates run one after the other in this process (they share the frozen backbone).

    python benchmarks/coreclip_selection.py --data data/caad-synth --seeds 0 \\
        --candidate 'current:' --candidate 'long text:text_steps=200' --out /tmp/selection.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from caadbench.eval.runner import RunConfig, Runner


def parse_candidate(text: str) -> tuple[str, dict]:
    """``name:key=value,key=value`` → ``(name, {key: value})`` (values parsed as JSON when they parse)."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, _, value = item.partition("=")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value.strip()
    return name.strip(), options


def summarize(model, wall: float) -> dict:
    log = model.train_log or {}
    stage1 = (log.get("stage1") or {}).get("losses_last", {})
    selection = log.get("selection") or {}
    return {"val_history": [(h["step"], round(100 * h["score"], 1)) for h in selection.get("history", [])],
            "selected_step": selection.get("selected_step"), "stopped_at": selection.get("stopped_at"),
            "val_score": selection.get("val_score"), "stage1_last": stage1,
            "stage2_last": (log.get("stage2") or {}).get("losses_last", {}), "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="cc")
    ap.add_argument("--model", default="coreclip")
    ap.add_argument("--backbone", default="caad-tiny")
    ap.add_argument("--pretrained", default="world")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--candidate", action="append", required=True)
    ap.add_argument("--out", type=Path, default=None, help="append one JSON line per candidate and seed here")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    runner = Runner(RunConfig(model=args.model, split=args.split, data=args.data, backbone=args.backbone,
                              pretrained=args.pretrained, seeds=tuple(seeds), progress=False, select="early-stop",
                              out=Path("/tmp/coreclip-selection")))
    backbone = runner._backbone().to(runner.device)
    for text in args.candidate:
        name, options = parse_candidate(text)
        for seed in seeds:
            start = time.perf_counter()
            model = runner.fit_seed(seed, backbone, **options)
            row = {"candidate": name, "options": options, "seed": seed, **summarize(model, time.perf_counter() - start)}
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
