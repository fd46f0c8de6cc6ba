"""The probes and attacks a plan runs (decision rows P1-P5, A1-A5) and the information-only checks they add."""

from __future__ import annotations

from unlearnspec.catalog import (
    DEFAULT_RELEARN_STEPS,
    PROBES,
    REMOVAL_CLAIMS,
    vocab,
)
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.checkbook import CheckBook, information_item
from unlearnspec.compiler.decisions import Facts, matching_rows
from unlearnspec.compiler.stages import seed_of
from unlearnspec.plan import (
    Probe,
    QuantizeAttack,
    RelearnAttack,
)


def probe_list(facts: Facts, demanded: set[str]) -> list[Probe]:
    names: set[str] = set()
    for r in matching_rows("probes", facts, ""):
        if r.value == "evidence":
            names |= demanded
        else:
            names.add(r.value)
    return [Probe(name=p.name, templates=list(p.templates), description=p.description)
            for p in PROBES.values() if p.name in names]


RELEARN_CLAIMS = REMOVAL_CLAIMS | {"robust_to_finetuning"}


def attack_list(obj: Objective, facts: Facts,
                book: CheckBook) -> tuple[list[RelearnAttack | QuantizeAttack], list[tuple[str, frozenset[str]]]]:
    """The attacks (relearn first, then quantize from high to low precision) and the information-only
    checks they add, each with the claims it sits beside."""
    seed = seed_of(obj)
    info: list[tuple[str, frozenset[str]]] = []
    fired = {r.id for r in matching_rows("attacks", facts, "")}
    if "A2" in fired and not book.relearn_steps:
        info.append((book.add(information_item(
            obj, "relearn_recovery", "A2: the weights leave the deployer's control, so whoever holds them can "
            "fine-tune; measured for information (claim `robust_to_finetuning` would make it decide)",
            attack="relearn", params={"steps": DEFAULT_RELEARN_STEPS}), None, None, information=True), REMOVAL_CLAIMS))
    if "A5" in fired:
        for steps in sorted(book.relearn_steps):
            info.append((book.add(information_item(
                obj, "relearn_recovery", f"A5: relearning for {steps} steps on related but disjoint data (the "
                "neighbours, else the retain set) instead of the forget set; measured for information",
                attack="relearn", params={"steps": steps, "data": "related"}), None, None, information=True),
                RELEARN_CLAIMS))
    recovery_at = {c.params.get("precision") for c in book.checks if c.metric == "quantization_recovery"}
    if "A3" in fired and facts.precision is not None and facts.precision not in recovery_at:
        info.append((book.add(information_item(
            obj, "quantization_recovery", f"A3: the model is released at {facts.precision}; measured for "
            "information (claim `robust_to_quantization` would make it decide)",
            attack="quantize", params={"precision": facts.precision}), None, None, information=True), REMOVAL_CLAIMS))
    attacks: list[RelearnAttack | QuantizeAttack] = [RelearnAttack(steps=s, seed=seed) for s in sorted(book.relearn_steps)]
    attacks.extend(RelearnAttack(steps=s, seed=seed, data="related") for s in sorted(book.relearn_related))
    order = [p for p in vocab.PRECISIONS if p != "fp32"]
    attacks.extend(QuantizeAttack(precision=p) for p in order if p in book.quantize)  # type: ignore[arg-type]
    return attacks, info

