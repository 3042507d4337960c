"""Data commands: ``build-shards``, ``info``, ``verify``."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tabulate import tabulate

from caadbench.cli import main
from caadbench.errors import CaadError

if TYPE_CHECKING:
    from caadbench.data.manifest import Manifest

DEFAULT_OUT = {"synthetic": Path("data/caad-synth")}


def _source(name: str, root: Path | None, seed: int, size: int | None, image_size: int | None):
    """Construct a registered source from the CLI options (unset options keep the source's defaults)."""
    from caadbench.data.sources import get_source_class

    cls = get_source_class(name)
    params = inspect.signature(cls.__init__).parameters
    root_param = params.get("root")
    if root is None and root_param is not None and root_param.default is inspect.Parameter.empty:
        raise CaadError(f"--source {name}", "needs --root DIR (the dataset's directory)")
    kwargs: dict[str, Any] = {"seed": seed}
    for key, value in (("root", root), ("size", size), ("image_size", image_size)):
        if value is not None:
            kwargs[key] = value
    return cls(**kwargs)


def _parts_table(manifest: Manifest) -> str:
    from caadbench.data.splits import PARTS

    rows = []
    for split in sorted(manifest.splits):
        parts = manifest.splits[split].parts
        for part in [p for p in PARTS if p in parts]:
            c = manifest.counts[split][part]
            rows.append((split, part, c.samples, c.label.normal, c.label.anomalous, len(c.subject), len(c.context),
                         len(parts[part].shards)))
    return tabulate(rows, headers=["split", "part", "samples", "normal", "anomalous", "subjects", "contexts",
                                   "shards"], tablefmt="github")


@main.command("build-shards")
@click.option("--source", "source_name", default="synthetic", show_default=True,
              help="synthetic | composite | caad | mvtec | visa | folder")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="dataset / asset directory")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output directory [default: data/caad-synth for synthetic, data/<source> otherwise]")
@click.option("--seed", type=int, default=0, show_default=True, help="generator and split seed")
@click.option("--size", type=int, default=None, help="number of images of a generated set")
@click.option("--image-size", type=int, default=None, help="side in pixels of generated images")
@click.option("--workers", type=int, default=None, help="encoding processes [default: all cores]")
@click.option("--splits", default=None, help="comma-separated split names [default: all that apply]")
@click.option("--overwrite", is_flag=True, help="replace an existing output directory")
def build_shards_command(source_name: str, root: Path | None, out: Path | None, seed: int, size: int | None,
                         image_size: int | None, workers: int | None, splits: str | None, overwrite: bool) -> None:
    """Build a source's splits as WebDataset shards with an index.json manifest."""
    from caadbench.data.shards import build_shards

    out = out or DEFAULT_OUT.get(source_name, Path("data") / source_name)
    source = _source(source_name, root, seed, size, image_size)
    names = None if splits is None else [s.strip() for s in splits.split(",") if s.strip()]
    start = time.perf_counter()
    manifest = build_shards(source, out, splits=names, seed=seed, workers=workers, overwrite=overwrite)
    elapsed = time.perf_counter() - start
    click.echo(_parts_table(manifest))
    n = manifest.num_samples
    click.echo(f"\n{n} images, {len(manifest.shards)} shards, {manifest.total_bytes / 1e6:.1f} MB "
               f"in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.1f} images/s) -> {out}")
    click.echo(f"fingerprint {manifest.fingerprint}")


@main.command("info")
@click.argument("root")
def info_command(root: str) -> None:
    """Summarise a shard directory or URL: counts, seen/unseen contexts, support shots."""
    from caadbench.data.loader import open_dataset

    ds = open_dataset(root)
    m = ds.manifest
    click.echo(f"{root}: {m.kind} source {m.source.get('name', '?')}, {m.num_samples} images, "
               f"image size {'x'.join(map(str, m.image_size)) if m.image_size else 'mixed'}, seed {m.seed}")
    click.echo(f"fingerprint {ds.fingerprint}\n")
    click.echo(_parts_table(m))
    for split in ds.splits:
        definition = m.splits[split].definition
        click.echo(f"\n## split {split} ({definition.get('protocol', '')})")
        counts = m.counts[split]
        rows = []
        for subject in ds.subjects(split):
            row: list[Any] = [subject]
            for part in ds.parts(split):
                c = counts[part].subject.get(subject)
                row.append(f"{c.normal}/{c.anomalous}" if c else "0/0")
            sides = ds.context_sides(split).get(subject, {"seen": [], "unseen": []})
            row += [", ".join(sides["seen"]), ", ".join(sides["unseen"]) or "-"]
            rows.append(row)
        headers = ["subject"] + [f"{p} n/a" for p in ds.parts(split)] + ["seen contexts", "unseen contexts"]
        click.echo(tabulate(rows, headers=headers, tablefmt="github"))
        held = definition.get("held_out_subjects")
        if held:
            click.echo(f"held-out subjects: {', '.join(held)}")
        support = definition.get("support", {})
        if support:
            sizes = support.get("pool_sizes", {})
            click.echo(f"support: shots {', '.join(map(str, support['shots']))}; seeds "
                       f"{', '.join(map(str, support['seeds']))}; from {support.get('pool', '?')} "
                       f"(smallest pool {min(sizes.values()) if sizes else 0})")


@main.command("verify")
@click.argument("root")
def verify_command(root: str) -> None:
    """Re-hash every shard of a directory or URL and check sizes and sample counts; exit non-zero on any mismatch."""
    from caadbench.data.verify import verify_shards

    report = verify_shards(root, progress=True)
    click.echo(f"ok: {report.shards} shards, {report.samples} samples, {report.bytes / 1e6:.1f} MB match "
               f"{report.root / 'index.json'}")
