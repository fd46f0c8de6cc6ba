"""The command line: `check` over files and folders with its exit codes, `explain` for every code, `schema`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from fixtures.frontend import EXAMPLE, ROOT, SPECS, run_cli

from unlearnspec.catalog import CODES
from unlearnspec.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """clean/ok.unlearn (the example), warn/nohead.unlearn (only a warning), bad/deep/err.unlearn (errors),
    plus files that are not specs."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for sub, name, content in (("clean", "ok.unlearn", text),
                               ("warn", "nohead.unlearn", text.replace("unlearnspec 1\n\n", "", 1)),
                               ("bad/deep", "err.unlearn", text.replace("goal   removal", "goal   removel"))):
        folder = tmp_path / sub
        folder.mkdir(parents=True)
        shutil.copytree(SPECS / "data", folder / "data")
        (folder / name).write_text(content, encoding="utf-8")
    (tmp_path / "clean" / "README.md").write_text("not a spec")
    (tmp_path / "clean" / "old.unlearn.bak").write_text("not a spec either")
    return tmp_path


def test_check_clean_file_exits_0(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tree / "clean" / "ok.unlearn")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "ok: checked 1 file: 0 errors, 0 warnings" in out


def test_check_warnings_only_exits_0_unless_strict(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tree / "warn" / "nohead.unlearn")
    assert main(["check", path]) == EXIT_OK
    assert "warning[UL107]" in capsys.readouterr().out
    assert main(["check", "--strict", path]) == EXIT_FINDINGS
    assert main(["check", "--strict", str(tree / "clean")]) == EXIT_OK  # accepted findings never fail


def test_check_errors_exit_1(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tree / "bad" / "deep" / "err.unlearn")]) == EXIT_FINDINGS
    assert "error[UL204]: unknown goal `removel`" in capsys.readouterr().out


def test_check_folders_recursively_and_files_together(tree: Path) -> None:
    r = run_cli(["check", "--format", "json", "clean", "bad", "warn/nohead.unlearn"], cwd=tree)
    assert r.returncode == EXIT_FINDINGS, r.stderr
    doc = json.loads(r.stdout)
    assert [f["path"] for f in doc["files"]] == ["clean/ok.unlearn", "bad/deep/err.unlearn", "warn/nohead.unlearn"]
    r = run_cli(["check", "."], cwd=tree)
    assert r.returncode == EXIT_FINDINGS
    assert "checked 3 files" in r.stdout
    assert "clean/README.md" not in r.stdout and ".bak" not in r.stdout


