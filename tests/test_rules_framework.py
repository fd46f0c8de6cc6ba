"""The feasibility rules against FRAMEWORK.md: cases a review found the rules got wrong.

Each test writes a small spec (and its data) into a temporary folder, runs the compiler's checks on it, and
compares what the rules report with what FRAMEWORK.md says and with the counts and tests the runtime will use
(computed here independently: scipy's KS test, the Mann-Whitney variance of an AUC at chance).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.feasibility import analyse
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve import resolve
from unlearnspec.records import read_records, split_holdout

HEADER = "unlearnspec 1\n\n"


def check(folder: Path, body: str) -> list[Diagnostic]:
    """Compile one objective (``body``: its fields) written in ``folder``; the front end must accept it."""
    path = folder / "spec.unlearn"
    path.write_text(HEADER + 'objective "o" {\n' + body + "}\n", encoding="utf-8")
    syntax, pdiags = parse_bytes(path.read_bytes(), str(path))
    assert syntax is not None and not pdiags, [d.message for d in pdiags]
    spec, rdiags = resolve(syntax, folder)
    assert not [d for d in rdiags if d.severity == "error"], [d.message for d in rdiags]
    return analyse(spec)


def codes(diags: list[Diagnostic]) -> set[str]:
    return {d.code for d in diags}


def write_jsonl(path: Path, records: list[dict[str, object]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path.name


def qa(i: int, who: str, text: bool = False, paraphrase: bool = False) -> dict[str, object]:
    r: dict[str, object] = {"question": f"What is fact {i} about {who}?", "answer": f"answer {i} of {who}",
                            "perturbed": [f"wrong {i}a", f"wrong {i}b"]}
    if text:
        r["text"] = f"{who} document {i}: a record of fact {i}, answer {i} of {who}."
    if paraphrase:
        r["paraphrases"] = [f"Tell me fact {i} about {who}."]
    return r


def doc(i: int, who: str) -> dict[str, object]:
    return {"text": f"{who} wrote note {i} about the harbour, the tide tables and lantern {i}."}


PRESERVE = ('  preserve {\n    retain    "data/retain.jsonl"\n    neighbors "data/neighbors.jsonl"\n'
            '    utility   drop <= 2%\n  }\n')


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data" / "retain.jsonl", [qa(1, "Ada Quill")])
    write_jsonl(tmp_path / "data" / "neighbors.jsonl", [qa(1, "Ben Quill")])
    write_jsonl(tmp_path / "data" / "test.jsonl", [qa(1, "Jane Doe"), doc(1, "Jane Doe")])
    return tmp_path


def objective(forget: str, *, model: str = "builtin:tiny-bios", extra_target: str = "", goal: str = "removal",
              method: str = "  method npo\n", claims: str = "removed", evidence: str = "", more: str = "") -> str:
    return (f'  model "{model}"\n{more}  release api precision fp32\n'
            f'  target person "Jane Doe" {{\n    kind   observed\n    forget "data/{forget}"\n'
            f'    test   "data/test.jsonl"\n{extra_target}  }}\n'
            f"  goal {goal}\n{method}{PRESERVE}"
            f"  claims {{\n    {claims}\n  }}\n" + (f"  evidence {{\n{evidence}  }}\n" if evidence else ""))


def auc_half_width_at_chance(members: int, nonmembers: int, confidence: float = 0.95) -> float:
    """The normal interval of an AUC at chance: the Mann-Whitney U null variance (n_m + n_n + 1) / (12 n_m n_n)."""
    return float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt((members + nonmembers + 1) / (12 * members * nonmembers))


# -- UL411: a looser membership bound is offered only where it is decidable -----------------------------------


@pytest.mark.parametrize("documents", [3, 4, 6])
def test_suggested_membership_tolerance_is_itself_decidable(folder: Path, documents: int) -> None:
    write_jsonl(folder / "data" / "forget.jsonl", [doc(i, "Jane Doe") for i in range(documents)])
    body = objective("forget.jsonl", claims="removed", evidence="    membership_auc <= 0.6\n")
    found = [d for d in check(folder, body) if d.code == "UL411"]
    assert found, "a handful of forget documents cannot show membership within 0.1 of the reference"
    m = re.search(r"on (\d+) forget and (\d+) holdout documents", found[0].message)
    assert m is not None and int(m.group(1)) == documents
    width = auc_half_width_at_chance(documents, int(m.group(2)))
    offers = [re.search(r"`membership_auc <= ([0-9.]+)`", h) for h in found[0].help]
    bounds = [float(o.group(1)) for o in offers if o]
    if width > 0.3:  # no bound can be decided at these sizes (FRAMEWORK.md §7: wider than any useful bound)
        assert not bounds
    else:
        assert bounds and bounds[0] - 0.5 >= width
    for b in bounds:  # the weaker objective offered passes the same check
        retry = objective("forget.jsonl", claims="removed", evidence=f"    membership_auc <= {b:g}\n")
        assert "UL411" not in codes(check(folder, retry))


# -- UL411: item types as the runtime scores them ----------------------------------------------------------------


def test_answers_of_records_with_a_document_are_qa_items(folder: Path) -> None:
    """The runtime scores a record's document and its answer as two items of two types (``SCORED_PARTS =
    "both"``), so 40 forget records with a document and a QA pair are 40 QA items against the holdout's few."""
    forget = [qa(i, "Jane Doe", text=True) for i in range(40)]
    holdout = [doc(i, f"Holdout Person {i}") for i in range(80)] + [qa(i, f"Other Person {i}") for i in range(6)]
    write_jsonl(folder / "data" / "forget.jsonl", forget)
    write_jsonl(folder / "data" / "holdout.jsonl", holdout)
    _, evaluation = split_holdout(read_records(folder / "data" / "holdout.jsonl"), seed=0)
    holdout_qa = sum(1 for i in evaluation if "question" in holdout[i])
    holdout_docs = len(evaluation) - holdout_qa
    assert auc_half_width_at_chance(40, holdout_docs) <= 0.3 < auc_half_width_at_chance(40, holdout_qa)
    body = objective("forget.jsonl", extra_target='    holdout "data/holdout.jsonl"\n',
                     evidence="    membership_auc <= 0.8\n")
    found = [d for d in check(folder, body) if d.code == "UL411"]
    assert [d.message.split(":")[0] for d in found] == [
        f"claim `removed` cannot be decided on 40 forget and {holdout_qa} holdout qa items"]
    assert f"±{auc_half_width_at_chance(40, holdout_qa):.2f}" in found[0].help[0]


