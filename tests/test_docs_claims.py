"""What README.md and docs/*.md state about names, codes and flags is what the product has.

Readers take the prose on trust, so each claim that can be read mechanically is compared with the one
source of the name it quotes: a diagnostic code and the severity written beside it with the catalog's
registry, a `--flag` after `unlearnspec VERB` with that verb's argparse parser, the word and field
tables of docs/language.md with the catalog's vocabulary, and the spec the language reference opens with
with what `unlearnspec check` says of it. The docs are parsed with regular expressions over their text;
the expected values come from the catalog and the CLI parser, never from this file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from unlearnspec.builtin.recipe import RECIPES
from unlearnspec.catalog import CODES
from unlearnspec.catalog.claims import CLAIMS, OUTPUT_KINDS
from unlearnspec.catalog.methods import METHODS
from unlearnspec.catalog.metrics import METRICS
from unlearnspec.catalog.vocab import (
    ADAPTERS,
    BUDGET_FIELDS,
    EVIDENCE_SETTINGS,
    GOALS,
    GUARANTEES,
    METHOD_FAMILIES,
    METHOD_FIELDS,
    OBJECTIVE_FIELDS,
    OUTPUTS,
    PRECISIONS,
    PRESERVE_FIELDS,
    PROMPTS,
    RELEASES,
    SCOPE_FIELDS,
    SUPPRESSION_VIA,
    TARGET_CATEGORIES,
    TARGET_FIELDS,
    TARGET_KINDS,
)
from unlearnspec.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "editors" / "vscode" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGE = ROOT / "docs" / "language.md"
CODE = r"(?:UL|RT)\d{3}"
SEVERITY = r"(error|warning|note)"
#: the ways the docs put a severity beside a code: `UL405` (warning), **UL601** (error, ...),
#: (`UL222`, a warning), error[UL822], the UL501 note
SEVERITY_PHRASES = (
    re.compile(rf"[`*]*({CODE})[`*]*\s*\({SEVERITY}\b"),
    re.compile(rf"[`*]*({CODE})[`*]*,\s+an?\s+{SEVERITY}\b"),
    re.compile(rf"\b{SEVERITY}\[({CODE})\]"),
    re.compile(rf"\bthe\s+({CODE})\s+{SEVERITY}\b"),
)


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _severity_claims() -> list[tuple[str, str, str]]:
    """(page, code, severity) for every severity the docs write beside a code."""
    found: list[tuple[str, str, str]] = []
    for page in PAGES:
        text = _text(page)
        for pattern in SEVERITY_PHRASES:
            for m in pattern.finditer(text):
                a, b = m.groups()
                code, severity = (b, a) if a in ("error", "warning", "note") else (a, b)
                found.append((page.name, code, severity))
    return found


def test_every_code_the_docs_name_is_registered() -> None:
    named = {(page.name, c) for page in PAGES for c in re.findall(rf"\b{CODE}\b", _text(page))}
    assert len({c for _, c in named}) > 30  # the pattern finds the codes the docs are full of
    missing = sorted(f"{page}: {code}" for page, code in named if code not in CODES)
    assert not missing, "codes named in the docs but not in unlearnspec/catalog: " + ", ".join(missing)


def test_the_severity_written_beside_a_code_is_its_registered_severity() -> None:
    claims = _severity_claims()
    assert len(claims) >= 8  # error[UL822] in data.md, the init templates' findings in editors.md, ...
    wrong = sorted(f"{page}: {code} is called a {sev}, the catalog says {CODES[code].severity}"
                   for page, code, sev in claims if code in CODES and CODES[code].severity != sev)
    assert not wrong, "\n".join(wrong)


def _table_rows(text: str, header: str, column: int = 1) -> dict[str, str]:
    """First cell → another cell of the Markdown table whose header row starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows: dict[str, str] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0]] = cells[column]
    return rows


def _words(cell: str) -> list[str]:
    """The backticked words of a cell, leaving out what a parenthesis qualifies (`steps N`, a law)."""
    return re.findall(r"`([a-z_][a-z0-9_]*)`", re.sub(r"\([^)]*\)", "", cell))


@pytest.mark.parametrize(("row", "expected"), [
    ("target category", TARGET_CATEGORIES),
    ("target `kind`", TARGET_KINDS),
    ("`release` mode", RELEASES),
    ("`release` `precision`", PRECISIONS),
    ("`method`", tuple(METHODS)),
    ("method family", METHOD_FAMILIES),
    ("method `adapter`", ADAPTERS),
    ("`guarantee`", GUARANTEES),
    ("scope `outputs`", OUTPUTS),
    ("scope `prompts`", PROMPTS),
    ("`claims`", tuple(CLAIMS)),
    ("`evidence` metrics", tuple(METRICS)),
])
def test_language_word_table_lists_the_catalog_words(row: str, expected: tuple[str, ...]) -> None:
    rows = _table_rows(_text(LANGUAGE), "where")
    assert sorted(_words(rows[row])) == sorted(expected), row


