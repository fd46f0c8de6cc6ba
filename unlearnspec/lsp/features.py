"""What the language server answers, as plain functions of a document's text (tested in-process).

The server (:mod:`unlearnspec.lsp.server`) keeps one :class:`Document` per open file and calls
these; they know the language only through :mod:`unlearnspec.lsp.compiler_api`. Positions from the
compiler are 1-based character columns; the client counts in UTF-16 code units (or what it
negotiated), which pygls's :class:`PositionCodec` converts.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from pathlib import Path

import jinja2
from lsprotocol import types as lsp

from unlearnspec.lsp import compiler_api as api
from unlearnspec.lsp import links
from unlearnspec.lsp.context import Cursor, Token, split_lines, tokenize_line
from unlearnspec.lsp.document import Document, checkpoint_dirs, data_files, exists, is_data_name
from unlearnspec.markdown import code_span, template_environment

SOURCE = "unlearnspec"
_RULE_CODE = re.compile(r"^(UL|RT)[0-9]{3}$")

_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
             "note": lsp.DiagnosticSeverity.Information}


# -- diagnostics ---------------------------------------------------------------------------------


def _linked(doc: Document, d: api.Diagnostic, open_text: links.OpenText | None,
            seen: dict[links.Link, lsp.Location | None]) -> list[lsp.DiagnosticRelatedInformation]:
    """The objective of another file that an `after` link continues, as related information of a finding on
    that link's line or labelling it (a chain's finding concerns both ends; the compiler's labels stay in this
    file). ``seen``: the links located so far (a file is read once for all the findings on links to it)."""
    out = []
    lines = {d.span.line, *(lab.span.line for lab in d.labels)}
    for lk in doc.links:
        if lk.line + 1 not in lines or lk.file is None:
            continue
        if lk not in seen:
            seen[lk] = links.locate(doc.uri, doc.text, doc.base_dir, lk, open_text or (lambda _: None), doc.codec)
        where = seen[lk]
        if where is not None:
            out.append(lsp.DiagnosticRelatedInformation(location=where, message=f"{code_span(lk.name)}, continued here"))
    return out


def to_lsp_diagnostic(doc: Document, d: api.Diagnostic, open_text: links.OpenText | None = None,
                      seen: dict[links.Link, lsp.Location | None] | None = None) -> lsp.Diagnostic:
    """A compiler diagnostic as the editor shows it: the same code, span, labels and help as
    `check`; accepted findings are hints that carry their justification. A finding on a link to
    another file's objective (a chain) relates that objective too."""
    message = d.message + "".join(f"\nhelp: {h}" for h in d.help)
    if d.accepted:
        message += f"\naccepted: {d.justification}" if d.justification else "\naccepted"
    related = []
    for lab in d.labels:  # in this document, or (a span the compiler names by another file) in that file
        s = lab.span
        where = lsp.Location(uri=doc.uri, range=doc.span_range(s)) if s.file == d.span.file else links.span_location(
            doc.base_dir, s.file, s.line, s.column, s.end_line, s.end_column, open_text or (lambda _: None), doc.codec)
        if where is not None:
            related.append(lsp.DiagnosticRelatedInformation(location=where, message=lab.message))
    related += _linked(doc, d, open_text, {} if seen is None else seen)
    return lsp.Diagnostic(
        range=doc.span_range(d.span), message=message, code=d.code, source=SOURCE,
        severity=lsp.DiagnosticSeverity.Hint if d.accepted else _SEVERITY[d.severity],
        code_description=lsp.CodeDescription(href=f"{doc.rules_base}{d.code}.md") if doc.rules_base else None,
        related_information=related or None)


def diagnostics(doc: Document, open_text: links.OpenText | None = None) -> list[lsp.Diagnostic]:
    """What `check` reports for the document's text (``open_text``: the text of other files the editor has
    open, for the objectives a chain continues)."""
    outcome = doc.check(open_text)
    seen: dict[links.Link, lsp.Location | None] = {}
    return [to_lsp_diagnostic(doc, d, open_text, seen) for d in outcome.diagnostics]


