"""The language server: an end-to-end session over stdio with pygls's client, and each feature
in-process against independent references (the checked-in specs, the `check` verb, the vocabulary).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from fixtures.frontend import ROOT, SPECS  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402

from unlearnspec.catalog import METHODS, METRICS, PROBES, vocab  # noqa: E402
from unlearnspec.lsp import features  # noqa: E402
from unlearnspec.lsp.features import Document  # noqa: E402

CLEAN = SPECS / "captain-vale-suppression.unlearn"  # checks with no findings at all ("Expect: nothing")


def apply_edits(text: str, edits: list[lsp.TextEdit]) -> str:
    """Apply LSP edits to ASCII text (one UTF-16 unit per character), last edit first."""
    lines = text.split("\n")
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln) + 1)

    def offset(p: lsp.Position) -> int:
        return min(starts[p.line] + p.character, len(text)) if p.line < len(lines) else len(text)

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


def where(text: str, needle: str, nth: int = 0) -> lsp.Range:
    """The range of the ``nth`` occurrence of ``needle``, found by plain string search."""
    lines = text.split("\n")
    seen = 0
    for i, ln in enumerate(lines):
        col = ln.find(needle)
        while col >= 0:
            if seen == nth:
                return lsp.Range(start=lsp.Position(line=i, character=col),
                                 end=lsp.Position(line=i, character=col + len(needle)))
            seen += 1
            col = ln.find(needle, col + 1)
    raise AssertionError(f"{needle!r} not in text")


def cli_findings(text: str, tmp_path: Path) -> list[tuple[str, int, int, int, int]]:
    """Code and 0-based range of what `unlearnspec check --format json` reports for ``text``, placed
    beside the specs' data."""
    spec = tmp_path / "spec.unlearn"
    spec.write_text(text)
    (tmp_path / "data").symlink_to(SPECS / "data")
    r = subprocess.run([sys.executable, "-m", "unlearnspec", "check", "--format", "json", str(spec)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return sorted((d["code"], d["line"] - 1, d["column"] - 1, d["end_line"] - 1, d["end_column"] - 1)
                  for d in json.loads(r.stdout)["diagnostics"])


# -- end to end: a real client over stdio ------------------------------------------------------


def test_language_server_session_over_stdio(tmp_path: Path) -> None:
    from pygls.lsp.client import BaseLanguageClient

    good = CLEAN.read_text()
    bad = good.replace("kind   concept", "kind   concpt").replace("  owner  ", "  ownr   ")
    uri = (SPECS / "lsp-session.unlearn").as_uri()  # never written: the text travels in didOpen
    published: list[lsp.PublishDiagnosticsParams] = []

    async def session() -> dict[str, object]:
        client = BaseLanguageClient("unlearnspec-test", "0")
        arrived = asyncio.Event()

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            published.append(params)
            arrived.set()

        async def next_diagnostics() -> lsp.PublishDiagnosticsParams:
            await asyncio.wait_for(arrived.wait(), 30)
            arrived.clear()
            return published[-1]

        await client.start_io(sys.executable, "-m", "unlearnspec", "lsp", cwd=str(ROOT),
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        out: dict[str, object] = {}
        try:
            init = await asyncio.wait_for(client.initialize_async(lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(), root_uri=ROOT.as_uri())), 30)
            out["capabilities"] = init.capabilities
            client.initialized(lsp.InitializedParams())
            client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
                uri=uri, language_id="unlearnspec", version=1, text=bad)))
            out["opened"] = await next_diagnostics()
            doc_id = lsp.TextDocumentIdentifier(uri=uri)
            typo = where(bad, "concpt")
            out["actions"] = await client.text_document_code_action_async(lsp.CodeActionParams(
                text_document=doc_id, range=typo, context=lsp.CodeActionContext(diagnostics=[])))
            out["hover"] = await client.text_document_hover_async(lsp.HoverParams(
                text_document=doc_id, position=where(bad, "not_generated").start))
            goal = where(bad, "suppression via model")
            out["completion"] = await client.text_document_completion_async(lsp.CompletionParams(
                text_document=doc_id, position=goal.start))
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=good)]))
            out["fixed"] = await next_diagnostics()
            messy = good.replace("  goal   suppression via model", "goal suppression   via model") \
                        .replace("    kind   concept", "kind concept")
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=messy)]))
            await next_diagnostics()
            out["messy"] = messy
            out["formatting"] = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
                text_document=doc_id, options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
            # a document the client never opened: no answer, not a traceback about a missing file
            out["unopened"] = await client.text_document_hover_async(lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=(tmp_path / "never.unlearn").as_uri()),
                position=lsp.Position(line=0, character=0)))
            # a lone surrogate (legal in JSON-RPC) is text no file could hold: UL100, as `check` says of bad bytes
            odd = (SPECS / "lsp-odd.unlearn").as_uri()
            client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
                uri=odd, language_id="unlearnspec", version=1, text='unlearnspec 1\nobjective "\ud800" {\n}\n')))
            out["surrogate"] = await next_diagnostics()
            out["surrogate_format"] = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
                text_document=lsp.TextDocumentIdentifier(uri=odd),
                options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
            await asyncio.wait_for(client.shutdown_async(None), 30)
            client.exit(None)
        finally:
            await client.stop()
        return out

    out = asyncio.run(session())
    caps = out["capabilities"]
    assert isinstance(caps, lsp.ServerCapabilities)
    assert caps.hover_provider and caps.completion_provider and caps.document_formatting_provider

    opened = out["opened"]
    assert isinstance(opened, lsp.PublishDiagnosticsParams) and opened.uri == uri
    # the same codes and spans as the `check` verb reports for the same text
    assert sorted((str(d.code), d.range.start.line, d.range.start.character, d.range.end.line,
                   d.range.end.character) for d in opened.diagnostics) == cli_findings(bad, tmp_path)
    [kind_diag] = [d for d in opened.diagnostics if "concpt" in d.message]
    assert kind_diag.range == where(bad, "concpt")
    assert kind_diag.severity == lsp.DiagnosticSeverity.Error
    assert "help: did you mean `concept`?" in kind_diag.message
    # the rule page of the code, in this checkout's docs/rules/
    assert kind_diag.code_description is not None
    assert kind_diag.code_description.href == (ROOT / "docs" / "rules" / f"{kind_diag.code}.md").as_uri()
    assert (ROOT / "docs" / "rules" / f"{kind_diag.code}.md").is_file()
    [owner_diag] = [d for d in opened.diagnostics if "ownr" in d.message]
    assert owner_diag.range == where(bad, "ownr")

    fixed = out["fixed"]
    assert isinstance(fixed, lsp.PublishDiagnosticsParams) and list(fixed.diagnostics) == []

    actions = out["actions"]
    assert isinstance(actions, (list, tuple))
    fix = next(a for a in actions if isinstance(a, lsp.CodeAction) and "concept" in a.title)
    assert fix.edit is not None and fix.edit.changes is not None
    repaired = apply_edits(bad, list(fix.edit.changes[uri]))
    assert repaired == bad.replace("kind   concpt", "kind   concept")

    hover = out["hover"]
    assert isinstance(hover, lsp.Hover) and isinstance(hover.contents, lsp.MarkupContent)
    assert vocab.CLAIMS["not_generated"].summary in hover.contents.value

    completion = out["completion"]
    labels = {i.label for i in (completion.items if isinstance(completion, lsp.CompletionList) else completion or [])}
    assert set(vocab.GOALS) <= labels

    edits = out["formatting"]
    assert isinstance(edits, (list, tuple)) and edits
    assert apply_edits(str(out["messy"]), list(edits)) == good  # the checked-in spec is in `fmt` layout

    assert out["unopened"] is None
    surrogate = out["surrogate"]
    assert isinstance(surrogate, lsp.PublishDiagnosticsParams) and [str(d.code) for d in surrogate.diagnostics] == ["UL100"]
    assert not out["surrogate_format"]  # nothing to format in text that does not parse


