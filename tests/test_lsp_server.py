"""The language server as an editor drives it over stdio: typing (a check after the last change, published
with its version), closing (nothing stale left or published late), saving a spec that others continue
(`after "file.unlearn#name"`), documents the client never opened, a check that takes long, and crashes
inside a handler or the checker, which must be answered or shown, never end the session.

The server runs with two test doubles put in front of the real functions (in its own process): the
check sleeps for a text holding ``# SLOW`` and raises for one holding ``# CRASH``; hover raises in a
document holding ``# HOVER-CRASH``. Every other text is checked by the compiler and compared with
`unlearnspec check` on the same text.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from fixtures.frontend import ROOT, SPECS, with_spec_data  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import BaseLanguageClient  # noqa: E402
from test_lsp import where  # noqa: E402
from test_lsp_session import Session, check_json, found  # noqa: E402

CLEAN = SPECS / "captain-vale-suppression.unlearn"
NAME = "captain-vale-suppression"
SLOW_S = 3.0

PATCHED = f"""
import time
from unlearnspec.lsp import compiler_api, features, server
real_check, real_hover = compiler_api.check_text, features.hover

def check_text(text, display, base_dir, *rest):
    if "# CRASH" in text:
        raise RuntimeError("the checker exploded")
    if "# SLOW" in text:
        time.sleep({SLOW_S})
    return real_check(text, display, base_dir, *rest)

def hover(doc, pos):
    if "# HOVER-CRASH" in doc.text:
        raise RuntimeError("hover exploded")
    return real_hover(doc, pos)

compiler_api.check_text = check_text
features.hover = hover
server.serve()
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_spec_data(tmp_path_factory.mktemp("lsp-server"))


@pytest.fixture(scope="module")
def session(folder: Path) -> Iterator[Session]:
    s = Session(folder, lsp.ClientCapabilities(), argv=("-c", PATCHED))
    yield s
    s.close()


def send_change(s: Session, uri: str, text: str, version: int) -> None:
    s.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


def settle(s: Session, seconds: float = 0.8) -> None:
    s.run(asyncio.sleep(seconds))


def hover_at(s: Session, uri: str, pos: lsp.Position) -> lsp.Hover | None:
    return s.run(s.client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos)))


def test_typing_is_checked_after_the_last_change_and_published_with_its_version(session: Session,
                                                                                folder: Path) -> None:
    uri = (folder / "typing.unlearn").as_uri()
    good = CLEAN.read_text()
    assert found(session.open(uri, good)) == []
    seen = len(session.published[uri])
    texts = [good.replace("kind   concept", "kind   " + "concept"[:n]) for n in range(1, 6)]
    last = len(texts) + 1
    published = session.notify_and_wait(uri, lambda: [send_change(session, uri, t, v)
                                                      for v, t in enumerate(texts, start=2)])
    settle(session)
    after = session.published[uri][seen:]
    assert published.version == last and all(p.version == last for p in after)
    assert len(after) < len(texts)  # not one check per keystroke
    assert found(after[-1]) == check_json(texts[-1], folder / "typing-ref.unlearn") != []


def test_closing_a_document_leaves_no_diagnostics_not_even_late_ones(session: Session, folder: Path) -> None:
    uri = (folder / "closing.unlearn").as_uri()
    bad = CLEAN.read_text().replace("kind   concept", "kind   concpt")
    assert found(session.open(uri, bad))
    send_change(session, uri, bad.replace("concpt", "concep"), 2)  # a check is waiting when the file closes
    session.client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri)))
    settle(session)
    assert not session.published[uri][-1].diagnostics
    assert hover_at(session, uri, where(bad, "kind").start) is None  # closed: nothing about it is answered


def test_documents_the_client_never_opened_get_no_answer_and_break_nothing(session: Session, folder: Path) -> None:
    ghost = (folder / "never-opened.unlearn").as_uri()
    send_change(session, ghost, CLEAN.read_text(), 2)
    session.client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=ghost)))
    assert hover_at(session, ghost, lsp.Position(line=0, character=0)) is None
    uri = (folder / "alive.unlearn").as_uri()
    session.open(uri, CLEAN.read_text())
    answer = hover_at(session, uri, where(CLEAN.read_text(), "not_generated").start)
    assert answer is not None and ghost not in session.published


