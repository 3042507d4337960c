"""The one open_clip adapter every method uses.

It builds an open_clip CLIP model by architecture name with weights from an open_clip pretrained tag, a local
checkpoint file, or random initialisation (seeded), freezes it, and exposes what the methods need through
open_clip's public API and torch's module hooks, never by copying open_clip's forward code. The network is built
as its weights were trained: a tag's ``quick_gelu`` and mean/std, and for a local file those of the tag it is
recognised as (:mod:`~caadbench.models.weight_origin`: OpenAI's files get QuickGELU); a checkpoint run at another
input size has its positional embedding resized as the method's official code does
(:mod:`~caadbench.models.pos_embed`). It exposes:

* text and image embeddings (``encode_text``, ``encode_image``);
* CLS and patch tokens of chosen blocks, optionally projected into the joint space (``image_tokens``);
* the full image encoder run on subsets of patch tokens, e.g. WinCLIP windows (``encode_token_subsets``):
  a forward pre-hook on the vision transformer keeps the class token and the chosen patch tokens (with
  their positional embeddings already added) and drops the rest;
* residual adapters inserted into blocks (``block_hooks``): forward hooks that replace a block's output;
* learnable prompts: text encoded from given token embeddings (``encode_text(..., embeddings=...)``, a forward
  hook on the token embedding), and learnable tokens swapped in between text blocks (``block_hooks``);
* DPAM's value-value self-attention of an image block (``value_value_attention``), computed from the block's own
  LayerNorm, value projection and output projection (AnomalyCLIP).

Architectures are open_clip names (``ViT-B-16``), or, as open_clip spells them, ``hf-hub:ORG/NAME`` (a Hugging
Face repository holding ``open_clip_config.json`` and the weights) and ``local-dir:PATH`` (a folder holding the
same). Only open_clip's own ViT image tower and text transformer expose the tokens, subsets and blocks above, so
configurations whose towers are timm or Hugging Face models (SigLIP, EVA, ...) are refused before anything is
built or downloaded (see ``docs/baselines.md``).

Tiny architectures for tests and the offline demo live in ``configs/`` as open_clip config files
(``caad-tiny``); they are registered with open_clip on import.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import open_clip
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hub_constants
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.utils import get_session
from open_clip.transformer import QuickGELU
from torch import nn

from caadbench.errors import ModelError, WeightsUnavailable
from caadbench.models.feature_cache import IMAGE_FEATURES, autocast_key, tensor_digest
from caadbench.models.pos_embed import DEFAULT_POS_EMBED_RESIZE, check_resize, set_input_size
from caadbench.models.weight_origin import OPENAI_ENTRIES, read_layout, recognise, split_named
from caadbench.models.world.weights import WORLD_TAG, is_world_file, world_weights
from caadbench.utils.hashing import sha256_file

logger = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).with_name("configs")
open_clip.add_model_config(CONFIG_DIR)

Tower = Literal["image", "text"]
HF_HUB, LOCAL_DIR = "hf-hub:", "local-dir:"
OPEN_CLIP_CONFIG = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
"""Weights file names looked for, in this order, in a hub repository or a ``local-dir:`` folder."""
RANDOM_INIT = ("random", "random-init", "none", "")
"""``--pretrained`` values that mean seeded random initialisation."""
PROBE_TIMEOUT = 5.0
"""Seconds the one HEAD request through huggingface_hub's session may take before the hub counts as unreachable."""