def failure(doc: Document, err: BaseException) -> lsp.Diagnostic:
    """What the editor shows when checking the document failed inside the server: the findings shown are not
    this text's, and the server's log has the traceback."""
    return lsp.Diagnostic(
        range=lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)),
        severity=lsp.DiagnosticSeverity.Error, source=SOURCE,
        message=f"this text could not be checked: the checker failed inside the language server "
                f"({type(err).__name__}: {err}); no finding is shown for it. The server's log has the traceback; "
                "the next change is checked again")


# -- hover ---------------------------------------------------------------------------------------


def _md_code_page(code: str) -> str | None:
    """The page of a code, as `unlearnspec explain CODE` prints it."""
    return api.code_page_markdown(code)


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    """The package's template environment (the project's Markdown filters), with ``code``: a name or word as a
    code span that no backtick in it can close early."""
    env = template_environment("unlearnspec.lsp")
    env.filters["code"] = code_span
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
        # `claims` and `evidence` name claims and metrics (above), and `evidence` has settings besides
        if blk in ("claims", "") or word not in names or (block and blk != block) or \
                (blk == "evidence" and word not in api.EVIDENCE_SETTINGS):
            continue
        example = api.expected_example(word)
        fields.append({"block": blk, "part_of": "", "example": "" if example == "..." else example,
                       "words": api.field_words(blk, word), "note": api.field_note(word)})
    if field and word in api.SECONDARY_WORDS:  # `precision`, `via`, `steps`...: part of its field's value
        example = api.expected_example(field)
        fields = [{"block": "", "part_of": field, "example": "" if example == "..." else example, "words": (),
                   "note": ""}]
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
    elif tok.closed:
        raw = tok.text[1:-1]
        path = doc.resolve_path(raw)
        found = path is not None and (cur.field in api.PATH_FIELDS or is_data_name(raw)) and exists(path)
        if cur.field in api.PATH_FIELDS or found:
            # plain text: the path is the user's, and needs no Markdown escaping there
            kind = lsp.MarkupKind.PlainText
            text = f"data file {raw}: " + (
                api.data_file_summary(path) if found and path is not None
                else "does not exist" if path is not None else "no folder yet (save the spec to read its data files)")
    if not text:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=kind, value=text), range=doc.token_range(tok))


# -- completion ----------------------------------------------------------------------------------


def _file_item(doc: Document, rel: str, rng: lsp.Range) -> lsp.CompletionItem:
    """A data file to complete: its format and size from its name and one `stat`; its records are
    counted only when the client resolves the item (:func:`resolve_completion`)."""
    path = Path(os.path.normpath(os.path.join(doc.base_dir or "", rel)))
    try:
        size = f", {path.stat().st_size:,} bytes"
    except (OSError, ValueError):
        size = ""
    item = _item(rel, lsp.CompletionItemKind.File, detail=f"{api.data_file_kind(path)}{size}",
                 edit=lsp.TextEdit(range=rng, new_text=rel))
    item.data = {"dataFile": str(path)}
    return item


def resolve_completion(item: lsp.CompletionItem) -> lsp.CompletionItem:
    """The item the client is showing, in full: a data file's format and record count, as the
    compiler reads them."""
    data = item.data
    path = data.get("dataFile") if isinstance(data, dict) else None
    if isinstance(path, str) and is_data_name(path):
        item.detail = api.data_file_summary(Path(path))
    return item


def _item(label: str, kind: lsp.CompletionItemKind, detail: str | None = None, doc: str | None = None,
          edit: lsp.TextEdit | None = None) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label, kind=kind, detail=detail, text_edit=edit,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None)


def completion(doc: Document, pos: lsp.Position) -> list[lsp.CompletionItem]:
    return list(completion_list(doc, pos).items)


def completion_list(doc: Document, pos: lsp.Position) -> lsp.CompletionList:
    """What may be written at ``pos``; incomplete when the files or folders listed are not all there
    are (the client asks again as the path is typed further, and the walk starts from the typed folder)."""
    items, complete = _completion(doc, pos)
    return lsp.CompletionList(is_incomplete=not complete, items=items)


