"""The grammar: conflict-free, the documented example parses, every vocabulary word is accepted where it
belongs, several objectives share a file, and `#` comments go anywhere (but not inside strings)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fixtures.frontend import ARCHITECTURE, EXAMPLE, MINIMAL_BODY, resolve_text, spec_text, write_data
from lark import Lark

from unlearnspec.catalog import vocab
from unlearnspec.compiler.check import check_bytes
from unlearnspec.compiler.parse import get_parser, parse_bytes

# ---------------------------------------------------------------------------------------------------
# the grammar itself


def test_grammar_builds_strict_lalr_without_conflicts() -> None:
    """``strict=True`` makes Lark refuse shift/reduce conflicts and colliding terminals."""
    parser = get_parser(strict=True)
    assert isinstance(parser, Lark)
    assert parser.options.parser == "lalr"
    assert parser.options.lexer == "contextual"
    names = {t.name for t in parser.terminals}
    assert {"NAME", "STRING", "NUMBER", "PERCENT", "OP", "LBRACE", "RBRACE", "COMMENT"} <= names


def test_strict_parser_and_cached_parser_agree() -> None:
    """The strict parser (built fresh) and the compiler's cached one accept the same language."""
    text = EXAMPLE.read_text(encoding="utf-8")
    tree = get_parser(strict=True).parse(text)
    assert len(list(tree.find_data("objective"))) == 1
    assert len(list(tree.find_data("field"))) > 20
    syntax, diags = parse_bytes(text.encode(), "e.unlearn")
    assert syntax is not None and not diags


# ---------------------------------------------------------------------------------------------------
# the documented example


def _architecture_example() -> str:
    doc = ARCHITECTURE.read_text(encoding="utf-8")
    section = doc.split("## The language", 1)[1]
    match = re.search(r"```\n(unlearnspec 1\n.*?)```", section, re.S)
    assert match, "the language section of ARCHITECTURE.md has no example block"
    return match.group(1)


@pytest.mark.skipif(not ARCHITECTURE.is_file(), reason="shared/design/ARCHITECTURE.md is not beside the checkout")
def test_the_architecture_example_parses_and_the_project_example_grew_from_it() -> None:
    """ARCHITECTURE.md's example keeps parsing; the project's example may grow past it (it is not pinned
    equal): every line of the documented example is still in it, in order."""
    documented = _architecture_example()
    syntax, diags = parse_bytes(documented.encode("utf-8"), "ARCHITECTURE.md")
    assert syntax is not None and not diags
    ours = iter(EXAMPLE.read_text(encoding="utf-8").splitlines())
    assert all(any(line == mine for mine in ours) for line in documented.splitlines())


def test_example_parses_with_every_block() -> None:
    syntax, diags = parse_bytes(EXAMPLE.read_bytes(), "specs/erase-jane-doe.unlearn")
    assert not diags
    assert syntax is not None
    assert syntax.version is not None and syntax.version.text == "1"
    [obj] = syntax.objectives
    assert obj.name == "erase-jane-doe"
    names = [f.name for f in obj.block.fields]
    assert names == ["title", "basis", "owner", "model", "release", "target", "goal", "method", "scope",
                     "preserve", "claims", "evidence", "accept", "accept"]
    target = obj.block.fields[names.index("target")]
    assert [v.text for v in target.values] == ["person", "Jane Doe"]
    assert target.block is not None
    aliases = next(f for f in target.block.fields if f.name == "aliases")
    assert [[v.text for v in g] for g in aliases.groups] == [["J. Doe"], ["Jane D."]]
    evidence = obj.block.fields[names.index("evidence")]
    assert evidence.block is not None
    assert [(f.name, [v.kind for v in f.values]) for f in evidence.block.fields] == [
        ("verbatim_rouge", ["op", "number"]), ("membership_auc", ["op", "number"]),
        ("forget_quality", ["op", "number"])]
    utility = next(f for f in obj.block.fields[names.index("preserve")].block.fields if f.name == "utility")
    assert [(v.kind, v.text) for v in utility.values] == [("word", "drop"), ("op", "<="), ("percent", "2")]


def test_example_resolves_without_front_end_errors() -> None:
    result = check_bytes(EXAMPLE.read_bytes(), "specs/erase-jane-doe.unlearn", EXAMPLE.parent)
    front = [d for d in result.diagnostics if d.code[:3] in ("UL1", "UL2")]
    assert front == []
    assert result.errors == 0
    assert result.spec is not None
    [obj] = result.spec.objectives
    assert obj.target is not None and obj.target.kind_value == "observed"
    assert [c.name for c in obj.claims] == ["removed", "not_generated", "robust_to_finetuning"]
    assert obj.claims[2].steps is not None and obj.claims[2].steps.value == 20
    assert [(e.metric, e.op, e.value) for e in obj.evidence] == [
        ("verbatim_rouge", "<=", 0.20), ("membership_auc", "<=", 0.60), ("forget_quality", ">=", 0.05)]


