"""Chains in the plan: each chain's order, every link's objective hash and a hash chained over the links.

Kept apart from :mod:`unlearnspec.compiler.chain` (the checks), which the ``analyse`` pass loads: only
lowering needs the plan's models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.chain import chains, split_ref
from unlearnspec.plan import ChainBudget, ChainLink, ChainPlan, Plan


def _sha(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def attach_chains(plan: Plan, spec: Spec) -> Plan:
    """The plan with its chains: the order, each link's objective hash and a hash chained over the links
    (so that a reordered or edited link changes every hash after it), and the chain's budget."""
    by_plan = {op.objective.name: op for op in plan.objectives}
    out: list[ChainPlan] = []
    for line in chains(spec):
        links: list[ChainLink] = []
        prev = ""
        head = line[0]
        external = None
        if head.after is not None:  # starts from an objective in another file
            file, name = split_ref(head.after.value)
            assert file is not None
            path = (Path(spec.base_dir) / file).resolve()
            external = {"file": file, "objective": name,
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""}
            prev = _sha(external)
        for obj in line:
            op = by_plan[obj.name]
            digest = _sha(op.model_dump(mode="json"))
            link = _sha({"prev": prev, "objective": obj.name, "sha256": digest})
            links.append(ChainLink(objective=obj.name, after=obj.after.value if obj.after else None,
                                   objective_sha256=digest, link_hash=link))
            prev = link
        budget = None
        if head.budget is not None:
            budget = ChainBudget(
                utility_drop=head.budget.utility.percent if head.budget.utility is not None else None,
                approximate_requests=head.budget.requests.as_int if head.budget.requests is not None else None)
        out.append(ChainPlan(links=links, budget=budget, starts_after=external))
    return plan.model_copy(update={"chains": out}) if out else plan
