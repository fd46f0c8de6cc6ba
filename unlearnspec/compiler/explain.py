"""`unlearnspec explain`: the page of a diagnostic code, or a policy reader's view of a spec.

The spec view is a plain-language table per objective: claim → supported / cannot be verified /
cannot be met → why → what to write instead → the evidence that will decide it.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

from unlearnspec.catalog import CLAIMS, CODES, METRICS, PROBES, UNKNOWN, vocab
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.check import compile
from unlearnspec.compiler.decisions import Facts, probe_names
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.feasibility import concerns
from unlearnspec.compiler.render import diagnostic_dict, printable_lines, render_human
from unlearnspec.compiler.rules.evidence import replaced_defaults
from unlearnspec.markdown import code_span, template_environment


def render_template(name: str, **context: Any) -> str:
    """One of the compiler's templates: ``md``, ``mdcode``, ``mdprose`` put every value of a ``*.md.j2`` through the
    one Markdown escaping function, ``oneline`` keeps a value of a ``*.txt.j2`` on its line."""
    return template_environment("unlearnspec.compiler").get_template(name).render(**context)


def code_page_markdown(code: str) -> str | None:
    page = CODES.get(code)
    if page is None:
        return None
    words = set(vocab.OBJECTIVE_FIELDS + vocab.TARGET_FIELDS + vocab.SCOPE_FIELDS + vocab.PRESERVE_FIELDS
                + vocab.METHOD_FIELDS) | set(vocab.CLAIMS) | set(vocab.METRICS) | {"unlearnspec", "objective"}
    first = page.instead.split()[0] if page.instead.split() else ""
    return render_template("code_page.md.j2", page=page,
                           instead_is_code="\n" in page.instead or first in words)


def explain_code(code: str, fmt: str = "text") -> str | None:
    """A code's page: Markdown (``text``, ``md``), or its catalog entry as JSON (``json``)."""
    if fmt != "json":
        return code_page_markdown(code)
    page = CODES.get(code)
    if page is None:
        return None
    return json.dumps({"format_version": "1", **dataclasses.asdict(page),
                       "references": list(page.references)}, indent=2, ensure_ascii=False) + "\n"