@dataclass(frozen=True)
class BackboneIdentity:
    """What a backbone is, recorded in every result and checkpoint.

    Attributes:
        arch: open_clip architecture name (``ViT-B-16-plus-240``, ``caad-tiny``, ``hf-hub:ORG/NAME``,
            ``local-dir:PATH``).
        weights: ``"random-init"``, ``"openclip:<tag>"``, ``"hf-hub:<repo>"``, ``"file:<name>"``, ``"world"`` (the
            shipped world weights) or ``"world-file:<name>"`` (a checkpoint written by ``caadbench pretrain``).
            A local file recognised as a pretrained tag's is ``"openclip:<tag>"`` (by its sha256) or
            ``"file:<name> as openclip:<tag>"`` (named, or told by OpenAI's archive format); see
            :mod:`~caadbench.models.weight_origin`.
        sha256: sha256 of the weights file, ``None`` for random init.
        init_seed: the seed of the random initialisation (meaningful for random init only).
        image_size: input side in pixels.
        activation: the MLP activation the network was built with, ``"gelu"`` or ``"quickgelu"``.
        pos_embed_resize: how the checkpoint's positional embedding was resized to ``image_size``
            (:data:`~caadbench.models.pos_embed.POS_EMBED_RESIZES`); ``None`` when it was not resized (the
            checkpoint's own grid, or random init built at that size).
    """

    arch: str
    weights: str
    sha256: str | None
    init_seed: int
    image_size: int
    activation: str = "gelu"
    pos_embed_resize: str | None = None

    @property
    def is_random_init(self) -> bool:
        return self.weights == "random-init"

    @property
    def known_by_content(self) -> bool:
        """Whether the weights are identified by what they are (a file's sha256, a seeded init), not a name."""
        return bool(self.sha256) or self.is_random_init

    def to_dict(self) -> dict:
        return asdict(self)

    def weights_key(self) -> tuple:
        """What identifies the network: architecture, image size, activation, positional-embedding resizing and the
        file's sha256 when there is one, else the seeded random init's seed, else the weights label (never just a
        name when a hash or a seed is known). The caches key on it (:mod:`~caadbench.models.text_cache`,
        :mod:`~caadbench.models.feature_cache`)."""
        if self.sha256:
            which: tuple = ("sha256", self.sha256)
        elif self.is_random_init:
            which = ("random-init", self.init_seed)
        else:
            which = ("weights", self.weights)
        return (self.arch, self.image_size, self.activation, self.pos_embed_resize, *which)

    def same_weights(self, other: BackboneIdentity) -> bool:
        """True when both are the same network: architecture, weights (file hash, tag or seeded init), activation and
        positional-embedding resizing."""
        return self.weights_key() == other.weights_key()


