"""The run's log lines go to run.log (and to stderr unless --quiet), never through the root logger."""

from __future__ import annotations

import io
import logging
import warnings
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


@pytest.mark.parametrize("quiet", [True, False])
def test_library_warnings_reach_run_log_and_the_terminal_unless_quiet(
        tmp_path: Path, root_handler: io.StringIO, capsys: pytest.CaptureFixture[str], quiet: bool) -> None:
    """`run --quiet` promises no library warnings (a transformers FutureWarning was printed); run.log keeps them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            _setup_logging(tmp_path, quiet=quiet)
            warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
        for h in logging.getLogger("py.warnings").handlers:
            h.flush()
        assert "FutureWarning: `is_gradient_checkpointing` is deprecated" in (tmp_path / "run.log").read_text()
        assert ("is_gradient_checkpointing" in capsys.readouterr().err) is (not quiet)
        assert root_handler.getvalue() == ""
    finally:
        logging.captureWarnings(False)
        for h in list(logging.getLogger("py.warnings").handlers):
            logging.getLogger("py.warnings").removeHandler(h)


def test_debug_lines_go_to_run_log_only(tmp_path: Path, root_handler: io.StringIO,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _setup_logging(tmp_path, quiet=False)
    logging.getLogger("unlearnspec.unlearn").debug("step 3: loss=12.7")
    logging.getLogger("unlearnspec.run").info("[demo] evaluate")
    for h in logging.getLogger("unlearnspec").handlers:
        h.flush()
    text = (tmp_path / "run.log").read_text()
    assert "DEBUG unlearnspec.unlearn: step 3: loss=12.7" in text and "[demo] evaluate" in text
    err = capsys.readouterr().err
    assert "[demo] evaluate" in err and "step 3" not in err


def test_step_bar_shows_losses_as_a_postfix_instead_of_printing_dicts(capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from unlearnspec.runtime.methods.base import StepBar

    bar = StepBar()
    state = TrainerState(max_steps=3, global_step=0)
    args = TrainingArguments(output_dir=str(Path("unused")), use_cpu=True, report_to=[])
    bar.on_train_begin(args, state, TrainerControl())
    state.global_step = 1
    bar.on_step_end(args, state, TrainerControl())
    bar.on_log(args, state, TrainerControl(), logs={"loss": 13.9, "forget_loss": 0.0613, "retain_loss": 0.0252,
                                                     "grad_norm": 12.3})
    assert bar.training_bar is not None
    assert bar.training_bar.postfix == "forget=0.0613, retain=0.0252, loss=13.9"
    bar.on_train_end(args, state, TrainerControl())
    err = capsys.readouterr().err
    assert "{'loss'" not in err and "grad_norm" not in err
