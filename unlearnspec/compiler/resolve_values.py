"""The resolve pass's value readers: reporting, closed words with \"did you mean\", numbers in range, paths and
data files (checked once per file), duplicate and unknown fields. :mod:`.resolve` builds the typed AST with them."""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from unlearnspec.builtin.recipe import RECIPES
from unlearnspec.catalog import vocab
from unlearnspec.compiler.ast import (
    Number,
    PathRef,
    Text,
    Word,
)
from unlearnspec.compiler.diagnostics import Diagnostic, Edit, Fix, Label, Severity, Span
from unlearnspec.compiler.examples import expected_example
from unlearnspec.compiler.suggest import did_you_mean, did_you_mean_fixes
from unlearnspec.compiler.syntax import Field, SpecFile, Value
from unlearnspec.markdown import code_span
from unlearnspec.records import DataFileInfo, DataFormatError, inspect_data_file

BUILTIN_MODELS = tuple(RECIPES)  # the built-in registry is the one list of names
#: Resolve diagnostics (UL2xx) kept per file, like the parser's cap on syntax errors: 120,000 unknown
#: fields are one mistake repeated, and printing them all made 38 MB of output. The rest are counted.
MAX_RESOLVE_DIAGNOSTICS = 100
#: The largest seed: random number generators (numpy's among them) take 32-bit seeds.
MAX_SEED = 2**32 - 1


def clip(raw: str, limit: int = 24) -> str:
    """A value as written, shortened when it is long (a 400-digit number)."""
    return raw if len(raw) <= limit else raw[: limit - 1] + "…"


# What inspecting a data file found, shared by every spec checked in this process: a folder of specs
# usually names the same few data files many times. Keyed by path, modification time and size, so an
# edited file is read again.
_DATA_CACHE: dict[tuple[str, int, int], DataFileInfo | DataFormatError] = {}
_DATA_CACHE_MAX = 4096
#: What a readable data file's PathRef carries: its records, QA, multiple-choice and text records, attribute keys.
_Counts = tuple[int, int, int, int, tuple[str, ...]]
# stat() errors that mean "there is no such file" (as pathlib's exists() treats them)
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def inspect_cached(path: Path, st: os.stat_result | None = None) -> DataFileInfo | DataFormatError:
    """:func:`~unlearnspec.records.inspect_data_file`, memoised per (path, mtime, size); ``st`` is
    the file's ``os.stat`` result when the caller already has it.

    Returns the format error instead of raising it (a cached exception raised again and again
    would grow its traceback); an ``OSError`` (the file vanished, cannot be read) propagates."""
    if st is None:
        st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    hit = _DATA_CACHE.get(key)
    if hit is None:
        try:
            hit = inspect_data_file(path)
        except DataFormatError as err:
            hit = err
        if len(_DATA_CACHE) >= _DATA_CACHE_MAX:
            _DATA_CACHE.clear()
        _DATA_CACHE[key] = hit
    return hit


RECORD_SHAPE_HELP = ("each record is one JSON object per line (JSONL) or one row (CSV) with a `text`, or a `question` "
                     "and an `answer`: see docs/data.md")


