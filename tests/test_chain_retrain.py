"""An exact `retrain` step in the middle of a chain, on builtin:tiny-bios: it retrains the recipe without every
target so far (its own and the earlier requests'), not only its own, so it never puts back what the earlier steps
erased; the steps after it start from its model, and the `requests` count starts again after it.

Retraining itself is not what is tested (test_builtin_model does): every retrain the run asks for is recorded and
answered with a copy of the built-in model, so the test sees exactly which texts each one would leave out.
Slow (about 90 s: three objectives and three re-checks on the built-in model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from fixtures.chains import chain_spec  # noqa: E402

from unlearnspec.cli import main  # noqa: E402
from unlearnspec.records import read_records  # noqa: E402

PEOPLE = (("erase-jane", "Jane Doe", "data/jane-doe.jsonl", "grad_diff { steps 2 }"),
          ("erase-barnaby", "Barnaby Caldrow", "data/people/barnaby-caldrow.jsonl", "retrain"),
          ("erase-vesna", "Vesna Gantrell", "data/people/vesna-gantrell.jsonl", "grad_diff { steps 2 }"))


def spec() -> str:
    return chain_spec(PEOPLE, model="builtin:tiny-bios")


@pytest.mark.slow
def test_an_exact_retrain_in_a_chain_leaves_out_every_target_so_far(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, builtin_model_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from unlearnspec.runtime import builtin_model, chain, loading, pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNLEARNSPEC_THREADS", "1")
    assert main(["builtin", "export", "data"]) == 0
    (tmp_path / "chain.unlearn").write_text(spec(), encoding="utf-8")
    asked: list[tuple[set[str], Path]] = []  # each retrain asked for: the texts it leaves out, the folder it gave

    def retrained(exclude: Any, *args: Any, **kw: Any) -> Path:
        out = tmp_path / f"retrained-{len(asked)}"
        shutil.copytree(builtin_model_dir, out)
        asked.append((set(exclude), out))
        return out

    for module in (builtin_model, pipeline, chain):
        monkeypatch.setattr(module, "ensure_retrained", retrained)
    loaded: list[str] = []
    real = loading.load_model

    def spy(source: str, **kw: Any) -> Any:
        loaded.append(str(source))
        return real(source, **kw)

    monkeypatch.setattr(loading, "load_model", spy)
    code = main(["run", "chain.unlearn", "--out", "run", "--no-ledger", "-q"])
    assert code in (0, 1, 3), capsys.readouterr().err

    texts = [{t for r in read_records(tmp_path / forget) for t in r.training_texts()} for _, _, forget, _ in PEOPLE]
    state = json.loads((tmp_path / "run" / "run.json").read_text())
    # run.json may name a folder in the run folder relative to it
    made = {name: str(tmp_path / "run" / state["stages"][f"{name}/unlearn"]["detail"]["model_dir"]) for name, *_ in PEOPLE}
    # the retrain step's model is the retrain that left out Jane's texts as well as Barnaby's
    (retrain,) = [(ex, out) for ex, out in asked if str(out) == made["erase-barnaby"]]
    assert retrain[0] == texts[0] | texts[1]
    # every retrained reference leaves out every target so far: Jane; Jane and Barnaby; all three
    refs = {name: state["stages"][f"{name}/reference"]["detail"]["path"] for name, *_ in PEOPLE}
    by_folder = {str(out): ex for ex, out in asked}
    assert [by_folder[refs[name]] for name, *_ in PEOPLE] == [texts[0], texts[0] | texts[1],
                                                               texts[0] | texts[1] | texts[2]]
    # the step after the retrain starts from its model (the only load of that folder through `load_model` by name is
    # the next step's start: the retrain and the re-checks hold their own reference to it)
    assert made["erase-barnaby"] in loaded
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    (ch,) = report["chains"]
    assert [s.get("family") for s in ch["steps"]] == ["approximate", "exact", "approximate"]
    # one approximate request on each side of the retrain: within `requests 1`
    assert not any("requests" in r for r in ch["budget_reasons"])
    from unlearnspec.report.model import Report

    chain_report = Report.model_validate(report).chains[0]
    assert "`erase-barnaby`" in chain_report.order_text and "retrains the recipe" in chain_report.order_text
