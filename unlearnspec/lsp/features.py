"""What the language server answers, as plain functions of a document's text (tested in-process).

The server (:mod:`unlearnspec.lsp.server`) keeps one :class:`Document` per open file and calls
these; they know the language only through :mod:`unlearnspec.lsp.compiler_api`. Positions from the
compiler are 1-based character columns; the client counts in UTF-16 code units (or what it
negotiated), which pygls's :class:`PositionCodec` converts.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from lsprotocol import types as lsp
from pygls.uris import to_fs_path
from pygls.workspace.position_codec import PositionCodec

from unlearnspec.lsp import compiler_api as api
from unlearnspec.lsp.context import Cursor, Token, cursor_at, split_lines

SOURCE = "unlearnspec"
ACCEPT_PLACEHOLDER = "who reviewed this risk, and why it is acceptable"
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_WRITE_GOAL = re.compile(r"write `goal ((?:removal|suppression)(?: via [a-z_]+)?)`")
_WRITE = re.compile(r"write `([^`{}\n]+)`")
_RULE_CODE = re.compile(r"^(UL|RT)[0-9]{3}$")
_DATA_SUFFIXES = (".jsonl", ".csv")
_MAX_DATA_FILES = 200

_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
             "note": lsp.DiagnosticSeverity.Information}


def uri_to_path(uri: str) -> Path:
    """The file of a `file:` URI; for another scheme (an unsaved buffer), a path named after it."""
    return Path(to_fs_path(uri) or uri.rsplit(":", 1)[-1] or "untitled.unlearn")


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

    @property
    def path(self) -> Path:
        return uri_to_path(self.uri)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def display(self) -> str:
        return self.path.name

    @functools.cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    def check(self) -> api.CheckOutcome:
        self.outcome = api.check_text(self.text, self.display, self.base_dir)
        return self.outcome

    # -- positions -----------------------------------------------------------------------------

    def range(self, line: int, column: int, end_line: int, end_column: int) -> lsp.Range:
        """A client range from the compiler's 1-based, end-exclusive character positions."""
        lines = self.lines
        server = lsp.Range(start=lsp.Position(line=max(line - 1, 0), character=max(column - 1, 0)),
                           end=lsp.Position(line=max(end_line - 1, 0), character=max(end_column - 1, 0)))
        if server.start.line >= len(lines):
            server.start = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
        if server.end.line >= len(lines):
            server.end = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
        return self.codec.range_to_client_units(lines, server)

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

    def resolve_path(self, raw: str) -> Path:
        return Path(os.path.normpath(self.base_dir / raw))


# -- diagnostics ---------------------------------------------------------------------------------


def to_lsp_diagnostic(doc: Document, d: api.Diagnostic) -> lsp.Diagnostic:
    """A compiler diagnostic as the editor shows it: the same code, span, labels and help as
    `check`; accepted findings are hints that carry their justification."""
    message = d.message + "".join(f"\nhelp: {h}" for h in d.help)
    if d.accepted:
        message += f"\naccepted: {d.justification}" if d.justification else "\naccepted"
    related = [lsp.DiagnosticRelatedInformation(
        location=lsp.Location(uri=doc.uri if lab.span.file == doc.display else Path(lab.span.file).resolve().as_uri(),
                              range=doc.span_range(lab.span)),
        message=lab.message) for lab in d.labels]
    return lsp.Diagnostic(
        range=doc.span_range(d.span), message=message, code=d.code, source=SOURCE,
        severity=lsp.DiagnosticSeverity.Hint if d.accepted else _SEVERITY[d.severity],
        code_description=lsp.CodeDescription(href=f"{doc.rules_base}{d.code}.md") if doc.rules_base else None,
        related_information=related or None)


def diagnostics(doc: Document) -> list[lsp.Diagnostic]:
    outcome = doc.check()
    return [to_lsp_diagnostic(doc, d) for d in outcome.diagnostics]


# -- hover ---------------------------------------------------------------------------------------


def _md_code_page(code: str) -> str | None:
    """The page of a code, as `unlearnspec explain CODE` prints it."""
    return api.code_page_markdown(code)


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("unlearnspec.lsp", "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["BETTER"] = {"lower": "lower is better", "higher": "higher is better",
                             "closer_to_zero": "closer to zero is better"}
    return env


