"""Chains of requests in the compiler: `after` links checked (unknown names, cycles, forks, another
model, a misplaced budget, links to other files), ordered, and recorded in the plan with their hashes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from unlearnspec.compiler.check import check_file, plan_file
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes

DATA = Path(__file__).parent / "rules" / "data"


def objective(name: str, *, after: str | None = None, model: str = "builtin:tiny-bios", extra: str = "") -> str:
    link = f'  after "{after}"\n' if after else ""
    return f'''objective "{name}" {{
{link}  model "{model}"
  release api precision fp32
  target person "Jane Doe" {{
    forget "data/forget.jsonl"
    test   "data/test.jsonl"
  }}
  goal removal
  method npo
  preserve {{
    retain    "data/retain.jsonl"
    neighbors "data/neighbors.jsonl"
    utility   drop <= 2%
  }}
  claims {{
    removed
  }}
{extra}}}
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(DATA, tmp_path / "data")
    return tmp_path


def write(folder: Path, name: str, *objectives: str) -> Path:
    path = folder / name
    path.write_text("unlearnspec 1\n\n" + "\n".join(objectives), encoding="utf-8")
    return path


def chain_errors(path: Path) -> list[tuple[str, str | None, str]]:
    return [(d.code, d.objective, d.message) for d in check_file(path).diagnostics
            if d.code in ("UL209", "UL216", "UL217", "UL218")]


def test_a_chain_in_order_checks_clean(folder: Path) -> None:
    path = write(folder, "chain.unlearn", objective("a"), objective("b", after="a"), objective("c", after="b"))
    assert chain_errors(path) == []


def test_an_unknown_name_gets_did_you_mean(folder: Path) -> None:
    path = write(folder, "chain.unlearn", objective("erase-jane"), objective("b", after="erase-jame"))
    diags = [d for d in check_file(path).diagnostics if d.code == "UL216"]
    assert len(diags) == 1 and diags[0].objective == "b"
    assert "did you mean `erase-jane`?" in diags[0].help
    lines = path.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, start=1) if 'after "erase-jame"' in t)
    assert (diags[0].span.line, diags[0].span.column) == (line, lines[line - 1].index('"') + 1)


def test_cycles_are_refused_once_with_every_member_labelled(folder: Path) -> None:
    path = write(folder, "chain.unlearn", objective("a", after="c"), objective("b", after="a"),
                 objective("c", after="b"))
    diags = [d for d in check_file(path).diagnostics if d.code == "UL217"]
    assert len(diags) == 1
    assert all(f"`{n}`" in diags[0].message for n in "abc") and diags[0].objective == "a"
    assert len(diags[0].labels) == 2
    self_loop = write(folder, "self.unlearn", objective("a", after="a"))
    assert [c for c, _, _ in chain_errors(self_loop)] == ["UL217"]


def test_a_fork_is_refused(folder: Path) -> None:
    path = write(folder, "chain.unlearn", objective("a"), objective("b", after="a"), objective("c", after="a"))
    assert [(c, o) for c, o, _ in chain_errors(path)] == [("UL218", "c")]


def test_another_model_or_a_budget_past_the_first_link_is_contradictory(folder: Path) -> None:
    path = write(folder, "chain.unlearn", objective("a"), objective("b", after="a", model="models/other"))
    assert any(c == "UL209" and "names another model" in m for c, _, m in chain_errors(path))
    budget = "  budget {\n    requests 3\n  }\n"
    path = write(folder, "budget.unlearn", objective("a"), objective("b", after="a", extra=budget))
    assert any(c == "UL209" and "first objective of a chain" in m for c, _, m in chain_errors(path))


def test_a_later_request_may_not_preserve_what_an_earlier_one_forgot(folder: Path) -> None:
    """The second request's neighbours hold a record the first one forgets (a person of the first request among
    the second's neighbour people): keeping it would undo the removal the run re-checks on every later model."""
    first = json.loads((folder / "data" / "forget.jsonl").read_text(encoding="utf-8").splitlines()[1])
    (folder / "data" / "later-neighbors.jsonl").write_text(
        (folder / "data" / "neighbors.jsonl").read_text(encoding="utf-8") + json.dumps(first) + "\n", encoding="utf-8")
    later = objective("second", after="first").replace('"data/neighbors.jsonl"', '"data/later-neighbors.jsonl"')
    later = later.replace('forget "data/forget.jsonl"', 'forget "data/documents.jsonl"')
    path = write(folder, "c.unlearn", objective("first"), later)
    found = [d for d in check_file(path).diagnostics if d.code == "UL209"]
    assert [(d.objective, d.message) for d in found] == [
        ("second", "1 text of `data/later-neighbors.jsonl` is what `first`, earlier in this chain, forgets, so "
                   "`second` would preserve it")]
    assert found[0].labels[0].message == "record 2 here, forgotten by `first`"
    assert found[0].labels[0].span.line < found[0].span.line  # the first request's forget file
    # the same neighbours without that record: no finding
    path = write(folder, "d.unlearn", objective("first"), later.replace("later-neighbors", "neighbors"))
    assert not [d for d in check_file(path).diagnostics if d.code == "UL209"]