def test_language_goal_row_names_the_goals_and_the_via_words() -> None:
    cell = _table_rows(_text(LANGUAGE), "where")["`goal`"]
    assert sorted(re.findall(r"`([a-z_]+)`", cell)) == sorted((*GOALS, "via", *SUPPRESSION_VIA))


def test_language_field_table_and_field_list_name_every_objective_field() -> None:
    text = _text(LANGUAGE)
    assert sorted(_words(" ".join(f"`{k.strip('`')}`" for k in _table_rows(text, "field")))) == sorted(OBJECTIVE_FIELDS)
    listing = text[text.index("Field names, by block:"):]
    listing = listing[:listing.index("\n\n")]
    blocks = {name: re.findall(r"`([a-z_]+)`", body)
              for name, body in re.findall(r"(objective|target|scope|preserve|method block|evidence|budget) — ([^;]*)",
                                           listing)}
    assert blocks["objective"] == list(OBJECTIVE_FIELDS)
    assert blocks["target"] == list(TARGET_FIELDS)
    assert blocks["scope"] == list(SCOPE_FIELDS)
    assert blocks["preserve"] == list(PRESERVE_FIELDS)
    assert blocks["method block"] == list(METHOD_FIELDS)
    assert blocks["evidence"] == list(EVIDENCE_SETTINGS)
    assert blocks["budget"] == list(BUDGET_FIELDS)


def test_language_method_table_gives_each_method_its_family() -> None:
    rows = _table_rows(_text(LANGUAGE), "method")
    assert {k.strip("`"): v.strip("`") for k, v in rows.items()} == {m.name: m.family for m in METHODS.values()}


def test_language_knob_table_lists_the_method_fields() -> None:
    rows = _table_rows(_text(LANGUAGE), "knob")
    assert sorted(k.strip("`") for k in rows) == sorted(METHOD_FIELDS)


def test_language_code_range_table_gives_each_range_its_severities() -> None:
    rows = _table_rows(_text(LANGUAGE), "range", column=2)
    assert rows
    covered: set[str] = set()
    for cell, severity_text in rows.items():
        pattern = cell.strip("`").replace("xx", r"\d\d")
        ranges = re.fullmatch(r"(UL\d{3})`–`(UL\d{3})", cell.strip("`"))
        members = [c for c in CODES if (ranges and ranges[1] <= c <= ranges[2])
                   or (not ranges and re.fullmatch(pattern, c))]
        assert members, cell
        covered.update(members)
        main_severity = severity_text.split(" ")[0]
        exceptions = set(re.findall(rf"\b({CODE})\b", severity_text))
        others = [c for c in members if CODES[c].severity != main_severity]
        if "a few" in severity_text:  # "error (a few warnings)": some, and not most
            assert 0 < len(others) < len(members) / 2, cell
        else:
            assert sorted(others) == sorted(exceptions), f"{cell}: {others} differ from {main_severity}"
    assert sorted(set(CODES) - covered) == [], "codes in no row of the range table"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


COMMAND = re.compile(r"(?:\bunlearnspec|\$U)\s+([a-z]+)([^\n`#|&;]*)")


def _commands() -> list[tuple[str, str, list[str]]]:
    """(page, verb, following words) for each `unlearnspec VERB ...` or `$U VERB ...` the docs show."""
    found = []
    for page in PAGES:
        for m in COMMAND.finditer(_text(page).replace("\\|", " ")):
            found.append((page.name, m[1], m[2].split()))
    return found


def test_every_flag_shown_after_a_verb_is_an_option_of_that_verb() -> None:
    verbs = _subparsers(build_parser())
    commands = [(page, verb, words) for page, verb, words in _commands() if verb in verbs]
    assert len(commands) > 50
    unknown = []
    for page, verb, words in commands:
        parser = verbs[verb]
        subs = _subparsers(parser)
        if subs and words and words[0] in subs:
            parser = subs[words[0]]
        known = _options(parser)
        for word in words:
            for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", word.strip("[]()")):
                if flag not in known and word.startswith("-"):
                    unknown.append(f"{page}: `unlearnspec {verb}` has no {flag}")
    assert not unknown, "\n".join(sorted(set(unknown)))


def test_every_subcommand_shown_exists() -> None:
    verbs = _subparsers(build_parser())
    missing = []
    for page, verb, words in _commands():
        subs = _subparsers(verbs[verb]) if verb in verbs else {}
        if subs and words and re.fullmatch(r"[a-z]+", words[0]) and words[0] not in subs:
            missing.append(f"{page}: `unlearnspec {verb} {words[0]}`")
    assert not missing, "\n".join(missing)


