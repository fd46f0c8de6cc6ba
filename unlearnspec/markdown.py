"""The one Markdown escaping function: user text in review documents stays text.

Specs are written by one team and reviewed by another, so the Markdown documents made from them
(``report.md``, ``show --format md``, ``explain --format md``, ``diff --format md``) must show a
title, a basis, a name or a justification exactly as written, whatever it contains: an HTML comment
(``<!--``) or a ``<details>`` element that hides what follows, a line break that starts a forged
heading, a ``javascript:`` link, a pipe that splits a table cell, a leading ``#``, ``>``, ``-`` or
``1.`` that turns a line into a heading, quote or list, an HTML entity that would be decoded.

:func:`escape` is the function; every jinja2 template that writes Markdown registers it through
:func:`register_filters`, as ``md`` (plain text), ``mdcode`` (a code span) and ``mdprose`` (text the
compiler wrote, whose backtick code spans are kept as code spans). Follows CommonMark 0.31 and the
GitHub Flavored Markdown table extension: any ASCII punctuation may be backslash-escaped, code spans
are literal, and ``\\|`` is a pipe inside a table cell (and a backslash and a pipe inside a code
span elsewhere, so a value with a pipe is never put in a code span).

This module imports nothing heavy: the compiler and the report layer both use it.
"""

from __future__ import annotations

import re
from typing import Literal

Mode = Literal["text", "code", "prose"]

#: Characters that end a line in Markdown or in a browser: a value never spans lines.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
#: Other control characters: shown as the replacement character, never passed through.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\x80-\x84\x86-\x9f]")
#: Inline syntax: emphasis, code, links and images, tables, math, raw HTML and entities.
_TEXT_ESCAPES = str.maketrans({
    "\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "~": "\\~", "[": "\\[", "]": "\\]", "|": "\\|",
    "$": "\\$", "<": "&lt;", ">": "&gt;", "&": "&amp;",
})
#: Block syntax at the start of a line (after up to three spaces): heading, quote, list, rule, setext.
_BLOCK_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|>|[+-](?=\s|$)|-(?=-)|=(?==*\s*$))")
_ORDERED_START = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
_CODE_SPAN = re.compile(r"(`[^`]+`)")


def _one_line(text: str) -> str:
    return _CONTROLS.sub("\ufffd", _LINE_BREAKS.sub(" ", text.replace("\t", " ")))


def _text(text: str) -> str:
    out = text.translate(_TEXT_ESCAPES)
    out = _BLOCK_START.sub(r"\1\\\2", out, count=1)
    return _ORDERED_START.sub(r"\1\\\2", out, count=1)


def _code(text: str) -> str:
    if "|" in text:
        # a pipe needs `\|` inside a table cell, also in a code span, but outside a table that
        # backslash would show: a value with a pipe is escaped text instead, right in both places
        return _text(text)
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    body = text
    # a span that starts or ends with a backtick or a space gets one space of padding on each side,
    # which CommonMark strips again; an empty one would not be a code span at all
    if not body or body[0] in "` " or body[-1] in "` ":
        body = f" {body} "
    return f"{fence}{body}{fence}"


def escape(value: object, mode: Mode = "text") -> str:
    """``value`` as Markdown that renders as exactly its text, on one line.

    - ``text``: for prose and table cells; inline syntax is backslash-escaped, ``<``, ``>`` and ``&``
      become entities, and a leading block marker (``#``, ``>``, ``-``, ``+``, ``=``, ``1.``) is
      escaped so the value cannot start a heading, a quote or a list wherever a template puts it;
    - ``code``: the whole code span, backticks included, with a fence longer than any run of
      backticks in the value (so it cannot be closed early); a value with a ``|`` is ``text``
      instead (a pipe in a code span needs a backslash in a table cell that would show elsewhere);
    - ``prose``: a sentence the compiler wrote, in which `backticked` words are code spans: those
      stay code spans (each through ``code``), the rest is escaped as ``text``. A user's backtick in
      such a sentence can at worst shift which words look like code; nothing is ever unescaped.

    Line breaks become spaces and other control characters the replacement character, in every mode.
    """
    text = _one_line("" if value is None else str(value))
    if mode == "code":
        return _code(text)
    if mode == "prose":
        parts = _CODE_SPAN.split(text)  # odd indexes are `code spans`, even ones the text between them
        return "".join(_code(p[1:-1]) if i % 2 else _text(p) if i == 0 else p.translate(_TEXT_ESCAPES)
                       for i, p in enumerate(parts))
    return _text(text)


def register_filters(filters: dict[str, object]) -> None:
    """Add ``md``, ``mdcode`` and ``mdprose`` to a jinja2 environment's ``filters``."""
    filters.update(md=escape, mdcode=lambda v: escape(v, "code"), mdprose=lambda v: escape(v, "prose"))
