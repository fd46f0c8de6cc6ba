"""A model-card section from a run's report: what was removed or suppressed and how, each claim's
verdict with what decided each of its checks (the deciding quantity, its interval, n and bound) and the
checks' findings, what was not claimed and why, the unlearnspec version that made the run, and the framing
that a pass is evidence of a best effort, not a compliance proof (Cooper et al., arXiv:2412.06966,
takeaways; FRAMEWORK.md §4, §7).

Rendered by one jinja2 template (``templates/card.md.j2``). Every spec-derived string goes through the
project's one Markdown escaping function (:func:`unlearnspec.markdown.escape`, registered as the ``md``,
``mdcode`` and ``mdprose`` filters), the same the report, ``show`` and ``explain`` use: ``mdprose`` for the
sentences the compiler and the runtime wrote (findings, help, why a check was decided as it was), whose
backticked names stay code spans, ``md`` for everything else.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from unlearnspec.catalog import METHODS
from unlearnspec.markdown import register_filters
from unlearnspec.report.model import CheckResult, ObjectiveReport, Report
from unlearnspec.report.render import VERDICT_TEXT
from unlearnspec.report.verdict import (
    REFERENCE_LABELS,
    claim_label,
    deciding,
    fmt_number,
    metric_label,
    where_text,
)

GOAL_TEXT = {
    ("removal", None): "removed from the model's parameters",
    ("suppression", "model"): "suppressed in the model's outputs (the information may remain in the weights)",
    ("suppression", "system"): "suppressed by a filter around the model (the weights are unchanged)",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("unlearnspec.audit", "templates"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    register_filters(env.filters)  # type: ignore[arg-type]
    env.filters.update(num=fmt_number,
                       verdict=lambda v: VERDICT_TEXT.get(v, str(v).upper().replace("_", " ")))
    return env


def _evidence(check: CheckResult) -> dict[str, Any]:
    """One check as the card shows it: what decided it (:func:`~unlearnspec.report.verdict.deciding`: the decision's
    quantity with its own interval, n and bound; without an interval, a test's p-value "decided by the test" or a
    value decided on its point value with intervals off; never the decided model's interval beside a quantity it did
    not decide), why when that is not the interval alone, and
    the check's findings (over-unlearning, no power)."""
    d = deciding(check)
    return {
        "metric": metric_label(check.metric), "where": where_text(check), "status": check.status,
        "text": d.text, "why": d.why, "reason": check.not_evaluated_reason, "findings": list(check.findings),
    }


def _objective_view(o: ObjectiveReport) -> dict[str, Any]:
    by_id = {c.check_id: c for c in o.checks}
    claims: list[dict[str, Any]] = []
    for cv in o.claims:
        claims.append({"claim": cv.claim, "label": claim_label(cv.claim, cv.args), "verdict": cv.verdict, "status": cv.compile_status,
                       "evidence": [_evidence(by_id[i]) for i in cv.checks if i in by_id],
                       "explanation": cv.explanation, "findings": cv.findings})
    made = [c for c in claims if c["status"] == "supported"]
    weak = [c for c in claims if c["status"] == "cannot_be_verified"]
    unmet = [c for c in claims if c["status"] == "cannot_be_met"]
    for c in claims:  # the compiler's reasons, beside the claim they concern
        c["reasons"] = [f for f in o.findings if f.claim == c["claim"] and not f.accepted]
    accepted = [f for f in o.findings if f.accepted]
    named = {c["claim"] for c in unmet + weak}
    open_findings = [f for f in o.findings if not f.accepted and f.claim not in named]
    return {
        "o": o, "claims": claims, "made": made, "weak": weak, "unmet": unmet,
        "accepted": accepted, "open_findings": open_findings,
        "what": GOAL_TEXT.get((o.goal, o.suppression_via if o.goal == "suppression" else None),
                              f"{o.goal} of the target"),
        "exact": o.method in METHODS and METHODS[o.method].family == "exact",
        "reference": REFERENCE_LABELS.get(o.reference or "", o.reference or "none"),
    }


def render_card(report: Report, *, signature: dict[str, Any] | None = None,
                ledger: dict[str, Any] | None = None) -> str:
    """The Markdown section for a Hugging Face model card (``README.md``), from a validated report."""
    return environment().get_template("card.md.j2").render(
        report=report, objectives=[_objective_view(o) for o in report.objectives],
        version=report.audit.tool_version,  # the version that ran and decided, not the one rendering the card
        signature=signature, ledger=ledger)


def card_for_run(run_dir: Path) -> str:
    """The card for a run folder: its report.json (validated), and the signature and ledger receipt
    beside it when present (named, not verified: ``unlearnspec verify`` checks the signature)."""
    report = Report.model_validate_json((run_dir / "report.json").read_text(encoding="utf-8"))
    extras: dict[str, dict[str, Any] | None] = {"signature": None, "ledger": None}
    for key, name in (("signature", "report.sig.json"), ("ledger", "ledger.json")):
        path = run_dir / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            extras[key] = data if isinstance(data, dict) else None
    return render_card(report, **extras)
