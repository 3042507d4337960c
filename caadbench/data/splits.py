"""Split protocols over sample specs: pure functions, reproducible from a seed.

Contextual sources get three splits (see ``docs/data.md`` for the decisions):

- ``cc`` cross-context: per subject, its normal contexts and its anomalous contexts are each partitioned into
  *seen* and *unseen* (at least one of each kind on each side); ``test`` holds every image of the unseen
  contexts and a seeded share of every seen (subject, context) pair's images (the *seen* test images, never in
  ``train`` or ``support``), ``train`` the rest of the seen contexts' images. A test image is seen exactly when
  its context is listed under ``context_sides[subject]["seen"]``.
- ``ic`` in-context: the same contexts on both sides, disjoint images (stratified per (subject, context)).
- ``cs`` cross-subject: about a quarter of the subjects (at least one) are held out for ``test``; ``train``
  holds the other subjects. A small pool of each held-out subject's normal images is reserved for support
  and excluded from ``test``.

Industrial sources get ``std``: the dataset's own train-good images for ``train``, its test images for ``test``.

Every contextual split also gets a ``val`` part, carved from the train side only and shaped like the test's
shift, for model selection (``docs/evaluation.md``): ``cc`` holds out whole seen contexts per subject and role
(each with a relative of the same family and role that stays in ``train``; a role without such a context gives a
seeded image share of its train contexts instead), ``ic`` a seeded image share of every (subject, context) group,
``cs`` whole train subjects. ``std`` has none (its train part holds normal images only).

Every split also gets k-shot ``support`` keys: per test subject and support seed, a permutation of its support
pool (normal ``train`` images; the reserved pool for ``cs``) whose first k entries are the k-shot set, so the
sets are nested (1 ⊂ 2 ⊂ 4 ⊂ 8 for one seed).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from caadbench.data.sources.base import SampleSpec, SourceKind, check_specs
from caadbench.errors import DataError, SplitError

PARTS = ("train", "val", "support", "test")
CONTEXTUAL_SPLITS = ("cc", "ic", "cs")
INDUSTRIAL_SPLITS = ("std",)
DEFAULT_SHOTS = (1, 2, 4, 8)
DEFAULT_SUPPORT_SEEDS = (0, 1, 2, 3, 4)

CC_UNSEEN_FRACTION = 0.5
"""Share of a subject's normal (and, separately, anomalous) contexts that become unseen in ``cc``."""
CC_SEEN_TEST_FRACTION = 0.2
"""Share of each seen (subject, context) pair's images that ``cc`` holds out into ``test`` as seen test images."""
IC_TEST_FRACTION = 0.4
"""Share of each (subject, context) group's images that go to ``test`` in ``ic``."""
CS_HELD_OUT_FRACTION = 0.25
"""Share of subjects held out for ``test`` in ``cs``."""
VAL_IMAGE_FRACTION = 0.2
"""Image share of ``val``: of each train (subject, context) group in ``ic``; in ``cc`` of a role's train pairs when
the role has no seen context that can be held out whole."""
CS_VAL_FRACTION = 0.25
"""Share of the train subjects that ``cs`` holds out for ``val`` (at least one, leaving one for ``train``)."""

PROTOCOLS = {"cc": "cross-context", "ic": "in-context", "cs": "cross-subject", "std": "dataset train-good / test"}


