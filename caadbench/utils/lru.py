"""A process-wide least-recently-used cache bounded in bytes (the one behind the sample and feature caches)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any


class BytesLRU:
    """Values under hashable keys, evicted least recently used once their sizes sum past a limit.

    Args:
        env: environment variable holding the limit in MiB (read at every store, so a test or a user can change
            it at run time; ``0`` turns the cache off).
        default_mb: the limit when ``env`` is unset or not a number.
        size: bytes a value holds.
        copy: what a hit returns (a copy the caller may modify; identity by default).
    """

    def __init__(self, env: str, default_mb: float, size: Callable[[Any], int],
                 copy: Callable[[Any], Any] = lambda v: v) -> None:
        self.env, self.default_mb, self._size, self._copy = env, default_mb, size, copy
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.enabled = True
        self.hits = self.misses = 0

    def limit_bytes(self) -> int:
        """The current limit in bytes."""
        try:
            return int(float(os.environ.get(self.env, self.default_mb)) * 2**20)
        except ValueError:
            return int(self.default_mb * 2**20)

    @property
    def active(self) -> bool:
        """Whether the cache may be read and written now."""
        return self.enabled and self.limit_bytes() > 0

    def contains(self, key: Any) -> bool:
        """Whether ``key`` is held (no hit counted, recency unchanged)."""
        with self._lock:
            return key in self._entries

    def get(self, key: Any) -> Any | None:
        """A copy of the value under ``key`` (counted as a hit), or ``None`` (not counted)."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return self._copy(value)

    def put(self, key: Any, value: Any) -> None:
        """Store ``value`` (counted as a miss) unless it alone exceeds the limit; evict beyond the limit."""
        size, limit = self._size(value), self.limit_bytes()
        with self._lock:
            self.misses += 1
            if size > limit or key in self._entries:
                return
            self._entries[key] = value
            self._bytes += size
            while self._bytes > limit:
                _, old = self._entries.popitem(last=False)
                self._bytes -= self._size(old)

    def get_or_compute(self, key: Any, compute: Callable[[], Any], store: Callable[[Any], Any] = lambda v: v) -> Any:
        """The cached value's copy, or ``compute()`` (``store(value)`` is kept; ``value`` is returned)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        value = compute()
        self.put(key, store(value))
        return value

    def clear(self) -> None:
        """Forget every entry and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def stats(self) -> dict[str, int]:
        """``{"entries", "bytes", "hits", "misses"}`` since the last :meth:`clear`."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits, "misses": self.misses}

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Neither read nor write while the context is open (the uncached reference of tests and benchmarks)."""
        before = self.enabled
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = before