@dataclass
class ImageTokens:
    """Tokens of selected image-encoder blocks.

    Attributes:
        embedding: ``(B, D)`` the pooled, projected image embedding (not L2-normalised).
        cls: per requested block, ``(B, C)`` class token (``C = D`` when projected, else the width).
        patches: per requested block, ``(B, N, C)`` patch tokens in row-major grid order, ``N = gh * gw``.
    """

    embedding: torch.Tensor
    cls: dict[int, torch.Tensor]
    patches: dict[int, torch.Tensor]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """open_clip logs "initialized randomly" on the root logger; random init is the point here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# ------------------------------------------------------------------------------------------ weights


def _offline(what: str, reason: str, way_out: str) -> WeightsUnavailable:
    return WeightsUnavailable(what, f"not cached here and {reason}; {way_out}")


def _hub_file(repo: str, names: Sequence[str], what: str, way_out: str) -> str:
    """The local path of the first of ``names`` in hub repository ``repo``: from the cache, else downloaded.

    "Offline" is decided as huggingface_hub decides it: its ``HF_HUB_OFFLINE`` setting, its endpoint
    (``HF_ENDPOINT``), its HTTP session (proxies, offline guard) and its errors; one HEAD request of at most
    :data:`PROBE_TIMEOUT` seconds tells whether the hub answers, so a refusal comes at once (a download's own
    retries would take half a minute).

    Raises:
        WeightsUnavailable: at once, naming ``what`` and saying how to do without the hub (``way_out``).
    """
    for name in names:
        hit = try_to_load_from_cache(repo, name)
        if isinstance(hit, str) and os.path.isfile(hit):
            return hit
    if hub_constants.HF_HUB_OFFLINE:
        raise _offline(what, "the Hugging Face hub is switched off (HF_HUB_OFFLINE)", way_out)
    endpoint = hub_constants.ENDPOINT.rstrip("/")
    for name in names:
        url = f"{endpoint}/{repo}/resolve/main/{name}"
        try:
            status = get_session().head(url, timeout=PROBE_TIMEOUT).status_code
        except Exception as exc:  # the session's own errors: offline guard, connect/timeout/proxy errors
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise _offline(what, f"the hub at {endpoint} cannot be reached ({reason})", way_out) from None
        if status == 404:
            continue
        if status >= 400:
            raise WeightsUnavailable(what, f"the hub answered HTTP {status} for {url}; {way_out}")
        try:
            return hf_hub_download(repo, name)
        except Exception as exc:  # LocalEntryNotFoundError, HTTP and connection errors during the download
            raise WeightsUnavailable(what, f"download from {endpoint} failed ({type(exc).__name__}: "
                                           f"{' '.join(str(exc).split())[:160]}); {way_out}") from None
    raise WeightsUnavailable(what, f"hub repository {repo} has none of {', '.join(names)}")


def _tag_file(arch: str, tag: str, pcfg: Mapping[str, Any]) -> str:
    """The weights file of an open_clip pretrained tag (cached or downloaded)."""
    way_out = (f"download the weights where you have internet (open_clip.create_model('{arch}', pretrained='{tag}')) "
               "and pass the checkpoint file instead: --pretrained /path/to/open_clip_pytorch_model.bin")
    hub = pcfg.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)
        names = list(WEIGHT_FILES) if filename in ("", WEIGHT_FILES[1]) else [filename]
        return _hub_file(repo.rstrip("/"), names, f"{arch}:{tag}", way_out)
    if pcfg.get("file") and os.path.isfile(pcfg["file"]):
        return pcfg["file"]
    url = pcfg.get("url", "")
    local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
    if url and local.is_file():
        return str(local)
    if hub_constants.HF_HUB_OFFLINE:
        raise _offline(f"{arch}:{tag}", "downloads are switched off (HF_HUB_OFFLINE)", way_out)
    try:
        return open_clip.download_pretrained_from_url(url)
    except OSError as exc:
        raise _offline(f"{arch}:{tag}", f"{url} cannot be fetched ({exc})", way_out) from None


def _schema_config(arch: str, pretrained: str | None) -> tuple[dict[str, Any], str | None, str]:
    """``(open_clip_config.json content, weights file or None, weights label)`` of an ``hf-hub:``/``local-dir:``
    architecture; ``pretrained`` may only ask for random initialisation (the weights come with the config)."""
    random_init = pretrained is not None and pretrained in RANDOM_INIT
    if pretrained is not None and not random_init:
        raise WeightsUnavailable(pretrained, f"--pretrained cannot be combined with --backbone {arch}: its weights "
                                             "come with it (pass --pretrained random for a random init)")
    if arch.startswith(HF_HUB):
        repo = arch[len(HF_HUB):]
        way_out = (f"download it where you have internet (huggingface-cli download {repo} --local-dir DIR) and "
                   "pass --backbone local-dir:DIR")
        config = _hub_file(repo, [OPEN_CLIP_CONFIG], arch, way_out)
        weights = None if random_init else _hub_file(repo, WEIGHT_FILES, arch, way_out)
        label = f"hf-hub:{repo}"
    else:
        folder = Path(os.path.expanduser(arch[len(LOCAL_DIR):]))
        config = folder / OPEN_CLIP_CONFIG
        if not config.is_file():
            raise ModelError(arch, f"{config} not found (a local-dir: backbone is a folder with "
                                   f"{OPEN_CLIP_CONFIG} and {' or '.join(WEIGHT_FILES)})")
        found = [folder / n for n in WEIGHT_FILES if (folder / n).is_file()]
        if not found and not random_init:
            raise WeightsUnavailable(arch, f"no weights file in {folder} (expected {' or '.join(WEIGHT_FILES)})")
        weights = None if random_init else str(found[0])
        label = f"file:{found[0].name}" if weights else "random-init"
    try:
        data = json.loads(Path(config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(str(config), f"unreadable open_clip config ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_cfg"), dict):
        raise ModelError(str(config), "not an open_clip config (no model_cfg object)")
    return data["model_cfg"], weights, "random-init" if random_init else label


def check_towers(arch: str, model_cfg: Mapping[str, Any]) -> None:
    """Refuse, before anything is built, a configuration whose image or text tower is not open_clip's own.

    Raises:
        ModelError: one line naming the foreign tower and saying which models can use it (none can).
    """
    vision, text = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    if vision.get("timm_model_name"):
        tower = f"its image tower is the timm model {vision['timm_model_name']}"
    elif isinstance(vision.get("layers"), (list, tuple)):
        tower = "its image tower is a ResNet (open_clip's ModifiedResNet)"
    elif text.get("hf_model_name"):
        tower = f"its text tower is the Hugging Face model {text['hf_model_name']}"
    else:
        return
    from caadbench.models.registry import list_models  # the registry imports this module

    families = ", ".join(sorted({spec.family for spec in list_models()}))
    raise ModelError(arch, f"{tower}; every caadbench model ({families}) reads class and patch tokens of "
                           "intermediate blocks, encodes token subsets or hooks blocks, which only open_clip's "
                           "own ViT image tower and text transformer expose, so none can use it: pick an open_clip "
                           "ViT architecture (ViT-B-16, ViT-B-16-plus-240, ViT-L-14-336, ...)")


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a backbone's weights come from and how the network must be built for them.

    Attributes:
        file: the weights file (``None``: random initialisation).
        label: the weights label of :class:`BackboneIdentity`.
        sha256: the file's sha256 (``None`` for random init).
        quick_gelu: build QuickGELU whatever the architecture's config says (the weights were trained with it).
        mean, std: image normalisation the weights imply (``None``: the architecture's).
        torchscript: the file is a TorchScript archive (OpenAI's release format).
        grid: side of the patch grid the file's positional embedding was trained on (``None``: unknown).
    """

    file: str | None
    label: str
    sha256: str | None = None
    quick_gelu: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    torchscript: bool = False
    grid: int | None = None


LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
"""The first pickle of ``torch.save``'s pre-1.6 format (its magic number), which ``torch.load(weights_only=True)``
reads without running code."""


def refuse_plain_pickle(path: str) -> None:
    """Refuse, before anything unpickles it, a file that is not a weights file: above all a plain pickle (which
    can run any code when loaded).

    Weights files are zip archives (``torch.save``, TorchScript), safetensors (an 8-byte header length, then a JSON
    header), or ``torch.save``'s legacy format (:data:`LEGACY_TORCH_MAGIC`); those are read with ``weights_only``
    loading or without pickle at all.

    Raises:
        WeightsUnavailable: naming the file, for any other content.
    """
    with open(path, "rb") as fh:
        head = fh.read(len(LEGACY_TORCH_MAGIC))
    if head.startswith((b"PK\x03\x04", LEGACY_TORCH_MAGIC)) or head[8:9] == b"{":
        return
    what = "a plain pickle, which caadbench never unpickles (it could run code)" if head[:1] == b"\x80" else \
        "not a weights file (neither torch.save's zip archive nor safetensors)"
    raise WeightsUnavailable(path, f"is {what}; pass open_clip weights saved by torch.save or as .safetensors")


def _file_weights(arch: str, path: str, label: str | None = None, named: str | None = None) -> ResolvedWeights:
    """A weights file: its sha256 and layout and, unless ``label`` already says what it is (a tag's file, the world
    weights, a hub repository's), what it is recognised as (:func:`~caadbench.models.weight_origin.recognise`)."""
    refuse_plain_pickle(path)
    sha, layout = sha256_file(path), read_layout(path)
    grid, torchscript = (layout.grid, layout.torchscript) if layout is not None else (None, False)
    if label is not None:
        return ResolvedWeights(path, label, sha, torchscript=torchscript, grid=grid)
    origin = recognise(arch, path, sha, layout, named)
    if (open_clip.get_model_config(arch) or {}).get("quick_gelu") and origin.tag and not origin.quick_gelu:
        logger.warning("%s: %s builds QuickGELU, but these are open_clip's %s weights, trained with GELU",
                       path, arch, origin.tag)
    return ResolvedWeights(path, origin.label(path), sha, origin.quick_gelu, origin.mean, origin.std, torchscript,
                           grid)


def resolve_weights(arch: str, pretrained: str | None) -> ResolvedWeights:
    """Decide where an architecture's weights come from, touching the network only to download them.

    Args:
        arch: open_clip architecture name, ``hf-hub:ORG/NAME`` or ``local-dir:PATH``.
        pretrained: ``None`` (random init; for ``hf-hub:``/``local-dir:`` the weights that come with it), a
            value of :data:`RANDOM_INIT`, ``"world"`` (the shipped world weights), an open_clip tag, a local
            checkpoint path, or ``TAG=PATH`` (a local file of that open_clip tag's weights).

    Returns:
        The file, its label and sha256, and what the weights imply for the build (QuickGELU, mean/std): a tag's,
        or that of the tag a local file is recognised as (:func:`~caadbench.models.weight_origin.recognise`). A
        tag's file comes from the hub cache or is downloaded here.

    Raises:
        ModelError: an unknown architecture, or one whose towers no model can use (:func:`check_towers`).
        WeightsUnavailable: at once, when weights cannot be had offline, the value is neither tag nor file, or a
            file's sha256 contradicts the architecture or the tag it was named as.
    """
    if arch.startswith((HF_HUB, LOCAL_DIR)):
        model_cfg, weights, label = _schema_config(arch, pretrained)
        check_towers(arch, model_cfg)
        return _file_weights(arch, weights, label) if weights else ResolvedWeights(None, label)
    if arch not in open_clip.list_models():
        raise ModelError(arch, f"unknown open_clip architecture (known: {', '.join(open_clip.list_models()[:8])}, "
                               f"...; or hf-hub:ORG/NAME, local-dir:PATH)")
    check_towers(arch, open_clip.get_model_config(arch) or {})
    if pretrained is None or pretrained in RANDOM_INIT:
        return ResolvedWeights(None, "random-init")
    if pretrained == WORLD_TAG:
        return _file_weights(arch, str(world_weights(arch).path), WORLD_TAG)
    if os.path.isfile(pretrained):
        if is_world_file(pretrained):
            return _file_weights(arch, pretrained, f"world-file:{Path(pretrained).name}")
        return _file_weights(arch, pretrained)
    named = split_named(pretrained)
    if named is not None:
        if not os.path.isfile(named[1]):
            raise WeightsUnavailable(named[1], "checkpoint file not found")
        return _file_weights(arch, named[1], named=named[0])
    pcfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not pcfg:
        if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
            raise WeightsUnavailable(pretrained, "checkpoint file not found")
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise WeightsUnavailable(pretrained, f"not a file and not an open_clip pretrained tag of {arch} (tags: {tags})")
    found = _file_weights(arch, _tag_file(arch, pretrained, pcfg), f"openclip:{pretrained}")
    return replace(found, quick_gelu=bool(pcfg.get("quick_gelu", False)), mean=pcfg.get("mean"), std=pcfg.get("std"))


