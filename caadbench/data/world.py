"""The captioned *world*: scenes of every drawable subject in every drawable context, with content-only captions.

The world weights (``--pretrained world``) are a small CLIP pretrained contrastively on these pairs. The world
holds every (subject, context) pair the generator can draw, including the pairs the benchmark rulebook calls
anomalous or excludes: like real CLIP, the model sees cows and highways, and cows on highways, but is never told
which pairs are unusual. Captions describe what is in the picture (subject, context, colour, size, position,
occlusion) and never use a word of compatibility (:data:`FORBIDDEN_WORDS`).

Disjointness from the benchmark: a world scene is drawn by :func:`~caadbench.data.sources.synthetic.draw_scene`
(the benchmark's own drawing path) from ``(seed, key)``, with keys ``world-...``, ``worldeval-...`` or ``worldmonitor-...`` while
benchmark keys are ``syn-...``, and a default world seed no benchmark build uses. Every random stream is a
sha256 of ``(seed, key, stream)``, so no world stream equals a benchmark stream (tested against the default set).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from caadbench.data.compose import Scene, sample_rng
from caadbench.data.sources.synthetic import draw_scene
from caadbench.data.sources.synthetic.contexts import CONTEXTS
from caadbench.data.sources.synthetic.subjects import SUBJECTS
from caadbench.errors import DataError

WORLD_SEED = 777_000
"""Default seed of the pretraining world (benchmark builds use small seeds; the default set uses 0)."""
EVAL_SEED = 777_001
"""Default seed of the fresh scenes the world weights are evaluated on (never used in pretraining)."""
MONITOR_SEED = 777_002
"""Seed of the held-out scenes ``caadbench pretrain`` measures zero-shot accuracy on while it trains."""
PRETRAIN_PREFIX = "world"
EVAL_PREFIX = "worldeval"
MONITOR_PREFIX = "worldmonitor"
SCENE_SIZE = 256
"""Side at which world scenes are drawn: the benchmark's default image size, so a world scene resized to a model's
input looks exactly like a benchmark image resized the same way."""

FORBIDDEN_WORDS: frozenset[str] = frozenset({
    "normal", "abnormal", "anomalous", "anomaly", "anomalies", "unusual", "usual", "typical", "atypical",
    "excluded", "defect", "defective", "defects", "damage", "damaged", "flaw", "flawless", "flawed", "perfect",
    "unblemished", "belong", "belongs", "misplaced", "strange", "odd", "weird", "wrong", "expected",
    "unexpected", "incompatible", "compatible", "rare", "common", "natural", "unnatural", "surprising",
})
"""Words no caption may contain: the vocabulary of compatibility, of the rulebook and of the prompt states."""

PREPOSITIONS: dict[str, str] = {
    "pasture": "on", "meadow": "in", "savanna": "on", "highway": "on", "street": "in", "parking_lot": "in",
    "lake": "on", "sea": "on", "office": "in", "kitchen": "in", "living_room": "in", "ski_slope": "on",
    "glacier": "on", "beach": "on", "desert": "in",
}
"""How a caption puts something into each context ("a cow on the highway", "a chair in the kitchen")."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (235, 235, 230), "black": (30, 30, 30), "grey": (128, 128, 128), "brown": (125, 80, 45),
    "beige": (205, 185, 140), "red": (190, 40, 35), "orange": (230, 130, 30), "yellow": (230, 200, 40),
    "green": (60, 140, 60), "blue": (40, 80, 180), "pink": (230, 150, 170), "purple": (120, 60, 150),
}
"""Named colours; a subject's caption colour is the most frequent nearest name among its visible pixels."""
UNCOLOURED = frozenset({"person"})
"""Subjects whose captions never name a colour (a person's dominant pixel colour is clothing or skin: captions
such as "a white person" would describe the wrong thing)."""

SCENE_TEMPLATES: tuple[str, ...] = (
    "a photo of {subj} {where}.",
    "a photo of {subj} {where}.",
    "{subj} {where}.",
    "a picture of {subj} {where}.",
    "a photo of the {context} with {subj}.",
    "{subj} {pos} of the picture, {where}.",
    "there is {subj} {where}.",
    "a photo of {subj}.",
    "a photo of the {context}.",
)
CLOSEUP_TEMPLATES: tuple[str, ...] = (
    "a close-up photo of {subj}.",
    "a close-up photo of {subj}.",
    "a cropped photo of {subj} {where}.",
    "a close-up of {subj} {where}.",
)
CUTOUT_TEMPLATES: tuple[str, ...] = (
    "a photo of {subj}.",
    "a photo of {subj}.",
    "{subj}.",
    "a picture of {subj}.",
    "a photo of {subj} on a plain background.",
)
VIEWS: tuple[str, ...] = ("scene", "closeup", "cutout")
"""What a world scene gives: the full scene, a close-up around its subject, and its subject alone on a plain
backdrop (the same drawing: the subject's random stream is the scene's)."""


