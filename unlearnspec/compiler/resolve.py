"""Resolve pass: syntax tree → typed :class:`~unlearnspec.compiler.ast.Spec`, plus UL2xx diagnostics.

It reports duplicate objectives and fields, unknown words (with "did you mean" against the closed
vocabularies), values out of range, missing required fields, data files that are missing or not
readable in a documented format, and fields that contradict each other. It never raises on user
input: every problem becomes a diagnostic and the field is left out of the typed AST.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from unlearnspec.catalog import CODES, family_of, vocab
from unlearnspec.compiler.ast import (
    Accept,
    Budget,
    Claim,
    Evidence,
    Goal,
    Method,
    MethodKnobs,
    Number,
    Objective,
    Preserve,
    Release,
    Scope,
    Spec,
    Target,
    Text,
    Tolerance,
    Word,
)
from unlearnspec.compiler.diagnostics import Diagnostic, Fix, Label, Span, sort_diagnostics
from unlearnspec.compiler.model_files import model_folder_problem
from unlearnspec.compiler.resolve_data import attribute_labelled, disjoint_from_forget, records_disjoint
from unlearnspec.compiler.resolve_prompt import PromptResolver
from unlearnspec.compiler.resolve_values import BUILTIN_MODELS, MAX_RESOLVE_DIAGNOSTICS, MAX_SEED
from unlearnspec.compiler.suggest import did_you_mean, did_you_mean_fixes
from unlearnspec.compiler.syntax import Field, ObjectiveNode, SpecFile
from unlearnspec.compiler.unit import CheckResult, CompileOptions
from unlearnspec.inputs import spec_path
from unlearnspec.markdown import code_span


class _Resolver(PromptResolver):
    """Syntax tree → typed objectives, field by field (the value readers are in :class:`ValueResolver`)."""


    # -- objective -----------------------------------------------------------------------------

    def objective_node(self, node: ObjectiveNode) -> Objective:
        self.objective = node.name
        self._target_named = set()
        fields = self.known_fields(node.block.fields, vocab.OBJECTIVE_FIELDS, "an objective")
        fields = self.duplicate_fields(fields, f"objective {code_span(node.name)}", repeatable=("accept",))
        kw: dict[str, object] = {}
        handlers: dict[str, Callable[[Field], object]] = {
            "title": self.one_string, "basis": self.one_string, "owner": self.one_string,
            "model": self.model, "system": self.system, "unlearned": self.given, "reference": self.one_string, "release": self.release,
            "target": self.target, "goal": self.goal, "method": self.method,
            "guarantee": lambda f: self.one_word(f, vocab.GUARANTEES, "guarantee"),
            "scope": self.scope, "preserve": self.preserve, "seed": self.seed,
            "after": self.one_string, "budget": self.budget,
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
        present = {did_you_mean(f.name, vocab.OBJECTIVE_FIELDS) or f.name for f in node.block.fields}
        for required, example in (("model", 'model "builtin:tiny-bios"'),
                                  ("target", 'target person "Jane Doe" { ... }'), ("goal", "goal removal")):
            if required not in present:
                self.report("UL206", "error", node.name_span,
                            f"objective {code_span(node.name)} has no {code_span(required)}", help=[f"add {code_span(example)}"])
        self.contradictions(obj)
        self.audit_fields(obj, {f.name: f for f in fields})
        self.system_fits_model(obj)
        return obj

    def model(self, field: Field) -> Text | None:
        text = self.one_string(field)
        if text is None:
            return None
        value = text.value
        if not value.strip():  # "" would name the spec's own folder
            self.report("UL207", "error", text.span, "the model is empty",
                        help=["give a local Hugging Face model folder, a hub id (`org/name`), or `builtin:tiny-bios`"])
            return None
        if value.startswith("builtin:"):
            if value not in BUILTIN_MODELS:
                hint = did_you_mean(value, BUILTIN_MODELS)
                self.report("UL204", "error", text.span, f"unknown built-in model {code_span(value)}",
                            help=([f"did you mean {code_span(hint)}?"] if hint else [])
                            + ["built-in models: " + ", ".join(code_span(m) for m in BUILTIN_MODELS)],
                            fixes=did_you_mean_fixes(text.span, hint, quoted=True))
                return None
            return text
        local = (self.base_dir / value)
        looks_local = value.startswith((".", "/", "~")) or local.exists()
        if looks_local:
            path = spec_path(value, self.base_dir)
            if not path.is_dir():
                self.report("UL207", "error", text.span, f"model folder {code_span(value)} does not exist",
                            help=["give a local Hugging Face model folder, a hub id (`org/name`), or `builtin:tiny-bios`"])
                return None
            problem = model_folder_problem(path, value)
            if problem is not None:
                self.report("UL207", "error", text.span, problem[0], help=problem[1])
                return None
        return text

    def seed(self, field: Field) -> Number | None:
        self.no_block(field)
        if len(field.values) != 1:
            self.shape(field, "one whole number")
            return None
        return self.number(field.values[0], "`seed`", integer=True, lo=0, hi=MAX_SEED)

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
                self.report("UL210", "error", vals[1].span, f"expected `precision`, found {code_span(vals[1].raw)}",
                            help=["write `release api precision fp32`"],
                            fixes=[Fix.replace(vals[1].span, "precision")] if vals[1].kind == "word" else [])
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
        if not vals[1].text.strip():
            self.report("UL205", "error", vals[1].span, "the target's name cannot be empty",
                        help=["name what is to be forgotten, e.g. `target person \"Jane Doe\"`: the name is "
                              "searched for in outputs and probes, and an empty one is found in every text"])
        if field.block is None:
            self.report("UL210", "error", field.span, "`target` needs a block with at least `forget` or `test`",
                        help=['write `target person "Jane Doe" { kind observed  forget "data/x.jsonl" }`'])
            return None
        fields = self.known_fields(field.block.fields, vocab.TARGET_FIELDS, "`target`")
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
                        self.report("UL210", "error", v.span, f"aliases are quoted strings, found {code_span(v.raw)}",
                                    help=[f"write {code_span(chr(34) + v.raw + chr(34))}"])
                    elif not v.text.strip():
                        self.report("UL205", "error", v.span, "an alias cannot be empty",
                                    help=["an empty alias is found in every text: the output filter and the probes "
                                          "would take everything for the target; remove it"])
                    else:
                        aliases.append(Text(span=v.span, value=v.text))
                kw["aliases"] = aliases
            elif f.name == "attribute":
                self.no_block(f)
                if len(f.values) != 1 or f.values[0].kind not in ("word", "string"):
                    self.shape(f, "one attribute name")
                else:
                    kw["attribute"] = Text(span=f.values[0].span, value=f.values[0].text)
        attribute_labelled(kw.get("attribute"), kw.get("forget"), self.base_dir, self.report,
                           quoted=any(f.name == "attribute" and f.values[0].kind == "string" for f in fields if f.values))
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
                self.report("UL210", "error", vals[1].span, f"expected `via`, found {code_span(vals[1].raw)}",
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
            fields = self.known_fields(field.block.fields, vocab.METHOD_FIELDS, "`method`")
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
                    knobs[f.name] = self.number(fv[0], code_span(f.name), integer=True, lo=1, hi=1_000_000)
                elif f.name == "seed":
                    knobs[f.name] = self.number(fv[0], "`seed`", integer=True, lo=0, hi=MAX_SEED)
                elif f.name == "learning_rate":
                    knobs[f.name] = self.number(fv[0], "`learning_rate`", lo=0, hi=1, lo_open=True)
                else:
                    knobs[f.name] = self.number(fv[0], code_span(f.name), lo=0, hi=1000, lo_open=f.name == "beta")
        if name is None:
            return None
        return Method(span=field.span, name=name,
                      knobs=MethodKnobs(**{k: v for k, v in knobs.items() if v is not None}))  # type: ignore[arg-type]

    def block_fields(self, field: Field, allowed: Sequence[str], where: str,
                     what: str = "field") -> list[Field] | None:
        if field.values:
            self.report("UL210", "error", field.values[0].span, f"{code_span(field.name)} takes a block, not values",
                        help=[f"write `{field.name} {{ ... }}`"])
        if field.block is None:
            self.report("UL210", "error", field.span, f"{code_span(field.name)} needs a block",
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

    def budget(self, field: Field) -> Budget | None:
        fields = self.block_fields(field, vocab.BUDGET_FIELDS, "`budget`")
        if fields is None:
            return None
        utility: Tolerance | None = None
        requests: Number | None = None
        for f in fields:
            if f.name == "utility":
                tols = self.tolerances(f)
                if tols and tols[0].applies_to != "all":
                    self.report("UL210", "error", tols[0].span, "a chain's utility budget covers all utility",
                                help=["write `utility drop <= 5%`"])
                elif tols:
                    utility = tols[0]
            else:
                self.no_block(f)
                vals = [v for g in f.groups for v in g]
                if len(vals) != 1:
                    self.shape(f, "one whole number of approximate requests, e.g. `requests 3`")
                else:
                    requests = self.number(vals[0], "request budget", integer=True, lo=1)
        return Budget(span=field.span, utility=utility, requests=requests)

    def tolerances(self, field: Field) -> list[Tolerance]:
        self.no_block(field)
        out: list[Tolerance] = []
        for group in field.groups:
            words = [v.raw for v in group]
            applies = "all"
            g = list(group)
            if g and g[0].kind == "word" and g[0].text in ("retain", "neighbors"):
                applies = g.pop(0).text
            if len(g) != 3 or g[0].text != "drop" or g[1].kind != "op":
                self.report("UL210", "error", group[0].span.through(group[-1].span), f"cannot read utility tolerance {code_span(' '.join(words))}",
                            help=["write `utility drop <= 2%` (or `utility retain drop <= 2%`, `utility neighbors drop <= 5%`)"])
                continue
            if g[1].text not in ("<=", "<"):
                self.report("UL211", "error", g[1].span, f"a utility drop is bounded from above, found {code_span(g[1].text)}",
                            help=["write `utility drop <= 2%`"], fixes=[Fix.replace(g[1].span, "<=")])
                continue
            if g[2].kind != "percent":
                x = g[2].number if g[2].kind == "number" else None
                if x is not None and 0 < x <= 1:  # `0.02` is most likely a fraction meant as 2%
                    help = [f"write `{x * 100:g}%` for a drop of {x * 100:g} percent ({code_span(f'{g[2].raw}%')} would be "
                            f"{x:g} of one percent)"]
                    fixes = [Fix.replace(g[2].span, f"{x * 100:g}%")]
                else:  # a number meant as a percentage, or a word (no fix: which number is not known)
                    help = [f"write {code_span(f'{g[2].raw}%')}" if x is not None else "write `2%`"]
                    fixes = [Fix.replace(g[2].span, f"{g[2].raw}%")] if x is not None else []
                self.report("UL210", "error", g[2].span, f"a utility drop is a percentage, found {code_span(g[2].raw)}",
                            help=help, fixes=fixes)
                continue
            pct = g[2].number
            assert pct is not None
            if not 0 <= pct <= 100:
                self.report("UL205", "error", g[2].span, f"a percentage must be between 0% and 100%, found {code_span(g[2].raw)}",
                            help=["write the drop the objective may cost as a percentage of the model's score, such as `2%`"])
                continue
            span = Span(file=self.file, line=group[0].span.line, column=group[0].span.column,
                        end_line=g[2].span.end_line, end_column=g[2].span.end_column,
                        start_pos=group[0].span.start_pos, end_pos=g[2].span.end_pos)
            # one tolerance a set: `drop` covers both, so a second one for a set would be silently overridden
            first = next((t for t in out if "all" in (t.applies_to, applies) or t.applies_to == applies), None)
            if first is not None:
                named = {first.applies_to, applies} - {"all"}  # the set given twice; none named: both sets
                which = {"retain": "retain", "neighbors": "neighbour"}[named.pop()] if named else "retain and neighbour"
                self.report("UL202", "error", span, f"the {which} utility tolerance is given twice",
                            labels=[Label(span=first.span, message="first given here")],
                            help=["`drop <= N%` covers both sets; give each set one tolerance: "
                                  "`retain drop <= N%, neighbors drop <= M%`"])
                continue
            out.append(Tolerance(span=span, applies_to=applies, op=g[1].text, percent=pct))
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
                self.report("UL210", "error", vals[0].span, f"claim {code_span(f.name)} takes no values",
                            help=[f"write {code_span(f.name)} alone on its line"])
                continue
            if f.name in seen:
                self.report("UL202", "error", f.name_span, f"claim {code_span(f.name)} is made twice",
                            labels=[Label(span=seen[f.name].name_span, message="first made here")],
                            help=[f"remove one of the two {code_span(f.name)} lines"])
                continue
            claim = Claim(span=f.span, name=f.name, name_span=f.name_span, steps=steps, law=law)
            seen[f.name] = claim
            out.append(claim)
        return out

    def confidence(self, f: Field) -> Number | None:
        """``confidence 95%``: a percentage in [50%, 99.9%]."""
        self.no_block(f)
        vals = f.values
        if len(vals) == 1 and vals[0].kind == "number" and vals[0].number is not None and 0 < vals[0].number < 1:
            self.report("UL210", "error", vals[0].span, f"`confidence` is a percentage, found {code_span(vals[0].raw)}",
                        help=[f"write `confidence {vals[0].number * 100:g}%`"],
                        fixes=[Fix.replace(vals[0].span, f"{vals[0].number * 100:g}%")])
            return None
        if len(vals) != 1 or vals[0].kind != "percent":
            self.shape(f, "a percentage, e.g. `confidence 95%`")
            return None
        x = vals[0].number
        assert x is not None
        lo, hi = vocab.CONFIDENCE_RANGE
        if not lo <= x / 100 <= hi:
            self.report("UL205", "error", vals[0].span,
                        f"`confidence` is a level between {lo:.0%} and {hi:.1%}, found {code_span(vals[0].raw)}",
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
                self.report("UL210", "error", val.span, f"{code_span(f.name)} is a ratio, not a percentage",
                            help=[f"write `{float(val.text) / 100:g}`"], fixes=[Fix.replace(val.span, f"{float(val.text) / 100:g}")])
                continue
            x = val.number
            assert x is not None
            unit = {"auc": "an AUC", "p_value": "a p-value", "percent": "a percentage"}.get(info.unit, "a ratio")
            if not info.lower <= x <= info.upper:
                scaled = x / 100 if info.unit != "percent" and info.lower <= x / 100 <= info.upper else None
                self.report("UL205", "error", val.span,
                            f"{code_span(f.name)} is {unit} between {info.lower:g} and {info.upper:g}, found {code_span(val.raw)}",
                            help=[f"did you mean `{scaled:g}`? ({f.name} is not a percentage)"] if scaled is not None
                            else [f"write a bound between {info.lower:g} and {info.upper:g}"],
                            fixes=did_you_mean_fixes(val.span, f"{scaled:g}" if scaled is not None else None))
                continue
            good = info.bound_op
            if op.text[0] != good[0]:  # `<` or `<=` for `<=`, `>` or `>=` for `>=` (`==` is refused above)
                self.report("UL211", "error", op.span,
                            f"{code_span(f'{f.name} {op.text} {val.raw}')} bounds the metric the wrong way",
                            help=[f"{'lower' if good == '<=' else 'higher'} is better for {code_span(f.name)}, so write "
                                  f"{code_span(f'{f.name} {good} {val.raw}')}"],
                            fixes=[Fix.replace(op.span, good, f"write {code_span(f'{f.name} {good} {val.raw}')}")])
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
            self.report("UL212", "error", vals[0].span, f"`accept` names an unknown code {code_span(code)}",
                        help=([f"did you mean {code_span(hint)}?"] if hint else []) + ["`unlearnspec explain CODE` lists what each code means"],
                        fixes=did_you_mean_fixes(vals[0].span, hint))
            return None
        if not vals[1].text.strip():
            self.report("UL215", "error", vals[1].span, f"accepting {code_span(code)} needs a written justification",
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
                            f"method {code_span(method.name.value)} suppresses outputs; it does not remove anything",
                            labels=[Label(span=goal.goal.span, message="the goal is removal")],
                            help=["use a removal method (`retrain`, `npo`, `grad_diff`, ...) or write `goal suppression`"])
            if g == "suppression" and goal.via is not None:
                if goal.via.value == "system" and method.name.value != "filter":
                    self.report("UL209", "error", method.name.span,
                                f"`via system` suppression is served by an output filter, not {code_span(method.name.value)}",
                                labels=[Label(span=goal.via.span, message="suppression in the serving system")],
                                help=["write `method filter`, or `goal suppression via model`"])
                if goal.via.value == "model" and method.name.value == "filter":
                    self.report("UL209", "error", method.name.span,
                                "an output filter lives in the serving system, not in the model",
                                labels=[Label(span=goal.via.span, message="suppression in the model")],
                                help=["write `goal suppression via system`, or a model-level method such as `refusal`"])
        if obj.target:
            disjoint_from_forget(obj.target, obj.preserve, self.report)
            records_disjoint(obj.target, obj.preserve, self.base_dir, self.report)
        named = self._target_named
        if (obj.target and obj.goal and obj.goal.goal.value == "removal" and not obj.target.forget
                and "forget" not in named):
            self.report("UL206", "error", obj.target.span, "a removal objective needs forget data",
                        help=['add `forget "data/target.jsonl"` to the target: the examples to remove'])
        if (obj.target and not obj.target.forget and not obj.target.test and not named
                and not (obj.goal and obj.goal.goal.value == "removal")):
            self.report("UL206", "error", obj.target.span, "the target names no data",
                        help=['add `forget "..."` (examples to remove) or `test "..."` (prompts that must not be answered)'])


def resolve(spec: SpecFile, base_dir: Path) -> tuple[Spec, list[Diagnostic]]:
    """Typed AST and UL2xx diagnostics for one parsed file."""
    r = _Resolver(spec, base_dir)
    objectives: list[Objective] = []
    seen: dict[str, ObjectiveNode] = {}
    if spec.version is None:
        r.report("UL107", "warning", Span.point(spec.path), "spec file has no `unlearnspec 1` header",
                 help=["start the file with `unlearnspec 1` so that later language versions can read it"])
    elif not spec.readable:
        r.report("UL108", "error", spec.version.span, f"unsupported language version {code_span(spec.version.text)}",
                 help=["this compiler reads `unlearnspec 1`"])
        return Spec(path=spec.path, base_dir=str(base_dir)), r.diags
    for node in spec.objectives:
        if node.name in seen:
            r.objective = node.name
            r.report("UL201", "error", node.name_span, f"objective {code_span(node.name)} is defined twice",
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
    if len(diags) > MAX_RESOLVE_DIAGNOSTICS:
        diags, unit.omitted = cap_diagnostics(diags, MAX_RESOLVE_DIAGNOSTICS)
    unit.diagnostics.extend(diags)
    return True


def cap_diagnostics(diags: list[Diagnostic], limit: int) -> tuple[list[Diagnostic], int]:
    """The first ``limit`` of ``diags`` in source order, the last of them saying how many more there
    are, and that count."""
    ordered = sort_diagnostics(diags)
    kept, rest = ordered[:limit], len(ordered) - limit
    if rest <= 0:
        return ordered, 0
    errors = sum(d.severity == "error" for d in ordered[limit:])
    parts = [f"{n:,} more {word}{'s' * (n != 1)}" for n, word in ((errors, "error"), (rest - errors, "finding"))
             if n]
    more = f"{' and '.join(parts)} in this file {'are' if rest != 1 else 'is'} not shown; fix these first"
    last = kept[-1]
    kept[-1] = last.model_copy(update={"help": [*last.help, more]})
    return kept, rest
