"""Progress of long steps (builds, evaluation passes, training): the one helper every progress display goes through.

On a terminal (stderr is a TTY) :func:`progress` is a tqdm bar. Anywhere else — a log file, CI, ``nohup`` — a bar
would be hidden, so it logs lines through the ``caadbench.progress`` logger instead. A step that ends within
:data:`QUIET_S` seconds logs nothing (a verify of a small set, one report); a longer one logs a start line at its
first update after that, then a line each time another :data:`PERCENT_STEP` % is done (at most one per
:data:`QUIET_S` seconds) or :data:`MAX_SILENCE_S` seconds have passed since the last line, and one when it ends::

    cc/test: started 3.1 s ago, 48/1736 img (2 %), 15.5 img/s, about 1 min 49 s left
    cc/test: 176/1736 img (10 %), 14.2 img/s, about 1 min 50 s left
    cc/test: done, 1736 img in 2 min 2 s (14.2 img/s)

``enabled=False`` shows nothing either way (tests, library callers that want silence, other ranks than 0).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

logger = logging.getLogger("caadbench.progress")

PERCENT_STEP = 10
"""A line each time this many more percent of the step are done."""
MAX_SILENCE_S = 30.0
"""... or when this many seconds passed since the last line."""
QUIET_S = 3.0
"""A step shorter than this logs nothing; lines are at least this far apart."""


def duration(seconds: float) -> str:
    """``"2 min 8 s"``, ``"1 h 3 min"``, ``"4.2 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class LogProgress:
    """The log-line form of a progress bar, with the part of tqdm's interface caadbench uses (``update``,
    ``set_postfix``, ``close``, ``n``, ``total``, ``disable``, iteration, context manager).

    Args:
        iterable: what to iterate (optional; ``total`` defaults to its length).
        total: units in the whole step (``None``: unknown; then lines come every :data:`MAX_SILENCE_S` seconds).
        desc: the step's name, first on every line.
        unit: what is counted (``img``, ``step``, ``shard``).
        initial: units already done (a resumed training).
        clock: seconds now (``time.monotonic``; tests pass their own).
    """

    disable = False

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, clock=time.monotonic) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self.initial = int(initial)
        self.clock = clock
        self.start = self.last = clock()
        self.postfix = ""
        self.started = self.closed = False
        self._next_percent = self._percent() // PERCENT_STEP * PERCENT_STEP + PERCENT_STEP

    def _percent(self) -> int:
        return int(100 * self.n / self.total) if self.total else 0

    def _rate(self) -> float:
        elapsed = self.clock() - self.start
        return (self.n - self.initial) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last < QUIET_S:
            return
        due = self.total and self._percent() >= self._next_percent and self.n < self.total
        if not self.started or due or now - self.last >= MAX_SILENCE_S:
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self._rate()
        resumed = f" (resumed at {self.initial})" if self.initial else ""
        head = f"{self.desc}: " + ("" if self.started else f"started {duration(now - self.start)} ago{resumed}, ")
        self.started = True
        text = head + (f"{self.n}/{self.total} {self.unit} ({self._percent()} %)" if self.total else
                       f"{self.n} {self.unit}")
        text += f", {rate:.1f} {self.unit}/s"
        if self.total and rate > 0:
            text += f", about {duration((self.total - self.n) / rate)} left"
        logger.info(text + self.postfix)
        self.last = now
        self._next_percent = self._percent() // PERCENT_STEP * PERCENT_STEP + PERCENT_STEP

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = False, **kwargs: Any) -> None:
        """Values shown at the end of the next lines (``loss 0.1234``)."""
        shown = {**(values or {}), **kwargs}
        self.postfix = "".join(f", {k} {v}" for k, v in shown.items())

    def close(self) -> None:
        if self.closed or not self.started:
            self.closed = True
            return
        self.closed = True
        elapsed = self.clock() - self.start
        logger.info(f"{self.desc}: done, {self.n} {self.unit} in {duration(elapsed)} ({self._rate():.1f} "
                    f"{self.unit}/s){self.postfix}")

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable or ():
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             initial: int = 0, enabled: bool = True) -> tqdm | LogProgress:
    """A progress display for one long step: a tqdm bar on a terminal, :class:`LogProgress` lines elsewhere, nothing
    when ``enabled`` is false (see the module docstring)."""
    if enabled and not sys.stderr.isatty():
        return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


__all__ = ["MAX_SILENCE_S", "PERCENT_STEP", "LogProgress", "duration", "progress"]
