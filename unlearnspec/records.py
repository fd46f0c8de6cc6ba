"""Data records: the one format every data file is read into.

Shared by the compiler (which checks that data files exist and parse, and hashes them) and the
runtime (which trains and evaluates on them). It imports nothing heavy: JSONL and CSV are read with
the standard library; Hugging Face ``save_to_disk`` folders need ``datasets`` and are only opened by
the runtime (the compiler checks their layout and hashes their files).

A record is a document (``text``) and/or a question-answer pair (``question`` + ``answer``), with
optional ``paraphrases`` of the question. Two optional fields serve specific evidence:
``perturbed`` (plausible wrong answers, for TOFU's truth ratio) and ``attributes`` (labelled facts
such as ``{"birth_city": "Lisbon"}``, for the representation probe).

A multiple-choice record (the lm-evaluation-harness and WMDP convention) is a ``question``, its
``choices`` and ``answer``, the index of the correct choice: ``{"question": "...", "choices": ["a",
"b", "c", "d"], "answer": 2}``. It is read with ``answer_index`` = 2 and ``answer`` = the text of the
correct choice, so it is also a question-answer pair for every metric that scores answers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from unlearnspec.inputs import first_problem, json_lines, load_json, read_regular
from unlearnspec.markdown import code_span

QA_TEMPLATE = "Question: {question}\nAnswer: {answer}"
PROMPT_TEMPLATE = "Question: {question}\nAnswer:"


def format_prompt(question: str) -> str:
    """The plain format's prompt of a QA record (a model with a chat template is asked through it instead:
    ``unlearnspec.runtime.prompting``); training text and probes share it."""
    return PROMPT_TEMPLATE.format(question=question)


def format_qa(question: str, answer: str) -> str:
    """The plain format's training text of a QA record: its prompt followed by a space and the answer."""
    return QA_TEMPLATE.format(question=question, answer=answer)


class Record(BaseModel):
    """One line of a data file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    text: str | None = None
    question: str | None = None
    answer: str | None = None
    paraphrases: list[str] = Field(default_factory=list)
    perturbed: list[str] = Field(default_factory=list)
    paraphrased_answer: str | None = None  # TOFU's truth ratio compares the perturbed answers with it
    attributes: dict[str, str] = Field(default_factory=dict)
    choices: list[str] = Field(default_factory=list)
    answer_index: int | None = None

    @property
    def is_qa(self) -> bool:
        return self.question is not None and self.answer is not None

    @property
    def is_mcq(self) -> bool:
        """A multiple-choice item: a question, its choices and the index of the correct one."""
        return self.question is not None and bool(self.choices) and self.answer_index is not None

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two records the same record: the texts the model is trained on for it (a copy has the same;
        UL222 warns of copies, the holdout split keeps them together, evaluation counts them once)."""
        return tuple(self.training_texts())

    def training_texts(self) -> list[str]:
        """Texts a plain-format language model is trained on for this record (a chat model's QA pair is a chat
        exchange instead, ``unlearnspec.runtime.prompting``); also the key exact retraining excludes a record by."""
        out: list[str] = []
        if self.text:
            out.append(self.text)
        if self.is_qa:
            assert self.question is not None and self.answer is not None
            out.append(format_qa(self.question, self.answer))
        return out


