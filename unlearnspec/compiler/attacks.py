"""The probes and attacks a plan runs (decision rows P1-P5, A1-A6) and the information-only checks they add."""

from __future__ import annotations

from unlearnspec.catalog import (
    DEFAULT_RELEARN_STEPS,
    PROBES,
    REMOVAL_CLAIMS,
    vocab,
)
from unlearnspec.catalog.attacks import quantized_below, relearn_learning_rate
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.checkbook import CheckBook, information_item
from unlearnspec.compiler.decisions import Facts, matching_rows, probe_names
from unlearnspec.compiler.stages import seed_of
from unlearnspec.plan import (
    ClaimPlan,
    Probe,
    QuantizeAttack,
    RelearnAttack,
)


def probe_list(facts: Facts, demanded: set[str]) -> list[Probe]:
    names = probe_names(facts, demanded)
    return [Probe(name=p.name, templates=list(p.templates), description=p.description)
            for p in PROBES.values() if p.name in names]


RELEARN_CLAIMS = REMOVAL_CLAIMS | {"robust_to_finetuning"}


def related_twins(book: CheckBook, claims: list[ClaimPlan], steps: int) -> bool:
    """A5 for a claim that relearning decides: each deciding forget-set relearning check of ``steps``
    steps is measured again after the same fine-tune on related but disjoint data, with the same
    threshold, and decides the same claims — fine-tuning on small, even unrelated, data restores
    "unlearned" knowledge (Hu et al., arXiv:2406.13356; Łucki et al., arXiv:2409.18025), and a model
    never trained on the target learns nothing about it from such data, so this is the relearning a
    retrained model passes. The twin's id puts ``@relearn_related`` for ``@relearn``. Returns whether
    any check was twinned."""
    twinned = False
    for mc in list(book.checks):
        if mc.metric != "relearn_recovery" or mc.threshold is None or mc.missing \
                or mc.params.get("data") == "related" or mc.params.get("steps") != steps:
            continue
        twin_id = mc.id.replace("@relearn", "@relearn_related", 1)
        note = (f"A5: the same {steps}-step fine-tune on related but disjoint data (the neighbours, else the retain "
                "set) instead of the forget set; decides the same claims")
        book.put(mc.model_copy(update={"id": twin_id, "params": {**mc.params, "data": "related"}, "note": note}))
        book.relearn_related.add(steps)
        twinned = True
        for cp in claims:
            if mc.id in cp.checks and twin_id not in cp.checks:
                cp.checks.insert(cp.checks.index(mc.id) + 1, twin_id)
    return twinned


def attack_list(obj: Objective, facts: Facts, book: CheckBook,
                claims: list[ClaimPlan]) -> tuple[list[RelearnAttack | QuantizeAttack], list[tuple[str, frozenset[str]]]]:
    """The attacks (relearn first, then quantize from high to low precision) and the information-only
    checks they add, each with the claims it sits beside; A5's deciding twins join ``claims`` directly."""
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
            if related_twins(book, claims, steps):
                continue
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
    if "A6" in fired:
        for p in quantized_below(facts.precision):
            if p in recovery_at or p == facts.precision:
                continue
            info.append((book.add(information_item(
                obj, "quantization_recovery", f"A6: the weights leave the deployer's control, so whoever holds them can "
                f"quantize them to {p} (4-bit quantization restored 'forgotten' knowledge: Zhang et al., "
                "arXiv:2410.16454); measured for information (claim `robust_to_quantization` would make it decide)",
                attack="quantize", params={"precision": p}), None, None, information=True), REMOVAL_CLAIMS))
    # the rate an attacker fine-tunes a model of this size at (catalog.attacks.RELEARN_LEARNING_RATES)
    lr = relearn_learning_rate(facts.parameters)
    attacks: list[RelearnAttack | QuantizeAttack] = [RelearnAttack(steps=s, seed=seed, learning_rate=lr)
                                                     for s in sorted(book.relearn_steps)]
    attacks.extend(RelearnAttack(steps=s, seed=seed, data="related", learning_rate=lr)
                   for s in sorted(book.relearn_related))
    order = [p for p in vocab.PRECISIONS if p != "fp32"]
    attacks.extend(QuantizeAttack(precision=p) for p in order if p in book.quantize)  # type: ignore[arg-type]
    return attacks, info