def test_check_the_example_specs_as_the_goldens_say() -> None:
    """`unlearnspec check specs/` exits with the worst golden status; the ARCHITECTURE example passes."""
    goldens = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((SPECS / "golden").glob("*.json"))]
    r = run_cli(["check", "specs"], cwd=ROOT)
    if goldens:
        assert r.returncode == max(g["exit_status"] for g in goldens)
    assert run_cli(["check", "specs/erase-jane-doe.unlearn"], cwd=ROOT).returncode == EXIT_OK
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("args,message", [
    ([], "the following arguments are required"),
    (["check"], "the following arguments are required: paths"),
    (["check", "--no-such-flag", "specs"], "unrecognized arguments: --no-such-flag"),
    (["check", "--format", "xml", "specs"], "invalid choice: 'xml'"),
    (["check", "--color", "sometimes", "specs"], "invalid choice: 'sometimes'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["fmt", "--check", "--diff", "specs"], "not allowed with argument"),
    (["explain"], "the following arguments are required: target"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    r = run_cli(args, cwd=ROOT)
    assert r.returncode == EXIT_USAGE
    assert message in r.stderr and "usage: unlearnspec" in r.stderr
    assert "Traceback" not in r.stderr


def test_folder_with_no_specs_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("x")
    for verb in ("check", "fmt"):
        r = run_cli([verb, "empty"], cwd=tmp_path)
        assert r.returncode == EXIT_USAGE, verb
        assert "no `*.unlearn` files found" in r.stderr and "Traceback" not in r.stderr


def test_missing_spec_file_is_an_unusable_path_with_a_location(tmp_path: Path) -> None:
    """Exit 2 (the command line names something unusable), not 1, which CI reads as a finding."""
    r = run_cli(["check", "nope.unlearn"], cwd=tmp_path)
    assert r.returncode == EXIT_USAGE
    assert "error[UL207]: spec file `nope.unlearn` does not exist" in r.stdout
    assert "nope.unlearn:1:1" in r.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("unlearnspec ")


# ---------------------------------------------------------------------------------------------------
# explain


def test_explain_prints_a_page_for_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    registry = CODES
    assert {f"UL{n}" for n in range(100, 110)} <= set(registry)
    assert {f"UL2{n:02d}" for n in range(1, 16)} <= set(registry)
    for code, page in sorted(registry.items()):
        assert main(["explain", code]) == EXIT_OK, code
        out = capsys.readouterr().out
        assert out.startswith(f"# {code}: {page.name}\n"), out[:80]
        assert page.summary in out and page.why in out
        assert f"**Severity:** {page.severity}" in out
        if page.example:
            assert page.example.splitlines()[0] in out
        assert main(["explain", code.lower()]) == EXIT_OK  # codes are case-insensitive
        assert capsys.readouterr().out == out


def test_explain_unknown_code_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "UL110"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no diagnostic code `UL110`; did you mean `UL10" in err


def test_explain_unknown_code_in_a_fresh_process() -> None:
    r = run_cli(["explain", "UL999"], cwd=ROOT)
    assert r.returncode == EXIT_USAGE and "no diagnostic code `UL999`" in r.stderr
    # the help names the verb that lists the codes, and that verb does list the one the typo was near
    assert "= help: `unlearnspec explain codes` lists every code" in r.stderr
    r = run_cli(["explain", "not-a-code"], cwd=ROOT)
    assert r.returncode == EXIT_USAGE and "neither a diagnostic code" in r.stderr and "= help: give a code" in r.stderr
    listed = run_cli(["explain", "codes"], cwd=ROOT)
    assert listed.returncode == 0 and "UL301" in listed.stdout.split()


def test_explain_all_lists_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "all"]) == EXIT_OK
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == sorted(CODES)


# ---------------------------------------------------------------------------------------------------
# schema


def _check_schema(schema: dict[str, object]) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)


def test_schema_prints_a_valid_json_schema_of_the_spec_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    _check_schema(schema)
    assert schema["title"] == "Spec"
    assert {"Objective", "Target", "Claim", "Evidence", "Span"} <= set(schema["$defs"])


def test_schema_validates_a_real_spec_model(capsys: pytest.CaptureFixture[str]) -> None:
    from unlearnspec.compiler.check import check_file

    assert main(["schema"]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    spec = check_file(EXAMPLE).spec
    assert spec is not None
    jsonschema.validate(spec.model_dump(mode="json"), schema)


def test_schema_to_a_file_and_plan_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schema.json"
    assert main(["schema", "-o", str(out)]) == EXIT_OK
    assert capsys.readouterr().out == ""
    _check_schema(json.loads(out.read_text(encoding="utf-8")))
    assert main(["schema", "--plan"]) == EXIT_OK
    _check_schema(json.loads(capsys.readouterr().out))


def test_batch_check_restores_the_garbage_collector_settings(tree: Path) -> None:
    import gc

    from unlearnspec.compiler.check import check_paths, fewer_gc_pauses

    before = gc.get_threshold()
    results = check_paths([tree])
    assert len(results) == 3 and gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_gc_pauses():
        assert gc.get_threshold()[0] >= 50_000
        raise RuntimeError("a failure inside the batch")
    assert gc.get_threshold() == before


def test_run_of_an_unplannable_spec_says_whether_allow_infeasible_helps(tmp_path: Path) -> None:
    shutil.copytree(SPECS / "data", tmp_path / "data")
    # UL209 (a suppression method for a removal goal) is an error in the spec itself
    broken = EXAMPLE.read_text(encoding="utf-8").replace("method npo", "method refusal")
    (tmp_path / "broken.unlearn").write_text(broken, encoding="utf-8")
    done = run_cli(["run", "broken.unlearn", "--allow-infeasible", "--out", "r"], tmp_path)
    assert done.returncode == EXIT_USAGE and "error[UL209]" in done.stderr and "error[UL706]" in done.stderr
    assert "--allow-infeasible only lets a run go ahead with claims that cannot be met" in done.stderr
    assert not (tmp_path / "r").exists()
    # a claim that cannot be met (UL301 here: removing a concept) is what --allow-infeasible is for
    shutil.copy(SPECS / "captain-vale-removal.unlearn", tmp_path)
    done = run_cli(["run", "captain-vale-removal.unlearn", "--out", "r"], tmp_path)
    assert done.returncode == EXIT_USAGE and "error[UL706]" in done.stderr
    assert "or run with --allow-infeasible to measure what is measurable" in done.stderr


def test_explain_a_code_and_the_list_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json` was ignored for codes (it printed Markdown): a code's page is its catalog entry, the
    list every code's name, severity, category and summary."""
    page = CODES["UL411"]
    assert main(["explain", "ul411", "--format", "json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["format_version"] == "1" and doc["code"] == "UL411"
    assert (doc["severity"], doc["summary"], doc["why"], doc["instead"]) == (page.severity, page.summary, page.why,
                                                                            page.instead)
    assert doc["references"] == list(page.references)
    assert main(["explain", "all", "--format", "json"]) == EXIT_OK
    listed = json.loads(capsys.readouterr().out)["codes"]
    assert [c["code"] for c in listed] == sorted(CODES)
    assert all(c["summary"] == CODES[c["code"]].summary for c in listed)