def test_a_chain_error_stops_planning(folder: Path) -> None:
    path = write(folder, "chain.unlearn", objective("a"), objective("b", after="nope"))
    plan, _ = plan_file(path, allow_infeasible=True)
    assert plan is None


def test_links_to_another_file(folder: Path) -> None:
    write(folder, "first.unlearn", objective("a"))
    ok = write(folder, "second.unlearn", objective("b", after="first.unlearn#a"))
    assert chain_errors(ok) == []
    missing_file = write(folder, "third.unlearn", objective("c", after="nope.unlearn#a"))
    assert [c for c, _, _ in chain_errors(missing_file)] == ["UL216"]
    missing_obj = write(folder, "fourth.unlearn", objective("d", after="first.unlearn#b"))
    assert [c for c, _, _ in chain_errors(missing_obj)] == ["UL216"]
    write(folder, "x.unlearn", objective("x", after="y.unlearn#y"))
    loop = write(folder, "y.unlearn", objective("y", after="x.unlearn#x"))
    assert [c for c, _, _ in chain_errors(loop)] == ["UL217"]
    # continuing another file's request on another model is what it is inside one file: UL209
    other_model = write(folder, "fifth.unlearn", objective("e", after="first.unlearn#a", model="builtin:tiny-bios-chat"))
    assert [(c, m) for c, _, m in chain_errors(other_model)] == [
        ("UL209", "`e` continues `first.unlearn#a` but names another model (`first.unlearn` unlearns from "
                  "`builtin:tiny-bios`)")]


