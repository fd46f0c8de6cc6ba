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


def with_method(name: str, method: str, *, after: str | None = None, extra: str = "") -> str:
    """:func:`objective` with another method, its goal and claim made to fit the method."""
    text = objective(name, after=after, extra=extra).replace("  method npo\n", f"  method {method}\n")
    goal = {"refusal": "suppression", "filter": "suppression via system"}.get(method)
    if goal is not None:
        text = text.replace("  goal removal\n", f"  goal {goal}\n").replace("    removed\n", "    not_generated\n")
    return text


@pytest.mark.parametrize(("methods", "allowed"), [
    (("npo", "refusal", "npo"), 2),  # refusal fine-tunes the weights: counted
    (("npo", "filter", "npo"), 1),  # an output filter changes no weights: not counted
    (("npo", "retrain", "npo"), 1),  # an exact retrain starts the count again
    (("npo", "npo", "retrain", "npo"), 1),  # ... but not for the requests before it
    (("refusal", "refusal"), 1),
])
def test_the_requests_budget_counts_weight_changes_since_the_last_exact_retrain(
        folder: Path, methods: tuple[str, ...], allowed: int) -> None:
    """`requests K` counts every method that changes the weights other than exact retraining (docs/requests.md),
    from the chain's start or its last exact retrain."""
    budget = f"  budget {{\n    requests {allowed}\n  }}\n"
    names = [f"r{i}" for i in range(len(methods))]
    objs = [with_method(n, m, after=names[i - 1] if i else None, extra=budget if i == 0 else "")
            for i, (n, m) in enumerate(zip(names, methods, strict=True))]
    found = [d for d in check_file(write(folder, "chain.unlearn", *objs)).diagnostics if d.code == "UL413"]
    # the reference count: split the chain at each exact retrain, leave out the filters, take the longest part
    parts = " ".join(methods).split("retrain")
    counted = max(len([m for m in part.split() if m != "filter"]) for part in parts)
    if counted > allowed:
        assert len(found) == 1 and f"the chain applies {counted} " in found[0].message
        kind = "approximate requests" if "refusal" not in methods else "requests that change the weights"
        assert kind in found[0].message
        assert len(found[0].labels) == counted - allowed
    else:
        assert found == []


def test_two_objectives_continuing_one_in_another_file_are_a_fork(folder: Path) -> None:
    """Review finding 9: `after "d.unlearn#w"` twice in one file is UL218 as `after "w"` twice is, also when the two
    links spell the path differently."""
    write(folder, "d.unlearn", objective("w"))
    (folder / "sub").mkdir()
    path = write(folder, "g.unlearn", objective("g1", after="d.unlearn#w"), objective("g2", after="sub/../d.unlearn#w"))
    assert [(c, o) for c, o, _ in chain_errors(path)] == [("UL218", "g2")]
    one = write(folder, "h.unlearn", objective("h1", after="d.unlearn#w"), objective("h2", after="h1"))
    assert chain_errors(one) == []


def test_a_budget_on_an_objective_nothing_continues_yet_is_planned_and_diff_sees_it_loosened(folder: Path) -> None:
    """Review finding 8: a `budget` on an objective no other continues yet is a chain of one: the plan records it,
    so that `diff` sees 3%/1 raised to 30%/9 as a loosening (the run checks it on that one request)."""
    from unlearnspec.compiler.semdiff import diff_plans

    def plan(utility: int | None, requests: int | None) -> object:
        budget = ("  budget {\n" + (f"    utility drop <= {utility}%\n" if utility else "")
                  + (f"    requests {requests}\n" if requests else "") + "  }\n") if utility or requests else ""
        made, result = plan_file(write(folder, "lone.unlearn", objective("a", extra=budget), objective("b")))
        assert made is not None, [d.message for d in result.diagnostics]
        return made

    tight = plan(3, 1)
    (chain,) = json.loads(tight.canonical_json())["chains"]  # type: ignore[attr-defined]
    assert [lk["objective"] for lk in chain["links"]] == ["a"]
    assert chain["budget"] == {"utility_drop": 3.0, "approximate_requests": 1}
    changes = {(c.kind, c.what, c.subject) for c in diff_plans(tight, plan(30, 9))}  # type: ignore[arg-type]
    assert {("loosened", "budget", "utility_drop"), ("loosened", "budget", "approximate_requests")} <= changes
    assert ("loosened", "budget", "utility_drop") in {(c.kind, c.what, c.subject)
                                                      for c in diff_plans(tight, plan(None, None))}  # type: ignore[arg-type]
    assert "chains" not in json.loads(plan(None, None).canonical_json())  # type: ignore[attr-defined]


def test_a_later_steps_retrained_reference_is_described_as_leaving_out_every_target_so_far(folder: Path) -> None:
    """Review finding 10: the run retrains step k's reference without the forget sets of every request so far; the
    plan (and `show`) say so, naming the earlier requests, and the link hashes cover what they say."""
    from unlearnspec.compiler.review import render_review
    from unlearnspec.plan import ReferenceStage

    plan, _ = plan_file(write(folder, "chain.unlearn", objective("c", after="b"), objective("a"),
                              objective("b", after="a")))
    assert plan is not None
    described = {op.objective.name: next(s for s in op.stages if isinstance(s, ReferenceStage)).description
                 for op in plan.objectives}
    order = [lk.objective for lk in plan.chains[0].links]
    for i, name in enumerate(order):
        earlier = order[:i]
        if earlier:
            assert f"({', '.join(f'`{n}`' for n in earlier)})" in described[name]
            assert "without the forget sets of this request and of every earlier one in its chain" in described[name]
        else:
            assert described[name].endswith("without the forget set")
        assert all(f"`{n}`" not in described[name] for n in order[i:])
    assert described["c"] in render_review(plan)
    data = json.loads(plan.canonical_json())
    ops = {op["objective"]["name"]: op for op in data["objectives"]}
    assert all(lk["objective_sha256"] == _sha(ops[lk["objective"]]) for lk in data["chains"][0]["links"])
