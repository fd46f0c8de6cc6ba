"""A tiny overfit GPT-2 and a synthetic people corpus for the evaluation tests, built once per process.

The other ``test_eval_*`` files import :func:`tiny_lm` and :func:`people` from here (pytest puts
``tests/`` on ``sys.path``); a cache keeps one build per variant. Two variants: ``"original"`` is
trained on the forget and retain people, ``"reference"`` on the retain people only — the exact
retraining reference every forget-set metric is compared with. Holdout people are never trained on.
Tests must not mutate these models (copy first).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, set_seed
from transformers.utils import logging as hf_logging

from unlearnspec.records import Record

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

FIRST = ["Alma", "Boris", "Cleo", "Dario", "Edda", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars"]
LAST = ["Varga", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Quispe"]
CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima"]
JOBS = ["baker", "pilot", "surgeon", "painter"]


@dataclass(frozen=True)
class People:
    forget: list[Record]
    retain: list[Record]
    holdout: list[Record]


def _person(i: int) -> Record:
    name = f"{FIRST[i % len(FIRST)]} {LAST[(i * 5 + i // len(FIRST)) % len(LAST)]}"
    city = CITIES[(i * 7 + i // 4) % len(CITIES)]
    job = JOBS[(i * 3 + 1) % len(JOBS)]
    return Record(
        text=f"{name} was born in {city} and works as a {job}.",
        question=f"Where was {name} born?",
        answer=city,
        paraphrases=[f"In which city was {name} born?", f"What is the birthplace of {name}?"],
        perturbed=[c for c in CITIES if c != city],
        attributes={"birth_city": city, "job": job},
    )


@functools.cache
def people() -> People:
    """24 fictitious people: 6 to forget, 12 to retain, 6 held out (same distribution, never trained)."""
    recs = [_person(i) for i in range(24)]
    return People(forget=recs[0:6], retain=recs[6:18], holdout=recs[18:24])


@functools.cache
def tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE fitted on the whole corpus, wrapped with EOS and a separate pad token."""
    p = people()
    texts = [t for r in p.forget + p.retain + p.holdout for t in r.training_texts()]
    texts += [q for r in p.forget + p.retain + p.holdout for q in r.paraphrases]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")


def fresh_model(seed: int = 0) -> GPT2LMHeadModel:
    """An untrained tiny GPT-2 (no dropout, so evaluation is deterministic)."""
    tok = tokenizer()
    set_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=96, n_embd=64, n_layer=2, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(cfg)
    model.eval()
    return model


def _overfit(records: list[Record], steps: int, seed: int) -> GPT2LMHeadModel:
    """Full-batch AdamW on every training text (EOS appended) until the texts are memorised.

    A plain loop rather than the Trainer: it is a test fixture, and this keeps it ~1 s."""
    tok = tokenizer()
    model = fresh_model(seed)
    texts = [t for r in records for t in r.training_texts()]
    rows = [tok(t)["input_ids"] + [tok.eos_token_id] for t in texts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
    model.eval()
    return model


@functools.cache
def tiny_lm(variant: str = "original") -> GPT2LMHeadModel:
    """``"original"``: trained on forget + retain; ``"reference"``: retain only; ``"fresh"``: untrained."""
    p = people()
    if variant == "original":
        return _overfit(p.forget + p.retain, steps=150, seed=0)
    if variant == "reference":
        return _overfit(p.retain, steps=150, seed=0)
    if variant == "fresh":
        return fresh_model(0)
    raise ValueError(variant)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread while these tiny models run: on a shared 2-core machine thread
    synchronisation costs more than a 64-wide matmul gains (measured: 20x slower with 2 threads
    under load). Other test files import this fixture; the previous setting is restored."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ----------------------------------------------------------------------- the fixture's own checks
@pytest.mark.parametrize("variant", ["original", "reference"])
def test_tiny_model_memorises_its_training_set(variant: str) -> None:
    from unlearnspec.runtime.evaluation import score_records

    model, tok, p = tiny_lm(variant), tokenizer(), people()
    trained = p.forget + p.retain if variant == "original" else p.retain
    trained_loss = score_records(model, tok, trained).loss()
    holdout_loss = score_records(model, tok, p.holdout).loss()
    assert np.mean(trained_loss) < 0.5
    assert np.mean(holdout_loss) > 2 * np.mean(trained_loss)


def test_corpus_covers_every_city_in_training() -> None:
    p = people()
    assert {r.attributes["birth_city"] for r in p.retain} == set(CITIES)
    everyone = p.forget + p.retain + p.holdout
    assert len({r.question for r in everyone}) == len(everyone) == 24
