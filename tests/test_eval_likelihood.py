"""The batched likelihood pass: agreement with per-example references and metric behaviour."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from unlearnspec.records import format_prompt, format_qa
from unlearnspec.runtime.evaluation.likelihood import record_texts, score_records, score_texts

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


def _reference_token_stats(model, tok, text: str, prompt: str = ""):
    """Per-example, unbatched, no padding: the straightforward computation the batch must match."""
    ids = tok(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].double()
    logp = torch.log_softmax(logits, -1)
    target = ids[0, 1:]
    lp = logp.gather(-1, target[:, None])[:, 0]
    p = logp.exp()
    mu = (p * logp).sum(-1)
    var = (p * logp**2).sum(-1) - mu**2
    hit = logp.argmax(-1) == target
    start = 0
    if prompt:  # tokens that hold any character after the prompt are scored
        offsets = tok(text, return_offsets_mapping=True)["offset_mapping"]
        start = next(j for j, (_, end) in enumerate(offsets) if end > len(prompt)) - 1
    return lp[start:].numpy(), mu[start:].numpy(), var[start:].numpy(), hit[start:].numpy()


def _mixed_texts():
    p = people()
    texts, prompts, _ = record_texts(p.forget[:3] + p.holdout[:2], "text")
    qa_texts, qa_prompts, _ = record_texts(p.retain[:4], "qa")
    return texts + qa_texts, prompts + qa_prompts


def test_batched_scores_match_unbatched_per_example_pass() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    texts, prompts = _mixed_texts()
    batched = score_texts(model, tok, texts, prompt_texts=prompts, batch_size=4)
    assert batched.logprobs.shape[0] == len(texts)
    for i, (t, pr) in enumerate(zip(texts, prompts, strict=True)):
        lp, mu, var, hit = _reference_token_stats(model, tok, t, pr)
        assert batched.n_tokens[i] == len(lp)
        np.testing.assert_allclose(batched.per_item("logprobs")[i], lp, atol=1e-5, rtol=0)
        np.testing.assert_allclose(batched.per_item("mu")[i], mu, atol=1e-5, rtol=0)
        np.testing.assert_allclose(batched.per_item("sigma2")[i], var, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(batched.per_item("correct")[i], hit)


def test_loss_matches_the_model_own_loss_on_labels() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    texts = [r.text for r in people().forget if r.text]
    scores = score_texts(model, tok, texts)
    for i, t in enumerate(texts):
        ids = tok(t, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hf_loss = model(input_ids=ids, labels=ids).loss.item()
        assert scores.loss()[i] == pytest.approx(hf_loss, abs=1e-5)


def test_batch_size_does_not_change_results() -> None:
    model, tok = tiny_lm("reference"), tokenizer()
    texts, prompts = _mixed_texts()
    a = score_texts(model, tok, texts, prompt_texts=prompts, batch_size=1)
    b = score_texts(model, tok, texts, prompt_texts=prompts, batch_size=32)
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
    np.testing.assert_allclose(a.min_k_plus_plus(), b.min_k_plus_plus(), atol=1e-4)


def test_prompt_tokens_are_not_scored() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    r = people().forget[0]
    assert r.question is not None and r.answer is not None
    full = format_qa(r.question, r.answer)
    s = score_texts(model, tok, [full], prompt_texts=[format_prompt(r.question)])
    answer_tokens = len(tok(full)["input_ids"]) - len(tok(format_prompt(r.question))["input_ids"])
    assert s.n_tokens[0] == answer_tokens
    assert s.scored_texts == [" " + r.answer]
    whole = score_texts(model, tok, [full])
    assert whole.n_tokens[0] == len(tok(full)["input_ids"]) - 1
    with pytest.raises(ValueError, match="prefix"):
        score_texts(model, tok, [full], prompt_texts=["not a prefix"])


def _shi_min_k(logprobs: np.ndarray, ratio: float) -> float:
    """Min-K% as in Shi et al.'s reference code, with at least one token."""
    k_length = max(1, int(len(logprobs) * ratio))
    return float(np.mean(np.sort(logprobs)[:k_length]))


@pytest.mark.parametrize("k", [0.1, 0.2, 0.5, 1.0])
def test_min_k_and_min_k_plus_plus_match_per_item_reference(k: float) -> None:
    model, tok = tiny_lm("original"), tokenizer()
    texts, prompts = _mixed_texts()
    s = score_texts(model, tok, texts, prompt_texts=prompts)
    for i in range(len(s)):
        lp, mu, var = s.per_item("logprobs")[i], s.per_item("mu")[i], s.per_item("sigma2")[i]
        assert s.min_k(k)[i] == pytest.approx(_shi_min_k(lp, k), abs=1e-9)
        z = (lp - mu) / np.sqrt(np.maximum(var, 1e-6))
        assert s.min_k_plus_plus(k)[i] == pytest.approx(_shi_min_k(z, k), abs=1e-9)
        assert s.exact_memorisation()[i] == pytest.approx(np.mean(s.per_item("correct")[i]))
        expected_zlib = -np.mean(lp) / len(zlib.compress(s.scored_texts[i].encode()))
        assert s.zlib()[i] == pytest.approx(expected_zlib)


def test_memorised_items_score_as_members() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    p = people()
    f, h = score_records(model, tok, p.forget), score_records(model, tok, p.holdout)
    assert f.loss().max() < h.loss().min()
    assert f.min_k().mean() > h.min_k().mean()
    assert f.min_k_plus_plus().mean() > h.min_k_plus_plus().mean()
    assert f.exact_memorisation().mean() > h.exact_memorisation().mean()
    np.testing.assert_allclose(f.answer_probability(), np.exp(-f.loss()))


def test_degenerate_inputs_give_nan_not_errors() -> None:
    model, tok = tiny_lm("fresh"), tokenizer()
    empty = score_texts(model, tok, [])
    assert len(empty) == 0 and empty.loss().shape == (0,)
    one = score_texts(model, tok, ["x", "Oslo is cold."])  # one token: nothing to score
    assert one.n_tokens[0] == 0 and np.isnan(one.loss()[0]) and np.isnan(one.min_k()[0])
    assert np.isfinite(one.loss()[1])


def test_scoring_restores_train_mode_and_needs_no_grad() -> None:
    model, tok = tiny_lm("fresh"), tokenizer()
    model.train()
    try:
        s = score_texts(model, tok, ["Alma Varga was born in Lisbon."])
        assert model.training
        assert np.isfinite(s.loss()).all()
    finally:
        model.eval()


def test_record_texts_chooses_document_then_qa() -> None:
    from unlearnspec.records import Record

    recs = [Record(text="Doc one."), Record(question="Q?", answer="A"), Record(text="Doc", question="Q?", answer="A")]
    texts, prompts, index = record_texts(recs, "auto")
    assert texts == ["Doc one.", "Question: Q?\nAnswer: A", "Doc"] and prompts == ["", "Question: Q?\nAnswer:", ""]
    assert record_texts(recs, "qa")[2] == [1, 2]
    assert record_texts(recs, "text")[2] == [0, 2] and index == [0, 1, 2]
