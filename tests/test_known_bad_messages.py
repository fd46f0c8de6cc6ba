"""Messages known to be bad, kept in view so that they get improved instead of forgotten (after PRQL).

Each ``tests/known_bad_messages/<case>.unlearn`` provokes one diagnostic whose message, span or help is
poor in a way ``tests/known_bad_messages/README.md`` describes, with what a good message would say. Its
rendered diagnostics as they are today are pinned in ``<case>.txt``. When a change improves one, this
test fails: if the message is now good, move the case out of the list (delete ``<case>.unlearn``,
``<case>.txt`` and its README section, and add the spec to ``tests/fixtures/messages/`` so that the
style test covers it); if it changed but is still bad, regenerate the snapshots::

    UNLEARNSPEC_UPDATE_GOLDENS=1 .venv/bin/pytest tests/test_known_bad_messages.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fixtures.frontend import ROOT

from unlearnspec.compiler.check import check_bytes
from unlearnspec.compiler.render import render_human

KNOWN_BAD = ROOT / "tests" / "known_bad_messages"
README = KNOWN_BAD / "README.md"
CASES = sorted(KNOWN_BAD.glob("*.unlearn"))
UPDATE = os.environ.get("UNLEARNSPEC_UPDATE_GOLDENS") == "1"


def rendered(path: Path) -> str:
    """The case's diagnostics as `unlearnspec check` prints them, without colour, the path shown by name."""
    result = check_bytes(path.read_bytes(), path.name, path.parent, spec_name=path.name)
    return render_human([result], colour=False, summary=False)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_known_bad_message_is_unchanged(path: Path) -> None:
    golden = path.with_suffix(".txt")
    text = rendered(path)
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no snapshot for {path.name}: run with UNLEARNSPEC_UPDATE_GOLDENS=1"
    assert text.strip(), f"{path.name} provokes no diagnostic at all: the case is stale"
    if text != golden.read_text(encoding="utf-8"):
        pytest.fail(
            f"the diagnostic for tests/known_bad_messages/{path.name} changed.\n"
            f"If it is now good, move the case out of the known-bad list: delete {path.stem}.unlearn, "
            f"{path.stem}.txt and its section in README.md, and add the spec to tests/fixtures/messages/.\n"
            "If it is still bad, regenerate: UNLEARNSPEC_UPDATE_GOLDENS=1 .venv/bin/pytest "
            f"tests/test_known_bad_messages.py\n\n--- now ---\n{text}\n--- pinned ---\n{golden.read_text(encoding='utf-8')}")


def test_readme_describes_every_case_and_no_other() -> None:
    sections = re.findall(r"^## `([\w-]+)\.unlearn`", README.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert sorted(sections) == [p.stem for p in CASES]
    assert sorted(p.stem for p in KNOWN_BAD.glob("*.txt")) == [p.stem for p in CASES]


def test_readme_says_what_is_wrong_and_what_good_would_be() -> None:
    text = README.read_text(encoding="utf-8")
    for part in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        name = part.splitlines()[0]
        assert "**Wrong:**" in part and "**Better:**" in part, name