def word_help(word: str, block: str = "", field: str | None = None) -> str | None:
    """What ``word`` means in the language, from the compiler's vocabulary (``block``: where it is
    written, which decides between a field, a claim and a metric of the same name)."""
    metric = api.METRICS.get(word) if block == "evidence" or (block != "claims" and word not in api.CLAIMS) else None
    claim = api.CLAIMS.get(word) if block in ("claims", "") else None
    roles = api.word_roles(word)
    fields = []
    for blk, names in api.BLOCK_FIELDS.items():
        if blk in ("claims", "evidence", "") or word not in names or (block and blk != block):
            continue
        example = api.expected_example(word)
        fields.append({"block": blk, "part_of": "", "example": "" if example == "..." else example,
                       "words": api.field_words(blk, word)})
    if field and word in api.SECONDARY_WORDS:  # `precision`, `via`, `steps`...: part of its field's value
        example = api.expected_example(field)
        fields = [{"block": "", "part_of": field, "example": "" if example == "..." else example, "words": ()}]
    text = _env().get_template("word.md.j2").render(
        word=word, top=not block, metrics=[metric] if metric else [], claims=[claim] if claim else [],
        roles=roles, fields=fields)
    # every line the template writes is a paragraph of its own
    return "\n\n".join(ln for ln in text.splitlines() if ln.strip()) or None


def hover(doc: Document, pos: lsp.Position) -> lsp.Hover | None:
    cur = doc.cursor(pos)
    tok = cur.token
    if tok is None or cur.in_comment:
        return None
    text: str | None = None
    kind = lsp.MarkupKind.Markdown
    if tok.kind == "word" and _RULE_CODE.match(tok.text):
        text = _md_code_page(tok.text)
    elif tok.kind == "word":
        block = cur.block if cur.field is None else ""
        text = word_help(tok.text, block if block in api.BLOCK_FIELDS else "", cur.field)
    elif tok.kind == "string" and tok.text.endswith('"') and len(tok.text) >= 2:
        raw = tok.text[1:-1]
        path = doc.resolve_path(raw)
        if cur.field in api.PATH_FIELDS or (raw.endswith(_DATA_SUFFIXES) and path.exists()):
            # plain text: the path is the user's, and needs no Markdown escaping there
            kind = lsp.MarkupKind.PlainText
            text = f"data file {raw}: " + (api.data_file_summary(path) if path.exists() else "does not exist")
    if not text:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=kind, value=text), range=doc.token_range(tok))


# -- completion ----------------------------------------------------------------------------------


def checkpoint_dirs(base: Path) -> list[tuple[str, str]]:
    """Model and peft adapter folders next to a spec (three levels deep), relative to it, with what each is."""
    out: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(base):
        rel = Path(root).relative_to(base)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and len(rel.parts) < 3)
        kind = "peft adapter" if "adapter_config.json" in files else "model folder" if "config.json" in files else None
        if kind and rel.parts and any(f.endswith(".safetensors") for f in files):
            out.append((rel.as_posix(), kind))
            if len(out) >= _MAX_DATA_FILES:
                break
    return out


def data_files(base: Path) -> list[str]:
    """Data files next to a spec (and below it, three levels deep), as paths relative to it."""
    out: list[str] = []
    for root, dirs, files in os.walk(base):
        rel = Path(root).relative_to(base)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and len(rel.parts) < 3)
        for f in sorted(files):
            if f.endswith(_DATA_SUFFIXES):
                out.append((rel / f).as_posix())
                if len(out) >= _MAX_DATA_FILES:
                    return out
    return out


def _item(label: str, kind: lsp.CompletionItemKind, detail: str | None = None, doc: str | None = None,
          edit: lsp.TextEdit | None = None) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label, kind=kind, detail=detail, text_edit=edit,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None)