# ---------------------------------------------------------------------------------------------------
# the vocabulary


def _every_word_specs() -> list[str]:
    """Objective bodies that, together, use every word of every closed vocabulary."""
    bodies = []
    goals = ["removal", "suppression via model", "suppression via system", "suppression"]
    methods = {"removal": ["retrain", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu", "unknown"],
               "suppression via model": ["refusal"], "suppression via system": ["filter"], "suppression": ["refusal"]}
    pairs = [(g, m) for g in goals for m in methods[g]]
    assert {m for _, m in pairs} == set(vocab.METHODS)
    for i, (goal, method) in enumerate(pairs):
        category = vocab.TARGET_CATEGORIES[i % len(vocab.TARGET_CATEGORIES)]
        kind = vocab.TARGET_KINDS[i % len(vocab.TARGET_KINDS)]
        release = vocab.RELEASES[i % len(vocab.RELEASES)]
        precision = vocab.PRECISIONS[i % len(vocab.PRECISIONS)]
        adapter = vocab.ADAPTERS[i % len(vocab.ADAPTERS)]
        guarantee = vocab.GUARANTEES[i % len(vocab.GUARANTEES)]
        adapter_line = "adapter lora rank 8" if adapter == "lora" else "adapter full"
        bodies.append(f"""\
  title "every word {i}"
  basis "test"
  owner "tests"
  model "builtin:tiny-bios"
  {'unlearned "ckpt"' if method == "unknown" else ""}
  reference "builtin:tiny-bios"
  release {release} precision {precision}
  target {category} "Target {i}" {{
    kind {kind}
    forget "data/jane-doe.jsonl"
    holdout "data/neighbors.jsonl"
    test "data/neighbors.jsonl"
    aliases "T. {i}", "Tee"
    attribute birth_city
  }}
  goal {goal}
  method {method} {{
    {adapter_line}
    steps 40
    learning_rate 0.0001
    batch_size 4
    beta 0.1
    retain_weight 1
    seed 3
  }}
  guarantee {guarantee}
  seed 7
  scope {{
    outputs {", ".join(vocab.OUTPUTS)}
    prompts {", ".join(vocab.PROMPTS)}
  }}
  preserve {{
    retain "data/retain.jsonl"
    neighbors "data/neighbors.jsonl"
    utility retain drop <= 3%, neighbors drop < 5%
    {"side_effects none" if i == 1 else ""}
  }}
""")
    claims = "\n".join(
        f"    {name}" + (" steps 20" if "steps" in info.args else ' "GDPR Art. 17"' if "string" in info.args else "")
        for name, info in vocab.CLAIMS.items())
    evidence = "\n".join(
        f"    {name} {'>=' if m.better == 'higher' else '<='} {'5%' if m.unit == 'percent' else '0.5'}"
        for name, m in vocab.METRICS.items())
    bodies[0] += f"  claims {{\n{claims}\n  }}\n  evidence {{\n{evidence}\n  }}\n"
    bodies[0] += '  accept UL107 "a registered code, reviewed"\n'
    bodies[0] += "  budget {\n    utility drop <= 5%\n    requests 3\n  }\n"  # a chain: obj-0, then obj-1
    bodies[1] += '  after "obj-0"\n'
    return bodies


def test_every_vocabulary_word_is_accepted_where_it_belongs(tmp_path: Path) -> None:
    write_data(tmp_path)
    forget = tmp_path / "data" / "jane-doe.jsonl"  # the `attribute` the specs name is one its records carry
    rows = [json.loads(line) | {"attributes": {"birth_city": "Porto"}} for line in forget.read_text().splitlines()]
    forget.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "ckpt").mkdir()  # the checkpoint `method unknown` audits (`unlearned`)
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"")
    bodies = _every_word_specs()
    text = spec_text(*bodies)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    closed = (set(vocab.TARGET_CATEGORIES) | set(vocab.TARGET_KINDS) | set(vocab.GOALS) | set(vocab.SUPPRESSION_VIA)
              | set(vocab.RELEASES) | set(vocab.PRECISIONS) | set(vocab.METHODS) | set(vocab.GUARANTEES)
              | set(vocab.OUTPUTS) | set(vocab.PROMPTS) | set(vocab.ADAPTERS) | set(vocab.CLAIMS)
              | set(vocab.METRICS) | set(vocab.OBJECTIVE_FIELDS) | set(vocab.TARGET_FIELDS) | set(vocab.SCOPE_FIELDS)
              | set(vocab.PRESERVE_FIELDS) | set(vocab.METHOD_FIELDS))
    assert closed - words == set(), "the test spec must use every word"
    diags = resolve_text(text, tmp_path)
    wrong = [(d.code, d.message) for d in diags if d.code in ("UL203", "UL204", "UL205", "UL210", "UL211")]
    assert wrong == []


