"""The pygls language server: documents in, the answers of :mod:`unlearnspec.lsp.features` out.

Diagnostics are published on open, on every change and on save; the check is the compiler's own
(parse, resolve, feasibility, accept), so the editor shows exactly what `unlearnspec check` prints.

Documents are synchronised in full: every change sends the whole text. Incremental changes would be
applied by pygls with :meth:`str.splitlines`, which also ends lines at form feeds, U+2028 and the
other characters editors do not count as line ends, so the server's copy would drift from the
editor's (and formatting would write the drift back); a spec is a few kilobytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from unlearnspec import __version__
from unlearnspec.lsp import features
from unlearnspec.lsp.document import Document, default_rules_base


class SpecServer(LanguageServer):
    """The server, with the open documents and where rule pages live (``rulesBaseUrl`` in the
    client's initialization options overrides the checkout's `docs/rules/`)."""

    def __init__(self) -> None:
        super().__init__("unlearnspec", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
        self.documents: dict[str, Document] = {}
        self.rules_base: str | None = default_rules_base()

    def workspace_folder(self) -> Path | None:
        """Where an unsaved document's relative paths lead: the client's (first) workspace folder, where
        the editor saves a new file; none without one (never the server's working directory)."""
        folders = list(self.workspace.folders.values())
        fs = to_fs_path(folders[0].uri) if folders else self.workspace.root_path
        return Path(fs) if fs else None

    def snippet_edits(self) -> bool:
        """Whether the client applies snippet edits in a code action's workspace edit (LSP 3.18)."""
        ws = self.client_capabilities.workspace
        return bool(ws and ws.workspace_edit and ws.workspace_edit.snippet_edit_support)

    def opened(self, uri: str) -> Document | None:
        """The document if the client has it open; a request about any other is answered with nothing (reading
        it from disk would answer about a file the editor is not showing, or fail on one that is gone)."""
        if uri not in self.workspace.text_documents and unquote(uri) not in self.workspace.text_documents:
            return None
        return self.document(uri)

    def document(self, uri: str) -> Document:
        text = self.workspace.get_text_document(uri).source
        folder = self.workspace_folder()
        doc = self.documents.get(uri)
        if doc is None or doc.text != text or doc.folder != folder:
            doc = Document(uri=uri, text=text, codec=self.workspace.position_codec, rules_base=self.rules_base,
                           folder=folder)
            self.documents[uri] = doc
        return doc

    def publish(self, uri: str) -> None:
        doc = self.document(uri)
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=features.diagnostics(doc)))


def build_server() -> SpecServer:
    server = SpecServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: SpecServer, params: lsp.InitializeParams) -> None:
        opts: Any = params.initialization_options
        if isinstance(opts, dict) and isinstance(opts.get("rulesBaseUrl"), str):
            ls.rules_base = opts["rulesBaseUrl"].rstrip("/") + "/"

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SpecServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)  # data files next to the spec may have changed

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.documents.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: SpecServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        for uri in list(ls.documents):  # a data file changed: what the open specs check to may have too
            ls.documents[uri].outcome = None
            ls.publish(uri)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: SpecServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.opened(params.text_document.uri)
        return None if doc is None else features.hover(doc, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=['"', "/", " "], resolve_provider=True))
    def completion(ls: SpecServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.opened(params.text_document.uri)
        return lsp.CompletionList(is_incomplete=False, items=[]) if doc is None else \
            features.completion_list(doc, params.position)

    @server.feature(lsp.COMPLETION_ITEM_RESOLVE)
    def completion_resolve(ls: SpecServer, item: lsp.CompletionItem) -> lsp.CompletionItem:
        return features.resolve_completion(item)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: SpecServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        doc = ls.opened(params.text_document.uri)
        return [] if doc is None else features.formatting(doc)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: SpecServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        doc = ls.opened(params.text_document.uri)
        if doc is None:
            return []
        if doc.outcome is None:
            doc.check()
        return features.code_actions(doc, params.range, snippets=ls.snippet_edits())

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: SpecServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = ls.opened(params.text_document.uri)
        return None if doc is None else features.definition(doc, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: SpecServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        doc = ls.opened(params.text_document.uri)
        return [] if doc is None else features.symbols(doc)

    return server


def serve() -> None:
    """Speak LSP over stdin and stdout until the client says exit."""
    build_server().start_io()
