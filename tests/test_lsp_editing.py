"""The language server's answers while a spec is edited, in-process: positions in UTF-16 after emoji and CJK
text, hover's code spans around a word with a backtick, formatting as the fewest whole-line edits that keep
the document's line ends, and chains across files (`after "file.unlearn#name"`): definition, related
information, completion.

References are independent of the server: UTF-16 offsets computed with Python's codec, `unlearnspec fmt`
and `unlearnspec check` run on the same text saved to disk, positions found by plain string search.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from fixtures.frontend import ROOT, SPECS, with_spec_data  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from test_lsp import apply_edits, where  # noqa: E402

from unlearnspec.compiler.diagnostics import Diagnostic, Label, Span  # noqa: E402
from unlearnspec.lsp import features  # noqa: E402
from unlearnspec.lsp.document import Document  # noqa: E402

CLEAN = SPECS / "captain-vale-suppression.unlearn"  # no findings at all
NAME = "captain-vale-suppression"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unlearnspec", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})


def utf16(line: str, index: int) -> int:
    """The UTF-16 column of character ``index`` of ``line`` (what an LSP client counts)."""
    return len(line[:index].encode("utf-16-le")) // 2


def fmt_reference(text: str, where_: Path) -> str:
    """What `unlearnspec fmt` writes for ``text`` saved at ``where_`` (bytes as written, line ends kept)."""
    where_.write_bytes(text.encode("utf-8"))
    cli("fmt", where_)
    return where_.read_bytes().decode("utf-8")


# -- positions ------------------------------------------------------------------------------------


def test_ranges_count_utf16_units_after_emoji_and_cjk_on_the_same_line() -> None:
    """An emoji is one character and two UTF-16 units: a column counted in characters (or bytes) puts the
    squiggle under the wrong letters, and an end column past the line's end is refused by some clients."""
    text = CLEAN.read_text().replace("    kind   concept", "    kind   concpt") \
        .replace('target character "Captain Orrin Vale" {', 'target character "Captain 🧭 船长 🚀" {  kind concpt') \
        .replace('  title  "Stop writing about Captain Orrin Vale"', '  title  "🧭 船长" "again"')
    doc = Document(uri=CLEAN.as_uri(), text=text)
    diags = features.diagnostics(doc)
    lines = text.split("\n")
    typo_line = lines.index(next(ln for ln in lines if "🚀" in ln))
    [typo] = [d for d in diags if "concpt" in d.message and d.range.start.line == typo_line]
    line = lines[typo_line]
    col = line.index("concpt")
    assert (typo.range.start.character, typo.range.end.character) == (utf16(line, col), utf16(line, col + 6))
    assert utf16(line, col) == col + 2  # the compass and the rocket are two units each
    [title] = [d for d in diags if "`title`" in d.message]
    tline = lines[title.range.start.line]
    assert title.range.start.character == utf16(tline, tline.index('"🧭'))  # the values, not the field name
    assert title.range.end.character == utf16(tline, len(tline)) == len(tline) + 1


# -- hover ----------------------------------------------------------------------------------------


def test_hover_code_spans_are_fenced_around_a_backtick() -> None:
    """A value with a backtick in single backticks ends the code span early (CommonMark): the rest renders
    as Markdown. Every code span is fenced with more backticks than it holds."""
    text = features.word_help("steps", "", "robust`to")
    assert text is not None
    assert "``robust`to``" in text and "`robust`to`" not in text.replace("``robust`to``", "")
    plain = features.word_help("membership_auc", "evidence")
    assert plain is not None and "**metric `membership_auc`**" in plain


# -- formatting -----------------------------------------------------------------------------------


def _messy(text: str) -> str:
    return text.replace("  claims {", "claims   {").replace("    kind   concept", "kind concept # kept\n")


def test_formatting_replaces_only_the_lines_that_change(tmp_path: Path) -> None:
    messy = _messy(CLEAN.read_text())
    doc = Document(uri=CLEAN.as_uri(), text=messy)
    edits = features.formatting(doc)
    assert apply_edits(messy, edits) == fmt_reference(messy, tmp_path / "ref.unlearn")
    untouched = set(range(len(messy.split("\n"))))
    for e in edits:
        assert e.range.start.character == 0 and e.range.end.character == 0
        untouched -= set(range(e.range.start.line, e.range.end.line))
    # most lines are already in layout: the edits leave them (and the editor's marks on them) alone
    assert len(untouched) > len(messy.split("\n")) - 10
    assert "# kept" in apply_edits(messy, edits)


def test_formatting_a_long_spec_is_bounded_and_exact(tmp_path: Path) -> None:
    """Hundreds of objectives alike: a line diff without bound is quadratic on repeated lines (minutes here);
    the changed region becomes one edit instead, and the result is still exactly `fmt`'s."""
    text = CLEAN.read_text()
    body = text.split('objective "', 1)[1]
    long = text + "\n".join('objective "' + body.replace(f'"{NAME}"', f'"copy-{i}"') for i in range(150))
    messy = long.replace("  claims {", "claims   {")
    started = time.monotonic()
    edits = features.formatting(Document(uri=CLEAN.as_uri(), text=messy))
    assert time.monotonic() - started < 15
    assert apply_edits(messy, edits) == fmt_reference(messy, tmp_path / "long.unlearn")