def test_a_crash_in_a_request_handler_is_an_error_answer_and_the_session_goes_on(session: Session,
                                                                                 folder: Path) -> None:
    text = CLEAN.read_text().replace("# Expect: nothing", "# HOVER-CRASH")
    uri = (folder / "hover-crash.unlearn").as_uri()
    session.open(uri, text)
    with pytest.raises(Exception, match="hover exploded"):
        hover_at(session, uri, where(text, "not_generated").start)
    other = (folder / "after-crash.unlearn").as_uri()
    session.open(other, CLEAN.read_text())
    answer = hover_at(session, other, where(CLEAN.read_text(), "not_generated").start)
    assert answer is not None


def test_a_crash_in_the_checker_is_shown_and_the_next_text_is_checked(session: Session, folder: Path) -> None:
    uri = (folder / "check-crash.unlearn").as_uri()
    crash = CLEAN.read_text().replace("# Expect: nothing", "# CRASH")
    [shown] = session.open(uri, crash).diagnostics
    assert shown.severity == lsp.DiagnosticSeverity.Error and "the checker exploded" in shown.message
    bad = CLEAN.read_text().replace("kind   concept", "kind   concpt")
    assert found(session.replace(uri, bad, 2)) == check_json(bad, folder / "crash-ref.unlearn") != []


def test_a_slow_check_holds_up_no_other_request(session: Session, folder: Path) -> None:
    """The check runs off the event loop: hover, formatting and completion of another document answer at
    once while a slow one is checked; its diagnostics come when it is done."""
    other = (folder / "quick.unlearn").as_uri()
    good = CLEAN.read_text()
    session.open(other, good)
    slow = (folder / "slow.unlearn").as_uri()
    seen = len(session.published.get(slow, []))
    session.client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=slow, language_id="unlearnspec", version=1, text=good.replace("# Expect: nothing", "# SLOW"))))
    settle(session, 0.3)  # the slow check has started
    started = time.monotonic()
    assert hover_at(session, other, where(good, "not_generated").start) is not None
    edits = session.run(session.client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=other), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True))))
    assert not edits  # the checked-in spec is in `fmt` layout
    assert time.monotonic() - started < SLOW_S / 2
    assert len(session.published.get(slow, [])) == seen  # not yet

    async def done() -> None:
        while len(session.published.get(slow, [])) == seen:
            await asyncio.sleep(0.05)

    session.run(done())
    assert found(session.published[slow][-1]) == []


def test_saving_a_spec_rechecks_the_open_specs_that_continue_it(session: Session, folder: Path) -> None:
    first = folder / "first.unlearn"
    renamed = CLEAN.read_text().replace(f'objective "{NAME}"', 'objective "renamed"')
    first.write_text(renamed)
    second = folder / "second.unlearn"
    text = CLEAN.read_text().replace(f'objective "{NAME}" {{', f'objective "second" {{\n  after  "first.unlearn#{NAME}"')
    second.write_text(text)
    broken = session.open(second.as_uri(), text)
    assert [c for c, *_ in found(broken)] == ["UL216"] == [c for c, *_ in check_json(text, second)]
    session.open(first.as_uri(), renamed)
    first.write_text(CLEAN.read_text())  # the editor saves the name back
    send_change(session, first.as_uri(), CLEAN.read_text(), 2)
    fixed = session.notify_and_wait(second.as_uri(), lambda: session.client.text_document_did_save(
        lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=first.as_uri()))))
    assert found(fixed) == [] == check_json(text, second)


def test_editing_a_spec_rechecks_the_open_specs_that_continue_it_without_a_save(session: Session,
                                                                               folder: Path) -> None:
    """The objective a chain continues is read from the editor's buffer: an unsaved rename there breaks the link
    in the open spec that continues it, and an unsaved rename back mends it, while the file on disk never
    changes."""
    first = folder / "edited-first.unlearn"
    first.write_text(CLEAN.read_text())
    second = folder / "edited-second.unlearn"
    text = CLEAN.read_text().replace(f'objective "{NAME}" {{',
                                     f'objective "second" {{\n  after  "edited-first.unlearn#{NAME}"')
    second.write_text(text)
    assert found(session.open(second.as_uri(), text)) == [] == check_json(text, second)
    session.open(first.as_uri(), CLEAN.read_text())
    renamed = CLEAN.read_text().replace(f'objective "{NAME}"', 'objective "renamed"')
    broken = session.notify_and_wait(second.as_uri(), lambda: send_change(session, first.as_uri(), renamed, 2))
    assert [c for c, *_ in found(broken)] == ["UL216"]
    assert check_json(text, second) == []  # on disk the link still holds: the editor's text decided
    mended = session.notify_and_wait(second.as_uri(),
                                     lambda: send_change(session, first.as_uri(), CLEAN.read_text(), 3))
    assert found(mended) == []
    assert first.read_text() == CLEAN.read_text()


