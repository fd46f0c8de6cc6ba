"""Shared test setup: offline and quiet Hugging Face libraries, one builtin model build per session.

Environment first (before anything imports transformers): tests never reach the hub and print no
progress bars. Nothing here imports torch at collection time — ``test_light_imports`` checks that the
compiler path stays torch-free — so the fixtures import the runtime lazily.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
# an empty hub cache of the tests' own: a plan pins a hub id the user's cache holds (compiler/model_files.py), so a
# golden plan naming a hub id must not depend on what this machine has downloaded
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="unlearnspec-tests-hub-")
atexit.register(shutil.rmtree, os.environ["HF_HUB_CACHE"], True)
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def builtin_model_dir() -> Path:
    """``builtin:tiny-bios``, built once per session into the user cache (reused across sessions).

    The cache is deliberately *not* redirected: it is keyed by the recipe hash, so repeated local
    and CI runs reuse one build instead of paying ~35 s each time.
    """
    import transformers

    from unlearnspec.runtime.builtin_model import ensure_builtin

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return ensure_builtin()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Pin torch to one thread for an in-process computation whose numbers a test compares.

    Opt-in per test (not autouse): other test modules pin threads themselves.
    """
    from unlearnspec.runtime.builtin_model import pinned_threads

    with pinned_threads(1):
        yield


@pytest.fixture
def small_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small runtime spec (tests/fixtures/runs.py), its data and its plan.json, planned in process into the test's
    own folder, which is also the working folder; builds no model (the session's ``small`` is one shared folder)."""
    import shutil

    from fixtures.runs import SMALL_SPEC, SPECS

    from unlearnspec.cli import main

    (tmp_path / "data").mkdir()
    for name in ("jane-doe.jsonl", "retain.jsonl"):
        shutil.copy(SPECS / "data" / name, tmp_path / "data" / name)
    (tmp_path / "small.unlearn").write_text(SMALL_SPEC, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "small.unlearn", "-o", "plan.json", "--quiet"]) == 0
    return tmp_path


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory, builtin_model_dir: Path) -> Path:
    """A folder with the small runtime spec (tests/fixtures/runs.py), its data and its plan.json."""
    from fixtures.runs import make_small

    return make_small(tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="session")
def small_run(small: Path) -> Path:
    """One uninterrupted run of the small plan, which resumed and fault-injected runs are compared with."""
    from fixtures.runs import cli

    done = cli("run", "plan.json", "--out", "run-a", "--quiet", cwd=small)
    assert done.returncode in (0, 1, 3), done.stderr
    return small / "run-a"


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """``one_thread`` for a whole module of tiny matrices (``pytestmark = pytest.mark.usefixtures(...)``): one torch
    thread is fastest there, and does not thrash when the machine is busy."""
    from unlearnspec.runtime.builtin_model import pinned_threads

    with pinned_threads(1):
        yield
