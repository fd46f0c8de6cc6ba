"""Hostile input to the compiler verbs (issue 12), run in-process through ``unlearnspec.cli.main``:
every case ends in a diagnostic and a documented exit status, never a traceback.

Exit statuses: 1 when the spec says something wrong (a finding), 2 when a path or an output the
command line names cannot be used. Each case is generated here from the example spec.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fixtures.frontend import EXAMPLE, SPECS

from unlearnspec.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, main
from unlearnspec.compiler.check import check_file
from unlearnspec.compiler.resolve_values import MAX_RESOLVE_DIAGNOSTICS
from unlearnspec.inputs import MAX_JSON_DEPTH, check_json_depth, load_json
from unlearnspec.records import DataFormatError, inspect_data_file


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SPECS / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit status and everything printed (stdout and stderr together)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def spec(work: Path, old: str, new: str, name: str = "spec.unlearn") -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    (work / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return name


# -- 7: whole numbers that do not fit ------------------------------------------------------------------

HUGE = "1" + "0" * 400  # a 400-digit number: a float reads it as infinity
NUMBERS = [
    ("robust_to_finetuning steps 20", "robust_to_finetuning steps 1e309", "`steps`", "1e309"),
    ("robust_to_finetuning steps 20", f"robust_to_finetuning steps {HUGE}", "`steps`", HUGE[:23] + "…"),
    ("method npo\n", "method npo {\n    seed 1e309\n  }\n", "`seed`", "1e309"),
    ("method npo\n", f"method npo {{\n    steps {HUGE}\n  }}\n", "`steps`", HUGE[:23] + "…"),
    ('owner  "privacy-office"\n', 'owner  "privacy-office"\n  seed -1e309\n', "`seed`", "-1e309"),
]


@pytest.mark.parametrize(("old", "new", "what", "shown"), NUMBERS, ids=["steps", "steps-400", "seed", "knob-400", "neg"])
@pytest.mark.parametrize("verb", ["check", "plan", "show", "explain"])
def test_non_finite_whole_numbers_are_ul205(work: Path, capsys: pytest.CaptureFixture[str], verb: str, old: str,
                                            new: str, what: str, shown: str) -> None:
    name = spec(work, old, new)
    code, text = cli(capsys, verb, name)
    assert code == EXIT_FINDINGS
    assert "UL205" in text
    if verb != "explain":  # explain's table wraps long messages
        assert f"{what} must be between" in text and f"found `{shown}`" in text


def test_non_finite_numbers_in_diff(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "robust_to_finetuning steps 20", "robust_to_finetuning steps 1e309")
    code, text = cli(capsys, "diff", str(EXAMPLE), name)
    assert code == EXIT_USAGE  # an input that cannot be planned, as `diff` documents
    assert "UL205" in text


# -- 9: JSON nested too deeply ----------------------------------------------------------------------------


def test_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert load_json(ok) == json.loads(ok)
    with pytest.raises(json.JSONDecodeError) as err:
        check_json_depth("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert err.value.pos == MAX_JSON_DEPTH  # the first bracket too deep
    quoted = json.dumps({"text": "[{" * 500 + '\\"' + "]" * 10})
    assert load_json(quoted) == json.loads(quoted)


def test_a_value_json_does_not_allow_is_located() -> None:
    """NaN, Infinity and an integer Python will not convert are malformed JSON at their own line and column,
    not at the start of the file; the same words inside a string are text."""
    for bad in ("NaN", "-Infinity", "7" * 4400):
        text = '{\n  "note": "NaN and Infinity in words",\n  "value": ' + bad + "\n}"
        with pytest.raises(json.JSONDecodeError) as err:
            load_json(text)
        assert (err.value.lineno, err.value.colno) == (3, 12), bad


def test_deeply_nested_data_file_is_ul208(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = '{"text": "ok", "attributes": '
    deep = head + "[" * 100_000 + "]" * 100_000 + "}\n"
    (work / "data" / "deep.jsonl").write_text('{"text": "first"}\n' + deep, encoding="utf-8")
    name = spec(work, "data/retain.jsonl", "data/deep.jsonl")
    code, text = cli(capsys, "check", name)
    assert code == EXIT_FINDINGS
    assert "error[UL208]" in text and f"nested deeper than {MAX_JSON_DEPTH} levels" in text
    assert f"data/deep.jsonl:2:{len(head) + MAX_JSON_DEPTH}" in text  # the column of the first bracket too deep


@pytest.mark.parametrize("verb", ["show", "diff"])
def test_deeply_nested_plan_is_refused(work: Path, capsys: pytest.CaptureFixture[str], verb: str) -> None:
    (work / "plan.json").write_text('{"format_version": "1.0", "objectives": ' + "[" * 100_000 + "]" * 100_000
                                    + "}", encoding="utf-8")
    code, text = cli(capsys, verb, "plan.json", *(["plan.json"] if verb == "diff" else []))
    assert code == EXIT_USAGE
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in text


# -- 11: outputs that cannot be written ---------------------------------------------------------------------


def unwritable(work: Path) -> list[str]:
    """Output paths no user can write: under a regular file, a folder, under /proc."""
    (work / "afile").write_text("x", encoding="utf-8")
    (work / "afolder").mkdir()
    paths = [str(work / "afile" / "out.json"), str(work / "afolder")]
    if Path("/proc/self").exists():
        paths.append("/proc/no-such-dir/out.json")
    return paths


@pytest.mark.parametrize("verb", [["plan", str(EXAMPLE), "-q"], ["schema"], ["schema", "--plan"], ["show", str(EXAMPLE)],
                                  ["check", str(EXAMPLE)]], ids=["plan", "schema", "schema-plan", "show", "check"])
def test_output_that_cannot_be_written(work: Path, capsys: pytest.CaptureFixture[str], verb: list[str]) -> None:
    for target in unwritable(work):
        before = sorted(p.name for p in work.rglob("*"))
        code, text = cli(capsys, *verb, "-o", target)
        assert code == EXIT_USAGE, (target, text)
        assert f"error: cannot write `{target}`" in text
        assert sorted(p.name for p in work.rglob("*")) == before  # no temporary file left behind


def test_output_through_a_link_into_a_fifo_or_a_device_and_never_a_new_folder(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`-o` writes what the path names: through a symbolic link (the link stays a link, the file it names
    gets the output), into a FIFO a reader holds open or a device (as a shell redirection would), never
    replacing either with a plain file; a FIFO nobody reads and a missing folder are errors (exit 2),
    and no folder is created on the way."""
    import threading

    real = work / "real.json"
    real.write_text("{}", encoding="utf-8")
    (work / "link.json").symlink_to("real.json")
    code, _ = cli(capsys, "schema", "-o", str(work / "link.json"))
    assert code == EXIT_OK and (work / "link.json").is_symlink()
    expected = json.loads(real.read_text(encoding="utf-8"))
    assert "$defs" in expected  # the schema went into the file the link names
    fifo = work / "fifo"
    os.mkfifo(fifo)
    code, text = cli(capsys, "schema", "-o", str(fifo))
    assert code == EXIT_USAGE and "no process is reading" in text and stat_is_fifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, _ = cli(capsys, "schema", "-o", str(fifo))
    reader.join(timeout=30)
    assert code == EXIT_OK and stat_is_fifo(fifo) and json.loads(got[0]) == expected
    if Path("/dev/null").exists():
        before = os.stat("/dev/null")
        assert cli(capsys, "schema", "-o", "/dev/null")[0] == EXIT_OK
        after = os.stat("/dev/null")
        assert (before.st_mode, before.st_rdev) == (after.st_mode, after.st_rdev)  # still the device
    code, text = cli(capsys, "schema", "-o", str(work / "no" / "such" / "out.json"))
    assert code == EXIT_USAGE and "no folder" in text and not (work / "no").exists()