def test_a_client_that_registers_watchers_is_asked_to_watch_what_a_check_reads(folder: Path) -> None:
    """Data files, `save_to_disk` folders and the specs a chain continues change what an open spec checks to;
    a client that takes dynamic registrations is asked to report changes to them, and a change re-checks."""
    registered: list[lsp.RegistrationParams] = []
    published: list[lsp.PublishDiagnosticsParams] = []

    async def run() -> None:
        client = BaseLanguageClient("unlearnspec-test", "0")

        @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: lsp.RegistrationParams) -> None:
            registered.append(params)

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            published.append(params)

        await client.start_io(sys.executable, "-m", "unlearnspec", "lsp", cwd=str(folder),
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            caps = lsp.ClientCapabilities(workspace=lsp.WorkspaceClientCapabilities(
                did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True)))
            await asyncio.wait_for(client.initialize_async(lsp.InitializeParams(capabilities=caps)), 30)
            client.initialized(lsp.InitializedParams())
            data = folder / "watched.jsonl"
            data.write_text((SPECS / "data" / "captain-vale.jsonl").read_text())
            text = CLEAN.read_text().replace("data/captain-vale.jsonl", "watched.jsonl")
            uri = (folder / "watching.unlearn").as_uri()
            client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
                uri=uri, language_id="unlearnspec", version=1, text=text)))

            async def count(n: int) -> None:
                while len(published) < n:
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(count(1), 30)
            data.write_text("not json\n")
            client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
                changes=[lsp.FileEvent(uri=data.as_uri(), type=lsp.FileChangeType.Changed)]))
            await asyncio.wait_for(count(2), 30)
            await asyncio.wait_for(client.shutdown_async(None), 30)
            client.exit(None)
        finally:
            await client.stop()

    asyncio.run(run())
    [reg] = [r for p in registered for r in p.registrations]
    assert reg.method == lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert isinstance(reg.register_options, dict | lsp.DidChangeWatchedFilesRegistrationOptions)
    globs = str(reg.register_options)
    assert "jsonl" in globs and "unlearn" in globs and "dataset_info.json" in globs
    assert found(published[0]) == []
    assert found(published[1]) == check_json(CLEAN.read_text().replace("data/captain-vale.jsonl", "watched.jsonl"),
                                             folder / "watch-ref.unlearn") != []


def test_quick_fixes_are_offered_only_to_a_client_asking_for_quick_fixes(session: Session, folder: Path) -> None:
    bad = CLEAN.read_text().replace("kind   concept", "kind   concpt")
    uri = (folder / "kinds.unlearn").as_uri()
    session.open(uri, bad)

    def actions(only: list[str] | None) -> list[str]:
        got = session.run(session.client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), range=where(bad, "concpt"),
            context=lsp.CodeActionContext(diagnostics=[], only=only))))
        return [a.title for a in got or [] if isinstance(a, lsp.CodeAction)]

    assert "replace with `concept`" in actions(None) == actions(["quickfix"])
    assert actions(["refactor"]) == []
    # the document's unambiguous fixes at once: asked for by its kind (fix all, on save), never unasked
    assert actions(["source"]) == actions(["source.fixAll"]) == actions(["source.fixAll.unlearnspec"]) == \
        ["apply the 1 unambiguous fix (unlearnspec)"]
    assert actions([""]) == [*actions(["quickfix"]), "apply the 1 unambiguous fix (unlearnspec)"]


def test_a_new_workspace_folder_rechecks_the_unsaved_buffers(session: Session, tmp_path: Path) -> None:
    """An unsaved buffer's paths lead from the workspace folder: naming one changes its findings at once."""
    uri = "untitled:Untitled-7"
    text = CLEAN.read_text()
    assert {c for c, *_ in found(session.open(uri, text))} == {"UL207"}
    (tmp_path / "data").symlink_to(SPECS / "data")
    rechecked = session.notify_and_wait(uri, lambda: session.client.workspace_did_change_workspace_folders(
        lsp.DidChangeWorkspaceFoldersParams(event=lsp.WorkspaceFoldersChangeEvent(
            added=[lsp.WorkspaceFolder(uri=tmp_path.as_uri(), name="specs")], removed=[]))))
    assert found(rechecked) == check_json(text, tmp_path / "ref.unlearn") == []
