"""``caadbench ship-checkpoints``: train the main job's trained methods once and write the shipped checkpoints.

Each model is trained and evaluated exactly as ``caadbench run`` does with the board's settings (``--retrain``,
the runner's default selection), its fitted state is written beside the manifest (:mod:`caadbench.eval.shipped`)
with the dataset identity embedded, and the manifest gets an entry with the file's sha256, the commit, the
command, the training log and the seed's headline I-AUROC (what a run loading the file reproduces).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from caadbench.eval import shipped
from caadbench.eval.provenance import git_state
from caadbench.eval.runner import RunConfig, Runner
from caadbench.models import AnomalyModel, Learning, get_model_spec

logger = logging.getLogger(__name__)


def shipped_models() -> list[str]:
    """The trained models the main job runs by default (CoRe-CLIP, APRIL-GAN, AnomalyCLIP)."""
    from caadbench.eval.quickstart import default_models

    return [m for m in default_models() if get_model_spec(m).learning == Learning.TRAINED]


def command_line(data: str | Path, split: str, backbone: str, pretrained: str, seed: int,
                 models: Sequence[str]) -> str:
    """The exact command that makes these checkpoints (recorded in every entry)."""
    return (f"caadbench ship-checkpoints --data {data} --split {split} --backbone {backbone} "
            f"--pretrained {pretrained} --seed {seed} --models {','.join(models)}")


def ship_checkpoints(
    *,
    data: str | Path,
    models: Sequence[str] | None = None,
    split: str = "cc",
    backbone: str = "caad-tiny",
    pretrained: str = "world",
    seed: int = 0,
    work: Path = Path("runs/ship-checkpoints"),
    manifest: Path | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Train seed ``seed`` of each model, write its shipped file and (re)write the manifest; return its path.

    Args:
        data: the shard directory the main job evaluates (the files are refused on any other).
        models: trained registry names (default :func:`shipped_models`).
        split, backbone, pretrained: as the board's defaults (``leaderboards/board.yaml``).
        seed: the seed shipped.
        work: where the training runs' results and trainer checkpoints go.
        manifest: the manifest to write (default :data:`caadbench.eval.shipped.MANIFEST`); files go beside it.
        options: per model name, option overrides (tests train briefly; the shipped files use none, as the main
            job does).
        echo: where progress lines go (default: this module's logger).
    """
    echo = echo or logger.info
    manifest = Path(manifest or shipped.MANIFEST)
    models = list(models or shipped_models())
    commit, dirty = git_state()
    if dirty:
        echo("warning: the working tree has uncommitted changes: the recorded commit does not fully describe "
             "the code that trained these checkpoints")
    command = command_line(data, split, backbone, pretrained, seed, models)
    entries = {(e["model"], e["seed"]): e for e in shipped.read_manifest(manifest)}
    for i, name in enumerate(models, 1):
        echo(f"[{i}/{len(models)}] training {name} seed {seed} on {data} {split}")
        runner = Runner(RunConfig(model=name, split=split, data=data, backbone=backbone, pretrained=pretrained,
                                  seeds=(seed,), out=Path(work), retrain=True, progress=progress,
                                  options=dict((options or {}).get(name, {}))))
        if runner.learning != Learning.TRAINED:
            from caadbench.errors import ModelError

            raise ModelError(name, f"is a {runner.learning} model: only trained models are shipped")
        made: dict[str, Any] = {}

        def keep(s: int, model: AnomalyModel) -> None:
            wanted = runner.shipped_wanted(model, s)
            file = f"{runner.results_path(model.identity).stem}_seed{s}.safetensors"
            path = shipped.save(model, manifest.parent / file, wanted.dataset)
            made.update(wanted=wanted, path=path)

        results_path = runner.run(on_fitted=keep)
        from caadbench.eval.results import read_results
        from caadbench.utils.hashing import sha256_file

        res = read_results(results_path)
        wanted, path = made["wanted"], made["path"]
        entries[(name, seed)] = {
            "model": name, "seed": seed, "file": path.name, "sha256": sha256_file(path),
            "bytes": path.stat().st_size, "commit": commit, "dirty": bool(dirty), "command": command,
            "dataset": wanted.dataset | {"id": res.dataset}, "train_data": vars(res.train_data),
            "backbone": wanted.backbone, "config": wanted.config, "config_sha256": shipped.config_sha256(wanted.config),
            "run": wanted.run, "training": res.training[str(seed)], "i_auroc": res.metrics["i_auroc"].per_seed[0]}
        echo(f"      {path.name}: {path.stat().st_size / 1e6:.2f} MB, I-AUROC {100 * entries[(name, seed)]['i_auroc']:.1f}")
    out = shipped.write_manifest(list(entries.values()), manifest)
    echo(f"wrote {out} ({len(entries)} checkpoints)")
    return out


__all__ = ["command_line", "ship_checkpoints", "shipped_models"]