def _in_path(doc: Document, cur: Cursor, tok: Token) -> tuple[list[lsp.CompletionItem], bool]:
    """Completion inside a string that names a path: data files, or checkpoint folders, below the
    spec's folder, or below the folder already typed (``"data/peo`` lists `data/`)."""
    if doc.base_dir is None:  # no folder yet: nothing to list (never the server's working directory)
        return [], True
    rng = doc.token_range(tok, tok.start + 1, tok.start + len(cur.prefix))
    typed = cur.prefix[1:]
    sub = typed.rsplit("/", 1)[0] if "/" in typed else ""
    top = doc.base_dir / sub
    try:
        if not sub or not top.is_dir():
            top, sub = doc.base_dir, ""
    except (OSError, ValueError):
        top, sub = doc.base_dir, ""

    def rel(p: str) -> str:
        return f"{sub.rstrip('/')}/{p}" if sub else p

    if cur.field == "unlearned":  # the checkpoint to audit: model and peft adapter folders beside the spec
        dirs, complete = checkpoint_dirs(top)
        return [_item(rel(p), lsp.CompletionItemKind.Folder, detail=kind,
                      edit=lsp.TextEdit(range=rng, new_text=rel(p))) for p, kind in dirs], complete
    files, complete = data_files(top)
    return [_file_item(doc, rel(p), rng) for p in files], complete


def _completion(doc: Document, pos: lsp.Position) -> tuple[list[lsp.CompletionItem], bool]:
    cur = doc.cursor(pos)
    if cur.in_comment:
        return [], True
    tok = cur.token
    if cur.in_string and tok is not None:
        if cur.field in api.PATH_FIELDS or cur.field == "unlearned":
            return _in_path(doc, cur, tok)
        if cur.field == "after":  # the objectives of this file an objective can continue
            rng = doc.token_range(tok, tok.start + 1, tok.start + len(cur.prefix))
            here = _objective_at(doc, tok.line)
            return [_item(name, lsp.CompletionItemKind.Reference, detail="an objective of this file",
                          edit=lsp.TextEdit(range=rng, new_text=name.replace("\\", "\\\\").replace('"', '\\"')))
                    for name in links.objectives(doc.text) if name != here and "#" not in name], True
        if cur.field in ("model", "reference"):
            rng = doc.token_range(tok, tok.start + 1, tok.start + len(cur.prefix))
            return [_item(name, lsp.CompletionItemKind.Module, detail="a built-in model (trained here from its recipe)",
                          edit=lsp.TextEdit(range=rng, new_text=name)) for name in api.BUILTIN_MODELS], True
        return [], True
    return _words(doc, cur), True


def _objective_at(doc: Document, line: int) -> str | None:
    """The name of the objective whose header is the last one at or above 0-based ``line``."""
    above = [(ln, name) for name, (ln, _, _) in links.objectives(doc.text).items() if ln <= line]
    return max(above)[1] if above else None


def _words(doc: Document, cur: Cursor) -> list[lsp.CompletionItem]:
    """Completion outside strings: field names where a field goes, else the words that may come next."""
    block = cur.block
    if cur.field is None:  # where a field name goes
        if block == "claims":
            return [_item(c.name, lsp.CompletionItemKind.EnumMember, "claim", word_help(c.name, "claims"))
                    for c in api.CLAIMS.values()]
        if block == "evidence":
            return [_item(m.name, lsp.CompletionItemKind.Variable, "metric", word_help(m.name, "evidence"))
                    for m in api.METRICS.values()] + [
                _item(f, lsp.CompletionItemKind.Field, f"{f} {api.expected_example(f)}", word_help(f, block))
                for f in api.EVIDENCE_SETTINGS]
        fields = api.BLOCK_FIELDS.get(block, ())
        return [_item(f, lsp.CompletionItemKind.Field, f"{f} {api.expected_example(f)}".rstrip(" ."),
                      word_help(f, block)) for f in fields]
    if block == "evidence" and cur.field in api.METRICS:  # the one direction the metric is bounded in
        return [] if cur.before else [_item(api.METRICS[cur.field].bound_op, lsp.CompletionItemKind.Operator)]
    # the words of this value so far: from the field name, or from the list's last comma
    commas = [i for i, t in enumerate(cur.before) if t.kind == "comma"]
    value = [t.text for t in cur.before[commas[-1] + 1 if commas else 0:]]
    words = api.next_words(block, cur.field, value)
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


#: Line pairs a formatting diff compares at most (its cost); beyond, the changed region is one edit.
MAX_DIFF = 1_000_000


def _chunks(text: str) -> list[str]:
    """``text`` cut after each ``\\n``: its lines as the editor counts them (a ``\\r\\n`` line keeps its ``\\r``)."""
    return [c for c in re.split(r"(?<=\n)", text) if c]


