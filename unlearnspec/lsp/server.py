"""The pygls language server: documents in, the answers of :mod:`unlearnspec.lsp.features` out.

Diagnostics are published on open, after a change and on save; the check is the compiler's own
(parse, resolve, feasibility, accept), so the editor shows exactly what `unlearnspec check` prints.
A check runs off the event loop, in one worker thread (the compiler's data-file caches are not shared
between threads), a short pause after the last change (:data:`DEBOUNCE_S`): typing queues no check
per keystroke, and a slow data file or a huge spec never holds up hover, completion or formatting.
A check's result is published only while the text it checked is still the document's, with its version.
Hover and completion items that read a data file run in pygls's thread pool for the same reason.

A crash in a request handler is answered with an error (pygls logs it); a crash while checking is
logged to the client and shown as one diagnostic that says the findings could not be computed.

Editing or saving a spec re-checks the open specs that continue an objective of another file (`after
"file.unlearn#name"`): the compiler reads that file as the editor shows it when it is open there, saved or
not (``CompileOptions.read_other``), else from disk. Changes to watched files (data files and specs) re-check
too; the server asks the client to report them when it can register for them.

Documents are synchronised in full: every change sends the whole text. Incremental changes would be
applied by pygls with :meth:`str.splitlines`, which also ends lines at form feeds, U+2028 and the
other characters editors do not count as line ends, so the server's copy would drift from the
editor's (and formatting would write the drift back); a spec is a few kilobytes.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from unlearnspec import __version__
from unlearnspec.lsp import features
from unlearnspec.lsp.document import Document, default_rules_base

logger = logging.getLogger(__name__)

#: Seconds without a change before a changed document is checked.
DEBOUNCE_S = 0.2
#: The files whose changes can change what an open spec checks to: data files, `save_to_disk` folders, specs.
WATCHED = ("**/*.{jsonl,csv,unlearn}", "**/dataset_info.json")


class SpecServer(LanguageServer):
    """The server, with the open documents and where rule pages live (``rulesBaseUrl`` in the
    client's initialization options overrides the checkout's `docs/rules/`)."""

    def __init__(self) -> None:
        super().__init__("unlearnspec", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
        self.documents: dict[str, Document] = {}
        self.rules_base: str | None = default_rules_base()
        self.checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unlearnspec-check")
        self.pending: dict[str, asyncio.Task[None]] = {}

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

    def is_open(self, uri: str) -> bool:
        return uri in self.workspace.text_documents or unquote(uri) in self.workspace.text_documents

    def opened(self, uri: str) -> Document | None:
        """The document if the client has it open; a request about any other is answered with nothing (reading
        it from disk would answer about a file the editor is not showing, or fail on one that is gone)."""
        return self.document(uri) if self.is_open(uri) else None

    def document(self, uri: str) -> Document:
        td = self.workspace.get_text_document(uri)
        text = td.source
        folder = self.workspace_folder()
        doc = self.documents.get(uri)
        if doc is None or doc.text != text or doc.folder != folder:
            doc = Document(uri=uri, text=text, codec=self.workspace.position_codec, rules_base=self.rules_base,
                           folder=folder, version=td.version)
            self.documents[uri] = doc
        doc.version = td.version
        return doc

    def open_text(self, path: Path) -> str | None:
        """The editor's text of a file it has open (saved or not), for links to another spec."""
        for uri in list(self.documents):
            fs = to_fs_path(uri)
            if fs is not None and self.is_open(uri):
                try:
                    same = Path(fs).resolve() == path
                except (OSError, RuntimeError):
                    continue
                if same:
                    return self.workspace.get_text_document(uri).source
        return None

    # -- checking ----------------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float = DEBOUNCE_S) -> None:
        """Check ``uri`` after ``delay`` seconds, instead of any check of it still waiting."""
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._check(uri, delay))
        self.pending[uri] = task
        task.add_done_callback(lambda t: self.pending.pop(uri, None) if self.pending.get(uri) is t else None)

    def cancel(self, uri: str) -> None:
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()

    def linked_documents(self, saved: str) -> list[str]:
        """The open documents other than ``saved`` that continue an objective of another file."""
        return [uri for uri in list(self.documents)
                if uri != saved and self.is_open(uri) and any(lk.file is not None for lk in self.documents[uri].links)]

    async def _check(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        doc = self.opened(uri)
        if doc is None:
            return
        loop = asyncio.get_running_loop()
        try:
            diags = await loop.run_in_executor(self.checker, features.diagnostics, doc, self.open_text)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a crash in the compiler must not end the session
            logger.exception("checking %s failed", uri)
            self.window_log_message(lsp.LogMessageParams(
                type=lsp.MessageType.Error,
                message=f"unlearnspec: checking {uri} failed:\n{traceback.format_exc()}"))
            diags = [features.failure(doc, err)]
        now = self.opened(uri)
        if now is None or now.text != doc.text:  # changed or closed meanwhile: that text is checked (or cleared)
            return
        if now is not doc and now.outcome is None:  # a request in a thread made its own copy meanwhile
            now.outcome = doc.outcome
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, version=doc.version, diagnostics=diags))

    async def current(self, doc: Document) -> Document:
        """``doc`` with the compiler's outcome for its text (checked in the worker when it has none)."""
        if doc.outcome is None:
            await asyncio.get_running_loop().run_in_executor(self.checker, doc.check, self.open_text)
        return doc


