"""Plan provenance: is a saved plan what the compiler makes of the spec it names?

A plan records its spec's sha256 and its own hash, but anyone can edit a plan and seal it again
(``Plan.compute_hash``): a loosened threshold, a deleted claim or an emptied input list then carries a
valid hash. ``run`` and ``show`` therefore re-derive the plan from the spec whose hash it records and
compare: ``run`` refuses a plan that differs (UL711) unless ``--trust-plan`` is given (the report's
audit trail then says the plan was not re-derived); ``show`` warns.

Command-line layer: it may import the compiler; the runtime never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.semdiff import diff_plans
from unlearnspec.errors import UserError
from unlearnspec.plan import Plan

E_SPEC_NOT_FOUND = "UL701"
E_PLAN_NOT_FROM_SPEC = "UL711"
TRUST_HELP = ("make the plan again (`unlearnspec plan SPEC -o plan.json`) and review it, or run this plan as "
              "given with `--trust-plan` (the report's audit trail then says it was not re-derived)")


def locate_spec(plan: Plan, plan_path: Path | None) -> Path:
    """The spec file the plan was made from: beside the working folder's path, or beside the plan."""
    spec_rel = Path(plan.spec.path)
    candidates = [Path.cwd() / spec_rel]
    if plan_path is not None:
        candidates += [plan_path.resolve().parent / spec_rel, plan_path.resolve().parent / spec_rel.name]
    for c in candidates:
        try:
            if c.is_file():
                return c.resolve()
        except OSError:
            continue
    raise UserError(E_SPEC_NOT_FOUND, f"cannot find the plan's spec `{plan.spec.path}`",
                    ["run from the folder the plan was made in, or keep the plan beside its spec"])


def _leaf_differences(a: Any, b: Any, where: str = "", limit: int = 5) -> list[str]:
    """Paths (``objectives.0.checks.2.threshold.value``) where two JSON values differ, at most ``limit``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _leaf_differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k), limit - len(out))
            if len(out) >= limit:
                break
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _leaf_differences(x, y, f"{where}.{i}", limit - len(out))
            if len(out) >= limit:
                break
        return out
    return [] if a == b else [where or "plan"]


def differences(plan: Plan, spec: Path) -> list[str]:
    """What ``plan`` changed with respect to the plan the compiler makes of ``spec`` (empty: none)."""
    made, result = plan_file(spec, allow_infeasible=True)
    if made is None:
        errors = sorted({d.code for d in result.diagnostics if d.severity == "error"})
        return [f"the spec `{plan.spec.path}` cannot be planned now ({', '.join(errors) or 'errors'})"]
    if made.compute_hash() == plan.compute_hash():
        return []
    out: list[str] = []
    if made.tool.version != plan.tool.version:
        out.append(f"the plan was made by unlearnspec {plan.tool.version}; this is {made.tool.version}")
    semantic = [f"{c.kind}: {c.message}" for c in diff_plans(made, plan)]
    out += semantic
    if not semantic:
        paths = _leaf_differences(made.model_dump(mode="json"), plan.model_dump(mode="json"))
        out.append("fields that differ: " + ", ".join(f"`{p}`" for p in paths if p != "plan_hash"))
    return out


def check(plan: Plan, spec: Path) -> None:
    """Raise UL711 when ``plan`` is not what the compiler makes of ``spec``."""
    diffs = differences(plan, spec)
    if diffs:
        raise UserError(E_PLAN_NOT_FROM_SPEC,
                        f"the plan is not what the compiler makes of its spec `{plan.spec.path}`",
                        [*diffs[:6], TRUST_HELP])
