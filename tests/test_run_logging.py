"""The run's log lines go to run.log (and to stderr unless --quiet), never through the root logger."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from unlearnspec.runtime.engine import _setup_logging


@pytest.fixture
def root_handler() -> Iterator[io.StringIO]:
    """A handler on the root logger, as a library's bare ``logging.info(...)`` call installs one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.root.addHandler(handler)
    yield stream
    logging.root.removeHandler(handler)
    run_logger = logging.getLogger("unlearnspec")
    for h in list(run_logger.handlers):
        if getattr(h, "_unlearnspec", False):
            run_logger.removeHandler(h)
            h.close()


@pytest.mark.parametrize("quiet", [True, False])
def test_run_log_lines_reach_run_log_and_never_the_root_logger(
        tmp_path: Path, root_handler: io.StringIO, capsys: pytest.CaptureFixture[str], quiet: bool) -> None:
    _setup_logging(tmp_path, quiet=quiet)
    logging.getLogger("unlearnspec.run").info("stage: unlearn")
    for h in logging.getLogger("unlearnspec").handlers:
        h.flush()
    assert "stage: unlearn" in (tmp_path / "run.log").read_text()
    assert root_handler.getvalue() == ""  # not echoed as "INFO:unlearnspec.run:..."
    err = capsys.readouterr().err
    assert ("stage: unlearn" in err) is (not quiet)