def _register_watchers(ls: SpecServer) -> None:
    """Ask a client that can register file watchers dynamically to report changes to the files a check reads."""
    ws = ls.client_capabilities.workspace
    watched = ws.did_change_watched_files if ws is not None else None
    if watched is None or not watched.dynamic_registration:
        return
    ls.client_register_capability(lsp.RegistrationParams(registrations=[lsp.Registration(
        id="unlearnspec-watched-files", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=lsp.DidChangeWatchedFilesRegistrationOptions(
            watchers=[lsp.FileSystemWatcher(glob_pattern=g) for g in WATCHED]))]))


def build_server() -> SpecServer:
    server = SpecServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: SpecServer, params: lsp.InitializeParams) -> None:
        opts: Any = params.initialization_options
        if isinstance(opts, dict) and isinstance(opts.get("rulesBaseUrl"), str) and opts["rulesBaseUrl"].strip():
            ls.rules_base = opts["rulesBaseUrl"].strip().rstrip("/") + "/"

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: SpecServer, params: lsp.InitializedParams) -> None:
        _register_watchers(ls)

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: SpecServer, params: None) -> None:
        for uri in list(ls.pending):
            ls.cancel(uri)
        ls.checker.shutdown(wait=False, cancel_futures=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, delay=0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.schedule(uri)
        for other in ls.linked_documents(uri):  # they read this file as the editor shows it
            ls.schedule(other)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: SpecServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if ls.is_open(uri):
            ls.schedule(uri, delay=0)  # data files next to the spec may have changed
        for other in ls.linked_documents(uri):  # specs continuing an objective of this one read it from disk
            ls.schedule(other, delay=0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.cancel(params.text_document.uri)  # a check still waiting would publish for a closed document
        ls.documents.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def watched_files(ls: SpecServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        for uri in list(ls.documents):  # a data file or a linked spec changed: what the open specs check to may have too
            if ls.is_open(uri):
                ls.documents[uri].outcome = None
                ls.schedule(uri)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def workspace_folders(ls: SpecServer, params: lsp.DidChangeWorkspaceFoldersParams) -> None:
        for uri in list(ls.documents):  # an unsaved buffer's paths lead from the (first) workspace folder
            if ls.is_open(uri) and to_fs_path(uri) is None:
                ls.schedule(uri, delay=0)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @server.thread()  # a data file's record count reads it
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
    @server.thread()  # reads the data file the item names
    def completion_resolve(ls: SpecServer, item: lsp.CompletionItem) -> lsp.CompletionItem:
        return features.resolve_completion(item)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: SpecServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        doc = ls.opened(params.text_document.uri)
        return [] if doc is None else features.formatting(doc)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix, features.FIX_ALL]))
    async def code_action(ls: SpecServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        doc = ls.opened(params.text_document.uri)
        if doc is None:
            return []
        only = params.context.only

        def asked(kind: str) -> bool:  # kinds are hierarchical: `""` asks for every kind, `source` for `source.*`
            return not only or any(k == "" or kind == k or kind.startswith(f"{k}.") for k in only)

        current = await ls.current(doc)
        out = features.code_actions(current, params.range, snippets=ls.snippet_edits()) \
            if asked(lsp.CodeActionKind.QuickFix.value) else []
        if only and asked(features.FIX_ALL):  # asked for by name (fix all, on save): never among the quick fixes
            every = features.fix_all(current)
            out += [every] if every is not None else []
        return out

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: SpecServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = ls.opened(params.text_document.uri)
        return None if doc is None else features.definition(doc, params.position, ls.open_text)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: SpecServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        doc = ls.opened(params.text_document.uri)
        return [] if doc is None else features.symbols(doc)

    return server


def serve() -> None:
    """Speak LSP over stdin and stdout until the client says exit."""
    build_server().start_io()