# -- in-process, feature by feature ----------------------------------------------------------------


def doc_for(path: Path, text: str | None = None) -> Document:
    doc = Document(uri=path.resolve().as_uri(), text=path.read_text() if text is None else text,
                   rules_base="https://example.invalid/rules/")
    doc.check()
    return doc


def test_diagnostics_carry_labels_rule_pages_and_accepted_hints() -> None:
    doc = doc_for(SPECS / "sequential-requests.unlearn")
    diags = features.diagnostics(doc)
    expected = {c.split(" ")[0] for c in (SPECS / "sequential-requests.unlearn").read_text()
                .split("# Expect: ")[1].splitlines()[0].split(", ") if c.startswith("UL")}
    assert {str(d.code) for d in diags} == expected
    hints = [d for d in diags if d.severity == lsp.DiagnosticSeverity.Hint]
    expect_line = (SPECS / "sequential-requests.unlearn").read_text().split("# Expect: ")[1].splitlines()[0]
    accepted = {code for code, what in re.findall(r"(UL\d+) \(([^)]*)\)", expect_line) if "accepted" in what}
    assert hints and {str(d.code) for d in hints} == accepted and all("accepted:" in d.message for d in hints)
    for d in diags:
        assert d.code_description is not None and d.code_description.href == f"https://example.invalid/rules/{d.code}.md"
    labelled = [d for d in diags if d.code == "UL406"]
    assert labelled and labelled[0].related_information