# -- UL411: forget quality without a reference compares with the holdout -------------------------------------


def test_forget_quality_without_reference_counts_the_holdout_side(folder: Path) -> None:
    forget = [qa(i, "Jane Doe") for i in range(5)]
    holdout = [qa(i, f"Holdout Person {i}") for i in range(40)]
    write_jsonl(folder / "data" / "forget.jsonl", forget)
    write_jsonl(folder / "data" / "holdout.jsonl", holdout)
    _, evaluation = split_holdout(read_records(folder / "data" / "holdout.jsonl"), seed=0)
    m = len(evaluation)
    # scipy: the second-largest statistic 5 vs m (one forget item inside the holdout's range) rejects at 5%
    a, b = np.arange(5.0), np.concatenate([[0.5], np.arange(10.0, 9.0 + m)])
    res = stats.ks_2samp(a, b, method="exact")
    assert res.statistic == pytest.approx(1 - 1 / m) and res.pvalue < 0.05
    target = '    holdout "data/holdout.jsonl"\n'
    fq = "    forget_quality >= 0.05\n"
    no_reference = objective("forget.jsonl", model="acme/assistant-7b", extra_target=target, evidence=fq)
    assert "UL411" not in codes(check(folder, no_reference))
    # with a reference the same five truth ratios are compared with the reference's five: 5 vs 5 cannot decide
    with_reference = objective("forget.jsonl", model="acme/assistant-7b", extra_target=target, evidence=fq,
                               more='  reference "acme/assistant-7b-retrained"\n')
    found = [d for d in check(folder, with_reference) if d.code == "UL411"]
    assert len(found) == 1 and "compares 5 vs 5 items" in found[0].message
    assert f"{2 / math.comb(10, 5):.2g}" in found[0].message


def test_forget_quality_against_a_small_holdout_prints_both_sizes(folder: Path) -> None:
    write_jsonl(folder / "data" / "forget.jsonl", [qa(i, "Jane Doe") for i in range(4)])
    write_jsonl(folder / "data" / "holdout.jsonl", [qa(i, f"Holdout Person {i}") for i in range(6)])
    _, evaluation = split_holdout(read_records(folder / "data" / "holdout.jsonl"), seed=0)
    m = len(evaluation)
    a, b = np.arange(4.0), np.concatenate([[0.5], np.arange(10.0, 9.0 + m)])
    assert stats.ks_2samp(a, b, method="exact").pvalue >= 0.05  # only complete separation can reject
    body = objective("forget.jsonl", model="acme/assistant-7b", extra_target='    holdout "data/holdout.jsonl"\n',
                     evidence="    forget_quality >= 0.05\n")
    found = [d for d in check(folder, body) if d.code == "UL411"]
    assert len(found) == 1
    assert f"compares 4 vs {m} items against the holdout's evaluation half" in found[0].message
    assert f"{2 / math.comb(4 + m, 4):.2g}" in found[0].message


