"""What a local weights file is: the open_clip pretrained tag it stands for, when that can be told.

A network must be built the way its weights were trained. OpenAI's CLIP weights (and a few LAION ones) were trained
with QuickGELU, which open_clip builds only when told so (a tag's ``quick_gelu``, or a ``*-quickgelu``
architecture), and their images normalised with the tag's mean/std. A file given as ``--pretrained`` is therefore
recognised, first match wins:

1. **named**: ``--pretrained TAG=PATH``, TAG an open_clip pretrained tag of the architecture
   (``openai=/w/ViT-L-14-336px.pt``);
2. **sha256**: the file's sha256 is one that open_clip's pretrained registry carries in a download URL: OpenAI's
   URLs hold the whole hash as a path segment (``…/clip/models/<sha256>/ViT-L-14-336px.pt``), open_clip's own
   release files end in its first 8 hex digits (``…-455df137.pt``), which open_clip's downloader checks. They are
   read from the installed open_clip's registry, never copied here;
3. **archive**: OpenAI's release format, a TorchScript archive, or a state dict holding that archive's
   ``input_resolution``, ``context_length`` and ``vocab_size`` entries (``torch.save(jit_model.state_dict())``):
   OpenAI's weights, tag ``openai`` (QuickGELU and OpenAI's mean/std also where the architecture has no such tag).

Anything else is **unknown**: used as given (the architecture's own activation and mean/std), which a log warning
says once per file and process.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import open_clip
import torch

from caadbench.errors import WeightsUnavailable

logger = logging.getLogger(__name__)

OPENAI_TAG = "openai"
OPENAI_ENTRIES = ("input_resolution", "context_length", "vocab_size")
"""State entries of OpenAI's release archives that are not model weights (open_clip drops them from TorchScript)."""
QUICKGELU_SUFFIX = "-quickgelu"
POSITIONS = "visual.positional_embedding"
_FULL = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"-([0-9a-f]{8})\.[A-Za-z]+$")
_WARNED: set[str] = set()


@dataclass(frozen=True)
class WeightsOrigin:
    """What a weights file was recognised as.

    Attributes:
        how: ``"named"``, ``"sha256"``, ``"archive"`` or ``"unknown"`` (see the module docstring).
        tag: the open_clip pretrained tag it stands for (``None`` when unknown, or an OpenAI archive for an
            architecture without an ``openai`` tag).
        quick_gelu: its weights were trained with QuickGELU.
        mean, std: the image normalisation its tag implies (``None``: the architecture's).
        torchscript: the file is a TorchScript archive (read through ``torch.jit``).
    """

    how: str
    tag: str | None
    quick_gelu: bool
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    torchscript: bool

    def label(self, path: str | Path) -> str:
        """The weights label of results: ``openclip:<tag>`` when the sha256 proves it, else ``file:<name>``, with
        the tag the file was taken for when it was named or told by its format."""
        name = Path(path).name
        if self.how == "sha256":
            return f"openclip:{self.tag}"
        if self.how == "named" or (self.how == "archive" and self.tag):
            return f"file:{name} as openclip:{self.tag}"
        if self.how == "archive":
            return f"file:{name} (OpenAI archive)"
        return f"file:{name}"


def split_named(value: str) -> tuple[str, str] | None:
    """``(tag, path)`` of a ``TAG=PATH`` value, ``None`` for anything else (an existing file is never split)."""
    if os.path.isfile(value) or "=" not in value:
        return None
    tag, path = value.split("=", 1)
    if not tag or "/" in tag or os.sep in tag:
        return None
    return tag, path


def url_digest(url: str) -> str | None:
    """The sha256 (or, for open_clip's own release files, its first 8 hex digits) a download URL carries."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    for segment in reversed(segments):
        if _FULL.fullmatch(segment):
            return segment
    found = _PREFIX.search(segments[-1]) if "mlfoundations" in parts.path else None
    return found.group(1) if found else None


def registry_digests() -> dict[str, list[tuple[str, str]]]:
    """``{sha256 or 8-digit prefix: [(architecture, tag), ...]}`` over open_clip's pretrained registry."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for model, tag in open_clip.list_pretrained():
        digest = url_digest((open_clip.get_pretrained_cfg(model, tag) or {}).get("url", ""))
        if digest:
            out[digest].append((model, tag))
    return dict(out)


def base_architecture(arch: str) -> str:
    """``ViT-L-14-336`` for ``ViT-L-14-336-quickgelu`` (the same weights' two open_clip names)."""
    return arch[: -len(QUICKGELU_SUFFIX)] if arch.endswith(QUICKGELU_SUFFIX) else arch