@dataclass
class Split:
    """One split: its parts as spec lists and its JSON definition for the manifest.

    Attributes:
        name: ``cc``, ``ic``, ``cs`` or ``std``.
        train: specs of the ``train`` part, sorted by key.
        test: specs of the ``test`` part, sorted by key.
        val: specs of the ``val`` part (model selection; carved from the train side), sorted by key.
        pools: per test subject, the specs support sets are drawn from (sorted by key).
        definition: JSON record of how the split was made (seen/unseen contexts, held-out subjects, ...).
        support: ``{str(shots): {str(seed): {subject: [keys]}}}`` once :func:`choose_support` ran.
    """

    name: str
    train: list[SampleSpec]
    test: list[SampleSpec]
    pools: dict[str, list[SampleSpec]]
    definition: dict[str, Any]
    support: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)
    val: list[SampleSpec] = field(default_factory=list)

    def support_specs(self) -> list[SampleSpec]:
        """The union of every chosen support sample, sorted by key (the ``support`` part)."""
        chosen = {key for by_seed in self.support.values() for by_subject in by_seed.values()
                  for keys in by_subject.values() for key in keys}
        pool = {s.key: s for specs in self.pools.values() for s in specs}
        return [pool[k] for k in sorted(chosen)]

    def parts(self) -> dict[str, list[SampleSpec]]:
        """``{"train": [...], "val": [...], "support": [...], "test": [...]}``, each sorted by key."""
        return {"train": self.train, "val": self.val, "support": self.support_specs(), "test": self.test}


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded from its arguments only (not from Python's randomised ``hash``)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _by_key(specs: Iterable[SampleSpec]) -> list[SampleSpec]:
    return sorted(specs, key=lambda s: s.key)


def _context_roles(specs: Iterable[SampleSpec]) -> dict[str, dict[str, str]]:
    """Per subject, each context's role: ``anomalous`` if any of its images is anomalous, else ``normal``."""
    roles: dict[str, dict[str, str]] = defaultdict(dict)
    for s in specs:
        if s.label == 1:
            roles[s.subject][s.context] = "anomalous"
        else:
            roles[s.subject].setdefault(s.context, "normal")
    return {subj: dict(sorted(ctx.items())) for subj, ctx in sorted(roles.items())}


def _require_both_labels(name: str, side: str, specs: Sequence[SampleSpec], subjects: Iterable[str],
                         where: str) -> None:
    """Every subject in ``subjects`` needs a normal and an anomalous image on ``side``."""
    labels: dict[str, set[int]] = defaultdict(set)
    for s in specs:
        labels[s.subject].add(s.label)
    for subject in sorted(subjects):
        for label, word in ((0, "normal"), (1, "anomalous")):
            if label not in labels.get(subject, set()):
                raise SplitError(where, f"subject {subject!r} has no {word} context on the {side} side "
                                        f"of split {name}")


def _hold_out(contexts: list[str], families: Mapping[str, str], rng: random.Random,
              fraction: float) -> list[str]:
    """Choose the unseen contexts among ``contexts`` (all of one subject and one role).

    Only a context with a relative (same family) that stays seen is a candidate, at most all but one per
    family, taken round-robin over families in seeded order; without any candidate, contexts are drawn freely.
    The target is ``fraction`` of the contexts rounded half up (``⌈n/2⌉`` for the default half), at least one,
    leaving at least one seen: a role of three contexts puts two on the test side, so its between-context
    variation is measurable there (a role with one test context has none, ``docs/evaluation.md``).
    """
    target = min(len(contexts) - 1, max(1, math.floor(len(contexts) * fraction + 0.5)))
    groups: dict[str, list[str]] = defaultdict(list)
    for c in sorted(contexts):
        groups[families.get(c, c)].append(c)
    rounds: list[list[str]] = []
    for family in sorted(groups):
        members = groups[family]
        rng.shuffle(members)
        rounds.append(members[1:])  # members[0] stays seen
    rng.shuffle(rounds)
    candidates = [r[i] for i in range(max(map(len, rounds))) for r in rounds if i < len(r)]
    if not candidates:
        candidates = sorted(contexts)
        rng.shuffle(candidates)
    return candidates[:target]


def _hold_out_one(contexts: list[str], families: Mapping[str, str], rng: random.Random) -> list[str]:
    """One validation context among a role's seen ``contexts`` (chosen by ``rng``), leaving at least one in train.

    With ``families``, only a member of a family that keeps another member qualifies (so it has a relative with
    the same role in ``train``, as every test context does); none when no family has two. Without families any
    context qualifies.
    """
    if len(contexts) < 2:
        return []
    groups: dict[str, list[str]] = defaultdict(list)
    for c in sorted(contexts):
        groups[families.get(c, c)].append(c)
    candidates = ([c for members in groups.values() if len(members) > 1 for c in members] if families
                  else sorted(contexts))
    return [rng.choice(candidates)] if candidates else []


def _held_out_share(members: list[SampleSpec], rng: random.Random, fraction: float) -> set[str]:
    """Keys of ``round(fraction · n)`` members (at least one, at most ``n − 1``; none of a single image)."""
    if len(members) < 2 or fraction <= 0:
        return set()
    order = [s.key for s in _by_key(members)]
    rng.shuffle(order)
    return set(order[:min(len(order) - 1, max(1, round(len(order) * fraction)))])


def split_cc(specs: Sequence[SampleSpec], seed: int, *, where: str = "source",
             families: Mapping[str, str] | None = None, unseen_fraction: float = CC_UNSEEN_FRACTION,
             seen_test_fraction: float = CC_SEEN_TEST_FRACTION, val_fraction: float = VAL_IMAGE_FRACTION) -> Split:
    """Cross-context split: seen contexts for train/support, unseen contexts (and a share of seen ones) for test,
    held-out seen contexts for val.

    Args:
        families: ``{context: family}`` from the rulebook; when given, a context is held out only if a
            relative with the same role for that subject stays seen (where the subject has such pairs).
        seen_test_fraction: share of every seen (subject, context) pair's images held out into ``test``
            (seeded; at least one image of a pair of two or more, never the pair's last one; 0 disables).
        val_fraction: image share of a role's train pairs that goes to ``val`` when the role has no seen context
            that can be held out whole (0 disables the share).

    The ``val`` part holds, per subject and role (normal / anomalous), one whole seen context whose family keeps
    another member of that role in ``train`` (so, like a test context, it has a trained relative); a role
    without such a context contributes ``val_fraction`` of its train pairs' images instead. Val contexts give no
    image to ``test``; ``definition["context_sides"][subject]["val"]`` lists them and
    ``definition["validation"]["sides"]`` records per subject and role whether val holds contexts or an image share.

    Raises:
        SplitError: a subject has fewer than two normal or two anomalous contexts.
    """
    families = dict(families or {})
    roles = _context_roles(specs)
    sides: dict[str, dict[str, list[str]]] = {}
    val_sides: dict[str, dict[str, Any]] = {}
    orphans: dict[str, list[str]] = {}
    unseen_of: dict[str, set[str]] = {}
    val_of: dict[str, set[str]] = {}
    for subject, ctx_roles in roles.items():
        rng = seeded_rng(seed, "cc", subject)
        val_rng = seeded_rng(seed, "cc", "val", subject)
        unseen: list[str] = []
        val: list[str] = []
        val_sides[subject] = {}
        for word in ("normal", "anomalous"):
            contexts = sorted(c for c, r in ctx_roles.items() if r == word)
            if len(contexts) < 2:
                side = "test" if contexts else "train or test"
                have = f"has {len(contexts)}" + (f": {contexts[0]!r}" if contexts else "")
                raise SplitError(where, f"subject {subject!r} has no {word} context on the {side} side of split "
                                        f"cc (needs at least 2 {word} contexts, {have})")
            held = _hold_out(contexts, families, rng, unseen_fraction)
            unseen += held
            kept = {families.get(c, c) for c in contexts if c not in held}
            orphans_here = [c for c in held if families.get(c, c) not in kept]
            if orphans_here:
                orphans.setdefault(subject, []).extend(sorted(orphans_here))
            chosen = _hold_out_one([c for c in contexts if c not in held], families, val_rng)
            val += chosen
            val_sides[subject][word] = ({"contexts": chosen} if chosen
                                        else {"image_share": val_fraction if val_fraction > 0 else 0.0})
        sides[subject] = {"seen": sorted(set(ctx_roles) - set(unseen) - set(val)), "unseen": sorted(unseen),
                          "val": sorted(val)}
        unseen_of[subject] = set(unseen)
        val_of[subject] = set(val)
    if not 0.0 <= seen_test_fraction < 1.0:
        raise SplitError(where, f"seen_test_fraction must be in [0, 1), got {seen_test_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise SplitError(where, f"val_fraction must be in [0, 1), got {val_fraction}")
    seen_pairs: dict[tuple[str, str], list[SampleSpec]] = defaultdict(list)
    for s in specs:
        if s.context not in unseen_of[s.subject] and s.context not in val_of[s.subject]:
            seen_pairs[(s.subject, s.context)].append(s)
    seen_test: set[str] = set()
    val_share: set[str] = set()
    for (subject, context), members in sorted(seen_pairs.items()):
        seen_test |= _held_out_share(members, seeded_rng(seed, "cc", "seen-test", subject, context),
                                     seen_test_fraction)
        if "image_share" in val_sides[subject][roles[subject][context]]:
            rest = [m for m in members if m.key not in seen_test]
            val_share |= _held_out_share(rest, seeded_rng(seed, "cc", "val-share", subject, context), val_fraction)
    unseen_test = _by_key(s for s in specs if s.context in unseen_of[s.subject])
    val_part = _by_key(s for s in specs if s.context in val_of[s.subject] or s.key in val_share)
    held = seen_test | {s.key for s in val_part}
    train = _by_key(s for s in specs if s.context not in unseen_of[s.subject] and s.key not in held)
    test = _by_key([*unseen_test, *(s for s in specs if s.key in seen_test)])
    _require_both_labels("cc", "train", train, roles, where)
    _require_both_labels("cc", "test", unseen_test, roles, where)
    pools = _normal_pools(train)
    seen_counts: dict[str, dict[str, int]] = {subj: {"normal": 0, "anomalous": 0} for subj in roles}
    for s in specs:
        if s.key in seen_test:
            seen_counts[s.subject]["anomalous" if s.label else "normal"] += 1
    definition = {
        "protocol": PROTOCOLS["cc"],
        "seed": seed,
        "unseen_fraction": unseen_fraction,
        "seen_test_fraction": seen_test_fraction,
        "seen_test_counts": seen_counts,
        "context_sides": sides,
        "context_roles": roles,
        "families": {c: families[c] for c in sorted(families)} or None,
        "unseen_without_seen_relative": orphans,
        "validation": {"kind": "held-out seen contexts", "image_fraction": val_fraction, "sides": val_sides},
    }
    return Split("cc", train, test, pools, definition, val=val_part)


def split_ic(specs: Sequence[SampleSpec], seed: int, *, where: str = "source",
             test_fraction: float = IC_TEST_FRACTION, val_fraction: float = VAL_IMAGE_FRACTION) -> Split:
    """In-context split: per (subject, context), a seeded ``test_fraction`` of images to test, the rest to train;
    ``val_fraction`` of each group's remaining train images to val (the test's shift: none, same contexts).

    Each group of at least two images puts at least one on each side. The images of single-image groups are
    pooled per (subject, label) and divided the same way, so small sets still have both labels on both sides.

    Raises:
        SplitError: a subject lacks a normal or an anomalous image on one side.
    """
    groups: dict[tuple[str, str], list[SampleSpec]] = defaultdict(list)
    for s in specs:
        groups[(s.subject, s.context)].append(s)
    for (subject, context), members in list(groups.items()):
        if len(members) == 1:
            del groups[(subject, context)]
            groups[(subject, f"single images, label {members[0].label}")].extend(members)
    train: list[SampleSpec] = []
    test: list[SampleSpec] = []
    val_keys: set[str] = set()
    for (subject, group), members in sorted(groups.items()):
        members = _by_key(members)
        seeded_rng(seed, "ic", subject, group).shuffle(members)
        n_test = min(len(members) - 1, max(1, round(len(members) * test_fraction))) if len(members) > 1 else 0
        test += members[:n_test]
        train += members[n_test:]
        val_keys |= _held_out_share(members[n_test:], seeded_rng(seed, "ic", "val", subject, group), val_fraction)
    val = _by_key(s for s in train if s.key in val_keys)
    train, test = _by_key(s for s in train if s.key not in val_keys), _by_key(test)
    roles = _context_roles(specs)
    _require_both_labels("ic", "train", train, roles, where)
    _require_both_labels("ic", "test", test, roles, where)
    definition = {
        "protocol": PROTOCOLS["ic"],
        "seed": seed,
        "test_fraction": test_fraction,
        "context_sides": {subj: {"seen": sorted(ctx), "unseen": []} for subj, ctx in roles.items()},
        "context_roles": roles,
        "validation": {"kind": "image share of every (subject, context) group", "image_fraction": val_fraction},
    }
    return Split("ic", train, test, _normal_pools(train), definition, val=val)


def split_cs(specs: Sequence[SampleSpec], seed: int, *, where: str = "source",
             held_out_fraction: float = CS_HELD_OUT_FRACTION, pool_size: int = max(DEFAULT_SHOTS),
             val_fraction: float = CS_VAL_FRACTION) -> Split:
    """Cross-subject split: held-out subjects for test, held-out train subjects for val, the others for train.

    ``val`` takes ``val_fraction`` of the non-test subjects (seeded; at least one when at least two remain, so
    ``train`` keeps one), every image of each: selection sees subjects it never trained on, as the test does.

    Each held-out subject reserves ``min(pool_size, n_normal // 2)`` of its normal images (seeded) as its
    support pool; they are excluded from ``test`` (and from ``train``, which has no held-out subject), so
    ``test`` keeps at least half of the subject's normal images.

    Raises:
        SplitError: fewer than two subjects, or a subject lacking a normal or anomalous image on its side.
    """
    roles = _context_roles(specs)
    subjects = sorted(roles)
    if len(subjects) < 2:
        raise SplitError(where, f"split cs needs at least 2 subjects, the source has {len(subjects)}")
    n_held = min(len(subjects) - 1, max(1, round(len(subjects) * held_out_fraction)))
    order = list(subjects)
    seeded_rng(seed, "cs", "subjects").shuffle(order)
    held = set(order[:n_held])
    rest = order[n_held:]
    n_val = min(len(rest) - 1, max(1, round(len(rest) * val_fraction))) if len(rest) > 1 and val_fraction > 0 else 0
    val_subjects = set(rest[:n_val])
    train = _by_key(s for s in specs if s.subject not in held and s.subject not in val_subjects)
    val = _by_key(s for s in specs if s.subject in val_subjects)
    pools: dict[str, list[SampleSpec]] = {}
    reserved: set[str] = set()
    for subject in sorted(held):
        normals = _by_key(s for s in specs if s.subject == subject and s.label == 0)
        seeded_rng(seed, "cs", "pool", subject).shuffle(normals)
        take = min(pool_size, len(normals) // 2)
        pools[subject] = _by_key(normals[:take])
        reserved |= {s.key for s in pools[subject]}
    test = _by_key(s for s in specs if s.subject in held and s.key not in reserved)
    _require_both_labels("cs", "train", train, set(subjects) - held - val_subjects, where)
    _require_both_labels("cs", "test", test, held, where)
    definition = {
        "protocol": PROTOCOLS["cs"],
        "seed": seed,
        "held_out_fraction": held_out_fraction,
        "held_out_subjects": sorted(held),
        "train_subjects": sorted(set(subjects) - held - val_subjects),
        "val_subjects": sorted(val_subjects),
        "support_pool_size": pool_size,
        "support_pools": {subj: [s.key for s in pool] for subj, pool in pools.items()},
        "context_sides": {subj: {"seen": sorted(ctx), "unseen": []} for subj, ctx in roles.items()},
        "context_roles": roles,
        "validation": {"kind": "held-out train subjects", "subject_fraction": val_fraction},
    }
    return Split("cs", train, test, pools, definition, val=val)


def split_std(specs: Sequence[SampleSpec], seed: int, *, where: str = "source") -> Split:
    """Industrial split: ``train`` = the dataset's train-good images, ``test`` = its test images.

    Raises:
        SplitError: a spec without ``origin_split``, or no test image at all.
    """
    for s in specs:
        if s.origin_split not in ("train", "test"):
            raise SplitError(s.source or where, f"sample {s.key!r} has origin_split {s.origin_split!r}; "
                                                "split std needs 'train' or 'test'")
    train = _by_key(s for s in specs if s.origin_split == "train" and s.label == 0)
    test = _by_key(s for s in specs if s.origin_split == "test")
    if not test:
        raise SplitError(where, "split std has no test images (no sample with origin_split 'test')")
    subjects = sorted({s.subject for s in specs})
    definition = {
        "protocol": PROTOCOLS["std"],
        "seed": seed,
        "subjects": subjects,
        "context_sides": {subj: {"seen": sorted({s.context for s in specs if s.subject == subj}), "unseen": []}
                          for subj in subjects},
        "validation": {"kind": "none", "why": "the train part holds normal images only (no anomalous image to "
                                              "select on)"},
    }
    pools = _normal_pools(train)
    for subject in sorted({s.subject for s in test}):
        pools.setdefault(subject, [])
    return Split("std", train, test, pools, definition)


def _normal_pools(train: Iterable[SampleSpec]) -> dict[str, list[SampleSpec]]:
    pools: dict[str, list[SampleSpec]] = defaultdict(list)
    for s in train:
        if s.label == 0:
            pools[s.subject].append(s)
    return {subj: _by_key(p) for subj, p in sorted(pools.items())}


def choose_support(split: Split, seed: int, shots: Sequence[int] = DEFAULT_SHOTS,
                   support_seeds: Sequence[int] = DEFAULT_SUPPORT_SEEDS) -> Split:
    """Fill ``split.support`` with nested k-shot key lists for every test subject and support seed.

    A subject whose pool is smaller than k gets the whole pool; the reader refuses such a set when asked for k.
    """
    shots = sorted({int(k) for k in shots})
    if not shots or shots[0] < 1:
        raise SplitError(None, f"support shots must be positive integers, got {list(shots)}")
    test_subjects = sorted({s.subject for s in split.test})
    support: dict[str, dict[str, dict[str, list[str]]]] = {str(k): {} for k in shots}
    for sseed in support_seeds:
        for subject in test_subjects:
            keys = [s.key for s in split.pools.get(subject, [])]
            seeded_rng(seed, split.name, "support", sseed, subject).shuffle(keys)
            for k in shots:
                support[str(k)].setdefault(str(sseed), {})[subject] = keys[:k]
    split.support = support
    split.definition["support"] = {"shots": shots, "seeds": [int(s) for s in support_seeds],
                                   "pool": "reserved normal images" if split.name == "cs" else "normal train images",
                                   "pool_sizes": {subj: len(split.pools.get(subj, [])) for subj in test_subjects}}
    return split


SPLITTERS = {"cc": split_cc, "ic": split_ic, "cs": split_cs, "std": split_std}


def applicable_splits(kind: SourceKind) -> tuple[str, ...]:
    """The splits that apply to a source kind."""
    return CONTEXTUAL_SPLITS if kind == "contextual" else INDUSTRIAL_SPLITS


def make_splits(specs: Sequence[SampleSpec], kind: SourceKind, names: Sequence[str] | None = None, *,
                seed: int = 0, shots: Sequence[int] = DEFAULT_SHOTS,
                support_seeds: Sequence[int] = DEFAULT_SUPPORT_SEEDS, where: str = "source",
                families: Mapping[str, str] | None = None) -> dict[str, Split]:
    """Build the requested splits (default: all that apply to ``kind``) with their support keys.

    ``families`` (``{context: family}``, from the rulebook) steers which contexts ``cc`` holds out.

    Raises:
        DataError: empty source, invalid or duplicate keys.
        SplitError: an unknown split or one that does not apply to ``kind``, or a split that cannot be built.
    """
    check_specs(specs, where)
    allowed = applicable_splits(kind)
    names = list(allowed if names is None else names)
    for name in names:
        if name not in allowed:
            raise SplitError(where, f"split {name!r} does not apply to {kind} sources (choose from "
                                    f"{', '.join(allowed)})")
    if not names:
        raise SplitError(where, "no split requested")
    out = {}
    for name in sorted(set(names)):
        if name == "cc":
            split = split_cc(specs, seed, where=where, families=families)
        else:
            split = SPLITTERS[name](specs, seed, where=where)
        out[name] = choose_support(split, seed, shots, support_seeds)
    return out


def part_counts(specs: Iterable[SampleSpec]) -> dict[str, Any]:
    """Counts of a part by label, subject, context and (subject, label), as JSON."""
    specs = list(specs)
    by_subject_label: dict[str, dict[str, int]] = defaultdict(lambda: {"normal": 0, "anomalous": 0})
    for s in specs:
        by_subject_label[s.subject]["anomalous" if s.label else "normal"] += 1
    labels = Counter("anomalous" if s.label else "normal" for s in specs)
    return {
        "samples": len(specs),
        "label": {"normal": labels["normal"], "anomalous": labels["anomalous"]},
        "subject": dict(sorted(by_subject_label.items())),
        "context": dict(sorted(Counter(s.context for s in specs).items())),
    }
