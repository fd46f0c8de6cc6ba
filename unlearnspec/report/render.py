"""Render a Report as review text (Markdown), as a self-contained HTML page, and write all three files.

One jinja2 environment serves both templates. Autoescaping is chosen by template name: on for
``*.html.j2`` (user text — titles, bases, justifications — may contain markup; the charts too, which
``plots.py`` gives as numbers and plain strings to ``charts.html.j2``), off for ``*.md.j2``, where the
``md``/``mdcode``/``mdprose`` filters (:mod:`unlearnspec.markdown`, the one Markdown escaping function) keep user
text text. ``StrictUndefined`` turns a template typo into an error instead of a silently empty cell, and the
``verdict`` filter refuses a word that is not a verdict, an outcome or a status.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from unlearnspec.catalog import MEMBERSHIP_ATTACKS, METRICS, TERMS
from unlearnspec.io import atomic_write_text
from unlearnspec.markdown import prose_html, register_filters
from unlearnspec.report import plots
from unlearnspec.report.interval_kinds import KINDS, interval_kind, kinds_in
from unlearnspec.report.model import CheckResult, EffectiveBatch, ObjectiveReport, Report
from unlearnspec.report.summary import COMPILER_NOTE, notation, summarise
from unlearnspec.report.verdict import (
    OP_SYMBOLS,
    REFERENCE_LABELS,
    claim_label,
    code_words,
    decision_text,
    describe_check,
    fmt_estimate,
    fmt_interval,
    fmt_number,
    metric_label,
    threshold_text,
    where_text,
)

VERDICT_TEXT = {
    "pass": "PASS",
    "fail": "FAIL",
    "not_evaluated": "NOT EVALUATED",
    "inconclusive": "INCONCLUSIVE",
    "cannot_be_met": "CANNOT BE MET",
    "incomplete": "INCOMPLETE",
    "info": "INFO",
}

HOW_TO_READ: list[str] = [
    "A pass is evidence of a reasonable best effort under the evaluations stated in this report - "
    "the metrics, data sets, probes and attacks listed - not a proof of legal compliance. "
    "Unlearning is not a general-purpose tool for controlling model behaviour "
    "(Cooper et al., arXiv:2412.06966, takeaways).",
    "Each claim is decided only by its listed checks. Every measured number is shown as value [low, high], "
    "n=items: its confidence interval at the plan's level (95% unless the spec says otherwise) and the sample "
    "size; a question asked several ways (paraphrases, adversarial wrappers) is one item. The interval is not "
    "always a bootstrap: a share of items scored 0 or 1 gets Clopper and Pearson's exact interval, a sample whose "
    "items all agree a distribution-free one, fewer than five items at least Hoeffding's, a membership check's "
    "pairs simultaneous intervals, the others a bootstrap of the items; the sentence beside an interval names its "
    "kind where report.json shows it, and 'Terms used in this report' says what each is. A number marked 'by "
    "definition' is not measured (a drop from the original's own utility is 0), one marked 'no interval' or "
    "'point value' has none, and numbers given 'for context' decide nothing. A check "
    "passes only when its interval lies entirely on the passing side of its bound, fails when it lies entirely "
    "on the failing side, and is INCONCLUSIVE otherwise. Forget quality (TOFU) is the p-value of a two-sample "
    "Kolmogorov-Smirnov test against the reference: it fails when the p-value is below its bound (the test "
    "finds a difference at that level), passes only when the p-value's whole interval is at or above the bound "
    "(a test that finds no difference is not evidence that there is none), and is INCONCLUSIVE otherwise or "
    "when no outcome could fail it at this sample size. A claim passes when "
    "every check passed, fails when any failed, and is inconclusive or not evaluated otherwise. Missing or "
    "inconclusive evidence is never counted as a pass: the burden of proof is on the claim.",
    "Membership is judged against the reference on the same items (the retrained model where the plan retrains "
    "one; a given reference model as the spec names it; without either, against chance, 0.5, which a difference "
    "between the forget set and the holdout alone can move: Duan et al., arXiv:2402.07841), per item type (documents, "
    "questions, paraphrased questions) and attack, the worst pair deciding, in both directions: an AUC far below "
    "the reference's (over-unlearning) reveals membership too and is reported as a finding. Each pair's interval "
    "is widened so that all of them hold together at the stated level (one bootstrap resamples the items for "
    "every pair), and every pair is listed under 'Membership in detail'. Output metrics "
    "(ROUGE-type) are judged by how far they lie above the reference's on the same items; one far below "
    "it is reported as an over-unlearning finding, without failing the check.",
    "CANNOT BE MET means the compiler found the claim technically unachievable as written (for example, "
    "a promise about downstream use or about information a user puts in the prompt). Such a claim never "
    "passes, whatever the numbers; its measurements are shown for information.",
    "A claim marked 'cannot be verified' was judged by its stated checks, but the compiler warned that "
    "those checks cannot fully establish it; read its findings before relying on it.",
    "Removal and suppression are different: removal is about what the model's parameters carry, "
    "suppression about what the model or system outputs. Output metrics alone cannot tell them apart, "
    "which is why removal claims are checked with membership inference and a reference model.",
    "Original is the model before unlearning; unlearned is the model after it; the reference "
    "approximates a model never trained on the forgotten data (ideally retrained without it); attacked "
    "is the unlearned model after the stated attack (relearning fine-tune or quantization).",
    "Accepted risks are compiler warnings that a reviewer accepted in the spec, with the written "
    "justification shown; errors can never be accepted.",
    "The audit trail pins the exact plan, spec, data, model and software that produced these numbers; "
    "report.json carries every per-item value so anyone can recompute each aggregate.",
]

EXIT_CODE_TEXT: list[tuple[int, str]] = [
    (0, "pass: every claim of every objective was evaluated and passed"),
    (1, "fail: some claim failed its evidence or cannot be met as written"),
    (3, "incomplete: nothing failed, but some claim was not evaluated or is inconclusive"),
]

@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("unlearnspec.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), disabled_extensions=("md.j2",),
                                     default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    register_filters(env.filters)
    env.filters.update(num=fmt_number, verdict=verdict_text, xy=plots.coordinate, code_words=code_words,
                       prose=prose_html)
    return env


def verdict_text(word: str) -> str:
    """``PASS``, ``NOT EVALUATED``...: a verdict, an outcome or a status as the reports print it. Anything else is
    refused: the report model types every such field with its closed set of words, so another word here is a bug,
    and printing it raw would put unescaped text in a document."""
    try:
        return VERDICT_TEXT[word]
    except (KeyError, TypeError):
        raise ValueError(f"{word!r} is not a verdict, an outcome or a check's status") from None


def _batch_text(b: EffectiveBatch) -> str:
    """The effective batch in words: ``8 examples an optimizer step = 2 processes × 4 × 1 accumulation step (ddp)``."""
    procs = f"{b.processes} process" + ("" if b.processes == 1 else "es")
    acc = f"{b.accumulation} accumulation step" + ("" if b.accumulation == 1 else "s")
    why = f": {b.sharding_reason}" if b.sharding_reason else ""
    return f"{b.global_batch} examples an optimizer step = {procs} × {b.micro_batch} × {acc} ({b.sharding}{why})"


#: ``extra`` facts whose value is a closed word with underscores (an item type, a statistic's name): shown as words.
WORDS_VALUES = frozenset({"deciding_type", "statistic"})


def _extra_value(key: str, value: str | int | float | bool) -> str:
    """One ``extra`` fact's value as the report prints it: a confidence level as the percentage the Markdown prints
    (``99.40%``, not ``0.994``), other numbers through :func:`fmt_number`, a membership attack by its label, a closed
    word with its underscores as spaces."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2%}" if key.endswith("confidence") else fmt_number(value)
    if key == "deciding_attack" and isinstance(value, str) and value in MEMBERSHIP_ATTACKS:
        return MEMBERSHIP_ATTACKS[value].label
    if key in WORDS_VALUES:
        return str(value).replace("_", " ")
    return str(value)


