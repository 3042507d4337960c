"""The compatibility rulebook: which (subject, context) pairs are normal, anomalous or excluded.

A rulebook is data, not code. It names the subjects (class names used in prompts), the contexts, each with a
*family* (contexts alike in appearance: pasture and meadow are both grassland), and per subject the contexts
in which it is normal and those in which it is anomalous. A pair the rulebook does not list is excluded: no
image of it is generated. The file formats (JSON, CSV) are documented in ``docs/generator.md``.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from caadbench.errors import DataError

Label = Literal["normal", "anomalous", "excluded"]
LABELS: tuple[Label, ...] = ("normal", "anomalous", "excluded")
FORMAT = "caadbench-rulebook/1"
_TOP_KEYS = {"format", "description", "subjects", "contexts", "rules"}
_CSV_LABELS = {"normal": "normal", "0": "normal", "anomalous": "anomalous", "1": "anomalous", "excluded": "excluded"}


def _check_name(name: Any, what: str, where: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in "/\\\n\t"):
        raise DataError(where, f"invalid {what} name {name!r}: use a non-empty name without slashes or "
                               "surrounding spaces")
    if name in (".", "..", "-"):
        raise DataError(where, f"invalid {what} name {name!r}")
    return name


@dataclass(frozen=True)
class Rulebook:
    """A validated compatibility rulebook.

    Attributes:
        subjects: subject class names, in file order.
        contexts: ``((context, family), ...)`` in file order.
        rules: ``((subject, context, label), ...)`` for every normal or anomalous pair, sorted.
        where: the file it was read from (for error messages), or ``"<rulebook>"``.
    """

    subjects: tuple[str, ...]
    contexts: tuple[tuple[str, str], ...]
    rules: tuple[tuple[str, str, Label], ...]
    where: str = "<rulebook>"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Any, where: str | Path = "<rulebook>") -> Rulebook:
        """Build and validate a rulebook from its JSON form (see ``docs/generator.md``).

        Raises:
            DataError: naming ``where`` and the first problem found.
        """
        where = str(where)
        if not isinstance(data, Mapping):
            raise DataError(where, "rulebook must be a JSON object with 'contexts' and 'rules'")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise DataError(where, f"unknown rulebook field(s) {', '.join(map(repr, unknown))} "
                                   f"(allowed: {', '.join(sorted(_TOP_KEYS))})")
        if "format" in data and data["format"] != FORMAT:
            raise DataError(where, f"unsupported rulebook format {data['format']!r} (expected {FORMAT!r})")
        raw_contexts = data.get("contexts") or {}
        if isinstance(raw_contexts, list):
            raw_contexts = {c: c for c in raw_contexts}
        if not isinstance(raw_contexts, Mapping):
            raise DataError(where, "'contexts' must map each context to its family (or be a list of contexts)")
        contexts = tuple((_check_name(c, "context", where), _check_name(f, "family", where))
                         for c, f in raw_contexts.items())
        raw_rules = data.get("rules") or {}
        if not isinstance(raw_rules, Mapping):
            raise DataError(where, "'rules' must map each subject to {\"normal\": [...], \"anomalous\": [...]}")
        raw_subjects = data.get("subjects")
        if raw_subjects is None:
            raw_subjects = list(raw_rules)
        if not isinstance(raw_subjects, list):
            raise DataError(where, "'subjects' must be a list of subject names")
        subjects = tuple(_check_name(s, "subject", where) for s in raw_subjects)
        rules: list[tuple[str, str, Label]] = []
        for subject, by_label in raw_rules.items():
            if not isinstance(by_label, Mapping):
                raise DataError(where, f"rules for subject {subject!r} must map labels to lists of contexts")
            for label, ctxs in by_label.items():
                if isinstance(ctxs, str) or not isinstance(ctxs, list):
                    raise DataError(where, f"rules[{subject!r}][{label!r}] must be a list of context names")
                rules.extend((subject, c, label) for c in ctxs)
        return cls.from_rules(subjects, contexts, rules, where)

    @classmethod
    def from_rules(cls, subjects: Iterable[str], contexts: Iterable[tuple[str, str]],
                   rules: Iterable[tuple[str, str, str]], where: str | Path = "<rulebook>") -> Rulebook:
        """Validate subjects, ``(context, family)`` pairs and ``(subject, context, label)`` rules.

        Raises:
            DataError: naming ``where``: empty rulebook, duplicate names, a rule naming an unknown subject,
                context or label, a pair given two labels, a subject with no normal or no anomalous context.
        """
        where = str(where)
        subjects, contexts = tuple(subjects), tuple(contexts)
        if not subjects or not contexts:
            raise DataError(where, "rulebook is empty (it needs subjects, contexts and rules)")
        for names, what in ((subjects, "subject"), ([c for c, _ in contexts], "context")):
            dup = sorted({n for n in names if list(names).count(n) > 1})
            if dup:
                raise DataError(where, f"duplicate {what} name(s) {', '.join(map(repr, dup))}")
        known_s, known_c = set(subjects), {c for c, _ in contexts}
        labels: dict[tuple[str, str], Label] = {}
        for subject, context, label in rules:
            if subject not in known_s:
                raise DataError(where, f"rule names unknown subject {subject!r} (subjects: {', '.join(subjects)})")
            if context not in known_c:
                raise DataError(where, f"rule for {subject!r} names unknown context {context!r} "
                                       f"(contexts: {', '.join(c for c, _ in contexts)})")
            if label not in LABELS:
                raise DataError(where, f"rule {subject!r} x {context!r} has unknown label {label!r} "
                                       f"(use {', '.join(LABELS)})")
            previous = labels.get((subject, context))
            if previous is not None and previous != label:
                raise DataError(where, f"pair {subject!r} x {context!r} is both {previous} and {label}")
            labels[(subject, context)] = label  # type: ignore[assignment]
        for subject in subjects:
            for wanted in ("normal", "anomalous"):
                if not any(s == subject and lab == wanted for (s, _), lab in labels.items()):
                    raise DataError(where, f"subject {subject!r} has no {wanted} context")
        kept = tuple(sorted((s, c, lab) for (s, c), lab in labels.items() if lab != "excluded"))
        return cls(subjects=subjects, contexts=contexts, rules=kept, where=where)

    @classmethod
    def from_csv_text(cls, text: str, where: str | Path = "<rulebook>") -> Rulebook:
        """Read ``subject,context,label[,family]`` rows (header required; label normal/anomalous/excluded/0/1).

        Subjects and contexts are those the rows name, in order of appearance; a context's family defaults to
        the context's own name.
        """
        where = str(where)
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not {"subject", "context", "label"} <= set(header):
            raise DataError(where, "CSV rulebook needs a header 'subject,context,label' (optionally ',family')")
        subjects: dict[str, None] = {}
        families: dict[str, str] = {}
        rules = []
        for lineno, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            subject, context = row["subject"], row["context"]
            label = _CSV_LABELS.get(row["label"].lower())
            if label is None:
                raise DataError(where, f"line {lineno}: unknown label {row['label']!r} (use {', '.join(LABELS)})")
            family = row.get("family") or context
            if families.setdefault(context, family) != family:
                raise DataError(where, f"line {lineno}: context {context!r} given two families "
                                       f"({families[context]!r} and {family!r})")
            subjects.setdefault(subject, None)
            rules.append((subject, context, label))
        contexts = tuple((_check_name(c, "context", where), _check_name(f, "family", where))
                         for c, f in families.items())
        return cls.from_rules((_check_name(s, "subject", where) for s in subjects), contexts, rules, where)

    @classmethod
    def load(cls, path: str | Path) -> Rulebook:
        """Read a rulebook file: ``.json`` or ``.csv``.

        Raises:
            DataError: naming the file when it is missing, unparsable or invalid.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "rulebook file not found")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(path, f"unreadable rulebook ({exc})") from exc
        if path.suffix.lower() == ".csv":
            return cls.from_csv_text(text, path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
        return cls.from_dict(data, path)

    # ------------------------------------------------------------------ queries
    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (stored in the manifest); ``from_dict(rb.to_json())`` gives ``rb`` back."""
        return {
            "format": FORMAT,
            "subjects": list(self.subjects),
            "contexts": dict(self.contexts),
            "rules": {s: {"normal": self.normal_contexts(s), "anomalous": self.anomalous_contexts(s)}
                      for s in self.subjects},
        }

    @property
    def context_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.contexts)

    def families(self) -> dict[str, list[str]]:
        """``{family: [contexts in file order]}``."""
        out: dict[str, list[str]] = {}
        for context, family in self.contexts:
            out.setdefault(family, []).append(context)
        return out

    def family(self, context: str) -> str:
        """The family of ``context``.

        Raises:
            DataError: unknown context.
        """
        for c, f in self.contexts:
            if c == context:
                return f
        raise DataError(self.where, f"unknown context {context!r}")

    def label(self, subject: str, context: str) -> Label:
        """``"normal"``, ``"anomalous"`` or ``"excluded"`` for a pair (unknown names raise DataError)."""
        if subject not in self.subjects:
            raise DataError(self.where, f"unknown subject {subject!r}")
        self.family(context)
        for s, c, lab in self.rules:
            if s == subject and c == context:
                return lab
        return "excluded"

    def _contexts(self, subject: str, label: str) -> list[str]:
        wanted = {c for s, c, lab in self.rules if s == subject and lab == label}
        return [c for c in self.context_names if c in wanted]

    def normal_contexts(self, subject: str) -> list[str]:
        """Contexts in which ``subject`` is normal, in file order."""
        return self._contexts(subject, "normal")

    def anomalous_contexts(self, subject: str) -> list[str]:
        """Contexts in which ``subject`` is anomalous, in file order."""
        return self._contexts(subject, "anomalous")

    def allowed_pairs(self) -> list[tuple[str, str, int]]:
        """Every non-excluded pair as ``(subject, context, label 0/1)``, in subject then context file order."""
        order = {c: i for i, c in enumerate(self.context_names)}
        out = []
        for subject in self.subjects:
            ctxs = sorted(((c, lab) for s, c, lab in self.rules if s == subject), key=lambda t: order[t[0]])
            out.extend((subject, c, int(lab == "anomalous")) for c, lab in ctxs)
        return out

    def unrelated_contexts(self) -> list[tuple[str, str, str]]:
        """``(subject, context, label)`` where no other context of the same family has the same label for that
        subject: a context that, held out, has no seen relative. Empty for a well-arranged rulebook."""
        out = []
        for s, c, lab in self.rules:
            fam = self.family(c)
            if not any(s2 == s and c2 != c and lab2 == lab and self.family(c2) == fam for s2, c2, lab2 in self.rules):
                out.append((s, c, lab))
        return out


ALLOCATIONS = ("labels", "pairs")
"""How :func:`spread_over_pairs` shares images: ``labels`` gives every subject the same number of images, half
normal and half anomalous, even over the label's contexts; ``pairs`` gives every pair the same number."""


def spread_over_pairs(rulebook: Rulebook, size: int, seed: int, allocation: str = "pairs") -> list[tuple[str, str, int]]:
    """Assign ``size`` images to the rulebook's allowed pairs, shuffled by ``seed``.

    Every pair has a *target* share of ``size``: equal for ``allocation="pairs"``; for ``"labels"`` a pair of
    subject s and label y gets ``size / (2 · n_subjects · n_contexts(s, y))``, so every subject has as many normal
    as anomalous images however many contexts each label has. Images are dealt one at a time: first one to each
    pair in a *coverage-first* order (each subject's first normal and first anomalous context, then the second
    ones, ...; a subject's contexts are ordered family by family, so its first two normal contexts are
    relatives), so that even a tiny set holds every subject with both labels; then each to the pair furthest
    below its target (ties in coverage-first order), which rounds the targets. The returned list (one entry per
    image: ``(subject, context, label)``) is shuffled by ``seed``; the image's index in it is its number.

    Raises:
        DataError: ``size`` is not positive, or an unknown ``allocation``.
    """
    if size <= 0:
        raise DataError(rulebook.where, f"size must be a positive number of images, got {size}")
    if allocation not in ALLOCATIONS:
        raise DataError(rulebook.where, f"unknown allocation {allocation!r} (choose from {', '.join(ALLOCATIONS)})")
    rng = random.Random(f"spread/{seed}")
    pairs = rulebook.allowed_pairs()
    label_of = {(s, c): lab for s, c, lab in pairs}
    families = list(rulebook.families())
    rng.shuffle(families)
    fam_rank = {f: i for i, f in enumerate(families)}
    ranked: list[tuple[int, int, int, tuple[str, str]]] = []
    cell_size: dict[tuple[str, int], int] = {}
    for si, subject in enumerate(rulebook.subjects):
        for label, ctxs in ((0, rulebook.normal_contexts(subject)), (1, rulebook.anomalous_contexts(subject))):
            ctxs = list(ctxs)
            cell_size[(subject, label)] = len(ctxs)
            rng.shuffle(ctxs)
            ctxs.sort(key=lambda c: fam_rank[rulebook.family(c)])
            ranked.extend((r, si, label, (subject, c)) for r, c in enumerate(ctxs))
    ranked.sort()
    order = [pair for *_, pair in ranked]
    if allocation == "pairs":
        targets = [size / len(order)] * len(order)
    else:
        cells = sum(1 for n in cell_size.values() if n)
        targets = [size / (cells * cell_size[(s, label_of[(s, c)])]) for s, c in order]
    counts = [1 if i < size else 0 for i in range(len(order))]
    heap = [(counts[i] - targets[i], i) for i in range(len(order))]
    heapq.heapify(heap)
    for _ in range(size - sum(counts)):
        _, i = heapq.heappop(heap)
        counts[i] += 1
        heapq.heappush(heap, (counts[i] - targets[i], i))
    out: list[tuple[str, str, int]] = []
    for (subject, context), n in zip(order, counts):
        out.extend([(subject, context, label_of[(subject, context)])] * n)
    rng.shuffle(out)
    return out