def is_torchscript(path: str | Path) -> bool:
    """A TorchScript archive: a zip holding ``constants.pkl`` (what ``torch.jit.save`` writes, ``torch.save`` not)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


@dataclass(frozen=True)
class FileLayout:
    """What a weights file holds, read without building anything.

    Attributes:
        keys: its state entries (``module.`` prefixes and a ``state_dict`` wrapper removed).
        positions: length of its image positional embedding (``1 + grid²``), ``None`` without one.
        torchscript: a TorchScript archive (read through ``torch.jit``).
    """

    keys: frozenset[str]
    positions: int | None
    torchscript: bool

    @property
    def grid(self) -> int | None:
        """Side of the patch grid the weights were trained on."""
        return math.isqrt(self.positions - 1) if self.positions else None


def read_layout(path: str | Path) -> FileLayout | None:
    """The :class:`FileLayout` of a weights file, ``None`` when it cannot be read (loading it reports why).

    Safetensors headers and ``torch.save`` zip files are read lazily (memory-mapped); TorchScript archives are
    loaded through ``torch.jit``.
    """
    torchscript = is_torchscript(path)
    try:
        if str(path).endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                keys = set(f.keys())
                shapes = {k: f.get_slice(k).get_shape() for k in keys if k == POSITIONS}
        else:
            if torchscript:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch.jit.load is deprecated; OpenAI's files are what they are
                    state = torch.jit.load(str(path), map_location="cpu").state_dict()
            else:
                try:
                    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
                except RuntimeError:  # not a zip file: it cannot be memory-mapped, read it whole
                    state = torch.load(path, map_location="cpu", weights_only=True)
                state = state.get("state_dict", state) if isinstance(state, dict) else {}
            state = {str(k).removeprefix("module."): v for k, v in state.items()}
            keys = set(state)
            shapes = {POSITIONS: tuple(state[POSITIONS].shape)} if POSITIONS in state else {}
    except Exception:  # noqa: BLE001 - any unreadable file: building it reports the problem in its own words
        return None
    return FileLayout(frozenset(keys), int(shapes[POSITIONS][0]) if POSITIONS in shapes else None, torchscript)


def _from_tag(model: str, tag: str, how: str, torchscript: bool) -> WeightsOrigin:
    """The origin ``how`` told: open_clip's pretrained entry ``model:tag`` (its QuickGELU flag, mean and std)."""
    cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    return WeightsOrigin(how, tag, bool(cfg.get("quick_gelu", False)), tuple(mean) if mean else None,
                         tuple(std) if std else None, torchscript)


def recognise(arch: str, path: str, sha256: str, layout: FileLayout | None,
              named: str | None = None) -> WeightsOrigin:
    """What the weights file ``path`` of architecture ``arch`` is (see the module docstring).

    Args:
        arch: the open_clip architecture it is loaded into.
        path: the file.
        sha256: its sha256.
        layout: what it holds (:func:`read_layout`).
        named: the tag the user said it is (``TAG=PATH``), if any.

    Raises:
        WeightsUnavailable: ``named`` is not a tag of ``arch``; or the sha256 proves the file is another tag's or
            another architecture's.
    """
    torchscript = layout is not None and layout.torchscript
    if named is not None and not open_clip.get_pretrained_cfg(arch, named):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise WeightsUnavailable(f"{named}={path}", f"{named!r} is not an open_clip pretrained tag of {arch} "
                                                    f"(tags: {tags})")
    digests = registry_digests()
    known = digests.get(sha256) or digests.get(sha256[:8], [])
    if known:
        mine = [(m, t) for m, t in known if base_architecture(m) == base_architecture(arch)]
        if not mine:
            model, tag = known[0]
            raise WeightsUnavailable(path, f"its sha256 is that of open_clip's {base_architecture(model)}:{tag} "
                                           f"weights, not weights of {arch}; pass --backbone "
                                           f"{base_architecture(model)}")
        mine.sort(key=lambda entry: (entry[0] != arch, entry[1] != named))  # the exact name first, the named tag first
        model, tag = mine[0]
        if named is not None and tag != named:
            raise WeightsUnavailable(path, f"named {named!r}, but its sha256 is that of open_clip's "
                                           f"{base_architecture(arch)}:{tag} weights")
        return _from_tag(model, tag, "sha256", torchscript)
    if named is not None:
        return _from_tag(arch, named, "named", torchscript)
    if layout is not None and (torchscript or set(OPENAI_ENTRIES) <= layout.keys):
        if open_clip.get_pretrained_cfg(arch, OPENAI_TAG):
            return _from_tag(arch, OPENAI_TAG, "archive", torchscript)
        return WeightsOrigin("archive", None, True, tuple(open_clip.OPENAI_DATASET_MEAN),
                             tuple(open_clip.OPENAI_DATASET_STD), torchscript)
    if sha256 not in _WARNED:
        _WARNED.add(sha256)
        logger.warning("%s: origin unknown (no open_clip pretrained file has its sha256, and it is not OpenAI's "
                       "archive format): used as given, with %s's own activation and mean/std; if it is a "
                       "pretrained tag's file, say so with --pretrained TAG=%s", path, arch, path)
    return WeightsOrigin("unknown", None, False, None, None, torchscript)


__all__ = ["OPENAI_ENTRIES", "OPENAI_TAG", "FileLayout", "WeightsOrigin", "base_architecture", "is_torchscript",
           "read_layout", "recognise", "registry_digests", "split_named", "url_digest"]
