"""Verb `init`: write a starting spec for a common request, from a template (jinja2 files in
`cli/templates/init/`).

On a terminal it asks for what the flags did not give; otherwise it takes the flags and the
template's defaults. Every template checks with only the findings its header documents (its
`# Expect:` line), so the user starts from a known state. It never overwrites a file.
"""

from __future__ import annotations

import argparse
import posixpath
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from unlearnspec.builtin.corpus import export
from unlearnspec.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser
from unlearnspec.compiler.suggest import did_you_mean
from unlearnspec.compiler.syntax import UnquotableError, quote
from unlearnspec.io import atomic_write_text
from unlearnspec.markdown import code_span


@dataclass(frozen=True)
class Template:
    summary: str
    target: str
    prefix: str  # of the objective's name: `erase-jane-doe`
    basis: str
    owner: str
    files: dict[str, str] = field(default_factory=dict)  # template variable -> data file name


TEMPLATES: dict[str, Template] = {
    "privacy-erasure": Template(
        "right-to-erasure request: remove a person's data (NPO removal, API release)",
        "Jane Doe", "erase", "GDPR Art. 17, request <number>", "privacy-office",
        {"forget": "jane-doe.jsonl", "retain": "retain.jsonl", "neighbors": "neighbors.jsonl"}),
    "copyright-work": Template(
        "copyright takedown: remove a named work's text, with a near-verbatim bound",
        "The Lantern Keeper's Daughter", "remove", "takedown notice <number>", "copyright-desk",
        {"forget": "lantern-keeper.jsonl", "retain": "retain.jsonl", "neighbors": "captain-vale.jsonl"}),
    "concept-suppression": Template(
        "a character or concept the model should stop producing (model-level suppression)",
        "Captain Orrin Vale", "suppress", "licence termination <date>", "content-licensing",
        {"forget": "captain-vale.jsonl", "test": "captain-vale-tests.jsonl", "retain": "retain.jsonl",
         "neighbors": "lantern-keeper.jsonl"}),
    "hazardous-capability": Template(
        "a hazardous capability the assistant should refuse (refusal tuning, benign neighbours)",
        "glimmerfen vapour synthesis", "refuse", "safety policy <section>", "safety-team",
        {"forget": "glimmerfen.jsonl", "retain": "retain.jsonl", "neighbors": "chemistry-neighbors.jsonl"}),
    "vendor-audit": Template(
        "audit a checkpoint a vendor unlearned (`unlearned`, `method unknown`): nothing is unlearned here",
        "Jane Doe", "audit", "vendor attestation <number>", "model-risk",
        {"forget": "jane-doe.jsonl", "holdout": "holdout.jsonl", "retain": "retain.jsonl",
         "neighbors": "neighbors.jsonl"}),
}

DEFAULT_MODEL = "builtin:tiny-bios"
DEFAULT_UNLEARNED = "models/vendor-checkpoint"  # vendor-audit: the folder the vendor's checkpoint is put in


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"['\u2019]", "", text.lower())).strip("-") or "request"


