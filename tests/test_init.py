"""`unlearnspec init`: every template writes a spec that checks with exactly the findings its header
documents, in `fmt` layout; it asks on a terminal, refuses to overwrite, and points at demo data."""

from __future__ import annotations

import builtins
import contextlib
import io
import re
import sys
from pathlib import Path

import pytest

from unlearnspec.cli import main
from unlearnspec.cli.init import TEMPLATES
from unlearnspec.compiler.check import check_file
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def documented(text: str) -> list[tuple[str, str]]:
    """The findings a spec's `# Expect:` header line lists, as (code, severity)."""
    [line] = [ln for ln in text.splitlines() if ln.startswith("# Expect:")]
    return sorted((m.group(1), m.group(2)) for m in re.finditer(r"(UL[0-9]{3}) \((\w+)\)", line))


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_checks_with_only_its_documented_findings(template: str, tmp_path: Path) -> None:
    out = tmp_path / "spec.unlearn"
    code, stdout, _ = run(["init", "--template", template, "--out", str(out), "--demo-data", "--no-input"])
    assert code == 0 and out.is_file()
    assert "built-in demo data" in stdout
    text = out.read_text()
    result = check_file(out)
    assert result.spec is not None
    assert sorted((d.code, d.severity) for d in result.diagnostics) == documented(text)
    syntax, _ = parse_bytes(text.encode(), "spec.unlearn")
    assert syntax is not None and format_spec(syntax) == text  # already in `fmt` layout
    [obj] = result.spec.objectives
    assert obj.target is not None and obj.target.name.value == TEMPLATES[template].target


def test_without_data_it_points_at_builtin_export(tmp_path: Path) -> None:
    out = tmp_path / "erase.unlearn"
    code, stdout, _ = run(["init", "-t", "privacy-erasure", "-o", str(out), "--no-input"])
    assert code == 0
    assert "unlearnspec builtin export data" in stdout
    assert "unlearnspec builtin export data" in out.read_text()  # the header says so too
    assert "UL207" in {d.code for d in check_file(out).diagnostics}  # the data files are missing
    code, _, _ = run(["builtin", "export", str(tmp_path / "data")])
    assert code == 0
    assert sorted((d.code, d.severity) for d in check_file(out).diagnostics) == documented(out.read_text())


def test_an_absolute_data_folder_stays_absolute(tmp_path: Path) -> None:
    """`--data-dir /abs/path/` names that folder, not `abs/path` under the spec's folder."""
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    (tmp_path / "specs").mkdir()
    out = tmp_path / "specs" / "erase.unlearn"
    code, stdout, _ = run(["init", "-t", "privacy-erasure", "-o", str(out), "--no-input", "--demo-data",
                           "--data-dir", f"{shared}/"])
    assert code == 0 and f"wrote {shared / 'jane-doe.jsonl'}" in stdout
    assert f'forget "{shared}/jane-doe.jsonl"' in out.read_text()
    assert not (tmp_path / "specs" / str(shared).lstrip("/")).exists()
    assert sorted((d.code, d.severity) for d in check_file(out).diagnostics) == documented(out.read_text())


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "mine.unlearn"
    out.write_text("precious\n")
    code, _, err = run(["init", "-t", "copyright-work", "-o", str(out), "--no-input"])
    assert code == 2 and "already exists" in err and "help:" in err
    assert out.read_text() == "precious\n"


def test_unknown_template_and_missing_template(tmp_path: Path) -> None:
    code, _, err = run(["init", "-t", "privacy-erasur", "-o", str(tmp_path / "x.unlearn"), "--no-input"])
    assert code == 2 and "did you mean `privacy-erasure`?" in err
    code, _, err = run(["init", "--no-input"])
    assert code == 2 and "--template" in err


def test_asks_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "asked.unlearn"
    answers = iter(["hazardous-capability", 'the "red" synthesis', "", "", str(out)])
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(builtins, "input", fake_input)
    code, _, _ = run(["init", "--demo-data"])
    assert code == 0 and len(prompts) == 5
    result = check_file(out)
    assert result.spec is not None
    [obj] = result.spec.objectives
    assert obj.target is not None and obj.target.name.value == 'the "red" synthesis'  # quoted safely
    assert obj.name == "refuse-the-red-synthesis"
    assert sorted((d.code, d.severity) for d in result.diagnostics) == documented(out.read_text())
