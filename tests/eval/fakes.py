"""A realistic fake run for the evaluation tests: batches and model outputs of a contextual test set.

Subjects are discs on coloured context backgrounds; a pair's label comes from a rulebook; scores and maps
separate anomalous from normal pairs with a per-pair difficulty (some pairs inverted, as a failing method
would), so the report has something to show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.eval.evaluator import Evaluator
from caadbench.eval.examples import examples_path, write_examples
from caadbench.eval.provenance import Provenance
from caadbench.eval.results import build_results, dumps, write_results
from caadbench.eval.schema import Results
from caadbench.models.base import AnomalyOutput

SUBJECTS = ["bicycle", "boat", "car", "cow", "dog", "person"]
CONTEXTS = ["beach", "highway", "kitchen", "lake", "meadow", "office", "pasture", "street"]
CONTEXT_COLORS = np.random.default_rng(7).uniform(0.15, 0.85, size=(len(CONTEXTS), 3))
SUBJECT_COLORS = np.random.default_rng(8).uniform(0.0, 1.0, size=(len(SUBJECTS), 3))


def rulebook(seed: int = 0) -> dict[tuple[str, str], int]:
    """(subject, context) → label, with about one pair in eight excluded."""
    rng = np.random.default_rng(seed)
    rules = {}
    for subject in SUBJECTS:
        order = rng.permutation(len(CONTEXTS))
        for rank, c in enumerate(order):
            if rank == 7:
                continue  # excluded pair
            rules[subject, CONTEXTS[c]] = int(rank % 2)
    return rules


def seen_contexts(rules, seed: int = 0) -> dict[str, list[str]]:
    """Per subject: one normal and one anomalous context are seen, the rest unseen."""
    out = {}
    for subject in SUBJECTS:
        normal = sorted(c for (s, c), y in rules.items() if s == subject and y == 0)
        anomalous = sorted(c for (s, c), y in rules.items() if s == subject and y == 1)
        out[subject] = [normal[0], anomalous[0]]
    return out


def make_batches(n_per_pair: int = 4, size: int = 64, batch_size: int = 16, seed: int = 0,
                 data_seed: int = 0, signal: float = 1.0) -> list[tuple[Batch, AnomalyOutput]]:
    """Predicted test batches; ``seed`` changes the scores (as a few-shot seed would), not the images; ``signal``
    scales how far the scores separate the labels (0: a model at chance)."""
    rules = rulebook(data_seed)
    rng_data = np.random.default_rng(data_seed)
    rng = np.random.default_rng(1000 + seed)
    difficulty = {pair: rng_data.normal(1.2, 1.1) for pair in sorted(rules)}
    items = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for (subject, context), label in sorted(rules.items()):
        for k in range(n_per_pair):
            cx, cy, r = rng_data.uniform(0.3, 0.7), rng_data.uniform(0.3, 0.7), rng_data.uniform(0.12, 0.22)
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
            img = np.empty((size, size, 3))
            img[:] = CONTEXT_COLORS[CONTEXTS.index(context)]
            img += rng_data.normal(0, 0.04, img.shape)
            img[disc] = SUBJECT_COLORS[SUBJECTS.index(subject)]
            shift = difficulty[subject, context] * (1 if label else -1) * 0.6 * signal
            score = 1 / (1 + np.exp(-(shift + rng.normal(0, 0.9))))
            amap = rng.normal(0, 0.25, (size, size)) + (disc * (0.4 + 0.5 * shift) if label else 0)
            items.append((f"{subject}-{context}-{k:03d}", subject, context, label, img, disc, score, amap))
    order = np.random.default_rng(data_seed + 5).permutation(len(items))
    items = [items[i] for i in order]
    out = []
    R = EVAL_RESOLUTION
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        discs = torch.tensor(np.stack([c[5] for c in chunk]))
        gt = torch.nn.functional.interpolate(discs[:, None].float(), size=(R, R), mode="nearest")[:, 0].bool()
        gt &= torch.tensor([c[3] for c in chunk], dtype=torch.bool)[:, None, None]
        batch = Batch(
            images=torch.tensor(np.stack([c[4] for c in chunk]), dtype=torch.float32).permute(0, 3, 1, 2).clamp(0, 1),
            subject_masks=discs,
            gt_masks=gt,
            labels=torch.tensor([c[3] for c in chunk]),
            keys=[c[0] for c in chunk],
            subjects=[c[1] for c in chunk],
            contexts=[c[2] for c in chunk],
        )
        output = AnomalyOutput(scores=torch.tensor([c[6] for c in chunk], dtype=torch.float32),
                               maps=torch.tensor(np.stack([c[7] for c in chunk]), dtype=torch.float32))
        out.append((batch, output))
    return out


def fake_provenance(random_init: bool = True, arch: str = "caad-tiny", weights: str | None = None) -> Provenance:
    weights = weights or ("random-init" if random_init else "openclip:laion400m_e32")
    return Provenance(
        package_version="0.1.0", git_commit="0123456789abcdef0123456789abcdef01234567", git_dirty=False,
        torch_version="2.x", open_clip_version="3.x", backbone_arch=arch, image_size=128 if random_init else 240,
        weights=weights, weights_sha256="random-init" if weights == "random-init" else "ab" * 32, init_seed=0,
        dataset_fingerprint="f" * 16, dataset_path="data/caad-synth", device="cpu", wall_time_s=12.5,
        images_per_s=31.0, peak_memory_bytes=512 * 2**20, peak_memory_kind="cpu-peak-rss", python="3.11",
        platform="linux", command="caadbench run --model coreclip --split cc",
    )


def fake_results(seeds=(0, 1), *, model: str = "coreclip", dataset: str = "caad-synth", split: str = "cc",
                 shots: int = 0, random_init: bool = True, n_per_pair: int = 4, seen: bool = True,
                 examples: bool = False, weights: str | None = None, learning: str = "trained",
                 signal: float = 1.0, extras: bool = False) -> tuple[Results, object]:
    """A results object built through the real Evaluator; ``seen`` marks some contexts as seen (so the run has
    seen test images and a gap; without, every test context is unseen, as on shards built before the hold-out);
    ``signal`` as in :func:`make_batches`; ``extras``: the outputs carry CoRe-CLIP-like diagnostic extras (the run
    gets a diagnosis)."""
    from tests.eval.diagnosis_fakes import COLUMNS, FAMILIES, with_extras

    rules = rulebook()
    evaluations, example_set = [], None
    for seed in seeds:
        ev = Evaluator(seen_contexts(rules) if seen else {}, examples_per_category=2 if examples else 0,
                       families=FAMILIES if extras else None, extras_columns=COLUMNS if extras else None)
        batches = make_batches(n_per_pair=n_per_pair, seed=seed, signal=signal)
        for batch, output in with_extras(batches, seed) if extras else batches:
            ev.update(batch, output)
        evaluations.append(ev.compute())
        if example_set is None and examples:
            example_set = ev.examples()
    results = build_results(
        model=model, learning=learning, dataset=dataset, split=split, shots=shots, seeds=list(seeds),
        evaluations=evaluations, support_keys={}, config={"backbone": "caad-tiny"},
        provenance=fake_provenance(random_init, weights=weights), n_resamples=FAKE_RESAMPLES,
    )
    return results, example_set


FAKE_RESAMPLES = 100
"""Bootstrap resamples of fake runs (the default's tenth: tests check the intervals' logic, not their precision)."""

V2_FIELDS = ("headline", "seen", "gap", "categories")


def version_1_document(results: Results) -> dict:
    """``results`` as a schema-1 file would hold it (written before seen test images existed)."""
    doc = json.loads(dumps(results))
    for key in V2_FIELDS:
        doc.pop(key)
    doc["schema_version"] = 1
    return doc


def write_fake_run(path: Path, *, examples: bool = True, **kwargs) -> Path:
    """Write a fake results file (and its examples sidecar) to ``path``."""
    results, example_set = fake_results(examples=examples, **kwargs)
    write_results(path, results)
    if example_set is not None:
        write_examples(examples_path(path), example_set)
    return path
