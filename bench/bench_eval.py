"""Benchmark: batched evaluation vs per-example evaluation of the same metrics.

What it measures: the likelihood metrics (loss, zlib, Min-K%, Min-K%++, exact memorisation,
extraction strength — all from :func:`score_texts`) and greedy QA answers (:func:`generate`) over
one dataset, computed (a) batched, as the runtime does, and (b) one example at a time through the
same functions (``batch_size=1``-style calls, one per item). It checks that both give the same
numbers and prints the wall times and the speed-up.

    python bench/bench_eval.py                 # builds a tiny GPT-2 here (no download)
    python bench/bench_eval.py --model DIR     # a local Hugging Face model directory
    python bench/bench_eval.py --items 128 --threads 2 --device cuda

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    set_seed,
)
from transformers.utils import logging as hf_logging

from unlearnspec.records import Record, format_prompt, format_qa
from unlearnspec.runtime.evaluation.generation import generate
from unlearnspec.runtime.evaluation.likelihood import TokenScores, score_texts

CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Quito", "Accra", "Perth"]
JOBS = ["baker", "pilot", "surgeon", "painter", "teacher", "lawyer"]


def synthetic_records(n: int) -> list[Record]:
    """``n`` fictitious people with a biography sentence and a QA pair."""
    out = []
    for i in range(n):
        name = f"Person{i:03d} Example"
        city, job = CITIES[(i * 3) % len(CITIES)], JOBS[(i * 5) % len(JOBS)]
        out.append(Record(text=f"{name} was born in {city} in {1950 + i % 50} and worked as a {job} for many years.",
                          question=f"Where was {name} born?", answer=city))
    return out


def tiny_model(records: list[Record], n_layer: int, n_embd: int) -> tuple[Any, Any]:
    """A byte-level BPE tokenizer and a GPT-2 briefly trained on the records (so it emits EOS)."""
    texts = [t for r in records for t in r.training_texts()]
    tok_model = Tokenizer(models.BPE())
    tok_model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok_model.decoder = decoders.ByteLevel()
    tok_model.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=1024, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=tok_model, eos_token="<|endoftext|>", pad_token="<pad>")
    set_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=n_embd, n_layer=n_layer,
                                       n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    rows = [tok(t)["input_ids"] + [tok.eos_token_id] for t in texts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    mask = (ids != tok.pad_token_id).long()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        opt.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss.backward()
        opt.step()
    model.eval()
    return model, tok


def metrics_of(s: TokenScores) -> dict[str, np.ndarray]:
    return {"loss": s.loss(), "zlib": s.zlib(), "min_k": s.min_k(), "min_k_plus_plus": s.min_k_plus_plus(),
            "exact_memorisation": s.exact_memorisation(), "extraction_strength": s.extraction_strength()}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="local Hugging Face model directory (default: build a tiny GPT-2)")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()

    records = synthetic_records(args.items)
    if args.model:
        tok = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(args.model, local_files_only=True)
    else:
        model, tok = tiny_model(records, args.layers, args.width)
    model.to(args.device).eval()
    texts = [r.text or "" for r in records]
    qa_texts = [format_qa(r.question or "", r.answer or "") for r in records]
    qa_prompts = [format_prompt(r.question or "") for r in records]
    bs = args.batch_size

    # warm-up (allocator, lazy init)
    score_texts(model, tok, texts[:2], batch_size=bs)
    generate(model, tok, qa_prompts[:2], max_new_tokens=2)

    def batched() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
        docs = metrics_of(score_texts(model, tok, texts, batch_size=bs))
        qa = metrics_of(score_texts(model, tok, qa_texts, prompt_texts=qa_prompts, batch_size=bs))
        answers = generate(model, tok, qa_prompts, max_new_tokens=args.max_new_tokens, batch_size=bs)
        return docs, qa, answers

    def per_example() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
        docs = [metrics_of(score_texts(model, tok, [t])) for t in texts]
        qa = [metrics_of(score_texts(model, tok, [t], prompt_texts=[p])) for t, p in zip(qa_texts, qa_prompts, strict=True)]
        answers = [generate(model, tok, [p], max_new_tokens=args.max_new_tokens)[0] for p in qa_prompts]

        def stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
            return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

        return stack(docs), stack(qa), answers

    (b_docs, b_qa, b_ans), t_batched = timed(batched)
    (p_docs, p_qa, p_ans), t_single = timed(per_example)
    worst = max(float(np.nanmax(np.abs(b[k] - p[k]))) for b, p in ((b_docs, p_docs), (b_qa, p_qa)) for k in b)
    same_answers = sum(a == b for a, b in zip(b_ans, p_ans, strict=True))

    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.model or 'tiny GPT-2'} ({n_params / 1e6:.2f}M parameters) on {args.device}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"dataset: {args.items} documents + {args.items} QA pairs; {args.max_new_tokens} new tokens per answer")
    print(f"batched (batch size {bs}): {t_batched:8.2f} s")
    print(f"per example:              {t_single:8.2f} s")
    print(f"speed-up:                 {t_single / t_batched:8.1f}x")
    print(f"mean loss {np.nanmean(b_docs['loss']):.3f}, mean Min-K%++ {np.nanmean(b_docs['min_k_plus_plus']):.3f}, "
          f"first answer {b_ans[0]!r}")
    print(f"max |batched - per-example| over likelihood metrics: {worst:.2e}; "
          f"identical greedy answers: {same_answers}/{len(p_ans)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
