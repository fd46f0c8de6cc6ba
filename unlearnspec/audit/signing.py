"""Detached Ed25519 signatures over a run folder (the ``cryptography`` package).

``sign`` writes ``RUN_DIR/report.sig.json``, format 2: a manifest of the run folder's files, each by the sha256 of
its bytes (:mod:`unlearnspec.audit.manifest`: report.json, plan.json, report.md, report.html, run.json, ledger.json,
run.log and every file below ``objectives/`` but the training checkpoints), the plan hash, the signing key's
fingerprint (sha256 of its raw public key) and the Ed25519 signature over the canonical JSON of those fields. Before
it signs, it checks that the run finished (``run.json`` records when, and all three reports are there: a run whose
finish was cut short is rewritten by its resume, which would break the signature), that the report is a report of
the plan beside it (:mod:`unlearnspec.audit.consistency`), that
each run-folder file the report records a hash for (generations, the unlearned model) has that hash, and it reads
report.json and plan.json once: the bytes it checks are the bytes it hashes. It never writes through a link nor
replaces a signature without ``force``.

``verify`` is offline: it checks that the signature file is exactly the canonical form of what it holds (so no byte
of it can change unnoticed), the signature with the public key given, and every file of the manifest against its
digest; a file named ``null`` must still be absent, and a file below ``objectives/`` the manifest does not list was
added after signing and fails too. It reports what the signature covers and what it does not (files added later at
the top of the folder, the checkpoints, ``run.lock``, hidden entries, links to folders), never "verified" for more. A format-1 signature (written before
manifests) covers report.json and plan.json only, and is verified as exactly that.

Keys are PEM: the private key PKCS#8 (written with mode 0600, and refused for signing when others can read it), the
public key SubjectPublicKeyInfo in ``KEY.pub``. Both are created exclusively: two ``keygen`` at once never leave a
key and a ``.pub`` of different pairs.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from unlearnspec.audit.consistency import plan_mismatches
from unlearnspec.audit.manifest import (
    REVIEWED,
    SIGNATURE_FILE,
    file_sha256,
    folder_sha256,
    in_run_folder,
    is_digest,
    manifest,
    run_files,
    safe_rel,
    unlisted,
)
from unlearnspec.audit.problems import Problem
from unlearnspec.inputs import first_problem, load_json, open_regular, read_regular
from unlearnspec.markdown import code_span
from unlearnspec.plan import Plan, PlanLoadError
from unlearnspec.report.model import Report

SIGNATURE_VERSION = "2"
ALGORITHM = "ed25519"
#: the fields each signature format signs (the file holds them and ``signature``)
SIGNED_FIELDS = {"1": ("format_version", "algorithm", "report_sha256", "plan_sha256", "plan_hash", "key_sha256"),
                 "2": ("format_version", "algorithm", "files", "plan_hash", "key_sha256")}
MAX_KEY_BYTES = 1 << 16
MAX_SIGNATURE_BYTES = 64 << 20  # a manifest of a model of many shards is still far smaller
_LINK_UNSUPPORTED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")
#: below this folder a file the manifest does not list was added after signing (format 2), and fails ``verify``
EVIDENCE = "objectives/"


class SigningError(Exception):
    """A key or run folder that cannot be used: a code, a message and help lines (exit 2)."""

    def __init__(self, code: str, message: str, help: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help or []


@dataclass(frozen=True)
class _Crypto:
    ed25519: Any
    serialization: Any
    invalid_signature: type[Exception]
    unsupported: type[Exception]


def _crypto() -> _Crypto:
    """The ``cryptography`` modules, or UL813: every use goes through here, so a missing package is a diagnostic."""
    try:
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:  # the `audit` extra is not installed
        raise SigningError("UL813", "signing needs the `cryptography` package",
                           ["pip install 'unlearnspec[audit]'"]) from err
    return _Crypto(ed25519, serialization, InvalidSignature, UnsupportedAlgorithm)


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _file_bytes(data: dict[str, Any]) -> bytes:
    """The signature file's exact bytes for what it holds (verify compares byte for byte)."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True).encode("ascii") + b"\n"


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``O_CREAT | O_EXCL`` (where hard links are not supported), removed again if the write
    fails: never over another file, never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def _install(path: Path, data: bytes, mode: int, *, replace: bool = False) -> None:
    """Write ``data`` to ``path`` in full or not at all (a temporary file beside it, fsynced, mode set before it
    gets its name). Without ``replace`` nothing at ``path`` is overwritten, not even a dangling link: the finished
    file is hard-linked to its name, which fails with :class:`FileExistsError` when the name is taken, so two
    writers at once never replace each other's file. With ``replace`` the entry at ``path`` is replaced: a link
    itself, never the file it names."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError as err:
            if err.errno not in _LINK_UNSUPPORTED:
                raise
            _write_exclusive(path, data, mode)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def keygen(out: Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair: ``out`` (private, PEM PKCS#8, mode 0600) and ``out.pub`` (public PEM), both created
    exclusively: an existing file is never overwritten, and when ``out.pub`` turns out to be taken the private key
    just written is removed again."""
    c = _crypto()
    if not out.name or out.is_dir():
        raise SigningError("UL813", f"{code_span(out)} is {'a folder' if out.name else 'no file name'}",
                           ["give --out a file path for the private key, e.g. `--out keys/signer`"])
    pub_path = out.with_name(out.name + ".pub")
    taken = ["keys are never overwritten; choose another --out"]
    for p in (out, pub_path):
        if os.path.lexists(p):
            raise SigningError("UL813", f"{code_span(p)} already exists", taken)
    key = c.ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(c.serialization.Encoding.PEM, c.serialization.PrivateFormat.PKCS8,
                                c.serialization.NoEncryption())
    public = key.public_key().public_bytes(c.serialization.Encoding.PEM,
                                           c.serialization.PublicFormat.SubjectPublicKeyInfo)
    written: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _install(out, private, 0o600)
        written = out
        mine = os.lstat(out)
        _install(pub_path, public, 0o644)
    except FileExistsError as err:  # another keygen took the name between the check and the write
        if written is not None:
            now = os.lstat(written)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                os.unlink(written)
        raise SigningError("UL813", f"{code_span(err.filename or pub_path)} already exists", taken) from err
    except OSError as err:
        raise SigningError("UL813", f"cannot write the key {code_span(out)}: {err.strerror or err}",
                           ["give --out a path in a folder you can write to"]) from err
    return out, pub_path


