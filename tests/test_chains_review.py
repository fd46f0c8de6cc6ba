"""A review of chains of requests as a privacy team would use them, one request a month: what the compiler says
about a link to another file that goes wrong further along, and what the run does with a plan whose chain no
longer matches its objectives (a plan run as given, `--trust-plan`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_chains import objective, write

from unlearnspec.compiler.check import check_file, plan_file
from unlearnspec.plan import Plan
from unlearnspec.report.chain import link_problems

DATA = Path(__file__).parent / "rules" / "data"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(DATA, tmp_path / "data")
    return tmp_path


def _chain_findings(path: Path) -> list:  # type: ignore[type-arg]
    return [d for d in check_file(path).diagnostics if d.code in ("UL216", "UL217")]


# -- the compiler: a link to another file that goes wrong past its first step --------------------------------


def test_a_missing_name_further_along_another_files_chain_is_said_as_such_and_gets_no_fix_here(folder: Path) -> None:
    # x.unlearn's `p` continues `q`, which x.unlearn does not define (it has `qq`); this spec's link is right
    write(folder, "x.unlearn", objective("p", after="q"), objective("qq"))
    here = write(folder, "here.unlearn", objective("A", after="x.unlearn#p"))
    (d,) = _chain_findings(here)
    assert d.code == "UL216" and d.objective == "A"
    # not "`after` names `q`": this spec's `after` names `x.unlearn#p`, which exists
    assert d.message == ("the chain through `x.unlearn#p` continues `q` from `p` in `x.unlearn`, which is not an "
                         "objective in `x.unlearn`")
    # the `after` at fault is p's, in the other file: no edit of this spec's link can fix it
    assert d.fixes == []
    assert any("`p` in `x.unlearn`" in h for h in d.help)
    assert "did you mean `qq` there?" in d.help  # the other file's names, never `p` itself


def test_a_cycle_among_other_files_does_not_say_it_comes_back_here(folder: Path) -> None:
    write(folder, "loop.unlearn", objective("p", after="q"), objective("q", after="p"))
    here = write(folder, "here.unlearn", objective("A", after="loop.unlearn#p"))
    (d,) = _chain_findings(here)
    assert d.code == "UL217" and "comes back to `A`" not in d.message
    assert d.message.startswith("the chain through `loop.unlearn#p` runs into a cycle") and "`loop.unlearn`" in d.message
    # a cycle that does come back to this objective still says so
    write(folder, "x.unlearn", objective("x", after="y.unlearn#y"))
    back = write(folder, "y.unlearn", objective("y", after="x.unlearn#x"))
    (d,) = _chain_findings(back)
    assert d.code == "UL217" and d.message == "the chain through `x.unlearn#x` comes back to `y`"


def test_a_missing_file_further_along_is_named_where_this_spec_finds_it(folder: Path) -> None:
    (folder / "sub").mkdir()
    write(folder, "sub/x.unlearn", objective("p", after="gone.unlearn#r"))
    here = write(folder, "here.unlearn", objective("A", after="sub/x.unlearn#p"))
    (d,) = _chain_findings(here)
    assert d.code == "UL216" and d.fixes == []
    # the path as written in sub/x.unlearn is relative to sub/: the message says where it leads from here
    assert "`sub/gone.unlearn` is not a spec file that can be read" in d.message


# -- the run: a plan's chain is checked against its objectives -------------------------------------------------


def _three(folder: Path) -> Plan:
    budget = "  budget {\n    utility  drop <= 5%\n    requests 3\n  }\n"
    path = write(folder, "chain.unlearn", objective("a", extra=budget), objective("b", after="a"),
                 objective("c", after="b"))
    plan, result = plan_file(path)
    assert plan is not None, [d.message for d in result.diagnostics]
    return plan


def _edited(plan: Plan, edit) -> Plan:  # type: ignore[no-untyped-def]
    data = json.loads(plan.canonical_json())
    edit(data)
    return Plan.model_validate(data).sealed()  # sealed again, as whoever edited it by hand would


def test_a_plans_own_chain_holds_together(folder: Path) -> None:
    assert link_problems(_three(folder)) == []


def test_a_reordered_chain_resealed_is_found(folder: Path) -> None:
    plan = _three(folder)

    def swap(data: dict) -> None:  # type: ignore[type-arg]
        links = data["chains"][0]["links"]
        links[1], links[2] = links[2], links[1]

    problems = link_problems(_edited(plan, swap))
    assert any("link `c` continues `b`, but follows `a`" in p for p in problems)
    assert any("link hash" in p for p in problems)


def test_an_edited_request_under_its_old_link_is_found(folder: Path) -> None:
    plan = _three(folder)

    def loosen(data: dict) -> None:  # type: ignore[type-arg]
        (b,) = [op for op in data["objectives"] if op["objective"]["name"] == "b"]
        b["objective"]["title"] = "edited after the links were recorded"

    problems = link_problems(_edited(plan, loosen))
    assert len(problems) == 1 and problems[0].startswith("link `b` records the objective's plan as")


def test_a_link_to_no_objective_or_one_in_two_places_is_found_not_a_traceback(folder: Path) -> None:
    plan = _three(folder)

    def rename(data: dict) -> None:  # type: ignore[type-arg]
        data["chains"][0]["links"][2]["objective"] = "nobody"

    assert any("`nobody` names no objective of the plan" in p for p in link_problems(_edited(plan, rename)))

    def twice(data: dict) -> None:  # type: ignore[type-arg]
        data["chains"].append({"links": [data["chains"][0]["links"][0]]})

    assert any("`a` is in a chain twice" in p for p in link_problems(_edited(plan, twice)))


def test_run_refuses_a_trusted_plan_whose_chain_does_not_match_with_a_diagnostic(
        folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from unlearnspec.cli import main

    plan = _three(folder)

    def rename(data: dict) -> None:  # type: ignore[type-arg]
        data["chains"][0]["links"][2]["objective"] = "nobody"

    (folder / "plan.json").write_text(_edited(plan, rename).canonical_json(), encoding="utf-8")
    monkeypatch.chdir(folder)
    code = main(["run", "plan.json", "--trust-plan", "--out", "run", "--no-ledger", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "UL702" in err and "`nobody` names no objective of the plan" in err
    assert "Traceback" not in err and not (folder / "run" / "report.json").exists()


# -- the run: a resume never mixes the models of a chain ---------------------------------------------------------


def _remade(run: Path, step: str, seed: int) -> str:
    """Step ``step``'s saved model replaced by other weights, recorded in run.json as its unlearn stage records a
    model it made again (a resume over a damaged model); the last step's verdict left unfinished. The new sha256."""
    from test_eval_tiny_model import fresh_model, tokenizer

    from unlearnspec.runtime.rundir import model_record

    state = json.loads((run / "run.json").read_text())
    folder = run / state["stages"][f"{step}/unlearn"]["detail"]["model_dir"]
    shutil.rmtree(folder)
    fresh_model(seed).save_pretrained(folder, safe_serialization=True)
    tokenizer().save_pretrained(folder)
    record = model_record(folder)
    state["stages"][f"{step}/unlearn"]["detail"].update(record)
    state["stages"]["second/verdict"]["status"] = "running"
    state["finished_at"] = None
    (run / "run.json").write_text(json.dumps(state), encoding="utf-8")
    (run / "report.json").unlink()
    return str(record["model_sha256"])


