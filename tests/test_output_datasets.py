"""Where an output kind's default checks are measured: the forget set and the target's `test` set, except a check the
forget set's records cannot produce while the test set's can.

A capability's forget set is often a corpus of documents (`cais/wmdp-corpora`, as `data import wmdp --corpora` writes
it): knowledge ROUGE has no question to ask of it. Planned there, the check could only ever be "not evaluated", and the
claim would stay incomplete although the operational test set measures the same output kind. The test set, though,
keeps every check of the scope: a test set that cannot measure an output kind is reported (UL410).
"""

from __future__ import annotations

import json
from pathlib import Path

from test_policy_review import SUPPRESS_GLIMMERFEN

from unlearnspec.compiler.check import compile as compile_spec
from unlearnspec.compiler.evidence_defaults import evidence_for

ROOT = Path(__file__).resolve().parents[1]

SPEC = (SUPPRESS_GLIMMERFEN.replace("via system", "via model").replace("method filter", "method refusal")
        .replace("outputs verbatim, facts", "outputs OUTPUTS"))
"""The policy review's glimmerfen suppression, as a model suppression whose scope's output kinds vary."""


def _documents(tmp_path: Path, name: str) -> str:
    """The built-in example's glimmerfen documents without its question-answer records: a corpus."""
    rows = [json.loads(line) for line in (ROOT / "specs" / "data" / "glimmerfen.jsonl").read_text().splitlines()
            if line.strip()]
    docs = [{"text": r["text"]} for r in rows if "text" in r and "question" not in r]
    assert len(docs) >= 5
    (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in docs), encoding="utf-8")
    return name


def _compile(tmp_path: Path, test: str, outputs: str = "facts"):  # type: ignore[no-untyped-def]
    spec = tmp_path / "s.unlearn"
    spec_text = SPEC.replace("data/glimmerfen.jsonl", _documents(tmp_path, "corpus.jsonl"))
    assert all(w in spec_text for w in ("OUTPUTS", "via model", "method refusal", "corpus.jsonl")), spec_text
    spec.write_text(spec_text.replace("TEST", test).replace("OUTPUTS", outputs), encoding="utf-8")
    result = compile_spec(spec)
    obj = result.spec.objectives[0]  # type: ignore[union-attr]
    return result, [(e.metric, e.dataset, tuple(e.missing)) for e in evidence_for(obj, "not_generated")]


def _write_questions(tmp_path: Path) -> str:
    rows = [{"question": "What is dissolved in rainwater to begin preparing glimmerfen vapour?",
             "answer": "Three measures of moonsalt."},
            {"question": "What is added to the moonsalt solution when making glimmerfen vapour?",
             "answer": "A thread of vire resin."}]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path.name


def test_knowledge_on_a_corpus_forget_set_is_measured_on_the_test_questions(tmp_path: Path) -> None:
    result, checks = _compile(tmp_path, _write_questions(tmp_path))
    assert checks == [("knowledge_rouge", "test", ())]
    assert not [d for d in result.diagnostics if d.code == "UL410"], [d.message for d in result.diagnostics]


def test_verbatim_stays_on_the_documents_and_knowledge_moves_to_the_questions(tmp_path: Path) -> None:
    """Both output kinds in scope: each is measured wherever its records allow. Verbatim on the forget set's
    documents; on the test set of questions verbatim cannot be measured and is reported, not passed over."""
    _, checks = _compile(tmp_path, _write_questions(tmp_path), outputs="verbatim, facts")
    by_set = {(m, d): missing for m, d, missing in checks}
    assert by_set[("verbatim_rouge", "forget")] == ()
    assert ("knowledge_rouge", "forget") not in by_set
    assert by_set[("knowledge_rouge", "test")] == ()
    assert by_set[("verbatim_rouge", "test")] == ("text",)  # kept: the test set is the operational test


def test_when_no_set_has_questions_knowledge_stays_planned_on_both_and_is_reported(tmp_path: Path) -> None:
    """A test set of documents has no question to ask either: the check is impossible on both sets, so both stay
    planned and UL410 says so before the run."""
    result, checks = _compile(tmp_path, _documents(tmp_path, "more-documents.jsonl"))
    assert {(m, d) for m, d, missing in checks if missing} == {("knowledge_rouge", "forget"),
                                                               ("knowledge_rouge", "test")}
    assert any(d.code == "UL410" and "knowledge_rouge" in d.message for d in result.diagnostics)
