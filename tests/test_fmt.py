"""`unlearnspec fmt`: one canonical layout, comments kept, idempotent; `--check` and `--diff` write nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures.frontend import EXAMPLE, comment_texts, messy, run_cli, spec_files

from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.syntax import Field, SpecFile

SEEDS = range(6)


def fmt(text: str) -> str:
    syntax, diags = parse_bytes(text.encode("utf-8"), "f.unlearn")
    assert syntax is not None and not [d for d in diags if d.severity == "error"], [d.message for d in diags]
    return format_spec(syntax)


def shape(syntax: SpecFile) -> list[object]:
    """The tokens of a spec, nested, without positions: what formatting must not change."""
    def fields(fs: tuple[Field, ...]) -> list[object]:
        return [(f.name, [[v.raw for v in g] for g in f.groups], fields(f.block.fields) if f.block else None)
                for f in fs]
    return [syntax.version.raw if syntax.version else None] + [(o.name, fields(o.block.fields))
                                                              for o in syntax.objectives]


def parsed(text: str) -> SpecFile:
    syntax, _ = parse_bytes(text.encode("utf-8"), "f.unlearn")
    assert syntax is not None
    return syntax


def test_architecture_example_is_a_fixed_point() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert fmt(text) == text


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_every_example_spec_is_formatted_and_idempotent(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = fmt(text)
    assert fmt(once) == once
    assert once == text, f"{path.name} is not in the canonical layout; run `unlearnspec fmt specs/`"


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_messy_variants_format_idempotently_keeping_tokens_and_comments(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for seed in SEEDS:
        variant = messy(text, seed)
        once = fmt(variant)
        assert fmt(once) == once, f"not idempotent for seed {seed}"
        assert shape(parsed(once)) == shape(parsed(variant))
        assert comment_texts(once) == comment_texts(variant), f"comments changed for seed {seed}"
        assert "\r" not in once and "\t" not in once.replace('"\t', "")
        assert once.endswith("\n") and not once.endswith("\n\n")
        assert "\n\n\n" not in once


def test_canonical_layout() -> None:
    messy_text = (
        "\n\n  unlearnspec   1\n"
        'objective\t"a" {   goal removal\n'
        "      method   npo  # trailing\n\n\n\n"
        "  scope{ outputs verbatim ,facts,\n   similar\n}\n"
        "  claims {\n  }\n"
        "   # own line\n"
        "  title \"T\"\n"
        "}\n"
        'objective "b" {}\n'
    )
    assert fmt(messy_text) == (
        "unlearnspec 1\n"
        "\n"
        'objective "a" {\n'
        "  goal   removal\n"
        "  method npo  # trailing\n"
        "\n"
        "  scope {\n"
        "    outputs verbatim, facts, similar\n"
        "  }\n"
        "  claims {}\n"
        "  # own line\n"
        '  title  "T"\n'
        "}\n"
        "\n"
        'objective "b" {}\n'
    )


def test_strings_and_numbers_are_printed_as_written() -> None:
    text = 'unlearnspec 1\n\nobjective "x" {\n  title  "a \\"b\\" \\\\ #c"\n  seed   007\n  evidence {\n    membership_auc <= 0.600\n  }\n}\n'
    assert fmt(text) == text


def test_crlf_and_bom_are_normalised() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert fmt("\ufeff" + text.replace("\n", "\r\n")) == text


# ---------------------------------------------------------------------------------------------------
# the command line


@pytest.fixture
def messy_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.unlearn"
    path.write_bytes(messy(EXAMPLE.read_text(encoding="utf-8"), 3).encode("utf-8"))
    return path


def test_fmt_check_fails_on_messy_then_passes_after_fmt(messy_file: Path) -> None:
    before = messy_file.read_bytes()
    r = run_cli(["fmt", "--check", messy_file.name], cwd=messy_file.parent)
    assert r.returncode == 1 and "would reformat spec.unlearn" in r.stdout
    assert messy_file.read_bytes() == before
    r = run_cli(["fmt", messy_file.name], cwd=messy_file.parent)
    assert r.returncode == 0 and "formatted spec.unlearn" in r.stdout
    assert messy_file.read_bytes() != before
    r = run_cli(["fmt", "--check", messy_file.name], cwd=messy_file.parent)
    assert r.returncode == 0 and "already formatted" in r.stdout
    r = run_cli(["fmt", messy_file.name], cwd=messy_file.parent)  # a second fmt writes nothing
    assert r.returncode == 0 and r.stdout == ""


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(messy_file: Path) -> None:
    before = messy_file.read_bytes()
    mtime = os.stat(messy_file).st_mtime_ns
    r = run_cli(["fmt", "--diff", "spec.unlearn"], cwd=messy_file.parent)
    assert r.returncode == 1
    assert r.stdout.startswith("--- a/spec.unlearn\n+++ b/spec.unlearn\n@@ ")
    assert any(line.startswith("+") and not line.startswith("+++") for line in r.stdout.splitlines())
    assert messy_file.read_bytes() == before and os.stat(messy_file).st_mtime_ns == mtime
    # applying the diff's + side gives exactly what fmt writes
    run_cli(["fmt", "spec.unlearn"], cwd=messy_file.parent)
    assert messy_file.read_text(encoding="utf-8") == fmt(before.decode("utf-8"))


def test_fmt_check_on_the_example_specs_passes() -> None:
    r = run_cli(["fmt", "--check", "specs"], cwd=EXAMPLE.parents[1])
    assert r.returncode == 0, r.stdout + r.stderr


def test_fmt_refuses_a_file_with_syntax_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.unlearn"
    path.write_text('unlearnspec 1\nobjective "x" {\n  title "open\n}\n', encoding="utf-8")
    before = path.read_bytes()
    r = run_cli(["fmt", "bad.unlearn"], cwd=tmp_path)
    assert r.returncode == 1
    assert "error[UL104]" in r.stderr and "bad.unlearn:3:9" in r.stderr
    assert path.read_bytes() == before


def test_fmt_walks_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for p in (tmp_path / "a" / "one.unlearn", tmp_path / "a" / "b" / "two.unlearn"):
        p.write_text(messy(EXAMPLE.read_text(encoding="utf-8"), 1), encoding="utf-8")
    (tmp_path / "a" / "notes.txt").write_text("not a spec")
    r = run_cli(["fmt", "--check", "a"], cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(r.stdout.splitlines()) == ["would reformat a/b/two.unlearn", "would reformat a/one.unlearn"]


def test_a_comment_inside_a_continued_list_stays_beside_its_value() -> None:
    # joining the list would make `"J. Doe", "Jane D."  # first alias # second`: both notes on the wrong value
    text = ('unlearnspec 1\n\nobjective "x" {\n  target person "Jane Doe" {\n    aliases "J. Doe", # first alias\n'
            '            "Jane D." # second\n    forget "a.jsonl",   # one\n      "b.jsonl"\n  }\n}\n')
    out = fmt(text)
    lines = out.splitlines()
    first = next(x for x in lines if "aliases" in x)
    assert first.rstrip().endswith('"J. Doe",  # first alias') and "Jane D." not in first
    second = lines[lines.index(first) + 1]
    assert second.strip() == '"Jane D."  # second'
    assert second.index('"Jane D."') == first.index('"J. Doe"')  # continuation under the first value
    forget = next(x for x in lines if "forget" in x)
    assert forget.rstrip().endswith('"a.jsonl",  # one') and lines[lines.index(forget) + 1].strip() == '"b.jsonl"'
    assert fmt(out) == out  # idempotent
    assert shape(parsed(out)) == shape(parsed(text)) and comment_texts(out) == comment_texts(text)
    joined = text.replace(" # first alias\n", "\n")  # a comment only at the end: the list is joined as before
    assert 'aliases "J. Doe", "Jane D."  # second' in fmt(joined)


def test_a_comment_line_or_a_blank_line_inside_a_continued_list_parses_and_is_kept() -> None:
    """A list continued over lines may have a comment on a line of its own, or a blank line, between its values
    (it used to be a syntax error: two line ends where one was allowed). `fmt` keeps the comment on its own line
    under the values instead of joining the list and dropping it."""
    text = ('unlearnspec 1\n\nobjective "x" {\n  target person "Jane Doe" {\n    aliases "J. Doe",\n'
            '      # her maiden name\n      "Jane D.",\n\n      "J. D."\n    forget "a.jsonl"\n  }\n}\n')
    tree = parsed(text)
    aliases = next(f for f in tree.objectives[0].block.fields[0].block.fields if f.name == "aliases")  # type: ignore[union-attr]
    assert [g[0].raw for g in aliases.groups] == ['"J. Doe"', '"Jane D."', '"J. D."']
    out = fmt(text)
    lines = out.splitlines()
    first = next(x for x in lines if "aliases" in x)
    note = lines[lines.index(first) + 1]
    assert note.strip() == "# her maiden name" and note.index("#") == first.index('"J. Doe"')
    assert lines[lines.index(first) + 2].strip() == '"Jane D.",'
    assert fmt(out) == out and comment_texts(out) == comment_texts(text)
    assert shape(parsed(out)) == shape(parsed(text))


def test_a_list_too_long_for_one_line_wraps_the_same_way_however_it_was_broken() -> None:
    """Past 100 characters a list continues on the next line, under its first value, as many values a line as fit;
    written on one line or broken elsewhere, it comes out the same, and a list that fits is joined."""
    files = [f'"data/people/person-number-{i}.jsonl"' for i in range(5)]
    one_line = ('unlearnspec 1\n\nobjective "x" {\n  target person "Jane Doe" {\n    forget "a.jsonl"\n  }\n'
                f'  preserve {{\n    neighbors {", ".join(files)}\n  }}\n}}\n')
    broken = one_line.replace(", ", ",\n      ")
    out = fmt(one_line)
    assert fmt(broken) == out and fmt(out) == out
    rows = [x for x in out.splitlines() if "person-number" in x]
    assert len(rows) > 1 and all(len(x) <= 100 for x in rows)
    assert all(x.rstrip().endswith(",") for x in rows[:-1]) and not rows[-1].rstrip().endswith(",")
    assert all(x.index('"') == rows[0].index('"') for x in rows)  # continuation under the first value
    assert shape(parsed(out)) == shape(parsed(one_line))
    short = one_line.replace(", ".join(files), ", ".join(files[:2]))
    assert fmt(short.replace(", ", ",\n      ")) == fmt(short) and fmt(short).count("person-number") == 2
    assert len([x for x in fmt(short).splitlines() if "person-number" in x]) == 1


def test_fmt_writes_through_a_linked_spec(messy_file: Path) -> None:
    """A spec reached through a symbolic link is formatted where it lives: the link stays a link."""
    link = messy_file.parent / "linked.unlearn"
    link.symlink_to(messy_file.name)
    syntax, _ = parse_bytes(messy_file.read_bytes(), messy_file.name)
    assert syntax is not None
    canonical = format_spec(syntax)
    r = run_cli(["fmt", link.name], cwd=messy_file.parent)
    assert r.returncode == 0 and "formatted linked.unlearn" in r.stdout
    assert link.is_symlink() and os.readlink(link) == messy_file.name
    assert messy_file.read_text(encoding="utf-8") == canonical


def _kept(text: str, expected: str) -> None:
    """``text`` formats to ``expected``, which is a fixed point; no token and no comment is lost or merged."""
    once = fmt(text)
    assert once == expected
    assert fmt(once) == once
    assert shape(parsed(once)) == shape(parsed(text))
    assert comment_texts(once) == comment_texts(text)


def test_a_comment_line_inside_the_values_of_a_field_with_a_block_is_kept() -> None:
    _kept('unlearnspec 1\n\nobjective "a" {\n  preserve {\n    neighbors "a.jsonl",\n      # the second\n'
          '      "b.jsonl" {\n    }\n  }\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  preserve {\n    neighbors "a.jsonl",\n              # the second\n'
          '              "b.jsonl" {}\n  }\n}\n')


def test_comments_after_an_empty_blocks_two_braces_stay_two_lines() -> None:
    _kept('unlearnspec 1\n\nobjective "a" {\n  scope { # a\n  } # b\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  scope {  # a\n  }  # b\n}\n')
    # one comment: the block is written `{}`, the comment after it
    _kept('unlearnspec 1\n\nobjective "a" {\n  scope {\n  } # b\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  scope {}  # b\n}\n')


def test_a_comment_after_a_one_line_block_stays_after_its_closing_brace() -> None:
    _kept('unlearnspec 1\nobjective "a" { model "m" } # after\n',
          'unlearnspec 1\n\nobjective "a" {\n  model  "m"\n}  # after\n')
    _kept('unlearnspec 1\nobjective "a" { scope { outputs facts } } # outer\n',
          'unlearnspec 1\n\nobjective "a" {\n  scope {\n    outputs facts\n  }\n}  # outer\n')


def test_a_comment_on_a_blocks_opening_line_after_its_first_values_stays_beside_them() -> None:
    """A comment on a block's `{` line that follows the block's first values annotates those values: it stays at the
    end of their line (it used to move up beside the `{`, leaving a list kept over two lines for a comment no longer
    inside it, which the second `fmt` then joined: not idempotent)."""
    _kept('unlearnspec 1\n\nobjective "a" {\n  scope { outputs verbatim, # a\n    facts  # b\n  }\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  scope {\n    outputs verbatim,  # a\n            facts  # b\n  }\n}\n')
    _kept('unlearnspec 1\n\nobjective "a" {\n  scope { outputs verbatim # a\n  }\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  scope {\n    outputs verbatim  # a\n  }\n}\n')
    _kept('unlearnspec 1\nobjective "a" { model "m", # a\n  "n"\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  model  "m",  # a\n         "n"\n}\n')
    # a comment on a `{` line with nothing after the brace stays beside it, as before
    _kept('unlearnspec 1\n\nobjective "a" {\n  scope {  # a\n    outputs verbatim\n  }\n}\n',
          'unlearnspec 1\n\nobjective "a" {\n  scope {  # a\n    outputs verbatim\n  }\n}\n')


def test_blank_lines_between_leading_comments_and_the_header_are_kept() -> None:
    _kept('# one\n\n\n# two\n\nunlearnspec 1\n\nobjective "a" {\n  model "m"\n}\n',
          '# one\n\n# two\n\nunlearnspec 1\n\nobjective "a" {\n  model  "m"\n}\n')
    _kept('# one\nunlearnspec 1\n\nobjective "a" {\n  model "m"\n}\n',
          '# one\nunlearnspec 1\n\nobjective "a" {\n  model  "m"\n}\n')


def _fmt_lines_executed(pairs: int) -> int:
    """Lines of compiler/fmt.py run to format a spec of ``pairs`` comment-and-field pairs: a measure of work that,
    unlike a clock, does not depend on the machine or its load."""
    import sys

    from unlearnspec.compiler import fmt as module

    body = "".join(f'  # c{i}\n  accept UL405 "x{i}"\n' for i in range(pairs))
    syntax = parsed(f'unlearnspec 1\nobjective "a" {{\n  model "builtin:tiny-bios"\n{body}}}\n')
    count = 0

    def tracer(frame: object, event: str, arg: object) -> object:
        nonlocal count
        if getattr(getattr(frame, "f_code", None), "co_filename", None) != module.__file__:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        format_spec(syntax)
    finally:
        sys.settrace(None)
    return count


def test_formatting_takes_work_in_proportion_to_the_file() -> None:
    """Four times the comments and fields take about four times the work (it took sixteen: every comment was
    looked at for every field, and a 850 KB spec took minutes)."""
    small, large = _fmt_lines_executed(300), _fmt_lines_executed(1200)
    assert large / small < 5, (small, large)