def list_codes(fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps({"format_version": "1", "codes": [
            {"code": c, "name": p.name, "severity": p.severity, "category": p.category, "summary": p.summary}
            for c, p in sorted(CODES.items())]}, indent=2, ensure_ascii=False) + "\n"
    rows = [f"{c}  {p.severity:<7}  {p.name:<34} {p.summary}" for c, p in sorted(CODES.items())]
    return "\n".join(rows) + "\n"


def objective_sentence(obj: Objective) -> str:
    """The objective in one plain sentence, as a policy reader would say it."""
    target = obj.target
    goal = obj.goal.goal.value if obj.goal else "(no goal)"
    name = target.name.value if target else ""
    # the spec's words: quoted, or a code span fenced to fit when they hold a backtick (markdown.code_span)
    shown = code_span(name) if "`" in name else f"“{name}”"
    what = f"{target.kind_value} information about the {target.category.value} {shown}" if target else "(no target)"
    model = obj.model.value if obj.model else "(no model)"
    verb = vocab.GOAL_VERBS.get(goal, goal)
    via = f" in the {obj.goal.via.value}" if obj.goal and obj.goal.via else ""
    release = ""
    if obj.release:
        release = f"; the model is released by {obj.release.mode.value.replace('_', ' ')}"
        if obj.release.precision:
            release += f" at {obj.release.precision.value}"
    method = f", using {code_span(obj.method.name.value)}" if obj.method else ", with a method the compiler chooses"
    if obj.unlearned is not None:  # an audit: the checkpoint is given, not produced here
        stated = obj.method.name.value if obj.method else UNKNOWN
        how = "by a method that is not stated" if stated == UNKNOWN else f"with {code_span(stated)}, as stated"
        method = f": audit the given checkpoint {code_span(obj.unlearned.raw)}, unlearned {how}"
    guarantee = guarantee_words(obj.guarantee.value if obj.guarantee else None)
    return f"{verb} {what} from {code_span(model)}{via}{method}{release}{guarantee}."


def guarantee_words(guarantee: str | None) -> str:
    """The end of an objective's sentence that states its `guarantee` (nothing when the spec states none)."""
    return f"; the spec states {'an' if guarantee[:1] in 'aeiou' else 'a'} {code_span(guarantee)} guarantee" if guarantee else ""


def _evidence_text(row: Any) -> str:
    """Each check of a claim: its bound, where it is measured (the data set, and the probe, attack and its parameters
    where there are any), and ``default`` when the spec's evidence does not state it. Two checks of one metric on
    different data or precisions read as two checks, not one written twice."""
    return _checks_text(getattr(row, "evidence", []) or [])


def _replaced_text(obj: Objective, claim: str, findings: list[Diagnostic]) -> str:
    """After a claim's checks: the defaults that do not decide it because `evidence` names other metrics of its family,
    where UL505 says so (accepted or not), so that the listing shows what the block left out as well as what it
    wrote."""
    c = obj.claim(claim)
    if c is None or not any(d.code == "UL505" and d.claim == claim for d in findings):
        return ""
    return f"; not deciding it, left out by `evidence` (UL505): {_checks_text(replaced_defaults(obj, c))}"


def _checks_text(evidence: list[Any]) -> str:
    items = []
    for ev in evidence:
        d = ev if isinstance(ev, dict) else ev.model_dump()
        op, val = d.get("op"), d.get("value")
        where = [f"on {d['dataset']}"] if d.get("dataset") else []
        if d.get("probe") and d.get("probe") != "direct":
            where.append(f"{d['probe']} prompts")
        where += [f"{k} {v}" for k, v in sorted((d.get("params") or {}).items())]
        where += ["default"] if d.get("source") == "default" else []
        at = f" ({', '.join(where)})" if where else ""
        items.append(f"{d.get('metric')} {op} {val:g}{at}" if isinstance(val, int | float) else f"{d.get('metric')}{at}")
    return ", ".join(items) or "-"


def information_only(facts: Facts, rows: list[Any]) -> list[dict[str, str]]:
    """The probes the plan runs (decision rows P1-P5, as the lowering reads them) that no claim's evidence
    reads: the run measures them and reports them for information, and they decide nothing (row E6)."""
    read = set()
    for row in rows:
        for ev in getattr(row, "evidence", []) or []:
            d = ev if isinstance(ev, dict) else ev.model_dump()
            metric = METRICS.get(str(d.get("metric")))
            probe = d.get("probe") or (metric.probe if metric is not None else None)  # `direct` is left implicit
            if probe:
                read.add(probe)
    run = probe_names(facts, read)
    return [{"probe": p.name, "metric": p.metric} for p in PROBES.values() if p.name in run - read]


def _information_text(obj: Objective, info: list[dict[str, str]]) -> str:
    """What the probes measured for information only are, and what would make each decide: `not_generated`
    reads direct prompts, `robust_to_prompting` the paraphrased and adversarial ones (a claim already made
    needs the probe's metric in `evidence`); in-context prompts supply the target themselves, so no output
    claim is judged on them (UL305)."""
    if not info:
        return ""
    advice: dict[str, list[str]] = {}
    for i in info:
        kind = i["probe"].replace("_", "-")
        if i["probe"] == "in_context":
            continue
        # the claim whose defaults come from the scope and whose evidence reads this probe's metric
        claim = next(c.name for c in CLAIMS.values() if c.from_scope and i["metric"] in c.evidence)
        todo = (f"add a {code_span(i['metric'])} bound to `evidence`" if obj.has_claim(claim) else f"claim {code_span(claim)}")
        advice.setdefault(todo, []).append(kind)
    text = ("Measured for information only, deciding no claim: "
            + ", ".join(f"{i['metric']} ({i['probe'].replace('_', '-')} prompts)" for i in info) + ".")
    if advice:
        text += " To have them decide: " + "; ".join(f"{todo} ({', '.join(kinds)} prompts)"
                                                    for todo, kinds in advice.items()) + "."
    if any(i["probe"] == "in_context" for i in info):
        text += (" In-context prompts put the target's facts in the prompt, so no claim that outputs leave it out "
                 "can be judged on them (UL305): they stay information.")
    return text


def _table(rows: list[dict[str, Any]], widths: tuple[int, ...]) -> str:
    cols = ("Claim", "Status", "Why", "Write instead")
    keys = ("claim", "label", "why", "instead")
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "|" + "|".join(f" {c:<{w}} " for c, w in zip(cols, widths, strict=True)) + "|", line]
    for row in rows:
        cells = [textwrap.wrap(row[k] or "-", w) or ["-"] for k, w in zip(keys, widths, strict=True)]
        height = max(len(c) for c in cells)
        for i in range(height):
            out.append("|" + "|".join(f" {(c[i] if i < len(c) else ''):<{w}} "
                                       for c, w in zip(cells, widths, strict=True)) + "|")
        out.append(line)
    return "\n".join(out)