# -- UL308: a zero tolerance written as an evidence bound ------------------------------------------------------


@pytest.mark.parametrize("bound", ["retain_utility_drop <= 0", "neighbor_utility_drop <= 0%",
                                   "retain_utility_drop < 0"])
def test_zero_utility_drop_in_evidence_cannot_be_met(folder: Path, bound: str) -> None:
    write_jsonl(folder / "data" / "forget.jsonl", [qa(i, "Jane Doe", text=True) for i in range(20)])
    found = check(folder, objective("forget.jsonl", evidence=f"    membership_auc <= 0.8\n    {bound}\n"))
    ul308 = [d for d in found if d.code == "UL308"]
    assert len(ul308) == 1 and ul308[0].severity == "error"
    # the tolerance the help offers instead is a measured one, and it passes
    offered = re.search(r"`(\w+_utility_drop <= \d+%)`", ul308[0].help[0])
    assert offered is not None
    again = check(folder, objective("forget.jsonl", evidence=f"    membership_auc <= 0.8\n    {offered.group(1)}\n"))
    assert "UL308" not in codes(again)


# -- UL302: a guarantee of erasure on a suppression goal -------------------------------------------------------


@pytest.mark.parametrize("guarantee", ["exact", "certified"])
def test_erasure_guarantee_on_suppression_is_ul302(folder: Path, guarantee: str) -> None:
    """FRAMEWORK.md §6: "goal suppression, but guarantee/claim of erasure from the model" is UL302 (M1). It was
    UL307 on the built-in model, saying the built-in model "cannot be retrained", which it can."""
    write_jsonl(folder / "data" / "forget.jsonl", [qa(i, "Jane Doe", text=True) for i in range(20)])
    body = objective("forget.jsonl", goal="suppression via model", method=f"  guarantee {guarantee}\n",
                     claims="not_generated")
    found = check(folder, body)
    assert "UL302" in codes(found) and not codes(found) & {"UL307", "UL403"}
    assert not any("cannot be retrained" in d.message or any("not built in" in lab.message for lab in d.labels)
                   for d in found)
    # what the help offers instead passes
    fixed = objective("forget.jsonl", goal="suppression via model", method="  guarantee empirical\n",
                      claims="not_generated")
    assert not {d.code for d in check(folder, fixed) if d.severity == "error"}


def test_exact_guarantee_on_removal_is_still_ul307(folder: Path) -> None:
    write_jsonl(folder / "data" / "forget.jsonl", [qa(i, "Jane Doe", text=True) for i in range(20)])
    body = objective("forget.jsonl", method="  method npo\n  guarantee exact\n")
    assert {"UL307"} <= codes(check(folder, body)) and "UL302" not in codes(check(folder, body))


# -- UL410: the narrower claim offered for scope-driven defaults -----------------------------------------------


def test_scope_claim_help_offers_a_scope_that_can_be_measured(folder: Path) -> None:
    """`not_generated` keeps a check per output kind in scope whatever `evidence` says, so the weaker claim is a
    narrower scope, not evidence bounds (which would not drop the uncomputable default). Here neither the forget set
    nor the test set holds a question; where the test set does, facts are measured on it alone (the next test)."""
    write_jsonl(folder / "data" / "forget.jsonl", [doc(i, "Jane Doe") for i in range(40)])
    write_jsonl(folder / "data" / "test.jsonl", [doc(1, "Jane Doe")])
    found = [d for d in check(folder, objective("forget.jsonl", claims="not_generated")) if d.code == "UL410"]
    assert len(found) == 1 and "knowledge_rouge" in found[0].message
    offered = [h for h in found[0].help if h.startswith("or ")]
    assert offered == ["or claim it for what can be measured here: `scope { outputs verbatim }`"]
    narrowed = objective("forget.jsonl", claims="not_generated").replace(
        "  goal removal\n", "  goal removal\n  scope {\n    outputs verbatim\n  }\n")
    assert "UL410" not in codes(check(folder, narrowed))