def _sha(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_the_plan_records_the_order_and_each_link_hash(folder: Path) -> None:
    budget = "  budget {\n    utility  drop <= 5%\n    requests 3\n  }\n"
    # written out of order: the plan orders the chain by its links
    path = write(folder, "chain.unlearn", objective("c", after="b"), objective("a", extra=budget),
                 objective("b", after="a"))
    plan, result = plan_file(path)
    assert plan is not None, [d.message for d in result.diagnostics]
    data = json.loads(plan.canonical_json())
    (chain,) = data["chains"]
    assert [link["objective"] for link in chain["links"]] == ["a", "b", "c"]
    assert chain["budget"] == {"utility_drop": 5.0, "approximate_requests": 3}
    ops = {op["objective"]["name"]: op for op in data["objectives"]}
    prev = ""
    for link in chain["links"]:  # recomputed from the plan's own objectives
        assert link["objective_sha256"] == _sha(ops[link["objective"]])
        prev = _sha({"prev": prev, "objective": link["objective"], "sha256": link["objective_sha256"]})
        assert link["link_hash"] == prev


def test_a_plan_without_chains_has_no_chain_key(folder: Path) -> None:
    plan, _ = plan_file(write(folder, "one.unlearn", objective("a")))
    assert plan is not None and "chains" not in json.loads(plan.canonical_json())


def test_fmt_keeps_after_and_budget_and_is_idempotent(folder: Path) -> None:
    budget = "  budget {\n      utility drop <= 5%\n   requests   3\n  }\n"
    path = write(folder, "chain.unlearn", objective("a", extra=budget), objective("b", after="a"))
    syntax, _ = parse_bytes(path.read_bytes(), str(path))
    assert syntax is not None
    once = format_spec(syntax)
    assert re.search(r'^  after +"a"$', once, re.M) and "  budget {" in once and re.search(r"^    requests +3$", once, re.M)
    again, _ = parse_bytes(once.encode(), str(path))
    assert again is not None and format_spec(again) == once


def test_show_lists_the_chain_in_order(folder: Path) -> None:
    from unlearnspec.compiler.review import render_review

    plan, _ = plan_file(write(folder, "chain.unlearn", objective("b", after="a"), objective("a")))
    assert plan is not None
    text = render_review(plan)
    assert "## Chain of requests" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |")]
    assert rows[0].startswith(("| 1 | `a` | - |", "| 1 | `a` | \\- |")) and rows[1].startswith("| 2 | `b` | `a` |")
    assert json.loads(render_review(plan, "json"))["chains"][0]["links"][1]["after"] == "a"


def test_diff_reports_a_raised_budget_as_loosened_and_a_moved_link_as_changed(folder: Path) -> None:
    from unlearnspec.compiler.semdiff import diff_plans

    def plan(requests: int, after_c: str) -> object:
        budget = f"  budget {{\n    requests {requests}\n  }}\n"
        made, _ = plan_file(write(folder, "chain.unlearn", objective("a", extra=budget), objective("b", after="a"),
                                  objective("c", after=after_c) if after_c != "a" else objective("c")))
        assert made is not None
        return made

    base = plan(2, "b")
    raised = {(c.kind, c.what, c.subject) for c in diff_plans(base, plan(3, "b"))}  # type: ignore[arg-type]
    assert ("loosened", "budget", "approximate_requests") in raised
    lowered = {(c.kind, c.what) for c in diff_plans(base, plan(1, "b"))}  # type: ignore[arg-type]
    assert ("tightened", "budget") in lowered
    moved = [c for c in diff_plans(base, plan(2, "a")) if c.what == "after"]  # type: ignore[arg-type]
    assert [(c.kind, c.subject, c.old, c.new) for c in moved] == [("changed", "c", "b", None)]


def test_a_link_to_another_file_compares_where_each_model_path_leads(folder: Path) -> None:
    """`../models/m` from `a/` and `../../models/m` from `b/sub/` name one folder: no finding. `./m` from `a/` and
    from `b/` name two: UL209. Each spec reads its paths from its own folder."""
    import numpy as np
    from safetensors.numpy import save_file

    for d in ("models/m", "a/m", "b/m", "b/sub"):
        (folder / d).mkdir(parents=True, exist_ok=True)
        if d != "b/sub":  # a folder the resolver accepts as a model
            (folder / d / "config.json").write_text(json.dumps({"model_type": "gpt2"}), encoding="utf-8")
            save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(folder / d / "model.safetensors"))
    for d in ("a", "b", "b/sub"):
        shutil.copytree(folder / "data", folder / d / "data")
    write(folder / "a", "first.unlearn", objective("x", model="../models/m"))
    same = write(folder / "b" / "sub", "third.unlearn", objective("z", after="../../a/first.unlearn#x",
                                                                   model="../../models/m"))
    assert [c for c, _, _ in chain_errors(same)] == []
    write(folder / "a", "local.unlearn", objective("y", model="./m"))
    other = write(folder / "b", "second.unlearn", objective("w", after="../a/local.unlearn#y", model="./m"))
    assert [c for c, _, _ in chain_errors(other)] == ["UL209"]