def stat_is_fifo(path: Path) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(path).st_mode)


def test_builtin_export_to_an_unwritable_place(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "afile").write_text("x", encoding="utf-8")
    code, text = cli(capsys, "builtin", "export", str(work / "afile" / "corpus"))
    assert code == EXIT_USAGE
    assert f"error: cannot write the corpus to `{work / 'afile' / 'corpus'}`" in text


# -- 13: resolve errors are capped --------------------------------------------------------------------------


def test_resolve_errors_are_capped_with_a_count(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = MAX_RESOLVE_DIAGNOSTICS + 250
    name = spec(work, "  goal   removal\n", "".join(f"  bogus{i} 1\n" for i in range(n)) + "  goal   removal\n")
    result = check_file(work / name)
    shown = [d for d in result.diagnostics if d.code == "UL203"]
    assert len(shown) == MAX_RESOLVE_DIAGNOSTICS and result.omitted == n - MAX_RESOLVE_DIAGNOSTICS
    assert shown[0].message == "unknown field `bogus0` in an objective"  # the first ones, in source order
    code, text = cli(capsys, "check", name)
    assert code == EXIT_FINDINGS
    assert text.count("error[UL203]") == MAX_RESOLVE_DIAGNOSTICS
    assert f"{n - MAX_RESOLVE_DIAGNOSTICS} more errors in this file are not shown" in text
    code, text = cli(capsys, "check", "--format", "json", name)
    assert sum(d["code"] == "UL203" for d in json.loads(text)["diagnostics"]) == MAX_RESOLVE_DIAGNOSTICS


# -- 14: forget data copied or hard-linked into retain ----------------------------------------------------------


@pytest.mark.parametrize("how", ["copy", "hard link"])
def test_forget_file_copied_or_linked_as_retain_is_ul209(work: Path, capsys: pytest.CaptureFixture[str],
                                                           how: str) -> None:
    src, dst = work / "data" / "jane-doe.jsonl", work / "data" / "twin.jsonl"
    if how == "copy":
        shutil.copyfile(src, dst)
    else:
        os.link(src, dst)
    name = spec(work, "data/retain.jsonl", "data/twin.jsonl")
    code, text = cli(capsys, "check", name)
    assert code == EXIT_FINDINGS
    assert "error[UL209]: `data/twin.jsonl` holds the same data as the forget file `data/jane-doe.jsonl`" in text


def test_a_different_retain_file_of_the_same_size_is_not_flagged(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forget = (work / "data" / "jane-doe.jsonl").read_text(encoding="utf-8")
    # the same length, and no record the same (a shared record is UL209 by itself: test_resolve.py)
    twin = forget.replace("Jane", "June").replace(".", "!").replace("?", "!")
    (work / "data" / "twin.jsonl").write_text(twin, encoding="utf-8")
    name = spec(work, "data/retain.jsonl", "data/twin.jsonl")
    code, text = cli(capsys, "check", name)
    assert "UL209" not in text and code == EXIT_OK


def test_a_plan_made_from_the_repository_root_finds_its_spec(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's tour: `plan specs/x.unlearn -o plan.json` from the root, then `show plan.json`. The plan
    records the spec's name; the spec is found below the working folder by name *and* content, so a file of
    the same name with other content is not taken for it."""
    (work / "specs").mkdir()
    shutil.move(str(work / "data"), str(work / "specs" / "data"))
    (work / "specs" / EXAMPLE.name).write_bytes(EXAMPLE.read_bytes())
    decoy = work / "old" / EXAMPLE.name
    decoy.parent.mkdir()
    decoy.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n# an older draft\n", encoding="utf-8")
    code, _ = cli(capsys, "plan", f"specs/{EXAMPLE.name}", "-o", "plan.json", "-q")
    assert code == EXIT_OK
    code, shown = cli(capsys, "show", "plan.json")
    assert code == EXIT_OK and "UL701" not in shown
    (work / "specs" / EXAMPLE.name).write_text(EXAMPLE.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    code, shown = cli(capsys, "show", "plan.json")  # the spec changed since: neither file has the plan's content
    assert "UL701" in shown


# -- 16: messages -------------------------------------------------------------------------------------------


def test_a_plan_named_in_upper_case_is_read_as_a_plan(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, plan_text = cli(capsys, "plan", str(EXAMPLE), "-q")
    assert code == EXIT_OK
    (work / "plan.JSON").write_text(plan_text, encoding="utf-8")
    code, from_plan = cli(capsys, "show", "plan.JSON", "--format", "json")
    assert code == EXIT_OK
    code, from_spec = cli(capsys, "show", str(EXAMPLE), "--format", "json")
    # `show` of a plan away from its spec also warns (on stderr) that it cannot re-derive the plan
    assert "UL701" in from_plan
    first = json.JSONDecoder().raw_decode
    assert first(from_plan)[0]["plan_hash"] == first(from_spec)[0]["plan_hash"]


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "q?"}, "record has a `question` but no `answer`"),
    ({"answer": "a"}, "record has a `answer` but no `question`"),
    ({"paraphrases": ["p"]}, "record has neither `text` nor `question` + `answer`"),
])
def test_half_a_qa_pair_names_what_is_missing(tmp_path: Path, row: dict[str, object], message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n' + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        inspect_data_file(path)
    assert err.value.message == message and err.value.line == 2


@pytest.mark.parametrize(("csv_text", "line"), [
    ('text\n"never closed\n', 2),
    ('text\nfine\n"spans\ntwo lines"\n"never closed\nmore\n', 5),
    ('question,answer\n"q"x,a\n', 2),
])
def test_csv_with_a_broken_quote_is_ul208(work: Path, capsys: pytest.CaptureFixture[str], csv_text: str,
                                          line: int) -> None:
    (work / "data" / "bad.csv").write_text(csv_text, encoding="utf-8")
    name = spec(work, "data/retain.jsonl", "data/bad.csv")
    code, text = cli(capsys, "check", name)
    assert code == EXIT_FINDINGS
    assert f"error[UL208]: data file `data/bad.csv:{line}:1` cannot be read: malformed CSV" in text


@pytest.mark.parametrize(("name", "content", "message"), [
    ("plan.JSON", '{"format_version": "abc", "objectives": []}', 'plan format `"abc"` is not a version number'),
    ("deep.json", '{"format_version": "1.0", "objectives": ' + "[" * 10_000 + "]" * 10_000 + "}",
     f"nested deeper than {MAX_JSON_DEPTH} levels"),
])
def test_run_reads_plans_with_the_same_loader(work: Path, capsys: pytest.CaptureFixture[str], name: str,
                                              content: str, message: str) -> None:
    """`run` shares `show`'s plan loader: `plan.JSON` is a plan (not parsed as a spec), `abc` is not
    called a newer format, deep nesting is malformed JSON — UL703 and exit 2, nothing written."""
    (work / name).write_text(content, encoding="utf-8")
    code, text = cli(capsys, "run", name)
    assert code == EXIT_USAGE
    assert "error[UL703]" in text and message in text and "newer" not in text
    assert not (work / "runs").exists()


@pytest.mark.parametrize("stage", ["syntax", "ast", "analysis", "plan"])
def test_debug_of_an_unusable_spec_path_is_exit_2(work: Path, capsys: pytest.CaptureFixture[str], stage: str) -> None:
    (work / "folder.unlearn").mkdir()
    for path in ("missing.unlearn", "folder.unlearn"):
        code, text = cli(capsys, "debug", stage, path)
        assert code == EXIT_USAGE and "UL207" in text, (path, text)


@pytest.mark.parametrize("stage", ["ast", "plan"])
def test_debug_of_a_huge_number_is_ul205(work: Path, capsys: pytest.CaptureFixture[str], stage: str) -> None:
    name = spec(work, "robust_to_finetuning steps 20", "robust_to_finetuning steps 1e309")
    code, text = cli(capsys, "debug", stage, name)
    assert code in (EXIT_OK, EXIT_FINDINGS) and "UL205" in text


def test_deep_or_huge_numbers_in_ledgers_imports_and_csv_records_are_diagnosed(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON nested thousands deep and integers past Python's 4,300-digit limit used to escape as
    RecursionError and ValueError from the ledger, the benchmark importers and the CSV record reader; each is
    now that reader's malformed-input diagnostic: exit 2 for an import, 1 for a ledger or a spec's data file
    (findings)."""
    deep = '{"question": "q", "answer": "a", "x": ' + "[" * 5000 + "]" * 5000 + "}\n"
    huge = "9" * 5000
    (work / "led").mkdir()
    (work / "led" / "m.jsonl").write_text(deep, encoding="utf-8")
    code, text = cli(capsys, "ledger", "verify", str(work / "led"))
    assert code == EXIT_FINDINGS and "UL803" in text  # a broken ledger is a finding, like any other bad line
    (work / "tf").mkdir()
    (work / "tf" / "forget01.json").write_text(deep, encoding="utf-8")
    (work / "tf" / "retain99.json").write_text('{"question": "q", "answer": "a"}\n', encoding="utf-8")
    code, text = cli(capsys, "data", "import", "tofu", str(work / "tf"), "--split", "forget01", "--out",
                     str(work / "o1"))
    assert code == EXIT_USAGE and "UL823" in text and "nested deeper" in text
    (work / "wm").mkdir()
    (work / "wm" / "wmdp-bio.jsonl").write_text(
        '{"question": "q", "choices": ["a", "b"], "answer": ' + huge + "}\n", encoding="utf-8")
    code, text = cli(capsys, "data", "import", "wmdp", str(work / "wm"), "--out", str(work / "o2"))
    assert code == EXIT_USAGE and "UL823" in text
    (work / "data" / "mcq.csv").write_text(f"question,choices,answer\nq,a|b,{huge}\n", encoding="utf-8")
    code, text = cli(capsys, "check", spec(work, '"data/jane-doe.jsonl"', '"data/mcq.csv"'))
    assert code == EXIT_FINDINGS and "UL208" in text and "index of the correct" in text
    code, text = cli(capsys, "keygen", "--out", "")
    assert code == EXIT_USAGE and "UL813" in text


@pytest.mark.parametrize("argv", [["fmt", ""], ["check", ""], ["check", str(EXAMPLE), ""], ["plan", ""], ["show", ""],
                                  ["diff", str(EXAMPLE), ""], ["debug", "ast", ""], ["run", ""], ["card", ""],
                                  ["sign", "", "--key", "k"], ["verify", "", "--pub", "k.pub"],
                                  ["data", "import", "tofu", "", "--out", "o"]],
                         ids=lambda a: "-".join(x or "EMPTY" for x in a[:2]))
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
        work: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """`fmt "$SPECS"` with the variable unset used to format every spec under the current folder; every path
    a verb takes now refuses an empty one with exit 2, before anything is read or written."""
    (work / "mine.unlearn").write_text("unlearnspec 1\nobjective   \"x\" {\n}\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == EXIT_USAGE
    assert "an empty path would mean the current folder" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before