def a_or_an(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


class ValueResolver:
    """The resolve pass's reporting and value readers: words, numbers, paths, data files, field lists."""

    def __init__(self, spec: SpecFile, base_dir: Path) -> None:
        self.spec = spec
        self.file = spec.path
        self.base_dir = base_dir
        self.diags: list[Diagnostic] = []
        self.objective: str | None = None
        self._data_cache: dict[str, Diagnostic | _Counts | None] = {}
        # the target's data fields as written, resolved or not: a `forget` file that is missing is
        # reported as missing (UL207), not once more as "no forget data" (UL206)
        self._target_named: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def report(self, code: str, severity: Severity, span: Span, message: str, *,
               help: Sequence[str] = (), labels: Sequence[Label] = (), fixes: Sequence[Fix] = ()) -> None:
        self.diags.append(Diagnostic(code=code, severity=severity, span=span, message=message, help=list(help),
                                     labels=list(labels), fixes=list(fixes), objective=self.objective))

    def unknown(self, value: Value | Field, what: str, choices: Sequence[str], code: str = "UL204",
                where: str = "") -> None:
        word = value.name if isinstance(value, Field) else value.text
        span = value.name_span if isinstance(value, Field) else value.span
        # past twice the cap the finding will not be shown (resolve_pass keeps the first ones in source
        # order): skip the edit distances, which made 100,000 unknown fields take minutes
        hint = did_you_mean(word, choices) if len(self.diags) < 2 * MAX_RESOLVE_DIAGNOSTICS else None
        help = [f"did you mean {code_span(hint)}?"] if hint else []
        help.append("expected one of: " + ", ".join(code_span(c) for c in choices))
        quoted = isinstance(value, Value) and value.kind == "string"
        self.report(code, "error", span, f"unknown {what} {code_span(word)}" + (f" in {where}" if where else ""), help=help,
                    fixes=did_you_mean_fixes(span, hint, quoted))

    def shape(self, field: Field, expected: str, span: Span | None = None) -> None:
        if self.trailing_comma(field):
            return
        example = expected_example(field.name)
        if field.name == "accept" and field.values and field.values[0].kind == "word":  # keep the code written
            example = f'{field.values[0].raw} "reviewed by ..."'
        help = [f"write it as `{field.name} {example}`"]
        # `method rmu { learning_rate 1e-3 steps 120 }`: two fields on one line read as one
        joined = next((v for v in field.values[1:] if v.kind == "word" and v.text in FIELD_WORDS), None)
        if joined is not None:
            help.insert(0, f"each field goes on its own line: start a new line before {code_span(joined.text)}")
        if span is None and field.values:  # point at the values that do not fit, not at the field's name
            span = field.values[0].span.through(field.values[-1].span)
        self.report("UL210", "error", span or field.span, f"{code_span(field.name)} expects {expected}", help=help)

    def trailing_comma(self, field: Field) -> bool:
        """Report `goal removal,` at a line's end, whose comma makes the next line's field a value of this one."""
        src = self.spec.source
        for a, b in zip(field.values, field.values[1:], strict=False):
            if b.pos[0] <= a.pos[2] or b.kind != "word" or b.text not in FIELD_WORDS:
                continue
            comma = src.find(",", a.pos[5])
            if comma < 0 or src[a.pos[5]:comma].strip():
                continue
            column = a.pos[3] + comma - a.pos[5]
            at = Span(file=self.file, line=a.pos[2], column=column, end_line=a.pos[2], end_column=column + 1,
                      start_pos=comma, end_pos=comma + 1)
            self.report("UL210", "error", at, "a `,` at the end of a line continues the list onto the next line",
                        help=[f"remove the `,` after {code_span(a.raw)}"],
                        labels=[Label(span=b.span, message=f"so {code_span(b.raw)} is read as a value of "
                                      f"{code_span(field.name)}")],
                        fixes=[Fix(title="remove the `,`", edits=[Edit(span=at, text="")], preferred=True)])
            return True
        return False

    # -- value helpers -----------------------------------------------------------------------

    def no_block(self, field: Field) -> None:
        if field.block is not None:
            self.report("UL210", "error", field.block.open_span, f"{code_span(field.name)} takes no block",
                        help=[f"remove the braces after {code_span(field.name)}"])

    def one_string(self, field: Field) -> Text | None:
        self.no_block(field)
        vals = field.values
        if len(field.groups) != 1 or len(vals) != 1 or vals[0].kind != "string":
            self.shape(field, "one quoted string")
            return None
        return Text(span=vals[0].span, value=vals[0].text)

    def one_word(self, field: Field, choices: Sequence[str], what: str) -> Word | None:
        self.no_block(field)
        vals = field.values
        if len(vals) != 1 or vals[0].kind not in ("word", "string"):
            self.shape(field, "one of " + ", ".join(code_span(c) for c in choices))
            return None
        return self.word(vals[0], choices, what)

    def word(self, v: Value, choices: Sequence[str], what: str) -> Word | None:
        if v.kind == "string" and v.text in choices:  # `kind "observed"`: the right word, quoted
            self.report("UL210", "error", v.span, f"{a_or_an(what)} {what} is written without quotes, found {code_span(v.raw)}",
                        help=[f"remove the quotes: write {code_span(v.text)}"],
                        fixes=[Fix.replace(v.span, v.text, preferred=True)])
            return None
        if v.kind != "word":
            self.report("UL210", "error", v.span, f"expected {a_or_an(what)} {what}, found {code_span(v.raw)}",
                        help=["expected one of: " + ", ".join(code_span(c) for c in choices)])
            return None
        if v.text not in choices:
            self.unknown(v, what, choices)
            return None
        return Word(span=v.span, value=v.text)

    def word_list(self, field: Field, choices: Sequence[str], what: str) -> list[Word]:
        self.no_block(field)
        out: list[Word] = []
        if not field.groups:
            self.shape(field, f"a comma-separated list of {what}s")
        seen: dict[str, Span] = {}
        before: Span | None = None  # the item before the current one, which a repetition's removal starts after
        for group in field.groups:
            if len(group) != 1:
                self.report("UL210", "error", group[1].span, f"expected `,` between {what}s",
                            help=["write " + code_span(f"{field.name} " + ", ".join(v.raw for v in group))])
            for v in group:
                w = self.word(v, choices, what)
                prev, before = before, v.span
                if w is None:
                    continue
                if w.value in seen:
                    gone = w.span if prev is None else w.span.model_copy(update={
                        "line": prev.end_line, "column": prev.end_column, "start_pos": prev.end_pos})
                    self.report("UL223", "warning", w.span, f"{code_span(w.value)} is listed twice",
                                labels=[Label(span=seen[w.value], message="first listed here")],
                                help=["remove the second mention"],
                                fixes=[Fix(title=f"remove the second {code_span(w.value)}", edits=[Edit(span=gone, text="")],
                                           preferred=True)])
                    continue
                seen[w.value] = w.span
                out.append(w)
        return out

    def number(self, v: Value, what: str, *, integer: bool = False, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False) -> Number | None:
        n = v.number if v.kind == "number" else None
        if n is None:
            self.report("UL210", "error", v.span, f"expected a number for {what}, found {code_span(v.raw)}",
                        help=["write a plain number here: no quotes, no unit"])
            return None
        finite = math.isfinite(n)  # `1e309` or a 400-digit number reads as infinity: never convert it
        if finite and integer and n != int(n):
            self.report("UL205", "error", v.span, f"{what} must be a whole number, found {code_span(clip(v.raw))}",
                        help=[f"write a whole number, such as {code_span(str(max(round(n), int(lo or 0))))}"])
            return None
        if not finite or (lo is not None and (n < lo or (lo_open and n == lo))) or (hi is not None and n > hi):
            if lo is None and hi is None:
                rng = "a finite number"
            elif hi is None:
                rng = f"{'greater than' if lo_open else 'at least'} {num_text(lo)}"
            elif lo_open:
                rng = f"greater than {num_text(lo)} and at most {num_text(hi)}"
            else:
                rng = f"between {num_text(lo)} and {num_text(hi)}"
            nearest = lo if finite and lo is not None and n < lo and not lo_open else hi if finite and hi is not None \
                and n > hi else None  # the bound the value went past, when it is itself allowed
            self.report("UL205", "error", v.span, f"{what} must be {rng}, found {code_span(clip(v.raw))}",
                        help=[f"write a number {rng}" + (f", such as {code_span(num_text(nearest))}" if nearest is not None
                                                          else "")])
            return None
        return Number(span=v.span, value=n)

    def paths(self, field: Field) -> list[PathRef]:
        self.no_block(field)
        out: list[PathRef] = []
        if not field.groups:
            self.shape(field, 'one or more quoted paths')
        for group in field.groups:
            for v in group:
                if v.kind != "string":
                    self.report("UL210", "error", v.span, f"{code_span(field.name)} expects quoted paths, found {code_span(v.raw)}",
                                help=[f'write `{field.name} "data/file.jsonl"`'])
                    continue
                ref = self.data_file(v)
                if ref is not None:
                    out.append(ref)
        return out

    def data_file(self, v: Value) -> PathRef | None:
        raw = v.text
        if not raw.strip():  # "" would name the spec's own folder
            self.diags.append(Diagnostic(code="UL207", severity="error", span=v.span, objective=self.objective,
                                         message="a data file path is empty",
                                         help=["give a .jsonl or .csv file, or a folder written by "
                                               "`Dataset.save_to_disk`, relative to the spec's folder"]))
            return None
        # Plain os.path on strings and one stat below: pathlib's resolve() and predicates cost more
        # than the memoised inspection itself when a folder of specs names the same files again.
        key = os.path.realpath(os.path.join(self.base_dir, raw))
        if key not in self._data_cache:
            self._data_cache[key] = self._check_data_file(v, key)
        result = self._data_cache[key]
        if isinstance(result, Diagnostic):
            self.diags.append(result.model_copy(update={"span": v.span, "objective": self.objective}))
            return None
        records, qa, mcq, text, keys = result if result else (None, None, None, None, None)
        resolved = key if os.sep == "/" else Path(key).as_posix()
        return PathRef(span=v.span, raw=raw, resolved=resolved, records=records, qa_records=qa,
                       mcq_records=mcq, text_records=text, attribute_keys=keys)

    def _check_data_file(self, v: Value, key: str) -> Diagnostic | _Counts | None:
        raw = v.text
        shape_help = ["give a .jsonl or .csv file, or a folder written by `Dataset.save_to_disk`"]
        try:
            st = os.stat(key)
        except OSError as exc:
            if exc.errno in _MISSING_ERRNOS:
                return Diagnostic(code="UL207", severity="error", span=v.span,
                                  message=f"data file {code_span(raw)} does not exist",
                                  help=[f"paths are relative to the spec's folder ({code_span(display_dir(self.base_dir))})"])
            return Diagnostic(code="UL207", severity="error", span=v.span,
                              message=f"data file {code_span(raw)} cannot be opened: {exc.strerror or exc}",
                              help=["check that the file exists and that this user may read it"])
        if stat.S_ISDIR(st.st_mode):
            if not (os.path.isfile(os.path.join(key, "dataset_info.json"))
                    or os.path.isfile(os.path.join(key, "state.json"))):
                return Diagnostic(code="UL207", severity="error", span=v.span,
                                  message=f"{code_span(raw)} is a folder, not a data file", help=shape_help)
        elif not stat.S_ISREG(st.st_mode):
            return Diagnostic(code="UL207", severity="error", span=v.span,
                              message=f"data file {code_span(raw)} is not a regular file", help=shape_help)
        elif not os.access(key, os.R_OK):
            return Diagnostic(code="UL207", severity="error", span=v.span, message=f"data file {code_span(raw)} is not readable",
                              help=["give this user read permission on the file"])
        try:
            info = inspect_cached(Path(key), st)
        except OSError as exc:
            return Diagnostic(code="UL207", severity="error", span=v.span,
                              message=f"data file {code_span(raw)} cannot be opened: {exc.strerror or exc}",
                              help=["check that the file exists and that this user may read it"])
        if isinstance(info, DataFormatError):
            where = f"{raw}:{info.line or 1}:{info.column or 1}"
            # the location is part of what went wrong (an editor opens `file:line:col`), so it is in the message
            return Diagnostic(code="UL208", severity="error", span=v.span,
                              message=f"data file {code_span(where)} " + (info.message.removeprefix("data file ")
                                  if info.message.startswith("data file ") else f"cannot be read: {info.message}"),
                              help=[info.help or RECORD_SHAPE_HELP])
        if info.records < 0 or info.attribute_keys is None:
            return None
        return (info.records, info.qa_records, info.mcq_records, info.text_records, tuple(sorted(info.attribute_keys)))

    def duplicate_fields(self, fields: Sequence[Field], where: str, repeatable: Sequence[str] = ()) -> list[Field]:
        seen: dict[str, Field] = {}
        out: list[Field] = []
        for f in fields:
            if f.name in seen and f.name not in repeatable:
                first = seen[f.name]
                if f.block is not None or first.block is not None:
                    advice = f"keep one {code_span(f.name)} and move what the other holds into its block"
                elif all(v.kind == "string" for v in [*first.values, *f.values]) and first.values:
                    advice = f"keep one; several values go on one line, separated by commas: `{f.name} \"a\", \"b\"`"
                else:
                    advice = f"keep one {code_span(f.name)}: it takes a single setting"
                self.report("UL202", "error", f.name_span, f"{code_span(f.name)} is given twice in {where}",
                            labels=[Label(span=first.name_span, message="first given here")], help=[advice])
                continue
            seen.setdefault(f.name, f)
            out.append(f)
        return out

    def known_fields(self, fields: Sequence[Field], allowed: Sequence[str], where: str,
                     what: str = "field") -> list[Field]:
        out = []
        for f in fields:
            if f.name == "__recovered__":
                continue
            if f.name not in allowed:
                if what == "field" and self.misplaced(f, fields, where):
                    continue
                # a misspelled field is UL203; a line of a block that lists vocabulary words (the
                # metrics of `evidence`) names an unknown word, UL204, as an unknown claim does
                self.unknown(f, what, allowed, code="UL203" if what == "field" else "UL204", where=where)
                continue
            out.append(f)
        return out

    def misplaced(self, field: Field, siblings: Sequence[Field], where: str) -> bool:
        """Report a field of another block written here (`aliases` at the objective level), saying where it goes."""
        homes = [block for block, names in FIELD_HOMES if field.name in names and code_span(block) != where]
        if not homes:
            return False
        places = " or ".join(f"the {code_span(b)} block" if b else "the objective" for b in homes)
        sibling = next((s for s in siblings if s.name == homes[0] and s.block is not None), None)
        if not homes[0]:
            advice = f"move it out of the {where} block, to the objective's own fields"
        elif sibling is not None:
            advice = "move it into " + code_span(" ".join([sibling.name, *(v.raw for v in sibling.values), "{ ... }"]))
        else:
            advice = f"move it into a {code_span(homes[0] + ' { ... }')} block"
        self.report("UL203", "error", field.name_span, f"{code_span(field.name)} belongs in {places}, not in {where}",
                    help=[advice])
        return True


FIELD_HOMES = (("target", vocab.TARGET_FIELDS), ("method", vocab.METHOD_FIELDS), ("preserve", vocab.PRESERVE_FIELDS),
               ("scope", vocab.SCOPE_FIELDS), ("budget", vocab.BUDGET_FIELDS), ("", vocab.OBJECTIVE_FIELDS))
"""The blocks each field belongs in ("": the objective itself), for a field written in the wrong one."""


def num_text(x: float | None) -> str:
    """A bound as a person writes it: `1000000`, not `1e+06`."""
    if x is None:
        return ""
    return str(int(x)) if x == int(x) else f"{x:g}"


FIELD_WORDS = frozenset(vocab.OBJECTIVE_FIELDS + vocab.TARGET_FIELDS + vocab.SCOPE_FIELDS + vocab.PRESERVE_FIELDS
                        + vocab.METHOD_FIELDS + vocab.BUDGET_FIELDS)
"""Every field name: a word among a field's values that is one of these starts the next field."""



def display_dir(path: Path) -> str:
    """A folder as a reader finds it: relative to the working folder when it lies inside it, else absolute (a
    climb such as `../../tmp/specs` names the folder less plainly than `/tmp/specs`)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return os.path.abspath(path) if rel == ".." or rel.startswith(".." + os.sep) else rel
