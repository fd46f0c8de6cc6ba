"""What a run folder's signature covers: its files, each by the sha256 of its bytes.

A signature of format 2 (:mod:`unlearnspec.audit.signing`) signs a manifest of every file of the run folder that a
reviewer reads or that the report is about: ``report.json``, ``plan.json``, ``report.md`` (the sign-off document),
``report.html``, ``run.json``, the ledger receipt ``ledger.json``, ``run.log``, and below ``objectives/`` each
objective's checks, generations, chain re-checks, output filter and unlearned model files. The files the reviewer
reads first (:data:`REVIEWED`) are always named: a missing one is recorded as ``null`` ("there was none"), so that one
added after signing is found too.

Outside every signature, and said so by ``verify``: the signature file itself, ``run.lock`` (a process id, rewritten
by a resume) and the training checkpoints under ``objectives/*/unlearn/checkpoints/`` (optimizer and scheduler state
that no verdict is about, often larger than the model). Hidden entries are skipped as in the model hashes
(:func:`unlearnspec.records.folder_files`), and links to folders are not followed: ``verify`` names them, as it
names every entry it does not cover (:func:`unlisted`). A file below ``objectives/`` that no manifest of format 2
lists was added after signing (the manifest lists every file there was), and fails ``verify``. A file the report records outside the run folder (an absolute path: a
retrained model in the cache) is covered by the hash that ``report.json`` records for it, not read by ``verify``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from unlearnspec.inputs import open_regular
from unlearnspec.records import folder_files

SIGNATURE_FILE = "report.sig.json"
#: the files a reviewer reads first: named in every manifest, ``null`` when the run folder has none
REVIEWED = ("report.json", "plan.json", "report.md", "report.html", "run.json", "ledger.json")
LOCK_FILE = "run.lock"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def outside_signature(rel: str) -> str | None:
    """Why the run-folder file ``rel`` (a relative POSIX path) is in no signature: the group it is listed under by
    ``verify`` (``run.lock``, a checkpoints folder with a trailing ``/``), ``""`` for the signature file itself, or
    ``None``: it is signed."""
    if rel == SIGNATURE_FILE:
        return ""
    if rel == LOCK_FILE:
        return rel
    parts = PurePosixPath(rel).parts
    if len(parts) >= 5 and parts[0] == "objectives" and parts[2:4] == ("unlearn", "checkpoints"):
        return "/".join(parts[:4]) + "/"
    return None


def run_files(run_dir: Path) -> tuple[list[str], list[str]]:
    """The run folder's files a signature covers (relative POSIX paths, sorted), and what it leaves out: the groups
    of :func:`outside_signature`, then every entry no manifest lists (:func:`unlisted`)."""
    signed: list[str] = []
    outside: list[str] = []
    for f in folder_files(run_dir):
        rel = f.relative_to(run_dir).as_posix()
        group = outside_signature(rel)
        if group is None:
            signed.append(rel)
        elif group and group not in outside:
            outside.append(group)
    return signed, outside + unlisted(run_dir)


def unlisted(run_dir: Path) -> list[str]:
    """The entries of the run folder that no manifest lists and no group of :func:`outside_signature` holds, so that
    ``verify`` names them as not covered rather than pass over them: hidden files and folders (a folder with a
    trailing ``/``), links to folders (never followed: a trailing ``/``), folders that cannot be listed (their files
    are in no manifest) and whatever is neither a file nor a folder (a FIFO, a socket, a dangling link). Sorted."""
    out: list[str] = []

    def unreadable(err: OSError) -> None:
        if err.filename is not None and Path(err.filename) != Path(run_dir):
            out.append(Path(err.filename).relative_to(run_dir).as_posix() + "/")

    for root, dirs, names in os.walk(run_dir, onerror=unreadable):  # a link to a folder: in ``dirs``, not entered
        base = Path(root)
        keep = []
        for d in dirs:
            rel = (base / d).relative_to(run_dir).as_posix()
            if outside_signature(rel + "/x") is not None:  # a checkpoints folder: one group already
                continue
            if d.startswith(".") or (base / d).is_symlink():
                out.append(rel + "/")
            else:
                keep.append(d)
        dirs[:] = sorted(keep)
        for name in names:
            rel = (base / name).relative_to(run_dir).as_posix()
            if outside_signature(rel) is None and (name.startswith(".") or not (base / name).is_file()):
                out.append(rel)
    return sorted(out)


def file_sha256(path: Path) -> str:
    """sha256 of a regular file's bytes, read in chunks (a FIFO or a device is refused, never waited on)."""
    h = hashlib.sha256()
    with open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(run_dir: Path, read: Mapping[str, bytes]) -> dict[str, str | None]:
    """The manifest of ``run_dir``: each signed file's sha256, ``None`` for a :data:`REVIEWED` file it lacks.
    ``read`` holds files the caller has already read and checked: their digests are of those very bytes."""
    signed, _ = run_files(run_dir)
    files: dict[str, str | None] = dict.fromkeys(REVIEWED)
    for rel in signed:
        files[rel] = hashlib.sha256(read[rel]).hexdigest() if rel in read else file_sha256(run_dir / rel)
    return files


def safe_rel(rel: object) -> bool:
    """Whether a manifest key is a path inside the run folder as :func:`run_files` writes one: relative, POSIX,
    normalised, without ``..`` or hidden parts (a key that climbs out could make ``verify`` read any file)."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    p = PurePosixPath(rel)
    return (not p.is_absolute() and p.as_posix() == rel
            and all(part not in ("", ".", "..") and not part.startswith(".") for part in p.parts))


def is_digest(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def folder_sha256(files: Mapping[str, str | None], folder: str) -> str | None:
    """:func:`unlearnspec.records.sha256_path` of the run-folder subfolder ``folder``, computed from the manifest's
    digests of its files (no second read of the weights); ``None`` when the manifest holds no file below it."""
    prefix = folder.rstrip("/") + "/"
    inside = sorted((PurePosixPath(k[len(prefix):]), v) for k, v in files.items() if k.startswith(prefix) and v)
    if not inside:
        return None
    h = hashlib.sha256()
    for rel, digest in inside:
        h.update(rel.as_posix().encode() + b"\0")
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def in_run_folder(recorded: str) -> str | None:
    """The manifest key of a path the report records (``generations``, an unlearned model), or ``None`` when the path
    is not inside the run folder (absolute, or a name such as ``builtin:tiny-bios``)."""
    return recorded if safe_rel(recorded) and ":" not in recorded else None
