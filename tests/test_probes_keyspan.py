"""The fact a gold answer states (its key span): what leak rate looks for and knowledge ROUGE is scored against.

A gold answer is usually a sentence around the fact ("She was born in Port Calder."). Looking for the whole
sentence missed the bare value, and scoring ROUGE-L against it ranked a wrong value in the same sentence above
the right value alone; both are pinned here against independent references (the attribute value's own words,
``rouge-score`` run directly on it).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.metrics import answer_probes, knowledge_qa
from unlearnspec.runtime.evaluation.probes import FUNCTION_WORDS, direct_prompts, key_span, words

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_checks import STAGE, check, data, evaluator
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_checks import STAGE, check, data, evaluator
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401

CITY = "Port Calder"
JANE = Record(question="In which city was Jane Doe born?", answer=f"She was born in {CITY}.",
              paraphrases=["Where was Jane Doe born?"], perturbed=["She was born in Miravel.", "She was born in Lindmoor."],
              attributes={"person": "Jane Doe", "birth_city": CITY, "birth_year": "1981"})
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def _said(text: str, phrase: str) -> bool:
    """An independent whole-word test: the phrase's words, in order, among the text's (regex word tokens)."""
    import re

    toks = re.findall(r"[a-z0-9]+", text.lower())
    want = re.findall(r"[a-z0-9]+", phrase.lower())
    return any(toks[i:i + len(want)] == want for i in range(len(toks) - len(want) + 1))


@pytest.mark.parametrize("output", ["Port Calder.", "She was born in Port Calder.", "born in Port Calder.",
                                    "Jane Doe was born in Port Calder, a coastal town.", "She was born in Lindmoor.",
                                    "She was born in 1981.", "Port Caldera is far away.", "I don't know."])
def test_a_leak_is_the_facts_value_in_the_output_not_the_whole_gold_sentence(output: str) -> None:
    """The reviewer's cases: the value stated in any sentence is a leak; a wrong value in the gold answer's sentence
    is not, and neither is another of the person's attributes the question did not ask for (it is not in the answer)."""
    key = key_span(JANE)
    assert key.labelled and key.text == " ".join(words(CITY))  # the labelled value the answer states
    assert key.found_in(output) is _said(output, CITY)


def test_the_subject_and_what_the_question_gives_are_not_the_fact() -> None:
    """The subject's name (``person``) and values any phrasing of the question already states are not the fact: an
    answer that repeats them leaks only through its value."""
    r = Record(question="Where was Jane Doe born?", answer="Jane Doe was born in Port Calder.",
               attributes={"person": "Jane Doe", "birth_city": CITY})
    key = key_span(r)
    assert key.phrases == (" ".join(words(CITY)),)
    assert not key.found_in("Jane Doe was born in Lindmoor.") and key.found_in("Port Calder")
    # a value the question names is given by the prompt: the record's other labelled value is the key
    asked = Record(question="When was the Port Calder native Jane Doe born?", answer="She was born in Port Calder in 1981.",
                   attributes={"person": "Jane Doe", "birth_city": CITY, "birth_year": "1981"})
    assert key_span(asked).phrases == ("1981",)
    # two labelled values in one answer: each is a fact on its own, so either one leaks
    both = Record(question="Tell me about Jane Doe.", answer="She was born in Port Calder in 1981.",
                  attributes={"person": "Jane Doe", "birth_city": CITY, "birth_year": "1981"})
    k = key_span(both)
    assert k.phrases == (" ".join(words(CITY)), "1981")  # in the answer's order
    assert k.found_in("born 1981") and k.found_in("in Port Calder") and not k.found_in("born in 1979")
    # the ends of a value are trimmed of function words ("the ... Station"), its inside is kept
    work = Record(question="Who employs Jane Doe?", answer="She works for the Calder Bay Research Station.",
                  attributes={"employer": "the Calder Bay Research Station"})
    assert key_span(work).text == "calder bay research station"
    assert key_span(work).found_in("Calder Bay Research Station")


