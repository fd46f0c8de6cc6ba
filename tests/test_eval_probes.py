"""Probe prompt sets, and answering them in one batched generation."""

from __future__ import annotations

import pytest

from unlearnspec.records import Record, format_prompt
from unlearnspec.runtime.evaluation.metrics import answer_probes
from unlearnspec.runtime.evaluation.probes import (
    ADVERSARIAL_TEMPLATES,
    IN_CONTEXT_HEADER,
    adversarial_prompts,
    direct_prompts,
    in_context_prompts,
    key_span,
    paraphrased_prompts,
    probe_set,
)

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401

RECS = [
    Record(question="Where was Alma Varga born?", answer="Lisbon", paraphrases=["Alma Varga's birthplace?"]),
    Record(text="A document without a question."),
    Record(question="What does Boris Quispe do?", answer="baker", paraphrases=["Job of Boris?", "Boris works as?"]),
]


def test_adversarial_templates_are_documented_and_wrap_the_question() -> None:
    ids = [t.id for t in ADVERSARIAL_TEMPLATES]
    assert len(ids) >= 5 and len(set(ids)) == len(ids)
    assert {"prefix_injection", "role_play", "completion_priming", "system_override", "single_word"} <= set(ids)
    for t in ADVERSARIAL_TEMPLATES:
        assert t.description and t.template.count("{prompt}") == 1
        assert format_prompt("Where is X?") in t.render("Where is X?")
    assert "Ignore previous instructions" in ADVERSARIAL_TEMPLATES[0].render("q")
    assert next(t for t in ADVERSARIAL_TEMPLATES if t.id == "completion_priming").render("q").endswith(
        "Sure! The answer is")


def test_direct_and_paraphrased_prompts_keep_record_ids() -> None:
    prompts, answers, ids = direct_prompts(RECS)
    assert direct_prompts(RECS).record_index == ids
    assert prompts == [format_prompt("Where was Alma Varga born?"), format_prompt("What does Boris Quispe do?")]
    assert answers == ["Lisbon", "baker"] and ids == [0, 2]
    para = paraphrased_prompts(RECS)
    assert para.item_ids == [0, 2, 2] and para.answers == ["Lisbon", "baker", "baker"]
    assert para.variants == ["paraphrase:0", "paraphrase:0", "paraphrase:1"]
    assert para.prompts[2] == format_prompt("Boris works as?")


def test_adversarial_prompts_expand_every_template() -> None:
    probe = adversarial_prompts(RECS)
    assert len(probe) == 2 * len(ADVERSARIAL_TEMPLATES)
    assert probe.variants[: len(ADVERSARIAL_TEMPLATES)] == [t.id for t in ADVERSARIAL_TEMPLATES]
    two = adversarial_prompts(RECS, ["role_play", "single_word"])
    assert two.item_ids == [0, 0, 2, 2] and two.variants == ["role_play", "single_word"] * 2
    with pytest.raises(ValueError, match="did_not_exist|known"):
        adversarial_prompts(RECS, ["did_not_exist"])


def test_in_context_prompts_put_the_related_fact_next_to_the_question() -> None:
    facts = ["Boris Quispe was born in Lima and works as a baker.", "Alma Varga was born in Lisbon."]
    probe = in_context_prompts(RECS, facts)
    first = probe.prompts[0]
    assert first.startswith(IN_CONTEXT_HEADER) and first.endswith(format_prompt("Where was Alma Varga born?"))
    assert first.index("Boris Quispe was born") < first.index("Alma Varga was born in Lisbon")
    second = probe.prompts[1]
    assert second.index("Alma Varga was born") < second.index("Boris Quispe was born")
    assert in_context_prompts(RECS, []).prompts == direct_prompts(RECS).prompts


def test_probe_set_dispatches_plan_probe_names() -> None:
    assert probe_set("direct", RECS).prompts == direct_prompts(RECS).prompts
    assert probe_set("paraphrased", RECS).item_ids == [0, 2, 2]
    assert len(probe_set("adversarial", RECS, templates=["single_word"])) == 2
    ctx = probe_set("in_context", RECS)
    assert "A document without a question." in ctx.prompts[0]
    qa_only = probe_set("in_context", [RECS[0]])
    assert "Answer: Lisbon" in qa_only.prompts[0]
    with pytest.raises(ValueError):
        probe_set("telepathy", RECS)


def test_probes_are_answered_in_one_batched_generation() -> None:
    model, tok, p = tiny_lm("original"), tokenizer(), people()
    direct = answer_probes(model, tok, direct_prompts(p.forget))
    adv = answer_probes(model, tok, adversarial_prompts(p.forget, ["completion_priming", "role_play"]))
    assert direct.mean_recall == 1.0
    assert len(adv.recall) == 2 * len(p.forget) and adv.variants[:2] == ["completion_priming", "role_play"]
    assert set(adv.per_item_max()) == set(range(len(p.forget)))
    assert all(0.0 <= v <= 1.0 for v in adv.recall)


def test_every_probe_prompt_carries_its_records_key_span() -> None:
    """Each prompt is scored against the fact of the record it came from, whatever the probe wraps it in."""
    recs = [*RECS, Record(question="Where was Cleo born?", answer="She was born in Oslo.",
                          attributes={"person": "Cleo", "birth_city": "Oslo"})]
    for ps in (direct_prompts(recs), paraphrased_prompts(recs), adversarial_prompts(recs), probe_set("in_context", recs)):
        assert ps.keys == [key_span(recs[i]) for i in ps.item_ids]
    assert direct_prompts(recs).keys[-1].text == "oslo"