def test_formatting_keeps_crlf_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    messy = _messy(CLEAN.read_text()).replace("\n", "\r\n")
    doc = Document(uri=CLEAN.as_uri(), text=messy)
    out = apply_edits(messy, features.formatting(doc))
    expected = fmt_reference(messy.replace("\r\n", "\n"), tmp_path / "ref.unlearn").replace("\n", "\r\n")
    assert out == expected and out.count("\r\n") == out.count("\n")
    bom = "\ufeff" + _messy(CLEAN.read_text()).replace("unlearnspec 1\n", "unlearnspec   1\n")
    edits = features.formatting(Document(uri=CLEAN.as_uri(), text=bom))
    # the mark is one UTF-16 unit of the client's first line: no edit starts before it
    assert all((e.range.start.line, e.range.start.character) != (0, 0) for e in edits)
    assert apply_edits(bom, edits) == "\ufeff" + fmt_reference(bom[1:], tmp_path / "ref2.unlearn")


# -- chains across files ----------------------------------------------------------------------------


def _chain(tmp_path: Path, model: str = "builtin:tiny-bios") -> tuple[Path, Path, str]:
    folder = with_spec_data(tmp_path)
    first = folder / "first.unlearn"
    first.write_text(CLEAN.read_text())
    text = CLEAN.read_text().replace(f'objective "{NAME}" {{', f'objective "second" {{\n  after  "first.unlearn#{NAME}"') \
        .replace('model   "builtin:tiny-bios"', f'model   "{model}"')
    second = folder / "second.unlearn"
    second.write_text(text)
    return first, second, text


def test_definition_of_an_after_link_opens_the_objective_it_continues(tmp_path: Path) -> None:
    first, second, text = _chain(tmp_path)
    doc = Document(uri=second.as_uri(), text=text)
    inside = where(text, f'"first.unlearn#{NAME}"').start
    loc = features.definition(doc, lsp.Position(line=inside.line, character=inside.character + 3))
    assert loc is not None and loc.uri == first.resolve().as_uri()
    assert loc.range == where(first.read_text(), f'"{NAME}"')
    # the editor's text of the other file, saved or not, is what it shows: the objective moved two lines down
    unsaved = "\n\n" + first.read_text()
    moved = features.definition(doc, lsp.Position(line=inside.line, character=inside.character + 3),
                                lambda p: unsaved if p == first.resolve() else None)
    assert moved is not None and moved.range == where(unsaved, f'"{NAME}"')
    # inside one file: the objective of that name above
    chain = (SPECS / "erasure-chain.unlearn").read_text()
    local = Document(uri=(SPECS / "erasure-chain.unlearn").as_uri(), text=chain)
    link = where(chain, 'after  "erase-barnaby-caldrow"').end
    loc = features.definition(local, lsp.Position(line=link.line, character=link.character - 2))
    header = where(chain, 'objective "erase-barnaby-caldrow"')
    assert loc is not None and loc.uri == local.uri
    assert (loc.range.start.line, loc.range.start.character, loc.range.end.character) == \
        (header.start.line, header.start.character + len("objective "), header.end.character)


def test_a_chain_finding_relates_the_objective_in_the_other_file(tmp_path: Path) -> None:
    first, second, text = _chain(tmp_path, model="builtin:tiny-bios-chat")
    cli_codes = cli("check", "--format", "json", second).stdout
    assert '"UL209"' in cli_codes
    doc = Document(uri=second.as_uri(), text=text)
    [ul209] = [d for d in features.diagnostics(doc) if d.code == "UL209"]
    related = ul209.related_information or []
    assert any(r.location.uri == first.resolve().as_uri() and r.location.range == where(first.read_text(), f'"{NAME}"')
               for r in related)
    assert any(r.location.uri == doc.uri for r in related)  # the compiler's own label, in this file


def test_a_chain_is_checked_against_the_editors_unsaved_text_of_the_other_file(tmp_path: Path) -> None:
    """The objective a chain continues is read from the editor's buffer of that file when it is open, saved or
    not: renaming it there (unsaved) breaks the link at once (UL216), as `check` finds once the buffer is saved."""
    first, second, text = _chain(tmp_path)
    doc = Document(uri=second.as_uri(), text=text)
    assert not [d for d in features.diagnostics(doc) if d.code == "UL216"]  # as saved: the link holds
    renamed = first.read_text().replace(f'objective "{NAME}"', 'objective "renamed"')
    shown = {first.resolve(): renamed}
    found = [d for d in features.diagnostics(doc, shown.get) if d.code == "UL216"]
    assert len(found) == 1 and "renamed" in found[0].message  # the help names what the buffer defines
    # the same text saved: `unlearnspec check` on disk agrees
    first.write_text(renamed)
    saved = cli("check", "--format", "json", second).stdout
    assert '"UL216"' in saved and "renamed" in saved
    # and a buffer that restores the name, unsaved, clears it again, while the file on disk still breaks the link
    restored = {first.resolve(): CLEAN.read_text()}
    assert not [d for d in features.diagnostics(doc, restored.get) if d.code == "UL216"]
    assert [d for d in features.diagnostics(doc) if d.code == "UL216"]


