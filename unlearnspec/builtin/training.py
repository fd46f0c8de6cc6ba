"""What a built-in recipe trains on, item by item: documents, and QA pairs in the recipe's formats.

Pure Python (the compiler counts the items to size the retraining stage). The GPT-2 built-in trains
every record's ``training_texts()`` (a document, or the plain ``Question: …\\nAnswer: …`` text); a
recipe with ``qa_formats`` containing ``"chat"`` also, or instead, trains each QA pair as a chat
exchange, which the runtime renders with the tokenizer's chat template.

Exclusion (exact retraining without a forget set) is by the forget records' ``training_texts()``: a
document is dropped when its text is excluded, a QA pair — in every format — when its plain text is.
So the same exclusion key names the same records whatever the recipe's formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from unlearnspec.builtin.corpus import training_records
from unlearnspec.builtin.scaled import corpus_for
from unlearnspec.records import format_qa


@dataclass(frozen=True)
class TrainItem:
    """One training example: a whole ``text`` (trained with EOS appended), or a chat ``question``/``answer``."""

    text: str | None = None
    question: str | None = None
    answer: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.text is None


def qa_formats(recipe: Mapping[str, Any]) -> tuple[str, ...]:
    formats = tuple(recipe.get("qa_formats", ("plain",)))
    if not formats or not set(formats) <= {"plain", "chat"}:
        raise ValueError(f"qa_formats must be a non-empty list of `plain` and `chat`, not {formats!r}")
    return formats


def training_items(recipe: Mapping[str, Any], exclude: Iterable[str] = ()) -> list[TrainItem]:
    """The recipe's training examples in corpus order, minus the records whose texts are in ``exclude``."""
    formats = qa_formats(recipe)
    drop = set(exclude)
    out: list[TrainItem] = []
    for r in training_records(corpus_for(recipe)):
        if r.text and r.text not in drop:
            out.append(TrainItem(text=r.text))
        if r.is_qa:
            assert r.question is not None and r.answer is not None
            plain = format_qa(r.question, r.answer)
            if plain in drop:
                continue
            for f in formats:
                out.append(TrainItem(text=plain) if f == "plain" else TrainItem(question=r.question, answer=r.answer))
    return out