def test_accept_action_turns_the_warning_into_an_accepted_hint() -> None:
    path = SPECS / "sequential-requests.unlearn"
    doc = doc_for(path)
    ul404 = next(d for d in doc.outcome.diagnostics if d.code == "UL404") if doc.outcome else None
    assert ul404 is not None
    actions = features.code_actions(doc, doc.span_range(ul404.span))
    accept = next(a for a in actions if a.title.startswith("accept UL404"))
    assert accept.edit is not None and accept.edit.changes is not None
    new = apply_edits(doc.text, list(accept.edit.changes[doc.uri]))
    # the justification is left for a person to write: until then the compiler refuses the line (UL215)
    pending = doc_for(path, new)
    assert pending.outcome is not None
    assert [d.code for d in pending.outcome.diagnostics if d.severity == "error"] == ["UL215"]
    after = doc_for(path, new.replace('accept UL404 ""', 'accept UL404 "Reviewed by the privacy office."'))
    assert after.outcome is not None
    now = [d for d in after.outcome.diagnostics if d.code == "UL404" and d.objective == ul404.objective]
    assert now and all(d.accepted for d in now)
    assert not any(d.severity == "error" for d in after.outcome.diagnostics)


def test_switch_goal_action_clears_the_error() -> None:
    path = SPECS / "captain-vale-removal.unlearn"
    doc = doc_for(path)
    assert doc.outcome is not None
    err = next(d for d in doc.outcome.diagnostics if d.code == "UL301")
    switch = next(a for a in features.code_actions(doc, doc.span_range(err.span)) if "goal suppression" in a.title)
    assert switch.edit is not None and switch.edit.changes is not None
    after = doc_for(path, apply_edits(doc.text, list(switch.edit.changes[doc.uri])))
    assert after.outcome is not None and "UL301" not in {d.code for d in after.outcome.diagnostics}


def test_hover_explains_words_codes_and_data_files() -> None:
    doc = doc_for(SPECS / "erase-jane-doe.unlearn")
    text = doc.text

    def hover(needle: str, nth: int = 0) -> str:
        h = features.hover(doc, where(text, needle, nth).start)
        assert h is not None and isinstance(h.contents, lsp.MarkupContent), needle
        return h.contents.value

    assert vocab.METRICS["membership_auc"].summary in hover("membership_auc")
    assert METHODS["npo"].summary in hover("npo") and "`retrain`" in hover("npo")
    assert METRICS["membership_auc"].threshold.why in hover("membership_auc")
    assert PROBES["paraphrased"].description in hover("paraphrased")
    assert "forget-set-completeness" in hover("UL405")
    records = len([ln for ln in (SPECS / "data" / "jane-doe.jsonl").read_text().splitlines() if ln.strip()])
    assert f"JSONL, {records} records" in hover('"data/jane-doe.jsonl"')
    assert "`observed`" in hover("kind")
    assert "part of a `robust_to_finetuning` value" in hover("steps 20")
    assert features.hover(doc, lsp.Position(line=2, character=5)) is None  # a comment


