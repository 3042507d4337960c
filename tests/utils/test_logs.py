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


def test_a_librarys_root_logging_call_does_not_double_the_lines(root, capsys):
    top = logging.getLogger()
    saved = list(top.handlers)
    top.handlers[:] = []  # as in a fresh CLI process (pytest's own capture handlers removed)
    try:
        configure_cli_logging()
        logging.info("open_clip: parsing model identifier")  # module-level call: basicConfig when root has none
        logging.getLogger("caadbench.models.step_log").info("per-step log of train: x.csv")
        assert capsys.readouterr().err == "per-step log of train: x.csv\n"
    finally:
        top.handlers[:] = saved