def _load(path: Path, private: bool) -> Any:
    c = _crypto()
    kind = "private" if private else "public"
    try:
        with open_regular(path) as fh:
            data = fh.read(MAX_KEY_BYTES + 1)
            mode = os.fstat(fh.fileno()).st_mode
    except OSError as err:
        raise SigningError("UL813", f"cannot read the {kind} key {code_span(path)}: {err.strerror or err}") from err
    if private and os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError("UL813", f"the private key {code_span(path)} is readable by others (mode {stat.S_IMODE(mode):04o})",
                           [f"chmod 600 {path}"])
    try:
        if len(data) > MAX_KEY_BYTES:
            raise ValueError("too large for a key")
        key = (c.serialization.load_pem_private_key(data, password=None) if private
               else c.serialization.load_pem_public_key(data))
    except c.unsupported as err:  # a key of an algorithm or curve `cryptography` does not know: not a ValueError
        raise SigningError("UL813", f"{code_span(path)} is not an Ed25519 {kind} key: {str(err) or 'an unknown algorithm'}",
                           ["make a key pair with `unlearnspec keygen --out KEY`"]) from err
    except TypeError as err:  # a passphrase-protected key: `sign` asks for no passphrase
        raise SigningError("UL813", f"the private key {code_span(path)} is encrypted with a passphrase",
                           ["`sign` reads an unencrypted PKCS#8 key as `unlearnspec keygen --out KEY` writes it (mode "
                            "0600)"]) from err
    except ValueError as err:
        raise SigningError("UL813", f"{code_span(path)} is not a PEM {kind} key",
                           ["make a key pair with `unlearnspec keygen --out KEY`; sign with KEY, "
                            "verify with KEY.pub"]) from err
    expected = c.ed25519.Ed25519PrivateKey if private else c.ed25519.Ed25519PublicKey
    if not isinstance(key, expected):
        raise SigningError("UL813", f"{code_span(path)} is not an Ed25519 {kind} key")
    return key


def _fingerprint(public_key: Any) -> str:
    s = _crypto().serialization
    return hashlib.sha256(public_key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)).hexdigest()


