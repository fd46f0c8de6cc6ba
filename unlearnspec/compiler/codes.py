"""One registry of every diagnostic code and its page (what `unlearnspec explain CODE` prints).

Codes are public API: specs name them in `accept`, CI configurations filter on them. Syntax codes
(UL1xx) and resolve codes (UL2xx) are registered here; the feasibility rules (UL3xx-UL5xx)
register themselves, with their pages, in :mod:`unlearnspec.compiler.rules`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from unlearnspec.compiler.diagnostics import Severity


class CodePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str  # kebab-case short name, e.g. "unterminated-string"
    severity: Severity
    category: str  # "syntax" | "resolve" | "feasibility"
    summary: str  # what it checks, one sentence
    why: str  # why it matters
    example: str = ""  # a spec fragment that triggers it
    instead: str = ""  # what to write instead
    references: list[str] = Field(default_factory=list)


REGISTRY: dict[str, CodePage] = {}


def register(page: CodePage) -> CodePage:
    if page.code in REGISTRY and REGISTRY[page.code] != page:
        raise ValueError(f"diagnostic code {page.code} registered twice")
    REGISTRY[page.code] = page
    return page


_loaded = False


def ensure_registered() -> dict[str, CodePage]:
    """Import the modules that register codes (the feasibility rules) once."""
    global _loaded
    if not _loaded:
        _loaded = True
        from unlearnspec.compiler import rules  # noqa: F401  (registers UL3xx-UL5xx)
    return REGISTRY


def _front(code: str, name: str, severity: Severity, category: str, summary: str, why: str,
           example: str = "", instead: str = "") -> None:
    register(CodePage(code=code, name=name, severity=severity, category=category, summary=summary, why=why,
                      example=example, instead=instead))


_S, _R = "syntax", "resolve"
_front("UL100", "not-utf8-text", "error", _S, "The file is not UTF-8 text (binary content or invalid bytes).",
       "A spec is a reviewed text document; anything else is almost always the wrong file.",
       instead="Save the spec as UTF-8 text.")
_front("UL101", "unexpected-character", "error", _S, "A character that cannot start any token.",
       "Values are words, quoted strings, numbers, percentages or comparisons; other characters are mistakes.",
       example='title @"x"', instead='title "x"')
_front("UL102", "unexpected-token", "error", _S,
       "A token where the grammar expects something else (the message says what was expected).",
       "The parser cannot know what the author meant; it says what the language allows at that point.",
       example='objective erase-jane-doe {', instead='objective "erase-jane-doe" {')
_front("UL103", "unexpected-end-of-file", "error", _S, "The file ends inside a block or a field.",
       "Usually a `}` is missing; the diagnostic points at the `{` that is never closed.",
       example='objective "x" {\n  goal removal\n', instead='objective "x" {\n  goal removal\n}')
_front("UL104", "unterminated-string", "error", _S, "A string is not closed before the end of its line.",
       "Strings cannot span lines, so a missing quote is caught where it happens.",
       example='title "Erase Jane Doe', instead='title "Erase Jane Doe"')
_front("UL105", "nesting-too-deep", "error", _S, "Blocks nested deeper than the language ever needs.",
       "Objectives nest two levels at most; deeper nesting is a mistake or hostile input, refused before parsing.")
_front("UL106", "file-too-large", "error", _S, "The spec file is larger than 1 MB.",
       "Specs are short documents; data belongs in data files referred to by path.")
_front("UL107", "missing-header", "warning", _S, "The file does not start with `unlearnspec 1`.",
       "The header names the language version, so that later versions can read old specs unambiguously.",
       example='objective "x" { ... }', instead='unlearnspec 1\n\nobjective "x" { ... }')
_front("UL108", "unsupported-version", "error", _S, "The header names a language version this compiler does not read.",
       "Reading a spec under the wrong language version could silently change its meaning.",
       example="unlearnspec 2", instead="unlearnspec 1")
_front("UL109", "no-objective", "error", _S, "The file is empty or holds no objective.",
       "A spec without an objective asks for nothing, which is almost certainly not what was meant.",
       instead='unlearnspec 1\n\nobjective "erase-jane-doe" { ... }')
_front("UL201", "duplicate-objective", "error", _R, "Two objectives in one file share a name.",
       "Plans, reports and `accept` decisions are keyed by objective name.",
       instead="Give each objective a unique name.")
_front("UL202", "duplicate-field", "error", _R, "A field, claim or list item is given twice.",
       "Two values for one field leave the meaning ambiguous; the compiler will not pick one silently.",
       example="goal removal\ngoal suppression", instead="goal removal")
_front("UL203", "unknown-field", "error", _R, "A field name the block does not have (with a did-you-mean).",
       "Misspelled fields would otherwise be ignored, and a reviewer would believe they apply.",
       example="  retian \"data/retain.jsonl\"", instead='  retain "data/retain.jsonl"')
_front("UL204", "unknown-word", "error", _R,
       "A word outside the closed vocabulary of its field (target category, kind, goal, release, precision, "
       "method, output or prompt kind, claim, metric).",
       "Every word of the language has one documented meaning; the feasibility rules depend on it.",
       example="goal removel", instead="goal removal")
_front("UL205", "value-out-of-range", "error", _R,
       "A number outside its range: percentages 0-100, AUC, ROUGE and p-values in [0, 1], step counts > 0.",
       "A threshold that can never be reached, or always is, makes the claim it supports meaningless.",
       example="membership_auc <= 1.5", instead="membership_auc <= 0.60")
_front("UL206", "missing-field", "error", _R, "A required field (model, target, goal, or forget data) is missing.",
       "Without them the objective does not say what to unlearn from which model.",
       instead='model "builtin:tiny-bios"\ntarget person "Jane Doe" { forget "data/jane-doe.jsonl" }\ngoal removal')
_front("UL207", "path-not-found", "error", _R,
       "A data file or model folder does not exist, is a folder where a file is expected, or cannot be read.",
       "Paths resolve relative to the spec's folder; a plan must hash every input it depends on.",
       example='forget "data/jane.jsonl"', instead='forget "data/jane-doe.jsonl"')
_front("UL208", "malformed-data-file", "error", _R,
       "A data file is not valid JSONL/CSV, or a record lacks `text` and `question`+`answer`.",
       "The runtime trains and evaluates on these records; a malformed line would be lost silently.",
       example='{"text": "Jane Doe was born in', instead='{"text": "Jane Doe was born in Porto."}')
_front("UL209", "contradictory-fields", "error", _R,
       "Fields that contradict each other: a suppression method for a removal goal, a filter inside the model, "
       "the same file both forgotten and retained, `via` on a removal goal.",
       "A contradictory objective cannot be planned without guessing which field the author meant.",
       example="goal removal\nmethod refusal", instead="goal suppression via model\nmethod refusal")
_front("UL210", "wrong-shape", "error", _R, "A field has the wrong kind or number of values, or a missing/extra block.",
       "Each field has one documented shape (see docs/language.md).",
       example="title Jane", instead='title "Erase Jane Doe"')
_front("UL211", "threshold-wrong-way", "error", _R,
       "An evidence threshold bounds a metric in the direction that rewards not unlearning.",
       "`membership_auc >= 0.6` would pass a model that still leaks membership; the bound must point the other way.",
       example="membership_auc >= 0.60", instead="membership_auc <= 0.60")
_front("UL212", "accept-unknown-code", "error", _R, "`accept` names a code that does not exist.",
       "An acceptance that matches no code records a decision about nothing.",
       example='accept UL450 "..."', instead='accept UL405 "..."')
_front("UL213", "accept-error", "error", "feasibility", "`accept` names an error-severity code.",
       "Errors mean the objective cannot be met; no review can accept that. Change the objective instead.",
       example='accept UL301 "we tried our best"',
       instead="Rewrite the objective as the error's help suggests.")
_front("UL214", "accept-unused", "warning", "feasibility", "`accept` names a code that this objective does not trigger.",
       "A stale acceptance hides the moment a risk comes back under another form; remove it.",
       example='accept UL404 "..."  # but retain and neighbour sets are given', instead="Remove the `accept` line.")
_front("UL215", "accept-without-justification", "error", _R, "`accept` has an empty justification.",
       "The plan records who accepted which risk and why; an empty reason is no record.",
       example='accept UL405 ""', instead='accept UL405 "Forget set built from a full-corpus alias search."')