def _scalar_extras(check: CheckResult) -> list[tuple[str, str]]:
    """Short facts from ``extra`` (statistic, backend, ...), each named in words (``pair confidence``) and printed as
    :func:`_extra_value` does: the lists stay in report.json."""
    return [(k.replace("_", " "), _extra_value(k, v))
            for k, v in sorted(check.extra.items()) if isinstance(v, (str, int, float, bool))]


#: The components of model utility (``runtime/evaluation/metrics.py:utility``), in reviewer words.
UTILITY_COMPONENTS: dict[str, str] = {
    "rouge_recall": "answers: ROUGE-L recall of the greedy answer",
    "probability": "answers: probability of the gold answer",
    "truth_ratio": "answers: truth-ratio score max(0, 1 - R_truth)",
    "text_probability": "documents: probability exp(-loss)",
    "verbatim_rouge": "documents: verbatim ROUGE-L of the continuation (still reproduced)",
}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _utility_view(c: CheckResult) -> dict[str, Any] | None:
    """What a utility drop is made of: each component per model, so a reviewer sees *what* was lost
    (and that retained people's documents are still reproduced)."""
    raw_comps = c.extra.get("components")
    util = c.extra.get("utility")
    if not isinstance(raw_comps, dict) or not isinstance(util, dict):
        return None
    comps: dict[str, dict[str, Any]] = {m: v for m, v in raw_comps.items() if isinstance(v, dict)}
    models = [m for m in plots.MODEL_ORDER if m in comps]
    names = [k for k in UTILITY_COMPONENTS if any(k in comps[m] for m in models)]
    names += sorted({k for m in models for k in comps[m]} - set(names))

    def shown(value: object, n: int | None) -> str:
        return fmt_number(_number(value)) + (f", n={n}" if n else "") if _number(value) is not None else "n/a"

    rows = [{"label": UTILITY_COMPONENTS.get(k, k),
             "values": {m: shown(comps[m].get(k), _records(c, f"{m}.{k}")) for m in models}} for k in names]
    rows.append({"label": "utility (harmonic mean of the above)",
                 "values": {m: shown(util.get(m), c.n.get(m)) for m in models}})
    return {"check_id": c.check_id, "dataset": c.dataset, "models": models, "rows": rows}


