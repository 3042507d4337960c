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
from caadbench.paths import DEFAULT_DATA

if TYPE_CHECKING:
    from caadbench.data.manifest import Manifest

DEFAULT_OUT = {"synthetic": DEFAULT_DATA}


def _source(name: str, root: Path | None, seed: int, size: int | None, image_size: int | None,
            mask_threshold: float | None = None):
    """Construct a registered source from the CLI options (unset options keep the source's defaults)."""
    from caadbench.data.sources import get_source_class

    cls = get_source_class(name)
    params = inspect.signature(cls.__init__).parameters
    root_param = params.get("root")
    if root is None and root_param is not None and root_param.default is inspect.Parameter.empty:
        raise CaadError(f"--source {name}", "needs --root DIR (the dataset's directory)")
    if mask_threshold is not None and "mask_threshold" not in params:
        raise CaadError(f"--source {name}", "reads no mask files; --mask-threshold does not apply")
    kwargs: dict[str, Any] = {"seed": seed}
    for key, value in (("root", root), ("size", size), ("image_size", image_size),
                       ("mask_threshold", mask_threshold)):
        if value is not None:
            kwargs[key] = value
    return cls(**kwargs)


def _masks_line(manifest: Manifest) -> str | None:
    """One line on how mask files were read (binarised anti-aliased masks, missing masks), or ``None``."""
    m = manifest.masks or {}
    parts = []
    if m.get("threshold") is not None:
        parts.append(f"{m['binarised']} with intermediate values, binarised at {100 * m['threshold']:g} % of full "
                     f"scale ({m['binarised_pixels']} pixels)")
    if m.get("missing"):
        parts.append(f"{m['missing']} anomalous image(s) without a mask (image metrics only)")
    return "masks: " + "; ".join(parts) if parts else None


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


def validation_line(definition: dict[str, Any]) -> str:
    """One line saying what a split's ``val`` part holds (or that the set was built before validation parts)."""
    from caadbench.data.loader import validation_kind

    v = definition.get("validation")
    kind = validation_kind(definition)
    if kind is None:
        return ("validation: none stored (shards built before validation parts): rebuild with `caadbench "
                "build-shards` to select models on it, or run without selection (`--select none`)")
    if kind == "none":
        return f"validation: none ({v.get('why', 'not available for this split')})"
    if kind == "held-out seen contexts":
        shares = sorted({f"{subject} {role}" for subject, roles in v.get("sides", {}).items()
                         for role, how in roles.items() if "image_share" in how})
        tail = (f"; {100 * v['image_fraction']:.0f} % image share of the train contexts for the roles without "
                f"such a context: {', '.join(shares)}") if shares else ""
        return ("validation: whole seen contexts held out from train (per subject and role, each with a relative of "
                f"the same family and role in train){tail}; never trained on, and no image of it is in test")
    if kind == "held-out train subjects":
        return f"validation: held-out train subjects {', '.join(definition.get('val_subjects', []))} (never trained on)"
    return f"validation: {kind}" + (f" ({100 * v['image_fraction']:.0f} %)" if "image_fraction" in v else "")


@main.command("build-shards")
@click.option("--source", "source_name", default="synthetic", show_default=True,
              help="synthetic | composite | caad | mvtec | visa | folder")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="dataset / asset directory")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help=f"output directory [default: {DEFAULT_DATA} for synthetic, data/<source> otherwise]")
@click.option("--seed", type=int, default=0, show_default=True, help="generator and split seed")
@click.option("--size", type=int, default=None, help="number of images of a generated set")
@click.option("--image-size", type=int, default=None, help="side in pixels of generated images")
@click.option("--workers", type=int, default=None, help="encoding processes [default: all cores]")
@click.option("--splits", default=None, help="comma-separated split names [default: all that apply]")
@click.option("--overwrite", is_flag=True, help="replace an existing output directory")
@click.option("--mask-threshold", type=float, default=None,
              help="mask pixels with intermediate values (anti-aliased edges) are foreground at >= this fraction "
                   "of full scale  [default: 0.5]")