@pytest.mark.slow
def test_a_resume_recomputes_rechecks_on_a_model_made_again_and_refuses_a_step_whose_start_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from test_chain_basis import _folder, _objective, _run

    _folder(tmp_path, _objective("first", 0), _objective("second", 1, after="first"))
    code = _run(tmp_path, monkeypatch, "run", "chain.unlearn", "--out", "run")
    assert code in (0, 1, 3), capsys.readouterr().err
    run = tmp_path / "run"
    drift_file = run / "objectives" / "second" / "drift" / "first.json"
    drift = json.loads(drift_file.read_text())
    state = json.loads((run / "run.json").read_text())
    # the second step recorded the model it started from: the first step's weights
    assert state["stages"]["second/chain"]["detail"]["started_from"] == \
        state["stages"]["first/unlearn"]["detail"]["model_sha256"]
    assert drift["basis"]["model_sha256"] == state["stages"]["second/unlearn"]["detail"]["model_sha256"]

    # The second step's model made again, other weights in the same folder: the first request's re-check is computed
    # on it, not taken from the drift file the old weights left (same folder, same reference, same confidence).
    new = _remade(run, "second", seed=5)
    assert _run(tmp_path, monkeypatch, "run", "--resume", "run") in (0, 1, 3), capsys.readouterr().err
    again = json.loads(drift_file.read_text())
    assert again["basis"]["model_sha256"] == new
    assert again["results"] != drift["results"]

    # The first step's model made again: the second step trained, and was checked, on the old one. Going on would
    # report the chain as one model handed on; the resume refuses with a diagnostic.
    _remade(run, "first", seed=6)
    assert _run(tmp_path, monkeypatch, "run", "--resume", "run") == 2
    err = capsys.readouterr().err
    assert "UL714" in err and "`second` started from the model `first` made" in err and "Traceback" not in err


