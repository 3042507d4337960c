"""Where a shard directory lives — a local folder or a URL — and how one of its files is read.

``Location.of(value)`` accepts what ``--data`` accepts:

* a path (or ``file://`` URL): the local folder;
* ``http://`` / ``https://``: read with the standard library (proxies from ``http_proxy``/``https_proxy``/
  ``no_proxy``), one request per file, no retries, :data:`TIMEOUT` seconds per connect or read;
* ``pipe:CMD``: a shell command that writes the file to stdout, as webdataset spells it. The file's path
  relative to the directory replaces ``{}`` in ``CMD`` (shell-quoted), or is appended to ``CMD`` when there is
  no ``{}``: ``pipe:curl -sf https://host/set/{}``, ``pipe:aws s3 cp s3://bucket/set/{} -``;
* any other scheme (``s3://``, ``gs://``, ``hf://``, ``memory://``, ...): through fsspec, when fsspec and the
  scheme's backend are installed (``pip install fsspec s3fs``).

Files are read whole (shards are at most ``max_shard_bytes``, 64 MB by default) so that their hash can be checked
before any byte of them is used. Failures are :class:`FileNotFoundError` (the file is absent) or
:class:`OSError` with a one-line reason; :mod:`caadbench.data.shards` turns them into ``ShardError`` s.
"""

from __future__ import annotations

import http.client
import shlex
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from caadbench import __version__

TIMEOUT = 30.0
"""Seconds an HTTP connect or read may take before the read fails."""
BLOCK = 1 << 20
HTTP = ("http", "https")


def _scheme(base: str) -> str:
    scheme = urlparse(base).scheme.lower()
    return "" if len(scheme) <= 1 else scheme  # "C:\\data" is a Windows path, not a URL


@dataclass(frozen=True)
class Location:
    """A shard directory (``rel == ""``) or a file in it.

    Attributes:
        base: the directory as given (a path, or a URL of a scheme listed in the module docstring).
        rel: the POSIX path of a file relative to ``base`` (empty for the directory itself).
    """

    base: str
    rel: str = ""

    @classmethod
    def of(cls, value: str | Path | Location) -> Location:
        if isinstance(value, Location):
            return value
        text = str(value)
        if _scheme(text) == "file":
            text = url2pathname(urlparse(text).path)
        return cls(text)

    @property
    def scheme(self) -> str:
        """``""`` for a local path, else the URL scheme (``http``, ``pipe``, ``s3``, ...)."""
        return "" if _scheme(self.base) == "file" else _scheme(self.base)

    @property
    def is_local(self) -> bool:
        return self.scheme == ""

    @property
    def path(self) -> Path:
        """The local path (only for local locations)."""
        if not self.is_local:
            raise ValueError(f"{self} is not a local path")
        return Path(self.base) / self.rel if self.rel else Path(self.base)

    @property
    def name(self) -> str:
        """The last name of the path (``caad-synth`` for ``https://host/sets/caad-synth/``)."""
        if self.rel:
            return self.rel.rsplit("/", 1)[-1]
        if self.is_local:
            return Path(self.base).name
        text = self.base[5:].split("{}")[0] if self.scheme == "pipe" else urlparse(self.base).path
        return text.strip().rstrip("/").rsplit("/", 1)[-1]

    def __truediv__(self, rel: str) -> Location:
        return Location(self.base, f"{self.rel}/{rel}" if self.rel else rel)

    def __str__(self) -> str:
        if self.is_local:
            return str(self.path)
        if not self.rel:
            return self.base
        if self.scheme == "pipe":
            quoted = shlex.quote(self.rel)
            return self.base.replace("{}", quoted) if "{}" in self.base else self.base + quoted
        return self.base.rstrip("/") + "/" + self.rel

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The file's bytes (at most ``limit``, when given: a longer file is cut there).

        Raises:
            FileNotFoundError: the file does not exist (local, HTTP 404/410, fsspec).
            OSError: anything else that stops the read, with a one-line reason.
        """
        if self.is_local:
            with open(self.path, "rb") as fh:
                return fh.read(-1 if limit is None else limit)
        if self.scheme in HTTP:
            return _read_http(str(self), limit)
        if self.scheme == "pipe":
            return _read_pipe(str(self)[len("pipe:"):], limit)
        return _read_fsspec(str(self), limit)


def _read_stream(fh, limit: int | None) -> bytes:
    out = bytearray()
    while limit is None or len(out) < limit:
        block = fh.read(BLOCK if limit is None else min(BLOCK, limit - len(out)))
        if not block:
            break
        out += block
    return bytes(out)


def _read_http(url: str, limit: int | None) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": f"caadbench/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return _read_stream(response, limit)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise FileNotFoundError(f"not found (HTTP {exc.code})") from None
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise OSError(f"cannot reach the server ({reason})") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise OSError(f"the transfer failed ({type(exc).__name__}: {exc})") from None


def _read_pipe(command: str, limit: int | None) -> bytes:
    try:
        # a pipe: URL is a shell command by definition (webdataset's convention)
        proc = subprocess.run(command, shell=True, capture_output=True, check=False)  # noqa: S602
    except OSError as exc:
        raise OSError(f"cannot run the pipe command ({exc.strerror or exc})") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OSError(f"pipe command exited with status {proc.returncode}" + (f": {lines[-1]}" if lines else ""))
    return proc.stdout if limit is None else proc.stdout[:limit]


def _read_fsspec(url: str, limit: int | None) -> bytes:
    scheme = urlparse(url).scheme
    try:
        import fsspec
    except ImportError:
        raise OSError(f"{scheme}:// URLs need the optional package fsspec and its {scheme} backend "
                      "(pip install fsspec, plus e.g. s3fs or gcsfs)") from None
    try:
        with fsspec.open(url, "rb") as fh:
            return _read_stream(fh, limit)
    except FileNotFoundError:
        raise FileNotFoundError("not found") from None
    except ImportError as exc:  # fsspec knows the protocol, its backend package is missing
        raise OSError(f"fsspec cannot open {scheme}:// URLs here ({exc})") from None
    except ValueError as exc:  # unknown protocol
        raise OSError(f"unsupported URL scheme {scheme}:// ({exc})") from None
    except OSError:
        raise
    except Exception as exc:  # a backend's own error type (botocore, gcsfs, ...)
        raise OSError(f"{type(exc).__name__}: {exc}") from None
