"""Verb `debug`: what one compiler pass produced for a spec, as JSON.

    unlearnspec debug syntax SPEC     # parse: the syntax tree
    unlearnspec debug ast SPEC        # resolve: the typed AST
    unlearnspec debug analysis SPEC   # analyse: per objective, facts, method, findings, claim statuses
    unlearnspec debug plan SPEC       # lower: the plan (lowered as with --allow-infeasible)

Every document has the passes that ran and the diagnostics so far; when an earlier pass stopped the
compilation (a syntax error, say), ``output`` is null and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, out, path_arg
from unlearnspec.compiler.check import compile
from unlearnspec.compiler.syntax import to_json

if TYPE_CHECKING:
    from unlearnspec.compiler.check import PassName
    from unlearnspec.compiler.unit import CheckResult

#: Each stage a contributor can look at, and the pass that produces it.
STAGES: dict[str, PassName] = {"syntax": "parse", "ast": "resolve", "analysis": "analyse", "plan": "lower"}


def stage_output(result: CheckResult, stage: str) -> Any:
    if stage == "syntax":
        return None if result.syntax is None else to_json(result.syntax)
    if stage == "ast":
        return None if result.spec is None else result.spec.model_dump(mode="json")
    if stage == "analysis":
        return None if result.analysis is None else [a.to_json() for a in result.analysis]
    return None if result.plan is None else json.loads(result.plan.canonical_json())


def cmd_debug(args: argparse.Namespace) -> int:
    result = compile(Path(args.spec), STAGES[args.stage], allow_infeasible=True)
    output = stage_output(result, args.stage)
    doc = {"stage": args.stage, "pass": STAGES[args.stage], "file": result.path, "passes": result.passes,
           "output": output, "diagnostics": [d.model_dump(mode="json", exclude_defaults=True)
                                             for d in result.diagnostics]}
    out(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", args.output, result.read_files)
    if result.unreadable:  # a spec path that cannot be read is unusable (2), not a finding (1)
        return EXIT_USAGE
    return EXIT_OK if output is not None else EXIT_FINDINGS


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("debug", help="print what one compiler pass produced for a spec, as JSON")
    sp.add_argument("stage", choices=tuple(STAGES), help="syntax (parse), ast (resolve), analysis (analyse), "
                    "plan (lower)")
    sp.add_argument("spec", type=path_arg)
    sp.add_argument("-o", "--output", help="file to write (default: stdout)")
    sp.set_defaults(func=cmd_debug)