def test_one_local_model_written_two_ways_is_one_model_and_two_models_are_two(folder: Path) -> None:
    pytest.importorskip("torch")
    from test_eval_tiny_model import fresh_model, tokenizer

    for name, seed in (("m", 0), ("other", 1)):
        fresh_model(seed).save_pretrained(folder / name, safe_serialization=True)
        tokenizer().save_pretrained(folder / name)
    same = write(folder, "same.unlearn", objective("a", model="m"), objective("b", after="a", model="./m"))
    assert [d.message for d in check_file(same).diagnostics if d.code == "UL209" and "another model" in d.message] == []
    two = write(folder, "two.unlearn", objective("a", model="m"), objective("b", after="a", model="other"))
    assert [d.message for d in check_file(two).diagnostics if d.code == "UL209" and "another model" in d.message] == [
        "`b` continues `a` but names another model"]


# -- the report: a chain is read as a whole --------------------------------------------------------------------


def test_a_chain_report_with_a_step_left_out_is_refused() -> None:
    from pydantic import ValidationError

    from unlearnspec.plan import ChainBudget
    from unlearnspec.report.chain import ChainReport, ChainStep, Recheck, RecheckedClaim, build_chain_report

    def step(name: str, i: int, earlier: list[str], now: str = "pass") -> ChainStep:
        return ChainStep(request=name, link_hash=f"{i:064x}", method="npo", approximate=True, utility_drop=1.0 + i,
                         utility_drop_interval=(0.5 + i, 1.5 + i), utility_n=40, overall="pass",
                         rechecks=[Recheck(request=e, claims=[RecheckedClaim(claim="removed", then="pass", now=now)])
                                   for e in earlier])

    # the third request brought the first one's target back: the chain fails
    whole = build_chain_report(["a", "b", "c"], [step("a", 0, []), step("b", 1, ["a"]), step("c", 2, ["a", "b"], "fail")],
                               ChainBudget(utility_drop=5.0))
    assert [r for r, _ in whole.outcomes()] == ["fail", "fail"]
    # the same report with its last step cut out would read as a chain with nothing against it
    data = whole.model_dump(mode="json")
    data["steps"] = data["steps"][:2]
    with pytest.raises(ValidationError, match="steps are not its links"):
        ChainReport.model_validate(data)


# -- the run: re-checks compare models on the device the run evaluates on ---------------------------------------


@pytest.mark.slow
def test_the_rechecks_place_every_model_they_compare_where_the_run_evaluates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """load_model reads to the CPU; the step's own checks move each model to the rank's device (the GPU) first. The
    re-checks compared the later model and the earlier request's reference as loaded: on a GPU run, on the CPU,
    beside an original on the GPU. Every model a re-check is handed must have been placed."""
    pytest.importorskip("torch")
    from test_chain_basis import _folder, _objective, _run, _save
    from test_eval_tiny_model import tiny_lm

    from unlearnspec.runtime import checks
    from unlearnspec.runtime.distributed import Distributed

    _save(tiny_lm("reference"), tmp_path / "ref1")
    _folder(tmp_path, _objective("first", 0).replace("  release api", '  reference "ref1"\n  release api'),
            _objective("second", 1, after="first"))
    placed: set[int] = set()
    real_place, real_compute = Distributed.place, checks.compute

    def place(self: Distributed, model: object) -> object:
        placed.add(id(model))
        return real_place(self, model)

    handed: list[tuple[str, int]] = []

    def compute(ctx: checks.EvalContext, **kw: object) -> object:
        if "drift" in Path(ctx.work_dir).parts:  # a re-check (objectives/<step>/drift/<earlier>)
            handed.extend((role, id(pair[0])) for role, pair in
                       (("original", ctx.original), ("unlearned", ctx.unlearned), ("reference", ctx.reference))
                          if pair is not None)
        return real_compute(ctx, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Distributed, "place", place)
    monkeypatch.setattr(checks, "compute", compute)
    code = _run(tmp_path, monkeypatch, "run", "chain.unlearn", "--out", "run")
    assert code in (0, 1, 3), capsys.readouterr().err
    assert {role for role, _ in handed} == {"original", "unlearned", "reference"}
    assert [role for role, model in handed if model not in placed] == []
