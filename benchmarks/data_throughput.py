"""Shard build and read throughput, against references measured in the same run.

Build: images/s of ``build_shards`` on the synthetic source with 1 and 2 encoding workers (ratio 2/1), and a
check that both builds are byte-identical.
Read: images/s of the shard reader (``ds.batches``) over every stored image against reading the same images
as a folder of PNG files (+ mask PNG + JSON per sample) through the same decode/resize/collate code, both in
one process; the same shard reader on the same directory served over loopback HTTP (a threaded
``http.server`` on 127.0.0.1 in this process: ``--data http://…``), with the HTTP/folder ratio (goal ≥ 0.9);
and the shard reader with 2 DataLoader workers; all of these with the sample cache off
(:mod:`caadbench.data.sample_cache`: every timed read decodes). Last, the shard reader once a first read in the
same process has left the prepared samples in the cache (what a second model or seed of one ``quickstart`` or
``run`` process reads). Reads are timed in interleaved rounds and the best of each is kept (all then read from a
warm page cache).

    OMP_NUM_THREADS=1 python benchmarks/data_throughput.py --size 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from caadbench.data.loader import collate, open_dataset, prepare_sample
from caadbench.data.sample_cache import SAMPLES
from caadbench.data.shards import MEMBERS, build_shards, decode_record, iter_records, read_shard
from caadbench.data.sources import get_source_class
from caadbench.utils.static_server import serve_directory


def _uncached(fn):
    """``fn()`` with the sample cache off (each timed read decodes, as a first read does)."""
    with SAMPLES.disabled():
        return fn()


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def export_folder(ds, split: str, parts: list[str], folder: Path) -> list[str]:
    """Write the samples of ``split``'s ``parts`` as ``<key>.image.png``, ``<key>.mask.png``, ``<key>.json``."""
    folder.mkdir(parents=True)
    keys = []
    for part in parts:
        for entry in ds.manifest.part_shards(split, part):
            for key, members in iter_records(read_shard(ds.root, entry), entry.path):
                for ext, data in members.items():
                    (folder / f"{key}.{ext}").write_bytes(data)
                keys.append(key)
    return keys


def read_folder(folder: Path, keys: list[str], image_size: int, batch_size: int) -> int:
    """Read every key's three files, decode, resize and collate exactly as the shard reader does."""
    n, items = 0, []
    for key in keys:
        members = {ext: (folder / f"{key}.{ext}").read_bytes() for ext in MEMBERS}
        items.append(prepare_sample(decode_record(key, members, str(folder / key)), image_size))
        if len(items) == batch_size:
            n += len(collate(items))
            items = []
    return n + (len(collate(items)) if items else 0)


def read_shards(ds, split: str, parts: list[str], image_size: int, batch_size: int, workers: int) -> int:
    return sum(len(b) for part in parts
               for b in ds.batches(split, part, image_size=image_size, batch_size=batch_size, workers=workers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300, help="synthetic images")
    ap.add_argument("--image-size", type=int, default=256, help="generated image side")
    ap.add_argument("--read-size", type=int, default=224, help="model input side for reading")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="timed read rounds (the best is kept)")
    args = ap.parse_args()

    def source():
        return get_source_class("synthetic")(seed=args.seed, size=args.size, image_size=args.image_size)

    with tempfile.TemporaryDirectory(prefix="caad-bench-") as tmp:
        tmp = Path(tmp)
        builds = {}
        for workers in (1, 2):
            seconds, manifest = _timed(lambda w=workers: build_shards(source(), tmp / f"w{w}", seed=args.seed,
                                                                      workers=w, progress=False))
            builds[workers] = (seconds, manifest)
        built = builds[1][1]
        n = built.num_samples
        identical = built == builds[2][1] and all(
            (tmp / "w1" / e.path).read_bytes() == (tmp / "w2" / e.path).read_bytes() for e in built.shards)
        print(f"build ({n} images at {args.image_size}px, splits {', '.join(sorted(built.splits))}, "
              f"{len(built.shards)} shards, {built.total_bytes / 1e6:.1f} MB)")
        for workers, (seconds, _) in builds.items():
            print(f"  {workers} worker{'s' if workers > 1 else ' '}: {seconds:6.2f} s  {n / seconds:7.1f} images/s")
        print(f"  speed-up 2 vs 1 workers: {builds[1][0] / builds[2][0]:.2f}x; byte-identical: {identical}")

        ds = open_dataset(tmp / "w1")
        split, parts = "cc", ["train", "test"]  # cc train + test = every image exactly once
        keys = export_folder(ds, split, parts, tmp / "folder")
        m = len(keys)
        with serve_directory(tmp / "w1") as url:
            remote = open_dataset(url)
            runs = {
                "folder of PNG+mask+json, 1 process": lambda: read_folder(tmp / "folder", keys, args.read_size,
                                                                            args.batch_size),
                "shard reader, workers=0": lambda: read_shards(ds, split, parts, args.read_size, args.batch_size, 0),
                "shard reader over HTTP, workers=0": lambda: read_shards(remote, split, parts, args.read_size,
                                                                         args.batch_size, 0),
                "shard reader, workers=2": lambda: read_shards(ds, split, parts, args.read_size, args.batch_size, 2),
            }
            uncached = {name: (lambda fn=fn: _uncached(fn)) for name, fn in runs.items()}
            held = "shard reader, workers=0, samples held (a later read in one process)"
            read_shards(ds, split, parts, args.read_size, args.batch_size, 0)  # fills the sample cache, untimed
            runs = {**uncached, held: lambda: read_shards(ds, split, parts, args.read_size, args.batch_size, 0)}
            times = {name: float("inf") for name in runs}
            for _ in range(args.rounds):  # interleaved, so load from other processes hits every reader alike
                for name, fn in runs.items():
                    seconds, count = _timed(fn)
                    assert count == m, (name, count, m)
                    times[name] = min(times[name], seconds)
        ref = times["folder of PNG+mask+json, 1 process"]
        print(f"read ({m} images -> {args.read_size}px batches of {args.batch_size}, masks at 256px)")
        for name, seconds in times.items():
            print(f"  {name:70s} {seconds:6.2f} s  {m / seconds:7.1f} images/s  {ref / seconds:5.2f}x folder")
        http = times["shard reader, workers=0"] / times["shard reader over HTTP, workers=0"]
        print(f"  loopback HTTP vs local shard directory (both workers=0): {http:.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