def _load(model: nn.Module, weights: ResolvedWeights) -> None:
    """Load ``weights.file`` with open_clip's loader; OpenAI's archive entries (:data:`OPENAI_ENTRIES`) are the only
    state it may hold beyond the model's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TorchScript archive.*")  # torch.load handing it to torch.jit
        warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated.*")  # OpenAI's format is that
        missing, unexpected = open_clip.load_checkpoint(model, weights.file, strict=False,
                                                        weights_only=not weights.torchscript)
    unexpected = [k for k in unexpected if k not in OPENAI_ENTRIES]
    if missing or unexpected:
        raise RuntimeError(f"missing {missing[:5]}, unexpected {unexpected[:5]}")


def _build(arch: str, weights: ResolvedWeights, image_size: int | None, resize: str) -> tuple[nn.Module, str | None]:
    """The open_clip model with ``weights`` loaded (random init when there is no file) and the positional-embedding
    resizing it needed to take ``image_size``-pixel inputs (``None``: none).

    Random init is built at ``image_size`` directly. A checkpoint is loaded at the grid it was trained on, then its
    positional embedding is resized by ``resize`` (:func:`~caadbench.models.pos_embed.set_input_size`) to
    ``image_size`` (``None``: the architecture's size), never by open_clip's loader, whose resizing is fixed (bicubic,
    antialiased).
    """
    quick = {"force_quick_gelu": True} if weights.quick_gelu else {}
    try:
        if weights.file is None:
            sized = {"force_image_size": image_size} if image_size else {}
            return open_clip.create_model(arch, load_weights=False, **quick, **sized), None
        model = open_clip.create_model(arch, load_weights=False, **quick)
        target = image_size or int(model.visual.image_size[0])
        if weights.grid:  # the grid the file holds: open_clip's loader then finds nothing to resize
            set_input_size(model.visual, weights.grid * int(model.visual.patch_size[0]), resize)
        _load(model, weights)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise WeightsUnavailable(weights.file or arch, f"cannot load weights ({' '.join(str(exc).split())[:300]})") \
            from exc
    resized = set_input_size(model.visual, target, resize)
    return model, resize if resized else None


class ClipBackbone(nn.Module):
    """A frozen open_clip CLIP model with the hooks the methods need.

    Args:
        arch: open_clip architecture name, ``hf-hub:ORG/NAME`` or ``local-dir:PATH``.
        pretrained: open_clip tag, local checkpoint path, ``TAG=PATH`` (a local file of that tag's weights), or
            ``None`` for random initialisation (for ``hf-hub:``/``local-dir:``: the weights that come with it;
            ``"random"`` for random initialisation). A file is built as the tag it is recognised as
            (:mod:`~caadbench.models.weight_origin`): QuickGELU and mean/std as those weights were trained.
        image_size: input side in pixels; ``None`` keeps the architecture's size.
        init_seed: seed of the random initialisation, so every random-init backbone of one seed is identical.
        pos_embed_resize: how a checkpoint's positional embedding is resized when ``image_size`` differs from its
            own (:data:`~caadbench.models.pos_embed.POS_EMBED_RESIZES`; each method's official choice).
    """

    def __init__(
        self,
        arch: str = "ViT-B-16-plus-240",
        pretrained: str | None = None,
        image_size: int | None = None,
        init_seed: int = 0,
        pos_embed_resize: str = DEFAULT_POS_EMBED_RESIZE,
    ) -> None:
        super().__init__()
        check_resize(pos_embed_resize, arch)
        weights = resolve_weights(arch, pretrained)
        with torch.random.fork_rng(devices=[]), _quiet_root_logger():
            torch.manual_seed(init_seed)
            model, resized = _build(arch, weights, image_size, pos_embed_resize)
        if not hasattr(model, "visual") or not hasattr(model.visual, "transformer"):
            raise ModelError(arch, "only open_clip ViT image towers are supported")
        model.eval().requires_grad_(False)
        self.model = model
        visual = model.visual
        side = visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size
        activation = "quickgelu" if any(isinstance(m, QuickGELU) for m in model.modules()) else "gelu"
        self.identity = BackboneIdentity(arch, weights.label, weights.sha256, int(init_seed), int(side), activation,
                                         resized)
        self.tokenizer = open_clip.get_tokenizer(arch)
        mean = weights.mean or visual.preprocess_cfg["mean"]
        std = weights.std or visual.preprocess_cfg["std"]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    # ----------------------------------------------------------------- geometry
    @property
    def image_size(self) -> int:
        return self.identity.image_size

    @property
    def patch_size(self) -> int:
        return int(self.model.visual.patch_size[0])

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(gh, gw)`` patch grid of the image encoder."""
        return tuple(int(g) for g in self.model.visual.grid_size)

    @property
    def embed_dim(self) -> int:
        """Dimension ``D`` of the joint image-text space."""
        return int(self.model.visual.output_dim)

    @property
    def image_blocks(self) -> nn.ModuleList:
        return self.model.visual.transformer.resblocks

    @property
    def text_blocks(self) -> nn.ModuleList:
        return self._transformer("text").resblocks

    def width(self, tower: Tower) -> int:
        """Token width ``C`` of a tower's transformer."""
        return int(self._transformer(tower).width)

    def _transformer(self, tower: Tower) -> nn.Module:
        if tower == "image":
            return self.model.visual.transformer
        text = getattr(self.model, "text", None)
        return text.transformer if text is not None else self.model.transformer

    @property
    def logit_scale(self) -> float:
        """The model's learned temperature ``exp(logit_scale)`` (100 for pretrained CLIP)."""
        return float(self.model.logit_scale.exp().item())

    def train(self, mode: bool = True) -> ClipBackbone:
        """The backbone stays in eval mode (no dropout, no patch dropout); adapters live elsewhere."""
        return super().train(False)

    # ----------------------------------------------------------------- text
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, context_length)`` int64 token ids on the backbone's device."""
        return self.tokenizer(list(texts)).to(self.mean.device)

    @property
    def _token_embedding(self) -> nn.Embedding:
        text = getattr(self.model, "text", None)
        module = getattr(text if text is not None else self.model, "token_embedding", None)
        if not isinstance(module, nn.Embedding):
            raise ModelError(self.identity.arch, "the text tower has no token embedding table (learnable prompts "
                                                 "need an open_clip text transformer)")
        return module

    @property
    def context_length(self) -> int:
        """Tokens per text sequence (start and end tokens included)."""
        return int(self.tokenize([""]).shape[1])

    def token_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(N, L, C)`` embeddings of ``(N, L)`` token ids (the text tower's input, before positions are added)."""
        return self._token_embedding(tokens)

    def text_tower_hooked(self) -> bool:
        """True while any forward hook is registered on the text tower (adapters, learnable prompts)."""
        text = getattr(self.model, "text", None) or self.model
        modules = [self._token_embedding, *self._transformer("text").modules(), getattr(text, "ln_final", None)]
        modules = [m for m in modules if isinstance(m, nn.Module)]
        return any(m._forward_hooks or m._forward_pre_hooks for m in modules)

    def encode_text(self, texts: Sequence[str] | torch.Tensor, normalize: bool = True,
                    embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, D)`` text embeddings (through any active text-block hooks).

        Args:
            texts: strings, or ``(N, L)`` token ids.
            normalize: L2-normalise the outputs.
            embeddings: ``(N, L, C)`` token embeddings to encode instead of those of the tokens (learnable prompts);
                the tokens still say where each sequence ends (the end-of-text token is pooled).
        """
        tokens = self.tokenize(texts) if not isinstance(texts, torch.Tensor) else texts
        if embeddings is None:
            return self.model.encode_text(tokens, normalize=normalize)
        if tuple(embeddings.shape[:2]) != tuple(tokens.shape):
            raise ModelError(None, f"embeddings {tuple(embeddings.shape)} do not match tokens {tuple(tokens.shape)}")
        handle = self._token_embedding.register_forward_hook(lambda _m, _a, y: embeddings.to(y.dtype))
        try:
            return self.model.encode_text(tokens, normalize=normalize)
        finally:
            handle.remove()

    # ----------------------------------------------------------------- image
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` in [0, 1] → the model's mean/std-normalised input."""
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            raise ModelError(None, f"images are {tuple(images.shape[-2:])}, the backbone expects "
                                   f"{self.image_size}x{self.image_size}")
        return (images - self.mean) / self.std

    def image_tower_hooked(self) -> bool:
        """True while any forward hook is registered on the image tower (adapters, attention changes)."""
        return any(m._forward_hooks or m._forward_pre_hooks for m in self.model.visual.modules())

    def _cached(self, op: tuple, images: torch.Tensor, compute: Callable[[], Any]) -> Any:
        """``compute()``, or its copy from :data:`~caadbench.models.feature_cache.IMAGE_FEATURES` when the same
        frozen tower already ran the same operation on the same pixels (see that module for the key)."""
        if not IMAGE_FEATURES.usable(images) or self.image_tower_hooked():
            return compute()
        visual = self.model.visual
        key = (self.identity.weights_key(), sum(p._version for p in visual.parameters()), visual.training,
               images.device.type, autocast_key(images.device.type), op, tensor_digest(images))
        return IMAGE_FEATURES.get_or_compute(key, compute)

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, D)`` image embeddings from ``(B, 3, S, S)`` images in [0, 1] (cached, see :meth:`_cached`)."""
        return self._cached(("encode_image", normalize), images,
                            lambda: self.model.encode_image(self.normalize(images), normalize=normalize))

    def project_tokens(self, tokens: torch.Tensor, projection: bool = True, ln_post: bool = True) -> torch.Tensor:
        """Map ``(..., C)`` transformer tokens into the joint space ``(..., D)`` (final norm, projection).

        With ``projection=False`` only the final LayerNorm is applied: ``(..., C)``, the penultimate
        representation that the projection consumes (WinCLIP+'s patch memory). With ``ln_post=False`` the final
        LayerNorm is skipped (AnomalyCLIP's image embedding: the class token projected as it is).
        """
        visual = self.model.visual
        out = visual.ln_post(tokens) if ln_post else tokens
        return out @ visual.proj if projection and visual.proj is not None else out

    def image_tokens(self, images: torch.Tensor, layers: Sequence[int], project: bool = True) -> ImageTokens:
        """Class and patch tokens of the given blocks (0-based; negative counts from the end).

        Args:
            images: ``(B, 3, S, S)`` in [0, 1].
            layers: block indices.
            project: map tokens into the joint space with :meth:`project_tokens`.

        Returns:
            :class:`ImageTokens` keyed by the non-negative block index (cached, see :meth:`_cached`).
        """
        n_blocks = len(self.image_blocks)
        idx = sorted({i % n_blocks for i in layers})
        return self._cached(("image_tokens", tuple(idx), project), images,
                            lambda: self._image_tokens(images, idx, project))

    def _image_tokens(self, images: torch.Tensor, idx: list[int], project: bool) -> ImageTokens:
        """:meth:`image_tokens` without the cache, for sorted non-negative block indices."""
        out = self.model.visual.forward_intermediates(
            self.normalize(images), indices=idx, output_fmt="NLC", output_extra_tokens=True,
        )
        cls, patches = {}, {}
        for i, prefix, tok in zip(idx, out["image_intermediates_prefix"], out["image_intermediates"]):
            c, p = prefix[:, 0], tok
            if project:
                c, p = self.project_tokens(c), self.project_tokens(p)
            cls[i], patches[i] = c, p
        return ImageTokens(embedding=out["image_features"], cls=cls, patches=patches)

    def value_value_attention(self, block: int, tokens: torch.Tensor) -> torch.Tensor:
        """DPAM's attention branch of image block ``block``: ``ls_1(out_proj(softmax(v vᵀ / √d_h) v))`` per head,
        with ``v`` the block's value projection of ``ln_1(tokens)`` (queries and keys replaced by the values).

        This is the branch the block would add to its residual stream in place of its query-key attention; the
        block's MLP is not applied (AnomalyCLIP's V-V path skips it).

        Args:
            block: image block index (negative counts from the end).
            tokens: ``(B, L, C)`` the block's input tokens (class token first).

        Returns:
            ``(B, L, C)``.
        """
        blk = self.image_blocks[block]
        attn = getattr(blk, "attn", None)
        if not isinstance(attn, nn.MultiheadAttention):
            raise ModelError(self.identity.arch, "value-value attention needs nn.MultiheadAttention image blocks")
        C, heads = attn.embed_dim, attn.num_heads
        if attn.in_proj_weight is not None:
            weight = attn.in_proj_weight[2 * C:]
        else:
            weight = attn.v_proj_weight
        bias = attn.in_proj_bias[2 * C:] if attn.in_proj_bias is not None else None
        B, L, _ = tokens.shape
        v = F.linear(blk.ln_1(tokens), weight, bias).view(B, L, heads, C // heads).transpose(1, 2)  # (B, h, L, d)
        out = F.scaled_dot_product_attention(v, v, v).transpose(1, 2).reshape(B, L, C)
        return blk.ls_1(attn.out_proj(out))

    def encode_token_subsets(
        self,
        images: torch.Tensor,
        subsets: torch.Tensor,
        normalize: bool = True,
        max_sequences: int = 4096,
    ) -> torch.Tensor:
        """Run the whole image encoder on subsets of each image's patch tokens.

        Each subset keeps the class token and the listed patch tokens, which carry their own positional
        embeddings; all other tokens are removed before the first block, so attention never sees them.
        This is WinCLIP's window masking, done for every (image, subset) pair in few encoder calls.

        Args:
            images: ``(B, 3, S, S)`` in [0, 1].
            subsets: ``(M, n)`` int64 patch indices (row-major over the ``gh × gw`` grid), equal size ``n``.
            normalize: L2-normalise the outputs.
            max_sequences: at most this many (image, subset) sequences per encoder call.

        Returns:
            ``(B, M, D)`` embeddings of each subset.
        """
        if subsets.ndim != 2:
            raise ValueError(f"subsets must be (M, n), got {tuple(subsets.shape)}")
        op = ("encode_token_subsets", normalize, max_sequences, tensor_digest(subsets.cpu()))
        return self._cached(op, images, lambda: self._token_subsets(images, subsets, normalize, max_sequences))

    def _token_subsets(self, images: torch.Tensor, subsets: torch.Tensor, normalize: bool,
                       max_sequences: int) -> torch.Tensor:
        """:meth:`encode_token_subsets` without the cache."""
        n_patches = self.grid_size[0] * self.grid_size[1]
        if subsets.numel() and (int(subsets.min()) < 0 or int(subsets.max()) >= n_patches):
            raise ValueError(f"patch indices must lie in [0, {n_patches})")
        pixels = self.normalize(images)
        B, M = pixels.shape[0], subsets.shape[0]
        with_cls = torch.cat([subsets.new_zeros(M, 1), subsets + 1], dim=1).to(pixels.device)
        per_call = max(1, max_sequences // max(B, 1))
        chunks = []
        for start in range(0, M, per_call):
            chunk = with_cls[start:start + per_call]

            def keep_subset(module: nn.Module, args: tuple, chunk: torch.Tensor = chunk) -> tuple:
                x = args[0]  # (B, 1 + N, C) after patch embedding, positional embedding and ln_pre
                sub = x[:, chunk]  # (B, m, 1 + n, C)
                return (sub.reshape(-1, sub.shape[-2], sub.shape[-1]), *args[1:])

            handle = self.model.visual.transformer.register_forward_pre_hook(keep_subset)
            try:
                emb = self.model.visual(pixels)
            finally:
                handle.remove()
            chunks.append(emb.view(B, chunk.shape[0], -1))
        out = torch.cat(chunks, dim=1)
        return F.normalize(out, dim=-1) if normalize else out

    # ----------------------------------------------------------------- adapters
    @contextlib.contextmanager
    def block_hooks(self, tower: Tower, fns: Mapping[int, Callable[[torch.Tensor], torch.Tensor]]) -> Iterator[None]:
        """Replace the output ``y`` of block ``i`` of a tower by ``fns[i](y)`` while the context is open.

        ``y`` is ``(B, L, C)`` (batch first) whatever layout the tower runs in. Residual adapters are written as
        ``lambda y: y + adapter(y)``; learnable prompt tokens for the next block as a function that swaps some
        positions of ``y``. Gradients flow through the hooks, so adapters train while the backbone's own
        parameters stay frozen.
        """
        blocks = self.image_blocks if tower == "image" else self.text_blocks
        batch_first = getattr(self._transformer(tower), "batch_first", True)
        handles = []
        try:
            for i, fn in fns.items():
                if not -len(blocks) <= i < len(blocks):
                    raise ModelError(None, f"{tower} tower has {len(blocks)} blocks, cannot hook block {i}")
                if not batch_first:
                    fn = lambda y, fn=fn: fn(y.transpose(0, 1)).transpose(0, 1)  # noqa: E731
                handles.append(blocks[i].register_forward_hook(lambda _m, _a, y, fn=fn: fn(y)))
            yield
        finally:
            for h in handles:
                h.remove()
