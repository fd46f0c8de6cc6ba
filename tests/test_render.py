"""Diagnostic renderers: human text (source line, carets, labels, help; colour rules), JSON, SARIF 2.1.0
(validated against the OASIS schema shipped in tests/schemas), GitHub workflow annotations."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import urllib.parse
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fixtures.frontend import EXAMPLE, MINIMAL_BODY, ROOT, run_cli, spec_text, write_data
from markdown_it import MarkdownIt

from unlearnspec.catalog import CODES
from unlearnspec.compiler.check import CheckResult, check_bytes, check_paths
from unlearnspec.compiler.diagnostics import Diagnostic, Span
from unlearnspec.compiler.render import (
    JSON_FORMAT_VERSION,
    MAX_SHOWN,
    render,
    render_github,
    render_human,
    render_json,
    render_sarif,
    sarif_rules,
    use_colour,
)

SARIF_SCHEMA = Path(__file__).parent / "schemas" / "sarif-2.1.0.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@cache
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A spec with a duplicate objective (a labelled error) and an unknown word: lines 2 and 9 hold
    `objective "dup"`, line 7 `goal removel`."""
    write_data(tmp_path)
    text = ("unlearnspec 1\nobjective \"dup\" {\n" + MINIMAL_BODY.replace("goal removal", "goal removel") + "}\n"
            + "objective \"dup\" {\n" + MINIMAL_BODY + "}\n")
    path = tmp_path / "broken.unlearn"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------
# human


def test_human_shows_source_line_caret_labels_and_help(broken: Path) -> None:
    [result] = check_paths([broken])
    out = render_human([result], colour=False)
    assert not ANSI.search(out)
    blocks = out.split("\n\n")
    word = next(b for b in blocks if "error[UL204]" in b)
    lines = word.splitlines()
    assert lines[0] == "error[UL204]: unknown goal `removel`"
    assert lines[1].strip().startswith("-->") and lines[1].endswith("broken.unlearn:7:8")
    src = next(i for i, ln in enumerate(lines) if ln.endswith("  goal removel"))
    assert lines[src].lstrip().startswith("7 |")
    caret = lines[src + 1]
    bar = caret.index("|")
    assert caret[bar + 2:] == " " * 7 + "^" * len("removel")
    assert "= help: did you mean `removal`?" in word

    dup = next(b for b in blocks if "error[UL201]" in b).splitlines()
    first = next(i for i, ln in enumerate(dup) if ln.rstrip().endswith('objective "dup" {') and ln.lstrip().startswith("2 |"))
    assert re.fullmatch(r"\s*\|\s+-{5} first defined here", dup[first + 1])
    assert dup[first + 1].index("-") == dup[first].index('"dup"')
    second = next(i for i, ln in enumerate(dup) if ln.lstrip().startswith("9 |"))
    assert re.fullmatch(r"\s*\|\s+\^{5}", dup[second + 1])
    assert dup[second + 1].index("^") == dup[second].index('"dup"')
    assert first < second, "labels and the primary span are shown in source order"
    assert re.search(r"failed: checked 1 file: 2 errors, \d+ warnings?, \d+ notes?\n$", out)


def test_human_colour_only_when_asked(broken: Path) -> None:
    [result] = check_paths([broken])
    coloured = render_human([result], colour=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == render_human([result], colour=False)


class _Tty:
    def isatty(self) -> bool:
        return True


class _Pipe:
    def isatty(self) -> bool:
        return False


def test_use_colour_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Tty(), "auto") is True  # type: ignore[arg-type]
    assert use_colour(_Pipe(), "auto") is False  # type: ignore[arg-type]
    assert use_colour(_Pipe(), "always") is True  # type: ignore[arg-type]
    assert use_colour(_Tty(), "never") is False  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(_Tty(), "auto") is False  # type: ignore[arg-type]
    assert use_colour(_Pipe(), "always") is True  # type: ignore[arg-type]  # an explicit flag wins (no-color.org)


