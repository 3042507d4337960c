"""Logging: the library logs through module loggers (``logging.getLogger(__name__)``, all under ``caadbench``);
only the command line attaches a handler, so an application or notebook decides where library messages go.

``caadbench`` (the CLI) calls :func:`configure_cli_logging`: messages at ``INFO`` and above go to stderr as bare
lines (``WARNING`` and above prefixed with their level), so users see the same lines the library printed before.
"""

from __future__ import annotations

import logging
import sys

ROOT_LOGGER = "caadbench"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (click's test runner swaps it per invocation)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


class _CliFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return f"{record.levelname.lower()}: {text}" if record.levelno >= logging.WARNING else text


def configure_cli_logging(level: int = logging.INFO) -> logging.Logger:
    """Attach the CLI's stderr handler to the ``caadbench`` logger once and set its level; return the logger."""
    root = logging.getLogger()
    if not root.handlers:  # else a library's module-level logging.info() (open_clip's) installs basicConfig's
        root.addHandler(logging.NullHandler())  # stderr handler on the root, and every caadbench line prints twice
    logger = logging.getLogger(ROOT_LOGGER)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_CliFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


__all__ = ["ROOT_LOGGER", "configure_cli_logging"]
