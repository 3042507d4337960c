"""``caadbench pretrain``: world weights, a small CLIP pretrained on the captioned synthetic world."""

from __future__ import annotations

from pathlib import Path

import click

from caadbench.cli import main
from caadbench.models.world.config import PRECISIONS, PretrainConfig

DEFAULTS = PretrainConfig()


@main.command("pretrain")
@click.option("--arch", default=DEFAULTS.arch, show_default=True, help="open_clip architecture to pretrain.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Weights file to write (.safetensors); its recipe, log and resumable state go beside it.")
@click.option("--image-size", type=int, default=None, help="Model input side.  [default: the architecture's]")
@click.option("--scenes", type=int, default=DEFAULTS.scenes, show_default=True, help="World scenes to draw.")
@click.option("--world-seed", type=int, default=DEFAULTS.world_seed, show_default=True,
              help="Seed of the world scenes (disjoint from benchmark builds).")
@click.option("--steps", type=int, default=DEFAULTS.steps, show_default=True, help="Optimisation steps.")
@click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True,
              help="Image-caption pairs per step (global, over every process).")
@click.option("--closeup-share", type=float, default=DEFAULTS.closeup_share, show_default=True,
              help="Share of each batch that are subject close-ups.")
@click.option("--cutout-share", type=float, default=DEFAULTS.cutout_share, show_default=True,
              help="Share of each batch that are subjects alone on a plain backdrop.")
@click.option("--lr", type=float, default=DEFAULTS.lr, show_default=True, help="Peak learning rate (AdamW).")
@click.option("--weight-decay", type=float, default=DEFAULTS.weight_decay, show_default=True)
@click.option("--warmup", type=float, default=DEFAULTS.warmup, show_default=True,
              help="Fraction of steps of linear warm-up before the cosine decay.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True, help="Initialisation and batch-order seed.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=DEFAULTS.precision, show_default=True,
              help="bf16 autocast or fp32 (see docs/world.md for where bf16 is faster).")
@click.option("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every, show_default=True,
              help="Steps between resumable checkpoints (0: none).")
@click.option("--eval-every", type=int, default=DEFAULTS.eval_every, show_default=True,
              help="Steps between held-out zero-shot measurements (0: none).")
@click.option("--eval-scenes", type=int, default=DEFAULTS.eval_scenes, show_default=True,
              help="Held-out scenes for those measurements.")
@click.option("--workers", type=int, default=DEFAULTS.workers, show_default=True,
              help="Processes drawing the world.")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Folder that keeps the drawn world between runs and resumes (keyed by what it depends on).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:i.")
@click.option("--resume", is_flag=True, help="Continue the run whose state lies beside --out.")
@click.option("--force", is_flag=True, help="Start over, replacing --out and its state.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pretrain(arch: str, out: Path, image_size: int | None, scenes: int, world_seed: int, steps: int,
             batch_size: int, closeup_share: float, cutout_share: float, lr: float, weight_decay: float, warmup: float, seed: int,
             precision: str, checkpoint_every: int, eval_every: int, eval_scenes: int, workers: int, cache: Path | None,
             device: str,
             resume: bool, force: bool, quiet: bool) -> None:
    """Pretrain world weights: contrastive image-caption training on the captioned synthetic world.

    Every drawable subject in every drawable context, with captions that describe content only (never whether a
    pair is usual). Runs under torchrun as well (gloo on CPUs, NCCL on GPUs).
    """
    import logging
    import shlex
    import sys

    from caadbench.errors import ModelError
    from caadbench.models.world.train import Pretrainer
    from caadbench.utils import distributed as D
    from caadbench.utils.devices import resolve_device

    if resume and force:
        raise ModelError("pretrain", "--resume and --force exclude each other")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = PretrainConfig(arch=arch, image_size=image_size, scenes=scenes, world_seed=world_seed, steps=steps,
                         batch_size=batch_size, closeup_share=closeup_share, cutout_share=cutout_share, lr=lr, weight_decay=weight_decay,
                         warmup=warmup, seed=seed, precision=precision, checkpoint_every=checkpoint_every,
                         eval_every=eval_every, eval_scenes=eval_scenes, workers=workers)
    device = resolve_device(device)
    ctx = D.init_from_env(device)
    try:
        path = Pretrainer(cfg, out, device=device, resume=resume, force=force, progress=not quiet,
                          cache=cache, command=shlex.join(["caadbench", *sys.argv[1:]])).run()
    finally:
        D.shutdown()
    if ctx.is_main:
        click.echo(f"wrote {path} (recipe {path.name}.json, log {path.name}.log.csv); use it with "
                   f"--backbone {arch} --pretrained {path}")
