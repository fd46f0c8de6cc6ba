"""What a chain's re-checks are computed on, on tiny local models (fast enough for the default run): each earlier
request as its own run checked it — behind its own output filter, against its own reference model, at its plan's
confidence and seed — and a run resumed over a drift file an older unlearnspec wrote (which recorded none of that)
computes it again instead of crashing or reusing it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from test_eval_tiny_model import fresh_model, people, tiny_lm, tokenizer  # noqa: E402

from unlearnspec.catalog.vocab import RECHECK_REFERENCES  # noqa: E402
from unlearnspec.cli import main  # noqa: E402
from unlearnspec.plan import Plan  # noqa: E402


def _jsonl(path: Path, records: list) -> None:  # type: ignore[type-arg]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in records), encoding="utf-8")


def _save(model: Any, where: Path) -> None:
    model.save_pretrained(where, safe_serialization=True)
    tokenizer().save_pretrained(where)


def _objective(name: str, i: int, *, after: str | None = None, method: str = "grad_ascent { steps 2 }",
               goal: str = "removal", claims: str = "removed", extra: str = "") -> str:
    person = people().forget[3 * i].text.split(" was ")[0]  # type: ignore[union-attr]
    link = f'  after "{after}"\n' if after else ""
    return f'''objective "{name}" {{
{link}  model "model"
  release api precision fp32
  target person "{person}" {{
    forget  "data/f{i}.jsonl"
    holdout "data/holdout.jsonl"
  }}
  goal {goal}
  method {method}
  preserve {{
    retain  "data/retain.jsonl"
    utility drop <= 50%
  }}
  claims {{
    {claims}
  }}
{extra}}}
'''


def _folder(tmp_path: Path, *objectives: str) -> None:
    _save(tiny_lm("original"), tmp_path / "model")
    p = people()
    for i in range(2):
        _jsonl(tmp_path / "data" / f"f{i}.jsonl", p.forget[3 * i: 3 * i + 3])
    _jsonl(tmp_path / "data" / "retain.jsonl", p.retain)
    _jsonl(tmp_path / "data" / "holdout.jsonl", p.holdout)
    (tmp_path / "chain.unlearn").write_text("unlearnspec 1\n\n" + "\n".join(objectives), encoding="utf-8")


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNLEARNSPEC_THREADS", "1")
    return main([*args, "--no-ledger", "-q"])


def _resume_last_step(run: Path) -> None:
    """Mark the last step's verdict unfinished, as a run killed there leaves it."""
    state = json.loads((run / "run.json").read_text())
    state["stages"]["second/verdict"]["status"] = "running"
    state["finished_at"] = None
    (run / "run.json").write_text(json.dumps(state), encoding="utf-8")
    (run / "report.json").unlink()


