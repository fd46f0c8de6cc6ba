"""Chains in the plan: each chain's order, every link's objective hash and a hash chained over the links.

A later step's retrained reference leaves out every target so far (runtime/chain.py), and its plan says so: the
reference stage's description names the earlier requests whose forget sets it leaves out too.

Kept apart from :mod:`unlearnspec.compiler.chain` (the checks), which the ``analyse`` pass loads: only
lowering needs the plan's models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.chain import chains, split_ref
from unlearnspec.markdown import code_span
from unlearnspec.plan import ChainBudget, ChainLink, ChainPlan, ObjectivePlan, Plan, ReferenceStage
from unlearnspec.report.chain import link_digest, objective_digest, start_digest

SAID = "without the forget set"
"""What a retrained reference's description says it leaves out (compiler/stages.py)."""


def _leaves_out_earlier(op: ObjectivePlan, earlier: list[str]) -> ObjectivePlan:
    """``op`` with a retrained reference described as the run makes it in a chain: without the forget sets of
    ``earlier`` (the requests before it, as the plan names them) as well as its own."""
    if not earlier:
        return op
    names = ", ".join(earlier)
    stages = []
    for st in op.stages:
        if isinstance(st, ReferenceStage) and st.strategy == "retrain":
            told = (st.description.replace(SAID, f"without the forget sets of this request and of every earlier one "
                                                 f"in its chain ({names})", 1) if SAID in st.description
                    else f"{st.description}; in its chain, without the forget sets of {names} too")
            st = st.model_copy(update={"description": told})
        stages.append(st)
    return op.model_copy(update={"stages": stages})


def attach_chains(plan: Plan, spec: Spec) -> Plan:
    """The plan with its chains: the order, each link's objective hash and a hash chained over the links
    (so that a reordered or edited link changes every hash after it), and the chain's budget. A chain of one (an
    objective with a `budget` that no other continues yet) is recorded too, for its budget. A later step's retrained
    reference is described as leaving out the earlier requests' forget sets too."""
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
            prev = start_digest(external)
        earlier = [f"{code_span(head.after.value)} and the requests before it"] if head.after is not None else []
        for obj in line:
            op = by_plan[obj.name] = _leaves_out_earlier(by_plan[obj.name], earlier)
            earlier.append(code_span(obj.name))
            digest = objective_digest(op)
            link = link_digest(prev, obj.name, digest)
            links.append(ChainLink(objective=obj.name, after=obj.after.value if obj.after else None,
                                   objective_sha256=digest, link_hash=link))
            prev = link
        budget = None
        if head.budget is not None:
            budget = ChainBudget(
                utility_drop=head.budget.utility.percent if head.budget.utility is not None else None,
                approximate_requests=head.budget.requests.as_int if head.budget.requests is not None else None)
        out.append(ChainPlan(links=links, budget=budget, starts_after=external))
    if not out:
        return plan
    return plan.model_copy(update={"chains": out, "objectives": [by_plan[op.objective.name] for op in plan.objectives]})
