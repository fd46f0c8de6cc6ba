"""Fuzzing what a user hands the compiler verbs besides a spec's text, and the verbs themselves
(issue 12): mutated data files (JSONL and CSV), mutated plans, and mutated specs run through
``unlearnspec.cli.main`` in-process with every compiler verb — check, fmt, plan, show, diff, explain,
schema. Whatever the input, no exception escapes: the outcome is a diagnostic and a documented exit
status (0, 1 or 2). Derandomized: CI runs the same cases every time.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.frontend import EXAMPLE, ROOT, SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import mutated_specs

from unlearnspec.cli import main
from unlearnspec.plan import Plan, PlanLoadError
from unlearnspec.records import DataFormatError, inspect_data_file, read_records

pytestmark = pytest.mark.fuzz

FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
PLANS = sorted((ROOT / "tests" / "golden" / "plans").glob("*.json"))
DATA = [p for p in sorted((SPECS / "data").rglob("*")) if p.suffix in (".jsonl", ".csv")]
#: Bytes that mean something to JSON, CSV or a decoder.
DATA_INSERTS = [b'"', b"'", b",", b"{", b"}", b"[", b"]", b":", b"\n", b"\r", b"\r\n", b"\\", b"\x00", b"\xff",
                b"\xef\xbb\xbf", b"null", b"NaN", b"Infinity", b"1e400", b"9" * 5000, b"[" * 3000, b"{\"a\":" * 200,
                b'"text"', b'"question"', b'"answer"', b'"paraphrases"', b'"attributes"', b"text,question,answer\n"]


def run_verb(*argv: str) -> tuple[int, str]:
    """A verb in-process; its exit status and what it printed. An exception fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    text = out.getvalue() + err.getvalue()
    assert code in (0, 1, 2), (argv, code, text[-2000:])
    assert "Traceback" not in text
    return code, text


@contextlib.contextmanager
def workdir(tmp: Path) -> Iterator[Path]:
    """A fresh folder with the example data, for one fuzz case."""
    folder = tmp / f"case{next(_cases)}"
    shutil.copytree(SPECS / "data", folder / "data")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_cases = iter(range(10**9))


# -- data files ------------------------------------------------------------------------------------------


@st.composite
def mutated_data(draw: st.DrawFn) -> tuple[str, bytes]:
    source = draw(st.sampled_from(DATA))
    data = bytearray(source.read_bytes()[:4000])
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["flip", "insert", "insert", "delete", "truncate", "dup_line"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.sampled_from(DATA_INSERTS))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 20))]
        elif op == "truncate":
            del data[i:]
        else:
            end = data.find(b"\n", i)
            data[i:i] = data[i:end + 1 if end >= 0 else len(data)]
    return source.suffix, bytes(data)


@settings(FUZZ, max_examples=1500)
@given(mutated_data())
def test_mutated_data_files_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory,
                                                case: tuple[str, bytes]) -> None:
    """The compiler's inspection and the runtime's reader agree: records, or a DataFormatError with a
    line — never another exception."""
    suffix, data = case
    path = tmp_path_factory.getbasetemp() / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        info = inspect_data_file(path)
    except DataFormatError as err:
        assert err.message and (err.line is None or err.line >= 1)
        with contextlib.suppress(DataFormatError):  # only "holds no records" reads as nothing
            assert read_records(path) == [], err.message
        return
    records = read_records(path)
    assert info.records == len(records) and info.qa_records == sum(r.is_qa for r in records)


@settings(FUZZ, max_examples=150)
@given(mutated_data())
def test_check_of_a_spec_naming_a_mutated_data_file(tmp_path_factory: pytest.TempPathFactory,
                                                    case: tuple[str, bytes]) -> None:
    suffix, data = case
    with workdir(tmp_path_factory.getbasetemp()) as folder:
        (folder / "data" / f"fuzz{suffix}").write_bytes(data)
        spec = EXAMPLE.read_text(encoding="utf-8").replace("data/retain.jsonl", f"data/fuzz{suffix}")
        (folder / "spec.unlearn").write_text(spec, encoding="utf-8")
        code, text = run_verb("check", str(folder / "spec.unlearn"))
        if code:
            assert re.search(r"error\[UL2\d\d\]", text), text[-2000:]


