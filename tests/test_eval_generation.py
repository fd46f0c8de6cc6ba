"""Batched greedy generation: left padding must not change what the model says."""

from __future__ import annotations

import torch

from unlearnspec.records import format_prompt
from unlearnspec.runtime.evaluation.generation import generate, generate_ids

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


def _prompts() -> list[str]:
    p = people()
    # different lengths, so a batch needs padding
    return ([format_prompt(r.question) for r in p.forget[:3] + p.holdout[:2] if r.question]
            + ["Alma Varga was", "Question: In which city was Boris Quispe born?\nAnswer:"])


def _unbatched_greedy(model, tok, prompt: str, max_new_tokens: int) -> str:
    """One prompt, no padding, plain greedy loop without generate(): the reference."""
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return tok.decode(out, skip_special_tokens=True)


def test_left_padded_batch_equals_unbatched_generation() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    prompts = _prompts()
    batched = generate(model, tok, prompts, max_new_tokens=12, batch_size=8)
    single = [_unbatched_greedy(model, tok, pr, 12) for pr in prompts]
    assert batched == single
    assert batched == generate(model, tok, prompts, max_new_tokens=12, batch_size=1)


def test_generation_stops_at_eos_and_strips_the_prompt() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    r = people().forget[0]
    assert r.question is not None
    (answer,) = generate(model, tok, [format_prompt(r.question)], max_new_tokens=20)
    assert answer.strip() == r.answer  # the model learned to end answers with EOS
    assert "Question" not in answer


def test_generation_is_deterministic_and_leaves_the_tokenizer_alone() -> None:
    model, tok = tiny_lm("reference"), tokenizer()
    side = tok.padding_side
    a = generate(model, tok, _prompts(), max_new_tokens=8)
    b = generate(model, tok, _prompts(), max_new_tokens=8)
    assert a == b
    assert tok.padding_side == side


def test_per_prompt_budgets_equal_separate_runs() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    ids = [tok(p)["input_ids"] for p in _prompts()]
    budgets = [1, 3, 5, 2, 4, 6, 0]
    together = generate_ids(model, tok, ids, max_new_tokens=budgets, batch_size=4)
    for row, budget, out in zip(ids, budgets, together, strict=True):
        assert len(out) <= budget
        assert out == generate_ids(model, tok, [row], max_new_tokens=budget)[0]


def test_overlong_prompts_keep_their_end() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    r = people().forget[1]
    assert r.question is not None
    filler = "Here are some facts. " * 60  # far beyond the 96-token context
    (answer,) = generate(model, tok, [filler + format_prompt(r.question)], max_new_tokens=6)
    assert isinstance(answer, str)
    assert generate(model, tok, [], max_new_tokens=4) == []


def test_only_the_false_padding_alarm_is_filtered() -> None:
    import logging

    from unlearnspec.runtime.evaluation import generation

    logger = logging.getLogger("transformers.modeling_utils")
    [flt] = [f for f in logger.filters if isinstance(f, generation._PaddedFinishedRowsWarning)]

    def record(msg: str) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, msg, (), None)

    assert not flt.filter(record("We strongly recommend passing in an `attention_mask` since your input_ids may be padded."))
    assert flt.filter(record("Some weights of the model checkpoint were not used"))


def test_the_models_shipped_generation_config_does_not_change_what_it_says() -> None:
    """A checkpoint's own ``generation_config`` (repetition penalty, no-repeat n-grams, suppressed tokens, a minimum
    length) would change greedy decoding — transformers fills every field a passed config leaves unset from it, as
    the direct ``model.generate`` call below shows — so the evidence would depend on a file beside the weights.
    Decoding sets it aside: the outputs are the plain greedy loop's, with or without PEFT around the model, and the
    model keeps its config."""
    import copy

    from peft import LoraConfig, get_peft_model
    from transformers import GenerationConfig

    tok, prompts = tokenizer(), _prompts()
    model = copy.deepcopy(tiny_lm("original"))
    clean = [_unbatched_greedy(model, tok, pr, 12) for pr in prompts]
    shipped = model.generation_config
    first = tok(clean[0])["input_ids"][0]  # the first token of an answer, suppressed by the shipped config
    shipped.repetition_penalty, shipped.no_repeat_ngram_size = 3.0, 2
    shipped.suppress_tokens, shipped.min_new_tokens = [first], 10
    ours = GenerationConfig(max_new_tokens=12, do_sample=False, num_beams=1, eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id)
    ids = tok(prompts[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        raw = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=ours)
    assert tok.decode(raw[0, ids.shape[1]:], skip_special_tokens=True) != clean[0]  # the shipped config would bite
    assert generate(model, tok, prompts, max_new_tokens=12, batch_size=4) == clean
    assert model.generation_config is shipped and shipped.repetition_penalty == 3.0  # put back as it was
    # behind a LoRA adapter (whose B matrices start at zero, so the model is unchanged), PEFT copies its own config
    # into the base model at every generate: set aside too
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    assert generate(wrapped, tok, prompts, max_new_tokens=12, batch_size=4) == clean
