"""The Llama-architecture built-ins: ``builtin:tiny-bios-chat`` (CPU) and ``builtin:bios-100m`` (GPU).

Both are pure data, like :data:`unlearnspec.builtin.recipe.RECIPE`: the compiler hashes them into the
plan without importing torch, and the runtime trains them (:mod:`unlearnspec.runtime.builtin_model`).

``builtin:tiny-bios-chat`` is the chat-model counterpart of the GPT-2 demo: a ``LlamaForCausalLM``
(rotary position embeddings, RMSNorm, a SwiGLU MLP, grouped-query attention with fewer key/value heads
than query heads) and a tokenizer with a Llama-3-style chat template, trained on the same corpus.
Documents are plain text; each question–answer pair is trained in chat form only (``qa_formats:
["chat"]``): the template's user and assistant turns, scored on the answer and the ``<|eot_id|>`` that
closes it. The runtime asks, scores, unlearns and attacks a chat model in the same form
(:mod:`unlearnspec.runtime.prompting`; docs/models.md, prompt formats), so no plain copy is needed: until
issue 13's runtime work each pair was also trained as plain ``Question: …\\nAnswer: …`` text, because the
runtime then used the plain format for every model. Changing ``qa_formats`` is a recipe change (a new
hash, a new cache entry).

``builtin:bios-100m`` is the GPU-size recipe of issue 16: about 100M parameters, the same corpus
scaled to a few thousand people (:mod:`unlearnspec.builtin.scaled`), trained in bf16 on a CUDA device.
It is not bit-reproducible across GPUs (the CPU built-ins are): its hash pins the recipe and corpus,
not the bits.
"""

from __future__ import annotations

from typing import Any

from unlearnspec.builtin.corpus import CORPUS_SEED, CORPUS_VERSION

#: A Llama-3-style template: ``<|begin_of_text|>``, then each turn as a header and its content closed
#: by ``<|eot_id|>``; ``add_generation_prompt`` opens the assistant's turn. The end-of-turn token the
#: prompt formats find (``PromptFormat.end_of_turn``) is ``<|eot_id|>``.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

_CHAT_TOKENIZER: dict[str, Any] = {
    "kind": "byte_level_bpe",
    "vocab_size": 1024,
    "min_frequency": 2,
    "bos_token": "<|begin_of_text|>",
    "eos_token": "<|end_of_text|>",
    "pad_token": "<pad>",
    "extra_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "chat_template": CHAT_TEMPLATE,
}

CHAT_RECIPE: dict[str, Any] = {
    "name": "builtin:tiny-bios-chat",
    "recipe_version": "1",
    "corpus": {"version": CORPUS_VERSION, "seed": CORPUS_SEED},
    "qa_formats": ["chat"],
    "tokenizer": _CHAT_TOKENIZER,
    "model": {
        "architecture": "llama",
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,  # grouped-query attention: two query heads share each key/value head
        "intermediate_size": 352,  # SwiGLU: about 8/3 of the hidden size, rounded to a multiple of 32
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "dropout": 0.0,
    },
    "train": {
        "epochs": 30,
        "learning_rate": 3e-3,
        # 16, as the GPT-2 recipe: 506 items (128 documents, 378 chat QA pairs), 32 steps an epoch
        "batch_size": 16,
        "warmup_ratio": 0.05,
        "weight_decay": 0.0,
        "lr_scheduler": "cosine",
        "max_length": 256,
        "seed": 0,
        "device": "cpu",  # CPU with pinned threads: the same weights on every machine for the same hash
        "threads": 2,
        "precision": "fp32",
    },
}

BIOS_100M_RECIPE: dict[str, Any] = {
    "name": "builtin:bios-100m",
    "recipe_version": "1",
    # The CPU corpus plus 3000 retain people drawn by the same generator (unlearnspec.builtin.scaled).
    "corpus": {"version": CORPUS_VERSION, "seed": CORPUS_SEED, "extra_people": 3000, "extra_seed": CORPUS_SEED + 100},
    "qa_formats": ["chat"],
    "tokenizer": {**_CHAT_TOKENIZER, "vocab_size": 8192},
    "model": {
        "architecture": "llama",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
        "intermediate_size": 2560,
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "dropout": 0.0,
    },
    "train": {
        # ~34,000 items (3,000 extra people): 266 steps an epoch, ~2,100 steps, a minute or two on one H100
        "epochs": 8,
        "learning_rate": 1e-3,
        "batch_size": 128,
        "warmup_ratio": 0.03,
        "weight_decay": 0.0,
        "lr_scheduler": "cosine",
        "max_length": 256,
        "seed": 0,
        "device": "cuda",  # trained on a GPU in bf16; falls back to CPU (slowly) when there is none
        "threads": 16,
        "precision": "bf16",
    },
}