def test_a_filter_request_is_rechecked_behind_its_own_filter_and_resumes_over_an_old_drift_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The first request is an output filter: its claims are decided on the served system (the model behind the
    filter). Re-checked after the second request, its served checks are still the served system's — the later model
    behind the filter the first request saved — not the bare model's (which left them not evaluated, and crashed the
    report building on a result both inconclusive and not evaluated)."""
    _folder(tmp_path, _objective("first", 0, method="filter", goal="suppression via system", claims="not_generated"),
            _objective("second", 1, after="first"))
    code = _run(tmp_path, monkeypatch, "run", "chain.unlearn", "--out", "run")
    assert code in (0, 1, 3), capsys.readouterr().err
    run = tmp_path / "run"
    plan = Plan.model_validate_json((run / "plan.json").read_text())
    served = {c.id for c in plan.objectives[0].checks if c.model == "served"}
    assert served  # the filter's claims are decided on the served system
    guard = run / "objectives" / "first" / "unlearn" / "guard.json"
    drift_file = run / "objectives" / "second" / "drift" / "first.json"
    drift = json.loads(drift_file.read_text())
    assert drift["basis"]["guard_sha256"] == hashlib.sha256(guard.read_bytes()).hexdigest()
    for cid in served:
        got = drift["results"][cid]
        assert got["decided_on"] == "served" and got["values"]["served"] is not None, cid
    report = json.loads((run / "report.json").read_text())
    (recheck,) = report["chains"][0]["steps"][1]["rechecks"]
    rows = {c["check_id"]: c for c in recheck["checks"]}
    assert all(rows[cid]["deciding_now"]["model"] == "served" and rows[cid]["status_now"] != "not_evaluated"
               for cid in served)
    claim = next(c for c in recheck["claims"] if c["claim"] == "not_generated")
    assert claim["now"] != "not_evaluated"

    # A drift file as the code before this fix wrote it: the results alone, the served checks computed on the bare
    # model (decided on `unlearned`, inconclusive). A resume computes it again on the run's basis; no crash.
    old = {cid: {**r, "decided_on": "unlearned", "inconclusive": True, "passed": None, "decision": None}
           if cid in served else r for cid, r in drift["results"].items()}
    drift_file.write_text(json.dumps(old), encoding="utf-8")
    _resume_last_step(run)
    assert _run(tmp_path, monkeypatch, "run", "--resume", "run") == code
    again = json.loads(drift_file.read_text())
    assert again == drift
    assert json.loads((run / "report.json").read_text())["chains"] == report["chains"]


def test_earlier_requests_are_rechecked_against_their_own_reference_at_their_confidence_and_seed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each request names its own reference model and asks for 99% intervals, with seed 7. Re-checked after the
    second request, the first is judged against its own reference (ref1, not the second's ref2), at 99% and with
    the plan's seed: so everything the re-check measures on models that did not change — the original and the
    reference — comes out exactly as the first request's own run measured it, values and intervals alike."""
    _save(tiny_lm("reference"), tmp_path / "ref1")
    _save(fresh_model(seed=11), tmp_path / "ref2")
    evidence = "  evidence {\n    confidence 99%\n  }\n  seed 7\n"
    _folder(tmp_path,
            _objective("first", 0, extra=evidence).replace("  release api", '  reference "ref1"\n  release api'),
            _objective("second", 1, after="first", extra=evidence).replace("  release api",
                                                                             '  reference "ref2"\n  release api'))
    code = _run(tmp_path, monkeypatch, "run", "chain.unlearn", "--out", "run")
    assert code in (0, 1, 3), capsys.readouterr().err
    run = tmp_path / "run"
    state = json.loads((run / "run.json").read_text())
    ref1 = (tmp_path / "ref1").resolve()
    assert (run / state["stages"]["first/reference"]["detail"]["path"]).resolve() == ref1  # the first run's own
    drift = json.loads((run / "objectives" / "second" / "drift" / "first.json").read_text())
    assert Path(drift["basis"]["reference"]).resolve() == ref1 and drift["basis"]["strategy"] == "model"
    assert (drift["basis"]["confidence"], drift["basis"]["seed"]) == (0.99, 7)
    then = json.loads((run / "objectives" / "first" / "checks.json").read_text())
    compared = 0
    for cid, now in drift["results"].items():
        assert now["confidence"] in (None, 0.99)
        for model in ("original", "reference"):
            if then[cid]["values"][model] is None:
                continue
            assert now["values"][model] == then[cid]["values"][model], (cid, model)
            assert now["interval"].get(model) == then[cid]["interval"].get(model), (cid, model)
            compared += 1
    assert compared and any(then[c]["values"]["reference"] is not None for c in then)
    report = json.loads((run / "report.json").read_text())
    (recheck,) = report["chains"][0]["steps"][1]["rechecks"]
    assert recheck["reference"] == RECHECK_REFERENCES["model"] and recheck["same_reference"] is True
    assert any(c["deciding_now"].get("confidence") == 0.99 for c in recheck["checks"])
    md = (run / "report.md").read_text()
    assert "at 99% confidence" in md and "judged against different references" not in md


# --- the cumulative utility drop: the worse of retain and neighbours ---------------------------------------------

Interval = tuple[float, float] | None


