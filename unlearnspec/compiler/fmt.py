"""`unlearnspec fmt`: one canonical layout, comments kept, idempotent.

The layout, printed from the syntax tree:
- two-space indentation; one field a line; values separated by one space, list items by `, `;
- within a run of consecutive one-line fields (not broken by a blank line, a comment or a field
  with a block), values start in one column: max(longest name + 1, 7) after the indent, so that
  short keywords (`goal`, `kind`, `title`) line up with `method` and `release`;
- blank lines between fields, and between comments above the header and the header, are kept (several
  collapse to one); objectives are separated by one blank line; the file ends with one newline;
- comments stay where they were: on their own line before a field or between the values of a list, or at
  the end of a line (a comment after a `}` stays after it, also when the block is written on one line).
Strings and numbers are printed exactly as written.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from unlearnspec.compiler.syntax import Block, Comment, Field, ObjectiveNode, SpecFile, source_lines

MAX_WIDTH = 100
"""The longest line a value list is printed on before it wraps."""
INDENT = "  "
MIN_VALUE_COLUMN = 7


@dataclass
class _Entry:
    start: int  # first source line
    end: int  # last source line
    field: Field | None = None
    comment: Comment | None = None


def _values_text(field: Field) -> str:
    return ", ".join(" ".join(v.raw for v in group) for group in field.groups)


# Source lines straight from a node's position tuple (syntax.Pos): the printer asks for them once or more per
# field, and building a pydantic Span each time was a fifth of the time to format a large spec.
def _line(node: Field | ObjectiveNode) -> int:
    return node.pos[0]


def _end(node: Field | ObjectiveNode) -> int:
    return node.pos[2]


def _values_end(f: Field) -> int:
    """The last line of ``f``'s values: its last line, or for a field with a block the line its `{` is on."""
    return f.block.open_pos[0] if f.block is not None else f.pos[2]