def test_the_first_example_of_the_language_reference_checks_without_errors(tmp_path: Path) -> None:
    text = _text(LANGUAGE)
    section = text[text.index("## A first example"):]
    spec = re.search(r"^```\n(unlearnspec 1\n.*?)^```", section, re.S | re.M)
    assert spec is not None
    shutil.copytree(ROOT / "specs" / "data", tmp_path / "data")
    path = tmp_path / "first.unlearn"
    path.write_text(spec[1], encoding="utf-8")
    # the prose reads it as a spec that can be met, with the risk of UL405 reviewed and accepted
    assert main(["check", str(path)]) == 0
    assert main(["check", "--format", "json", "-o", str(tmp_path / "out.json"), str(path)]) == 0
    report = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert report["summary"]["errors"] == 0
    assert [d["code"] for d in report["diagnostics"] if d["accepted"]] == ["UL405"]


def test_running_option_table_lists_every_option_of_run() -> None:
    text = _text(ROOT / "docs" / "running.md")
    documented = {flag for cell in _table_rows(text, "option") for flag in re.findall(r"--?[a-z][a-z0-9-]*", cell)}
    run = _subparsers(build_parser())["run"]
    assert documented, "running.md has an option table"
    assert sorted(_options(run) - {"-h", "--help"}) == sorted(documented)


def test_language_claim_table_gives_the_catalog_default_thresholds() -> None:
    rows = _table_rows(_text(LANGUAGE), "claim", column=2)
    bounds = []
    for claim, cell in rows.items():
        name = re.match(r"`([a-z_]+)", claim)
        assert name is not None and name[1] in CLAIMS, claim
        for metric, op, value in re.findall(r"`([a-z_]+) (<=|>=) ([0-9.]+)`", cell):
            bounds.append(metric)
            threshold = METRICS[metric].threshold
            assert threshold is not None and (op, float(value)) == (threshold.op, threshold.value), (claim, metric)
        defaults = CLAIMS[name[1]].defaults or ()
        named = set(re.findall(r"`([a-z_]+)", cell))
        assert set(defaults) <= named, f"{claim}: the cell leaves out {set(defaults) - named}"
    assert len(bounds) >= 8


def _built_in_rows() -> dict[str, list[str]]:
    text = _text(ROOT / "docs" / "models.md")
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| name | architecture | size |")))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.split("|")[1:-1]]
        rows[cells[0].strip("`")] = cells
    return rows


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_models_table_gives_each_built_in_recipe_its_shape() -> None:
    rows = _built_in_rows()
    assert sorted(rows) == sorted(RECIPES)
    for name, recipe in RECIPES.items():
        _, architecture, _, tokenizer, *_ = rows[name]
        model = recipe["model"]
        shape = re.search(r"\((\d+) layers, width ([\d,]+), (\d+) (?:query )?heads", architecture)
        vocab = re.search(r"byte-level BPE, ([\d,]+)", tokenizer)
        assert shape is not None and vocab is not None, name
        layers, width, heads = shape.groups()
        assert (_number(layers), _number(width), _number(heads)) == (
            model.get("n_layer", model.get("num_hidden_layers")), model.get("n_embd", model.get("hidden_size")),
            model.get("n_head", model.get("num_attention_heads"))), name
        assert _number(vocab[1]) == recipe["tokenizer"]["vocab_size"], name


def test_models_table_gives_each_built_in_model_its_parameter_count() -> None:
    torch = pytest.importorskip("torch")
    from transformers import GPT2LMHeadModel, LlamaForCausalLM

    from unlearnspec.runtime.lm_training import gpt2_config, llama_config

    class Vocabulary:  # what the configs read of a tokenizer: its length and special ids
        bos_token_id = eos_token_id = pad_token_id = 0

        def __init__(self, size: int) -> None:
            self.size = size

        def __len__(self) -> int:
            return self.size

    for name, recipe in RECIPES.items():
        vocab = Vocabulary(recipe["tokenizer"]["vocab_size"])
        tokenizer: Any = vocab
        with torch.device("meta"):
            model: Any = (GPT2LMHeadModel(gpt2_config(recipe["model"], tokenizer))
                          if recipe["model"]["architecture"] == "gpt2"
                          else LlamaForCausalLM(llama_config(recipe["model"], tokenizer)))
        count = sum(p.numel() for p in model.parameters())
        size = _built_in_rows()[name][2]
        m = re.fullmatch(r"([\d.]+)M parameters", size)
        assert m is not None, size
        digits = len(m[1].split(".")[1]) if "." in m[1] else 0
        assert round(count / 1e6, digits) == float(m[1]), f"{name}: {count:,} parameters, the table says {size}"


def test_language_scope_outputs_table_names_the_metrics_that_measure_each_kind() -> None:
    rows = _table_rows(_text(LANGUAGE), "`outputs`", column=2)
    assert sorted(k.strip("`") for k in rows) == sorted(OUTPUT_KINDS)
    for kind, cell in rows.items():
        named = [w for w in re.findall(r"`([a-z_]+)`", cell) if w in METRICS]
        assert named == list(OUTPUT_KINDS[kind.strip("`")].metrics), kind