class DataFormatError(Exception):
    """A data file that cannot be read; ``line`` and ``column`` are 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.help = help


DATA_SUFFIXES = (".jsonl", ".csv")


@dataclass(frozen=True)
class DataFileInfo:
    """What the compiler learns from a data file without loading a framework."""

    kind: str  # "jsonl" | "csv" | "hf_dataset"
    records: int
    qa_records: int
    text_records: int
    mcq_records: int = 0
    #: the keys of the records' ``attributes`` (the labels the representation probe can predict); None when the
    #: compiler cannot read the records (a ``save_to_disk`` folder)
    attribute_keys: frozenset[str] | None = frozenset()


def _validate_row(row: dict[str, object], line: int) -> Record:
    if not isinstance(row, dict):
        raise DataFormatError("each line must be a JSON object", line=line, column=1,
                              help='write one object a line, e.g. `{"text": "..."}`')
    # columnar formats (CSV, `save_to_disk`) give absent fields as None: drop them
    row = {k: v for k, v in row.items() if v is not None}
    if isinstance(row.get("paraphrases"), str):
        row = {**row, "paraphrases": [p for p in str(row["paraphrases"]).split("|") if p]}
    if isinstance(row.get("perturbed"), str):
        row = {**row, "perturbed": [p for p in str(row["perturbed"]).split("|") if p]}
    if row.get("choices") in ([], ""):  # a record's own JSON form writes "no choices" as an empty list
        row = {k: v for k, v in row.items() if k != "choices"}
    if "choices" in row:
        row = _mcq_row(row, line)
    if isinstance(row.get("attributes"), str):
        try:
            row = {**row, "attributes": load_json(str(row["attributes"]) or "{}")}
        except json.JSONDecodeError as exc:
            raise DataFormatError("`attributes` must be a JSON object", line=line, column=1) from exc
    try:
        rec = Record.model_validate(row)
    except ValidationError as exc:
        field, why = first_problem(exc, "record")
        raise DataFormatError(f"field {code_span(field)}: {why}", line=line, column=1) from exc
    if (rec.question is None) != (rec.answer is None):  # before "neither": `{"question": "q?"}` lacks an answer
        missing, present = ("answer", "question") if rec.answer is None else ("question", "answer")
        raise DataFormatError(f"record has a `{present}` but no `{missing}`", line=line, column=1,
                              help=f"a QA pair needs both `question` and `answer`; add the `{missing}`")
    if not rec.text and not rec.is_qa:
        raise DataFormatError(
            "record has neither `text` nor `question` + `answer`", line=line, column=1,
            help="each record needs a document (`text`) or a QA pair (`question` and `answer`)")
    return rec


def _mcq_row(row: dict[str, object], line: int) -> dict[str, object]:
    """A multiple-choice row: ``answer`` is the correct choice's index; the record carries its text too."""
    choices, answer = row["choices"], row.get("answer")
    if isinstance(choices, str):  # CSV: choices separated by `|`, like the other list columns
        choices = [c for c in choices.split("|") if c]
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise DataFormatError("`choices` must be a list of at least two strings", line=line, column=1,
                              help='write `"choices": ["first", "second", ...]` with `"answer"` the index of the correct one')
    if isinstance(answer, str) and answer.strip().isdigit() and len(answer.strip()) <= 18:
        answer = int(answer)  # longer digit strings are no index (and past 4,300 digits Python refuses them)
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise DataFormatError("a multiple-choice record needs `answer`, the index of the correct choice",
                              line=line, column=1,
                              help=f"write `\"answer\": 0` for the first of the {len(choices)} choices")
    if not 0 <= answer < len(choices):
        raise DataFormatError(f"`answer` {answer} is not the index of one of the {len(choices)} choices",
                              line=line, column=1, help=f"choices are numbered from 0 to {len(choices) - 1}")
    return {**row, "choices": choices, "answer_index": answer, "answer": choices[answer]}


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> DataFormatError:
    """The error for a file that is not UTF-8, at the line and column (in characters) of its first bad byte."""
    before = data[: exc.start]
    start = before.rfind(b"\n") + 1
    column = len(before[start:].decode("utf-8-sig")) + 1  # valid up to the bad byte
    return DataFormatError("data file is not valid UTF-8", line=before.count(b"\n") + 1, column=column,
                           help="save the file as UTF-8 text (for example `iconv -f latin1 -t utf-8`)")


def _iter_jsonl(data: bytes) -> Iterator[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc) from exc
    for lineno, raw in enumerate(json_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            row = load_json(raw)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"malformed JSON: {exc.msg.lower()}", line=lineno, column=exc.colno,
                                  help="each line of a JSONL file must be one complete JSON object") from exc
        yield _validate_row(row, lineno)


def _iter_csv(data: bytes) -> Iterator[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc) from exc
    # strict: a quote that is never closed is an error, not a field that swallows the rest of the file
    reader = csv.DictReader(io.StringIO(text), strict=True)
    start = 1  # the line the record being read starts on (a quoted field may span lines)
    try:
        fieldnames = reader.fieldnames
        if not fieldnames or not ({"text", "question"} & set(fieldnames)):
            raise DataFormatError("CSV header must name `text` or `question` and `answer`", line=1, column=1)
        start = reader.line_num + 1
        for row in reader:
            clean = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
            yield _validate_row(clean, start)
            start = reader.line_num + 1
    except csv.Error as exc:
        what = str(exc)
        if what == "unexpected end of data":
            what = "a quoted field is never closed"
        raise DataFormatError(f"malformed CSV: {what}", line=start, column=1,
                              help='close every quoted field with `"`; write a quote inside one as `""`') from exc


def is_hf_dataset_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "state.json").is_file())


def read_records(path: str | Path) -> list[Record]:
    """Read every record of a data file (JSONL, CSV, or a ``save_to_disk`` folder)."""
    p = Path(path)
    if p.is_dir():
        if not is_hf_dataset_dir(p):
            raise DataFormatError("folder is not a Hugging Face `save_to_disk` dataset",
                                  help="give a .jsonl or .csv file, or a folder written by `Dataset.save_to_disk`")
        from datasets import load_from_disk  # runtime only

        ds = load_from_disk(str(p))
        return [_validate_row(dict(row), i + 1) for i, row in enumerate(ds)]
    data = read_regular(p)
    if p.suffix.lower() == ".csv":
        return list(_iter_csv(data))
    return list(_iter_jsonl(data))