def _covering(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The starts of ``spans`` (sorted by start) and, for each, the furthest end of it and those before it."""
    starts, reach, far = [], [], 0
    for a, b in spans:
        far = max(far, b)
        starts.append(a)
        reach.append(far)
    return starts, reach


class _Printer:
    """Prints a syntax tree. Comments are found by bisection in one sorted list of lines, so formatting takes time
    in proportion to the file's size, not to its comments times its fields (tests/test_fmt.py counts the work)."""

    def __init__(self, spec: SpecFile) -> None:
        self.spec = spec
        self.lines: list[str] = []
        src_lines = source_lines(spec.source)
        self.src_lines = src_lines
        self.standalone: list[Comment] = []
        self.trailing: dict[int, list[str]] = {}
        for c in spec.comments:
            before = src_lines[c.line - 1][: c.column - 1] if c.line - 1 < len(src_lines) else ""
            if before.strip():
                self.trailing.setdefault(c.line, []).append(c.text)
            else:
                self.standalone.append(c)
        self.standalone.sort(key=lambda c: c.line)
        self.standalone_lines = [c.line for c in self.standalone]
        self.used_trailing: set[int] = set()
        # lines whose trailing comment waits for a `}` still to be printed (a block closed on the line of
        # what it holds): nothing printed before that `}` takes it
        self.reserved: dict[int, int] = {}

    def trail(self, *lines: int) -> str:
        out = []
        for ln in lines:
            if ln in self.trailing and ln not in self.used_trailing and not self.reserved.get(ln):
                self.used_trailing.add(ln)
                out.extend(self.trailing[ln])
        return ("  " + " ".join(out)) if out else ""

    def comments_between(self, lo: int, hi: int) -> list[Comment]:
        """The comments on lines of their own strictly between lines ``lo`` and ``hi``."""
        return self.standalone[bisect_right(self.standalone_lines, lo):bisect_left(self.standalone_lines, hi)]

    def entries(self, fields: Sequence[Field], lo: int, hi: int) -> list[_Entry]:
        items = [_Entry(start=_line(f), end=_end(f), field=f) for f in fields if f.name != "__recovered__"]
        starts, reach = _covering(sorted((_line(f), _end(f)) for f in fields))
        for c in self.comments_between(lo, hi):
            i = bisect_left(starts, c.line) - 1  # the fields that start before the comment's line
            if i < 0 or reach[i] < c.line:  # ... and none reaches it: the comment is not inside a field
                items.append(_Entry(start=c.line, end=c.line, comment=c))
        return sorted(items, key=lambda e: e.start)

    def block(self, block: Block, depth: int) -> None:
        entries = self.entries(block.fields, block.open_pos[0], block.close_pos[0])
        runs = self._runs(entries)
        prev_end: int | None = None
        for entry in entries:
            if prev_end is not None and entry.start - prev_end > 1 and self._blank_between(prev_end, entry.start):
                self.lines.append("")
            prev_end = entry.end
            if entry.comment is not None:
                self.lines.append(INDENT * depth + entry.comment.text)
                continue
            assert entry.field is not None
            self.field(entry.field, depth, runs.get(id(entry.field), 0))

    def _own_line_comments(self, f: Field) -> list[Comment]:
        """Comments on lines of their own between a value list's first and last line."""
        return self.comments_between(_line(f), _values_end(f))

    def _comments_inside(self, f: Field) -> bool:
        """Whether a value list written over several lines has a comment at the end of a line before its last, or
        on a line of its own between two of its values: joining its values onto one line would move that comment
        away from the value it annotates (or drop it)."""
        last = _values_end(f)
        return (len(f.groups) > 1 and last > _line(f)
                and (any(ln in self.trailing for ln in range(_line(f), last))
                     or bool(self._own_line_comments(f))))

    def _list_rows(self, f: Field, pad: str, name: str) -> list[tuple[str, range]]:
        """``f``'s values one source line at a time, continuation lines under the first value, each with the
        source lines whose trailing comments it carries; a comment on a line of its own stays between the rows
        it was between (with no lines to carry)."""
        rows: list[list[str]] = []
        lines: list[int] = []
        for group in f.groups:
            line = group[0].pos[0]
            text = " ".join(v.raw for v in group)
            if lines and lines[-1] == line:
                rows[-1].append(text)
            else:
                rows.append([text])
                lines.append(line)
        own = self._own_line_comments(f)
        out: list[tuple[str, range]] = []
        for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
            if i:  # a comment on its own line before this row stays there, under the values
                out.extend((pad + " " * len(name) + c.text, range(0)) for c in own if lines[i - 1] < c.line < line)
            last = i == len(rows) - 1
            upto = _values_end(f) if last else lines[i + 1] - 1
            first_line = _line(f) if i == 0 else line
            prefix = pad + (name if i == 0 else " " * len(name))
            out.append((prefix + ", ".join(row) + ("" if last else ","), range(first_line, upto + 1)))
        return out

    def _wrapped(self, f: Field, pad: str, name: str) -> None:
        """A list too long for one line: as many values a line as fit in :data:`MAX_WIDTH` (at least one), the
        continuation lines under the first value; however the source broke it, the same lines come out."""
        texts = [" ".join(v.raw for v in group) for group in f.groups]
        rows: list[list[str]] = [[]]
        indent = len(pad) + len(name)
        for i, text in enumerate(texts):
            row = rows[-1]
            comma = "," if i < len(texts) - 1 else ""
            if row and indent + len(", ".join([*row, text]) + comma) > MAX_WIDTH:
                rows.append([text])
            else:
                row.append(text)
        for i, row in enumerate(rows):
            last = i == len(rows) - 1
            text = ", ".join(row) + ("" if last else ",")
            prefix = pad + (name if i == 0 else " " * len(name))
            self.lines.append(prefix + text + (self.trail(*range(_line(f), _end(f) + 1)) if last else ""))

    def _blank_between(self, a: int, b: int) -> bool:
        src = self.src_lines
        return any(not src[i - 1].strip() for i in range(a + 1, b) if 0 < i <= len(src))

    def _runs(self, entries: list[_Entry]) -> dict[int, int]:
        """Value column for each one-line field, per run of aligned fields."""
        widths: dict[int, int] = {}
        run: list[Field] = []
        prev_end: int | None = None

        def close() -> None:
            with_values = [f for f in run if f.groups]
            if with_values:
                col = max(max(len(f.name) for f in with_values) + 1, MIN_VALUE_COLUMN)
                for f in run:
                    widths[id(f)] = col
            run.clear()

        for e in entries:
            breaks = (e.comment is not None or (e.field is not None and e.field.block is not None)
                      or (prev_end is not None and self._blank_between(prev_end, e.start)))
            if breaks:
                close()
            if e.field is not None and e.field.block is None:
                run.append(e.field)
            prev_end = e.end
        close()
        return widths

    def field(self, f: Field, depth: int, column: int) -> None:
        pad = INDENT * depth
        values = _values_text(f)
        if f.block is None:
            name = f.name.ljust(max(column - 1, len(f.name))) + " "
            if self._comments_inside(f):  # a list continued over lines with a comment inside: keep each line
                self.lines.extend(text + self.trail(*lines) for text, lines in self._list_rows(f, pad, name))
                return
            head = f.name if not values else name + values
            if len(f.groups) > 1 and len(pad + head) > MAX_WIDTH:
                self._wrapped(f, pad, name)
                return
            self.lines.append(pad + head + self.trail(*range(_line(f), _end(f) + 1)))
            return
        if self._comments_inside(f):  # the same for the values before a block: its `{` ends their last line
            *rows, (head, lines) = self._list_rows(f, pad, f.name + " ")
            self.lines.extend(text + self.trail(*ls) for text, ls in rows)
            self.open_block(head, f.block, depth, lines)
            return
        head = f.name + (" " + values if values else "")
        self.open_block(pad + head, f.block, depth, range(_line(f), f.block.open_pos[0] + 1))

    def open_block(self, head: str, block: Block, depth: int, head_lines: range) -> None:
        close = block.close_pos[0]
        has_content = bool([f for f in block.fields if f.name != "__recovered__"]) or bool(
            self.comments_between(block.open_pos[0], close))
        if not has_content:  # `x { }` and `x {` / `}` on two lines are both printed `x {}`
            opened, closed = self.trail(*head_lines), ("" if close in head_lines else self.trail(close))
            if opened and closed:  # ... unless each line has its comment: two comments stay two lines
                self.lines += [head + " {" + opened, INDENT * depth + "}" + closed]
            else:
                self.lines.append(head + " {}" + opened + closed)
            return
        self.reserved[close] = self.reserved.get(close, 0) + 1  # `x { y 1 }  # c`: the comment follows the `}`
        brace = block.open_pos[0]
        if any(_line(f) == brace for f in block.fields if f.name != "__recovered__"):
            # `x { y 1, # c`: the comment on the `{` line follows the block's first values, and stays beside them
            head_lines = range(head_lines.start, min(head_lines.stop, brace))
        self.lines.append(head + " {" + self.trail(*head_lines))
        self.block(block, depth + 1)
        self.reserved[close] -= 1
        self.lines.append(INDENT * depth + "}" + self.trail(close))

    def objective(self, node: ObjectiveNode) -> None:
        self.open_block(f'objective {node.name_span and self._raw_name(node)}', node.block, 0,
                        range(_line(node), node.block.open_pos[0] + 1))

    def _raw_name(self, node: ObjectiveNode) -> str:
        s = node.name_span
        return self.spec.source[s.start_pos:s.end_pos]

    def file(self) -> str:
        spec = self.spec
        top: list[_Entry] = []
        header_line = spec.header_span.line if spec.header_span else 0
        starts, reach = _covering([(_line(o), _end(o)) for o in sorted(spec.objectives, key=_line)])
        for c in self.standalone:
            i = bisect_right(starts, c.line) - 1  # the objectives that start on or before the comment's line
            if i < 0 or reach[i] < c.line:
                top.append(_Entry(start=c.line, end=c.line, comment=c))
        objs = {_line(o): o for o in spec.objectives}
        top.extend(_Entry(start=_line(o), end=_end(o)) for o in spec.objectives)
        top.sort(key=lambda e: e.start)
        before_header = [e for e in top if e.start < header_line]
        after = [e for e in top if e.start > header_line]
        prev: _Entry | None = None
        for e in before_header:  # comments above the header, blank lines between them kept (several: one)
            assert e.comment is not None
            if prev is not None and self._blank_between(prev.end, e.start):
                self.lines.append("")
            self.lines.append(e.comment.text)
            prev = e
        if spec.version is not None:
            if prev is not None and self._blank_between(prev.end, header_line):
                self.lines.append("")
            self.lines.append("unlearnspec " + spec.version.raw + self.trail(header_line))
        prev = None
        for e in after:
            if (self.lines and self.lines[-1] != ""
                    and (prev is None or prev.comment is None or self._blank_between(prev.end, e.start))):
                self.lines.append("")
            if e.comment is not None:
                self.lines.append(e.comment.text)
            else:
                self.objective(objs[e.start])
            prev = e
        return "\n".join(self.lines).rstrip("\n") + "\n"


def format_spec(spec: SpecFile) -> str:
    """The canonical text of a parsed spec file."""
    return _Printer(spec).file()
