"""The language server's one coupling to the compiler: checking, formatting, the vocabulary,
rule pages and data-file inspection.

Everything the server knows about the language comes through here, so that retargeting the server
to a new compiler entry point or vocabulary module is an edit to this file alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unlearnspec.catalog import CODES, FAMILIES, METHODS, OUTPUT_KINDS, PROBES, CodePage, vocab
from unlearnspec.compiler.check import check_bytes
from unlearnspec.compiler.diagnostics import Diagnostic, Span
from unlearnspec.compiler.explain import code_page_markdown as explain_code_page
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve_values import BUILTIN_MODELS, expected_example, inspect_cached
from unlearnspec.compiler.syntax import Block, Field, ObjectiveNode, SpecFile
from unlearnspec.records import DataFileInfo, DataFormatError

__all__ = [
    "BUILTIN_MODELS",
    "BLOCK_FIELDS", "CLAIMS", "METRICS", "PATH_FIELDS", "ROLE_SETS", "SECONDARY_WORDS", "WordRole", "Block", "CheckOutcome", "CodePage", "Diagnostic", "Field",
    "ObjectiveNode", "Span", "SpecFile",
    "accept_codes", "check_text", "code_page", "code_page_markdown", "data_file_summary", "expected_example", "field_words",
    "format_text", "parse_text", "word_roles",
]

CLAIMS = vocab.CLAIMS
METRICS = vocab.METRICS

#: The field names allowed in each kind of block. ``claims`` and ``evidence`` hold claim and metric
#: names; ``""`` is the file's top level.
BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "": ("unlearnspec", "objective"),
    "objective": vocab.OBJECTIVE_FIELDS,
    "target": vocab.TARGET_FIELDS,
    "scope": vocab.SCOPE_FIELDS,
    "preserve": vocab.PRESERVE_FIELDS,
    "method": vocab.METHOD_FIELDS,
    "budget": vocab.BUDGET_FIELDS,
    "claims": tuple(vocab.CLAIMS),
    "evidence": tuple(vocab.METRICS),
}

#: Fields whose quoted values are data-file paths, relative to the spec's folder.
PATH_FIELDS = frozenset({"forget", "holdout", "test", "retain", "neighbors"})

# The closed word sets, named by the role they play (what hover says a word is).
_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("target category", vocab.TARGET_CATEGORIES),
    ("target `kind`", vocab.TARGET_KINDS),
    ("`goal`", vocab.GOALS),
    ("suppression `via`", vocab.SUPPRESSION_VIA),
    ("`release` mode", vocab.RELEASES),
    ("`release` `precision`", vocab.PRECISIONS),
    ("`method`", vocab.METHODS),
    ("`guarantee`", vocab.GUARANTEES),
    ("scope `outputs`", vocab.OUTPUTS),
    ("scope `prompts`", vocab.PROMPTS),
    ("method `adapter`", vocab.ADAPTERS),
)

#: Every closed word set, in the order hover lists a word's roles.
ROLE_SETS: tuple[tuple[str, ...], ...] = tuple(words for _, words in _ROLES)

#: Words that join a field's values rather than name a choice (`via`, `precision`, `drop`...).
SECONDARY_WORDS = ("via", "precision", "drop", "rank", "steps", "none")


def field_words(block: str, field: str) -> tuple[str, ...]:
    """The words allowed after ``field`` in ``block`` (secondary keywords included)."""
    table: dict[str, tuple[str, ...]] = {
        "target": vocab.TARGET_CATEGORIES,
        "kind": vocab.TARGET_KINDS,
        "goal": (*vocab.GOALS, "via", *vocab.SUPPRESSION_VIA),
        "release": (*vocab.RELEASES, "precision", *vocab.PRECISIONS),
        "method": vocab.METHODS,
        "guarantee": vocab.GUARANTEES,
        "outputs": vocab.OUTPUTS,
        "prompts": vocab.PROMPTS,
        "adapter": (*vocab.ADAPTERS, "rank"),
        "utility": ("drop", "retain", "neighbors"),
        "side_effects": ("none",),
        "accept": accept_codes(),
        "robust_to_finetuning": ("steps",),
    }
    if block == "method" and field == "seed":
        return ()
    return table.get(field, ())


@dataclass(frozen=True)
class WordRole:
    """One role a word plays: its set (``role``), the set's other words, and what the catalog says."""

    role: str
    others: tuple[str, ...]
    details: tuple[str, ...] = ()


def word_roles(word: str) -> list[WordRole]:
    """The roles a word plays in the language (a word can play several, e.g. `model`)."""
    out = []
    for role, words in _ROLES:
        if word not in words:
            continue
        details: list[str] = []
        if role == "`method`" and word in METHODS:
            m = METHODS[word]
            details = [m.summary, f"family: {FAMILIES[m.family].review}"] + ([m.source] if m.source else [])
        elif role == "scope `prompts`" and word in PROBES:
            details = [PROBES[word].description, f"scored by `{PROBES[word].metric}`"]
        elif role == "scope `outputs`" and word in OUTPUT_KINDS:
            details = ["`not_generated` checks it by " + ", ".join(f"`{m}`" for m in OUTPUT_KINDS[word].metrics)]
        out.append(WordRole(role, tuple(w for w in words if w != word), tuple(details)))
    return out


@dataclass
class CheckOutcome:
    diagnostics: list[Diagnostic]
    syntax: SpecFile | None


def check_text(text: str, display: str, base_dir: Path) -> CheckOutcome:
    """Everything ``unlearnspec check`` reports for ``text``: parse, resolve, feasibility, accept."""
    # a lone surrogate (legal in JSON-RPC's strings) stays an invalid byte sequence: UL100, as in a file
    result = check_bytes(text.encode("utf-8", "surrogatepass"), display, base_dir)
    return CheckOutcome(diagnostics=list(result.diagnostics), syntax=result.syntax)


def parse_text(text: str, display: str) -> SpecFile | None:
    syntax, diags = parse_bytes(text.encode("utf-8", "surrogatepass"), display)
    if syntax is None or any(d.severity == "error" for d in diags):
        return None
    return syntax


def format_text(text: str, display: str) -> str | None:
    """What ``unlearnspec fmt`` writes for ``text``; ``None`` when it does not parse."""
    syntax = parse_text(text, display)
    return None if syntax is None else format_spec(syntax)


def code_page(code: str) -> CodePage | None:
    return CODES.get(code)


def code_page_markdown(code: str) -> str | None:
    """The page `unlearnspec explain CODE` prints."""
    return explain_code_page(code)


def accept_codes() -> tuple[str, ...]:
    """Codes an `accept` line may name: warnings and notes (errors cannot be accepted)."""
    return tuple(sorted(c for c, p in CODES.items() if p.severity in ("warning", "note") and c.startswith("UL")))


def data_file_summary(path: Path) -> str:
    """A data file's format and record count, as the compiler reads it (or why it cannot)."""
    try:
        info = inspect_cached(path)
    except OSError as err:
        return f"cannot be opened: {err.strerror or err}"
    if isinstance(info, DataFormatError):
        where = f" (line {info.line})" if info.line else ""
        return f"cannot be read{where}: {info.message}"
    return _describe(info)


def _describe(info: DataFileInfo) -> str:
    kind = {"jsonl": "JSONL", "csv": "CSV", "hf_dataset": "Hugging Face `save_to_disk` folder"}.get(info.kind, info.kind)
    if info.records < 0:
        return kind
    parts = [f"{info.qa_records} question-answer", f"{info.text_records} with text"]
    return f"{kind}, {info.records} record{'s' * (info.records != 1)} ({', '.join(parts)})"

