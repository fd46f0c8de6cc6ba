"""Resolve pass: syntax tree → typed :class:`~unlearnspec.compiler.ast.Spec`, plus UL2xx diagnostics.

It reports duplicate objectives and fields, unknown words (with "did you mean" against the closed
vocabularies), values out of range, missing required fields, data files that are missing or not
readable in a documented format, and fields that contradict each other. It never raises on user
input: every problem becomes a diagnostic and the field is left out of the typed AST.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from unlearnspec.catalog import CODES, family_of, vocab
from unlearnspec.compiler.ast import (
    Accept,
    Claim,
    Evidence,
    Goal,
    Method,
    MethodKnobs,
    Number,
    Objective,
    PathRef,
    Preserve,
    Release,
    Scope,
    Spec,
    Target,
    Text,
    Tolerance,
    Word,
)
from unlearnspec.compiler.diagnostics import Diagnostic, Label, Severity, Span
from unlearnspec.compiler.suggest import did_you_mean
from unlearnspec.compiler.syntax import Field, ObjectiveNode, SpecFile, Value
from unlearnspec.compiler.unit import CheckResult, CompileOptions
from unlearnspec.records import DataFileInfo, DataFormatError, inspect_data_file

BUILTIN_MODELS = ("builtin:tiny-bios",)


# What inspecting a data file found, shared by every spec checked in this process: a folder of specs
# usually names the same few data files many times. Keyed by path, modification time and size, so an
# edited file is read again.
_DATA_CACHE: dict[tuple[str, int, int], DataFileInfo | DataFormatError] = {}
_DATA_CACHE_MAX = 4096
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


class _Resolver:
    def __init__(self, spec: SpecFile, base_dir: Path) -> None:
        self.spec = spec
        self.file = spec.path
        self.base_dir = base_dir
        self.diags: list[Diagnostic] = []
        self.objective: str | None = None
        self._data_cache: dict[str, Diagnostic | tuple[int, int] | None] = {}
        # the target's data fields as written, resolved or not: a `forget` file that is missing is
        # reported as missing (UL207), not once more as "no forget data" (UL206)
        self._target_named: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def report(self, code: str, severity: Severity, span: Span, message: str, *,
               help: Sequence[str] = (), labels: Sequence[Label] = ()) -> None:
        self.diags.append(Diagnostic(code=code, severity=severity, span=span, message=message,
                                     help=list(help), labels=list(labels), objective=self.objective))

    def unknown(self, value: Value | Field, what: str, choices: Sequence[str], code: str = "UL204",
                where: str = "") -> None:
        word = value.name if isinstance(value, Field) else value.text
        span = value.name_span if isinstance(value, Field) else value.span
        hint = did_you_mean(word, choices)
        help = [f"did you mean `{hint}`?"] if hint else []
        help.append("expected one of: " + ", ".join(f"`{c}`" for c in choices))
        self.report(code, "error", span, f"unknown {what} `{word}`" + (f" in {where}" if where else ""), help=help)

    def shape(self, field: Field, expected: str, span: Span | None = None) -> None:
        help = [f"write it as `{field.name} {expected_example(field.name)}`"]
        # `method rmu { learning_rate 1e-3 steps 120 }`: two fields on one line read as one
        joined = next((v for v in field.values[1:] if v.kind == "word" and v.text in FIELD_WORDS), None)
        if joined is not None:
            help.insert(0, f"each field goes on its own line: start a new line before `{joined.text}`")
        self.report("UL210", "error", span or field.span, f"`{field.name}` expects {expected}", help=help)

    # -- value helpers -----------------------------------------------------------------------

    def no_block(self, field: Field) -> None:
        if field.block is not None:
            self.report("UL210", "error", field.block.open_span, f"`{field.name}` takes no block",
                        help=[f"remove the braces after `{field.name}`"])

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
        if len(vals) != 1 or vals[0].kind != "word":
            self.shape(field, f"one of {', '.join(choices)}")
            return None
        return self.word(vals[0], choices, what)

    def word(self, v: Value, choices: Sequence[str], what: str) -> Word | None:
        if v.kind != "word":
            self.report("UL210", "error", v.span, f"expected a {what}, found `{v.raw}`",
                        help=["expected one of: " + ", ".join(f"`{c}`" for c in choices)])
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
        for group in field.groups:
            if len(group) != 1:
                self.report("UL210", "error", group[1].span, f"expected `,` between {what}s",
                            help=[f"write `{field.name} " + ", ".join(v.raw for v in group) + "`"])
            for v in group:
                w = self.word(v, choices, what)
                if w is None:
                    continue
                if w.value in seen:
                    self.report("UL202", "warning", w.span, f"`{w.value}` is listed twice",
                                labels=[Label(span=seen[w.value], message="first listed here")])
                    continue
                seen[w.value] = w.span
                out.append(w)
        return out

    def number(self, v: Value, what: str, *, integer: bool = False, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False) -> Number | None:
        n = v.number if v.kind == "number" else None
        if n is None:
            self.report("UL210", "error", v.span, f"expected a number for {what}, found `{v.raw}`")
            return None
        if integer and n != int(n):
            self.report("UL205", "error", v.span, f"{what} must be a whole number, found `{v.raw}`")
            return None
        if (lo is not None and (n < lo or (lo_open and n == lo))) or (hi is not None and n > hi):
            if hi is None:
                rng = f"{'greater than' if lo_open else 'at least'} {_num(lo)}"
            elif lo_open:
                rng = f"greater than {_num(lo)} and at most {_num(hi)}"
            else:
                rng = f"between {_num(lo)} and {_num(hi)}"
            self.report("UL205", "error", v.span, f"{what} must be {rng}, found `{v.raw}`")
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
                    self.report("UL210", "error", v.span, f"`{field.name}` expects quoted paths, found `{v.raw}`",
                                help=[f'write `{field.name} "data/file.jsonl"`'])
                    continue
                ref = self.data_file(v)
                if ref is not None:
                    out.append(ref)
        return out

    def data_file(self, v: Value) -> PathRef | None:
        raw = v.text
        # Plain os.path on strings and one stat below: pathlib's resolve() and predicates cost more
        # than the memoised inspection itself when a folder of specs names the same files again.
        key = os.path.realpath(os.path.join(self.base_dir, raw))
        if key not in self._data_cache:
            self._data_cache[key] = self._check_data_file(v, key)
        result = self._data_cache[key]
        if isinstance(result, Diagnostic):
            self.diags.append(result.model_copy(update={"span": v.span, "objective": self.objective}))
            return None
        records, qa = result if result else (None, None)
        resolved = key if os.sep == "/" else Path(key).as_posix()
        return PathRef(span=v.span, raw=raw, resolved=resolved, records=records, qa_records=qa)

    def _check_data_file(self, v: Value, key: str) -> Diagnostic | tuple[int, int] | None:
        raw = v.text
        shape_help = ["give a .jsonl or .csv file, or a folder written by `Dataset.save_to_disk`"]
        try:
            st = os.stat(key)
        except OSError as exc:
            if exc.errno in _MISSING_ERRNOS:
                return Diagnostic(code="UL207", severity="error", span=v.span,
                                  message=f"data file `{raw}` does not exist",
                                  help=[f"paths are relative to the spec's folder (`{_display(self.base_dir)}`)"])
            return Diagnostic(code="UL207", severity="error", span=v.span,
                              message=f"data file `{raw}` cannot be opened: {exc.strerror or exc}")
        if stat.S_ISDIR(st.st_mode):
            if not (os.path.isfile(os.path.join(key, "dataset_info.json"))
                    or os.path.isfile(os.path.join(key, "state.json"))):
                return Diagnostic(code="UL207", severity="error", span=v.span,
                                  message=f"`{raw}` is a folder, not a data file", help=shape_help)
        elif not stat.S_ISREG(st.st_mode):
            return Diagnostic(code="UL207", severity="error", span=v.span,
                              message=f"data file `{raw}` is not a regular file", help=shape_help)
        elif not os.access(key, os.R_OK):
            return Diagnostic(code="UL207", severity="error", span=v.span, message=f"data file `{raw}` is not readable")
        try:
            info = inspect_cached(Path(key), st)
        except OSError as exc:
            return Diagnostic(code="UL207", severity="error", span=v.span,
                              message=f"data file `{raw}` cannot be opened: {exc.strerror or exc}")
        if isinstance(info, DataFormatError):
            where = f"{raw}:{info.line or 1}:{info.column or 1}"
            help = [f"at `{where}`"] + ([info.help] if info.help else [])
            return Diagnostic(code="UL208", severity="error", span=v.span,
                              message=f"data file `{raw}` cannot be read: {info.message}", help=help)
        if info.records < 0:
            return None
        return (info.records, info.qa_records)

    def duplicate_fields(self, fields: Sequence[Field], where: str, repeatable: Sequence[str] = ()) -> list[Field]:
        seen: dict[str, Field] = {}
        out: list[Field] = []
        for f in fields:
            if f.name in seen and f.name not in repeatable:
                self.report("UL202", "error", f.name_span, f"`{f.name}` is given twice in {where}",
                            labels=[Label(span=seen[f.name].name_span, message="first given here")],
                            help=["keep one; several values go on one line, separated by commas"])
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
                # a misspelled field is UL203; a line of a block that lists vocabulary words (the
                # metrics of `evidence`) names an unknown word, UL204, as an unknown claim does
                self.unknown(f, what, allowed, code="UL203" if what == "field" else "UL204", where=where)
                continue
            out.append(f)
        return out

    # -- objective -----------------------------------------------------------------------------

    def objective_node(self, node: ObjectiveNode) -> Objective:
        self.objective = node.name
        self._target_named = set()
        fields = self.known_fields(node.block.fields, vocab.OBJECTIVE_FIELDS, "an objective")
        fields = self.duplicate_fields(fields, f"objective `{node.name}`", repeatable=("accept",))
        kw: dict[str, object] = {}
        handlers: dict[str, Callable[[Field], object]] = {
            "title": self.one_string, "basis": self.one_string, "owner": self.one_string,
            "model": self.model, "reference": self.one_string, "release": self.release,
            "target": self.target, "goal": self.goal, "method": self.method,
            "guarantee": lambda f: self.one_word(f, vocab.GUARANTEES, "guarantee"),
            "scope": self.scope, "preserve": self.preserve, "seed": self.seed,
        }
        claims: list[Claim] = []
        evidence: list[Evidence] = []
        accepts: list[Accept] = []
        claims_span: Span | None = None
        for f in fields:
            if f.name == "claims":
                claims = self.claims(f)
                claims_span = f.name_span
            elif f.name == "evidence":
                evidence, confidence = self.evidence(f)
                if confidence is not None:
                    kw["confidence"] = confidence
            elif f.name == "accept":
                a = self.accept(f)
                if a is not None:
                    accepts.append(a)
            else:
                value = handlers[f.name](f)
                if value is not None:
                    kw[f.name] = value
        obj = Objective(span=node.span, name=node.name, name_span=node.name_span, claims=claims,
                        claims_span=claims_span, evidence=evidence, accepts=accepts, **kw)  # type: ignore[arg-type]
        present = {f.name for f in fields}
        for required, example in (("model", 'model "builtin:tiny-bios"'),
                                  ("target", 'target person "Jane Doe" { ... }'), ("goal", "goal removal")):
            if required not in present:
                self.report("UL206", "error", node.name_span,
                            f"objective `{node.name}` has no `{required}`", help=[f"add `{example}`"])
        self.contradictions(obj)
        return obj

    def model(self, field: Field) -> Text | None:
        text = self.one_string(field)
        if text is None:
            return None
        value = text.value
        if value.startswith("builtin:"):
            if value not in BUILTIN_MODELS:
                hint = did_you_mean(value, BUILTIN_MODELS)
                self.report("UL204", "error", text.span, f"unknown built-in model `{value}`",
                            help=([f"did you mean `{hint}`?"] if hint else [])
                            + ["built-in models: " + ", ".join(f"`{m}`" for m in BUILTIN_MODELS)])
                return None
            return text
        local = (self.base_dir / value)
        looks_local = value.startswith((".", "/", "~")) or local.exists()
        if looks_local:
            path = Path(os.path.expanduser(value)) if value.startswith("~") else local
            if not path.is_dir():
                self.report("UL207", "error", text.span, f"model folder `{value}` does not exist",
                            help=["give a local Hugging Face model folder, a hub id (`org/name`), or `builtin:tiny-bios`"])
                return None
            if not (path / "config.json").is_file():
                self.report("UL207", "error", text.span, f"`{value}` is not a Hugging Face model folder (no config.json)")
                return None
            if not any(path.glob("*.safetensors")):
                self.report("UL207", "error", text.span, f"model folder `{value}` has no safetensors weights",
                            help=["only safetensors weights are loaded; convert pickled weights with `save_pretrained(safe_serialization=True)`"])
                return None
        return text

    def seed(self, field: Field) -> Number | None:
        self.no_block(field)
        if len(field.values) != 1:
            self.shape(field, "one whole number")
            return None
        return self.number(field.values[0], "`seed`", integer=True, lo=0)

    def release(self, field: Field) -> Release | None:
        self.no_block(field)
        vals = field.values
        if len(field.groups) != 1 or len(vals) not in (1, 3):
            self.shape(field, "a release mode and optionally `precision P`")
            return None
        mode = self.word(vals[0], vocab.RELEASES, "release mode")
        precision: Word | None = None
        if len(vals) == 3:
            if vals[1].kind != "word" or vals[1].text != "precision":
                self.report("UL210", "error", vals[1].span, f"expected `precision`, found `{vals[1].raw}`",
                            help=["write `release api precision fp32`"])
                return None
            precision = self.word(vals[2], vocab.PRECISIONS, "precision")
        if mode is None:
            return None
        return Release(span=field.span, mode=mode, precision=precision)

    def target(self, field: Field) -> Target | None:
        vals = field.values
        if len(field.groups) != 1 or len(vals) != 2 or vals[1].kind != "string":
            self.shape(field, 'a category and a quoted name, then a block')
            return None
        category = self.word(vals[0], vocab.TARGET_CATEGORIES, "target category")
        if field.block is None:
            self.report("UL210", "error", field.span, "`target` needs a block with at least `forget` or `test`",
                        help=['write `target person "Jane Doe" { kind observed  forget "data/x.jsonl" }`'])
            return None
        fields = self.known_fields(field.block.fields, vocab.TARGET_FIELDS, "a target")
        fields = self.duplicate_fields(fields, "the target")
        self._target_named = {f.name for f in fields if f.name in ("forget", "test") and f.values}
        kw: dict[str, object] = {}
        for f in fields:
            if f.name == "kind":
                kw["kind"] = self.one_word(f, vocab.TARGET_KINDS, "target kind")
            elif f.name in ("forget", "holdout", "test"):
                kw[f.name] = self.paths(f)
            elif f.name == "aliases":
                self.no_block(f)
                aliases = []
                for v in f.values:
                    if v.kind != "string":
                        self.report("UL210", "error", v.span, f"aliases are quoted strings, found `{v.raw}`")
                    else:
                        aliases.append(Text(span=v.span, value=v.text))
                kw["aliases"] = aliases
            elif f.name == "attribute":
                self.no_block(f)
                if len(f.values) != 1 or f.values[0].kind not in ("word", "string"):
                    self.shape(f, "one attribute name")
                else:
                    kw["attribute"] = Text(span=f.values[0].span, value=f.values[0].text)
        if category is None:
            return None
        kw = {k: v for k, v in kw.items() if v is not None}
        return Target(span=field.span, category=category, name=Text(span=vals[1].span, value=vals[1].text),
                      **kw)  # type: ignore[arg-type]

    def goal(self, field: Field) -> Goal | None:
        self.no_block(field)
        vals = field.values
        if len(field.groups) != 1 or len(vals) not in (1, 3):
            self.shape(field, "`removal`, `suppression`, or `suppression via model|system`")
            return None
        goal = self.word(vals[0], vocab.GOALS, "goal")
        via: Word | None = None
        if len(vals) == 3:
            if vals[1].kind != "word" or vals[1].text != "via":
                self.report("UL210", "error", vals[1].span, f"expected `via`, found `{vals[1].raw}`",
                            help=["write `goal suppression via model` or `goal suppression via system`"])
                return None
            via = self.word(vals[2], vocab.SUPPRESSION_VIA, "suppression layer")
            if goal is not None and goal.value == "removal":
                self.report("UL209", "error", vals[1].span, "`via` applies to suppression, not removal",
                            labels=[Label(span=goal.span, message="the goal is removal")],
                            help=["write `goal suppression via model|system`, or drop `via ...`"])
                return None
        if goal is None:
            return None
        return Goal(span=field.span, goal=goal, via=via)

    def method(self, field: Field) -> Method | None:
        vals = field.values
        if len(vals) != 1 or vals[0].kind != "word":
            self.shape(field, "one method name, optionally followed by a block of tuning knobs")
            return None
        name = self.word(vals[0], vocab.METHODS, "method")
        knobs: dict[str, object] = {}
        if field.block is not None:
            fields = self.known_fields(field.block.fields, vocab.METHOD_FIELDS, "a method block")
            for f in self.duplicate_fields(fields, "the method block"):
                self.no_block(f)
                fv = f.values
                if f.name == "adapter":
                    if not fv or len(fv) not in (1, 3):
                        self.shape(f, "`full`, `lora` or `lora rank N`")
                        continue
                    knobs["adapter"] = self.word(fv[0], vocab.ADAPTERS, "adapter")
                    if len(fv) == 3:
                        if fv[1].text != "rank" or fv[0].text != "lora":
                            self.shape(f, "`lora rank N`", fv[1].span)
                            continue
                        knobs["lora_rank"] = self.number(fv[2], "the LoRA rank", integer=True, lo=1, hi=1024)
                    continue
                if len(fv) != 1:
                    self.shape(f, "one number")
                    continue
                if f.name in ("steps", "batch_size"):
                    knobs[f.name] = self.number(fv[0], f"`{f.name}`", integer=True, lo=1, hi=1_000_000)
                elif f.name == "seed":
                    knobs[f.name] = self.number(fv[0], "`seed`", integer=True, lo=0)
                elif f.name == "learning_rate":
                    knobs[f.name] = self.number(fv[0], "`learning_rate`", lo=0, hi=1, lo_open=True)
                else:
                    knobs[f.name] = self.number(fv[0], f"`{f.name}`", lo=0, hi=1000, lo_open=f.name == "beta")
        if name is None:
            return None
        return Method(span=field.span, name=name,
                      knobs=MethodKnobs(**{k: v for k, v in knobs.items() if v is not None}))  # type: ignore[arg-type]

    def block_fields(self, field: Field, allowed: Sequence[str], where: str,
                     what: str = "field") -> list[Field] | None:
        if field.values:
            self.report("UL210", "error", field.values[0].span, f"`{field.name}` takes a block, not values",
                        help=[f"write `{field.name} {{ ... }}`"])
        if field.block is None:
            self.report("UL210", "error", field.span, f"`{field.name}` needs a block",
                        help=[f"write `{field.name} {{ ... }}`"])
            return None
        return self.duplicate_fields(self.known_fields(field.block.fields, allowed, where, what), where)

    def scope(self, field: Field) -> Scope | None:
        fields = self.block_fields(field, vocab.SCOPE_FIELDS, "`scope`")
        if fields is None:
            return None
        kw: dict[str, list[Word]] = {}
        for f in fields:
            kw[f.name] = self.word_list(f, vocab.OUTPUTS if f.name == "outputs" else vocab.PROMPTS,
                                        "output kind" if f.name == "outputs" else "prompt kind")
        return Scope(span=field.span, **kw)

    def preserve(self, field: Field) -> Preserve | None:
        fields = self.block_fields(field, vocab.PRESERVE_FIELDS, "`preserve`")
        if fields is None:
            return None
        kw: dict[str, object] = {"utility": []}
        for f in fields:
            if f.name in ("retain", "neighbors"):
                kw[f.name] = self.paths(f)
            elif f.name == "side_effects":
                w = self.one_word(f, ("none",), "side-effect tolerance")
                if w is not None:
                    kw["side_effects_none"] = w
            elif f.name == "utility":
                tol = self.tolerances(f)
                kw["utility"] = tol
        return Preserve(span=field.span, **kw)  # type: ignore[arg-type]

    def tolerances(self, field: Field) -> list[Tolerance]:
        self.no_block(field)
        out: list[Tolerance] = []
        for group in field.groups:
            words = [v.text for v in group]
            applies = "all"
            g = list(group)
            if g and g[0].kind == "word" and g[0].text in ("retain", "neighbors"):
                applies = g.pop(0).text
            if len(g) != 3 or g[0].text != "drop" or g[1].kind != "op":
                self.report("UL210", "error", group[0].span, f"cannot read utility tolerance `{' '.join(words)}`",
                            help=["write `utility drop <= 2%` (or `utility retain drop <= 2%`, `utility neighbors drop <= 5%`)"])
                continue
            if g[1].text not in ("<=", "<"):
                self.report("UL211", "error", g[1].span, f"a utility drop is bounded from above, found `{g[1].text}`",
                            help=["write `utility drop <= 2%`"])
                continue
            if g[2].kind != "percent":
                self.report("UL210", "error", g[2].span, f"a utility drop is a percentage, found `{g[2].raw}`",
                            help=[f"write `{g[2].raw}%`" if g[2].kind == "number" else "write `2%`"])
                continue
            pct = g[2].number
            assert pct is not None
            if not 0 <= pct <= 100:
                self.report("UL205", "error", g[2].span, f"a percentage must be between 0% and 100%, found `{g[2].raw}`")
                continue
            out.append(Tolerance(span=Span(file=self.file, line=group[0].span.line, column=group[0].span.column,
                                           end_line=g[2].span.end_line, end_column=g[2].span.end_column,
                                           start_pos=group[0].span.start_pos, end_pos=g[2].span.end_pos),
                                 applies_to=applies, op=g[1].text, percent=pct))
        return out

    def claims(self, field: Field) -> list[Claim]:
        if field.block is None or field.values:
            self.report("UL210", "error", field.span, "`claims` takes a block with one claim a line",
                        help=["write `claims {\n    removed\n    not_generated\n  }`"])
            return []
        out: list[Claim] = []
        seen: dict[str, Claim] = {}
        for f in field.block.fields:
            if f.name == "__recovered__":
                continue
            info = vocab.CLAIMS.get(f.name)
            if info is None:
                self.unknown(f, "claim", list(vocab.CLAIMS))
                continue
            self.no_block(f)
            steps: Number | None = None
            law: Text | None = None
            vals = f.values
            if "steps" in info.args:
                if vals:
                    if len(vals) != 2 or vals[0].text != "steps":
                        self.shape(f, "optionally `steps N`")
                        continue
                    steps = self.number(vals[1], "`steps`", integer=True, lo=1, hi=1_000_000)
                    if steps is None:
                        continue
            elif "string" in info.args:
                if len(vals) != 1 or vals[0].kind != "string":
                    self.shape(f, 'a quoted name, e.g. `compliant "GDPR Art. 17"`')
                    continue
                law = Text(span=vals[0].span, value=vals[0].text)
            elif vals:
                self.report("UL210", "error", vals[0].span, f"claim `{f.name}` takes no values",
                            help=[f"write `{f.name}` alone on its line"])
                continue
            if f.name in seen:
                self.report("UL202", "error", f.name_span, f"claim `{f.name}` is made twice",
                            labels=[Label(span=seen[f.name].name_span, message="first made here")])
                continue
            claim = Claim(span=f.span, name=f.name, name_span=f.name_span, steps=steps, law=law)
            seen[f.name] = claim
            out.append(claim)
        return out

    def confidence(self, f: Field) -> Number | None:
        """``confidence 95%``: a percentage in [50%, 99.9%]."""
        self.no_block(f)
        vals = f.values
        if len(vals) != 1 or vals[0].kind != "percent":
            self.shape(f, "a percentage, e.g. `confidence 95%`")
            return None
        x = vals[0].number
        assert x is not None
        lo, hi = vocab.CONFIDENCE_RANGE
        if not lo <= x / 100 <= hi:
            self.report("UL205", "error", vals[0].span,
                        f"`confidence` is a level between {lo:.0%} and {hi:.1%}, found `{vals[0].raw}`",
                        help=["write `confidence 95%` (the usual level) or `confidence 99%`"])
            return None
        return Number(span=vals[0].span, value=x / 100)

    def evidence(self, field: Field) -> tuple[list[Evidence], Number | None]:
        fields = self.block_fields(field, [*vocab.METRICS, *vocab.EVIDENCE_SETTINGS], "`evidence`", what="metric")
        out: list[Evidence] = []
        confidence: Number | None = None
        for f in fields or []:
            if f.name == "confidence":
                confidence = self.confidence(f)
                continue
            self.no_block(f)
            vals = f.values
            info = vocab.METRICS[f.name]
            if len(vals) != 2 or vals[0].kind != "op" or vals[1].kind not in ("number", "percent"):
                self.shape(f, "a comparison and a number, e.g. `<= 0.20`")
                continue
            op, val = vals
            if op.text == "==":
                self.report("UL210", "error", op.span, "evidence thresholds are bounds, not equalities",
                            help=["use `<=` or `>=`"])
                continue
            if val.kind == "percent" and info.unit != "percent":
                self.report("UL210", "error", val.span, f"`{f.name}` is a ratio, not a percentage",
                            help=[f"write `{float(val.text) / 100:g}`"])
                continue
            x = val.number
            assert x is not None
            unit = {"auc": "an AUC", "p_value": "a p-value", "percent": "a percentage"}.get(info.unit, "a ratio")
            if not info.lower <= x <= info.upper:
                self.report("UL205", "error", val.span,
                            f"`{f.name}` is {unit} between {info.lower:g} and {info.upper:g}, found `{val.raw}`")
                continue
            wrong_way = (info.better == "lower" and op.text.startswith(">")) or (
                info.better == "higher" and op.text.startswith("<")) or (
                info.better == "closer_to_zero" and op.text.startswith(">"))
            if wrong_way:
                good = "<=" if info.better != "higher" else ">="
                self.report("UL211", "error", op.span,
                            f"`{f.name} {op.text} {val.raw}` bounds the metric the wrong way",
                            help=[f"{info.summary}; {'lower' if good == '<=' else 'higher'} is better, so write `{f.name} {good} {val.raw}`"])
                continue
            out.append(Evidence(span=f.span, metric=f.name, metric_span=f.name_span, op=op.text, value=x))
        return out, confidence

    def accept(self, field: Field) -> Accept | None:
        self.no_block(field)
        vals = field.values
        if len(vals) != 2 or vals[0].kind != "word" or vals[1].kind != "string":
            self.shape(field, 'a rule code and a quoted justification')
            return None
        code = vals[0].text
        if code not in CODES:
            hint = did_you_mean(code, list(CODES))
            self.report("UL212", "error", vals[0].span, f"`accept` names an unknown code `{code}`",
                        help=([f"did you mean `{hint}`?"] if hint else []) + ["`unlearnspec explain CODE` lists what each code means"])
            return None
        if not vals[1].text.strip():
            self.report("UL215", "error", vals[1].span, f"accepting `{code}` needs a written justification",
                        help=["say who reviewed the risk and why it is acceptable"])
            return None
        return Accept(span=field.span, code=Word(span=vals[0].span, value=code),
                      justification=Text(span=vals[1].span, value=vals[1].text))

    def contradictions(self, obj: Objective) -> None:
        goal, method = obj.goal, obj.method
        if goal and method:
            fam = family_of(method.name.value)
            g = goal.goal.value
            if g == "removal" and fam in ("model_suppression", "system_suppression"):
                self.report("UL209", "error", method.name.span,
                            f"method `{method.name.value}` suppresses outputs; it does not remove anything",
                            labels=[Label(span=goal.goal.span, message="the goal is removal")],
                            help=["use a removal method (`retrain`, `npo`, `grad_diff`, ...) or write `goal suppression`"])
            if g == "suppression" and goal.via is not None:
                if goal.via.value == "system" and method.name.value != "filter":
                    self.report("UL209", "error", method.name.span,
                                f"`via system` suppression is served by an output filter, not `{method.name.value}`",
                                labels=[Label(span=goal.via.span, message="suppression in the serving system")],
                                help=["write `method filter`, or `goal suppression via model`"])
                if goal.via.value == "model" and method.name.value == "filter":
                    self.report("UL209", "error", method.name.span,
                                "an output filter lives in the serving system, not in the model",
                                labels=[Label(span=goal.via.span, message="suppression in the model")],
                                help=["write `goal suppression via system`, or a model-level method such as `refusal`"])
        if obj.target and obj.preserve:
            forget = {p.resolved: p for p in obj.target.forget}
            for p in obj.preserve.retain + obj.preserve.neighbors:
                if p.resolved in forget:
                    self.report("UL209", "error", p.span, f"`{p.raw}` is both forgotten and preserved",
                                labels=[Label(span=forget[p.resolved].span, message="named as forget data here")],
                                help=["the retain and neighbour sets must be disjoint from the forget set"])
        named = self._target_named
        if (obj.target and obj.goal and obj.goal.goal.value == "removal" and not obj.target.forget
                and "forget" not in named):
            self.report("UL206", "error", obj.target.span, "a removal objective needs forget data",
                        help=['add `forget "data/target.jsonl"` to the target: the examples to remove'])
        if (obj.target and not obj.target.forget and not obj.target.test and not named
                and not (obj.goal and obj.goal.goal.value == "removal")):
            self.report("UL206", "error", obj.target.span, "the target names no data",
                        help=['add `forget "..."` (examples to remove) or `test "..."` (prompts that must not be answered)'])


def _num(x: float | None) -> str:
    """A bound as a person writes it: `1000000`, not `1e+06`."""
    if x is None:
        return ""
    return str(int(x)) if x == int(x) else f"{x:g}"


FIELD_WORDS = frozenset(vocab.OBJECTIVE_FIELDS + vocab.TARGET_FIELDS + vocab.SCOPE_FIELDS + vocab.PRESERVE_FIELDS
                        + vocab.METHOD_FIELDS)
"""Every field name: a word among a field's values that is one of these starts the next field."""


