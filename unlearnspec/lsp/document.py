"""One open spec as the server holds it, and the files around it.

A :class:`Document` is the text the client sent, where its relative paths lead (the spec's real folder,
as `check` reads it), and the conversion of the compiler's positions to the client's. The walk below a
spec's folder that completion lists files from is bounded: the server answers one request at a time.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lsprotocol import types as lsp
from pygls.uris import to_fs_path
from pygls.workspace.position_codec import PositionCodec

from unlearnspec.lsp import compiler_api as api
from unlearnspec.lsp import links
from unlearnspec.lsp.context import Cursor, Token, cursor_at, split_lines

MAX_LISTED = 200  # completion items for files or folders
MAX_NAMES = 5000  # directory entries a walk below a spec's folder reads, at most
MAX_DEPTH = 3  # folder levels below it


def uri_to_path(uri: str) -> Path:
    """The file of a `file:` URI; for another scheme (an unsaved buffer), a path named after it."""
    return Path(to_fs_path(uri) or uri.rsplit(":", 1)[-1] or "untitled.unlearn")


def exists(path: Path) -> bool:
    """Whether ``path`` names something; a name no file system holds (longer than the system allows,
    with a NUL in it) names nothing."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_data_name(raw: str) -> bool:
    return raw.lower().endswith(api.DATA_SUFFIXES)