def _shown_in_table(d: Any, rows: list[dict[str, Any]]) -> bool:
    """Whether finding ``d`` (one with no ``claim`` of its own) is already accounted for by the table.

    It is when a row names its code as a reason or as a caution (notes of supported rows), or when every
    claim it bears on is already decided by an error: the table says that claim cannot be met and what to
    write instead, and repeating a secondary warning about it under "Other findings" only adds noise
    (``unlearnspec check`` still lists every finding).
    """
    if any(d.code in r["codes"] or (r["status"] == "supported" and d.code in r["notes"]) for r in rows):
        return True
    touched = [r for r in rows if concerns(d, r["claim"])]
    return d.severity != "error" and bool(touched) and all(r["status"] == "cannot_be_met" for r in touched)


def explain_spec(path: Path, fmt: str = "text") -> tuple[str, int]:
    """The spec's explanation (or, when it cannot be analysed, its diagnostics) and the exit code."""
    text, errors, code = explain_document(path, fmt)
    return text or errors, code


def error_document(message: str, file: str | None = None, diagnostics: list[dict[str, Any]] | None = None) -> str:
    """What ``explain --format json`` prints when there is nothing to explain: the error, and the spec's
    diagnostics when it has some (the human text goes to stderr)."""
    return json.dumps({"format_version": "1", "file": file, "objectives": [], "error": message,
                       "diagnostics": diagnostics or []}, indent=2, ensure_ascii=False) + "\n"


