"""The chain runtime on a tiny local model (no retrained reference: holdout-calibrated), fast enough for
the default run: steps in order, each from the previous step's model, earlier requests re-checked after
each step, drift in the report, one ledger line per request chained model to model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fixtures.chains import chain_spec  # noqa: E402
from test_eval_tiny_model import fresh_model, people, tokenizer  # noqa: E402

from unlearnspec.audit.ledger import ledger_name, verify_file  # noqa: E402
from unlearnspec.cli import main  # noqa: E402

NAMES = ("first", "second", "third")


def _jsonl(path: Path, records: list) -> None:  # type: ignore[type-arg]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in records), encoding="utf-8")


def _spec() -> str:
    people_ = [people().forget[2 * i].text.split(" was ")[0] for i in range(len(NAMES))]  # type: ignore[union-attr]
    return chain_spec([(name, person, f"data/f{i}.jsonl", "grad_ascent { steps 2 }")
                       for i, (name, person) in enumerate(zip(NAMES, people_, strict=True))],
                      model="model", holdout="data/holdout.jsonl")


def test_a_chain_runs_in_order_from_each_previous_model_and_rechecks_earlier_requests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    model = fresh_model()
    model.save_pretrained(tmp_path / "model", safe_serialization=True)
    tokenizer().save_pretrained(tmp_path / "model")
    p = people()
    for i in range(3):
        _jsonl(tmp_path / "data" / f"f{i}.jsonl", p.forget[2 * i: 2 * i + 2])
    _jsonl(tmp_path / "data" / "retain.jsonl", p.retain)
    _jsonl(tmp_path / "data" / "holdout.jsonl", p.holdout)
    (tmp_path / "chain.unlearn").write_text(_spec(), encoding="utf-8")

    from unlearnspec.runtime import loading

    loaded: list[str] = []  # every model folder the run loads, in order
    real = loading.load_model

    def spy(source: str, **kw: object) -> object:
        loaded.append(str(source))
        return real(source, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "load_model", spy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNLEARNSPEC_THREADS", "1")
    code = main(["run", "chain.unlearn", "--out", "run", "--ledger", "ledger", "-q"])
    assert code in (0, 1, 3), capsys.readouterr().err
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    (chain,) = report["chains"]
    assert chain["links"] == list(NAMES) and [s["request"] for s in chain["steps"]] == list(NAMES)
    assert [[r["request"] for r in s["rechecks"]] for s in chain["steps"]] == [[], ["first"], ["first", "second"]]
    own = {o["name"]: o for o in report["objectives"]}
    for step in chain["steps"][1:]:
        for rc in step["rechecks"]:  # every claim of the earlier request, its verdict then as its own run gave it
            earlier = own[rc["request"]]
            assert {c["claim"]: c["then"] for c in rc["claims"]} == {c["claim"]: c["verdict"] for c in earlier["claims"]}
            assert {c["check_id"] for c in rc["checks"]} == {c["check_id"] for c in earlier["checks"]}
            # Computed again on the step's model, not copied: the per-item scores moved (the checks' own
            # values may not, as p-values and AUCs over two items take few values).
            saved = json.loads((run / "objectives" / step["request"] / "drift" / f"{rc['request']}.json").read_text())
            drift = saved["results"]  # saved with what it was computed on, which a resume compares
            then_items = {c["check_id"]: c["per_item"].get("unlearned") for c in earlier["checks"]}
            assert any(then_items[k] and c["per_item"].get("unlearned") != then_items[k] for k, c in drift.items())
    # Steps 2 and 3 unlearn from the model the previous step saved.
    state = json.loads((run / "run.json").read_text())
    # run.json may name them relative to the run folder
    saved = [str(run / state["stages"][f"{n}/unlearn"]["detail"]["model_dir"]) for n in NAMES]
    assert all(saved) and saved[0] in loaded and saved[1] in loaded
    assert loaded.index(saved[0]) < loaded.index(saved[1])
    # The budget (one approximate request) is exceeded by three.
    assert chain["budget_exceeded"] and "retrain" in chain["recommendation"]
    # Each earlier request's re-check is on disk (resume reuses it).
    assert (run / "objectives" / "third" / "drift" / "first.json").is_file()
    # One ledger line per request; each starts from the previous one's weights.
    v = verify_file(tmp_path / "ledger" / ledger_name("model"))
    assert v.ok and [e.request_id for e in v.entries] == list(NAMES)
    assert v.entries[1].model_before == v.entries[0].model_after != v.entries[0].model_before
    assert v.entries[2].drift["rechecks"].keys() == {"first", "second"}  # type: ignore[union-attr]
    # A run killed after the last step's re-checks resumes to the same chain report, re-using the saved
    # drift instead of computing it again, and is not recorded in the ledger twice.
    drift = run / "objectives" / "third" / "drift" / "first.json"
    before = drift.stat().st_mtime_ns
    state["stages"]["third/verdict"]["status"] = "running"
    state["finished_at"] = None
    (run / "run.json").write_text(json.dumps(state), encoding="utf-8")
    (run / "report.json").unlink()
    assert main(["run", "--resume", "run", "--ledger", "ledger", "-q"]) == code
    again = json.loads((run / "report.json").read_text())
    assert again["chains"] == report["chains"]
    assert drift.stat().st_mtime_ns == before
    assert len(verify_file(tmp_path / "ledger" / ledger_name("model")).entries) == len(NAMES)