def default_rules_base() -> str | None:
    """The folder of rule pages (`docs/rules/CODE.md`) in this checkout, as a URI, if it has one."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "rules"
    return docs.as_uri() + "/" if docs.is_dir() else None


@dataclass
class Document:
    """One open spec and what the compiler last said about it."""

    uri: str
    text: str
    codec: PositionCodec = field(default_factory=PositionCodec)
    rules_base: str | None = None
    outcome: api.CheckOutcome | None = None
    #: an unsaved document's folder (the client's workspace folder, where it will be saved), if any
    folder: Path | None = None
    #: the client's version of the text (published with its diagnostics, so that a client drops late ones)
    version: int | None = None

    @property
    def path(self) -> Path:
        return uri_to_path(self.uri)

    @functools.cached_property
    def base_dir(self) -> Path | None:
        """The folder the spec's relative paths lead from, as `check` reads them: the real folder of the
        file (a link to a spec leads from its target's folder). A document that is not a file yet has
        :attr:`folder`, or none: the server's working directory is never a spec's folder."""
        fs = to_fs_path(self.uri)
        if fs is None:
            return self.folder
        try:
            return Path(fs).resolve().parent
        except (OSError, RuntimeError):  # a loop of links
            return Path(fs).parent

    @property
    def display(self) -> str:
        return self.path.name

    @functools.cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    @functools.cached_property
    def links(self) -> list[links.Link]:
        """The document's `after` links."""
        return links.links(self.text)

    def check(self, open_text: Callable[[Path], str | None] | None = None) -> api.CheckOutcome:
        # no folder: relative paths lead nowhere (every one "does not exist"), not to the working directory;
        # ``open_text``: the editor's text of the other specs a chain continues
        self.outcome = api.check_text(self.text, self.display, self.base_dir, open_text)
        return self.outcome

    # -- positions -----------------------------------------------------------------------------

    def range(self, line: int, column: int, end_line: int, end_column: int) -> lsp.Range:
        """A client range from the compiler's 1-based, end-exclusive character positions (which on
        line 1 start after a byte order mark; the client's start before it)."""
        bom = int(self.text.startswith("\ufeff"))
        column += bom if line == 1 else 0
        end_column += bom if end_line == 1 else 0
        lines = self.lines
        server = lsp.Range(start=lsp.Position(line=max(line - 1, 0), character=max(column - 1, 0)),
                           end=lsp.Position(line=max(end_line - 1, 0), character=max(end_column - 1, 0)))
        if server.start.line >= len(lines):
            server.start = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
        if server.end.line >= len(lines):
            server.end = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
        return self.codec.range_to_client_units(lines, server)

    def compiler_line(self, line: int) -> str:
        """1-based line ``line`` as the compiler counts its columns (line 1 without a byte order mark)."""
        lines = self.lines
        text = lines[line - 1] if 1 <= line <= len(lines) else ""
        return text.removeprefix("\ufeff") if line == 1 else text

    def span_range(self, span: api.Span) -> lsp.Range:
        return self.range(span.line, span.column, span.end_line, span.end_column)

    def token_range(self, tok: Token, start: int | None = None, end: int | None = None) -> lsp.Range:
        lo = tok.start if start is None else start
        hi = tok.end if end is None else end
        return self.codec.range_to_client_units(self.lines, lsp.Range(
            start=lsp.Position(line=tok.line, character=lo), end=lsp.Position(line=tok.line, character=hi)))

    def cursor(self, pos: lsp.Position) -> Cursor:
        server = self.codec.position_from_client_units(self.lines, lsp.Position(line=pos.line, character=pos.character))
        return cursor_at(self.text, server.line, server.character)

    def whole(self) -> lsp.Range:
        lines = self.lines
        return self.codec.range_to_client_units(lines, lsp.Range(
            start=lsp.Position(line=0, character=0),
            end=lsp.Position(line=len(lines) - 1, character=len(lines[-1]))))

    def resolve_path(self, raw: str) -> Path | None:
        """The path a spec's string names, as the compiler joins it; ``None`` for a relative path in a
        document without a folder."""
        if self.base_dir is None and not os.path.isabs(raw):
            return None
        return Path(os.path.normpath(os.path.join(self.base_dir or "", raw)))


def walk(top: Path, budget: int = MAX_NAMES) -> tuple[list[tuple[PurePosixPath, list[str], list[str]]], bool]:
    """The folders below ``top`` (``MAX_DEPTH`` levels, hidden ones left out), breadth first, as
    (folder relative to ``top``, its folders, its files), having read at most ``budget`` names: a spec
    beside a huge tree must not stall the server, which answers one request at a time. The second
    value says whether the walk read everything."""
    out: list[tuple[PurePosixPath, list[str], list[str]]] = []
    todo = deque([PurePosixPath()])
    read = 0
    while todo:
        rel = todo.popleft()
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(top / rel) as entries:
                for e in entries:
                    read += 1
                    if read > budget:
                        break
                    if e.name.startswith(".") or not e.name.isprintable():
                        continue
                    # a linked folder is walked too (a shared `data/`); depth and budget bound a loop of links
                    (dirs if e.is_dir() else files).append(e.name)
        except (OSError, ValueError):
            continue
        out.append((rel, sorted(dirs), sorted(files)))
        if read > budget:
            return out, False
        if len(rel.parts) < MAX_DEPTH:
            todo.extend(rel / d for d in sorted(dirs))
    return out, True


def checkpoint_dirs(base: Path) -> tuple[list[tuple[str, str]], bool]:
    """Model and peft adapter folders below a spec's folder, relative to it, with what each is; and
    whether the walk saw every folder."""
    out: list[tuple[str, str]] = []
    walked, complete = walk(base)
    for rel, _, files in walked:
        kind = "peft adapter" if "adapter_config.json" in files else "model folder" if "config.json" in files else None
        if kind and rel.parts and any(f.endswith(".safetensors") for f in files):
            out.append((rel.as_posix(), kind))
            if len(out) >= MAX_LISTED:
                return out, False
    return out, complete


def data_files(base: Path) -> tuple[list[str], bool]:
    """Data files below a spec's folder, relative to it (no byte of them is read); and whether the
    walk saw every file."""
    out: list[str] = []
    walked, complete = walk(base)
    for rel, _, files in walked:
        for f in files:
            if is_data_name(f):
                out.append((rel / f).as_posix())
                if len(out) >= MAX_LISTED:
                    return out, False
    return out, complete
