"""Detached Ed25519 signatures over a run's report and plan (the ``cryptography`` package).

``sign`` writes ``RUN_DIR/report.sig.json``: the sha256 of ``report.json``'s bytes, the sha256 of
``plan.json``'s bytes, the plan hash the plan records, the signing key's fingerprint (sha256 of its
raw public key) and the Ed25519 signature over the canonical JSON of those fields. ``verify`` is
offline: it recomputes the digests from the files, checks that the signature file is exactly the
canonical form of what it holds (so no byte of it can change unnoticed), and checks the signature
with the public key given. Any changed byte of the report, the plan or the signature file fails.

Keys are PEM: the private key PKCS#8 (written with mode 0600, and refused for signing when others can
read it), the public key SubjectPublicKeyInfo in ``KEY.pub``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from unlearnspec.audit.problems import Problem
from unlearnspec.inputs import first_problem
from unlearnspec.io import atomic_write_bytes
from unlearnspec.plan import Plan, PlanLoadError
from unlearnspec.report.model import Report

SIGNATURE_FILE = "report.sig.json"
SIGNATURE_VERSION = "1"
ALGORITHM = "ed25519"
SIGNED_FIELDS = ("format_version", "algorithm", "report_sha256", "plan_sha256", "plan_hash", "key_sha256")


class SigningError(Exception):
    """A key or run folder that cannot be used: a code, a message and help lines (exit 2)."""

    def __init__(self, code: str, message: str, help: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help or []


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:  # the `audit` extra is not installed
        raise SigningError("UL813", "signing needs the `cryptography` package",
                           ["pip install 'unlearnspec[audit]'"]) from err
    return ed25519


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _file_bytes(data: dict[str, Any]) -> bytes:
    """The signature file's exact bytes for what it holds (verify compares byte for byte)."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True).encode("ascii") + b"\n"


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key: created 0600 (never readable by others, not even for a moment), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def keygen(out: Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair: ``out`` (private, PEM PKCS#8, mode 0600) and ``out.pub`` (public PEM)."""
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    if not out.name or out.is_dir():
        raise SigningError("UL813", f"`{out}` is {'a folder' if out.name else 'no file name'}",
                           ["give --out a file path for the private key, e.g. `--out keys/signer`"])
    pub_path = out.with_name(out.name + ".pub")
    for p in (out, pub_path):
        if p.exists():
            raise SigningError("UL813", f"`{p}` already exists", ["keys are never overwritten; choose another --out"])
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_private(out, private)
    atomic_write_bytes(pub_path, public)
    return out, pub_path


def _load(path: Path, private: bool) -> Any:
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    kind = "private" if private else "public"
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SigningError("UL813", f"cannot read the {kind} key `{path}`: {err.strerror}") from err
    if private and os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError("UL813", f"the private key `{path}` is readable by others "
                                    f"(mode {stat.S_IMODE(path.stat().st_mode):04o})",
                           [f"chmod 600 {path}"])
    try:
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as err:
        raise SigningError("UL813", f"`{path}` is not a PEM {kind} key",
                           ["make a key pair with `unlearnspec keygen --out KEY`; sign with KEY, "
                            "verify with KEY.pub"]) from err
    expected = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, expected):
        raise SigningError("UL813", f"`{path}` is not an Ed25519 {kind} key")
    return key


def _fingerprint(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _digests(run_dir: Path) -> dict[str, str]:
    """sha256 of report.json and plan.json, and the plan hash plan.json records."""
    report, plan = run_dir / "report.json", run_dir / "plan.json"
    for p in (report, plan):
        if not p.is_file():
            raise SigningError("UL812", f"`{run_dir}` has no `{p.name}`",
                               ["sign and verify a run folder written by `unlearnspec run`"])
    plan_bytes = plan.read_bytes()
    try:
        plan_hash = json.loads(plan_bytes).get("plan_hash", "")
    except (ValueError, AttributeError):
        plan_hash = ""
    return {"report_sha256": hashlib.sha256(report.read_bytes()).hexdigest(),
            "plan_sha256": hashlib.sha256(plan_bytes).hexdigest(),
            "plan_hash": plan_hash if isinstance(plan_hash, str) else ""}


def _check_run(run_dir: Path) -> None:
    """A signature vouches that this report came from this plan: refuse to sign a plan that does not load
    or whose content no longer hashes to its ``plan_hash``, a report that is not a report, or a report
    made from another plan."""
    from pydantic import ValidationError

    help_ = ["sign the run folder exactly as `unlearnspec run` wrote it"]
    try:
        plan = Plan.load(run_dir / "plan.json")
    except PlanLoadError as err:
        raise SigningError("UL812", f"cannot sign `{run_dir}`: {err.message}", help_) from err
    if plan.plan_hash != plan.compute_hash():
        raise SigningError("UL812", f"cannot sign `{run_dir}`: `plan.json` no longer hashes to its `plan_hash` "
                                    "(it was edited after it was planned)", help_)
    try:
        report = Report.model_validate_json((run_dir / "report.json").read_bytes())
    except ValidationError as err:
        where, why = first_problem(err, "the top level")
        raise SigningError("UL812", f"cannot sign `{run_dir}`: `report.json` is not a valid report "
                                    f"({where}: {why})", help_) from err
    if report.audit.plan_hash != plan.plan_hash:
        raise SigningError("UL812", f"cannot sign `{run_dir}`: `report.json` was made from plan "
                                    f"{report.audit.plan_hash[:12]}…, not from the `plan.json` beside it "
                                    f"({plan.plan_hash[:12]}…)", help_)


def sign(run_dir: Path, key_path: Path) -> Path:
    """Sign a run folder's report and plan; returns the signature file. The two must go together
    (:func:`_check_run`)."""
    key = _load(key_path, private=True)
    _digests(run_dir)  # both files are there
    _check_run(run_dir)
    fields: dict[str, Any] = {"format_version": SIGNATURE_VERSION, "algorithm": ALGORITHM, **_digests(run_dir),
                              "key_sha256": _fingerprint(key.public_key())}
    signature = key.sign(_canonical(fields))
    out = run_dir / SIGNATURE_FILE
    atomic_write_bytes(out, _file_bytes({**fields, "signature": base64.b64encode(signature).decode("ascii")}))
    return out


def _line_of(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(f'"{key}"'):
            return i
    return 0


def verify(run_dir: Path, pub_path: Path) -> list[Problem]:
    """Every reason the run's signature does not hold (empty: it verifies)."""
    from cryptography.exceptions import InvalidSignature

    public = _load(pub_path, private=False)
    digests = _digests(run_dir)
    sig_path = run_dir / SIGNATURE_FILE
    if not sig_path.is_file():
        raise SigningError("UL812", f"`{run_dir}` has no signature file `{SIGNATURE_FILE}`",
                           [f"unlearnspec sign {run_dir} --key KEY"])
    raw = sig_path.read_bytes()
    name = SIGNATURE_FILE
    try:
        text = raw.decode("ascii")
        held = json.loads(text)
        if not isinstance(held, dict):
            raise ValueError("not an object")
    except (UnicodeDecodeError, ValueError) as err:
        if isinstance(err, UnicodeDecodeError):
            why = f"byte {err.start + 1} is not ASCII text"
        elif isinstance(err, json.JSONDecodeError):
            why = f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg[:1].lower() + err.msg[1:]})"
        else:
            why = str(err).splitlines()[0]
        return [Problem("UL811", 1, f"the signature file is not readable: {why}",
                        ("the signature file was changed after signing",), name)]
    problems: list[Problem] = []
    if set(held) != {*SIGNED_FIELDS, "signature"} or _file_bytes(held) != raw:
        problems.append(Problem("UL811", 1, "the signature file is not as `unlearnspec sign` wrote it",
                                ("a byte of the signature file was changed after signing",), name))
    for field, file in (("report_sha256", "report.json"), ("plan_sha256", "plan.json"), ("plan_hash", "plan.json")):
        if held.get(field) != digests[field]:
            what = "the plan hash it records" if field == "plan_hash" else "its bytes"
            problems.append(Problem("UL811", 0, f"`{file}` changed after it was signed: {what} no longer match",
                                    (f"signed {field} {str(held.get(field))[:16]}…, now {digests[field][:16]}…",),
                                    file))
    if held.get("key_sha256") != _fingerprint(public):
        problems.append(Problem("UL811", _line_of(text, "key_sha256"),
                                f"the run was signed with another key than `{pub_path.name}`",
                                (f"signed by key {str(held.get('key_sha256'))[:16]}…, this public key is "
                                 f"{_fingerprint(public)[:16]}…",), name))
    fields = {k: held.get(k) for k in SIGNED_FIELDS}
    try:
        encoded = str(held.get("signature", ""))
        signature = base64.b64decode(encoded, validate=True)
        if base64.b64encode(signature).decode("ascii") != encoded:  # unused trailing bits were changed
            raise ValueError("not the canonical base64 of the signature")
        public.verify(signature, _canonical(fields))
    except (InvalidSignature, ValueError):
        problems.append(Problem("UL811", _line_of(text, "signature"),
                                f"the signature does not verify with `{pub_path.name}`",
                                ("the signature file or a signed field was changed, or another key signed it",),
                                name))
    return problems
