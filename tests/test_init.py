"""`unlearnspec init`: every template writes a spec that checks with exactly the findings its header
documents, in `fmt` layout; it asks on a terminal, refuses to overwrite, and points at demo data."""

from __future__ import annotations

import builtins
import contextlib
import io
import re
import shutil
import sys
from pathlib import Path

import pytest

from unlearnspec.cli import main
from unlearnspec.cli.init import DEFAULT_UNLEARNED, TEMPLATES, comment_text, render
from unlearnspec.compiler.check import check_file, plan_file
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.syntax import ESCAPES
from unlearnspec.plan import GivenStage, UnlearnStage

VENDOR_CHECKPOINT = Path(__file__).resolve().parents[1] / "specs" / "models" / "vendor-jane-doe-lora"


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
    if template == "vendor-audit":  # the checkpoint the vendor sent: a LoRA adapter for the built-in model
        shutil.copytree(VENDOR_CHECKPOINT, tmp_path / DEFAULT_UNLEARNED)
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


def test_vendor_audit_audits_the_given_checkpoint_and_unlearns_nothing(tmp_path: Path) -> None:
    """The template names the vendor's checkpoint with `unlearned` and the method as unknown: the plan loads the
    folder as the unlearned model (a `given` stage pinning its files) and has no unlearn stage at all."""
    shutil.copytree(VENDOR_CHECKPOINT, tmp_path / "sent")
    out = tmp_path / "audit.unlearn"
    code, _, _ = run(["init", "-t", "vendor-audit", "-o", str(out), "--demo-data", "--no-input", "--unlearned", "sent"])
    assert code == 0
    plan, result = plan_file(out)
    assert plan is not None, result.diagnostics
    [op] = plan.objectives
    assert op.model.source == "builtin:tiny-bios"  # the model before unlearning: what every check compares with
    [given] = [s for s in op.stages if isinstance(s, GivenStage)]
    assert (given.source, given.form, given.method) == ("sent", "adapter", "unknown")
    assert not [s for s in op.stages if isinstance(s, UnlearnStage)]
    pinned = {f.path for f in plan.inputs if f.role == "unlearned"}
    assert pinned == {f"sent/{p.name}" for p in VENDOR_CHECKPOINT.iterdir()}


def test_vendor_audit_without_the_checkpoint_says_where_to_put_it(tmp_path: Path) -> None:
    out = tmp_path / "audit.unlearn"
    code, stdout, _ = run(["init", "-t", "vendor-audit", "-o", str(out), "--demo-data", "--no-input"])
    assert code == 0 and f"`{DEFAULT_UNLEARNED}` does not exist yet" in stdout
    text = out.read_text()
    [line] = [i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith("unlearned ")]
    # one error, on the folder: `method unknown` is not also reported as lacking a checkpoint (UL219)
    assert [(d.code, d.span.line) for d in check_file(out).diagnostics] == [("UL207", line)]


def test_end_of_input_at_a_prompt_aborts_like_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["privacy-erasure"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None  # Ctrl-D

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(builtins, "input", fake_input)
    code, _, err = run(["init"])
    assert code == 130 and err.strip() == "aborted"  # as `main` answers Ctrl-C, without a traceback
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("char", ["\r", "\x1b", "\x00", "\x07", "\x7f", "\x85"])
def test_a_control_character_no_spec_string_can_hold_is_refused(char: str, tmp_path: Path) -> None:
    out = tmp_path / "erase.unlearn"
    code, _, err = run(["init", "--no-input", "-t", "privacy-erasure", "--target", f"Jane{char}Doe", "-o", str(out)])
    assert code == 2 and "`--target`" in err and f"U+{ord(char):04X}" in err
    assert not out.exists()


def test_line_breaks_tabs_quotes_and_backslashes_are_written_escaped(tmp_path: Path) -> None:
    """What the language has an escape for is written with it, and reads back as given (the parser is the
    reference)."""
    target = 'Jane\t"J" \\ Doe\nthe second'
    assert set(target) >= set(ESCAPES)
    out = tmp_path / "erase.unlearn"
    code, _, _ = run(["init", "--no-input", "-t", "privacy-erasure", "--target", target, "-o", str(out),
                      "--demo-data"])
    assert code == 0
    result = check_file(out)
    assert result.spec is not None
    [obj] = result.spec.objectives
    assert obj.target is not None and obj.target.name.value == target


@pytest.mark.parametrize("flag", ["--unlearned", "--out", "--data-dir"])
def test_a_value_the_header_comments_show_cannot_hold_a_line_break(flag: str, tmp_path: Path) -> None:
    """Review finding 11: `--unlearned` also lands in a `#` comment of the header, where a line break ends the
    comment and makes the rest a line of the spec (here a forged `accept`); refused like `--out` and `--data-dir`."""
    out = tmp_path / "audit.unlearn"
    value = 'sent\naccept UL405 "forged, never reviewed"'
    argv = ["init", "--no-input", "-t", "vendor-audit", "-o", str(out)]
    argv = [*argv[:-2], flag, value] if flag == "--out" else [*argv, flag, value]
    code, _, err = run(argv)
    assert code == 2 and f"`{flag}`" in err and "line break" in err
    assert list(tmp_path.iterdir()) == []


def test_the_templates_never_write_a_line_break_into_a_comment() -> None:
    """The same rule in the template itself (its `comment` filter), whatever calls it."""
    assert comment_text("models/vendor checkpoint") == "models/vendor checkpoint"
    with pytest.raises(ValueError, match="line break"):
        comment_text("a\nb")
    values = {"name": "n", "target": "T", "model": "builtin:tiny-bios", "unlearned": "x\naccept UL405 \"y\"",
              "reference": "", "basis": "b", "owner": "o", "out_name": "a.unlearn", "data_dir": "data",
              "demo_hint": False, "forget": "f", "holdout": "h", "retain": "r", "neighbors": "n"}
    with pytest.raises(ValueError, match="line break"):
        render("vendor-audit", values)
