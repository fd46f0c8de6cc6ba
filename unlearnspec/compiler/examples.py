"""What each field's value looks like, as an example a message or a completion shows (`title "..."`): a
value starting with a quote marks a field that takes quoted strings."""

from __future__ import annotations

from unlearnspec.catalog import vocab


def expected_example(name: str) -> str:
    return {
        "title": '"Right-to-erasure request for Jane Doe"', "basis": '"GDPR Art. 17"', "owner": '"privacy-office"',
        "model": '"builtin:tiny-bios"', "system": '"You are a careful assistant."', "reference": '"models/retrained"',
        "unlearned": '"models/vendor-unlearned"', "release": "api precision fp32",
        "target": 'person "Jane Doe" { ... }', "goal": "removal", "method": "npo", "guarantee": "empirical",
        "kind": "observed", "forget": '"data/jane-doe.jsonl"', "aliases": '"J. Doe", "Jane D."',
        "outputs": "verbatim, facts", "prompts": "direct, paraphrased", "retain": '"data/retain.jsonl"',
        "neighbors": '"data/neighbors.jsonl"', "utility": "drop <= 2%", "accept": 'UL405 "reviewed by ..."',
        "seed": "0", "steps": "40", "adapter": "lora rank 8", "attribute": "birth_city",
        "compliant": '"GDPR Art. 17"', "robust_to_finetuning": "steps 20",
        "after": '"erase-jane-doe"', "requests": "3", "budget": "{ utility drop <= 5%  requests 3 }",
        "confidence": "95%", "learning_rate": "0.0001", "batch_size": "8", "beta": "0.1",
        "retain_weight": "1.0",
    }.get(name) or _metric_example(name)


def _metric_example(name: str) -> str:
    """An evidence line's bound: the catalog's default threshold for the metric (``<= 0.6``)."""
    m = vocab.METRICS.get(name)
    if m is None:
        return "..."
    return f"{m.threshold.op} {m.threshold.value:g}{'%' if m.unit == 'percent' else ''}"