# -- plans -------------------------------------------------------------------------------------------------

ODD_VALUES: list[Any] = [None, "", "abc", "1.0", "9.0", -1, 0, 2**70, 1e308, -1e308, True, [], {}, "x" * 2000,
                         [[[[[[[[]]]]]]]], {"kind": "unknown"}, "<!--", "../../etc/passwd"]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_plans(draw: st.DrawFn) -> str:
    doc = json.loads(draw(st.sampled_from(PLANS)).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
        if op == "replace":
            # a copy: a later `duplicate` may append to it, and must not change ODD_VALUES itself
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(parent[path[-1]])
    text = json.dumps(doc)
    if draw(st.booleans()):  # and now and then a byte-level cut or splice
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(["", "]", "}", '"', "NaN", "[" * 5000, ",,"])) + text[i:]
    return text


@settings(FUZZ, max_examples=400)
@given(mutated_plans())
def test_mutated_plans_load_or_are_refused_and_show_never_raises(tmp_path_factory: pytest.TempPathFactory,
                                                                   text: str) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-plan.json"
    path.write_text(text, encoding="utf-8")
    try:
        plan = Plan.load(path)
    except PlanLoadError as err:
        assert err.message
        code, _ = run_verb("show", str(path))
        assert code == 2
        return
    assert isinstance(plan, Plan)
    for fmt in ("md", "json"):
        run_verb("show", str(path), "--format", fmt)
    run_verb("diff", str(PLANS[0]), str(path))


# -- every compiler verb on mutated specs ------------------------------------------------------------------


@settings(FUZZ, max_examples=120)
@given(mutated_specs())
def test_every_compiler_verb_on_a_mutated_spec(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    with workdir(tmp_path_factory.getbasetemp()) as folder:
        spec = folder / "fuzz.unlearn"
        spec.write_bytes(data)
        run_verb("check", str(spec))
        run_verb("check", "--format", "sarif", str(spec))
        run_verb("fmt", "--diff", str(spec))
        run_verb("explain", str(spec))
        run_verb("explain", "--format", "md", str(spec))
        code, _ = run_verb("plan", "-q", "--allow-infeasible", str(spec), "-o", str(folder / "plan.json"))
        run_verb("show", str(spec))
        run_verb("debug", "analysis", str(spec))
        if code == 0:
            run_verb("show", str(folder / "plan.json"), "--format", "md")
            run_verb("diff", str(EXAMPLE), str(folder / "plan.json"), "--format", "md")
        run_verb("diff", str(EXAMPLE), str(spec))
        run_verb("fmt", str(spec))


def test_schema_verbs_never_raise(tmp_path: Path) -> None:
    for flags in ([], ["--plan"], ["--report"]):
        code, text = run_verb("schema", *flags)
        assert code == 0 and json.loads(text)
        code, _ = run_verb("schema", *flags, "-o", str(tmp_path / "s.json"))
        assert code == 0 and json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))


def test_random_bytes_as_every_input() -> None:
    """A quick sweep of plain random bytes (no hypothesis): as a spec, a plan and a data file."""
    rng = random.Random(20261130)
    for i in range(30):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name in ("x.unlearn", "x.json", "x.jsonl", "x.csv"):
                (folder / name).write_bytes(blob)
            run_verb("check", str(folder / "x.unlearn"))
            assert run_verb("show", str(folder / "x.json"))[0] == 2, i
            for name in ("x.jsonl", "x.csv"):
                with contextlib.suppress(DataFormatError):
                    inspect_data_file(folder / name)

