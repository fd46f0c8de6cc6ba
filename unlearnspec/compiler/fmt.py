"""`unlearnspec fmt`: one canonical layout, comments kept, idempotent.

The layout, printed from the syntax tree:
- two-space indentation; one field a line; values separated by one space, list items by `, `;
- within a run of consecutive one-line fields (not broken by a blank line, a comment or a field
  with a block), values start in one column: max(longest name + 1, 7) after the indent, so that
  short keywords (`goal`, `kind`, `title`) line up with `method` and `release`;
- blank lines between fields are kept (several collapse to one); objectives are separated by one
  blank line; the file ends with one newline;
- comments stay where they were: on their own line before a field, or at the end of a line.
Strings and numbers are printed exactly as written.
"""

from __future__ import annotations

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


class _Printer:
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
        self.used_trailing: set[int] = set()

    def trail(self, *lines: int) -> str:
        out = []
        for ln in lines:
            if ln in self.trailing and ln not in self.used_trailing:
                self.used_trailing.add(ln)
                out.extend(self.trailing[ln])
        return ("  " + " ".join(out)) if out else ""

    def comments_between(self, lo: int, hi: int) -> list[Comment]:
        return [c for c in self.standalone if lo < c.line < hi]

    def entries(self, fields: Sequence[Field], lo: int, hi: int) -> list[_Entry]:
        items = [_Entry(start=f.span.line, end=f.span.end_line, field=f) for f in fields
                 if f.name != "__recovered__"]
        inner = [(f.span.line, f.span.end_line) for f in fields]
        for c in self.comments_between(lo, hi):
            if not any(a < c.line <= b for a, b in inner):
                items.append(_Entry(start=c.line, end=c.line, comment=c))
        return sorted(items, key=lambda e: e.start)

    def block(self, block: Block, depth: int) -> None:
        entries = self.entries(block.fields, block.open_span.line, block.close_span.line)
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
        return [c for c in self.standalone if f.span.line < c.line < f.span.end_line]

    def _comments_inside(self, f: Field) -> bool:
        """Whether a value list written over several lines has a comment at the end of a line before its last, or
        on a line of its own between two of its values: joining its values onto one line would move that comment
        away from the value it annotates (or drop it)."""
        return (len(f.groups) > 1 and f.span.end_line > f.span.line
                and (any(ln in self.trailing for ln in range(f.span.line, f.span.end_line))
                     or bool(self._own_line_comments(f))))

    def _list_lines(self, f: Field, pad: str, name: str) -> None:
        """``f``'s values one source line at a time, continuation lines under the first value, each line
        with its own comments."""
        rows: list[list[str]] = []
        lines: list[int] = []
        for group in f.groups:
            line = group[0].span.line
            text = " ".join(v.raw for v in group)
            if lines and lines[-1] == line:
                rows[-1].append(text)
            else:
                rows.append([text])
                lines.append(line)
        own = self._own_line_comments(f)
        for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
            if i:  # a comment on its own line before this row stays there, under the values
                self.lines.extend(pad + " " * len(name) + c.text for c in own if lines[i - 1] < c.line < line)
            last = i == len(rows) - 1
            upto = f.span.end_line if last else lines[i + 1] - 1
            first_line = f.span.line if i == 0 else line
            prefix = pad + (name if i == 0 else " " * len(name))
            text = ", ".join(row) + ("" if last else ",")
            self.lines.append(prefix + text + self.trail(*range(first_line, upto + 1)))

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
            self.lines.append(prefix + text + (self.trail(*range(f.span.line, f.span.end_line + 1)) if last else ""))

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
                self._list_lines(f, pad, name)
                return
            head = f.name if not values else name + values
            if len(f.groups) > 1 and len(pad + head) > MAX_WIDTH:
                self._wrapped(f, pad, name)
                return
            self.lines.append(pad + head + self.trail(*range(f.span.line, f.span.end_line + 1)))
            return
        head = f.name + (" " + values if values else "")
        self.open_block(pad + head, f.block, depth, range(f.span.line, f.block.open_span.line + 1))

    def open_block(self, head: str, block: Block, depth: int, head_lines: range) -> None:
        has_content = bool([f for f in block.fields if f.name != "__recovered__"]) or bool(
            self.comments_between(block.open_span.line, block.close_span.line))
        if not has_content:  # `x { }` and `x {` / `}` on two lines are both printed `x {}`
            self.lines.append(head + " {}" + self.trail(*head_lines, block.close_span.line))
            return
        self.lines.append(head + " {" + self.trail(*head_lines))
        self.block(block, depth + 1)
        self.lines.append(INDENT * depth + "}" + self.trail(block.close_span.line))

    def objective(self, node: ObjectiveNode) -> None:
        self.open_block(f'objective {node.name_span and self._raw_name(node)}', node.block, 0,
                        range(node.span.line, node.block.open_span.line + 1))

    def _raw_name(self, node: ObjectiveNode) -> str:
        s = node.name_span
        return self.spec.source[s.start_pos:s.end_pos]

    def file(self) -> str:
        spec = self.spec
        top: list[_Entry] = []
        header_line = spec.header_span.line if spec.header_span else 0
        for c in self.standalone:
            if not any(o.span.line <= c.line <= o.span.end_line for o in spec.objectives):
                top.append(_Entry(start=c.line, end=c.line, comment=c))
        objs = {o.span.line: o for o in spec.objectives}
        top.extend(_Entry(start=o.span.line, end=o.span.end_line) for o in spec.objectives)
        top.sort(key=lambda e: e.start)
        before_header = [e for e in top if e.start < header_line]
        after = [e for e in top if e.start > header_line]
        for e in before_header:
            assert e.comment is not None
            self.lines.append(e.comment.text)
        if spec.version is not None:
            self.lines.append("unlearnspec " + spec.version.raw + self.trail(header_line))
        prev: _Entry | None = None
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
