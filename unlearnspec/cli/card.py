"""Verb `card`: a Hugging Face model-card section (Markdown) from a run's report."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from unlearnspec.catalog import CODES
from unlearnspec.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    add_colour,
    inside,
    out,
    path_arg,
)
from unlearnspec.cli.ledger import file_source, problems_result
from unlearnspec.compiler.render import render
from unlearnspec.errors import UserError
from unlearnspec.inputs import first_problem
from unlearnspec.markdown import code_span

#: the run's own files: a card written over one would replace the evidence it summarises
RUN_FILES = ("report.json", "plan.json", "report.sig.json", "run.json", "report.md", "report.html", "ledger.json",
             "run.log")


def _outside_the_run(output: str | None, run_dir: Path) -> None:
    """UL715 for ``-o`` inside the run folder: `card` only reads it, and a file written there would replace its
    evidence (ledger.json, an objective's checks.json) or be one its signature does not cover."""
    if output and output != "-" and inside(output, run_dir):
        raise UserError(CODES["UL715"].code, f"{code_span(output)} is inside the run folder {code_span(run_dir)}, which `card` only "
                        "reads: writing there would change the run's evidence", ["give a path outside the run folder "
                                                                                  "with `-o`, or `-` for stdout"])


def cmd_card(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    # the report's models, jinja2 and the signature checks: not on `check`'s path
    from unlearnspec.audit.card import card_for_run
    from unlearnspec.audit.signing import SigningError, check_finished

    run_dir = Path(args.run_dir)
    if not (run_dir / "report.json").is_file():
        sys.stderr.write(f"error: {code_span(args.run_dir)} has no report.json\n"
                         "  = help: give a run folder written by `unlearnspec run`\n")
        return EXIT_USAGE
    _outside_the_run(args.output, run_dir)
    try:
        check_finished(run_dir)  # a run whose finish was cut short is rewritten by its resume
        card = card_for_run(run_dir, pub=Path(args.pub) if args.pub else None,
                            ledger=Path(args.ledger) if args.ledger else None)
    except SigningError as err:  # an unusable key, or no signature to verify
        sys.stderr.write(f"error[{err.code}]: {err.message}\n")
        for h in err.help:
            sys.stderr.write(f"  = help: {h}\n")
        return EXIT_USAGE
    except (ValidationError, ValueError) as err:  # a report whose verdicts do not follow from its numbers
        if isinstance(err, ValidationError) and err.errors():
            why = ": ".join(first_problem(err, "the top level"))
        else:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            why = lines[0] if lines else "unreadable"
        sys.stderr.write(f"error: {code_span(run_dir / 'report.json')} is not a valid report: {why}\n"
                         "  = help: a card is only made from a report that validates; re-run to get one\n")
        return EXIT_USAGE
    if card.text is None:  # a signature or a receipt that does not hold: no card claims it
        by_file = defaultdict(list)
        for path, p in card.problems:
            by_file[path].append(p)
        results = [problems_result(path, file_source(path), ps) for path, ps in by_file.items()]
        sys.stderr.write(render(results, "human", sys.stderr, args.color))
        sys.stderr.write("error: no card was made: the checks it was asked to cite do not hold\n")
        return EXIT_FINDINGS
    out(card.text, args.output, [run_dir / name for name in RUN_FILES])
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("card", help="a model-card section (Markdown) for a run: what was unlearned, how, "
                                     "each claim's verdict, what was not claimed")
    sp.add_argument("run_dir", type=path_arg, help="a run folder written by `unlearnspec run`")
    sp.add_argument("-o", "--output", help="write the section to this file (default: stdout)")
    sp.add_argument("--pub", metavar="KEY.pub",
                    help="verify the run's signature with this public key; the card then says the run is signed and "
                         "what the signature covers (without it: that a signature file is there, unverified)")
    sp.add_argument("--ledger", metavar="DIR",
                    help="check the run's ledger receipt against this ledger folder; the card then cites the ledger "
                         "lines (without it: that a receipt is there, unchecked)")
    add_colour(sp)
    sp.set_defaults(func=cmd_card)
