"""Output and likelihood metrics: published definitions, pinned to references, with real behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rouge_score import rouge_scorer
from scipy import stats

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.generation import generate_ids
from unlearnspec.runtime.evaluation.likelihood import encode_scored, record_texts, score_texts
from unlearnspec.runtime.evaluation.metrics import (
    answer_statistics,
    extraction_strength,
    forget_quality,
    forget_quality_from,
    harmonic_mean,
    knowledge_qa,
    normalize_answer,
    rouge_l,
    truth_ratio,
    utility,
    utility_drop,
    verbatim_memorisation,
)

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


# ------------------------------------------------------------------------------------ ROUGE-L
def test_rouge_l_is_rouge_score_with_stemming() -> None:
    preds = ["Lisbon", "she works as a pilot", "", "born in Oslo and works as a baker", "pilots working"]
    refs = ["Lisbon", "works as a pilot.", "Oslo", "Oslo", "pilot works"]
    got = rouge_l(preds, refs)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for i, (p, r) in enumerate(zip(preds, refs, strict=True)):
        ref = scorer.score(r, p)["rougeL"]
        assert (got.f1[i], got.recall[i], got.precision[i]) == (ref.fmeasure, ref.recall, ref.precision)
    assert got.f1[0] == 1.0 and got.recall[2] == 0.0 and got.recall[3] == 1.0 and got.f1[4] == 1.0
    with pytest.raises(ValueError):
        rouge_l(["a"], [])


# ------------------------------------------------------------------------------------ VerbMem
def test_verbatim_memorisation_separates_trained_from_untrained_models() -> None:
    tok, forget = tokenizer(), people().forget
    orig = verbatim_memorisation(tiny_lm("original"), tok, forget)
    fresh = verbatim_memorisation(tiny_lm("fresh"), tok, forget)
    assert orig.mean > 0.95 and fresh.mean < 0.2
    assert orig.mean >= verbatim_memorisation(tiny_lm("reference"), tok, forget).mean
    assert orig.item_ids == list(range(len(forget)))
    for r, prompt, ref in zip(forget, orig.prompts, orig.references, strict=True):
        assert prompt + ref == r.text  # split at a token boundary, nothing lost
        assert 0 < len(prompt) < len(r.text)


def test_verbatim_prefix_fraction_and_records_without_text() -> None:
    tok = tokenizer()
    recs = [Record(question="Q?", answer="A"), people().forget[0]]
    short = verbatim_memorisation(tiny_lm("original"), tok, recs, prefix_fraction=0.2)
    long = verbatim_memorisation(tiny_lm("original"), tok, recs, prefix_fraction=0.8)
    assert short.item_ids == long.item_ids == [1]
    assert len(short.prompts[0]) < len(long.prompts[0])
    with pytest.raises(ValueError):
        verbatim_memorisation(tiny_lm("original"), tok, recs, prefix_fraction=1.0)


# ------------------------------------------------------------------------------- knowledge QA
def test_knowledge_qa_direct_and_paraphrased() -> None:
    tok, p = tokenizer(), people()
    orig = knowledge_qa(tiny_lm("original"), tok, p.forget)
    ref = knowledge_qa(tiny_lm("reference"), tok, p.forget)
    assert orig.mean_recall == 1.0 and all(orig.exact)
    assert ref.mean_recall < 0.6 and ref.exact_rate < 0.6
    para = knowledge_qa(tiny_lm("original"), tok, p.forget, paraphrased=True)
    assert len(para.prompts) == 2 * len(p.forget)
    assert para.item_ids == [i for i in range(len(p.forget)) for _ in range(2)]
    assert set(para.per_item_max()) == set(range(len(p.forget)))


def test_normalize_answer_for_exact_match() -> None:
    assert normalize_answer("  The Lisbon. ") == normalize_answer("lisbon") == "lisbon"
    assert normalize_answer("New  York!") == "new york"


# ------------------------------------------------------------------------- extraction strength
def _es_by_generation(model, tok, texts: list[str], prompts: list[str]) -> list[float]:
    """ES by definition: shortest prefix from which greedy decoding reproduces the rest exactly."""
    ids, starts = encode_scored(tok, texts, prompts, 96)
    jobs: list[tuple[int, int]] = []
    prompt_ids, budgets = [], []
    for i, (row, s) in enumerate(zip(ids, starts, strict=True)):
        for k in range(len(row) - s + 1):
            jobs.append((i, k))
            prompt_ids.append(row[: s + k])
            budgets.append(len(row) - s - k)
    outs = generate_ids(model, tok, prompt_ids, max_new_tokens=budgets, batch_size=64)
    best = {i: len(row) - s for i, (row, s) in enumerate(zip(ids, starts, strict=True))}
    for (i, k), out in zip(jobs, outs, strict=True):
        if out == ids[i][starts[i] + k:]:
            best[i] = min(best[i], k)
    return [1 - best[i] / (len(ids[i]) - starts[i]) for i in range(len(texts))]


@pytest.mark.parametrize("variant", ["original", "reference"])
def test_extraction_strength_from_flags_equals_generation(variant: str) -> None:
    model, tok, p = tiny_lm(variant), tokenizer(), people()
    texts, prompts, _ = record_texts(p.forget[:4], "text")
    qa_texts, qa_prompts, _ = record_texts(p.forget[4:] + p.holdout[:2], "qa")
    texts, prompts = texts + qa_texts, prompts + qa_prompts
    es = extraction_strength(score_texts(model, tok, texts, prompt_texts=prompts))
    np.testing.assert_allclose(es, _es_by_generation(model, tok, texts, prompts))
    if variant == "reference":
        assert 0 < es.mean() < 1  # a non-trivial case


# ----------------------------------------------------------------------------- truth ratio
def test_truth_ratio_is_lower_for_memorised_items() -> None:
    tok, p = tokenizer(), people()
    orig = truth_ratio(tiny_lm("original"), tok, p.forget)
    ref = truth_ratio(tiny_lm("reference"), tok, p.forget)
    assert np.all(orig < ref)
    assert np.all(orig < 0.1) and np.median(ref) > 1.0


def test_truth_ratio_definition_and_missing_parts() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    r = people().retain[0]
    assert r.question is not None and r.answer is not None
    recs = [r, Record(question=r.question, answer=r.answer), Record(text="Alma Varga was born in Lisbon.")]
    st = answer_statistics(model, tok, recs)
    gold = score_texts(model, tok, [f"Question: {r.question}\nAnswer: {r.answer}"],
                       prompt_texts=[f"Question: {r.question}\nAnswer:"]).loss()[0]
    pert = [score_texts(model, tok, [f"Question: {r.question}\nAnswer: {a}"],
                        prompt_texts=[f"Question: {r.question}\nAnswer:"]).loss()[0] for a in r.perturbed]
    # (prod_j P(a_j|q)^(1/|a_j|))^(1/m) / P(a|q)^(1/|a|)
    expected = np.prod(np.exp(-np.array(pert))) ** (1 / len(pert)) / np.exp(-gold)
    assert st.truth_ratio[0] == pytest.approx(expected, rel=1e-6)
    assert math.isnan(st.truth_ratio[1]) and math.isnan(st.truth_ratio[2])
    assert st.answer_loss[1] == pytest.approx(gold, abs=1e-9) and math.isnan(st.answer_loss[2])
    assert np.isfinite(st.text_loss[2]) and st.loss[2] == st.text_loss[2]


def test_truth_ratio_takes_tofus_paraphrased_answer_when_the_record_gives_one() -> None:
    """TOFU's denominator is a paraphrased answer (the importer keeps TOFU's `paraphrased_answer`): with one, the
    ratio compares the perturbed answers with it, not with the gold answer the model was trained on."""
    model, tok = tiny_lm("original"), tokenizer()
    r = people().retain[0].model_copy(update={"paraphrased_answer": "the city of Lisbon"})
    assert r.question is not None
    st = answer_statistics(model, tok, [r, people().retain[0]])

    def loss(a: str) -> float:
        return float(score_texts(model, tok, [f"Question: {r.question}\nAnswer: {a}"],
                                 prompt_texts=[f"Question: {r.question}\nAnswer:"]).loss()[0])

    pert = [loss(a) for a in r.perturbed]
    expected = np.prod(np.exp(-np.array(pert))) ** (1 / len(pert)) / np.exp(-loss("the city of Lisbon"))
    assert st.truth_ratio[0] == pytest.approx(expected, rel=1e-5)  # batched with padding: float32 rounding
    assert st.paraphrased is not None and list(st.paraphrased) == [True, False]
    assert st.truth_ratio[0] != pytest.approx(st.truth_ratio[1])  # the gold answer stands in only without one
    assert st.answer_loss[0] == pytest.approx(loss(r.answer or ""), abs=1e-5)  # the answer's loss is the gold's


# -------------------------------------------------------------------------- forget quality
def test_forget_quality_is_the_ks_pvalue() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(0.3, size=30)
    assert forget_quality(a, b) == stats.ks_2samp(a, b).pvalue
    assert forget_quality(a, a) == 1.0
    assert forget_quality([*a, np.nan], b) == forget_quality(a, b)
    assert math.isnan(forget_quality([], b))
    # TOFU's 1/R transform gives the same p-value
    pos_a, pos_b = np.exp(a), np.exp(b)
    assert forget_quality(pos_a, pos_b) == pytest.approx(forget_quality(1 / pos_a, 1 / pos_b))


def test_forget_quality_against_the_retrained_reference() -> None:
    tok, p = tokenizer(), people()
    ref = answer_statistics(tiny_lm("reference"), tok, p.forget)
    orig = answer_statistics(tiny_lm("original"), tok, p.forget)
    same = forget_quality_from(ref, ref)
    leaked = forget_quality_from(orig, ref)
    assert same.statistic == leaked.statistic == "truth_ratio"
    assert same.pvalue == 1.0 and leaked.pvalue < 0.05
    assert leaked.n_unlearned == leaked.n_reference == len(p.forget)


def test_forget_quality_falls_back_on_losses_without_perturbed_answers() -> None:
    tok = tokenizer()
    docs = [Record(text=r.text) for r in people().forget]
    fq = forget_quality_from(answer_statistics(tiny_lm("original"), tok, docs),
                             answer_statistics(tiny_lm("reference"), tok, docs))
    assert fq.statistic == "loss" and fq.n_unlearned == len(docs)
    assert 0.0 <= fq.pvalue <= 1.0


# ------------------------------------------------------------------------------------ utility
def test_utility_of_a_trained_model_beats_a_fresh_one() -> None:
    tok, p = tokenizer(), people()
    good = utility(tiny_lm("original"), tok, p.retain)
    bad = utility(tiny_lm("fresh"), tok, p.retain)
    assert set(good.components) == {"rouge_recall", "probability", "truth_ratio", "text_probability",
                                    "verbatim_rouge"}
    assert good.value > 0.9 and bad.value < 0.2
    assert good.value == pytest.approx(stats.hmean(list(good.components.values())))
    qa_only = utility(tiny_lm("original"), tok, [Record(question=r.question, answer=r.answer) for r in p.retain])
    assert set(qa_only.components) == {"rouge_recall", "probability"} and qa_only.n_text == 0


def test_utility_drop_and_harmonic_mean() -> None:
    assert utility_drop(0.8, 0.6) == pytest.approx(25.0)
    assert utility_drop(0.5, 0.6) == pytest.approx(-20.0)
    assert utility_drop(0.0, 0.0) == 0.0 and math.isnan(utility_drop(math.nan, 0.1))
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(stats.hmean([0.5, 1.0]))
    assert harmonic_mean([0.0, 1.0]) == 0.0 and math.isnan(harmonic_mean([]))


def test_a_guarded_system_is_scored_through_generate_fn() -> None:
    """An output filter in front of the model: the metrics score what the system says."""
    model, tok, p = tiny_lm("original"), tokenizer(), people()
    seen: list[list[str]] = []

    def refuse_all(prompts: list[str]) -> list[str]:
        seen.append(prompts)
        return ["I don't know."] * len(prompts)

    qa = knowledge_qa(model, tok, p.forget, generate_fn=refuse_all)
    assert qa.mean_recall == 0.0 and not any(qa.exact)
    vm = verbatim_memorisation(model, tok, p.forget, generate_fn=refuse_all)
    assert vm.mean < 0.2 and seen[-1] == vm.prompts
    assert knowledge_qa(model, tok, p.forget).mean_recall == 1.0  # the model itself still knows


def test_verbatim_scores_the_true_continuation_cut_to_the_generation_budget() -> None:
    """MUSE compares continuations of one length: with a budget of k tokens the reference is the true continuation's
    first k tokens, so a model reproducing them exactly scores 1 (before, it was scored against the whole rest of
    the document and a perfect regurgitation of 3 tokens scored well below 1)."""
    tok, forget = tokenizer(), people().forget
    budget = 3
    res = verbatim_memorisation(tiny_lm("original"), tok, forget, max_new_tokens=budget)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for r, prompt, ref, cont, f1 in zip(forget, res.prompts, res.references, res.continuations, res.scores,
                                        strict=True):
        ids = tok(r.text)["input_ids"]
        k = len(tok(prompt)["input_ids"])
        assert ids[:k] == tok(prompt)["input_ids"]
        assert ref == tok.decode(ids[k:k + budget], skip_special_tokens=True)  # cut to the budget
        assert f1 == scorer.score(ref, cont)["rougeL"].fmeasure
        whole = tok.decode(ids[k:], skip_special_tokens=True)
        assert scorer.score(whole, cont)["rougeL"].fmeasure < 1.0  # what the uncut reference would have given
    assert res.mean == 1.0  # the original model regurgitates its training documents
