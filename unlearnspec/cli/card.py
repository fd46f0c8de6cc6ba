"""Verb `card`: a Hugging Face model-card section (Markdown) from a run's report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnspec.cli.common import EXIT_OK, EXIT_USAGE, Parser, out, path_arg
from unlearnspec.inputs import first_problem


def cmd_card(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from unlearnspec.audit.card import card_for_run  # the report's models and jinja2: not on `check`'s path

    run_dir = Path(args.run_dir)
    if not (run_dir / "report.json").is_file():
        sys.stderr.write(f"error: `{args.run_dir}` has no report.json\n"
                         "  = help: give a run folder written by `unlearnspec run`\n")
        return EXIT_USAGE
    try:
        text = card_for_run(run_dir)
    except (ValidationError, ValueError) as err:  # a report whose verdicts do not follow from its numbers
        if isinstance(err, ValidationError) and err.errors():
            why = ": ".join(first_problem(err, "the top level"))
        else:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            why = lines[0] if lines else "unreadable"
        sys.stderr.write(f"error: `{run_dir / 'report.json'}` is not a valid report: {why}\n"
                         "  = help: a card is only made from a report that validates; re-run to get one\n")
        return EXIT_USAGE
    # a card written over the run's own files would replace the evidence it summarises
    out(text, args.output, [run_dir / name for name in ("report.json", "plan.json", "report.sig.json", "run.json",
                                                        "report.md", "report.html")])
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("card", help="a model-card section (Markdown) for a run: what was unlearned, how, "
                                     "each claim's verdict, what was not claimed")
    sp.add_argument("run_dir", type=path_arg, help="a run folder written by `unlearnspec run`")
    sp.add_argument("-o", "--output", help="write the section to this file (default: stdout)")
    sp.set_defaults(func=cmd_card)
