"""The one Markdown escaping function: user text in review documents stays text.

Specs are written by one team and reviewed by another, so the Markdown documents made from them
(``report.md``, ``show --format md``, ``explain --format md``, ``diff --format md``) must show a
title, a basis, a name or a justification exactly as written, whatever it contains: an HTML comment
(``<!--``) or a ``<details>`` element that hides what follows, a line break that starts a forged
heading, a ``javascript:`` link, a pipe that splits a table cell, a leading ``#``, ``>``, ``-`` or
``1.`` that turns a line into a heading, quote or list, a trailing ``#`` that a heading would drop, a
bare ``https://…`` or ``www.…`` that GitHub would turn into a link, an HTML entity that would be decoded.

:func:`escape` is the function; every jinja2 template that writes Markdown registers it through
:func:`register_filters`, as ``md`` (plain text), ``mdcode`` (a code span), ``mdprose`` (text the
compiler wrote, whose backtick code spans are kept as code spans) and ``mdblock`` (a fenced code
block); :func:`prose_html` is ``mdprose``'s counterpart in an HTML document. :func:`template_environment` is the environment the compiler's Markdown and text templates
share. Follows CommonMark 0.31 and GitHub Flavored Markdown's table and autolink extensions: any ASCII
punctuation may be backslash-escaped, code spans are literal, ``\\|`` is a pipe inside a table cell
(and a backslash and a pipe inside a code span elsewhere, so a value with a pipe is never put in a
code span), and an extended autolink needs ``www.`` or a scheme's ``://`` written out, which an
escaped ``.`` or ``/`` is not.

A compiler sentence that quotes a user's value puts it in :func:`code_span`: a code span fenced with
more backticks than the value holds, which ``prose`` reads back as exactly that value (CommonMark's
rule: a span closes at the next run of as many backticks as opened it).

This module imports nothing heavy: the compiler and the report layer both use it.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import jinja2

Mode = Literal["text", "code", "prose", "block"]

#: Characters that end a line in Markdown or in a browser: a value never spans lines.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
#: Other control characters: shown as the replacement character, never passed through.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\x80-\x84\x86-\x9f]")
#: Inline syntax: emphasis, code, links and images, tables, math, raw HTML and entities; ``#`` (a heading's
#: closing sequence drops a trailing one, and GitHub reads ``#123`` as a reference) and ``@`` (an e-mail).
_TEXT_ESCAPES = str.maketrans({
    "\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "~": "\\~", "[": "\\[", "]": "\\]", "|": "\\|",
    "$": "\\$", "#": "\\#", "@": "\\@", "<": "&lt;", ">": "&gt;", "&": "&amp;",
})
#: GFM's extended autolinks: ``scheme://`` and ``www.`` (any case) are written with an escaped ``/`` or ``.``.
_AUTOLINKS = re.compile(r"(?i)(?<=:)/(?=/)|(?<=www)\.")
#: Block syntax at the start of a line (after up to three spaces): quote, list, rule, setext (``#`` is escaped
#: everywhere).
_BLOCK_START = re.compile(r"^(\s*)(>|[+-](?=\s|$)|-(?=-)|=(?==*\s*$))")
_ORDERED_START = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
#: A run of backticks, whole (not preceded or followed by another backtick).
_TICKS = re.compile(r"(?<!`)`+(?!`)")


def one_line(text: object) -> str:
    """``text`` on one line: each line break (and tab) a space, other control characters the replacement character.
    Every mode of :func:`escape` starts from it; plain-text renderings use it (the ``oneline`` filter) so that a
    spec's value cannot start a line of its own and pass for the tool's output."""
    raw = "" if text is None else str(text)
    return _CONTROLS.sub("\ufffd", _LINE_BREAKS.sub(" ", raw.replace("\t", " ")))


_one_line = one_line


def _inline(text: str) -> str:
    return _AUTOLINKS.sub(r"\\\g<0>", text.translate(_TEXT_ESCAPES))


def _text(text: str) -> str:
    out = _BLOCK_START.sub(r"\1\\\2", _inline(text), count=1)
    return _ORDERED_START.sub(r"\1\\\2", out, count=1)


def _fenced(text: str) -> str:
    """``text`` as one code span: a fence longer than any run of backticks in it, and a space of padding on each
    side where it starts or ends with a backtick or a space (CommonMark strips one from each side again); an
    empty span would not be a code span at all."""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    if not text:
        text = " "
    elif text.strip(" ") and (text[0] in "` " or text[-1] in "` "):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def _code(text: str) -> str:
    if "|" in text:
        # a pipe needs `\|` inside a table cell, also in a code span, but outside a table that
        # backslash would show: a value with a pipe is escaped text instead, right in both places
        return _text(text)
    return _fenced(text)


def code_span(value: object) -> str:
    """``value`` on one line as a code span for a compiler sentence, fenced so that ``prose`` reads back exactly
    it: `name`, or ``a`b`` for a value that holds a backtick. Plain text outputs print it as is."""
    return _fenced(one_line(value))


def _spans(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into (is a code span, content) parts as CommonMark reads backticks: a run opens a span that
    the next run of exactly as many backticks closes; a run that nothing closes is literal text."""
    out: list[tuple[bool, str]] = []
    start = pos = 0
    while (m := _TICKS.search(text, pos)) is not None:
        close = next((c for c in _TICKS.finditer(text, m.end()) if len(c.group()) == len(m.group())), None)
        if close is None:
            pos = m.end()
            continue
        if m.start() > start:
            out.append((False, text[start:m.start()]))
        body = text[m.end():close.start()]
        if len(body) > 1 and body[0] == body[-1] == " " and body.strip(" "):
            body = body[1:-1]
        out.append((True, body))
        start = pos = close.end()
    if start < len(text):
        out.append((False, text[start:]))
    return out


def _block(text: str) -> str:
    body = _CONTROLS.sub("\ufffd", _LINE_BREAKS.sub("\n", text.replace("\t", "    ")))
    fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", body)), default=0) + 1)
    return f"{fence}\n{body}\n{fence}"


def escape(value: object, mode: Mode = "text") -> str:
    """``value`` as Markdown that renders as exactly its text.

    - ``text``: for prose and table cells; inline syntax is backslash-escaped (``#`` and ``@`` too), ``<``,
      ``>`` and ``&`` become entities, ``://`` and ``www.`` are written so that no autolink starts there, and
      a leading block marker (``>``, ``-``, ``+``, ``=``, ``1.``) is escaped so the value cannot start a
      heading, a quote or a list wherever a template puts it;
    - ``code``: the whole code span, backticks included, with a fence longer than any run of
      backticks in the value (so it cannot be closed early); a value with a ``|`` is ``text``
      instead (a pipe in a code span needs a backslash in a table cell that would show elsewhere);
    - ``prose``: a sentence the compiler wrote, in which code spans (CommonMark's: a run of backticks up
      to the next run of as many) stay code spans, each through ``code``, and the rest is escaped as
      ``text``. A value the sentence quotes through :func:`code_span` comes out exactly as written; one
      put between single backticks by hand can at worst shift which words look like code when it holds a
      backtick itself; nothing is ever unescaped;
    - ``block``: a fenced code block (the only mode that keeps line breaks), fenced with more backticks than
      any run in the text, for a template to put on lines of its own.

    Line breaks become spaces (but in ``block``) and other control characters the replacement character.
    """
    raw = "" if value is None else str(value)
    if mode == "block":
        return _block(raw)
    text = _one_line(raw)
    if mode == "code":
        return _code(text)
    if mode == "prose":
        return "".join(_code(p) if span else _text(p) if i == 0 else _inline(p)
                       for i, (span, p) in enumerate(_spans(text)))
    return _text(text)


def prose_html(value: object) -> str:
    """``value``, text the compiler or the runtime wrote, as HTML: each of its code spans (read as :func:`escape`'s
    ``prose`` mode reads them) a ``<code>`` element, everything escaped. What ``mdprose`` is to a Markdown
    report, this is to the HTML one: a message quoting a user's value through :func:`code_span` shows the value
    as code, not between literal backticks. Returns ``markupsafe.Markup``, which autoescaping leaves as it is."""
    from markupsafe import Markup  # deferred with jinja2: the check path renders nothing
    from markupsafe import escape as html

    text = _one_line("" if value is None else str(value))
    return Markup("".join(f"<code>{html(p)}</code>" if span else str(html(p)) for span, p in _spans(text)))


def register_filters(filters: dict[str, object]) -> None:
    """Add ``md``, ``mdcode``, ``mdprose``, ``mdblock`` and ``oneline`` (for plain text) to a jinja2 environment's
    ``filters``."""
    filters.update(md=escape, mdcode=lambda v: escape(v, "code"), mdprose=lambda v: escape(v, "prose"),
                   mdblock=lambda v: escape(v, "block"), oneline=one_line)


@functools.cache
def template_environment(package: str, folder: str = "templates") -> jinja2.Environment:
    """The jinja2 environment of a package's Markdown and plain-text templates: no autoescaping (no HTML is
    written with it), the filters above, ``StrictUndefined`` (a template typo is an error, not an empty cell),
    blocks trimmed. jinja2 loads on the first call: the compiler's `check` renders no template."""
    import jinja2  # deferred: `check` imports this module on its fast path and never renders a template

    env = jinja2.Environment(loader=jinja2.PackageLoader(package, folder), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    register_filters(env.filters)  # type: ignore[arg-type]
    return env