def _read_required(run_dir: Path, name: str) -> bytes:
    try:
        return read_regular(run_dir / name)
    except OSError as err:
        raise SigningError("UL812", f"{code_span(run_dir)} has no {code_span(name)}" if isinstance(err, FileNotFoundError)
                           else f"cannot read {code_span(run_dir / name)}: {err.strerror or err}",
                           ["sign and verify a run folder written by `unlearnspec run`"]) from err


REPORTS = ("report.json", "report.md", "report.html")


def check_finished(run_dir: Path, state: bytes | None = None) -> None:
    """UL812 unless the run in ``run_dir`` finished: ``run.json`` (``state``: its bytes, already read) records when,
    and report.json, report.md and report.html are all there. A run killed while it wrote its reports has some of
    them and no finish time; its resume writes them again, so what was signed or carded would not last."""
    help_ = [f"finish the run first: `unlearnspec run --resume {run_dir}`", "then sign it, or make its card"]
    try:
        held = load_json((state if state is not None else read_regular(run_dir / "run.json")).decode("utf-8"))
    except OSError as err:
        raise SigningError("UL812", f"{code_span(run_dir)} has no readable `run.json` ({err.strerror or err}): it is not a "
                                    "run folder as `unlearnspec run` writes one",
                           ["sign or card a run folder written by `unlearnspec run`"]) from err
    except ValueError as err:
        raise SigningError("UL812", f"{code_span(run_dir / 'run.json')} is not readable JSON: the run folder was edited",
                           ["sign or card a run folder exactly as `unlearnspec run` wrote it"]) from err
    finished = held.get("finished_at") if isinstance(held, dict) else None
    if not isinstance(finished, str) or not finished:
        raise SigningError("UL812", f"the run in {code_span(run_dir)} has not finished: run.json records no finish time (it "
                                    "was stopped while it wrote its reports, or before)", help_)
    missing = [name for name in REPORTS if not (run_dir / name).is_file()]
    if missing:
        raise SigningError("UL812", f"{code_span(run_dir)} lacks {', '.join(code_span(m) for m in missing)}: a finished run has "
                                    "all three reports", ["restore the run folder as `unlearnspec run` wrote it"])


# -- signing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """What ``sign`` wrote: the signature file, the manifest it signs, and what the signer should know."""

    path: Path
    files: dict[str, str | None]
    warnings: list[str] = field(default_factory=list)