def _comments(text: str) -> list[str]:
    return sorted(t.text.rstrip() for i, ln in enumerate(split_lines(text)) for t in tokenize_line(ln, i)
                  if t.kind == "comment")


def formatting(doc: Document) -> list[lsp.TextEdit]:
    """The edits that turn the text into what `unlearnspec fmt` writes, line by line: only the lines that
    change are replaced, so the editor keeps its cursor, folds and marks elsewhere. None when the spec
    does not parse (a half-written spec is never rewritten) or is formatted already. The document's line
    ends (``\\r\\n``) and byte order mark stay as they are."""
    new = api.format_text(doc.text, doc.display)
    old = doc.text.removeprefix("\ufeff")  # a byte order mark is not text the compiler reads
    if new is None:
        return []
    if "\r\n" in old:
        new = new.replace("\n", "\r\n")
    if new == old or _comments(new) != _comments(old):  # `fmt` keeps every comment; never write one away
        return []
    before, after = _chunks(old), _chunks(new)

    def start(k: int) -> lsp.Position:  # where line k starts (after a byte order mark), or the text's end
        return doc.range(k + 1, 1, k + 1, 1).start if k < len(before) else doc.whole().end

    # the lines both share at the start and at the end, then a line diff of the rest: exact matching (no
    # junk heuristic) is quadratic on a long run of repeated lines, so past a bound the rest is one edit
    head = 0
    while head < min(len(before), len(after)) and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < min(len(before), len(after)) - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    a, b = before[head:len(before) - tail], after[head:len(after) - tail]
    if len(a) * len(b) > MAX_DIFF:
        changed = [(0, len(a), 0, len(b))]
    else:
        changed = [(i1, i2, j1, j2) for op, i1, i2, j1, j2 in
                   difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op != "equal"]
    return [lsp.TextEdit(range=lsp.Range(start=start(head + i1), end=start(head + i2)),
                         new_text="".join(b[j1:j2])) for i1, i2, j1, j2 in changed]


