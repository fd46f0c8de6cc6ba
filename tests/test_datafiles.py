"""The compiler reads each data file once per version (compiler/datafiles.py), and again when it changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unlearnspec.compiler import datafiles
from unlearnspec.records import read_records


def _write(path: Path, answers: list[str]) -> None:
    path.write_text("".join(json.dumps({"question": f"q{i}?", "answer": a}) + "\n" for i, a in enumerate(answers)),
                    encoding="utf-8")


def test_a_file_is_read_once_and_again_after_an_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "forget.jsonl"
    _write(data, ["a", "b"])
    reads: list[Path] = []

    def counting(path: str | Path) -> list:  # type: ignore[type-arg]
        reads.append(Path(path))
        return read_records(path)

    monkeypatch.setattr(datafiles, "read_records", counting)
    first = datafiles.records_of("forget.jsonl", tmp_path)
    second = datafiles.records_of("forget.jsonl", tmp_path)
    assert [r.answer for r in first] == [r.answer for r in second] == ["a", "b"]
    assert len(reads) == 1
    second.append(first[0])  # a caller's list is its own: the cached records are not changed by it
    assert len(datafiles.records_of("forget.jsonl", tmp_path)) == 2

    _write(data, ["a", "b", "c"])
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new version, even within one clock tick
    assert [r.answer for r in datafiles.records_of("forget.jsonl", tmp_path)] == ["a", "b", "c"]
    assert len(reads) == 2


def test_unreadable_and_missing_files_give_no_records(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text("{not json\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    assert datafiles.records_of("bad.jsonl", tmp_path) == []
    assert datafiles.records_of("missing.jsonl", tmp_path) == []
    assert datafiles.records_of("folder", tmp_path) == []


def test_the_builtin_holdout_is_the_corpus_holdout() -> None:
    from unlearnspec.builtin.corpus import build_corpus

    assert datafiles.records_of(datafiles.BUILTIN_HOLDOUT, Path(".")) == build_corpus().holdout


def test_json_lines_end_at_newlines_only_or_at_lone_carriage_returns() -> None:
    """JSON Lines ends a record at `\\n` (a `\\r` before it dropped); U+2028, U+2029 and U+0085 stay inside their
    record. A file from a system that ends lines with a lone CR is read line by line too."""
    from unlearnspec.inputs import json_lines

    assert json_lines('{"a": "x\u2028y"}\r\n{"b": "\u0085"}\n') == ['{"a": "x\u2028y"}', '{"b": "\u0085"}']
    assert json_lines('{"a": 1}\r{"b": 2}\r') == ['{"a": 1}', '{"b": 2}']
    assert json_lines("") == [] and json_lines("x") == ["x"]


def test_a_safetensors_header_longer_than_the_format_allows_is_not_read(tmp_path: Path) -> None:
    """A damaged length field in a large file: refused at once (the format caps headers at 100 MB), not read."""
    import time

    from unlearnspec.inputs import MAX_SAFETENSORS_HEADER, safetensors_whole

    path = tmp_path / "model.safetensors"
    with path.open("wb") as fh:
        fh.write((MAX_SAFETENSORS_HEADER + 1).to_bytes(8, "little"))
        fh.truncate(3 * MAX_SAFETENSORS_HEADER)  # sparse: no disk is used for the hole
    t0 = time.perf_counter()
    assert safetensors_whole(path) is False
    assert time.perf_counter() - t0 < 1.0


def test_the_holdout_split_is_kept_per_file_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of specs naming one holdout splits it once; an edited holdout is split again, and the split is
    always :func:`~unlearnspec.records.split_holdout` of the records as read."""
    from unlearnspec import records

    data = tmp_path / "holdout.jsonl"
    _write(data, [f"a{i}" for i in range(9)])
    calls: list[int] = []

    def counting(recs, seed=0):  # type: ignore[no-untyped-def]
        calls.append(len(recs))
        return records.split_holdout(recs, seed=seed)

    monkeypatch.setattr(datafiles, "split_holdout", counting)
    first = datafiles.holdout_split(["holdout.jsonl"], tmp_path, 3)
    first[0].append(99)  # the caller's own lists: the kept split is not changed by it
    assert datafiles.holdout_split(["holdout.jsonl"], tmp_path, 3) == records.split_holdout(read_records(data), seed=3)
    assert calls == [9]
    datafiles.holdout_split(["holdout.jsonl"], tmp_path, 4)  # another seed is another split
    assert calls == [9, 9]

    _write(data, [f"b{i}" for i in range(12)])
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert datafiles.holdout_split(["holdout.jsonl"], tmp_path, 3) == records.split_holdout(read_records(data), seed=3)
    assert calls == [9, 9, 12]
    assert datafiles.holdout_split(["missing.jsonl"], tmp_path, 3) == ([], [])


def test_training_texts_of_a_file_name_the_first_record_giving_each(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in [{"text": "x"}, {"question": "q?", "answer": "a", "text": "y"},
                                                {"text": "x"}]), encoding="utf-8")
    texts = datafiles.texts_of("d.jsonl", tmp_path)
    expected: dict[str, int] = {}
    for i, r in enumerate(read_records(tmp_path / "d.jsonl"), start=1):
        for t in r.training_texts():
            expected.setdefault(t, i)
    assert texts == expected and texts["x"] == 1 and len(texts) == 3
