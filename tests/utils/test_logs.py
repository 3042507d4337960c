"""The CLI's logging handler: library records reach stderr as the bare lines users saw before, levels obey -q/-v."""

from __future__ import annotations

import logging

import pytest

from caadbench.utils.logs import ROOT_LOGGER, configure_cli_logging


@pytest.fixture()
def root():
    logger = logging.getLogger(ROOT_LOGGER)
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:], logger.level = handlers, level


def test_info_lines_are_bare_and_warnings_prefixed(root, capsys):
    configure_cli_logging()
    configure_cli_logging()  # idempotent: one handler, one line per record
    log = logging.getLogger("caadbench.models.training")
    log.info("coreclip: 10 trainable parameters")
    log.warning("careful")
    assert capsys.readouterr().err == "coreclip: 10 trainable parameters\nwarning: careful\n"


def test_quiet_keeps_warnings_only(root, capsys):
    configure_cli_logging(logging.WARNING)
    log = logging.getLogger("caadbench.eval.quickstart")
    log.info("[1/4] building")
    log.warning("shown")
    assert capsys.readouterr().err == "warning: shown\n"