def _records(c: CheckResult, column: str) -> int | None:
    """How many records a utility component was measured on: its per-item column's values (empty where a record
    does not contribute to it)."""
    values = c.per_item.get(column)
    return sum(v is not None for v in values) if values else None


#: The data roles as a report names them (the glossary says what each is for).
DATA_ROLES: dict[str, str] = {"forget": "Forget set", "holdout": "Holdout", "retain": "Retain set",
                              "neighbors": "Neighbours", "test": "Test set"}


def _data_view(o: ObjectiveReport) -> list[tuple[str, str, str]]:
    """(role, sources, what was read) for each data set of the run; the holdout with its two halves."""
    rows = []
    stops = any(d.calibration_stops_training for d in o.data)
    for d in o.data:
        read = f"{d.records} record{'s' if d.records != 1 else ''}"
        if d.distinct is not None:  # repeats: evaluation counted each different record once
            read += f", {d.distinct} different (each counted once as an item of the evidence)"
        if d.role == "forget" and stops:  # the stopping rule compares its loss with the calibration half's
            read += " (its mean loss is also what the stopping rule read)"
        if d.calibration is not None and d.evaluation is not None:
            held = "set when training stops" if d.calibration_stops_training else "held apart, unused by this run"
            read += f" ({d.calibration} {held}; {d.evaluation} are the non-members the verdicts use)"
        rows.append((DATA_ROLES.get(d.role, d.role), ", ".join(d.sources), read))
    return rows


#: How one (item type, attack) pair of a membership check came out on its own interval.
PAIR_OUTCOMES: dict[str, str] = {"within": "within the tolerance", "beyond": "beyond the tolerance",
                                 "straddles": "undecided", "n/a": "no bound"}


def _pair(low: Any, high: Any) -> tuple[float, float] | None:
    lo, hi = _number(low), _number(high)
    return (lo, hi) if lo is not None and hi is not None else None