def _printable(rel: str) -> str:
    """A file name for a message: bytes that are not UTF-8 (kept as surrogates) and control characters escaped, so a
    name can neither fail the output nor fake a line of it."""
    text = rel.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _check_target(out: Path, force: bool) -> None:
    """UL814 unless the signature can be written at ``out``: nothing there, or (``force``) a file or a link."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    help_ = ["`unlearnspec verify RUN_DIR --pub KEY.pub` checks the signature that is there; "
             "`sign --force` replaces it"]
    if stat.S_ISLNK(st.st_mode):
        if not force:
            raise SigningError("UL814", f"{code_span(out)} is a link (to {code_span(os.readlink(out))}): `sign` never writes through it",
                               ["remove the link, or `sign --force` replaces the link itself (never the file it "
                                "names)"])
    elif not stat.S_ISREG(st.st_mode):
        raise SigningError("UL814", f"{code_span(out)} is there and is not a file", ["remove it and sign again"])
    elif not force:
        raise SigningError("UL814", f"{code_span(out)} already exists: `sign` never replaces a signature unasked", help_)


def _check_run(run_dir: Path, plan_bytes: bytes, report_bytes: bytes) -> tuple[Plan, Report]:
    """A signature vouches that this report came from this plan: refuse to sign a plan that does not load or whose
    content no longer hashes to its ``plan_hash``, a report that is not a report, or a report that is not a report
    of this plan (:func:`~unlearnspec.audit.consistency.plan_mismatches`). The checks read the bytes that are signed."""
    help_ = ["sign the run folder exactly as `unlearnspec run` wrote it"]
    where = f"cannot sign {code_span(run_dir)}"
    try:
        loaded = Plan.load(run_dir / "plan.json")  # the one loader: format version, shape, diagnostics
        plan = Plan.model_validate(load_json(plan_bytes.decode("utf-8")))  # the very bytes that are hashed
    except PlanLoadError as err:
        raise SigningError("UL812", f"{where}: {err.message}", help_) from err
    except (ValueError, ValidationError) as err:
        raise SigningError("UL812", f"{where}: `plan.json` changed while it was read", help_) from err
    if plan != loaded:
        raise SigningError("UL812", f"{where}: `plan.json` changed while it was read", help_)
    if plan.plan_hash != plan.compute_hash():
        raise SigningError("UL812", f"{where}: `plan.json` no longer hashes to its `plan_hash` "
                                    "(it was edited after it was planned)", help_)
    try:
        report = Report.model_validate_json(report_bytes)
    except ValidationError as err:
        at, why = first_problem(err, "the top level")
        raise SigningError("UL812", f"{where}: `report.json` is not a valid report ({at}: {why})", help_) from err
    if report.audit.plan_hash != plan.plan_hash:
        raise SigningError("UL812", f"{where}: `report.json` was made from plan {report.audit.plan_hash[:12]}…, "
                                    f"not from the `plan.json` beside it ({plan.plan_hash[:12]}…)", help_)
    mismatches = plan_mismatches(plan, report)
    if mismatches:
        raise SigningError("UL812", f"{where}: `report.json` is not a report of the `plan.json` beside it: "
                                    f"{mismatches[0]}", [*mismatches[1:6], *help_])
    return plan, report


def _check_recorded(run_dir: Path, report: Report, files: dict[str, str | None]) -> None:
    """Refuse a report whose record of a run-folder file (generations, the unlearned model) is not the file there."""
    for o in report.objectives:
        recorded = [(o.generations.path, o.generations.sha256, False)] if o.generations else []
        recorded += [(m.path, m.sha256, m.role == "unlearned") for m in o.models if m.role in ("unlearned", "filter")]
        for path, sha, folder in recorded:
            rel = in_run_folder(path)
            if rel is None:  # outside the run folder: covered by the hash report.json records
                continue
            now = folder_sha256(files, rel) if folder else files.get(rel)
            if now != sha:
                what = "it is not in the run folder" if now is None else f"it hashes to {now[:12]}…"
                raise SigningError("UL812", f"cannot sign {code_span(run_dir)}: `report.json` records {code_span(rel)} with sha256 "
                                            f"{sha[:12]}…, but {what}",
                                   ["a file the report is about was changed after the run; sign the run folder "
                                    "exactly as `unlearnspec run` wrote it"])


def sign(run_dir: Path, key_path: Path, *, force: bool = False) -> Signed:
    """Sign a run folder: its report and plan (which must go together: :func:`_check_run`) and every file of
    :func:`~unlearnspec.audit.manifest.manifest`. With ``force`` an existing signature file (or a link in its
    place) is replaced."""
    key = _load(key_path, private=True)
    out = run_dir / SIGNATURE_FILE
    read = {name: _read_required(run_dir, name) for name in ("report.json", "plan.json", "run.json")}
    check_finished(run_dir, read["run.json"])
    _check_target(out, force)
    plan, report = _check_run(run_dir, read["plan.json"], read["report.json"])
    try:
        files = manifest(run_dir, read)
    except OSError as err:
        raise SigningError("UL812", f"cannot sign {code_span(run_dir)}: cannot read {code_span(err.filename)}: {err.strerror or err}",
                           ["every file of the run folder is signed: make each readable"]) from err
    _check_recorded(run_dir, report, files)
    warnings = []
    skipped = unlisted(run_dir)
    if skipped:
        warnings.append("not covered by the signature (hidden entries, links to folders and special files are never "
                        "signed; `verify` lists them too): " + ", ".join(code_span(_printable(rel)) for rel in skipped[:8])
                        + (f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""))
    if report.audit.plan_provenance == "trusted":
        warnings.append("the plan was run as given (`run --trust-plan`): it was not re-derived from its spec, so "
                        "the signature vouches for the files, not for the plan following from the spec")
    fields: dict[str, Any] = {"format_version": SIGNATURE_VERSION, "algorithm": ALGORITHM, "files": files,
                              "plan_hash": plan.plan_hash, "key_sha256": _fingerprint(key.public_key())}
    signature = base64.b64encode(key.sign(_canonical(fields))).decode("ascii")
    try:
        _install(out, _file_bytes({**fields, "signature": signature}), 0o644, replace=force)
    except FileExistsError as err:
        raise SigningError("UL814", f"{code_span(out)} appeared while the run was signed: it was not replaced",
                           ["check who else signs this run folder; `sign --force` replaces it"]) from err
    except OSError as err:
        raise SigningError("UL814", f"cannot write {code_span(out)}: {err.strerror or err}",
                           ["sign a run folder you can write to"]) from err
    return Signed(out, files, warnings)


# -- verifying ---------------------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``verify`` found: every reason the signature does not hold (``problems``; empty: it verifies), the
    signature's format and key, the files it covers (``None``: recorded as absent, and still absent) and the files
    of the run folder it does not cover."""

    problems: list[Problem]
    version: str = ""
    key_sha256: str = ""
    files: dict[str, str | None] = field(default_factory=dict)
    not_covered: list[str] = field(default_factory=list)