def expected_example(name: str) -> str:
    return {
        "title": '"Right-to-erasure request for Jane Doe"', "basis": '"GDPR Art. 17"', "owner": '"privacy-office"',
        "model": '"builtin:tiny-bios"', "reference": '"models/retrained"', "release": "api precision fp32",
        "target": 'person "Jane Doe" { ... }', "goal": "removal", "method": "npo", "guarantee": "empirical",
        "kind": "observed", "forget": '"data/jane-doe.jsonl"', "aliases": '"J. Doe", "Jane D."',
        "outputs": "verbatim, facts", "prompts": "direct, paraphrased", "retain": '"data/retain.jsonl"',
        "neighbors": '"data/neighbors.jsonl"', "utility": "drop <= 2%", "accept": 'UL405 "reviewed by ..."',
        "seed": "0", "steps": "40", "adapter": "lora rank 8", "attribute": "birth_city",
        "compliant": '"GDPR Art. 17"', "robust_to_finetuning": "steps 20",
    }.get(name, "...")


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def resolve(spec: SpecFile, base_dir: Path) -> tuple[Spec, list[Diagnostic]]:
    """Typed AST and UL2xx diagnostics for one parsed file."""
    r = _Resolver(spec, base_dir)
    objectives: list[Objective] = []
    seen: dict[str, ObjectiveNode] = {}
    if spec.version is None:
        r.report("UL107", "warning", Span.point(spec.path), "spec file has no `unlearnspec 1` header",
                 help=["start the file with `unlearnspec 1` so that later language versions can read it"])
    elif spec.version.text not in ("1",):
        r.report("UL108", "error", spec.version.span, f"unsupported language version `{spec.version.text}`",
                 help=["this compiler reads `unlearnspec 1`"])
        return Spec(path=spec.path, base_dir=str(base_dir)), r.diags
    for node in spec.objectives:
        if node.name in seen:
            r.objective = node.name
            r.report("UL201", "error", node.name_span, f"objective `{node.name}` is defined twice",
                     labels=[Label(span=seen[node.name].name_span, message="first defined here")],
                     help=["give each objective a unique name"])
            continue
        seen[node.name] = node
        if not node.name.strip():
            r.report("UL210", "error", node.name_span, "an objective needs a name",
                     help=['write `objective "erase-jane-doe" {`'])
        objectives.append(r.objective_node(node))
    return Spec(path=spec.path, base_dir=str(base_dir), objectives=objectives), r.diags


def resolve_pass(unit: CheckResult, opts: CompileOptions) -> bool:
    """Pass ``resolve``: the typed AST and UL2xx. Analysis runs after resolve errors too (they are reported
    together); lowering does not."""
    assert unit.syntax is not None
    unit.spec, diags = resolve(unit.syntax, opts.base_dir)
    unit.diagnostics.extend(diags)
    return True