def _membership_view(c: CheckResult) -> dict[str, Any] | None:
    """Every (item type, attack) pair of a membership check: each model's AUC, the gap that is judged with
    its interval, the member and non-member counts and the pair's own outcome (FRAMEWORK.md §7: decide on
    the worst type, and show every type)."""
    by, aucs = c.extra.get("gap_by_type"), c.extra.get("auc_by_type")
    if not isinstance(by, dict) or not isinstance(aucs, dict):
        return None
    models = [m for m in plots.MODEL_ORDER
              if any(isinstance(a, dict) and isinstance(a.get(m), (int, float)) for row in aucs.values()
                     if isinstance(row, dict) for a in row.values())]
    rows = []
    tolerance = c.decision.threshold.value if c.decision is not None else None
    for t, row in by.items():
        if not isinstance(row, dict):
            continue
        for a, g in row.items():
            if not isinstance(g, dict):
                continue
            by_attack = aucs.get(t)
            found = by_attack.get(a) if isinstance(by_attack, dict) else None
            auc: dict[str, Any] = found if isinstance(found, dict) else {}
            n, n_other = g.get("n"), g.get("n_other")
            known = MEMBERSHIP_ATTACKS.get(str(a))
            deciding = t == c.extra.get("deciding_type") and a == c.extra.get("deciding_attack")
            rows.append({"type": str(t).replace("_", " "), "attack": known.label if known else str(a),
                         # the deciding pair's AUCs are the check's own values, with their intervals; the others
                         # are recorded without one, and their gap (beside) is what is judged
                         "aucs": {m: fmt_interval(c, m) if deciding and m in c.interval else
                                  fmt_number(_number(auc.get(m))) for m in models},
                         "gap": fmt_estimate(_number(g.get("gap")), _pair(g.get("low"), g.get("high")), bound=tolerance),
                         "n": f"{n} / {n_other}" if n is not None else "n/a",
                         "outcome": PAIR_OUTCOMES.get(str(g.get("status")), "n/a"),
                         "deciding": deciding})
    conf = _number(c.extra.get("pair_confidence"))
    compared = c.extra.get("compared_with")
    against = (f"the {compared}'s AUC" if compared in (REFERENCE_LABELS["retrain"], REFERENCE_LABELS["model"])
               else "0.5")
    return {"check_id": c.check_id, "dataset": c.dataset, "models": models, "rows": rows, "against": against,
            "pair_confidence": f"{conf:.2%}" if conf is not None else None,
            "tolerance": fmt_number(c.decision.threshold.value) if c.decision is not None else None}


def _privleak_view(c: CheckResult) -> dict[str, Any] | None:
    """Every item type of a PrivLeak check, each with its PrivLeak (percent) and interval, its member and
    non-member counts and the models' AUCs it is computed from (FRAMEWORK.md §7: decide on the worst type, and
    show every type, with its interval)."""
    by, aucs = c.extra.get("privleak_by_type"), c.extra.get("auc_by_type")
    if not isinstance(by, dict) or not isinstance(aucs, dict):
        return None
    models = [m for m in plots.MODEL_ORDER
              if any(isinstance(row, dict) and _number(row.get(m)) is not None for row in aucs.values())]
    bound = c.decision.threshold.value if c.decision is not None else None
    unbounded = c.extra.get("unbounded_types")
    rows = []
    for t, row in aucs.items():
        auc = row if isinstance(row, dict) else {}
        e = by.get(t)
        e = e if isinstance(e, dict) else {}
        n, n_other = e.get("n"), e.get("n_other")
        value = _number(e.get("value"))
        rows.append({"type": str(t).replace("_", " "), "deciding": t == c.extra.get("deciding_type"),
                     "aucs": {m: fmt_number(_number(auc.get(m))) for m in models},
                     "privleak": (fmt_estimate(value, _pair(e.get("low"), e.get("high")), bound=bound) + "%"
                                  if value is not None else
                                  "no bounded interval" if isinstance(unbounded, list) and t in unbounded else "n/a"),
                     "n": f"{n} / {n_other}" if n is not None and n_other is not None else "n/a"})
    conf = _number(c.extra.get("type_confidence"))
    return {"check_id": c.check_id, "dataset": c.dataset, "models": models, "rows": rows,
            "tolerance": fmt_number(bound) if bound is not None else None,
            "type_confidence": f"{conf:.2%}" if conf is not None else None}


