"""The report of a run: evidence per check, a verdict per claim, and the documents a reviewer signs.

Light package (pydantic, jinja2, standard library): the compiler side and the CLI can read, validate
and re-render a ``report.json`` without importing torch.
"""

from unlearnspec.report.model import (
    EXIT_CODES,
    EXIT_FAIL,
    EXIT_INCOMPLETE,
    EXIT_PASS,
    FORMAT_VERSION,
    AuditTrail,
    CheckResult,
    ClaimVerdict,
    ModelValue,
    ObjectiveReport,
    Report,
    TrainingLog,
    report_schema,
)
from unlearnspec.report.render import render_html, render_markdown, write_reports
from unlearnspec.report.verdict import (
    audit_from_plan,
    build_objective_report,
    build_report,
    check_results,
    claim_verdict,
    decide,
    exit_code,
    objective_overall,
    overall,
    report_overall,
)

__all__ = [
    "EXIT_CODES", "EXIT_FAIL", "EXIT_INCOMPLETE", "EXIT_PASS", "FORMAT_VERSION",
    "AuditTrail", "CheckResult", "ClaimVerdict", "ModelValue", "ObjectiveReport", "Report", "TrainingLog",
    "audit_from_plan", "build_objective_report", "build_report", "check_results", "claim_verdict", "decide",
    "exit_code", "objective_overall", "overall", "render_html", "render_markdown", "report_overall",
    "report_schema", "write_reports",
]