def test_side_effects_none_is_accepted(tmp_path: Path) -> None:
    write_data(tmp_path)
    body = MINIMAL_BODY + "  preserve {\n    side_effects none\n    retain \"data/retain.jsonl\"\n  }\n"
    assert [d for d in resolve_text(spec_text(body), tmp_path) if d.severity == "error"] == []


@pytest.mark.parametrize("field,word", [
    ("goal", "removel"), ("method", "npoo"), ("release", "open_weight"), ("guarantee", "exactly"),
])
def test_a_word_outside_its_vocabulary_is_refused(tmp_path: Path, field: str, word: str) -> None:
    write_data(tmp_path)
    body = MINIMAL_BODY.replace("  goal removal\n", "") + f"  {field} {word}\n"
    if field != "goal":
        body += "  goal removal\n"
    diags = resolve_text(spec_text(body), tmp_path)
    assert "UL204" in [d.code for d in diags]


# ---------------------------------------------------------------------------------------------------
# several objectives, comments


def test_several_objectives_share_one_file(tmp_path: Path) -> None:
    write_data(tmp_path)
    text = spec_text(MINIMAL_BODY, MINIMAL_BODY.replace("removal", "suppression via model") + "  method refusal\n",
                     MINIMAL_BODY)
    syntax, diags = parse_bytes(text.encode(), "m.unlearn")
    assert syntax is not None and not diags
    assert [o.name for o in syntax.objectives] == ["obj-0", "obj-1", "obj-2"]
    result = check_bytes(text.encode(), "m.unlearn", tmp_path)
    assert result.spec is not None
    assert [o.name for o in result.spec.objectives] == ["obj-0", "obj-1", "obj-2"]
    assert result.spec.objectives[1].goal is not None and result.spec.objectives[1].goal.via is not None
    assert [d for d in result.diagnostics if d.code[:3] in ("UL1", "UL2")] == []


COMMENTED = """\
# before the header { not a block }
unlearnspec 1 # after the header
# between header and objective
objective "a#b" { # after the opening brace "quoted"
  # first thing inside
  title "hash # inside a string" # after a string with a hash
  model "builtin:tiny-bios"#no space before
  target person "Jane # Doe" {
    # inside the target
    forget "data/jane-doe.jsonl" # after a path
  } # after a closing brace
  goal removal
  scope { # block opener
    outputs verbatim, # after a comma
      facts
  }
  # last thing inside
} # after the last brace
# at the very end, no newline after"""


def test_comments_anywhere_and_hash_in_strings(tmp_path: Path) -> None:
    write_data(tmp_path)
    syntax, diags = parse_bytes(COMMENTED.encode(), "c.unlearn")
    assert not diags and syntax is not None
    [obj] = syntax.objectives
    assert obj.name == "a#b"
    fields = {f.name: f for f in obj.block.fields}
    assert fields["title"].values[0].text == "hash # inside a string"
    assert fields["target"].values[1].text == "Jane # Doe"
    outputs = fields["scope"].block.fields[0]  # type: ignore[union-attr]
    assert [v.text for v in outputs.values] == ["verbatim", "facts"]
    texts = [c.text for c in syntax.comments]
    assert len(texts) == 15
    assert texts[0] == "# before the header { not a block }"
    assert texts[-1] == "# at the very end, no newline after"
    assert "#no space before" in texts
    assert all("inside a string" not in t and "Jane" not in t for t in texts)
    for c in syntax.comments:
        assert COMMENTED.split("\n")[c.line - 1][c.column - 1:].rstrip() == c.text
    assert [d.code for d in resolve_text(COMMENTED, tmp_path) if d.severity == "error"] == []


def test_a_hash_inside_a_string_does_not_hide_a_brace() -> None:
    """The brace pre-scan must not take `#` in a string for a comment: this file is balanced."""
    text = 'unlearnspec 1\nobjective "x" { title "#" }\n'
    syntax, diags = parse_bytes(text.encode(), "h.unlearn")
    assert syntax is not None and diags == []


def test_escapes_in_strings() -> None:
    text = 'unlearnspec 1\nobjective "x" {\n  title "say \\"hi\\" \\\\ and\\tgo\\n"\n}\n'
    syntax, diags = parse_bytes(text.encode(), "e.unlearn")
    assert syntax is not None and not diags
    assert syntax.objectives[0].block.fields[0].values[0].text == 'say "hi" \\ and\tgo\n'
