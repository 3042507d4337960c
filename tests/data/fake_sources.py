"""Small in-test sources in the real interface: coloured squares on coloured backgrounds, and an industrial set.

They live in an importable module (not a test file) so that worker processes can unpickle them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from caadbench.data.sample import Sample
from caadbench.data.sources.base import SampleSpec, Source

SUBJECTS = {"red": (220, 30, 30), "blue": (30, 30, 220), "yellow": (230, 220, 40)}
CONTEXTS = {"grass": (40, 160, 40), "sand": (210, 190, 120), "road": (90, 90, 90), "water": (30, 90, 200),
            "snow": (245, 245, 250), "night": (15, 15, 40)}
FAMILIES = {"grass": "outdoor", "sand": "outdoor", "snow": "outdoor", "road": "urban", "night": "urban",
            "water": "water"}
# subject -> (normal contexts, anomalous contexts)
RULES = {
    "red": (["grass", "sand", "snow"], ["road", "water"]),
    "blue": (["water", "snow"], ["grass", "road", "night"]),
    "yellow": (["sand", "road"], ["water", "night"]),
}


class FakeContextual(Source):
    """Squares (subjects) on flat backgrounds (contexts) with pixel noise, ``per_pair`` images per pair.

    ``fail_at``: a key whose ``load`` raises (simulates a crash midway). ``rules``: override the rulebook.
    """

    name = "fake-contextual"
    kind = "contextual"

    def __init__(self, seed: int = 0, per_pair: int = 4, image_size: int = 32, rules: dict | None = None,
                 fail_at: str | None = None, extra_specs: list[SampleSpec] | None = None) -> None:
        self.seed, self.per_pair, self.image_size = seed, per_pair, image_size
        self.rules = RULES if rules is None else rules
        self.fail_at = fail_at
        self.extra_specs = extra_specs or []

    def specs(self) -> list[SampleSpec]:
        out = []
        for subject, (normal, anomalous) in sorted(self.rules.items()):
            for label, contexts in ((0, normal), (1, anomalous)):
                for context in contexts:
                    for i in range(self.per_pair):
                        key = f"{subject}-{context}-{i:03d}"
                        out.append(SampleSpec(key=key, subject=subject, context=context, label=label,
                                              source=f"fake:{key}", payload={"i": i}))
        return out + list(self.extra_specs)

    def load(self, spec: SampleSpec) -> Sample:
        if spec.key == self.fail_at:
            raise RuntimeError("simulated crash while loading")
        rng = np.random.default_rng([self.seed, _stable(spec.key)])
        s = self.image_size
        image = np.empty((s, s, 3), np.uint8)
        image[:] = CONTEXTS.get(spec.context, (128, 128, 128))
        image = np.clip(image.astype(int) + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
        side = int(rng.integers(s // 4, s // 2))
        y, x = (int(v) for v in rng.integers(0, s - side, 2))
        mask = np.zeros((s, s), np.uint8)
        mask[y:y + side, x:x + side] = 255
        image[mask > 0] = SUBJECTS.get(spec.subject, (255, 0, 255))
        return Sample(key=spec.key, image=image, mask=mask, subject=spec.subject, context=spec.context,
                      label=spec.label, source=spec.source, extra={"i": spec.payload.get("i")})

    def rulebook(self) -> dict | None:
        if not self.rules:
            return None
        used = sorted({c for n, a in self.rules.values() for c in n + a})
        return {"format": "caadbench-rulebook/1", "subjects": sorted(self.rules),
                "contexts": {c: FAMILIES.get(c, c) for c in used},
                "rules": {subj: {"normal": n, "anomalous": a} for subj, (n, a) in sorted(self.rules.items())}}

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "seed": self.seed, "per_pair": self.per_pair,
                "image_size": self.image_size}


class FakeIndustrial(Source):
    """Two categories with train-good, test-good and test-defect images (rectangular, 24x32)."""

    name = "fake-industrial"
    kind = "industrial"

    def __init__(self, seed: int = 0, n: int = 5) -> None:
        self.seed, self.n = seed, n

    def specs(self) -> list[SampleSpec]:
        out = []
        for cat in ("bottle", "screw"):
            for i in range(self.n):
                out.append(SampleSpec(f"{cat}-train-good-{i}", cat, "-", 0, f"fake:{cat}/train/good/{i}.png",
                                      mask_kind="defect", origin_split="train"))
                out.append(SampleSpec(f"{cat}-test-good-{i}", cat, "-", 0, f"fake:{cat}/test/good/{i}.png",
                                      mask_kind="defect", origin_split="test"))
                out.append(SampleSpec(f"{cat}-test-crack-{i}", cat, "-", 1, f"fake:{cat}/test/crack/{i}.png",
                                      defect="crack", mask_kind="defect", origin_split="test"))
        return out

    def load(self, spec: SampleSpec) -> Sample:
        rng = np.random.default_rng([self.seed, _stable(spec.key)])
        image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        mask = np.zeros((24, 32), np.uint8)
        if spec.label:
            mask[4:10, 6:20] = 255
        return Sample(key=spec.key, image=image, mask=mask, subject=spec.subject, context=spec.context,
                      label=spec.label, source=spec.source, defect=spec.defect, mask_kind="defect")


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