def test_completion_in_an_after_string_offers_the_other_objectives_of_the_file() -> None:
    chain = (SPECS / "erasure-chain.unlearn").read_text()
    typing = chain.replace('after  "erase-vesna-gantrell"', 'after  "')
    doc = Document(uri=(SPECS / "erasure-chain.unlearn").as_uri(), text=typing)
    at = where(typing, 'after  "', 1).end
    offered = {i.label for i in features.completion(doc, at)}
    objectives = {ln.split('"')[1] for ln in chain.split("\n") if ln.startswith("objective ")}
    mine = next(ln.split('"')[1] for ln in typing.split("\n")[:at.line][::-1] if ln.startswith("objective "))
    assert offered == objectives - {mine}


def test_a_label_in_another_file_is_related_there_in_its_own_utf16_columns(tmp_path: Path) -> None:
    """The compiler names a span by its file; one in another spec than the document (a chain's other end) is
    located in that file, columns counted on its own lines, not the document's."""
    first, second, text = _chain(tmp_path)
    first.write_text(CLEAN.read_text().replace(f'objective "{NAME}"', f'objective "🧭{NAME}"'))
    line = next(i for i, ln in enumerate(first.read_text().split("\n")) if ln.startswith("objective"))
    col = first.read_text().split("\n")[line].index(NAME)  # characters before the name (the compass is one)
    span = Span(file="first.unlearn", line=line + 1, column=col + 1, end_line=line + 1, end_column=col + 1 + len(NAME))
    here = Span(file="second.unlearn", line=2, column=3, end_line=2, end_column=8)
    d = Diagnostic(code="UL209", severity="error", message="m", span=here, labels=[Label(span=span, message="there")])
    out = features.to_lsp_diagnostic(Document(uri=second.as_uri(), text=text), d)
    [rel] = [r for r in out.related_information or [] if r.message == "there"]
    assert rel.location.uri == first.resolve().as_uri()
    assert (rel.location.range.start.line, rel.location.range.start.character, rel.location.range.end.character) == \
        (line, col + 1, col + 1 + len(NAME))  # the compass is two UTF-16 units


@pytest.mark.parametrize("typo, right", [
    ('after  "erase-vesna-gantrel"', 'after  "erase-vesna-gantrell"'),  # a quoted objective name (UL216)
    ("method grad_dif\n", "method grad_diff\n"),  # a word
])
def test_did_you_mean_keeps_the_quotes_of_a_string_value(typo: str, right: str) -> None:
    """Replacing a quoted `after` value by the bare name the help suggests wrote `after  erase-…`: a syntax error."""
    path = SPECS / "erasure-chain.unlearn"
    good = path.read_text()
    assert right in good
    bad = good.replace(right, typo, 1)
    doc = Document(uri=path.as_uri(), text=bad)
    doc.check()
    fix = next(a for a in features.code_actions(doc, doc.whole()) if a.title.startswith("replace with"))
    assert fix.edit is not None and fix.edit.changes is not None
    assert apply_edits(bad, list(fix.edit.changes[doc.uri])) == good


def test_fix_all_applies_what_check_fix_applies(tmp_path: Path) -> None:
    """The editor's "fix all" (``source.fixAll.unlearnspec``) makes the same edits as `check --fix`: the misspellings
    and a repeated word, not a bound turned round (that fix changes what the spec asks for)."""
    from unlearnspec.compiler.check import check_bytes
    from unlearnspec.compiler.fixes import fixed_source

    path = with_spec_data(tmp_path) / "fixme.unlearn"
    good = (SPECS / "erase-jane-doe.unlearn").read_text()
    bad = (good.replace("goal   removal", "goal   removel").replace("outputs verbatim, facts", "outputs verbatim, "
           "facts, facts").replace("forget_quality >= 0.05", "forget_quality <= 0.05"))
    doc = Document(uri=path.as_uri(), text=bad)
    action = features.fix_all(doc)
    assert action is not None and action.kind == features.FIX_ALL and action.edit and action.edit.changes
    fixed = apply_edits(bad, list(action.edit.changes[doc.uri]))
    assert fixed == good.replace("forget_quality >= 0.05", "forget_quality <= 0.05")
    result = check_bytes(bad.encode(), path.name, tmp_path)
    assert fixed_source(bad.encode(), result.diagnostics, path.name)[0].decode() == fixed
    assert features.fix_all(Document(uri=path.as_uri(), text=good)) is None
