"""The ``synthetic`` source: the embedded, deterministic, context-controllable CAAD generator.

``specs()`` spreads ``size`` images over the rulebook's allowed (subject, context) pairs; ``load(spec)``
draws the context scene and the subject from random streams derived from ``(seed, key)`` and composites them
through :func:`caadbench.data.compose.render_scene`. The label is copied from the spec into the sample and
plays no part in drawing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from caadbench.data.compose import Scene, render_scene, sample_rng
from caadbench.data.rulebook import Rulebook, spread_over_pairs
from caadbench.data.batch import MIN_IMAGE_SIZE
from caadbench.data.sample import Sample, validate_key
from caadbench.data.sources.base import SampleSpec, Source, register_source
from caadbench.data.sources.files import sanitize
from caadbench.data.sources.synthetic.contexts import CONTEXTS, draw_context
from caadbench.data.sources.synthetic.subjects import SUBJECTS, draw_prop, draw_subject
from caadbench.errors import DataError, check_at_least

BUILTIN_RULEBOOK = Path(__file__).with_name("rulebook.json")
DEFAULT_SIZE = 3000
# Bump whenever drawing changes what a (seed, key) produces: it is part of the source description, hence of
# the dataset fingerprint.
GENERATOR_VERSION = 1
ALLOCATION = "labels"
"""The synthetic set gives every subject as many normal as anomalous images (``docs/generator.md``): with the
version-2 rulebook a subject has 2-3 normal and 6-11 anomalous contexts, and pair-even images would leave a
subject's one unseen normal context with ~27 test images, the smallest class of its AUROC."""


def numbered_pairs(rulebook: Rulebook, size: int, seed: int, prefix: str,
                   allocation: str = "pairs") -> list[tuple[str, int, str, str, int]]:
    """``(key, index, subject, context, label)`` for ``size`` images spread over the allowed pairs
    (:func:`~caadbench.data.rulebook.spread_over_pairs` with ``allocation``).

    Keys are ``<prefix>-<subject>-<context>-<index>`` (names with characters other than letters, digits,
    ``_`` and ``-`` turned into ``_``), index zero-padded to at least five digits: unique by the index.
    """
    width = max(5, len(str(size - 1)))
    out = []
    for i, (subject, context, label) in enumerate(spread_over_pairs(rulebook, size, seed, allocation)):
        key = validate_key(f"{prefix}-{sanitize(subject)}-{sanitize(context)}-{i:0{width}d}")
        out.append((key, i, subject, context, label))
    return out


def draw_scene(seed: int, key: str, subject: str, context: str, image_size: int, *, shadow: float = 0.6,
               occlusion: float = 0.3) -> Scene:
    """Draw one scene: ``context`` as background, ``subject`` composited into it, from ``(seed, key)`` only.

    The context, the subject and the placement each draw from their own stream
    (:func:`~caadbench.data.compose.sample_rng` of ``(seed, key, "context" | "subject" | "place")``), so a scene
    is a pure function of its arguments. ``params`` holds the placement record and the context's ground band. This is the one drawing path of the benchmark images and of the
    captioned world that the world weights are pretrained on (``caadbench.data.world``).
    """
    background, ground = draw_context(context, sample_rng(seed, key, "context"), image_size)
    subject_rng = sample_rng(seed, key, "subject")
    scene = render_scene(background, ground, lambda h: draw_subject(subject, subject_rng, h),
                         sample_rng(seed, key, "place"), shadow=shadow, occlusion=occlusion, occluder_at=draw_prop)
    return replace(scene, params={**scene.params, "ground": ground.to_json()})


@register_source("synthetic")
class SyntheticSource(Source):
    """Procedural subjects composited onto procedural contexts under a compatibility rulebook.

    Args:
        root: optional rulebook for the generator: a ``.json``/``.csv`` file, or a folder holding
            ``rulebook.json``. Its subjects and contexts must be drawable (see ``docs/generator.md``).
            ``None``: the built-in rulebook.
        seed: the dataset seed; every image is a function of ``(seed, key)``.
        size: number of images (default 3,000).
        image_size: side of the square images in pixels (default 256).
        occlusion: probability that distractors stand in front of the subject.
        shadow: probability of a shadow at the subject's feet.
    """

    def __init__(self, root: str | Path | None = None, seed: int = 0, size: int | None = None,
                 image_size: int = 256, *, occlusion: float = 0.3, shadow: float = 0.6) -> None:
        self.seed = int(seed)
        self.size = DEFAULT_SIZE if size is None else check_at_least(size, "--size", error=DataError)
        self.image_size = check_at_least(image_size, "--image-size", MIN_IMAGE_SIZE, DataError)
        self.occlusion, self.shadow = float(occlusion), float(shadow)
        self.rulebook_path = self._rulebook_file(root)
        self._rules = Rulebook.load(self.rulebook_path)
        for subject in self._rules.subjects:
            if subject not in SUBJECTS:
                raise DataError(self.rulebook_path, f"the generator cannot draw subject {subject!r} "
                                                    f"(drawable: {', '.join(SUBJECTS)})")
        for context in self._rules.context_names:
            if context not in CONTEXTS:
                raise DataError(self.rulebook_path, f"the generator cannot draw context {context!r} "
                                                    f"(drawable: {', '.join(CONTEXTS)})")

    @staticmethod
    def _rulebook_file(root: str | Path | None) -> Path:
        if root is None:
            return BUILTIN_RULEBOOK
        root = Path(root)
        if root.is_dir():
            for name in ("rulebook.json", "rulebook.csv"):
                if (root / name).is_file():
                    return root / name
            raise DataError(root, "no rulebook.json or rulebook.csv in this folder")
        return root

    @property
    def rules(self) -> Rulebook:
        return self._rules

    def rulebook(self) -> dict[str, Any]:
        return self._rules.to_json()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "seed": self.seed, "size": self.size,
            "image_size": self.image_size, "occlusion": self.occlusion, "shadow": self.shadow,
            "rulebook": "builtin" if self.rulebook_path == BUILTIN_RULEBOOK else str(self.rulebook_path),
            "generator_version": GENERATOR_VERSION, "allocation": ALLOCATION,
        }

    def specs(self) -> list[SampleSpec]:
        return [SampleSpec(key=key, subject=subject, context=context, label=label,
                           source=f"synthetic:seed{self.seed}/{index:05d}",
                           payload={"family": self._rules.family(context)})
                for key, index, subject, context, label in numbered_pairs(self._rules, self.size, self.seed, "syn",
                                                                              ALLOCATION)]

    def load(self, spec: SampleSpec) -> Sample:
        if spec.subject not in SUBJECTS or spec.context not in CONTEXTS:
            raise DataError(spec.source, f"cannot draw subject {spec.subject!r} in context {spec.context!r}")
        scene = draw_scene(self.seed, spec.key, spec.subject, spec.context, self.image_size,
                           shadow=self.shadow, occlusion=self.occlusion)
        family = self._rules.family(spec.context) if spec.context in self._rules.context_names else None
        extra = {"family": family, "generator": scene.params}
        return Sample(key=spec.key, image=scene.image, mask=scene.mask, subject=spec.subject, context=spec.context,
                      label=spec.label, source=spec.source, extra=extra).validate()
