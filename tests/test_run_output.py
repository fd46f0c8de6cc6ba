"""What a run lets the libraries print: transformers' own progress bars (loading weights, writing each
checkpoint's shards) are off in every run, so they cannot cut into the training bar; a quiet run also keeps
only the libraries' errors. Checked on real saves and loads of a tiny model, not on the flags alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import transformers
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as hf_logging

from unlearnspec.runtime.execute import library_output


@pytest.fixture(autouse=True)
def _restore_library_output() -> Iterator[None]:
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    yield
    (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
    hf_logging.set_verbosity(verbosity)


def _save_and_load(folder: Path) -> None:
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16))
    model.save_pretrained(folder)
    transformers.AutoModelForCausalLM.from_pretrained(folder)


@pytest.mark.filterwarnings("ignore:Cannot enable progress bars")  # the hub's own bars stay off in the tests
def test_a_run_shows_no_library_progress_bars_and_quiet_keeps_only_errors(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    hf_logging.enable_progress_bar()
    hf_logging.set_verbosity_warning()
    _save_and_load(tmp_path / "before")
    before = capfd.readouterr().err
    assert "Writing model shards" in before and "Loading weights" in before  # what the bars look like

    library_output(quiet=False)
    _save_and_load(tmp_path / "run")
    shown = capfd.readouterr()
    assert "Writing model shards" not in shown.err + shown.out and "Loading weights" not in shown.err + shown.out
    assert hf_logging.get_verbosity() == hf_logging.WARNING  # warnings still reach an interactive run

    library_output(quiet=True)
    assert hf_logging.get_verbosity() == hf_logging.ERROR
