"""System-level suppression: an output filter built from the forget set (the ``filter`` method).

This is the guardrail family of FRAMEWORK.md §3: the model is not changed at all, so the
information stays in the weights (mismatch M1) and the filter only helps where the deployer controls
the serving system. Output benchmarks score such guardrails like fine-tuning methods (Thaker et al.,
arXiv:2410.02879), which is exactly why the compiler pairs this method with suppression claims only.

What blocks a text: any of the target's names or aliases as a whole-word phrase, or any word
``n``-gram (lowercased, punctuation removed) from the forget set's documents and answers — minus
n-grams that also occur in the retain data, which are common phrasing ("was born in the"), not the
target's. The guard is a servable artefact: ``guard.json`` beside the model, deterministic bytes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnspec.catalog.methods import FILTER_NGRAM, REFUSAL_TEXT
from unlearnspec.io import atomic_write_text
from unlearnspec.records import Record

GUARD_FILE = "guard.json"
GUARD_FORMAT = 1
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Normalised words: NFKC, case-folded, punctuation dropped (``"J. Doe's"`` → ``j doe s``)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def ngrams(ws: Sequence[str], n: int) -> set[str]:
    return {" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1)} if n > 0 else set()


def _guarded_texts(r: Record) -> list[str]:
    # What a model would *output* about the target: documents and answers (not questions, whose
    # phrasing "question what is the" is shared by every QA record).
    return [t for t in (r.text, r.answer) if t]


def _all_texts(r: Record) -> list[str]:
    return [t for t in (r.text, r.question, r.answer, *r.paraphrases) if t]


@dataclass(frozen=True)
class OutputGuard:
    """A deterministic n-gram and alias filter; ``apply`` replaces a blocked text with the refusal."""

    n: int
    ngrams: frozenset[str]
    phrases: tuple[str, ...] = ()
    refusal_text: str = REFUSAL_TEXT
    _phrase_lengths: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_phrase_lengths", tuple(sorted({len(p.split()) for p in self.phrases})))

    @classmethod
    def from_records(cls, forget: Iterable[Record], *, n: int = FILTER_NGRAM, aliases: Iterable[str] = (),
                     refusal_text: str = REFUSAL_TEXT, exclude: Iterable[Record] = ()) -> OutputGuard:
        """Build the guard from the forget records and the target's names; ``exclude`` is retain data."""
        if n < 1:
            raise ValueError("filter n-gram length must be at least 1")
        grams: set[str] = set()
        for r in forget:
            for t in _guarded_texts(r):
                grams |= ngrams(words(t), n)
        common: set[str] = set()
        for r in exclude:
            for t in _all_texts(r):
                common |= ngrams(words(t), n)
        phrases = sorted({" ".join(words(a)) for a in aliases if words(a)})
        return cls(n=n, ngrams=frozenset(grams - common), phrases=tuple(phrases), refusal_text=refusal_text)

    def matches(self, text: str) -> list[str]:
        """The alias phrases and n-grams of the guard found in ``text`` (why it is blocked), sorted."""
        ws = words(text)
        found = set(ngrams(ws, self.n) & self.ngrams)
        for k in self._phrase_lengths:
            found |= ngrams(ws, k) & set(self.phrases)
        return sorted(found)

    def blocks(self, text: str) -> bool:
        return bool(self.matches(text))

    def apply(self, text: str) -> str:
        """``text`` unchanged, or the refusal text when the guard blocks it."""
        return self.refusal_text if self.blocks(text) else text

    def to_json(self) -> str:
        body = {"format": GUARD_FORMAT, "kind": "ngram_filter", "n": self.n, "refusal_text": self.refusal_text,
                "phrases": list(self.phrases), "ngrams": sorted(self.ngrams)}
        return json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    def save(self, directory: str | Path) -> Path:
        """Write ``guard.json`` into ``directory`` (created if needed); returns its path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / GUARD_FILE
        atomic_write_text(path, self.to_json(), within=d)  # a temporary file, fsynced, renamed: whole or absent
        return path

    @classmethod
    def load(cls, where: str | Path) -> OutputGuard:
        """Read a guard from ``guard.json`` or from a folder holding one."""
        p = Path(where)
        if p.is_dir():
            p = p / GUARD_FILE
        body = json.loads(p.read_text(encoding="utf-8"))
        if body.get("format") != GUARD_FORMAT or body.get("kind") != "ngram_filter":
            raise ValueError(f"`{p}` is not an unlearnspec output guard (format {GUARD_FORMAT})")
        return cls(n=int(body["n"]), ngrams=frozenset(body["ngrams"]), phrases=tuple(body["phrases"]),
                   refusal_text=str(body["refusal_text"]))


class GuardedGenerator:
    """A model behind the guard: prompts that mention the target, and outputs that match, are refused.

    Greedy decoding, batched with left padding. This is what "serving the model with the filter"
    means for evaluation: the guard sees both the request and the model's answer.
    """

    def __init__(self, model: Any, tokenizer: Any, guard: OutputGuard, *, max_new_tokens: int = 48,
                 batch_size: int = 16, check_prompt: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.guard = guard
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.check_prompt = check_prompt

    def raw_generate(self, prompts: Sequence[str]) -> list[str]:
        """The model's own greedy completions, unfiltered."""
        import torch

        tok, model = self.tokenizer, self.model
        device = next(model.parameters()).device
        outs: list[str] = []
        was_training = model.training
        model.eval()
        try:
            for s in range(0, len(prompts), self.batch_size):
                chunk = list(prompts[s:s + self.batch_size])
                enc = tok(chunk, return_tensors="pt", padding=True, padding_side="left").to(device)
                with torch.no_grad():
                    gen = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                new = gen[:, enc["input_ids"].shape[1]:]
                outs.extend(t.strip() for t in tok.batch_decode(new, skip_special_tokens=True))
        finally:
            model.train(was_training)
        return outs

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Guarded completions: the refusal where the prompt or the completion is blocked."""
        todo = [i for i, p in enumerate(prompts) if not (self.check_prompt and self.guard.blocks(p))]
        out = [self.guard.refusal_text] * len(prompts)
        for i, text in zip(todo, self.raw_generate([prompts[i] for i in todo]), strict=True):
            out[i] = self.guard.apply(text)
        return out

    __call__ = generate
