"""Make ``specs/models/vendor-jane-doe-lora``: the checkpoint ``specs/audit-vendor-checkpoint.unlearn`` audits.

A stand-in for a checkpoint someone else unlearned and sent without saying how: a rank-4 LoRA adapter for
``builtin:tiny-bios``, made here by a few steps of gradient ascent on Jane Doe's records and saved with peft's
``save_pretrained`` (safetensors). The audit spec is not told any of this (``method unknown``): it judges the
adapter by measurement alone, against the built-in model retrained without Jane Doe.

    PYTHONPATH=. .venv/bin/python scripts/make_vendor_checkpoint.py

The audit plan pins the folder's sha256, so regenerating it (or rebuilding the built-in model with another
recipe) means planning the spec again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

from unlearnspec.records import read_records
from unlearnspec.runtime.loading import load_model

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "specs" / "models" / "vendor-jane-doe-lora"
FORGET = ROOT / "specs" / "data" / "jane-doe.jsonl"
STEPS = 8
LEARNING_RATE = 5e-4
BATCH = 8


def main() -> None:
    torch.manual_seed(0)
    model, tok = load_model("builtin:tiny-bios")
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"],
                        fan_in_fan_out=True, task_type="CAUSAL_LM")  # GPT-2's Conv1D stores weights transposed
    peft_model = get_peft_model(model, config)
    texts = [t for r in read_records(FORGET) for t in r.training_texts()]
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    peft_model.train()
    for step in range(STEPS):
        batch = [texts[(step * BATCH + i) % len(texts)] for i in range(BATCH)]
        enc = tok(batch, padding=True, return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = -peft_model(**enc, labels=labels).loss  # gradient ascent on the forget set
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step + 1}: forget loss {-loss.item():.3f}")
    peft_model.peft_config["default"].base_model_name_or_path = "builtin:tiny-bios"  # not a cache path
    if OUT.exists():
        shutil.rmtree(OUT)
    peft_model.save_pretrained(OUT, safe_serialization=True)
    (OUT / "README.md").unlink(missing_ok=True)  # peft's model card template: nothing the audit reads
    print(f"wrote {OUT.relative_to(ROOT)}: " + ", ".join(sorted(p.name for p in OUT.iterdir())))


if __name__ == "__main__":
    main()
