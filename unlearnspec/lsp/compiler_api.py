"""The language server's one coupling to the compiler: checking, formatting, the vocabulary,
rule pages and data-file inspection.

Everything the server knows about the language comes through here, so that retargeting the server
to a new compiler entry point or vocabulary module is an edit to this file alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from unlearnspec.catalog import CODES, FAMILIES, METHODS, OUTPUT_KINDS, PROBES, CodePage, vocab
from unlearnspec.compiler.chain import split_ref
from unlearnspec.compiler.check import check_bytes
from unlearnspec.compiler.diagnostics import Diagnostic, Span
from unlearnspec.compiler.examples import expected_example
from unlearnspec.compiler.explain import code_page_markdown as explain_code_page
from unlearnspec.compiler.feasibility import acceptable
from unlearnspec.compiler.fixes import preferred_fixes
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import MAX_BYTES, parse_bytes
from unlearnspec.compiler.resolve_values import BUILTIN_MODELS, display_dir, inspect_cached
from unlearnspec.compiler.syntax import Block, Field, ObjectiveNode, SpecFile, unquote
from unlearnspec.markdown import code_span
from unlearnspec.records import DATA_SUFFIXES, DataFileInfo, DataFormatError

__all__ = [
    "BUILTIN_MODELS",
    "BLOCK_FIELDS", "CLAIMS", "DATA_SUFFIXES", "EVIDENCE_SETTINGS", "METRICS", "PATH_FIELDS", "ROLE_SETS", "SECONDARY_WORDS", "WordRole", "Block", "CheckOutcome", "CodePage", "Diagnostic", "Field",
    "ObjectiveNode", "Span", "SpecFile",
    "accept_codes", "check_text", "code_page", "code_page_markdown", "data_file_kind", "data_file_summary",
    "expected_example", "field_note", "field_words", "format_text", "next_words", "parse_text", "split_ref", "unquote",
    "word_roles", "MAX_SPEC_BYTES", "preferred_fixes",
]

#: The largest spec the compiler reads (UL106 beyond it).
MAX_SPEC_BYTES = MAX_BYTES

CLAIMS = vocab.CLAIMS
METRICS = vocab.METRICS
#: Fields of `evidence` that are not metrics (``confidence 95%``).
EVIDENCE_SETTINGS = vocab.EVIDENCE_SETTINGS

#: The field names allowed in each kind of block. ``claims`` holds claim names, ``evidence`` metric
#: names and its settings; ``""`` is the file's top level.
BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "": ("unlearnspec", "objective"),
    "objective": vocab.OBJECTIVE_FIELDS,
    "target": vocab.TARGET_FIELDS,
    "scope": vocab.SCOPE_FIELDS,
    "preserve": vocab.PRESERVE_FIELDS,
    "method": vocab.METHOD_FIELDS,
    "budget": vocab.BUDGET_FIELDS,
    "claims": tuple(vocab.CLAIMS),
    "evidence": (*vocab.METRICS, *vocab.EVIDENCE_SETTINGS),
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


def next_words(block: str, field: str, before: Sequence[str]) -> tuple[str, ...]:
    """The words that may come next in ``field`` of ``block``, after ``before`` (the words of this
    value so far: from the field name, or from the list's last comma). `goal` → `removal`,
    `suppression`; `goal suppression` → `via`; `goal suppression via` → `model`, `system`; a one-word
    value is complete once written; a chain's `budget` covers all utility (no `retain`, `neighbors`)."""
    after = list(before)
    if field == "goal":
        return (vocab.GOALS if not after else ("via",) if after == ["suppression"]
                else vocab.SUPPRESSION_VIA if after == ["suppression", "via"] else ())
    if field == "release":
        return (vocab.RELEASES if not after else ("precision",) if len(after) == 1 and after[0] in vocab.RELEASES
                else vocab.PRECISIONS if len(after) == 2 and after[1] == "precision" else ())
    if field == "adapter":
        return vocab.ADAPTERS if not after else ("rank",) if after == ["lora"] else ()
    if field == "utility":
        parts = ("retain", "neighbors") if block != "budget" else ()
        return ("drop", *parts) if not after else ("drop",) if len(after) == 1 and after[0] in parts else ()
    return field_words(block, field) if not after else ()


def field_note(name: str) -> str:
    """What a field holds beyond its example, for fields whose range the vocabulary defines."""
    if name == "confidence":
        lo, hi = vocab.CONFIDENCE_RANGE
        return (f"the confidence level of every check's interval, between {lo:.0%} and {hi:.1%} "
                f"(default {vocab.DEFAULT_CONFIDENCE:.0%})")
    return ""


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


def _encode(text: str) -> bytes:
    """The bytes a file with ``text`` holds, less a leading byte order mark (the compiler drops it and
    counts columns without it). A lone surrogate (legal in JSON-RPC's strings) stays an invalid byte
    sequence: UL100, as in a file."""
    return text.removeprefix("\ufeff").encode("utf-8", "surrogatepass")


#: Where the relative paths of a spec with no folder (a buffer never saved) lead: no folder at all.
NO_FOLDER = Path(os.devnull)


def check_text(text: str, display: str, base_dir: Path | None,
               open_text: Callable[[Path], str | None] | None = None) -> CheckOutcome:
    """Everything ``unlearnspec check`` reports for ``text``: parse, resolve, feasibility, accept.
    Positions are 1-based characters of ``text`` without its byte order mark, if it has one. With no
    ``base_dir`` (a spec not saved yet) every relative path is missing, and the help says why. ``open_text`` gives
    the editor's text of another spec it has open, saved or not: a chain continuing an objective there is checked
    against what the editor shows (the file on disk otherwise)."""

    def read_other(path: Path) -> bytes | None:
        shown = open_text(path) if open_text is not None else None
        return None if shown is None else _encode(shown)

    result = check_bytes(_encode(text), display, base_dir or NO_FOLDER, read_other=read_other)
    diags = list(result.diagnostics)  # every position in characters, UL100's too (parse._char_position)
    if base_dir is None:
        shown = f"({code_span(display_dir(NO_FOLDER))})"
        diags = [d.model_copy(update={"help": [h.replace(shown, "(none: the spec is not saved yet)") for h in d.help]})
                 for d in diags]
    return CheckOutcome(diagnostics=diags, syntax=result.syntax)


def parse_text(text: str, display: str) -> SpecFile | None:
    syntax, diags = parse_bytes(_encode(text), display)
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
    """Codes an `accept` line can accept, as ``apply_accepts`` decides (:func:`acceptable`)."""
    return tuple(sorted(c for c in CODES if acceptable(c)))


_KINDS = {"jsonl": "JSONL", "csv": "CSV", "hf_dataset": "Hugging Face `save_to_disk` folder"}


def data_file_kind(path: Path) -> str:
    """A data file's format as its name says (no byte of it is read)."""
    return _KINDS.get(path.suffix.lstrip(".").lower(), path.suffix)


def data_file_summary(path: Path) -> str:
    """A data file's format and record count, as the compiler reads it (or why it cannot)."""
    try:
        info = inspect_cached(path)
    except OSError as err:
        return f"cannot be opened: {err.strerror or err}"
    except ValueError as err:  # a NUL in the path
        return f"cannot be opened: {err}"
    if isinstance(info, DataFormatError):
        where = f" (line {info.line})" if info.line else ""
        return f"cannot be read{where}: {info.message}"
    return _describe(info)


def _describe(info: DataFileInfo) -> str:
    kind = _KINDS.get(info.kind, info.kind)
    if info.records < 0:
        return kind
    parts = [f"{info.qa_records} question-answer", f"{info.text_records} with text"]
    return f"{kind}, {info.records} record{'s' * (info.records != 1)} ({', '.join(parts)})"