def test_facts_of_a_forget_set_of_documents_are_measured_on_the_test_questions(folder: Path) -> None:
    """The forget set holds documents only, the test set questions: knowledge ROUGE has nothing to ask of the
    documents, so `not_generated`'s facts are measured on the test set alone, and nothing is left uncomputable."""
    write_jsonl(folder / "data" / "forget.jsonl", [doc(i, "Jane Doe") for i in range(40)])
    assert "UL410" not in codes(check(folder, objective("forget.jsonl", claims="not_generated")))


# -- UL411: PrivLeak is an AUC gap too -------------------------------------------------------------------------


def test_privleak_bound_too_tight_for_the_items_is_ul411(folder: Path) -> None:
    """|PrivLeak| <= b (MUSE, percent) is an AUC gap of b/100 (1 - AUC_ref) to the reference: b/200 for a reference
    at chance. Ten documents against the holdout's cannot show a gap of 0.05 (FRAMEWORK.md §7)."""
    write_jsonl(folder / "data" / "forget.jsonl", [doc(i, "Jane Doe") for i in range(10)])
    write_jsonl(folder / "data" / "holdout.jsonl", [doc(i, f"Holdout Person {i}") for i in range(60)])
    _, evaluation = split_holdout(read_records(folder / "data" / "holdout.jsonl"), seed=0)
    width = auc_half_width_at_chance(10, len(evaluation))
    assert 0.05 < width <= 0.3
    # MUSE's formula at a reference at chance: an AUC `width` above it is a PrivLeak of -200 * width percent
    assert 100 * (0.5 - (0.5 + width)) / (1 - 0.5) == pytest.approx(-200 * width)

    def body(bound: str) -> str:
        return objective("forget.jsonl", model="acme/assistant-7b", more='  reference "acme/assistant-7b-retrained"\n',
                         extra_target='    holdout "data/holdout.jsonl"\n', claims="removed",
                         evidence=f"    {bound}\n")

    found = [d for d in check(folder, body("privleak <= 10")) if d.code == "UL411"]
    assert len(found) == 1
    assert found[0].message.startswith(f"claim `removed` cannot pass on 10 forget and {len(evaluation)} holdout "
                                       "documents: `privleak` is too noisy to show `privleak <= 10`")
    assert f"AUC interval of about ±{width:.2f}" in found[0].help[0]
    offered = [re.search(r"`privleak <= (\d+)`", h) for h in found[0].help]
    bounds = [int(o.group(1)) for o in offered if o]
    assert bounds == [math.ceil(200 * width)]
    assert "UL411" not in codes(check(folder, body(f"privleak <= {bounds[0]}")))


# -- UL406: the parameter evidence offered can be computed once written ---------------------------------------


def test_output_only_removal_help_offers_what_can_be_computed(folder: Path) -> None:
    """FRAMEWORK.md §5: removal evidence is membership inference and comparison with the retrained reference, and
    should include a representation probe. What the help offers to write must not itself be uncomputable (UL410)."""
    write_jsonl(folder / "data" / "forget.jsonl", [qa(i, "Jane Doe", text=True, paraphrase=True) for i in range(30)])
    write_jsonl(folder / "data" / "holdout.jsonl", [qa(i, f"Holdout Person {i}", text=True, paraphrase=True)
                                                    for i in range(200)])

    def body(evidence: str) -> str:
        return objective("forget.jsonl", model="acme/assistant-7b", extra_target='    holdout "data/holdout.jsonl"\n',
                         evidence=evidence)

    found = [d for d in check(folder, body("    verbatim_rouge <= 0.2\n")) if d.code == "UL406"]
    assert len(found) == 1
    first, *rest = found[0].help
    offered = re.findall(r"`(\w+ [<>]=? [0-9.]+)`", first.split(" to `evidence`")[0])
    # a holdout and no reference: membership inference, and forget quality against the holdout (its fallback);
    # the representation probe needs the reference and a labelled attribute, and the help says so
    assert offered == ["membership_auc <= 0.6", "forget_quality >= 0.05"]
    assert len(rest) == 1 and rest[0].startswith("`probe_accuracy_gap <= 0.1` needs a reference model")
    assert "attribute" in rest[0]
    again = check(folder, body("    verbatim_rouge <= 0.2\n" + "".join(f"    {o}\n" for o in offered)))
    assert not codes(again) & {"UL406", "UL410"}
