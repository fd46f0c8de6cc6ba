"""The language server over stdio, with pygls's client, on what editors send that the in-process
tests cannot: how the text is synchronised, items resolved later, unsaved buffers and workspace
folders, snippet edits, and strings no file system holds. One server for the module (it starts in
about a second); every answer is compared with `unlearnspec check` and `unlearnspec fmt` run on the
same text.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("pygls")

from fixtures.frontend import ROOT, SPECS, with_spec_data  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import BaseLanguageClient  # noqa: E402
from test_lsp import apply_edits, where  # noqa: E402

CLEAN = SPECS / "captain-vale-suppression.unlearn"
T = TypeVar("T")


class Session:
    """A client and a server over stdio, driven one step at a time from synchronous tests."""

    def __init__(self, cwd: Path, capabilities: lsp.ClientCapabilities,
                 argv: tuple[str, ...] = ("-m", "unlearnspec", "lsp")) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = BaseLanguageClient("unlearnspec-test", "0")
        self.published: dict[str, list[lsp.PublishDiagnosticsParams]] = {}

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.setdefault(params.uri, []).append(params)

        self.run(self.client.start_io(sys.executable, *argv, cwd=str(cwd),
                                      env={**os.environ, "PYTHONPATH": str(ROOT)}))
        # no root folder: an unsaved buffer has no folder until the client names one
        self.init = self.run(self.client.initialize_async(lsp.InitializeParams(capabilities=capabilities)))
        self.client.initialized(lsp.InitializedParams())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 60))

    def notify_and_wait(self, uri: str, send: Any) -> lsp.PublishDiagnosticsParams:
        """Send a notification and wait for the diagnostics it publishes for ``uri``."""
        seen = len(self.published.get(uri, []))
        send()

        async def arrived() -> lsp.PublishDiagnosticsParams:
            while len(self.published.get(uri, [])) <= seen:
                await asyncio.sleep(0.01)
            return self.published[uri][-1]

        return self.run(arrived())

    def open(self, uri: str, text: str) -> lsp.PublishDiagnosticsParams:
        return self.notify_and_wait(uri, lambda: self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="unlearnspec", version=1, text=text))))

    def replace(self, uri: str, text: str, version: int) -> lsp.PublishDiagnosticsParams:
        """What a client does under full synchronisation: send the whole text."""
        return self.notify_and_wait(uri, lambda: self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)])))

    def close(self) -> None:
        try:
            self.run(self.client.shutdown_async(None))
            self.client.exit(None)
        finally:
            self.run(self.client.stop())
            self.loop.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the specs' data, where the server runs (its working directory)."""
    return with_spec_data(tmp_path_factory.mktemp("lsp-session"))


@pytest.fixture(scope="module")
def session(folder: Path) -> Iterator[Session]:
    caps = lsp.ClientCapabilities(workspace=lsp.WorkspaceClientCapabilities(
        workspace_edit=lsp.WorkspaceEditClientCapabilities(document_changes=True, snippet_edit_support=True)))
    s = Session(folder, caps)
    yield s
    s.close()


def check_json(text: str, where_: Path) -> list[tuple[str, int, int, int, int]]:
    """What `unlearnspec check --format json` reports for ``text`` saved in ``where_``, 0-based."""
    where_.write_text(text, encoding="utf-8", newline="")
    r = subprocess.run([sys.executable, "-m", "unlearnspec", "check", "--format", "json", str(where_)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return sorted((d["code"], d["line"] - 1, d["column"] - 1, d["end_line"] - 1, d["end_column"] - 1)
                  for d in json.loads(r.stdout)["diagnostics"])


def found(params: lsp.PublishDiagnosticsParams) -> list[tuple[str, int, int, int, int]]:
    return sorted((str(d.code), d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character)
                  for d in params.diagnostics)


def test_documents_are_synchronised_in_full_and_stay_the_editors_text(session: Session, folder: Path) -> None:
    """Form feeds, U+2028, U+2029 and NEL end lines for :meth:`str.splitlines` (which pygls applies
    incremental edits with), not for editors: under full synchronisation the server's copy is the editor's."""
    sync = session.init.capabilities.text_document_sync
    kind = sync.change if isinstance(sync, lsp.TextDocumentSyncOptions) else sync
    assert kind == lsp.TextDocumentSyncKind.Full
    good = CLEAN.read_text().replace("# Expect: nothing\n", "# Expect: nothing \u2028 \u2029 \x85\n\x0c\n") \
        .replace("  owner  ", "  owner ")
    bad = good.replace("kind   concept", "kind   concpt")
    uri = (folder / "sync.unlearn").as_uri()
    assert found(session.open(uri, bad)) == check_json(bad, folder / "sync-ref.unlearn")
    assert found(session.replace(uri, good, 2)) == check_json(good, folder / "sync-ref.unlearn") == []
    edits = session.run(session.client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True))))
    assert edits
    ref = folder / "fmt-ref.unlearn"
    ref.write_text(good, encoding="utf-8", newline="")
    subprocess.run([sys.executable, "-m", "unlearnspec", "fmt", str(ref)], cwd=ROOT, timeout=60, check=False,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert apply_edits(good, list(edits)) == ref.read_text(encoding="utf-8")


def test_data_file_items_are_resolved_one_at_a_time(session: Session, folder: Path) -> None:
    provider = session.init.capabilities.completion_provider
    assert provider is not None and provider.resolve_provider
    text = CLEAN.read_text().replace('forget "data/captain-vale.jsonl"', 'forget "data/')
    uri = (folder / "resolve.unlearn").as_uri()
    session.open(uri, text)
    answer = session.run(session.client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=where(text, 'forget "data/').end)))
    assert isinstance(answer, lsp.CompletionList)
    files = {p.relative_to(SPECS).as_posix() for p in (SPECS / "data").rglob("*.jsonl")}
    assert files <= {i.label for i in answer.items}
    item = next(i for i in answer.items if i.label == "data/captain-vale.jsonl")
    assert item.detail is not None and "record" not in item.detail  # the list reads no file
    resolved = session.run(session.client.completion_item_resolve_async(item))
    records = len([ln for ln in (SPECS / "data" / "captain-vale.jsonl").read_text().splitlines() if ln.strip()])
    assert resolved.detail is not None and f"JSONL, {records} records" in resolved.detail