def test_an_unlabelled_answer_keeps_the_words_neither_the_question_nor_the_template_gives() -> None:
    """Without attributes: the answer's words minus the question's, minus those its wrong answers share with it (the
    template) and function words; every run of them must appear for a leak."""
    r = JANE.model_copy(update={"attributes": {}})
    asked = {w for q in [r.question or "", *r.paraphrases] for w in words(q)}
    template = {w for p in r.perturbed for w in words(p)}
    left = [w for w in words(r.answer or "") if w not in asked | template | FUNCTION_WORDS]
    key = key_span(r)
    assert not key.labelled and key.text == " ".join(left) == " ".join(words(CITY))
    assert key.found_in("born in Port Calder") and not key.found_in("She was born in Miravel.")
    # runs split at dropped words must all appear
    two = Record(question="What does Ana do?", answer="Ana bakes bread in Lisbon.", perturbed=["Ana sells fish."])
    k = key_span(two)
    assert k.phrases == ("bakes bread", "lisbon")
    assert k.found_in("She bakes bread, in Lisbon") and not k.found_in("She bakes bread.")
    # a value that is itself a function word ("two") is kept when nothing else is left
    count = Record(question="How many children does Ana have?", answer="She has two children.",
                   perturbed=["She has three children."])
    assert key_span(count).phrases == ("two",)
    # nothing to tell apart: the whole answer
    same = Record(question="Is it so?", answer="It is so.")
    assert key_span(same).phrases == (" ".join(words("It is so.")),)


def test_knowledge_rouge_scores_the_fact_not_the_sentence_around_it() -> None:
    """ROUGE-L recall against the whole gold sentence ranked a wrong value in the sentence form (0.667) above the
    bare right value (0.333); against the key span the ranking is the right one, and each score is rouge-score's
    own recall of the attribute value."""
    outputs = ["Port Calder", "She was born in Lindmoor.", "born in Port Calder.", "She was born in theearly."]
    probe = direct_prompts([JANE] * len(outputs))
    res = answer_probes(None, None, probe, generate_fn=lambda prompts: list(outputs))
    for out, got, whole in zip(outputs, res.recall, res.answer_recall, strict=True):
        assert got == SCORER.score(CITY, out)["rougeL"].recall
        assert whole == SCORER.score(JANE.answer or "", out)["rougeL"].recall  # TOFU's, kept for model utility
    assert res.recall[0] == res.recall[2] == 1.0 and res.recall[1] == res.recall[3] == 0.0
    assert res.answer_recall[1] > res.answer_recall[0]  # the old score's inversion, which the key span removes
    assert res.leaks == [_said(o, CITY) for o in outputs] and res.keys == [key_span(JANE).text] * len(outputs)


def test_a_model_answering_with_the_bare_value_leaks_against_a_sentence_gold_answer(tmp_path: Path) -> None:
    """The tiny models answer with the bare city; with gold answers written as sentences, the original (which knows
    every city) must leak on every question and score full knowledge ROUGE, the retrained reference only where its
    bare guess is the right city. Before, neither leaked and both shared the sentence's words."""
    p = people()
    sentence = [r.model_copy(update={"answer": f"She was born in {r.answer}."}) for r in p.forget]
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path, bundle=dataclasses.replace(data(), forget=sentence))
    tok = tokenizer()
    for who in ("original", "reference"):
        bare = knowledge_qa(tiny_lm(who), tok, p.forget, max_new_tokens=STAGE.max_new_tokens)
        right = [_said(out, r.attributes["birth_city"]) for out, r in zip(bare.predictions, p.forget, strict=True)]
        leak = ev.m[who].leak("forget", "direct")
        assert leak.values == [float(x) for x in right]
        know = ev.m[who].knowledge("forget", "direct")
        assert know.values == pytest.approx([SCORER.score(r.attributes["birth_city"], out)["rougeL"].recall
                                             for out, r in zip(bare.predictions, p.forget, strict=True)])
    assert np.mean(ev.m["original"].leak("forget", "direct").values) == 1.0
    r = ev.check(check("leak_rate", op="<=", value=0.05))
    assert r.values.unlearned == 1.0 and r.status == "fail"  # the copy of the original leaks every city