def build_shards_command(source_name: str, root: Path | None, out: Path | None, seed: int, size: int | None,
                         image_size: int | None, workers: int | None, splits: str | None, overwrite: bool,
                         mask_threshold: float | None) -> None:
    """Build a source's splits as WebDataset shards with an index.json manifest."""
    from caadbench.data.shards import build_shards

    out = out or DEFAULT_OUT.get(source_name, Path("data") / source_name)
    source = _source(source_name, root, seed, size, image_size, mask_threshold)
    names = None if splits is None else [s.strip() for s in splits.split(",") if s.strip()]
    start = time.perf_counter()
    manifest = build_shards(source, out, splits=names, seed=seed, workers=workers, overwrite=overwrite)
    elapsed = time.perf_counter() - start
    click.echo(_parts_table(manifest))
    n = manifest.num_samples
    click.echo(f"\n{n} images, {len(manifest.shards)} shards, {manifest.total_bytes / 1e6:.1f} MB "
               f"in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.1f} images/s) -> {out}")
    click.echo(f"fingerprint {manifest.fingerprint}")
    if _masks_line(manifest):
        click.echo(_masks_line(manifest))


@main.command("info")
@click.argument("root")
def info_command(root: str) -> None:
    """Summarise a shard directory or URL: counts, seen/unseen contexts, support shots."""
    from caadbench.data.loader import open_dataset

    ds = open_dataset(root)
    m = ds.manifest
    click.echo(f"{root}: {m.kind} source {m.source.get('name', '?')}, {m.num_samples} images, "
               f"image size {'x'.join(map(str, m.image_size)) if m.image_size else 'mixed'}, seed {m.seed}")
    click.echo(f"fingerprint {ds.fingerprint}")
    if _masks_line(m):
        click.echo(_masks_line(m))
    click.echo()
    click.echo(_parts_table(m))
    for split in ds.splits:
        definition = m.splits[split].definition
        click.echo(f"\n## split {split} ({definition.get('protocol', '')})")
        counts = m.counts[split]
        seen_test = definition.get("seen_test_counts")
        has_val_contexts = any("val" in side for side in ds.context_sides(split).values())
        rows = []
        for subject in ds.subjects(split):
            row: list[Any] = [subject]
            for part in ds.parts(split):
                c = counts[part].subject.get(subject)
                row.append(f"{c.normal}/{c.anomalous}" if c else "0/0")
            if seen_test is not None:
                c = seen_test.get(subject, {"normal": 0, "anomalous": 0})
                row.append(f"{c['normal']}/{c['anomalous']}")
            sides = ds.context_sides(split).get(subject, {"seen": [], "unseen": []})
            row += [", ".join(sides["seen"]), ", ".join(sides["unseen"]) or "-"]
            if has_val_contexts:
                row.append(", ".join(sides.get("val", [])) or "-")
            rows.append(row)
        headers = (["subject"] + [f"{p} normal/anomalous" for p in ds.parts(split)]
                   + (["of which seen test normal/anomalous"] if seen_test is not None else [])
                   + ["seen contexts", "unseen contexts"] + (["val contexts"] if has_val_contexts else []))
        click.echo(tabulate(rows, headers=headers, tablefmt="github"))
        if seen_test is not None:
            total = sum(c["normal"] + c["anomalous"] for c in seen_test.values())
            click.echo(f"seen test images: {total} (a seeded {100 * definition['seen_test_fraction']:.0f} % share, at "
                       "least one image, of every seen (subject, context) pair of 2+ images; never trained on); the "
                       "other test images are of unseen contexts")
        elif split == "cc":
            click.echo("no seen test images (shards built before the seen hold-out): the seen − unseen gap is "
                       "unavailable; rebuild the shards to measure it")
        click.echo(validation_line(definition))
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