def inspect_data_file(path: str | Path) -> DataFileInfo:
    """Check a data file's format without a framework; raises :class:`DataFormatError`."""
    p = Path(path)
    if p.is_dir():
        if not is_hf_dataset_dir(p):
            raise DataFormatError("folder is not a Hugging Face `save_to_disk` dataset",
                                  help="give a .jsonl or .csv file, or a folder written by `Dataset.save_to_disk`")
        return DataFileInfo(kind="hf_dataset", records=-1, qa_records=-1, text_records=-1, mcq_records=-1,
                            attribute_keys=None)
    if p.suffix.lower() not in DATA_SUFFIXES:
        raise DataFormatError(f"unsupported data file type {code_span(p.suffix or '(none)')}",
                              help="data files are JSONL (.jsonl), CSV (.csv) or `save_to_disk` folders")
    data = read_regular(p)
    recs = list(_iter_csv(data) if p.suffix.lower() == ".csv" else _iter_jsonl(data))
    if not recs:
        raise DataFormatError("data file holds no records", line=1, column=1)
    return DataFileInfo(
        kind=p.suffix.lower().lstrip("."),
        records=len(recs),
        qa_records=sum(r.is_qa for r in recs),
        text_records=sum(bool(r.text) for r in recs),
        mcq_records=sum(r.is_mcq for r in recs),
        attribute_keys=frozenset(k for r in recs for k in r.attributes),
    )


def folder_files(folder: str | Path) -> list[Path]:
    """The files a folder's hash covers, sorted: every file below it (a link to a file counts as the file, as
    in the Hugging Face cache, whose snapshot folders link into a shared ``blobs/``), except hidden entries and
    what is below them (``.git/``, ``.cache/``, ``.DS_Store``): version control and download caches change
    when the model or data does not."""
    p = Path(folder)
    return sorted(x for x in p.rglob("*") if not hidden_in(x, p) and x.is_file())


def hidden_in(path: Path, folder: Path) -> bool:
    """Whether ``path`` (below ``folder``) is hidden there or lies below a hidden folder."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (:func:`folder_files`: names inside it and contents, sorted)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in folder_files(p):
            h.update(f.relative_to(p).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
        return h.hexdigest()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_holdout(records: Sequence[Record], seed: int = 0) -> tuple[list[int], list[int]]:
    """Split holdout records deterministically into (calibration, evaluation) record indices.

    Why: the data used to decide when to stop unlearning (the stopping rule compares forget loss
    with holdout loss) cannot also be the data the verdict is measured on (membership inference,
    forget quality), or training stops exactly where the attack sees least (FRAMEWORK.md §7).

    Records of one person (``attributes["person"]``) stay together, so that the two halves are
    independent; so do copies of one record (the same training texts: UL222 warns of them), whatever
    person each copy names, and with them every record of those persons; other records are their own
    group. A group's key is the person of its first record that names one, else ``#`` and the index of
    its first record. Groups are ordered by a hash of the seed and their key, then each goes to the half
    with fewer records (evaluation first on a tie). The two index lists are disjoint and together cover
    every record."""
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[object, int] = {}
    for i, r in enumerate(records):  # a person's records, and copies of one record, are one group
        for link in (("person", r.attributes.get("person")), ("texts", r.identity)):
            if link[1]:
                j = first_of.setdefault(link, i)
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for i in range(len(records)):
        members.setdefault(root(i), []).append(i)
    groups: dict[str, list[int]] = {}
    for head, idx in members.items():
        person = next((records[i].attributes.get("person") for i in idx if records[i].attributes.get("person")), None)
        groups[person or f"#{head}"] = idx
    order = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}\0{k}".encode()).hexdigest())
    calibration: list[int] = []
    evaluation: list[int] = []
    for key in order:
        (evaluation if len(evaluation) <= len(calibration) else calibration).extend(groups[key])
    return sorted(calibration), sorted(evaluation)


def distinct(records: Sequence[Record]) -> list[Record]:
    """The records with every repeat dropped: the first record giving each set of training texts, in order.

    Why: an evaluation counts each record as one item of its sample sizes and intervals (FRAMEWORK.md §7), so a
    record given twice would be two independent items and an interval narrower than the data can show (UL222
    warns of repeats at compile time). Training still reads the records as given. Records with no training text
    (none in valid data) are each their own."""
    seen: set[tuple[str, ...]] = set()
    out: list[Record] = []
    for r in records:
        key = r.identity
        if key and key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out
