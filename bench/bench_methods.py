"""What each unlearning method achieves on the example privacy spec (a quality benchmark, not a test).

Why: the example spec (`specs/erase-jane-doe.unlearn`) names `npo`. A reviewer's next question is
whether another method would have met the claims. This runs the same spec once per method — the
`method` line swapped, nothing else — on a built-in model (``--model``, default `builtin:tiny-bios`;
the spec's `model` line is swapped too), and prints each run's verdicts and
the numbers that decide them, beside the retrained reference. Methods that cannot serve a claim
(refusal and the output filter cannot remove anything) are run with ``goal suppression`` and
``--allow-infeasible``, so their removal claims show as "cannot be met" and their measurable checks
still show.

    .venv/bin/python bench/bench_methods.py                    # every method (~15 s each, warm cache)
    .venv/bin/python bench/bench_methods.py --methods npo retrain
    .venv/bin/python bench/bench_methods.py --model builtin:tiny-bios-chat   # the Llama chat built-in

Numbers are deterministic on one machine; bench/README.md records a run.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from unlearnspec.builtin.recipe import RECIPES
from unlearnspec.report.verdict import fmt_number

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "erase-jane-doe.unlearn"
METHODS = ["retrain", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu", "refusal", "filter"]
SUPPRESSION = {"refusal", "filter"}
SHOWN = [("verbatim_rouge@forget", "verbatim"), ("membership_auc@forget", "MIA AUC"),
         ("forget_quality@forget", "forget q."), ("relearn_recovery@relearn", "relearn gap"),
         ("relearn_recovery@relearn_related", "related relearn gap"),
         ("retain_utility_drop@retain", "retain drop %"), ("neighbor_utility_drop@neighbors", "neighb. drop %")]
SHORT = {"pass": "pass", "fail": "FAIL", "not_evaluated": "n/e", "cannot_be_met": "CBM", "inconclusive": "inc"}


def run_one(method: str, work: Path, model: str = "builtin:tiny-bios") -> dict[str, object]:
    text = re.sub(r"(?m)^(\s*)method\s+\S+", rf"\1method {method}", SPEC.read_text(encoding="utf-8"), count=1)
    text = re.sub(r'(?m)^(\s*)model\s+"[^"]*"', rf'\1model   "{model}"', text, count=1)
    if method in SUPPRESSION:  # a suppression method with `goal removal` is an error in the spec (UL209)
        text = re.sub(r"(?m)^(\s*)goal\s+removal", r"\1goal suppression", text, count=1)
    spec = work / f"{method}.unlearn"
    spec.write_text(text, encoding="utf-8")
    out = work / f"run-{method}"
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "unlearnspec", "run", str(spec), "--out", str(out), "--quiet",
                           "--allow-infeasible"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    report_path = out / "report.json"
    if not report_path.exists():
        return {"method": method, "error": (done.stderr or done.stdout).strip().splitlines()[-1:], "wall": wall}
    report = json.loads(report_path.read_text())
    obj = report["objectives"][0]
    checks = {c["check_id"]: c for c in obj["checks"]}
    return {"method": method, "overall": report["overall"], "wall": wall, "checks": checks,
            "claims": {c["claim"]: c["verdict"] for c in obj["claims"]}}


def fmt(check: dict[str, object] | None, who: str, deciding: bool = True) -> str:
    """The number a check decides on, with its interval: the decision's quantity (a gap to the reference,
    a p-value, ...) where the check has one, else the model's value; ``deciding=False`` gives ``who``'s
    own value and interval (the reference row)."""
    if check is None:
        return "-"
    values, intervals = check["values"], check.get("interval") or {}
    assert isinstance(values, dict) and isinstance(intervals, dict)
    decision = check.get("decision")
    if deciding and isinstance(decision, dict):
        v, iv = decision.get("value"), decision.get("interval")
    else:
        v, iv = values.get(who), intervals.get(who)
    if v is None or (who == check.get("decided_on") and check.get("not_evaluated_reason")):
        return "n/e"
    return f"{fmt_number(v)} [{fmt_number(iv[0])}, {fmt_number(iv[1])}]" if iv else fmt_number(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--model", default="builtin:tiny-bios", choices=list(RECIPES),
                    help="the built-in model the spec runs on")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="unlearnspec-methods-") as tmp:
        work = Path(tmp)
        (work / "data").symlink_to(SPEC.parent / "data")
        rows = [run_one(m, work, args.model) for m in args.methods]
    claims = ["removed", "not_generated", "robust_to_finetuning", "side_effects_within_tolerance"]
    print(f"{SPEC.relative_to(ROOT)} on {args.model}, one run per method (the spec's thresholds: verbatim "
          "<= 0.2, MIA AUC <= 0.6, forget quality >= 0.05, relearn <= 0.5, drops <= 2%)\n")
    head = ["method", "verdict", *[c[:13] for c in claims], *[label for _, label in SHOWN], "wall s"]
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    reference_row: list[str] | None = None
    for r in rows:
        if "error" in r:
            print(f"{r['method']} | could not run: {r['error']}")
            continue
        verdicts = r["claims"]
        checks = r["checks"]
        assert isinstance(verdicts, dict) and isinstance(checks, dict)
        cells = [str(r["method"]), str(r["overall"]).upper(), *[SHORT.get(verdicts.get(c, ""), "-") for c in claims]]
        cells += [fmt(checks.get(cid), str(checks[cid]["decided_on"]) if cid in checks else "unlearned")
                  for cid, _ in SHOWN]
        cells.append(f"{r['wall']:.0f}")
        print(" | ".join(cells))
        if reference_row is None:
            reference_row = ["retrained reference", "", *["" for _ in claims],
                             *[fmt(checks.get(cid), "reference", deciding=False) for cid, _ in SHOWN], ""]
    if reference_row is not None:
        print(" | ".join(reference_row))
    print("\nn/e: not evaluated (the report says why); CBM: cannot be met (a compiler error, run with "
          "--allow-infeasible); inc: inconclusive (the interval straddles the bound, or the check cannot fail at these numbers). Each cell is what its check "
          "decides on, with its 95% interval: for membership the worst gap |AUC_unlearned - AUC_reference| over item "
          "types and attacks, for forget quality the KS p-value, for relearning the recovery minus the reference's "
          "after the same fine-tune (on half the forget set; on related neighbour records), else the unlearned "
          "model's value (the served system for `filter`); the last row is the retrained model's own values.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