def test_completion_in_context(tmp_path: Path) -> None:
    text = (SPECS / "erase-jane-doe.unlearn").read_text()
    doc = doc_for(SPECS / "erase-jane-doe.unlearn")

    def labels(pos: lsp.Position, d: Document = doc) -> set[str]:
        return {i.label for i in features.completion(d, pos)}

    in_claims = where(text, "not_generated").start
    assert labels(in_claims) == set(vocab.CLAIMS)
    assert labels(where(text, "verbatim_rouge").start) == {*vocab.METRICS, *vocab.EVIDENCE_SETTINGS}
    assert labels(where(text, "kind").start) == set(vocab.TARGET_FIELDS)
    assert labels(where(text, "goal").start) == set(vocab.OBJECTIVE_FIELDS)
    assert set(vocab.OUTPUTS) <= labels(where(text, "facts").end)
    assert set(vocab.PROMPTS) <= labels(where(text, "adversarial").end)
    assert "UL404" in labels(where(text, "UL405").start)
    seq = doc_for(SPECS / "sequential-requests.unlearn")
    codes = features.completion(seq, where(seq.text, "accept UL405").end)
    # the unaccepted warnings and notes of that spec (its `# Expect:` line) come first
    expect = next(line for line in seq.text.splitlines() if line.startswith("# Expect:"))
    unaccepted = set(re.findall(r"(UL\d{3}) \((?:warning|note)\)", expect))
    first = sorted(codes, key=lambda i: i.sort_text or i.label)[:len(unaccepted)]
    assert {i.label for i in first} == unaccepted and {"UL402", "UL404", "UL406", "UL502"} <= unaccepted
    inside = where(text, '"data/jane-doe.jsonl"').start
    files = labels(lsp.Position(line=inside.line, character=inside.character + 1))
    assert {p.relative_to(SPECS).as_posix() for p in (SPECS / "data").rglob("*.jsonl")} <= files
    # on the opening quote the cursor is not inside the string: no file items, and no edit whose range runs
    # backwards (an invalid LSP range)
    on_quote = features.completion(doc, inside)
    assert not {i.label for i in on_quote} & files
    for item in features.completion(doc, lsp.Position(line=inside.line, character=inside.character + 1)):
        assert isinstance(item.text_edit, lsp.TextEdit)
        r = item.text_edit.range
        assert (r.start.line, r.start.character) <= (r.end.line, r.end.character)


def test_definition_and_symbols() -> None:
    doc = doc_for(SPECS / "erase-jane-doe.unlearn")
    loc = features.definition(doc, where(doc.text, '"data/retain.jsonl"').start)
    assert loc is not None and loc.uri == (SPECS / "data" / "retain.jsonl").resolve().as_uri()
    [obj] = features.symbols(doc)
    assert obj.name == "erase-jane-doe"
    names = [c.name for c in obj.children or []]
    assert names[:3] == ["title", "basis", "owner"] and "target" in names and "evidence" in names
    target = next(c for c in obj.children or [] if c.name == "target")
    assert [c.name for c in target.children or []] == ["kind", "forget", "aliases"]


def test_formatting_is_fmt_and_leaves_broken_specs_alone() -> None:
    good = CLEAN.read_text()
    doc = doc_for(CLEAN, good.replace("  claims {", "claims   {"))
    assert apply_edits(doc.text, features.formatting(doc)) == good
    assert features.formatting(doc_for(CLEAN, good)) == []
    assert features.formatting(doc_for(CLEAN, good.replace("}", "", 1))) == []


def test_write_instead_actions_fix_the_findings() -> None:
    path = SPECS / "erase-jane-doe.unlearn"
    good = path.read_text()
    bad = good.replace("drop <= 2%", "drop <= 2").replace("membership_auc <= 0.60", "membership_auc >= 0.60") \
        .replace("forget_quality >= 0.05", "forget_quality >= 5%")
    doc = doc_for(path, bad)
    assert doc.outcome is not None
    assert {d.code for d in doc.outcome.diagnostics if d.severity == "error"} == {"UL210", "UL211"}
    fixes = [a for a in features.code_actions(doc, doc.whole()) if a.title.startswith("write `")]
    assert sorted(a.title for a in fixes) == ["write `0.05`", "write `2%`", "write `membership_auc <= 0.60`"]
    edits = [e for a in fixes for e in (a.edit.changes[doc.uri] if a.edit and a.edit.changes else [])]
    assert apply_edits(bad, edits) == good