def _line_of(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(f'"{key}"'):
            return i
    return 0


def _hex(value: object) -> str:
    """The first 16 characters of a digest to show, or `?` for anything else (never a control character)."""
    return value[:16] if isinstance(value, str) and re.fullmatch(r"[0-9a-f]*", value) else "?"


def _covered(held: dict[str, Any], version: str) -> dict[str, str | None] | None:
    """The files a well-formed signature covers, by their signed digests; ``None`` when its fields are not what
    ``sign`` writes (a wrong type, a path that leaves the run folder, report.json or plan.json not named)."""
    if held.get("algorithm") != ALGORITHM or not is_digest(held.get("key_sha256")):
        return None
    if not isinstance(held.get("plan_hash"), str) or not isinstance(held.get("signature"), str):
        return None
    files: Any = ({"report.json": held.get("report_sha256"), "plan.json": held.get("plan_sha256")} if version == "1"
                  else held.get("files"))
    if not isinstance(files, dict) or not all(safe_rel(k) and (v is None or is_digest(v)) for k, v in files.items()):
        return None
    if not (is_digest(files.get("report.json")) and is_digest(files.get("plan.json"))):
        return None
    return files


def _file_problem(run_dir: Path, rel: str, signed: str | None, plan_hash: str) -> Problem | None:
    path = run_dir / rel
    if signed is None:
        if os.path.lexists(path):
            return Problem("UL811", 0, f"{code_span(rel)} was added after signing: the signature records that the run folder "
                                       "had none", ("what it holds now is not what was signed off",), rel)
        return None
    linked = next((parent for parent in PurePosixPath(rel).parents
                   if parent != PurePosixPath(".") and (run_dir / parent).is_symlink()), None)
    if linked is not None:  # `sign` never follows a link to a folder: the folder was replaced by one after signing
        return Problem("UL811", 0, f"{code_span(rel)} was signed in the run folder, but {code_span(linked.as_posix())} is now a "
                                   "link to a folder", ("a folder of the run was replaced by a link after signing: what "
                                                        "it holds can change without the run folder changing",), rel)
    try:
        if rel == "plan.json":  # read once: its digest and the plan hash it records
            data = read_regular(path)
            now = hashlib.sha256(data).hexdigest()
        else:
            now = file_sha256(path)
    except OSError:
        return Problem("UL811", 0, f"{code_span(rel)} was signed but is missing or not a file now",
                       ("a file was removed or replaced after signing",), rel)
    if now != signed:
        return Problem("UL811", 0, f"{code_span(rel)} changed after it was signed: its bytes no longer match",
                       (f"signed sha256 {signed[:16]}…, now {now[:16]}…",), rel)
    if rel == "plan.json":
        try:
            recorded = load_json(data.decode("utf-8")).get("plan_hash", "")
        except (ValueError, AttributeError):
            recorded = ""
        if recorded != plan_hash:
            return Problem("UL811", 0, "`plan.json` changed after it was signed: the plan hash it records no longer "
                                       "match", (f"signed plan_hash {_hex(plan_hash)}…, now {_hex(recorded)}…",),
                           "plan.json")
    return None


def verify_run(run_dir: Path, pub_path: Path) -> Verification:
    """Check the run folder's signature offline with the public key ``pub_path``: what it covers and every reason
    it does not hold. Raises :class:`SigningError` for an unusable key or a folder without a signature, report or
    plan (UL812, UL813: exit 2)."""
    c = _crypto()
    public = _load(pub_path, private=False)
    sig_path = run_dir / SIGNATURE_FILE
    if not sig_path.is_file():
        raise SigningError("UL812", f"{code_span(run_dir)} has no signature file {code_span(SIGNATURE_FILE)}",
                           [f"unlearnspec sign {run_dir} --key KEY"])
    for name in ("report.json", "plan.json"):
        if not (run_dir / name).is_file():
            raise SigningError("UL812", f"{code_span(run_dir)} has no {code_span(name)}",
                               ["sign and verify a run folder written by `unlearnspec run`"])
    name = SIGNATURE_FILE
    changed = ("the signature file was changed after signing",)
    try:
        raw = read_regular(sig_path, limit=MAX_SIGNATURE_BYTES)
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise ValueError("larger than any signature file `sign` writes")
        text = raw.decode("ascii")
        held = load_json(text)  # depth-limited: a file nested thousands deep is unreadable, not a crash
        if not isinstance(held, dict):
            raise ValueError("not an object")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, UnicodeDecodeError):
            why = f"byte {err.start + 1} is not ASCII text"
        elif isinstance(err, json.JSONDecodeError):
            why = f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg[:1].lower() + err.msg[1:]})"
        elif isinstance(err, OSError):
            why = err.strerror or "it cannot be read"
        else:
            why = str(err).splitlines()[0]
        return Verification([Problem("UL811", 1, f"the signature file is not readable: {why}", changed, name)])
    version = held.get("format_version")
    if not isinstance(version, str) or version not in SIGNED_FIELDS:
        return Verification([Problem("UL811", _line_of(text, "format_version"),
                                     "the signature file's format is not one this unlearnspec verifies (1 or 2)",
                                     ("a newer unlearnspec wrote it, or it was changed after signing",), name)])
    problems: list[Problem] = []
    files = _covered(held, version)
    if files is None or set(held) != {*SIGNED_FIELDS[version], "signature"} or _file_bytes(held) != raw:
        problems.append(Problem("UL811", 1, "the signature file is not as `unlearnspec sign` wrote it",
                                ("a byte of the signature file was changed after signing",), name))
    for rel, signed in (files or {}).items():
        found = _file_problem(run_dir, rel, signed, str(held.get("plan_hash")))
        if found is not None:
            problems.append(found)
    key_sha = _fingerprint(public)
    if held.get("key_sha256") != key_sha:
        problems.append(Problem("UL811", _line_of(text, "key_sha256"),
                                f"the run was signed with another key than {code_span(pub_path.name)}",
                                (f"signed by key {_hex(held.get('key_sha256'))}…, this public key is "
                                 f"{key_sha[:16]}…",), name))
    try:
        encoded = held.get("signature")
        if not isinstance(encoded, str) or not _BASE64.fullmatch(encoded):
            raise ValueError("not base64")
        signature = base64.b64decode(encoded, validate=True)
        if base64.b64encode(signature).decode("ascii") != encoded:  # unused trailing bits were changed
            raise ValueError("not the canonical base64 of the signature")
        public.verify(signature, _canonical({k: held.get(k) for k in SIGNED_FIELDS[version]}))
    except (c.invalid_signature, ValueError):
        problems.append(Problem("UL811", _line_of(text, "signature"),
                                f"the signature does not verify with {code_span(pub_path.name)}",
                                ("the signature file or a signed field was changed, or another key signed it",),
                                name))
    covered = files or {}
    present, outside = run_files(run_dir)
    added = [rel for rel in present if rel not in covered]
    if version != "1" and files is not None:  # a manifest lists every file below objectives/ that there was
        problems += [Problem("UL811", 0, f"{code_span(rel)} was added after signing: the signature lists every file "
                                         "below `objectives/` the run folder had, and not this one",
                             ("a file added to an objective's evidence or to its model's folder changes what a "
                              "reviewer reads or what loads; remove it, or sign the run folder again",), rel)
                     for rel in added if rel.startswith(EVIDENCE)]
    not_covered = added + outside
    return Verification(problems, version, key_sha if not problems else "", covered, not_covered)


def verify(run_dir: Path, pub_path: Path) -> list[Problem]:
    """Every reason the run's signature does not hold (empty: it verifies); see :func:`verify_run`."""
    return verify_run(run_dir, pub_path).problems


__all__ = ["ALGORITHM", "REPORTS", "REVIEWED", "SIGNATURE_FILE", "SIGNATURE_VERSION", "Signed", "SigningError",
           "Verification", "check_finished", "keygen", "sign", "verify", "verify_run"]