def _objective_view(o: ObjectiveReport, index: int, with_charts: bool) -> dict[str, Any]:
    ref = REFERENCE_LABELS.get(o.reference or "", "reference")
    by_id = {c.check_id: c for c in o.checks}
    claims = [{
        "label": claim_label(cv.claim, cv.args),
        "claim": cv,
        "evidence": [describe_check(by_id[i], ref) for i in cv.checks if i in by_id],
    } for cv in o.claims]
    checks = [{
        "check": c,
        "metric": metric_label(c.metric),
        "where": where_text(c),
        "threshold": _threshold_cell(c),
        "status": c.status,
        "values": {m: fmt_interval(c, m) for m in plots.MODEL_ORDER},
        "decision": decision_text(c),
        "how": c.decision.how if c.decision is not None else "",
        "intervals": _interval_note(c),
        "findings": list(c.findings),
        "details": _scalar_extras(c),
    } for c in o.checks]
    training: dict[str, Any] | None = None
    if o.training is not None:
        t = o.training
        forget = [v for v in t.forget_loss if v is not None]
        retain = [v for v in t.retain_loss if v is not None]
        training = {
            "log": t,
            "n_steps": len(t.steps),
            "last_step": t.steps[-1] if t.steps else None,
            "forget": (fmt_number(forget[0]), fmt_number(forget[-1])) if forget else None,
            "retain": (fmt_number(retain[0]), fmt_number(retain[-1])) if retain else None,
            "batch": _batch_text(t.batch) if t.batch else None,
        }
    view: dict[str, Any] = {
        "o": o,
        "anchor": f"objective-{index + 1}",
        "reference_label": ref,
        "claims": claims,
        "checks": checks,
        "open_findings": [f for f in o.findings if not f.accepted],
        "accepted": [f for f in o.findings if f.accepted],
        "training": training,
        "utility": [u for u in (_utility_view(c) for c in o.checks) if u is not None],
        "membership": [m for m in (_membership_view(c) for c in o.checks) if m is not None],
        "privleak": [p for p in (_privleak_view(c) for c in o.checks) if p is not None],
        "data": _data_view(o),
        "summary": summarise(o),
        "models_shown": [m for m in plots.MODEL_ORDER if any(c.values.get(m) is not None for c in o.checks)]
        or ["unlearned"],
    }
    if with_charts:  # numbers and plain strings: charts.html.j2 draws them, autoescaped
        prefix = f"o{index + 1}"
        bars = [plots.check_bars(c, f"{prefix}-bars-{i}", ref) for i, c in enumerate(o.checks)]
        rocs = [plots.roc_chart(c, f"{prefix}-roc-{i}", ref) for i, c in enumerate(o.checks)]
        view["charts"] = {
            "glance": plots.claims_at_a_glance(
                o.checks, [(claim_label(cv.claim, cv.args), cv.verdict, cv.checks) for cv in o.claims],
                f"{prefix}-glance"),
            "loss": plots.loss_chart(o.training, f"{prefix}-loss") if o.training else None,
            "bars": [b for b in bars if b is not None],
            "roc": [r for r in rocs if r is not None],
        }
    return view


def _threshold_cell(c: CheckResult) -> str:
    """The plan's threshold, and, for a check decided on another quantity (a gap to the reference, a worst case, a
    p-value's interval), the bound that quantity was held to: so that no reader compares the model values beside it
    with a bound they were not held to (``≤ 0.6 as written; applied as ≤ 0.1 to |AUC − AUC_reference|, …``)."""
    text = threshold_text(c)
    d = c.decision
    if d is None or c.threshold is None:
        return text
    if d.threshold == c.threshold:
        return text if d.value == c.value else f"{text}, applied to {d.quantity}"  # a p-value: its own value
    return f"{text} as written; applied as {OP_SYMBOLS[d.threshold.op]} {fmt_number(d.threshold.value)} to {d.quantity}"


