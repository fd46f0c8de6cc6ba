"""Chains across files, as the editor sees them: where an `after "file.unlearn#name"` (or `after "name"`) leads.

The compiler checks a chain (UL216-UL220) and reports on the `after` line of this file only; the editor also
wants to jump to the objective continued, to see it as related information beside a finding on the link, and
to re-check the open specs that link to a file when that file is saved. Objectives are found with the
server's lexer (:mod:`unlearnspec.lsp.context`), so a file that does not parse yet still shows its names.
A file is read as the compiler reads it (:func:`unlearnspec.inputs.read_regular`, no further than the size
limit); the text of a file the editor has open, saved or not, is passed in by the server instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as lsp
from pygls.workspace.position_codec import PositionCodec

from unlearnspec.inputs import read_regular
from unlearnspec.lsp import compiler_api as api
from unlearnspec.lsp.context import split_lines, tokenize_line

#: The text of a file the editor has open (saved or not), by path; ``None`` for a file it has not.
OpenText = Callable[[Path], str | None]


@dataclass(frozen=True)
class Link:
    """One `after` value: its 0-based line and character columns (quotes included), the file part (``None``
    inside this file) and the objective's name."""

    line: int
    start: int
    end: int
    file: str | None
    name: str


def links(text: str) -> list[Link]:
    """Every `after "…"` line of ``text`` whose string is closed."""
    out = []
    for i, ln in enumerate(split_lines(text)):
        toks = [t for t in tokenize_line(ln, i) if t.kind != "comment"]
        if len(toks) >= 2 and toks[0].kind == "word" and toks[0].text == "after" and toks[1].closed:
            file, name = api.split_ref(api.unquote(toks[1].text))
            out.append(Link(i, toks[1].start, toks[1].end, file, name))
    return out


def objectives(text: str) -> dict[str, tuple[int, int, int]]:
    """Each objective's name, with the 0-based line and character columns of its quoted name (the first
    objective of a name, as the compiler's lookup finds it)."""
    out: dict[str, tuple[int, int, int]] = {}
    for i, ln in enumerate(split_lines(text)):
        toks = [t for t in tokenize_line(ln, i) if t.kind != "comment"]
        if len(toks) >= 2 and toks[0].kind == "word" and toks[0].text == "objective" and toks[1].closed:
            out.setdefault(api.unquote(toks[1].text), (i, toks[1].start, toks[1].end))
    return out


def target_file(base_dir: Path | None, file: str) -> Path | None:
    """The spec file an `after "file#name"` names, as the compiler joins it (relative to the spec's folder)."""
    if base_dir is None and not Path(file).is_absolute():
        return None
    try:
        return (Path(base_dir or "") / file).resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def read_text(path: Path, open_text: OpenText) -> str | None:
    """The text of a spec file: the editor's if it has the file open, else the file's (``None`` when it cannot
    be read as a spec: missing, not a regular file, too large, not UTF-8)."""
    text = open_text(path)
    if text is not None:
        return text
    try:
        data = read_regular(path, api.MAX_SPEC_BYTES)
    except (OSError, ValueError):
        return None
    if len(data) > api.MAX_SPEC_BYTES:
        return None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def locate(uri: str, text: str, base_dir: Path | None, link: Link, open_text: OpenText,
           codec: PositionCodec) -> lsp.Location | None:
    """Where the objective a link names is written: in this document, or in the file it names."""
    if link.file is None:
        where_uri, where_text = uri, text
    else:
        path = target_file(base_dir, link.file)
        found = read_text(path, open_text) if path is not None else None
        if path is None or found is None:
            return None
        where_uri, where_text = path.as_uri(), found
    pos = objectives(where_text).get(link.name)
    if pos is None:
        return None
    line, start, end = pos
    rng = codec.range_to_client_units(split_lines(where_text), lsp.Range(
        start=lsp.Position(line=line, character=start), end=lsp.Position(line=line, character=end)))
    return lsp.Location(uri=where_uri, range=rng)


def span_location(base_dir: Path | None, file: str, line: int, column: int, end_line: int, end_column: int,
                  open_text: OpenText, codec: PositionCodec) -> lsp.Location | None:
    """A compiler span (1-based character positions, end exclusive) in another spec file than the one checked
    (``file`` as the compiler names it, relative to the checked spec's folder), in the client's units; ``None``
    when the file cannot be read."""
    path = target_file(base_dir, file)
    text = read_text(path, open_text) if path is not None else None
    if path is None or text is None:
        return None
    lines = split_lines(text)

    def pos(ln: int, col: int) -> lsp.Position:
        ln = min(max(ln - 1, 0), len(lines) - 1)
        return lsp.Position(line=ln, character=min(max(col - 1, 0), len(lines[ln])))

    rng = codec.range_to_client_units(lines, lsp.Range(start=pos(line, column), end=pos(end_line, end_column)))
    return lsp.Location(uri=path.as_uri(), range=rng)