@pytest.mark.parametrize(("retain", "neighbors"), [
    ((3.5, (3.0, 4.0)), (5.0, (4.0, 6.0))),  # neighbours' interval reaches past the budget, retain's does not
    ((6.5, (6.0, 7.0)), (6.0, (4.0, 9.0))),  # retain wholly above it: exceeded, whatever reaches higher
    ((1.5, (1.0, 2.0)), (2.5, (2.0, 3.0))),  # both within: the higher upper end is shown
    ((1.5, (1.0, 2.0)), (None, None)),  # neighbours planned but not measured: not shown within the budget
    ((6.5, (6.0, 7.0)), (None, None)),  # ... unless the measured one already exceeds it
    ((4.0, None), (4.5, None)),  # intervals off: the values
])
def test_the_budget_reads_the_worse_of_retain_and_neighbours(retain: tuple[float | None, Interval],
                                                             neighbors: tuple[float | None, Interval]) -> None:
    """Review finding 5: the spec's `utility drop` bounds both sets and UL413 reads both, so the run's budget does
    too: a chain exceeds a budget of 5% when either set's drop lies wholly above it, and is shown within it only
    when both sets' drops are measured and lie within it. The report says which set its number is. A quantized
    twin of a utility check (the release precision's) is the release's transform, not a step of the chain: its drop,
    far above the budget here, is not read."""
    from test_report import make_plan, passing_results, result

    from unlearnspec.plan import MetricCheck, Threshold
    from unlearnspec.report import build_objective_report
    from unlearnspec.report.chain import ChainBudget, ChainStep, build_chain_report
    from unlearnspec.runtime.chain import utility_drop

    sets = {"retain": ("retain_utility_drop@retain", "retain_utility_drop", *retain),
            "neighbors": ("neighbor_utility_drop@neighbors", "neighbor_utility_drop", *neighbors)}
    op = make_plan().objectives[0]
    op = op.model_copy(update={"checks": [*op.checks, *(
        MetricCheck(id=cid, metric=metric, dataset=name, threshold=Threshold(op="<=", value=50.0))
        for name, (cid, metric, _, _) in sets.items()),
        MetricCheck(id="retain_utility_drop@retain@quantize_int4", metric="retain_utility_drop", dataset="retain",
                    threshold=Threshold(op="<=", value=50.0), model="attacked", probe="quantize")]})
    results = passing_results()
    for name, (cid, metric, value, iv) in sets.items():
        results[cid] = result(cid, metric, "<=", 50.0, unlearned=value, original=None if value is None else 0.8,
                              interval={"unlearned": iv} if iv else {}, n={"unlearned": 40} if value is not None
                              else {}).model_copy(update={"dataset": name})
    results["retain_utility_drop@retain@quantize_int4"] = result(
        "retain_utility_drop@retain@quantize_int4", "retain_utility_drop", "<=", 50.0, attacked=90.0, unlearned=1.0,
        decided_on="attacked", attack="quantize", probe="quantize", interval={"attacked": (85.0, 95.0)},
        n={"attacked": 40}).model_copy(update={"dataset": "retain"})
    report = build_objective_report(op, results)
    twin = next(c for c in report.checks if c.check_id == "retain_utility_drop@retain@quantize_int4")
    assert twin.status == "fail" and twin.value == 90.0  # in the report, decided: and still not the chain's drop
    budget = 5.0
    u, values = utility_drop(report, budget)
    step = ChainStep(request="a", link_hash="0" * 64, method="npo", approximate=True, family="approximate",
                     utility_drop=u.drop, utility_drop_interval=u.interval, utility_n=u.n, utility_set=u.set,
                     overall="pass")
    chain = build_chain_report(["a"], [step], ChainBudget(utility_drop=budget))
    # the reference reading, set by set
    bounds = {k: (iv or (v, v)) for k, (_, _, v, iv) in sets.items() if v is not None}
    unmeasured = [k for k, (_, _, v, _) in sets.items() if v is None]
    exceeded = any(lo > budget for lo, _ in bounds.values())
    assert chain.budget_exceeded == exceeded
    assert chain.budget_undecided == (not exceeded and (bool(unmeasured) or any(hi > budget for _, hi in bounds.values())))
    assert values == {k: v for k, (_, _, v, _) in sets.items() if v is not None}
    if u.drop is None:
        assert u.set in unmeasured and "not measured" in step.drop_text
    else:
        worst = max(bounds, key=lambda k: (bounds[k][0] > budget, bounds[k][1] > budget, bounds[k][1]))
        assert (u.set, u.drop) == (worst, sets[worst][2])
        assert step.drop_text.endswith({"retain": "on the retain set", "neighbors": "on the neighbours"}[worst])
