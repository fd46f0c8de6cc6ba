"""Verbs `keygen`, `sign` and `verify`: Ed25519 signatures over a run folder, checked offline."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, add_colour, out, path_arg
from unlearnspec.cli.ledger import file_source, problems_result
from unlearnspec.compiler.render import render
from unlearnspec.markdown import code_span


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
        signed = sign(Path(args.run_dir), Path(args.key), force=args.force)
    except SigningError as err:
        return _error(err)
    for w in signed.warnings:
        sys.stderr.write(f"warning: {w}\n")
    present = sum(sha is not None for sha in signed.files.values())
    sys.stdout.write(f"signed: {signed.path} ({present} files of the run folder; `verify` lists them)\n")
    return EXIT_OK


def _name(rel: str) -> str:
    """A file name for the terminal: bytes that are not UTF-8 (kept as surrogates) and control characters escaped."""
    text = rel.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _coverage(run_dir: Path, pub: str, version: str, files: dict[str, str | None], not_covered: list[str]) -> str:
    """What a signature that verified vouches for, and what it does not: never "verified" for more."""
    first = "report.json and plan.json only (signature format 1)" if version == "1" else "these files"
    lines = [f"verified: {code_span(run_dir)} was signed by {code_span(pub)}'s key; the signature covers {first}:"]
    lines += [f"  {_name(rel)}" + ("  (absent when signed, and still absent)" if sha is None else "")
              for rel, sha in sorted(files.items())]
    if not_covered:
        lines.append("not covered by the signature (a change to these goes unnoticed):")
        lines += [f"  {_name(rel)}" for rel in not_covered]
    if version == "1":
        lines.append("  = help: sign again (`unlearnspec sign RUN_DIR --key KEY --force`) to cover report.md, "
                     "report.html and the run's other files")
    return "\n".join(lines) + "\n"


def cmd_verify(args: argparse.Namespace) -> int:
    from unlearnspec.audit.signing import SigningError, verify_run

    run_dir = Path(args.run_dir)
    try:
        v = verify_run(run_dir, Path(args.pub))
    except SigningError as err:
        return _error(err)
    if not v.problems:
        sys.stdout.write(_coverage(run_dir, args.pub, v.version, v.files, v.not_covered))
        return EXIT_OK
    by_file = defaultdict(list)
    for p in v.problems:
        by_file[p.file or "report.sig.json"].append(p)
    results = [problems_result(run_dir / name, file_source(run_dir / name), ps) for name, ps in by_file.items()]
    out(render(results, args.format, sys.stdout, args.color))
    return EXIT_FINDINGS


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("keygen", help="make an Ed25519 key pair for signing reports (PEM)")
    sp.add_argument("--out", required=True, metavar="KEY", help="private key file (mode 0600); KEY.pub gets the public key")
    sp.set_defaults(func=cmd_keygen)
    sp = sub.add_parser("sign", help="sign a run folder (its report in every form, plan, receipt and model files) with "
                                     "an Ed25519 key (writes report.sig.json)")
    sp.add_argument("run_dir", type=path_arg, help="a run folder written by `unlearnspec run`")
    sp.add_argument("--key", required=True, help="the private key (PEM) from `unlearnspec keygen`")
    sp.add_argument("--force", action="store_true",
                    help="replace an existing report.sig.json (a link there is replaced itself, never written through)")
    sp.set_defaults(func=cmd_sign)
    sp = sub.add_parser("verify", help="check a run's signature offline; exit 1 if any byte of a signed file "
                                       "or of the signature changed")
    sp.add_argument("run_dir", type=path_arg, help="a signed run folder")
    sp.add_argument("--pub", required=True, help="the signer's public key (PEM, KEY.pub)")
    sp.add_argument("--format", choices=("human", "json", "sarif", "github"), default="human")
    add_colour(sp)
    sp.set_defaults(func=cmd_verify)