def test_an_unsaved_buffer_reads_paths_from_the_workspace_folder_only(session: Session, folder: Path) -> None:
    """The server runs in a folder that has `data/`; an unsaved buffer's paths lead there only once the
    client names it as the workspace folder (where the editor will save the buffer)."""
    uri = "untitled:Untitled-1"
    text = CLEAN.read_text()
    assert {c for c, *_ in found(session.open(uri, text))} == {"UL207"}
    typing = text.replace('forget "data/captain-vale.jsonl"', 'forget "')
    session.replace(uri, typing, 2)
    empty = session.run(session.client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=where(typing, 'forget "').end)))
    assert isinstance(empty, lsp.CompletionList) and not empty.items
    # naming the folder re-checks the buffer (its paths lead there now)
    session.notify_and_wait(uri, lambda: session.client.workspace_did_change_workspace_folders(
        lsp.DidChangeWorkspaceFoldersParams(event=lsp.WorkspaceFoldersChangeEvent(
            added=[lsp.WorkspaceFolder(uri=folder.as_uri(), name="work")], removed=[]))))
    assert found(session.replace(uri, text, 3)) == check_json(text, folder / "unsaved-ref.unlearn") == []


def test_the_accept_fix_is_a_snippet_for_a_client_that_takes_them(session: Session, folder: Path) -> None:
    text = (SPECS / "sequential-requests.unlearn").read_text()
    uri = (folder / "snippet.unlearn").as_uri()
    diags = session.open(uri, text).diagnostics
    warning = next(d for d in diags if d.severity == lsp.DiagnosticSeverity.Warning)
    actions = session.run(session.client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=warning.range,
        context=lsp.CodeActionContext(diagnostics=[warning]))))
    accept = next(a for a in actions or [] if isinstance(a, lsp.CodeAction) and a.title.startswith(f"accept {warning.code}"))
    assert accept.edit is not None and accept.edit.document_changes
    [change] = accept.edit.document_changes
    assert isinstance(change, lsp.TextDocumentEdit) and change.text_document.uri == uri
    [edit] = change.edits
    assert isinstance(edit, lsp.SnippetTextEdit) and f'accept {warning.code} "$1"' in edit.snippet.value


def test_strings_no_file_system_holds_get_answers_not_errors(session: Session, folder: Path) -> None:
    """A name over the system's limit raised `OSError` in hover and definition (an error response)."""
    long_name = "x" * 300 + ".jsonl"
    text = CLEAN.read_text().replace("Stop writing about Captain Orrin Vale", long_name) \
        .replace("data/captain-vale.jsonl", long_name)
    uri = (folder / "long.unlearn").as_uri()
    session.open(uri, text)
    doc_id = lsp.TextDocumentIdentifier(uri=uri)
    for nth in (0, 1):  # the title, then the forget set
        inside = where(text, long_name, nth).start
        at = lsp.Position(line=inside.line, character=inside.character + 1)
        hover = session.run(session.client.text_document_hover_async(lsp.HoverParams(text_document=doc_id, position=at)))
        definition = session.run(session.client.text_document_definition_async(
            lsp.DefinitionParams(text_document=doc_id, position=at)))
        assert definition is None
        if nth == 1:
            assert isinstance(hover, lsp.Hover) and isinstance(hover.contents, lsp.MarkupContent)
            assert hover.contents.value == f"data file {long_name}: does not exist"


def test_a_linked_spec_is_checked_from_its_targets_folder(session: Session, tmp_path: Path) -> None:
    link = tmp_path / "vale.unlearn"
    link.symlink_to(CLEAN)
    published = session.open(link.as_uri(), CLEAN.read_text())
    r = subprocess.run([sys.executable, "-m", "unlearnspec", "check", "--format", "json", str(link)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert found(published) == [] == json.loads(r.stdout)["diagnostics"]
