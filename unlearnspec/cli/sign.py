"""Verbs `keygen`, `sign` and `verify`: Ed25519 signatures over a run's report and plan, checked offline."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, add_colour, out, path_arg
from unlearnspec.cli.ledger import problems_result
from unlearnspec.compiler.render import render


def _error(err: Exception) -> int:
    code, message, helps = getattr(err, "code", "UL813"), getattr(err, "message", str(err)), getattr(err, "help", [])
    sys.stderr.write(f"error[{code}]: {message}\n")
    for h in helps:
        sys.stderr.write(f"  = help: {h}\n")
    return EXIT_USAGE


def cmd_keygen(args: argparse.Namespace) -> int:
    # signing reads plans and reports: their models load when a signing verb runs, never on `check`'s path
    from unlearnspec.audit.signing import SigningError, keygen

    try:
        private, public = keygen(Path(args.out))
    except SigningError as err:
        return _error(err)
    sys.stdout.write(f"private key {private} (mode 0600: keep it secret)\npublic key  {public} (give it to verifiers)\n")
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    from unlearnspec.audit.signing import SigningError, sign

    try:
        path = sign(Path(args.run_dir), Path(args.key))
    except SigningError as err:
        return _error(err)
    sys.stdout.write(f"signed: {path}\n")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from unlearnspec.audit.signing import SigningError, verify

    run_dir = Path(args.run_dir)
    try:
        problems = verify(run_dir, Path(args.pub))
    except SigningError as err:
        return _error(err)
    if not problems:
        sys.stdout.write(f"verified: `{run_dir}` (report.json and plan.json) was signed by `{args.pub}`'s key\n")
        return EXIT_OK
    by_file = defaultdict(list)
    for p in problems:
        by_file[p.file or "report.sig.json"].append(p)
    results = [problems_result(run_dir / name, (run_dir / name).read_bytes(), ps) for name, ps in by_file.items()]
    out(render(results, args.format, sys.stdout, args.color))
    return EXIT_FINDINGS


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("keygen", help="make an Ed25519 key pair for signing reports (PEM)")
    sp.add_argument("--out", required=True, metavar="KEY", help="private key file (mode 0600); KEY.pub gets the public key")
    sp.set_defaults(func=cmd_keygen)
    sp = sub.add_parser("sign", help="sign a run's report.json and plan with an Ed25519 key (writes report.sig.json)")
    sp.add_argument("run_dir", type=path_arg, help="a run folder written by `unlearnspec run`")
    sp.add_argument("--key", required=True, help="the private key (PEM) from `unlearnspec keygen`")
    sp.set_defaults(func=cmd_sign)
    sp = sub.add_parser("verify", help="check a run's signature offline; exit 1 if any byte of the report, "
                                       "the plan or the signature changed")
    sp.add_argument("run_dir", type=path_arg, help="a signed run folder")
    sp.add_argument("--pub", required=True, help="the signer's public key (PEM, KEY.pub)")
    sp.add_argument("--format", choices=("human", "json", "sarif", "github"), default="human")
    add_colour(sp)
    sp.set_defaults(func=cmd_verify)