def explain_document(path: Path, fmt: str = "text") -> tuple[str, str, int]:
    """The explanation of a spec for stdout, the errors for stderr (when the spec cannot be analysed: its
    diagnostics; ``json`` then also gets an error document) and the exit code. The text format shows the spec's
    strings as :func:`~unlearnspec.compiler.render.printable_lines` does: an ESC or BEL in a title cannot act on
    a terminal."""
    result = compile(path, "analyse")
    if result.spec is None or result.analysis is None:
        code = 2 if result.unreadable else 1
        human = render_human([result])
        if fmt != "json":
            return "", human, code
        errors = [d for d in result.diagnostics if d.severity == "error"]
        message = errors[0].message if errors else f"{code_span(result.path)} cannot be explained"
        return error_document(message, result.path, [diagnostic_dict(d) for d in result.diagnostics]), human, code
    objectives: list[dict[str, Any]] = []
    for analysed in result.analysis:
        obj, mine = analysed.objective, analysed.findings
        rows: list[dict[str, Any]] = []
        for r in analysed.claims:
            rows.append({"claim": r.claim, "status": r.status, "label": r.label,
                         "why": r.why, "instead": r.instead,
                         "evidence": _evidence_text(r) + _replaced_text(obj, r.claim, mine),
                         "codes": list(r.reasons), "notes": list(r.notes)})
        other = [d for d in mine if d.claim is None and not _shown_in_table(d, rows)]
        rows += [{"claim": r.claim, "status": r.status, "label": r.label, "why": r.why,
                  "instead": r.instead, "evidence": _evidence_text(r), "codes": [], "notes": []}
                 for r in analysed.implied_claims]
        sentence = objective_sentence(obj)
        info = information_only(analysed.facts, [*analysed.claims, *analysed.implied_claims])
        objectives.append({
            "name": obj.name, "title": obj.title.value if obj.title else None, "sentence": sentence,
            "guarantee": obj.guarantee.value if obj.guarantee else None,
            "sentence_wrapped": textwrap.fill(sentence, 100), "rows": rows, "other": other,
            "table": _table(rows, (29, 18, 35, 35)) if rows else "(this objective makes no claims)",
            "information_only": info,
            "information_text": _information_text(obj, info) if rows else "",
        })
    code = 1 if result.errors else 0
    if fmt == "json":
        doc = [{k: v for k, v in o.items() if k not in ("table", "sentence_wrapped", "other", "information_text")} |
               {"other": [d.model_dump(mode="json") for d in o["other"]]} for o in objectives]
        return json.dumps({"format_version": "1", "file": result.path, "objectives": doc}, indent=2) + "\n", "", code
    legend = ("supported: the claim can be met and checked with the evidence listed.\n"
              "cannot be verified: it may hold, but no evaluation can show all of it as written; the run's verdict then "
              "covers only the evidence listed, and accepted risks stay listed.\n"
              "Bounds on memorisation, membership and relearning are read against the retrained reference on the same "
              "items when the plan has one (docs/reports.md).\n"
              "cannot be met: no unlearning method can deliver it; write the suggested objective instead.")
    if fmt == "md":  # every value through the one Markdown escaping function (unlearnspec/markdown.py)
        return render_template("explain_spec.md.j2", objectives=objectives, legend=legend), "", code
    return printable_lines(render_template("explain_spec.txt.j2", objectives=objectives, legend=legend)), "", code


# -- docs/rules/: the registry as checked-in pages ------------------------------------------------

RULES_INDEX_INTRO = """\
# Diagnostic codes

Every code `unlearnspec` reports, one page each. These pages are generated from the code registry
(`unlearnspec explain CODE` prints the same page); do not edit them by hand: run
`python scripts/gen_rule_docs.py` (or `UNLEARNSPEC_UPDATE_GOLDENS=1 pytest tests/test_docs_rules.py`),
and `tests/test_docs_rules.py` fails while they are out of date.

- **syntax** (UL1xx) and **resolve** (UL2xx): the spec is not well formed or names something that
  does not exist;
- **feasibility** (UL3xx errors: cannot be met; UL4xx warnings: cannot be verified; UL5xx notes:
  cautions; UL6xx: the planner): what unlearning can and cannot deliver (see `FRAMEWORK.md`);
- **runtime** (RT1xx: a model that cannot be loaded; UL7xx: a run that cannot start);
- **audit** (UL801–UL819): a ledger, a signature or a card that does not hold;
- **data** (UL821 and up): `unlearnspec data import` cannot convert a benchmark's files.
"""


def rules_index_markdown() -> str:
    """``docs/rules/README.md``: one table row per registered code, linking its page (``templates/rules_index.md.j2``)."""
    return render_template("rules_index.md.j2", intro=RULES_INDEX_INTRO, codes=sorted(CODES.items()))


def rule_doc_files() -> dict[str, str]:
    """Every file of ``docs/rules/`` by name: ``CODE.md`` per registered code, and ``README.md``."""
    files = {f"{code}.md": code_page_markdown(code) or "" for code in sorted(CODES)}
    files["README.md"] = rules_index_markdown()
    return files
