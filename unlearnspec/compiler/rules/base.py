"""The machinery every feasibility rule shares: the rule registry, its context, and span helpers.

A rule is a plain function ``rule(obj, ctx) -> Iterable[Diagnostic]`` over one checked objective,
registered with its documentation page by the :func:`rule` decorator. The page is the single
source of the code's severity, so a rule cannot report a code at a severity its page does not
document. Each rule also declares which claims an objective-level finding (one with
``claim=None``) bears on, so that the per-claim status table can attribute it (see
:func:`unlearnspec.compiler.feasibility.claim_statuses`).

The rules read only the AST (and the two facts in :class:`RuleContext` that are not in one
objective), so checking stays fast and never touches data files or models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from unlearnspec import catalog
from unlearnspec.catalog import CodePage
from unlearnspec.compiler.ast import Claim, Objective, Word
from unlearnspec.compiler.decisions import MethodChoice as MethodChoice  # the rules read the table's choice
from unlearnspec.compiler.decisions import planned_method as planned_method
from unlearnspec.compiler.diagnostics import Diagnostic, Edit, Fix, Label, Span
from unlearnspec.markdown import code_span

RuleFn = Callable[[Objective, "RuleContext"], Iterable[Diagnostic]]

# Claim groups that objective-level findings bear on: catalog.REMOVAL_CLAIMS, catalog.OUTPUT_CLAIMS, or
ALL_CLAIMS = None  # an objective-level finding that bears on every claim of the objective

@dataclass(frozen=True)
class RuleContext:
    """What a rule needs to know beyond the objective itself."""

    spec_path: str
    base_dir: str
    builtin: bool  # the model is built in: its training corpus and recipe are known, so retraining is possible
    objectives_on_model: int = 1  # objectives in this file (this one included) on the same model
    siblings: tuple[Objective, ...] = ()  # the other objectives in this file on the same model
    method: MethodChoice = MethodChoice(None, None, "compiler")  # the method that will run (the decision table's)


@dataclass(frozen=True)
class Rule:
    """A registered rule: its page, its function, and the claims its objective-level findings concern."""

    page: CodePage
    fn: RuleFn
    affects: frozenset[str] | None = field(default=ALL_CLAIMS)
    defers_to_errors: bool = False  # a finding about a claim that another rule's error already concerns is dropped

    @property
    def code(self) -> str:
        return self.page.code

    def __call__(self, obj: Objective, ctx: RuleContext) -> list[Diagnostic]:
        out = list(self.fn(obj, ctx))
        for d in out:
            if d.code != self.code or d.severity != self.page.severity:  # pragma: no cover - programming error
                raise AssertionError(f"rule {self.code} reported {d.code}/{d.severity}")
        return out


_REGISTERED: list[Rule] = []
AFFECTS: dict[str, frozenset[str] | None] = {}


def rule(page: CodePage, *, affects: frozenset[str] | None = ALL_CLAIMS,
         defers_to_errors: bool = False) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the rule for ``page.code`` (its page is in the catalog)."""
    if page.category != "feasibility":
        raise ValueError(f"{page.code}: feasibility rules register feasibility pages")

    def deco(fn: RuleFn) -> RuleFn:
        if page.code not in AFFECTS:
            _REGISTERED.append(Rule(page=page, fn=fn, affects=affects, defers_to_errors=defers_to_errors))
            AFFECTS[page.code] = affects
        return fn

    return deco


def registered_rules() -> tuple[Rule, ...]:
    """Every rule, ordered by code (the order they run in and their findings are listed)."""
    return tuple(sorted(_REGISTERED, key=lambda r: r.code))


def finding(page: CodePage, obj: Objective, span: Span, message: str, *, labels: Sequence[Label] = (),
            help: Sequence[str] = (), claim: str | None = None, fixes: Sequence[Fix] = ()) -> Diagnostic:
    """A diagnostic for ``page``'s code; labels on the primary span itself are dropped (it is shown)."""
    seen: set[tuple[int, int, int, int]] = {_key(span)}
    kept: list[Label] = []
    for lab in labels:
        k = _key(lab.span)
        if k not in seen:
            seen.add(k)
            kept.append(lab)
    return Diagnostic(code=page.code, severity=page.severity, message=message, span=span, labels=kept,
                      help=list(help), fixes=list(fixes), objective=obj.name, claim=claim)


def goal_fix(obj: Objective, goal: str, method: str | None = None) -> list[Fix]:
    """The fix of a help that says "write `goal GOAL`" (and "with `method METHOD`"): the objective's `goal` field
    written again, and its method's name replaced, or a `method` line added under the goal at its indentation.
    No fix when the objective has no `goal` field to rewrite."""
    if obj.goal is None:
        return []
    g = obj.goal.span
    edits = [Edit(span=g, text=f"goal {goal}")]
    if method is not None and obj.method is not None:
        edits.append(Edit(span=obj.method.name.span, text=method))
    elif method is not None:
        edits.append(Edit(span=g.end(), text="\n" + " " * (g.column - 1) + f"method {method}"))
    return [Fix(title=f"switch to `goal {goal}`" + (f" with `method {method}`" if method else ""), edits=edits)]


def _key(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


def label(span: Span | None, message: str) -> list[Label]:
    """Zero or one label: convenient with ``*`` when a contributing field may be absent."""
    return [] if span is None else [Label(span=span, message=message)]


# -- facts about an objective that several rules read ------------------------------------------


def goal_of(obj: Objective) -> str | None:
    return obj.goal.goal.value if obj.goal else None


def via_of(obj: Objective) -> str | None:
    return obj.goal.via.value if obj.goal and obj.goal.via else None


def release_of(obj: Objective) -> str | None:
    return obj.release.mode.value if obj.release else None


def precision_of(obj: Objective) -> str | None:
    return obj.release.precision.value if obj.release and obj.release.precision else None


def weights_leave(obj: Objective) -> bool:
    """The weights leave the deployer's control (open weights or on-device)."""
    return release_of(obj) in ("open_weights", "on_device")


def is_builtin_model(obj: Objective) -> bool:
    return obj.model is not None and obj.model.value.startswith("builtin:")


def kind_label(obj: Objective) -> list[Label]:
    """The span that makes the target latent/concept: its `kind`, or the category that defaults to it."""
    t = obj.target
    if t is None:
        return []
    if t.kind is not None:
        return label(t.kind.span, f"the target is {code_span(t.kind.value)} information")
    return label(t.category.span, f"a {code_span(t.category.value)} target is a {code_span(t.kind_value)} by default")


def goal_label(obj: Objective) -> list[Label]:
    if obj.goal is None:
        return []
    text = f"the goal is {obj.goal.goal.value}"
    if obj.goal.via is not None:
        text += f" via the {obj.goal.via.value}"
    return label(obj.goal.goal.span, text)


def release_label(obj: Objective, text: str | None = None) -> list[Label]:
    if obj.release is None:
        return []
    return label(obj.release.mode.span, text or f"released as {code_span(obj.release.mode.value)}")


def method_label(obj: Objective, text: str | None = None) -> list[Label]:
    if obj.method is None:
        return []
    name = obj.method.name.value
    return label(obj.method.name.span, text or f"{code_span(name)} is {catalog.FAMILIES[catalog.family_of(name)].article}")


def claim_label(c: Claim, text: str | None = None) -> list[Label]:
    return label(c.name_span, text or f"claimed here: {catalog.CLAIMS[c.name].summary}")


def word_label(w: Word | None, text: str) -> list[Label]:
    return [] if w is None else label(w.span, text)