def definition(doc: Document, pos: lsp.Position, open_text: links.OpenText | None = None) -> lsp.Location | None:
    """The objective an `after` continues (in this file, or in the file `after "file.unlearn#name"` names:
    the editor's text of it when it is open); the data file a path field (or a string naming a `.jsonl` or
    `.csv` file) names; a `save_to_disk` folder opens at its `dataset_info.json`. Never a folder: an editor
    cannot open one as a document."""
    cur = doc.cursor(pos)
    tok = cur.token
    if tok is None or not tok.closed:
        return None
    if cur.field == "after":
        link = next((lk for lk in doc.links if lk.line == tok.line and lk.start == tok.start), None)
        return None if link is None else \
            links.locate(doc.uri, doc.text, doc.base_dir, link, open_text or (lambda _: None), doc.codec)
    raw = tok.text[1:-1]
    path = doc.resolve_path(raw) if cur.field in api.PATH_FIELDS or is_data_name(raw) else None
    if path is None:
        return None
    try:
        target = path / "dataset_info.json" if path.is_dir() else path
        if not target.is_file():
            return None
        uri = target.resolve().as_uri()
    except (OSError, ValueError, RuntimeError):  # a name too long, a NUL in it, a loop of links
        return None
    zero = lsp.Position(line=0, character=0)
    return lsp.Location(uri=uri, range=lsp.Range(start=zero, end=zero))


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

    # an empty name is UL210, and a symbol without a name breaks the client's outline (VS Code rejects it)
    return [lsp.DocumentSymbol(name=o.name if o.name.strip() else "(objective without a name)",
                               kind=lsp.SymbolKind.Module, detail="objective",
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


def _accept_edit(doc: Document, obj: api.ObjectiveNode, code: str, snippet: bool) -> tuple[lsp.Range, str]:
    """Where `accept CODE ""` goes (before the objective's closing brace) and its text. The justification
    is left empty, which the compiler refuses (UL215), so the spec cannot pass until a person writes
    one; as a snippet the cursor lands between the quotes."""
    line, col = obj.block.close_pos[0], obj.block.close_pos[1]
    before = doc.compiler_line(line)[: col - 1]
    text = f'  accept {code} "{"$1" if snippet else ""}"\n'
    if before.strip():
        return doc.range(line, col, line, col), "\n" + text
    return doc.range(line, 1, line, 1), text


def _remove_edit(doc: Document, span: api.Span) -> lsp.TextEdit:
    """Remove what ``span`` covers: its whole line when nothing but a comment shares the line."""
    before = doc.compiler_line(span.line)[: span.column - 1]
    after = doc.compiler_line(span.end_line)[span.end_column - 1:].strip()
    if not before.strip() and (not after or after.startswith("#")):
        return lsp.TextEdit(range=doc.range(span.line, 1, span.end_line + 1, 1), new_text="")
    return lsp.TextEdit(range=doc.span_range(span), new_text="")


FIX_ALL = f"{lsp.CodeActionKind.SourceFixAll.value}.unlearnspec"
"""The kind of the one action that applies every preferred fix of a document (an editor's "fix all", or
``editor.codeActionsOnSave``)."""


def fix_all(doc: Document) -> lsp.CodeAction | None:
    """Every preferred fix of the document at once, as ``check --fix`` applies them (``compiler/fixes.py``: a
    misspelt word's one candidate, a word listed twice; never a fix that changes what the spec asks for);
    None when there is none."""
    if doc.outcome is None:
        doc.check()
    assert doc.outcome is not None
    fixed = api.preferred_fixes(doc.outcome.diagnostics, doc.display)  # the name the document is checked under
    if not fixed:
        return None
    edits = [lsp.TextEdit(range=doc.span_range(e.span), new_text=e.text)
             for d in fixed for e in next(f for f in d.fixes if f.preferred).edits]
    return lsp.CodeAction(title=f"apply the {len(fixed)} unambiguous fix{'es' * (len(fixed) != 1)} (unlearnspec)",
                          kind=FIX_ALL, diagnostics=[to_lsp_diagnostic(doc, d) for d in fixed],
                          edit=lsp.WorkspaceEdit(changes={doc.uri: edits}))


def code_actions(doc: Document, rng: lsp.Range, snippets: bool = False) -> list[lsp.CodeAction]:
    """Quick fixes for the findings under ``rng``: each fix the compiler attached to a finding (``Diagnostic.fixes``:
    a "did you mean", a number in the right unit, a goal switched with the method it needs...), `accept CODE` for
    a warning or note that `accept` can accept (as a snippet edit when the client takes those: ``snippets``), and
    removal of an `accept` line that accepts nothing (UL214)."""
    if doc.outcome is None:
        doc.check()
    assert doc.outcome is not None
    acceptable = set(api.accept_codes())
    out: list[lsp.CodeAction] = []
    for d in doc.outcome.diagnostics:
        drange = doc.span_range(d.span)
        if not _overlaps(drange, rng):
            continue
        diag = to_lsp_diagnostic(doc, d)

        def action(title: str, edits: list[lsp.TextEdit], preferred: bool = False,
                   diag: lsp.Diagnostic = diag, edit: lsp.WorkspaceEdit | None = None) -> lsp.CodeAction:
            return lsp.CodeAction(title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diag],
                                  is_preferred=preferred or None,
                                  edit=edit or lsp.WorkspaceEdit(changes={doc.uri: edits}))

        for fix in d.fixes:  # the compiler's own edits, in this document only
            if all(e.span.file == d.span.file for e in fix.edits):
                out.append(action(fix.title, [lsp.TextEdit(range=doc.span_range(e.span), new_text=e.text)
                                              for e in fix.edits], preferred=fix.preferred))
        obj = _objective(doc, d.objective)
        if obj is None:
            continue
        if d.code == "UL214":  # an `accept` line that accepts nothing (stale, repeated, or not acceptable)
            out.append(action("remove the `accept` line", [_remove_edit(doc, d.span)], preferred=True))
        if d.severity in ("warning", "note") and not d.accepted and d.code in acceptable:
            where, text = _accept_edit(doc, obj, d.code, snippets)
            title = f"accept {d.code} (then write who reviewed it and why)"
            if snippets:
                out.append(action(title, [], edit=lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(
                    text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=None),
                    edits=[lsp.SnippetTextEdit(range=where, snippet=lsp.StringValue(value=text))])])))
            else:
                out.append(action(title, [lsp.TextEdit(range=where, new_text=text)]))
    return out
