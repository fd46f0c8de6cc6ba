"""The language server's answers against the compiler they stand for: the codes `accept` takes, the
words each place allows, the fixes that must fix, positions in characters, and the files around a spec.

Every expectation comes from the compiler itself (`apply_accepts`, `check`, the catalog) or from the
file system, never from a list written here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pygls")

from fixtures.frontend import ROOT, SPECS  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from test_lsp import apply_edits, where  # noqa: E402

from unlearnspec.catalog import CODES, vocab  # noqa: E402
from unlearnspec.compiler.check import check_bytes  # noqa: E402
from unlearnspec.compiler.diagnostics import Diagnostic, Span  # noqa: E402
from unlearnspec.compiler.feasibility import acceptable, apply_accepts  # noqa: E402
from unlearnspec.compiler.rules import RULES  # noqa: E402
from unlearnspec.lsp import compiler_api, document, features  # noqa: E402
from unlearnspec.lsp.features import Document  # noqa: E402

CLEAN = SPECS / "captain-vale-suppression.unlearn"  # no findings at all
FILTER = SPECS / "glimmerfen-filter-open-weights.unlearn"  # UL304: a filter on open weights


def doc_at(path: Path, text: str | None = None) -> Document:
    doc = Document(uri=path.as_uri(), text=path.read_text() if text is None else text)
    doc.check()
    return doc


def codes(doc: Document) -> list[str]:
    assert doc.outcome is not None
    return sorted(d.code for d in doc.outcome.diagnostics)


def labels(doc: Document, pos: lsp.Position) -> list[str]:
    return [i.label for i in features.completion(doc, pos)]


def end_of(text: str, line: str, nth: int = 0) -> lsp.Position:
    """The end of the ``nth`` line that reads exactly ``line``."""
    found = [i for i, ln in enumerate(text.split("\n")) if ln == line]
    return lsp.Position(line=found[nth], character=len(line))


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unlearnspec", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})


# -- `accept` ------------------------------------------------------------------------------------


def test_accept_offers_exactly_the_codes_the_compiler_accepts() -> None:
    """The reference is the compiler's own pipeline: an objective that accepts every warning and note of
    the catalog, given to `apply_accepts` with one finding of each code its rules (the only findings it
    sees) can report, and the codes it marks accepted."""
    candidates = sorted(c for c, p in CODES.items() if p.severity != "error" and c.startswith("UL"))
    lines = "".join(f'  accept {c} "reviewed"\n' for c in candidates)
    text = CLEAN.read_text().replace("\n}\n", f"\n{lines}}}\n")
    result = check_bytes(text.encode(), "spec.unlearn", SPECS, "resolve")
    assert result.spec is not None
    [obj] = result.spec.objectives
    fired = [Diagnostic(code=r.page.code, severity=r.page.severity, span=Span.point("spec.unlearn"),
                        objective=obj.name, message="fired") for r in RULES]
    accepted = {d.code for d in apply_accepts(obj, fired) if d.accepted}
    assert accepted and set(candidates) - accepted  # some are not: the set is not every warning and note
    assert {c for c in CODES if acceptable(c)} == accepted  # the one predicate both read

    doc = doc_at(CLEAN, CLEAN.read_text().replace("  owner ", "  accept \n  owner "))
    offered = set(labels(doc, where(doc.text, "accept ").end))
    assert offered == accepted


def test_an_accept_that_accepts_nothing_is_removed_not_accepted() -> None:
    text = CLEAN.read_text().replace("  evidence {", '  accept UL405 "reviewed"  # stale\n\n  evidence {')
    doc = doc_at(CLEAN, text)
    assert codes(doc) == ["UL214"]
    actions = features.code_actions(doc, doc.whole())
    assert [a.title for a in actions] == ["remove the `accept` line"]  # not `accept UL214`
    edit = actions[0].edit
    assert edit is not None and edit.changes is not None
    after = apply_edits(text, list(edit.changes[doc.uri]))
    assert codes(doc_at(CLEAN, after)) == []
    assert after == CLEAN.read_text().replace("  evidence {", "\n  evidence {")  # the whole line went


def test_no_accept_action_for_a_finding_accept_cannot_take(tmp_path: Path) -> None:
    """UL222 (a forget set with a repeated record) is a resolve warning: `accept UL222` would be UL214."""
    (tmp_path / "data").mkdir()
    for f in (SPECS / "data").glob("*.jsonl"):
        (tmp_path / "data" / f.name).symlink_to(f)
    first = (SPECS / "data" / "captain-vale.jsonl").read_text().splitlines()[0]
    (tmp_path / "data" / "dup.jsonl").write_text((SPECS / "data" / "captain-vale.jsonl").read_text() + first + "\n")
    spec = tmp_path / "spec.unlearn"
    text = CLEAN.read_text().replace("data/captain-vale.jsonl", "data/dup.jsonl")
    doc = doc_at(spec, text)
    assert codes(doc) == ["UL222"]
    assert not any(a.title.startswith("accept") for a in features.code_actions(doc, doc.whole()))
    # what the action would have written is refused by the compiler
    spec.write_text(text.replace("\n}\n", '\n  accept UL222 "reviewed"\n}\n'))
    assert "UL214" in cli("check", spec).stdout


def test_the_accept_action_cannot_pass_until_someone_writes_why(tmp_path: Path) -> None:
    spec = tmp_path / "spec.unlearn"
    (tmp_path / "data").symlink_to(SPECS / "data")
    text = (SPECS / "sequential-requests.unlearn").read_text()
    doc = doc_at(spec, text)
    warning = next((d for d in doc.outcome.diagnostics if d.severity == "warning" and not d.accepted), None) \
        if doc.outcome else None
    assert warning is not None
    action = next(a for a in features.code_actions(doc, doc.span_range(warning.span))
                  if a.title.startswith(f"accept {warning.code}"))
    assert action.edit is not None and action.edit.changes is not None
    inserted = apply_edits(text, list(action.edit.changes[doc.uri]))
    spec.write_text(inserted)
    strict = cli("check", "--strict", spec)
    assert strict.returncode != 0 and "UL215" in strict.stdout  # an empty justification is refused
    assert f'accept {warning.code} ""' in inserted
    spec.write_text(inserted.replace(f'accept {warning.code} ""', f'accept {warning.code} "Reviewed by A. Person."'))
    after = doc_at(spec, spec.read_text())
    assert after.outcome is not None
    now = [d for d in after.outcome.diagnostics if d.code == warning.code and d.objective == warning.objective]
    assert now and all(d.accepted for d in now)
    # as a snippet (for clients that take them) the cursor lands between the empty quotes
    [snippet] = [a for a in features.code_actions(doc, doc.span_range(warning.span), snippets=True)
                 if a.title.startswith(f"accept {warning.code}")]
    assert snippet.edit is not None and snippet.edit.document_changes is not None
    [change] = snippet.edit.document_changes
    assert isinstance(change, lsp.TextDocumentEdit)
    [sedit] = change.edits
    assert isinstance(sedit, lsp.SnippetTextEdit) and f'accept {warning.code} "$1"' in sedit.snippet.value


# -- the UL304 fix ---------------------------------------------------------------------------------


def test_the_goal_switch_for_a_filter_on_open_weights_also_switches_the_method() -> None:
    doc = doc_at(FILTER)
    before = codes(doc)
    assert "UL304" in before
    ul304 = next(d for d in doc.outcome.diagnostics if d.code == "UL304") if doc.outcome else None
    assert ul304 is not None
    [switch] = [a for a in features.code_actions(doc, doc.span_range(ul304.span)) if a.title.startswith("switch")]
    assert switch.edit is not None and switch.edit.changes is not None
    after = doc_at(FILTER, apply_edits(doc.text, list(switch.edit.changes[doc.uri])))
    assert after.outcome is not None
    assert not [d.code for d in after.outcome.diagnostics if d.severity == "error"]
    assert codes(after) == [c for c in before if c != "UL304"]
    # the spec now says what the help said to write
    assert "goal   suppression via model" not in after.text and "goal suppression via model" in after.text
    assert "method refusal" in after.text


# -- completion and hover --------------------------------------------------------------------------


def test_evidence_confidence_is_completed_hovered_and_checks() -> None:
    text = CLEAN.read_text()
    doc = doc_at(CLEAN)
    place = where(text, "leak_rate")
    items = {i.label: i for i in features.completion(doc, place.start)}
    assert set(vocab.EVIDENCE_SETTINGS) <= set(items) and set(vocab.METRICS) <= set(items)
    example = items["confidence"].detail
    assert example is not None and example.startswith("confidence ")
    written = text.replace("    leak_rate ", f"    {example}\n    leak_rate ")
    assert codes(doc_at(CLEAN, written)) == []  # what completion suggests, the compiler takes
    hover = features.hover(doc_at(CLEAN, written), where(written, "confidence").start)
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    lo, hi = vocab.CONFIDENCE_RANGE
    assert "field `confidence`" in hover.contents.value and f"{lo:.0%}" in hover.contents.value \
        and f"{hi:.1%}" in hover.contents.value


@pytest.mark.parametrize("metric", sorted(vocab.METRICS))
def test_a_metric_is_offered_only_the_bound_the_compiler_takes(metric: str) -> None:
    text = CLEAN.read_text().replace("    leak_rate ", f"    {metric} \n    leak_rate ")
    doc = doc_at(CLEAN, text)
    [op] = labels(doc, end_of(text, f"    {metric} "))
    threshold = vocab.METRICS[metric].threshold
    value = f"{threshold.value:g}{'%' if vocab.METRICS[metric].unit == 'percent' else ''}"
    other = {"<=": ">=", ">=": "<="}[op]
    assert "UL211" not in codes(doc_at(CLEAN, text.replace(f"    {metric} \n", f"    {metric} {op} {value}\n")))
    assert "UL211" in codes(doc_at(CLEAN, text.replace(f"    {metric} \n", f"    {metric} {other} {value}\n")))


def test_words_follow_what_is_already_written() -> None:
    text = CLEAN.read_text()
    doc = doc_at(CLEAN)
    goal = where(text, "suppression via model")
    assert set(labels(doc, goal.start)) == set(vocab.GOALS)
    assert labels(doc, lsp.Position(line=goal.start.line, character=goal.start.character + len("suppression "))) \
        == ["via"]
    assert set(labels(doc, lsp.Position(line=goal.start.line, character=goal.end.character - len("model")))) \
        == set(vocab.SUPPRESSION_VIA)
    removal = text.replace("goal   suppression via model", "goal   removal ")
    assert labels(doc_at(CLEAN, removal), where(removal, "goal   removal ").end) == []
    release = where(text, "api precision fp32")
    assert labels(doc, lsp.Position(line=release.start.line, character=release.start.character + 4)) == ["precision"]
    assert set(labels(doc, lsp.Position(line=release.end.line, character=release.end.character - 4))) \
        == set(vocab.PRECISIONS)


def test_utility_words_are_those_the_compiler_takes_in_each_block() -> None:
    chain = SPECS / "erasure-chain.unlearn"
    text = chain.read_text()
    budget = text.replace("    utility  drop <= 5%", "    utility  ")
    offered_budget = labels(doc_at(chain, budget), end_of(budget, "    utility  "))
    preserve = text.replace("    utility   drop <= 2%", "    utility   ", 1)
    offered_preserve = labels(doc_at(chain, preserve), end_of(preserve, "    utility   "))
    for word in ("retain", "neighbors"):
        in_budget = codes(doc_at(chain, text.replace("utility  drop <= 5%", f"utility  {word} drop <= 5%")))
        in_preserve = codes(doc_at(chain, text.replace("utility   drop <= 2%", f"utility   {word} drop <= 2%", 1)))
        assert ("UL210" in in_budget) == (word not in offered_budget)
        assert ("UL210" in in_preserve) == (word not in offered_preserve)
    assert "drop" in offered_budget and "drop" in offered_preserve
    # after `retain`, a list's next value starts again after its comma
    more = text.replace("    utility   drop <= 2%", "    utility   retain drop <= 2%,\n              neighbors ", 1)
    assert labels(doc_at(chain, more), end_of(more, "              neighbors ")) == ["drop"]


def test_completion_inside_a_string_not_closed_yet() -> None:
    files = {p.relative_to(SPECS).as_posix() for p in (SPECS / "data").rglob("*.jsonl")}
    for written in ('forget "da', 'forget "'):
        text = CLEAN.read_text().replace('forget "data/captain-vale.jsonl"', written)
        doc = doc_at(CLEAN, text)
        items = features.completion(doc, where(text, written).end)
        assert files <= {i.label for i in items}, written
        edit = items[0].text_edit
        assert isinstance(edit, lsp.TextEdit)  # it replaces what was typed after the quote
        assert edit.range.start.character == where(text, written).start.character + len('forget "')
    model = CLEAN.read_text().replace('"builtin:tiny-bios"', '"b')
    assert set(compiler_api.BUILTIN_MODELS) <= set(labels(doc_at(CLEAN, model), where(model, '"b').end))
    # after a closed string the cursor is outside it
    closed = CLEAN.read_text().replace('"data/captain-vale.jsonl"', '"da"')
    assert not files & set(labels(doc_at(CLEAN, closed), where(closed, '"da"').end))


def test_completing_a_path_reads_no_data_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    read: list[Path] = []
    real = compiler_api.inspect_cached

    def counted(path: Path, *rest: Any) -> Any:
        read.append(path)
        return real(path, *rest)

    monkeypatch.setattr(compiler_api, "inspect_cached", counted)
    (tmp_path / "data").symlink_to(SPECS / "data")
    text = CLEAN.read_text().replace('forget "data/captain-vale.jsonl"', 'forget ""')
    doc = Document(uri=(tmp_path / "spec.unlearn").as_uri(), text=text)
    items = features.completion_list(doc, lsp.Position(line=where(text, '""').start.line,
                                                       character=where(text, '""').start.character + 1))
    assert not items.is_incomplete and read == []
    item = next(i for i in items.items if i.label == "data/jane-doe.jsonl")
    size = (SPECS / "data" / "jane-doe.jsonl").stat().st_size
    assert item.detail == f"JSONL, {size:,} bytes"
    resolved = features.resolve_completion(item)  # what the client asks for the item it shows
    records = len([ln for ln in (SPECS / "data" / "jane-doe.jsonl").read_text().splitlines() if ln.strip()])
    assert resolved.detail is not None and f"JSONL, {records} records" in resolved.detail and len(read) == 1


def test_the_walk_for_files_is_bounded(tmp_path: Path) -> None:
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    for i in range(document.MAX_NAMES + 1):
        (bulk / f"f{i}.txt").touch()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jsonl").write_text('{"text": "a"}\n')
    text = CLEAN.read_text().replace('forget "data/captain-vale.jsonl"', 'forget "')
    doc = Document(uri=(tmp_path / "spec.unlearn").as_uri(), text=text)
    first = features.completion_list(doc, where(text, 'forget "').end)
    assert first.is_incomplete  # the client asks again as the path is typed
    typed = text.replace('forget "', 'forget "data/')
    again = features.completion_list(Document(uri=doc.uri, text=typed), where(typed, 'forget "data/').end)
    assert not again.is_incomplete and [i.label for i in again.items] == ["data/x.jsonl"]


def test_an_unsaved_document_lists_no_files_from_the_working_directory() -> None:
    typing = CLEAN.read_text().replace('forget "data/captain-vale.jsonl"', 'forget "')
    cwd = os.getcwd()
    try:
        os.chdir(SPECS)  # where `data/` is: the server's working directory is not the spec's folder
        doc = Document(uri="untitled:Untitled-1", text=typing)
        assert features.completion(doc, where(typing, 'forget "').end) == []
        unsaved = Document(uri="untitled:Untitled-1", text=CLEAN.read_text())
        unsaved.check()
        assert set(codes(unsaved)) == {"UL207"}  # its relative paths lead nowhere yet, and the help says why
        assert all("not saved yet" in d.message and os.devnull not in d.message for d in features.diagnostics(unsaved))
        hover = features.hover(unsaved, where(unsaved.text, '"data/captain-vale.jsonl"').start)
        assert hover is not None and "no folder" in str(hover.contents)
        # with the client's workspace folder (where the editor will save it), as `check` reads a file there
        in_folder = Document(uri="untitled:Untitled-1", text=typing, folder=SPECS)
        assert features.completion(in_folder, where(typing, 'forget "').end)
        assert codes(doc_at(SPECS / "x.unlearn", CLEAN.read_text())) == []
        saved_there = Document(uri="untitled:Untitled-1", text=CLEAN.read_text(), folder=SPECS)
        saved_there.check()
        assert codes(saved_there) == []
    finally:
        os.chdir(cwd)


# -- hover and definition on any string ------------------------------------------------------------


def test_hover_and_definition_on_strings_no_file_system_holds(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset_info.json").write_text("{}")
    (tmp_path / "plain").mkdir()
    long_name = "x" * 300 + ".jsonl"
    for title in (long_name, "a\x00b.jsonl", "plain", "ds", "A long title, " * 20):
        text = CLEAN.read_text().replace("Stop writing about Captain Orrin Vale", title)
        doc = Document(uri=(tmp_path / "spec.unlearn").as_uri(), text=text)
        inside = where(text, title[:20]).start
        assert features.definition(doc, inside) is None, title  # a title is no link, even to a folder
        features.hover(doc, inside)  # answers, never raises
    for path, expect in ((long_name, None), ("plain", None), ("ds", tmp_path / "ds" / "dataset_info.json")):
        text = CLEAN.read_text().replace("data/captain-vale.jsonl", path)
        doc = Document(uri=(tmp_path / "spec.unlearn").as_uri(), text=text)
        inside = where(text, path[:20]).start
        loc = features.definition(doc, inside)
        assert (loc.uri if loc else None) == (expect.resolve().as_uri() if expect else None), path
        hover = features.hover(doc, inside)
        assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
        assert hover.contents.value.startswith(f"data file {path}")


# -- the spec's folder, names and positions --------------------------------------------------------


def test_a_linked_spec_reads_data_from_its_targets_folder(tmp_path: Path) -> None:
    link = tmp_path / "vale.unlearn"
    link.symlink_to(CLEAN)
    doc = doc_at(link)
    check = cli("check", "--format", "json", link)
    assert codes(doc) == [] and '"diagnostics": []' in check.stdout.replace("\n", "").replace("  ", "")
    hover = features.hover(doc, where(doc.text, '"data/captain-vale.jsonl"').start)
    assert hover is not None and "records" in str(hover.contents)


def test_an_objective_without_a_name_still_has_a_symbol() -> None:
    for name in ("", "   "):
        text = CLEAN.read_text().replace('objective "captain-vale-suppression"', f'objective "{name}"')
        [sym] = features.symbols(doc_at(CLEAN, text))
        assert sym.name.strip()


def test_positions_are_characters_after_non_ascii_text_and_a_byte_order_mark() -> None:
    text = CLEAN.read_text().replace("Stop writing about", "Stöp wrïting ab\x00out")
    [diag] = features.diagnostics(doc_at(CLEAN, text))
    assert diag.code == "UL100" and diag.range.start == where(text, "\x00").start
    bom = "\ufeff" + CLEAN.read_text().replace("unlearnspec 1", "unlearnspec 7")
    diags = features.diagnostics(doc_at(CLEAN, bom))
    assert diags and all(d.range.start.line == 0 for d in diags)
    # the client's line 1 holds the mark: `7` is its 14th character
    assert {(d.range.start.character, d.range.end.character) for d in diags} == \
        {(where(bom, "7").start.character, where(bom, "7").end.character)}