def test_cli_colour_flag_and_no_color(broken: Path) -> None:
    plain = run_cli(["check", broken.name], cwd=broken.parent)
    assert plain.returncode == 1 and not ANSI.search(plain.stdout)  # a pipe is no TTY
    forced = run_cli(["check", "--color", "always", broken.name], cwd=broken.parent)
    assert ANSI.search(forced.stdout) and ANSI.sub("", forced.stdout) == plain.stdout
    never = run_cli(["check", "--color", "never", broken.name], cwd=broken.parent)
    assert never.stdout == plain.stdout


def _run_on_tty(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """The CLI with a pseudo-terminal as stdout, as a person at a terminal runs it."""
    main, child = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm", **env})
    proc = subprocess.Popen([sys.executable, "-m", "unlearnspec", *args], cwd=cwd, env=full_env,
                            stdout=child, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=20)
    os.close(main)
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_colour_on_a_tty_unless_no_color(broken: Path) -> None:
    on_tty = _run_on_tty(["check", broken.name], broken.parent, {})
    assert ANSI.search(on_tty), on_tty[:200]
    without = _run_on_tty(["check", broken.name], broken.parent, {"NO_COLOR": "1"})
    assert "error[UL201]" in without and not ANSI.search(without)


def test_long_lines_are_cut_around_the_span() -> None:
    text = 'unlearnspec 1\nobjective "x" {\n  title "' + "a" * 5000 + '" @\n}\n'
    result = check_bytes(text.encode(), "long.unlearn", ROOT)
    out = render_human([result])
    [src_line] = [ln for ln in out.splitlines() if ln.lstrip().startswith("3 |")]
    assert len(src_line) < MAX_SHOWN + 20
    assert src_line.rstrip().endswith('a" @') and "..." in src_line
    caret_line = out.splitlines()[out.splitlines().index(src_line) + 1]
    assert caret_line.index("^") == src_line.index("@")


def test_control_characters_cannot_reach_the_terminal(tmp_path: Path) -> None:
    write_data(tmp_path)
    body = MINIMAL_BODY.replace('"builtin:tiny-bios"', '"builtin:\x1b[31mred\x1b[0m"')
    result = check_bytes(spec_text(body).encode(), "esc.unlearn", tmp_path)
    assert result.errors
    out = render_human([result])
    assert "\x1b" not in out and "\ufffd[31mred" in out
    binary = check_bytes(b"unlearnspec 1\n\x1b]0;title\x07\x00", "bin.unlearn", tmp_path)
    shown = render_human([binary])
    assert "\x1b" not in shown and "\x07" not in shown and "\x00" not in shown


def test_label_in_another_file_and_outside_the_source() -> None:
    d = Diagnostic(code="UL201", severity="error", message="m", span=Span.point("a.unlearn", 1, 1),
                   labels=[{"span": Span.point("other.unlearn", 3, 2), "message": "over there"},  # type: ignore[list-item]
                           {"span": Span.point("a.unlearn", 99, 1), "message": "past the end"}])  # type: ignore[list-item]
    out = render_human([CheckResult(path="a.unlearn", source=b"unlearnspec 1\n", diagnostics=[d])])
    assert "::: other.unlearn:3:2" in out
    assert "= past the end (a.unlearn:99:1)" in out


def test_marks_on_one_line_share_one_copy_of_it_each_under_its_own_span() -> None:
    source = 'unlearnspec 1\n    utility   drop <= 2%, neighbors drop <= 5%\n'
    line = source.splitlines()[1]
    first, second = line.index("drop <= 2%"), line.index("neighbors drop")
    d = Diagnostic(code="UL202", severity="error", message="twice",
                   span=Span(file="a.unlearn", line=2, column=second + 1, end_line=2, end_column=len(line) + 1),
                   labels=[{"span": Span(file="a.unlearn", line=2, column=first + 1, end_line=2,  # type: ignore[list-item]
                                         end_column=first + 11), "message": "first given here"}])
    out = render_human([CheckResult(path="a.unlearn", source=source.encode(), diagnostics=[d])], summary=False)
    rows = out.splitlines()
    assert sum(r.endswith(line) for r in rows) == 1  # the line once, not once per mark
    src = next(r for r in rows if r.endswith(line))
    marks, label = rows[rows.index(src) + 1], rows[rows.index(src) + 2]
    offset = src.index(line)
    assert marks.index("-") == offset + first and marks.count("-") == len("drop <= 2%")
    assert marks.index("^") == offset + second and marks.count("^") == len(line) - second
    assert label.index("first given here") == offset + first
    # overlapping marks still get a copy of the line each
    d2 = d.model_copy(update={"labels": [d.labels[0].model_copy(update={"span": d.span})]})
    rows2 = render_human([CheckResult(path="a.unlearn", source=source.encode(), diagnostics=[d2])],
                         summary=False).splitlines()
    assert sum(r.endswith(line) for r in rows2) == 2


@pytest.mark.parametrize("fmt", ["human", "json", "sarif", "github"])
def test_check_renders_the_same_without_syntax_trees(broken: Path, tmp_path: Path, fmt: str) -> None:
    # the `check` verb lets go of syntax trees (check_paths(keep_syntax=False)); carets still show
    # each source line, a CRLF/BOM file included, and every format is unchanged
    crlf = tmp_path / "crlf.unlearn"
    crlf.write_bytes(b"\xef\xbb\xbf" + broken.read_bytes().replace(b"\n", b"\r\n"))
    paths = [broken, crlf, EXAMPLE]
    kept, dropped = check_paths(paths), check_paths(paths, keep_syntax=False)
    assert all(r.syntax is None for r in dropped) and all(r.syntax is not None for r in kept)
    assert render(dropped, fmt, colour="never") == render(kept, fmt, colour="never")
    if fmt == "human":
        assert "goal removel" in render(dropped, fmt, colour="never")


# ---------------------------------------------------------------------------------------------------
# JSON


def test_json_is_versioned_with_one_object_per_finding(broken: Path) -> None:
    results = check_paths([broken, EXAMPLE])
    doc = json.loads(render_json(results))
    assert doc["format_version"] == JSON_FORMAT_VERSION == "1"
    assert doc["tool"]["name"] == "unlearnspec"
    findings = [d for r in results for d in r.diagnostics]
    # the duplicate, the unknown goal and the example's accepted UL405 (the broken objectives' warnings wait
    # until they resolve: tests/test_passes.py)
    assert len(doc["diagnostics"]) == len(findings) >= 3
    keys = {"code", "severity", "message", "file", "line", "column", "end_line", "end_column", "labels",
            "help", "fixes", "objective", "claim", "accepted", "justification"}
    for obj, d in zip(doc["diagnostics"], findings, strict=True):
        assert set(obj) == keys
        assert (obj["code"], obj["line"], obj["column"], obj["message"]) == (
            d.code, d.span.line, d.span.column, d.message)
    dup = next(o for o in doc["diagnostics"] if o["code"] == "UL201")
    assert dup["labels"][0]["message"] == "first defined here" and dup["labels"][0]["line"] == 2
    accepted = [o for o in doc["diagnostics"] if o["accepted"]]
    assert accepted and all(o["justification"] for o in accepted)
    assert doc["summary"]["files"] == 2 and doc["summary"]["errors"] == sum(r.errors for r in results)


def test_cli_json_output_to_a_file(broken: Path) -> None:
    r = run_cli(["check", "--format", "json", "-o", "out.json", broken.name], cwd=broken.parent)
    assert r.returncode == 1 and r.stdout == ""
    doc = json.loads((broken.parent / "out.json").read_text(encoding="utf-8"))
    assert doc["summary"]["errors"] == 2


# ---------------------------------------------------------------------------------------------------
# SARIF


def _sarif(args: list[str], cwd: Path) -> dict[str, Any]:
    r = run_cli(["check", "--format", "sarif", *args], cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    errors = sorted(sarif_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    return doc


def test_sarif_validates_and_describes_every_rule() -> None:
    doc = _sarif(["specs"], ROOT)
    assert doc["version"] == "2.1.0"
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    listed = run_cli(["explain", "all"], cwd=ROOT).stdout.split("\n")  # the registry, as a fresh process has it
    assert [r["id"] for r in rules] == sorted(line.split()[0] for line in listed if line.strip())
    assert {f"UL{n}" for n in range(100, 110)} | {f"UL2{n:02d}" for n in range(1, 16)} <= set(CODES)
    for rule in rules:
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    ids = [r["id"] for r in rules]
    assert run["results"], "the example specs produce findings"
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        for loc in res["locations"] + res.get("relatedLocations", []):
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            assert uri.startswith("specs/") and uri.endswith(".unlearn") and not uri.startswith("/")
            assert loc["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert suppressed and all(s["suppressions"][0]["kind"] == "inSource" and s["suppressions"][0]["justification"]
                              for s in suppressed)


def test_sarif_uris_are_relative_to_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    team = tmp_path / "policies" / "team"
    write_data(team)
    (team / "x.unlearn").write_text(spec_text(MINIMAL_BODY.replace("removal", "removel")), encoding="utf-8")
    doc = _sarif(["x.unlearn"], team)  # run from deep inside the repository
    [res] = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "UL204"]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "policies/team/x.unlearn"
    assert res["level"] == "error" and res["ruleId"] == "UL204"
    assert doc["runs"][0]["columnKind"] == "unicodeCodePoints"  # columns count characters, not UTF-16 units
    # a name that is no URI as written (a space, `%`, a `:` that would read as a scheme) is percent-encoded
    odd = team / "we ird:na%me.unlearn"
    odd.write_text(spec_text(MINIMAL_BODY.replace("removal", "removel")), encoding="utf-8")
    doc = _sarif([odd.name], team)
    [res] = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "UL204"]
    uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "policies/team/we%20ird%3Ana%25me.unlearn"
    assert urllib.parse.unquote(uri) == "policies/team/" + odd.name


def test_sarif_of_a_syntax_error_validates(tmp_path: Path) -> None:
    (tmp_path / "bad.unlearn").write_bytes(b"unlearnspec 1\nobjective x {\n\x00")
    doc = _sarif(["bad.unlearn"], tmp_path)
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["UL100"]


def test_render_sarif_in_process_matches_schema(broken: Path) -> None:
    doc = json.loads(render_sarif(check_paths([broken])))
    assert not list(sarif_validator().iter_errors(doc))


# ---------------------------------------------------------------------------------------------------
# GitHub annotations

GITHUB = re.compile(r"::(error|warning|notice) file=([^,]+),line=(\d+),col=(\d+),endLine=(\d+),endColumn=(\d+),"
                    r"title=([^:]+)::(.*)")


def test_github_annotations(broken: Path) -> None:
    r = run_cli(["check", "--format", "github", broken.name], cwd=broken.parent)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    [result] = check_paths([broken])
    assert len(lines) == len([d for d in result.diagnostics if not d.accepted]) >= 2
    parsed = [GITHUB.fullmatch(ln) for ln in lines]
    assert all(parsed), lines
    kinds = {(m.group(1), m.group(7), m.group(3), m.group(4)) for m in parsed if m}
    assert ("error", "UL201", "9", "11") in kinds and ("error", "UL204", "7", "8") in kinds
    for m in parsed:
        assert m is not None and m.group(2) == "broken.unlearn"
        if "help" in m.group(8):
            assert "%0Ahelp: " in m.group(8)


def test_github_escaping() -> None:
    d = Diagnostic(code="UL1:0,1", severity="warning", message="100% sure: a, b\r\nline two",
                   span=Span.point("dir,x/a:b.unlearn", 2, 3), help=["first\nsecond"])
    out = render_github([CheckResult(path="a", diagnostics=[d])])
    assert out == ("::warning file=dir%2Cx/a%3Ab.unlearn,line=2,col=3,endLine=2,endColumn=4,title=UL1%3A0%2C1::"
                   "100%25 sure: a, b%0D%0Aline two%0Ahelp: first%0Asecond\n")


def test_github_skips_accepted_findings() -> None:
    result = check_paths([EXAMPLE])
    accepted = {d.code for r in result for d in r.diagnostics if d.accepted}
    open_ = {d.code for r in result for d in r.diagnostics if not d.accepted}
    assert accepted and open_ and not accepted & open_
    out = render_github(result)
    assert not [c for c in accepted if f"title={c}" in out], out
    assert all(f"title={c}" in out for c in open_), out


def test_the_caret_counts_terminal_cells_after_wide_characters(tmp_path: Path) -> None:
    # spans count characters, a terminal counts cells: `東京😀` is 3 characters but 6 cells, so the caret under
    # the diagnostic on that line must be as many cells wide as its span's text, starting after the cells before it
    text = 'unlearnspec 1\nobjective "x" {\n  title "東京😀" zzz\n}\n'
    path = tmp_path / "wide.unlearn"
    path.write_text(text, encoding="utf-8")
    results = check_paths([path])
    [d] = [d for r in results for d in r.diagnostics if d.span.line == 3]
    line = text.splitlines()[2]
    before, spanned = line[: d.span.column - 1], line[d.span.column - 1: d.span.end_column - 1]
    assert "東京😀" in spanned  # the case this test is about: wide characters inside the span
    lines = render_human([CheckResult(path=str(path), source=text.encode(), diagnostics=[d])], summary=False).splitlines()
    row = next(i for i, x in enumerate(lines) if x.endswith(line))
    source, under = lines[row], lines[row + 1]
    caret = under[source.index(line):]
    cells = {"東": 2, "京": 2, "😀": 2}  # East Asian Wide (Unicode UAX #11), written out rather than computed
    assert caret.index("^") == sum(cells.get(ch, 1) for ch in before)
    assert caret.strip() == "^" * sum(cells.get(ch, 1) for ch in spanned)


def test_a_value_with_a_line_break_cannot_forge_a_diagnostic_line() -> None:
    """Review finding 10: a name, a label or a justification with a line break printed a line of its own, which
    could read as another finding; each stays on its line (its line break a space)."""
    forged = "x\nerror[UL101]: forged finding\n  --> a.unlearn:1:1"
    d = Diagnostic(code="UL405", severity="warning", message=f"the forget set of `{forged}`",
                   span=Span.point("a.unlearn", 1, 1), accepted=True, justification=forged,
                   labels=[{"span": Span.point("a.unlearn", 1, 1), "message": forged},  # type: ignore[list-item]
                           {"span": Span.point("a.unlearn", 9, 1), "message": forged}])  # type: ignore[list-item]
    out = render_human([CheckResult(path="a.unlearn", source=b"unlearnspec 1\n", diagnostics=[d])], summary=False)
    assert [ln for ln in out.splitlines() if ln.startswith("error[")] == []
    assert len([ln for ln in out.splitlines() if ln.lstrip().startswith("-->")]) == 1  # the tool's own
    assert out.count("x error[UL101]: forged finding   --> a.unlearn:1:1") == 4  # message, two labels, accepted


def test_sarif_help_markdown_renders_each_page_as_its_text() -> None:
    """The SARIF help (now a template) shows a page's summary, reasons and example as written: markdown-it reads the
    example back from its fenced block, and the summary and why as text with no link or raw HTML."""
    parser = MarkdownIt("commonmark", {"html": True})
    for rule in sarif_rules():
        page = CODES[rule["id"]]
        tokens = parser.parse(rule["help"]["markdown"])
        assert not [c for t in tokens for c in t.children or [] if c.type in ("html_inline", "link_open", "image")]
        fences = [t.content for t in tokens if t.type == "fence"]
        assert fences == [x + "\n" for x in (page.example, page.instead) if x]
        strong = next(t for t in tokens if t.type == "inline")
        assert "".join(c.content for c in strong.children or [] if c.type in ("text", "code_inline")) \
            .replace(" ", "") == page.summary.replace("`", "").replace(" ", "")