def words(name: str) -> str:
    """A subject or context name as caption words (``parking_lot`` → ``parking lot``)."""
    return name.replace("_", " ")


def article(phrase: str) -> str:
    """``a`` or ``an`` for the phrase that follows."""
    return "an" if phrase[:1] in "aeiou" else "a"


@dataclass(frozen=True)
class WorldSpec:
    """One world scene: drawn from ``(seed, key)``, never labelled.

    Attributes:
        key: ``<prefix>-<index>-<subject>-<context>``.
        subject: a drawable subject.
        context: a drawable context.
        seed: the world seed.
    """

    key: str
    subject: str
    context: str
    seed: int


def world_specs(size: int, seed: int = WORLD_SEED, *, prefix: str = PRETRAIN_PREFIX,
                subjects: Sequence[str] | None = None, contexts: Sequence[str] | None = None) -> list[WorldSpec]:
    """``size`` scenes spread evenly over every (subject, context) pair (counts differ by at most one), seeded.

    Raises:
        DataError: a non-positive size, or a subject or context the generator cannot draw.
    """
    if size < 1:
        raise DataError("world", f"the number of world scenes must be at least 1, got {size}")
    subjects = list(subjects or SUBJECTS)
    contexts = list(contexts or CONTEXTS)
    for name in subjects:
        if name not in SUBJECTS:
            raise DataError("world", f"the generator cannot draw subject {name!r}")
    for name in contexts:
        if name not in CONTEXTS:
            raise DataError("world", f"the generator cannot draw context {name!r}")
    pairs = [(s, c) for s in subjects for c in contexts]
    rng = sample_rng(seed, prefix, "pairs")
    rounds = -(-size // len(pairs))  # every pair once per round, each round in its own seeded order
    chosen = [pairs[i] for _ in range(rounds) for i in rng.permutation(len(pairs))][:size]
    width = max(6, len(str(size - 1)))
    return [WorldSpec(f"{prefix}-{i:0{width}d}-{s}-{c}", s, c, int(seed)) for i, (s, c) in enumerate(chosen)]


def render(spec: WorldSpec, image_size: int = SCENE_SIZE) -> Scene:
    """Draw a world scene with the benchmark's drawing path (same shadow and occlusion rates)."""
    return draw_scene(spec.seed, spec.key, spec.subject, spec.context, image_size)


def colour_name(image: np.ndarray, mask: np.ndarray) -> str:
    """The most frequent named colour (:data:`COLOURS`, nearest per pixel) of ``image`` under ``mask``.

    Args:
        image: ``(H, W, 3)`` uint8.
        mask: ``(H, W)`` with non-zero where the subject is visible.
    """
    pixels = image[mask > 0].astype(np.float32)
    if pixels.size == 0:
        return ""
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], dtype=np.float32)
    nearest = ((pixels[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
    return names[int(np.bincount(nearest, minlength=len(names)).argmax())]


@dataclass(frozen=True)
class SceneFacts:
    """What a caption may say about a scene, computed once from the drawing.

    Attributes:
        subject, context: names.
        colour: the subject's named colour (:func:`colour_name`).
        size: ``small``, ``large`` or ``""`` (by the subject's height relative to the image).
        position: ``on the left``, ``in the middle`` or ``on the right`` (the subject's centre).
        occluded: whether a distractor hides part of the subject.
    """

    subject: str
    context: str
    colour: str
    size: str
    position: str
    occluded: bool


def scene_facts(spec: WorldSpec, scene: Scene) -> SceneFacts:
    """The :class:`SceneFacts` of a drawn scene."""
    p, side = scene.params, scene.image.shape[0]
    frac = p["height"] / side
    centre = (p["x"] + p["width"] / 2) / side
    return SceneFacts(
        subject=spec.subject, context=spec.context,
        colour="" if spec.subject in UNCOLOURED else colour_name(scene.image, scene.mask),
        size="small" if frac < 0.22 else "large" if frac > 0.4 else "",
        position="on the left" if centre < 0.38 else "on the right" if centre > 0.62 else "in the middle",
        occluded=bool(p["occluders"]),
    )


def describe(spec: WorldSpec, facts: SceneFacts, *, view: str = "scene", variant: int = 0) -> str:
    """A content-only caption of one view of a scene, chosen from ``(seed, key, view, variant)``.

    Words used: the subject, the context (not for a cutout, which has none), the subject's colour, its size, its
    position and whether something hides part of it (:class:`SceneFacts`). Never a word of :data:`FORBIDDEN_WORDS`.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown world view {view!r}")
    rng = sample_rng(spec.seed, spec.key, f"caption-{view}-{variant}")
    adjectives = []
    if view == "scene" and facts.size and rng.random() < 0.5:
        adjectives.append(facts.size)
    if facts.colour and rng.random() < 0.6:
        adjectives.append(facts.colour)
    noun = " ".join([*adjectives, words(facts.subject)])
    subj = f"{article(noun)} {noun}"
    if view != "cutout" and facts.occluded and rng.random() < 0.5:
        subj += ", partly hidden,"
    where = f"{PREPOSITIONS.get(facts.context, 'in')} the {words(facts.context)}"
    templates = {"scene": SCENE_TEMPLATES, "closeup": CLOSEUP_TEMPLATES, "cutout": CUTOUT_TEMPLATES}[view]
    text = templates[int(rng.integers(len(templates)))].format(
        subj=subj, where=where, context=words(facts.context), pos=facts.position)
    text = text.replace(",,", ",").replace(", .", ".").replace(",.", ".")
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def caption_words(text: str) -> list[str]:
    """Lower-case words of a caption (for the forbidden-word check)."""
    return re.findall(r"[a-z]+", text.lower())


def check_caption(text: str) -> str:
    """Return ``text`` if it uses no forbidden word.

    Raises:
        DataError: naming the caption and the word.
    """
    bad = sorted(set(caption_words(text)) & FORBIDDEN_WORDS)
    if bad:
        raise DataError(f"caption {text!r}", f"uses the forbidden word(s) {', '.join(bad)}")
    return text


def closeup_box(scene: Scene, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A square crop ``(x0, y0, x1, y1)`` around the subject's visible pixels with a random margin.

    The side is the subject's larger extent times 1.15–1.6, at least a quarter of the image, clipped to the image.
    """
    size = scene.image.shape[0]
    rows, cols = np.flatnonzero(scene.mask.any(1)), np.flatnonzero(scene.mask.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = int(min(size, max(size // 4, max(y1 - y0, x1 - x0) * (1.15 + 0.45 * rng.random()))))
    cx = (x0 + x1) / 2 + (rng.random() - 0.5) * 0.15 * side
    cy = (y0 + y1) / 2 + (rng.random() - 0.5) * 0.15 * side
    left = int(np.clip(round(cx - side / 2), 0, size - side))
    top = int(np.clip(round(cy - side / 2), 0, size - side))
    return left, top, left + side, top + side


def closeup(spec: WorldSpec, scene: Scene) -> np.ndarray:
    """``(h, h, 3)`` uint8 square crop around the subject (see :func:`closeup_box`)."""
    x0, y0, x1, y1 = closeup_box(scene, sample_rng(spec.seed, spec.key, "closeup"))
    return np.ascontiguousarray(scene.image[y0:y1, x0:x1])


def cutout(spec: WorldSpec, size: int = SCENE_SIZE) -> Scene:
    """The scene's subject alone on a plain backdrop (a seeded colour gradient with faint noise).

    The subject is drawn from the scene's own subject stream, so it is the same drawing (pose, colours) at a
    larger scale: 45–80 % of the image height, at a random position.
    """
    from caadbench.data.compose import compose
    from caadbench.data.sources.synthetic.draw import noise, to_uint8, vgradient
    from caadbench.data.sources.synthetic.subjects import draw_subject

    rng = sample_rng(spec.seed, spec.key, "cutout")
    top = rng.uniform(30, 230, 3)
    bottom = np.clip(top * rng.uniform(0.7, 1.15), 0, 255)
    backdrop = to_uint8(vgradient(size, size, top, bottom) + 4.0 * noise(rng, size, size, 8)[..., None])
    layer = draw_subject(spec.subject, sample_rng(spec.seed, spec.key, "subject"), int(size * rng.uniform(0.45, 0.8)))
    if max(layer.width, layer.height) > 0.92 * size:
        f = 0.92 * size / max(layer.width, layer.height)
        layer = layer.resized(max(1, int(layer.height * f)), max(1, int(layer.width * f)))
    x = int(rng.integers(0, size - layer.width + 1))
    y = int(rng.integers(0, size - layer.height + 1))
    image, mask = compose(backdrop, layer, x, y)
    return Scene(image=image, mask=mask, params={"x": x, "y": y, "width": layer.width, "height": layer.height,
                                                 "shadow": 0.0, "occluders": 0, "visible_fraction": 1.0})


@dataclass
class WorldSet:
    """Rendered world pairs at a model's input size, ready for contrastive pretraining.

    Attributes:
        specs: the ``N`` scenes.
        views: per view of :data:`VIEWS`, ``(N, 3, S, S)`` uint8 images (drawn at :data:`SCENE_SIZE`, resized like
            benchmark images).
        captions: per view, per scene, ``V`` caption variants.
    """

    specs: list[WorldSpec]
    views: dict[str, "torch.Tensor"]
    captions: dict[str, list[list[str]]]

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def scenes(self) -> "torch.Tensor":
        """``(N, 3, S, S)`` uint8 full scenes."""
        return self.views["scene"]


def _render_chunk(job: tuple[list[WorldSpec], int, int]) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Render specs at :data:`SCENE_SIZE`; every view resized to ``size``; ``variants`` captions per view."""
    import torch

    from caadbench.data.loader import image_tensor

    specs, size, variants = job
    torch.set_num_threads(1)
    images: dict[str, list[np.ndarray]] = {v: [] for v in VIEWS}
    captions: dict[str, list[list[str]]] = {v: [] for v in VIEWS}
    for spec in specs:
        scene = render(spec)
        alone = cutout(spec)
        facts = scene_facts(spec, scene)
        cut_facts = replace(facts, colour="" if spec.subject in UNCOLOURED else colour_name(alone.image, alone.mask))
        drawn = {"scene": (scene.image, facts), "closeup": (closeup(spec, scene), facts),
                 "cutout": (alone.image, cut_facts)}
        for view, (image, view_facts) in drawn.items():
            images[view].append(image_tensor(image, size).mul_(255.0).round_().to(torch.uint8).numpy())
            captions[view].append([check_caption(describe(spec, view_facts, view=view, variant=v))
                                   for v in range(variants)])
    return {v: np.stack(images[v]) for v in VIEWS}, captions


def build_world(specs: Sequence[WorldSpec], image_size: int, *, variants: int = 4, workers: int = 1,
                progress: bool = True, chunk: int = 64) -> WorldSet:
    """Render every spec (in ``workers`` processes) into a :class:`WorldSet` at ``image_size``.

    The result depends only on the specs, ``image_size`` and ``variants``, never on ``workers``.
    """
    import multiprocessing

    import torch

    from caadbench.utils.progress import progress as progress_bar

    specs = list(specs)
    jobs = [(specs[i:i + chunk], int(image_size), int(variants)) for i in range(0, len(specs), chunk)]
    parts: list[tuple[dict[str, np.ndarray], dict[str, list]]] = []
    with progress_bar(total=len(specs), desc="world scenes", unit="scene", enabled=progress) as bar:
        if workers > 1 and len(jobs) > 1:
            with multiprocessing.get_context().Pool(min(workers, len(jobs))) as pool:
                for part in pool.imap(_render_chunk, jobs):
                    parts.append(part)
                    bar.update(len(part[1]["scene"]))
        else:
            for job in jobs:
                parts.append(_render_chunk(job))
                bar.update(len(job[0]))
    views = {v: torch.from_numpy(np.concatenate([p[0][v] for p in parts])) for v in VIEWS}
    captions = {v: [c for p in parts for c in p[1][v]] for v in VIEWS}
    return WorldSet(specs=specs, views=views, captions=captions)


WORLD_CACHE_FORMAT = "caadbench-world-cache-2"


def world_cache_name(specs: Sequence[WorldSpec], image_size: int, variants: int) -> str:
    """File name of a cached :class:`WorldSet`: a hash of everything the rendering depends on."""
    import hashlib

    from caadbench.data.sources.synthetic.source import GENERATOR_VERSION

    digest = hashlib.sha256()
    digest.update(f"{WORLD_CACHE_FORMAT}/{GENERATOR_VERSION}/{image_size}/{variants}/{SCENE_SIZE}".encode())
    for spec in specs:
        digest.update(f"|{spec.seed}/{spec.key}".encode())
    return f"world-{digest.hexdigest()[:20]}.pt"


def cached_world(specs: Sequence[WorldSpec], image_size: int, cache: str | Path | None, *, variants: int = 4,
                 workers: int = 1, progress: bool = True) -> WorldSet:
    """:func:`build_world`, read from / written to ``cache`` (a folder) when given.

    A cache file is named by a hash of the specs, size, caption variants and generator version, written
    atomically, and never read for other inputs; an unreadable one is rebuilt.
    """
    import io

    import torch

    from caadbench.utils.atomic import atomic_write_bytes

    if cache is None:
        return build_world(specs, image_size, variants=variants, workers=workers, progress=progress)
    path = Path(cache) / world_cache_name(specs, image_size, variants)
    if path.is_file():
        try:
            data = torch.load(path, weights_only=True)
            if data.get("format") == WORLD_CACHE_FORMAT and len(data["captions"]["scene"]) == len(specs):
                return WorldSet(list(specs), data["views"], data["captions"])
        except Exception:  # a truncated or foreign file: draw again
            pass
    world = build_world(specs, image_size, variants=variants, workers=workers, progress=progress)
    buffer = io.BytesIO()
    torch.save({"format": WORLD_CACHE_FORMAT, "views": world.views, "captions": world.captions}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return world
