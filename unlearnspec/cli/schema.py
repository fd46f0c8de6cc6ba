"""Verb `schema`: the JSON Schema of the spec, the plan or the report."""

from __future__ import annotations

import argparse
import json

from unlearnspec.cli.common import EXIT_OK, Parser, out
from unlearnspec.compiler.ast import Spec


def cmd_schema(args: argparse.Namespace) -> int:
    if args.plan:  # the plan's and the report's models load only when their schema is asked for
        from unlearnspec.plan import plan_schema

        schema = plan_schema()
    elif args.report:
        from unlearnspec.report.model import Report

        schema = Report.model_json_schema()
    else:
        schema = Spec.model_json_schema()
    out(json.dumps(schema, indent=2, sort_keys=True) + "\n", args.output)
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("schema", help="print the JSON Schema of the spec model (or --plan, --report)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--plan", action="store_true")
    g.add_argument("--report", action="store_true")
    sp.add_argument("-o", "--output")
    sp.set_defaults(func=cmd_schema)
