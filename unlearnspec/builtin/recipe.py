"""The training recipe of ``builtin:tiny-bios``, and its hash.

Why a recipe and not a checkpoint: exact retraining — the gold standard of removal — needs the
training data and the recipe (FRAMEWORK.md §3). Shipping both lets the runtime rebuild the model
bit-for-bit on any CPU, and retrain it without a forget set to get the reference that forget
quality and the membership-inference comparisons are measured against.

The compiler records ``RECIPE`` and ``recipe_hash()`` in the plan, so this module stays pure Python
(no torch): the hash covers the recipe and the generated corpus, and the runtime caches the
trained model under it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from unlearnspec.builtin.corpus import CORPUS_SEED, CORPUS_VERSION
from unlearnspec.builtin.llama_recipes import BIOS_100M_RECIPE, CHAT_RECIPE
from unlearnspec.builtin.scaled import corpus_sha256_for

RECIPE: dict[str, Any] = {
    "name": "builtin:tiny-bios",
    # Bump when the training code changes in a way that changes the weights.
    "recipe_version": "1",
    "corpus": {"version": CORPUS_VERSION, "seed": CORPUS_SEED},
    "tokenizer": {
        "kind": "byte_level_bpe",
        "vocab_size": 1024,
        "min_frequency": 2,
        "eos_token": "<|endoftext|>",
        "pad_token": "<pad>",
    },
    "model": {
        "architecture": "gpt2",
        "n_layer": 4,
        "n_embd": 128,
        "n_head": 4,
        "n_positions": 256,
        # Dropout off: the demo model should memorise its corpus, and evaluation is deterministic.
        "dropout": 0.0,
    },
    "train": {
        "epochs": 30,
        "learning_rate": 3e-3,
        "batch_size": 16,
        "warmup_ratio": 0.05,
        "weight_decay": 0.0,
        "lr_scheduler": "cosine",
        "max_length": 256,
        "seed": 0,
        # The builtin is always trained on CPU with pinned threads, so that every machine builds the
        # same weights for the same hash (GPU kernels would give different bits).
        "device": "cpu",
        "threads": 2,
    },
}


#: Every built-in model, by the name a spec gives it (``model "builtin:..."``): the one registry the
#: compiler (names, plan, size) and the runtime (build, cache, retrain) read.
RECIPES: dict[str, dict[str, Any]] = {r["name"]: r for r in (RECIPE, CHAT_RECIPE, BIOS_100M_RECIPE)}


def recipe_for(name: str) -> dict[str, Any]:
    """The recipe of built-in model ``name``; ``KeyError`` for a name that is not built in."""
    return RECIPES[name]


def canonical_recipe_json(recipe: dict[str, Any] | None = None) -> str:
    return json.dumps(RECIPE if recipe is None else recipe, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def recipe_hash(recipe: dict[str, Any] | None = None) -> str:
    """sha256 over the canonical recipe JSON and the sha256 of the corpus it trains on."""
    h = hashlib.sha256()
    h.update(canonical_recipe_json(recipe).encode())
    h.update(b"\0")
    h.update(recipe_corpus_sha256(recipe).encode())
    return h.hexdigest()


def recipe_corpus_sha256(recipe: dict[str, Any] | None = None) -> str:
    """sha256 of the corpus ``recipe`` trains on (the CPU corpus, or a scaled one)."""
    return corpus_sha256_for(RECIPE if recipe is None else recipe)


def recipe_with_hash(recipe: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe as the plan records it: the recipe itself, the corpus sha256 and the overall hash."""
    return {"recipe": json.loads(canonical_recipe_json(recipe)), "corpus_sha256": recipe_corpus_sha256(recipe),
            "recipe_hash": recipe_hash(recipe)}