def _interval_note(c: CheckResult) -> str:
    """What kind of interval each of a check's intervals is, as far as report.json shows it (``interval_kinds``):
    ``intervals: unlearned, reference percentile-bootstrap; original Clopper–Pearson exact; decided on paired-bootstrap``."""
    by_kind: dict[str, list[str]] = {}
    for m in plots.MODEL_ORDER:
        if m in c.interval:
            kind = interval_kind(c, m)
            by_kind.setdefault(KINDS[kind].name if kind else "kind not recorded", []).append(m)
    parts = [f"{', '.join(models)} {name}" for name, models in by_kind.items()]
    decided = interval_kind(c)
    if decided is not None:
        parts.append(f"decided on {KINDS[decided].name}")
    if parts:
        return "intervals: " + "; ".join(parts)
    return "no intervals: point values" if any(c.values.get(m) is not None for m in plots.MODEL_ORDER) else ""


def _glossary(report: Report) -> dict[str, list[dict[str, str]]]:
    """The terms a reader meets in this report: the general ones, then each metric it shows and, when it
    judges membership, each attack (from the catalog: its summary and source)."""
    shown = {c.metric for o in report.objectives for c in o.checks}
    metrics = [{"term": m.label, "meaning": m.summary, "source": m.source} for m in METRICS.values() if m.name in shown]
    membership = any(c.extra.get("gap_by_type") for o in report.objectives for c in o.checks)
    attacks = [{"term": a.label, "meaning": a.summary, "source": a.source}
               for a in MEMBERSHIP_ATTACKS.values()] if membership else []
    checks = [c for o in report.objectives for c in o.checks]
    kinds = [{"term": KINDS[k].term, "meaning": KINDS[k].meaning, "source": KINDS[k].source} for k in kinds_in(checks)]
    return {"general": [{"term": t.term, "meaning": t.meaning, "source": t.source} for t in TERMS],
            "intervals": kinds, "metrics": metrics, "attacks": attacks}


def _context(report: Report, with_charts: bool) -> dict[str, Any]:
    counts = Counter(cv.verdict for o in report.objectives for cv in o.claims)
    return {
        "report": report,
        "objectives": [_objective_view(o, i, with_charts) for i, o in enumerate(report.objectives)],
        "counts": [(v, counts[v]) for v in ("pass", "fail", "inconclusive", "not_evaluated", "cannot_be_met") if counts[v]],
        "n_claims": sum(counts.values()),
        "audit": report.audit,
        "how_to_read": HOW_TO_READ,
        "glossary": _glossary(report),
        "exit_codes": EXIT_CODE_TEXT,
        "notation": notation(report) + " " + COMPILER_NOTE + " Each is explained in full under its objective's "
                    "compiler findings or accepted risks.",
    }


def render_chart(chart: plots.Chart) -> str:
    """One chart as its inline SVG (``charts.html.j2``, autoescaped), as report.html shows it."""
    draw = getattr(environment().get_template("charts.html.j2").make_module(), "chart")  # noqa: B009 - a macro
    return str(draw(chart))


def render_markdown(report: Report) -> str:
    """The review text: headline verdict, claims with their evidence, findings, audit trail."""
    return environment().get_template("report.md.j2").render(**_context(report, with_charts=False))


def render_html(report: Report) -> str:
    """The same content as one offline HTML file: inline CSS, inline SVG plots, no scripts."""
    return environment().get_template("report.html.j2").render(**_context(report, with_charts=True))


def write_reports(report: Report, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``out_dir`` (created if needed).

    All three are rendered before any is written, so a rendering error leaves no partial set."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "json": report.model_dump_json(indent=2) + "\n",
        "md": render_markdown(report),
        "html": render_html(report),
    }
    paths = {kind: out / f"report.{kind}" for kind in texts}
    for kind, text in texts.items():  # each whole or absent, never written through a link planted at its name
        atomic_write_text(paths[kind], text, within=out)
    return paths
