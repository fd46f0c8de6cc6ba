"""Plan provenance: is a saved plan what the compiler makes of the spec it names?

A plan records its spec's sha256 and its own hash, but anyone can edit a plan and seal it again
(``Plan.compute_hash``): a loosened threshold, a deleted claim or an emptied input list then carries a
valid hash. ``run`` and ``show`` therefore re-derive the plan from the spec whose hash it records and
compare: ``run`` refuses a plan that differs (UL711) unless ``--trust-plan`` is given (the report's
audit trail then says the plan was not re-derived); ``show`` warns.

Command-line layer: it may import the compiler; the runtime never does.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.semdiff import diff_plans
from unlearnspec.errors import UserError
from unlearnspec.markdown import code_span
from unlearnspec.plan import Plan
from unlearnspec.records import sha256_path

E_SPEC_NOT_FOUND = "UL701"
E_PLAN_NOT_FROM_SPEC = "UL711"
TRUST_HELP = ("make the plan again (`unlearnspec plan SPEC -o plan.json`) and review it, or run this plan as "
              "given with `--trust-plan` (the report's audit trail then says it was not re-derived)")


#: How far the search for a plan's spec by name and content goes below the working folder and the plan's.
SEARCH_DEPTH = 6
SEARCH_FOLDERS = 5000
_SKIPPED = {".git", ".venv", "venv", "node_modules", "__pycache__", "runs"}


def _same_named(root: Path, name: str) -> list[Path]:
    """Files called ``name`` under ``root``, breadth-first, at most ``SEARCH_DEPTH`` folders down and
    ``SEARCH_FOLDERS`` folders in all (hidden folders, virtual environments and run folders skipped)."""
    found: list[Path] = []
    level, seen = [root], 0
    for _ in range(SEARCH_DEPTH + 1):
        below: list[Path] = []
        for folder in level:
            seen += 1
            if seen > SEARCH_FOLDERS:
                return found
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                with contextlib.suppress(OSError):
                    if e.is_file() and e.name == name:
                        found.append(Path(e.path))
                    elif e.is_dir(follow_symlinks=False) and e.name not in _SKIPPED and not e.name.startswith("."):
                        below.append(Path(e.path))
        level = below
    return found


def locate_spec(plan: Plan, plan_path: Path | None) -> Path:
    """The spec file the plan was made from: a file at its recorded path from the working folder or beside the
    plan, or of the same name below either, whose content is the sha256 the plan records (as when
    `plan specs/x.unlearn -o plan.json` was run from the repository's root). A file of that name and other
    content is taken only when no file has the recorded content (the spec was edited since: the comparison with
    the plan then says what changed); a file that merely shares the name is never preferred to the plan's own."""
    spec_rel = Path(plan.spec.path)
    candidates = [Path.cwd() / spec_rel]
    roots = [Path.cwd()]
    if plan_path is not None:
        candidates += [plan_path.resolve().parent / spec_rel, plan_path.resolve().parent / spec_rel.name]
        roots.append(plan_path.resolve().parent)
    existing: list[Path] = []
    for c in candidates:
        try:
            if c.is_file():
                existing.append(c.resolve())
        except OSError:
            continue
    for c in dict.fromkeys(existing):
        if _same_content(c, plan.spec.sha256):
            return c
    for root in dict.fromkeys(r.resolve() for r in roots):
        for c in _same_named(root, spec_rel.name):
            if _same_content(c, plan.spec.sha256):
                return c.resolve()
    if existing:
        return existing[0]
    raise UserError(E_SPEC_NOT_FOUND, f"cannot find the plan's spec {code_span(plan.spec.path)}",
                    [f"no file of that name and content lies below the working folder or the plan's (searched "
                     f"{SEARCH_DEPTH} folders deep); run from the spec's folder, keep the plan beside its spec, "
                     "or run the plan as given with `--trust-plan`"])


def _same_content(path: Path, sha256: str) -> bool:
    try:
        return sha256_path(path) == sha256
    except OSError:
        return False


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
        return [f"the spec {code_span(plan.spec.path)} cannot be planned now ({', '.join(errors) or 'errors'})"]
    if made.compute_hash() == plan.compute_hash():
        return []
    out: list[str] = []
    if made.tool.version != plan.tool.version:
        out.append(f"the plan was made by unlearnspec {plan.tool.version}; this is {made.tool.version}")
    semantic = [f"{c.kind}: {c.message}" for c in diff_plans(made, plan)]
    out += semantic
    if not semantic:
        paths = _leaf_differences(made.model_dump(mode="json"), plan.model_dump(mode="json"))
        out.append("fields that differ: " + ", ".join(code_span(p) for p in paths if p != "plan_hash"))
    return out


def check(plan: Plan, spec: Path) -> None:
    """Raise UL711 when ``plan`` is not what the compiler makes of ``spec``."""
    diffs = differences(plan, spec)
    if diffs:
        raise UserError(E_PLAN_NOT_FROM_SPEC,
                        f"the plan is not what the compiler makes of its spec {code_span(plan.spec.path)}",
                        [*diffs[:6], TRUST_HELP])