def completion(doc: Document, pos: lsp.Position) -> list[lsp.CompletionItem]:
    cur = doc.cursor(pos)
    if cur.in_comment:
        return []
    tok = cur.token
    if cur.in_string and tok is not None:
        if cur.field in api.PATH_FIELDS:
            rng = doc.token_range(tok, tok.start + 1, tok.start + len(cur.prefix))
            return [_item(p, lsp.CompletionItemKind.File, detail=api.data_file_summary(doc.base_dir / p),
                          edit=lsp.TextEdit(range=rng, new_text=p)) for p in data_files(doc.base_dir)]
        if cur.field == "unlearned":  # the checkpoint to audit: model and peft adapter folders beside the spec
            rng = doc.token_range(tok, tok.start + 1, tok.start + len(cur.prefix))
            return [_item(p, lsp.CompletionItemKind.Folder, detail=kind,
                          edit=lsp.TextEdit(range=rng, new_text=p)) for p, kind in checkpoint_dirs(doc.base_dir)]
        if cur.field in ("model", "reference"):
            rng = doc.token_range(tok, tok.start + 1, tok.start + len(cur.prefix))
            return [_item(name, lsp.CompletionItemKind.Module, detail="a built-in model (trained here from its recipe)",
                          edit=lsp.TextEdit(range=rng, new_text=name)) for name in api.BUILTIN_MODELS]
        return []
    block = cur.block
    if cur.field is None:  # where a field name goes
        if block == "claims":
            return [_item(c.name, lsp.CompletionItemKind.EnumMember, "claim", word_help(c.name, "claims"))
                    for c in api.CLAIMS.values()]
        if block == "evidence":
            return [_item(m.name, lsp.CompletionItemKind.Variable, "metric", word_help(m.name, "evidence"))
                    for m in api.METRICS.values()]
        fields = api.BLOCK_FIELDS.get(block, ())
        return [_item(f, lsp.CompletionItemKind.Field, f"{f} {api.expected_example(f)}".rstrip(" ."),
                      word_help(f, block)) for f in fields]
    if block == "evidence" and cur.field in api.METRICS:
        return [_item(op, lsp.CompletionItemKind.Operator) for op in ("<=", ">=")]
    words = api.field_words(block, cur.field)
    if cur.field == "accept":
        if cur.before:
            return []
        # the warnings and notes reported in this document come first: those are what gets accepted
        reported = {d.code for d in (doc.outcome.diagnostics if doc.outcome else [])
                    if d.severity in ("warning", "note") and not d.accepted}
        items = []
        for c in words:
            page = api.code_page(c)
            item = _item(c, lsp.CompletionItemKind.Constant, page.name if page else None, _md_code_page(c))
            item.sort_text = ("0" if c in reported else "1") + c
            if c in reported:
                item.detail = f"reported here: {item.detail}"
            items.append(item)
        return items
    return [_item(w, lsp.CompletionItemKind.EnumMember, None, word_help(w)) for w in words]


# -- formatting, definition, symbols -------------------------------------------------------------


def formatting(doc: Document) -> list[lsp.TextEdit]:
    """One edit to what `unlearnspec fmt` writes; none when the spec does not parse or is formatted."""
    new = api.format_text(doc.text, doc.display)
    if new is None or new == doc.text.lstrip("\ufeff"):
        return []
    return [lsp.TextEdit(range=doc.whole(), new_text=new)]


def definition(doc: Document, pos: lsp.Position) -> lsp.Location | None:
    cur = doc.cursor(pos)
    tok = cur.token
    if tok is None or tok.kind != "string" or len(tok.text) < 2 or not tok.text.endswith('"'):
        return None
    path = doc.resolve_path(tok.text[1:-1])
    if not path.exists():
        return None
    target = path / "dataset_info.json" if path.is_dir() and (path / "dataset_info.json").is_file() else path
    zero = lsp.Position(line=0, character=0)
    return lsp.Location(uri=target.resolve().as_uri(), range=lsp.Range(start=zero, end=zero))


def _pos_range(doc: Document, pos: tuple[int, ...]) -> lsp.Range:
    return doc.range(pos[0], pos[1], pos[2], pos[3])


def symbols(doc: Document) -> list[lsp.DocumentSymbol]:
    """Objectives, their fields and blocks, and the fields inside those blocks."""
    syntax = doc.outcome.syntax if doc.outcome is not None and doc.outcome.syntax is not None else None
    if syntax is None:
        syntax = api.parse_text(doc.text, doc.display)
    if syntax is None:
        return []

    def fields(block: api.Block) -> list[lsp.DocumentSymbol]:
        out = []
        for f in block.fields:
            detail = " ".join(v.raw for v in f.values) or None
            out.append(lsp.DocumentSymbol(
                name=f.name, detail=detail,
                kind=lsp.SymbolKind.Struct if f.block is not None else lsp.SymbolKind.Property,
                range=_pos_range(doc, f.pos), selection_range=_pos_range(doc, f.name_pos),
                children=fields(f.block) if f.block is not None else None))
        return out

    return [lsp.DocumentSymbol(name=o.name, kind=lsp.SymbolKind.Module, detail="objective",
                               range=_pos_range(doc, o.pos), selection_range=_pos_range(doc, o.name_pos),
                               children=fields(o.block)) for o in syntax.objectives]


