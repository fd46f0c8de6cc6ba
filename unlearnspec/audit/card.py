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

The card claims no more than was checked when it was made: it says the run is signed only when the signature was
verified with the key given (``card --pub KEY.pub``: :func:`~unlearnspec.audit.signing.verify_run`), and what the
signature covers; it cites ledger lines only when the run's receipt was checked against the ledger given (``card
--ledger DIR``: :func:`~unlearnspec.audit.ledger.check_receipt`). Without them it says a signature file or a receipt
is present and was not checked, and names nothing from it. A check that fails makes no card, and neither does a run
that has not finished (as `sign` refuses one).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from unlearnspec.audit.ledger import RECEIPT, UNMARKED, check_receipt
from unlearnspec.audit.manifest import REVIEWED, SIGNATURE_FILE
from unlearnspec.audit.problems import Problem
from unlearnspec.audit.signing import check_finished, verify_run
from unlearnspec.catalog import METHODS
from unlearnspec.catalog.vocab import CLAIM_STATUS_WORDS
from unlearnspec.inputs import read_regular
from unlearnspec.markdown import register_filters
from unlearnspec.report.model import CheckResult, ObjectiveReport, Report
from unlearnspec.report.render import verdict_text
from unlearnspec.report.summary import COMPILER_NOTE, notation, summarise
from unlearnspec.report.verdict import (
    REFERENCE_LABELS,
    claim_label,
    code_words,
    deciding,
    fmt_number,
    metric_label,
    where_text,
)


@lru_cache(maxsize=1)
def environment() -> Environment:
    # the report's templates too: the card includes the report's summary in plain words (summary.md.j2), the same text
    loader = ChoiceLoader([PackageLoader("unlearnspec.audit", "templates"), PackageLoader("unlearnspec.report", "templates")])
    env = Environment(loader=loader, autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    register_filters(env.filters)  # type: ignore[arg-type]
    env.filters.update(num=fmt_number, verdict=verdict_text, claim_status=CLAIM_STATUS_WORDS.__getitem__,
                       code_words=code_words)
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
        # the findings behind its status that are not stated beside it (accepted risks, or about the objective as a
        # whole), named in words: each is listed below with its message
        said = {f.code for f in c["reasons"]}
        c["other_codes"] = [code_words(code) for code in c["findings"] if code not in said]
    accepted = [f for f in o.findings if f.accepted]
    named = {c["claim"] for c in unmet + weak}
    open_findings = [f for f in o.findings if not f.accepted and f.claim not in named]
    return {
        "o": o, "claims": claims, "made": made, "weak": weak, "unmet": unmet,
        "accepted": accepted, "open_findings": open_findings,
        "summary": summarise(o),  # the report's summary in plain words (summary.md.j2), the same text
        "exact": o.method in METHODS and METHODS[o.method].family == "exact",
        "reference": REFERENCE_LABELS.get(o.reference or "", o.reference or "none"),
    }


def render_card(report: Report, *, signature: dict[str, Any] | None = None,
                ledger: dict[str, Any] | None = None) -> str:
    """The Markdown section for a Hugging Face model card (``README.md``), from a validated report. ``signature`` and
    ``ledger`` are what :func:`card_for_run` checked (``state`` ``verified`` / ``checked``, or ``present``: there, not
    checked); ``None``: the run folder has none."""
    builtin = any(m.role == "original" and m.path.startswith("builtin:") for o in report.objectives for m in o.models)
    return environment().get_template("card.md.j2").render(
        report=report, objectives=[_objective_view(o) for o in report.objectives],
        version=report.audit.tool_version,  # the version that ran and decided, not the one rendering the card
        builtin=builtin, signature=signature, ledger=ledger,
        notation=f"{notation(report)} {COMPILER_NOTE} Each is explained under \"Not claimed, and why\".")


@dataclass
class Card:
    """A card, or the checks that failed and made none: each problem with the file it is about."""

    text: str | None
    problems: list[tuple[Path, Problem]] = field(default_factory=list)


def card_for_run(run_dir: Path, *, pub: Path | None = None, ledger: Path | None = None) -> Card:
    """The card for a run folder: its report.json (validated); with ``pub``, the run's signature verified with that
    public key; with ``ledger``, the run's receipt checked against that ledger folder. Without them a signature file
    or a receipt beside the report is said to be there and unchecked. Raises
    :class:`~unlearnspec.audit.signing.SigningError` (UL812) for a run that has not finished (``run.json`` records no
    finish time, or a report is missing: :func:`~unlearnspec.audit.signing.check_finished`; its resume rewrites its
    reports, so a card of it would not last), and for an unusable key or a folder with no signature to verify."""
    check_finished(run_dir)
    data = read_regular(run_dir / "report.json")
    report = Report.model_validate_json(data)
    # the card is made from these bytes; the signature and the receipt are checked by reading the file again, so
    # each must be shown to bear out these same bytes (a report swapped back between the reads is not signed)
    digest = hashlib.sha256(data).hexdigest()
    problems: list[tuple[Path, Problem]] = []
    signature: dict[str, Any] | None = None
    if pub is not None:
        v = verify_run(run_dir, pub)
        problems += [(run_dir / (p.file or SIGNATURE_FILE), p) for p in v.problems]
        if not v.problems and v.files.get("report.json") != digest:
            problems.append((run_dir / "report.json", Problem(
                "UL811", 0, "report.json changed while the card was made: the report read is not the one signed",
                ("make the card again from a run folder nothing writes to",))))
        covered = [rel for rel, sha in v.files.items() if sha is not None]
        named = [n for n in REVIEWED if n in covered]
        signature = {"state": "verified", "key": v.key_sha256, "version": v.version, "named": named,
                     "others": len(covered) - len(named)}
    elif os.path.lexists(run_dir / SIGNATURE_FILE):
        signature = {"state": "present"}
    receipt: dict[str, Any] | None = None
    if ledger is not None:
        found, borne = check_receipt(ledger, run_dir)
        problems += [(run_dir / RECEIPT, p) for p in found]
        if not found and any(b.entry.report_sha256 != digest for b in borne):
            problems.append((run_dir / RECEIPT, Problem(
                "UL806", 0, "report.json changed while the card was made: the report read is not the one the "
                "ledger records", ("make the card again from a run folder nothing writes to",))))
        # each line with its status as the ledger's marks say when the card is made (UNMARKED: recorded, and
        # nobody marked it adopted), and the line of that mark, which card.md.j2 cites beside the request's line
        receipt = {"state": "checked", "entries": [
            {"request_id": b.entry.request_id, "seq": b.entry.seq, "file": b.file,
             "status": b.mark.status if b.mark else UNMARKED, "status_line": b.mark.seq if b.mark else None}
            for b in borne]}
    elif os.path.lexists(run_dir / RECEIPT):
        receipt = {"state": "present"}
    if problems:
        return Card(None, problems)
    return Card(render_card(report, signature=signature, ledger=receipt))
