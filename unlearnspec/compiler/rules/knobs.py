"""Rules on the method block's knobs: a knob the named method does not read (UL414)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES, METHODS, UNKNOWN
from unlearnspec.catalog.vocab import METHOD_FIELDS
from unlearnspec.compiler.ast import Number, Objective, Word
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import RuleContext, finding, label, rule
from unlearnspec.markdown import code_span

UL414 = CODES["UL414"]


def _set_knobs(obj: Objective) -> Iterator[tuple[str, Word | Number]]:
    """The knobs the method block sets, by their names in the language (``adapter lora rank N`` is one knob)."""
    assert obj.method is not None
    knobs = obj.method.knobs
    for name in METHOD_FIELDS:
        value = getattr(knobs, name, None)
        if name == "adapter" and value is None:
            value = knobs.lora_rank
        if value is not None:
            yield name, value


def _names(items: list[str]) -> str:
    quoted = [code_span(i) for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


@rule(UL414, affects=frozenset())
def knob_not_read(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    """Each knob of the method block that the named method does not read; the plan leaves it out."""
    if obj.method is None or obj.method.name.value == UNKNOWN or obj.unlearned is not None:
        return  # no method block to judge (an audit's block is UL220)
    name = obj.method.name.value
    method = METHODS.get(name)
    if method is None:
        return
    read = [k for k in METHOD_FIELDS if method.reads(k)]
    for knob, value in _set_knobs(obj):
        if method.reads(knob):
            continue
        others = [m.name for m in METHODS.values() if m.reads(knob)]
        help = [f"{code_span(name)} reads " + (_names(read) if read else "no knob: "
                                      + ("it follows the recipe" if name == "retrain" else "it trains nothing")),
                f"drop {code_span(knob)}" + (f", or choose a method that reads it ({_names(others)})" if others else "")]
        yield finding(UL414, obj, value.span,
                      f"method {code_span(name)} does not read {code_span(knob)}: the plan keeps the method's own value",
                      labels=label(obj.method.name.span, f"{code_span(name)} is named here"), help=help)