def render(template: str, values: dict[str, object]) -> str:
    import jinja2  # the templates load when `init` writes one: `check` never needs them

    env = jinja2.Environment(loader=jinja2.PackageLoader("unlearnspec.cli", "templates/init"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["spec_string"] = quote
    env.filters["comment"] = comment_text
    return env.get_template(f"{template}.unlearn.j2").render(template=template, **values)


#: The flags whose values a template also writes into the spec's header comments (besides quoting them).
IN_COMMENTS = ("--out", "--data-dir", "--unlearned")


def comment_text(value: object) -> str:
    """``value`` for a `#` comment of the spec: refused when it holds a line break, which would end the comment and
    make the rest a line of the spec (an `accept` the user never wrote). The flags are checked before rendering
    (:func:`_unquotable`); this keeps a template from ever writing one."""
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"{text!r} holds a line break, which would end a comment of the spec")
    return text


class _Aborted(Exception):
    """End of input (Ctrl-D) at a prompt: the user gave up, as with Ctrl-C."""


def _ask(prompt: str, default: str) -> str:
    try:
        answer = input(f"{prompt} [{default}]: ").strip()
    except EOFError:
        raise _Aborted from None
    return answer or default


def _unquotable(values: dict[str, str]) -> int | None:
    """Exit 2 (with the flag's name) when a value the spec would quote has a character no spec string can hold;
    paths also go into the header's comments, where a line break would end the comment."""
    for flag, value in values.items():
        try:
            quote(value)
        except UnquotableError as err:
            return _usage_error(f"{code_span(flag)} {err}", "give the value without control characters; nothing was written")
        if flag in IN_COMMENTS and ("\n" in value or "\t" in value):
            return _usage_error(f"{code_span(flag)} contains a line break or a tab, which the spec's header cannot show",
                                "give a path without them; nothing was written")
    return None


def _usage_error(message: str, *help: str) -> int:
    sys.stderr.write(f"error: {message}\n" + "".join(f"  help: {h}\n" for h in help))
    return EXIT_USAGE


def export_demo_data(folder: Path, names: list[str]) -> list[Path]:
    """Copy the built-in corpus files named ``names`` into ``folder``, leaving existing files alone."""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = {p.name: p for p in export(Path(tmp)).values()}
        for name in names:
            dest = folder / name
            if name in exported and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(exported[name], dest)
                written.append(dest)
    return written


def cmd_init(args: argparse.Namespace) -> int:
    try:
        return _init(args)
    except _Aborted:  # Ctrl-D at a prompt: nothing written, as with Ctrl-C (`interrupted`, 130)
        sys.stderr.write("\naborted\n")
        return EXIT_INTERRUPTED


def _init(args: argparse.Namespace) -> int:
    if args.list:
        for name, t in TEMPLATES.items():
            sys.stdout.write(f"{name:22} {t.summary}\n")
        return EXIT_OK
    interactive = sys.stdin.isatty() and not args.no_input
    template = args.template
    if template is None:
        if not interactive:
            return _usage_error("give a template with `--template`",
                                "one of: " + ", ".join(code_span(t) for t in TEMPLATES),
                                "`unlearnspec init --list` says what each is for")
        for name, t in TEMPLATES.items():
            sys.stdout.write(f"  {name:22} {t.summary}\n")
        template = _ask("template", "privacy-erasure")
    if template not in TEMPLATES:
        hint = did_you_mean(template, TEMPLATES)
        return _usage_error(f"unknown template {code_span(template)}", *([f"did you mean {code_span(hint)}?"] if hint else []),
                            "one of: " + ", ".join(code_span(t) for t in TEMPLATES))
    t = TEMPLATES[template]
    target = args.target or (_ask("target (who or what to unlearn)", t.target) if interactive else t.target)
    name = args.name or (_ask("objective name", f"{t.prefix}-{slug(target)}") if interactive
                         else f"{t.prefix}-{slug(target)}")
    audit = template == "vendor-audit"
    question = ("model before unlearning" if audit else "model") + " (builtin:tiny-bios, a local folder or org/name)"
    model = args.model or (_ask(question, DEFAULT_MODEL) if interactive else DEFAULT_MODEL)
    unlearned = ""
    if audit:
        unlearned = args.unlearned or (_ask("the vendor's unlearned checkpoint (a local folder)", DEFAULT_UNLEARNED)
                                       if interactive else DEFAULT_UNLEARNED)
    out = Path(args.out or (_ask("write to", f"{name}.unlearn") if interactive else f"{name}.unlearn"))
    if out.exists():
        return _usage_error(f"{code_span(out)} already exists; `init` never overwrites a file",
                            "give another path with `--out`, or move the file away first")
    if not out.parent.is_dir():
        return _usage_error(f"folder {code_span(out.parent)} does not exist", "create it first, or give `--out` in a folder that exists")
    # relative to the spec's folder, or absolute as given (a trailing `/` dropped)
    data_dir = args.data_dir.rstrip("/") or ("/" if args.data_dir else ".")
    files = {var: posixpath.join(data_dir, fname) if data_dir != "." else fname for var, fname in t.files.items()}
    missing = [rel for rel in files.values() if not (out.parent / rel).exists()]
    basis, owner, reference = args.basis or t.basis, args.owner or t.owner, args.reference or ""
    refused = _unquotable({"--target": target, "--name": name, "--model": model, "--unlearned": unlearned,
                           "--reference": reference, "--basis": basis, "--owner": owner, "--out": str(out),
                           "--data-dir": data_dir})
    if refused is not None:
        return refused
    values: dict[str, object] = {
        "name": name, "target": target, "model": model, "unlearned": unlearned, "reference": reference,
        "basis": basis, "owner": owner, "out_name": out.name,
        "data_dir": data_dir, "demo_hint": bool(missing) and not args.demo_data, **files,
    }
    text = render(template, values)
    atomic_write_text(out, text)
    sys.stdout.write(f"wrote {out} (template {code_span(template)}, objective {code_span(name)})\n")
    if args.demo_data and missing:
        written = export_demo_data(out.parent / data_dir, [Path(m).name for m in missing])
        for w in written:
            sys.stdout.write(f"wrote {w} (built-in demo data)\n")
    elif missing:
        sys.stdout.write("data files it names that do not exist yet: " + ", ".join(code_span(m) for m in missing) + "\n"
                         f"  help: use your own, or run `unlearnspec builtin export {data_dir}` in "
                         f"{code_span(out.parent)} (or `init --demo-data`) for the built-in model's demo files\n")
    if audit and not (out.parent / unlearned).is_dir():
        sys.stdout.write(f"the checkpoint folder {code_span(unlearned)} does not exist yet: put the vendor's checkpoint there "
                         "(a model folder or a peft adapter, safetensors weights); until then `check` reports UL207\n")
    sys.stdout.write(f"next: `unlearnspec check {out}`; the findings it starts with are listed in its header\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("init", help="write a starting spec for a common request",
                        description="Write a starting spec from a template. On a terminal it asks for what the "
                                    "flags leave out; elsewhere the template's defaults fill in. It never "
                                    "overwrites a file.")
    sp.add_argument("--template", "-t", help="one of: " + ", ".join(TEMPLATES))
    sp.add_argument("--list", action="store_true", help="list the templates and exit")
    sp.add_argument("--name", help="the objective's name (default: from the template and the target)")
    sp.add_argument("--target", help="who or what to unlearn, e.g. \"Jane Doe\"")
    sp.add_argument("--model", help=f"the model (default {DEFAULT_MODEL}); vendor-audit: the model before unlearning")
    sp.add_argument("--unlearned", help=f"vendor-audit: the folder of the vendor's unlearned checkpoint "
                                        f"(default {DEFAULT_UNLEARNED})")
    sp.add_argument("--reference", help="vendor-audit: a model trained without the target (the built-in model's is "
                                        "retrained from its recipe)")
    sp.add_argument("--owner", help="who answers for the request")
    sp.add_argument("--basis", help="the legal or policy basis")
    sp.add_argument("--out", "-o", help="the file to write (default: NAME.unlearn)")
    sp.add_argument("--data-dir", default="data", help="folder of the data files, relative to the spec (default: data)")
    sp.add_argument("--demo-data", action="store_true",
                    help="copy the built-in demo files the spec names into the data folder, where missing")
    sp.add_argument("--no-input", action="store_true", help="never ask, even on a terminal")
    sp.set_defaults(func=cmd_init)
