"""Bad input through the real command line, each case generated here: exit status 1 or 2, a diagnostic
with `file:line:col`, never a Python traceback, never a hang (each run is killed after 20 s)."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.frontend import EXAMPLE, SPECS, run_cli

TIMEOUT = 20


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return run_cli(args, cwd=cwd, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this file exists to catch
        pytest.fail(f"`unlearnspec {' '.join(args)}` did not finish in {TIMEOUT} s")


def assert_diagnosed(r: subprocess.CompletedProcess[str], code: str, location: str,
                     statuses: tuple[int, ...] = (1,)) -> None:
    both = r.stdout + r.stderr
    assert "Traceback" not in both, both[-2000:]
    assert r.returncode in statuses, (r.returncode, both[-2000:])
    assert re.search(rf"(error|warning)\[{code}\]", both), both[-2000:]
    assert location in both, (location, both[-2000:])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(SPECS / "data", tmp_path / "data")
    return tmp_path


def write(folder: Path, name: str, data: bytes) -> str:
    (folder / name).write_bytes(data)
    return name


def test_empty_file(work: Path) -> None:
    assert_diagnosed(run(["check", write(work, "empty.unlearn", b"")], work), "UL109", "empty.unlearn:1:1")


def test_binary_junk(work: Path) -> None:
    rng = random.Random(20261120)
    junk = bytes(rng.randrange(256) for _ in range(4096))
    junk = junk[:1000] + b"\x00" + junk[1000:]  # certainly binary
    first_nul = junk.index(b"\x00")
    line = junk[:first_nul].count(b"\n") + 1
    # the column counts characters, as every diagnostic's does: each byte that is not UTF-8 reads as one
    col = len(junk[junk.rfind(b"\n", 0, first_nul) + 1:first_nul].decode("utf-8", errors="replace")) + 1
    name = write(work, "junk.unlearn", junk)
    r = run(["check", name], work)
    assert_diagnosed(r, "UL100", f"junk.unlearn:{line}:{col}")
    assert "\x00" not in r.stdout and "\x1b" not in r.stdout
    assert_diagnosed(run(["fmt", name], work), "UL100", f"junk.unlearn:{line}:{col}")


def test_invalid_utf8(work: Path) -> None:
    data = EXAMPLE.read_bytes().replace(b"Jane Doe\" {", b"Jane \xc3\x28Doe\" {")
    line = data[: data.index(b"\xc3\x28")].count(b"\n") + 1
    r = run(["check", write(work, "latin.unlearn", data)], work)
    assert_diagnosed(r, "UL100", f"latin.unlearn:{line}:")
    assert "not valid UTF-8 (byte 0xc3)" in r.stdout


def test_ten_megabyte_file(work: Path) -> None:
    data = EXAMPLE.read_bytes() + b"# padding " + b"x" * 100 + b"\n"
    data = data * (10_000_000 // len(data) + 1)
    assert len(data) > 10_000_000
    name = write(work, "huge.unlearn", data)
    r = run(["check", name], work)
    assert_diagnosed(r, "UL106", "huge.unlearn:1:1")
    assert len(r.stdout) < 5000
    assert_diagnosed(run(["fmt", "--check", name], work), "UL106", "huge.unlearn:1:1")


def test_ten_thousand_nested_braces(work: Path) -> None:
    data = b'unlearnspec 1\nobjective "x" {\n' + b"a {" * 10_000 + b"}" * 10_001 + b"\n"
    r = run(["check", write(work, "nested.unlearn", data)], work)
    assert_diagnosed(r, "UL105", "nested.unlearn:3:")
    assert max(len(line) for line in r.stdout.splitlines()) < 300


def test_ten_thousand_unmatched_braces(work: Path) -> None:
    data = b"unlearnspec 1\n" + b"{" * 10_000 + b"\n"
    assert_diagnosed(run(["check", write(work, "open.unlearn", data)], work), "UL105", "open.unlearn:2:")
    data = b"unlearnspec 1\n" + b"}" * 10_000 + b"\n"
    assert_diagnosed(run(["check", write(work, "close.unlearn", data)], work), "UL102", "close.unlearn:2:1")


def test_unterminated_string(work: Path) -> None:
    data = EXAMPLE.read_bytes().replace(b'"privacy-office"', b'"privacy-office')
    r = run(["check", write(work, "open-string.unlearn", data)], work)
    assert_diagnosed(r, "UL104", "open-string.unlearn:7:10")
    assert "string is not closed" in r.stdout


def test_unterminated_string_at_end_of_file(work: Path) -> None:
    data = b'unlearnspec 1\nobjective "x" {\n  title "no end'
    assert_diagnosed(run(["check", write(work, "eof.unlearn", data)], work), "UL104", "eof.unlearn:3:9")


def test_tab_and_crlf_mix_parses(work: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").split("\n")
    mixed = "".join(line.replace("  ", "\t", 1) + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines[:-1]))
    name = write(work, "mixed.unlearn", mixed.encode("utf-8"))
    r = run(["check", name], work)
    assert "Traceback" not in r.stdout + r.stderr
    assert r.returncode == 0, r.stdout  # the example is clean, whatever its line endings and indentation
    assert "ok: checked 1 file: 0 errors" in r.stdout
    broken = mixed.replace("removal", "removel")
    r = run(["check", write(work, "mixed-bad.unlearn", broken.encode("utf-8"))], work)
    assert_diagnosed(r, "UL204", "mixed-bad.unlearn:18:")


def test_bom_parses(work: Path) -> None:
    name = write(work, "bom.unlearn", b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    r = run(["check", name], work)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr
    r = run(["check", write(work, "bom-bad.unlearn", b"\xef\xbb\xbf" + EXAMPLE.read_bytes().replace(b"npo", b"nop"))], work)
    assert_diagnosed(r, "UL204", "bom-bad.unlearn:19:10")  # columns count from after the BOM


def test_spec_path_to_a_directory(work: Path) -> None:
    (work / "data" / "folder.jsonl").mkdir()
    data = EXAMPLE.read_bytes().replace(b"data/retain.jsonl", b"data/folder.jsonl")
    r = run(["check", write(work, "dirpath.unlearn", data)], work)
    assert_diagnosed(r, "UL207", "dirpath.unlearn:27:15")
    assert "is a folder, not a data file" in r.stdout


def test_command_line_path_to_a_directory_without_specs(work: Path) -> None:
    (work / "looks-like.unlearn").mkdir()
    r = run(["check", "looks-like.unlearn"], work)
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "no `*.unlearn` files found in looks-like.unlearn" in r.stderr


def test_a_folder_given_to_a_verb_that_takes_one_spec(work: Path) -> None:
    """`plan` and `show` take one spec: a folder is refused as a folder (exit 2), with no advice meant for `check`."""
    (work / "team").mkdir()
    for verb in ("plan", "show"):
        r = run([verb, "team"], work)
        assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr, verb
        assert "`team` is a folder, not a spec file" in r.stderr and "folder to search" not in r.stderr, verb


def test_an_output_over_an_input_is_refused_and_the_input_kept(work: Path) -> None:
    """`-o` naming the spec, a data file it names, or a link to one, would replace what the user gave."""
    name = write(work, "spec.unlearn", EXAMPLE.read_bytes())
    (work / "link.unlearn").symlink_to(name)
    spec_bytes, forget = (work / name).read_bytes(), (work / "data" / "jane-doe.jsonl").read_bytes()
    for args in (["check", name, "-o", name], ["plan", name, "-o", "data/jane-doe.jsonl"],
                 ["debug", "plan", name, "-o", "link.unlearn"], ["show", name, "-o", name]):
        r = run(args, work)
        assert r.returncode == 2 and "is an input of this command" in r.stderr, args
    assert (work / name).read_bytes() == spec_bytes and (work / "data" / "jane-doe.jsonl").read_bytes() == forget
    assert run(["plan", name, "-o", "plan.json"], work).returncode == 0 and (work / "plan.json").is_file()


def test_builtin_export_keeps_the_users_files(work: Path) -> None:
    """`builtin export` into a folder with the user's own data writes nothing and says which files are in the
    way; a link there is never written through; `--force` replaces them with plain files."""
    (work / "ex").mkdir()
    (work / "ex" / "retain.jsonl").write_text('{"text": "mine"}\n', encoding="utf-8")
    (work / "outside.txt").write_text("kept\n", encoding="utf-8")
    (work / "ex" / "holdout.jsonl").symlink_to("../outside.txt")
    r = run(["builtin", "export", "ex"], work)
    assert r.returncode == 2 and "ex/retain.jsonl" in r.stderr and "ex/holdout.jsonl" in r.stderr
    assert not (work / "ex" / "jane-doe.jsonl").exists() and "mine" in (work / "ex" / "retain.jsonl").read_text()
    assert run(["builtin", "export", "ex", "--force"], work).returncode == 0
    assert (work / "outside.txt").read_text() == "kept\n" and not (work / "ex" / "holdout.jsonl").is_symlink()
    assert run(["builtin", "export", "ex"], work).returncode == 0  # the same corpus again: nothing in the way


def test_missing_spec_file(work: Path) -> None:
    """A spec path that cannot be read is an unusable path (exit 2), not a finding in a spec (1)."""
    assert_diagnosed(run(["check", "missing.unlearn"], work), "UL207", "missing.unlearn:1:1", (2,))


def test_spec_path_to_a_missing_data_file(work: Path) -> None:
    data = EXAMPLE.read_bytes().replace(b"data/neighbors.jsonl", b"data/no-such-file.jsonl")
    r = run(["check", write(work, "missing-data.unlearn", data)], work)
    assert_diagnosed(r, "UL207", "missing-data.unlearn:28:15")


def test_data_file_with_a_malformed_line(work: Path) -> None:
    path = work / "data" / "retain.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(1, '{"text": "broken", }')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run(["check", write(work, "spec.unlearn", EXAMPLE.read_bytes())], work)
    assert_diagnosed(r, "UL208", "spec.unlearn:27:15")
    assert "data/retain.jsonl:2:" in r.stdout  # the help names the data file's own line


def test_many_syntax_errors_near_the_size_limit_finish(work: Path) -> None:
    """Recovery re-parses after each error; with a large file and errors at its end that must stay bounded."""
    body = EXAMPLE.read_text(encoding="utf-8").split("\n", 2)[2]
    copies = 950_000 // len(body.encode("utf-8"))  # as many objectives as keep the file under the 1 MB limit
    big = "unlearnspec 1\n\n" + "".join(body.replace("erase-jane-doe", f"o{i}") for i in range(copies))
    big += "".join(f'objective "e{i}" {{\n  title @\n}}\n' for i in range(40))
    data = big.encode("utf-8")
    assert 900_000 < len(data) < 1_000_000
    r = run(["check", write(work, "many.unlearn", data)], work)
    assert_diagnosed(r, "UL101", "many.unlearn:")
    assert 2 <= r.stdout.count("error[UL101]") <= 20


def test_lone_carriage_returns(work: Path) -> None:
    data = EXAMPLE.read_bytes().replace(b"\n", b"\r")
    assert_diagnosed(run(["check", write(work, "cr.unlearn", data)], work), "UL101", "cr.unlearn:1:14")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_device_as_a_spec(work: Path) -> None:
    """Only regular files are read as specs: a device is refused before a byte is read, not read
    until memory runs out."""
    r = run(["check", "/dev/zero"], work)
    assert_diagnosed(r, "UL207", "/dev/zero:1:1", (2,))
    assert "`/dev/zero` is a character device, not a spec file" in r.stdout
    r = run(["fmt", "/dev/zero"], work)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: cannot read `/dev/zero`: a character device, not a regular file" in r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("verb", ["check", "fmt", "show", "explain", "plan", "diff"])
def test_spec_path_to_a_named_pipe(work: Path, verb: str) -> None:
    """A FIFO given as the spec is refused at once (it used to block for ever waiting for a writer):
    a diagnostic naming what it is, exit 2, for every verb that reads a spec."""
    os.mkfifo(work / "pipe.unlearn")
    args = [verb, "pipe.unlearn"] + (["pipe.unlearn"] if verb == "diff" else [])
    r = run(args, work)
    both = r.stdout + r.stderr
    assert r.returncode == 2, (r.returncode, both)
    assert "Traceback" not in both
    assert "named pipe" in both and "pipe.unlearn" in both


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_plan_path_to_a_named_pipe(work: Path) -> None:
    os.mkfifo(work / "plan.json")
    for args in (["show", "plan.json"], ["diff", "plan.json", "plan.json"]):
        r = run(args, work)
        assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr, r.stderr
        assert "cannot read plan `plan.json`: a named pipe, not a regular file" in r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_data_path_to_a_named_pipe(work: Path) -> None:
    """Opening a pipe with no writer would block for ever; it is refused before it is opened."""
    os.mkfifo(work / "data" / "pipe.jsonl")
    data = EXAMPLE.read_bytes().replace(b"data/retain.jsonl", b"data/pipe.jsonl")
    r = run(["check", write(work, "fifo.unlearn", data)], work)
    assert_diagnosed(r, "UL207", "fifo.unlearn:27:15")
    assert "is not a regular file" in r.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_local_model_with_a_pipe_for_weights_and_a_deep_config(work: Path) -> None:
    """Planning reads a local model's safetensors headers and config.json to size it: a FIFO named
    `*.safetensors` is skipped, not waited on, and a config.json nested 50,000 deep is ignored, not a
    RecursionError."""
    model = work / "models" / "m"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", encoding="utf-8")
    os.mkfifo(model / "model.safetensors")
    data = EXAMPLE.read_bytes().replace(b'"builtin:tiny-bios"', b'"models/m"')
    name = write(work, "local.unlearn", data)
    for verb in ("check", "plan"):
        r = run([verb, name], work)
        assert r.returncode in (0, 1), (verb, r.stdout[-2000:], r.stderr[-2000:])
        assert "Traceback" not in r.stdout + r.stderr