# -- code actions --------------------------------------------------------------------------------


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and \
        (b.start.line, b.start.character) <= (a.end.line, a.end.character)


def _objective(doc: Document, name: str | None) -> api.ObjectiveNode | None:
    syntax = doc.outcome.syntax if doc.outcome is not None else None
    if syntax is None or name is None:
        return None
    return next((o for o in syntax.objectives if o.name == name), None)


def _accept_edit(doc: Document, obj: api.ObjectiveNode, code: str) -> lsp.TextEdit:
    line, col = obj.block.close_pos[0], obj.block.close_pos[1]
    before = doc.lines[line - 1][: col - 1]
    text = f'  accept {code} "{ACCEPT_PLACEHOLDER}"\n'
    if before.strip():
        return lsp.TextEdit(range=doc.range(line, col, line, col), new_text="\n" + text)
    return lsp.TextEdit(range=doc.range(line, 1, line, 1), new_text=text)


def _field_at(obj: api.ObjectiveNode, span: api.Span) -> api.Field | None:
    """The innermost one-line field without a block whose line holds ``span``."""
    def walk(block: api.Block) -> api.Field | None:
        for f in block.fields:
            line, _, end_line = f.pos[0], f.pos[1], f.pos[2]
            if f.block is not None:
                inner = walk(f.block)
                if inner is not None:
                    return inner
            elif line == end_line == span.line:
                return f
        return None
    return walk(obj.block)


def _write_instead(doc: Document, d: api.Diagnostic, obj: api.ObjectiveNode | None) -> list[tuple[str, lsp.TextEdit]]:
    """The mechanical "write `…`" suggestions of a finding's help, as edits: a single token written
    differently (`2%`, `0.05`), or a one-line field written out again (`release api precision fp32`,
    `membership_auc <= 0.60`). Suggestions with a block or an example placeholder are not mechanical."""
    out: list[tuple[str, lsp.TextEdit]] = []
    one_token = d.span.line == d.span.end_line
    for h in d.help:
        for text in _WRITE.findall(h):
            if "..." in text or "<" in text.split(" ")[0] or text.startswith("goal "):
                continue
            if " " not in text and one_token:
                out.append((f"write `{text}`", lsp.TextEdit(range=doc.span_range(d.span), new_text=text)))
                continue
            fld = _field_at(obj, d.span) if obj is not None else None
            if fld is not None and text.split(" ")[0] == fld.name:
                out.append((f"write `{text}`", lsp.TextEdit(range=_pos_range(doc, fld.pos), new_text=text)))
    return out


def code_actions(doc: Document, rng: lsp.Range) -> list[lsp.CodeAction]:
    """Quick fixes for the findings under ``rng``: "did you mean" replacements, mechanical "write
    instead" edits, `accept CODE` for a warning or note that a reviewer may accept, and a switch of
    the goal where the help says which."""
    if doc.outcome is None:
        doc.check()
    assert doc.outcome is not None
    accepted = set(api.accept_codes())
    out: list[lsp.CodeAction] = []
    for d in doc.outcome.diagnostics:
        drange = doc.span_range(d.span)
        if not _overlaps(drange, rng):
            continue
        diag = to_lsp_diagnostic(doc, d)

        def action(title: str, edits: list[lsp.TextEdit], preferred: bool = False,
                   diag: lsp.Diagnostic = diag) -> lsp.CodeAction:
            return lsp.CodeAction(title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diag],
                                  is_preferred=preferred or None,
                                  edit=lsp.WorkspaceEdit(changes={doc.uri: edits}))

        for h in d.help:
            if (m := _DID_YOU_MEAN.search(h)) is not None:
                out.append(action(f"replace with `{m.group(1)}`", [lsp.TextEdit(range=drange, new_text=m.group(1))],
                                  preferred=True))
        obj = _objective(doc, d.objective)
        for title, edit in _write_instead(doc, d, obj):
            out.append(action(title, [edit]))
        if obj is None:
            continue
        for h in d.help:
            for goal in _WRITE_GOAL.findall(h):
                gfield = next((f for f in obj.block.fields if f.name == "goal"), None)
                if gfield is not None:
                    out.append(action(f"switch to `goal {goal}`",
                                      [lsp.TextEdit(range=_pos_range(doc, gfield.pos), new_text=f"goal {goal}")]))
        if d.severity in ("warning", "note") and not d.accepted and d.code in accepted:
            out.append(action(f"accept {d.code} with a written justification", [_accept_edit(doc, obj, d.code)]))
    return out
