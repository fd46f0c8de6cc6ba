"""Signed reports: keygen, sign and verify round trip; any changed byte of the report, the plan or the
signature is caught, and so is another key; the audit verbs never import torch."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fixtures.frontend import ROOT
from test_report import make_plan, make_report

from unlearnspec.audit.signing import SIGNATURE_FILE, SigningError, keygen, sign, verify
from unlearnspec.cli import main


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    (d / "report.json").write_text(make_report().model_dump_json(indent=2) + "\n", encoding="utf-8")
    (d / "plan.json").write_text(make_plan().canonical_json(), encoding="utf-8")
    return d


@pytest.fixture
def key(tmp_path: Path) -> Path:
    private, _ = keygen(tmp_path / "keys" / "signer")
    return private


def test_keygen_writes_a_private_pem_only_its_owner_reads_and_a_public_pem(key: Path) -> None:
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(key.with_name("signer.pub").read_bytes())
    assert isinstance(private, Ed25519PrivateKey) and isinstance(public, Ed25519PublicKey)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert private.public_key().public_bytes(*raw) == public.public_bytes(*raw)
    with pytest.raises(SigningError):  # never overwrites a key
        keygen(key)


def test_round_trip_and_the_signature_is_ed25519_over_the_documented_fields(run_dir: Path, key: Path) -> None:
    sig_path = sign(run_dir, key)
    assert verify(run_dir, key.with_name("signer.pub")) == []
    # Independent check with the cryptography package: the signed message is the compact, sorted JSON
    # of the digests of the two files, the plan hash and the key fingerprint.
    held = json.loads(sig_path.read_text())
    public = serialization.load_pem_public_key(key.with_name("signer.pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    fields = {
        "format_version": "1", "algorithm": "ed25519",
        "report_sha256": hashlib.sha256((run_dir / "report.json").read_bytes()).hexdigest(),
        "plan_sha256": hashlib.sha256((run_dir / "plan.json").read_bytes()).hexdigest(),
        "plan_hash": make_plan().plan_hash,
        "key_sha256": hashlib.sha256(public.public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)).hexdigest(),
    }
    public.verify(base64.b64decode(held["signature"]),
                  json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())


def _positions(size: int, every: bool) -> list[int]:
    if every:
        return list(range(size))
    step = max(1, size // 150)
    return sorted({*range(0, size, step), size - 1})


@pytest.mark.parametrize("name", ["report.json", "plan.json", SIGNATURE_FILE])
def test_flipping_any_byte_is_detected(run_dir: Path, key: Path, name: str) -> None:
    sign(run_dir, key)
    pub = key.with_name("signer.pub")
    path = run_dir / name
    original = path.read_bytes()
    every = name == SIGNATURE_FILE  # the small file: every byte; the others: ~150 spread over the file
    for i in _positions(len(original), every):
        for flip in ((0x01,) if every else (0x01, 0x20)):
            changed = bytearray(original)
            changed[i] ^= flip
            path.write_bytes(bytes(changed))
            assert verify(run_dir, pub), f"{name}: flipping byte {i} (^{flip:#x}) went unnoticed"
    path.write_bytes(original)
    assert verify(run_dir, pub) == []


def test_an_unreadable_signature_file_says_why_in_words(run_dir: Path, key: Path) -> None:
    sign(run_dir, key)
    pub = key.with_name("signer.pub")
    path = run_dir / SIGNATURE_FILE
    original = path.read_bytes()
    path.write_bytes(original[:5] + "é".encode() + original[5:])
    [p] = verify(run_dir, pub)
    assert p.code == "UL811" and p.message == "the signature file is not readable: byte 6 is not ASCII text"
    path.write_bytes(original[:-3])
    [p] = verify(run_dir, pub)
    assert p.message.startswith("the signature file is not readable: not valid JSON (line ")


def test_another_key_is_detected(run_dir: Path, key: Path, tmp_path: Path) -> None:
    sign(run_dir, key)
    _, other_pub = keygen(tmp_path / "other")
    messages = [p.message for p in verify(run_dir, other_pub)]
    assert any("signed with another key" in m for m in messages)
    assert any("does not verify" in m for m in messages)


def test_verbs_round_trip_and_tamper_gives_a_diagnostic(run_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k"
    assert main(["keygen", "--out", str(key)]) == 0
    assert main(["sign", str(run_dir), "--key", str(key)]) == 0
    assert main(["verify", str(run_dir), "--pub", f"{key}.pub"]) == 0
    capsys.readouterr()
    report = run_dir / "report.json"
    report.write_text(report.read_text().replace('"pass"', '"fail"', 1))
    assert main(["verify", str(run_dir), "--pub", f"{key}.pub", "--color", "never"]) == 1
    text = capsys.readouterr().out
    assert "error[UL811]: `report.json` changed after it was signed" in text
    assert "report.json:1:1" in text


def test_unusable_keys_and_folders_are_usage_errors(run_dir: Path, key: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    os.chmod(key, 0o644)
    assert main(["sign", str(run_dir), "--key", str(key)]) == 2
    assert "error[UL813]" in capsys.readouterr().err and not (run_dir / SIGNATURE_FILE).exists()
    os.chmod(key, 0o600)
    assert main(["sign", str(run_dir), "--key", f"{key}.pub"]) == 2  # a public key cannot sign
    assert main(["verify", str(run_dir), "--pub", f"{key}.pub"]) == 2  # nothing signed yet: UL812
    assert "error[UL812]" in capsys.readouterr().err
    assert main(["sign", str(tmp_path), "--key", str(key)]) == 2  # not a run folder


def test_audit_verbs_leave_torch_unloaded(run_dir: Path, tmp_path: Path) -> None:
    code = f"""
import contextlib, io, json, sys
from unlearnspec.cli import main
key = {str(tmp_path / "k2")!r}
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes = [main(["keygen", "--out", key]), main(["sign", {str(run_dir)!r}, "--key", key]),
             main(["verify", {str(run_dir)!r}, "--pub", key + ".pub"]),
             main(["ledger", "show", {str(tmp_path)!r}]), main(["card", {str(run_dir)!r}])]
print(json.dumps({{"codes": codes, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in
                 ("torch", "transformers", "peft", "accelerate", "numpy", "scipy", "sklearn"))}}))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["codes"] == [0, 0, 0, 0, 0]


def test_sign_refuses_a_run_folder_whose_report_and_plan_do_not_go_together(run_dir: Path, key: Path) -> None:
    """A signature says "this report came from this plan": a plan that is not JSON, a plan edited after it
    was hashed, a report that is not a report and a report of another plan are refused (UL812) and no
    signature file is written."""
    plan_text = (run_dir / "plan.json").read_text(encoding="utf-8")
    report_text = (run_dir / "report.json").read_text(encoding="utf-8")
    edited = json.loads(plan_text)
    edited["seed"] = edited.get("seed", 0) + 1  # content changed, plan_hash kept
    other = json.loads(report_text)
    other["audit"]["plan_hash"] = "f" * 64
    cases = [("plan.json", "{", "not valid JSON"), ("plan.json", json.dumps(edited), "no longer hashes"),
             ("report.json", "[]", "not a valid report"), ("report.json", json.dumps(other), "was made from plan")]
    for name, text, why in cases:
        (run_dir / "plan.json").write_text(plan_text, encoding="utf-8")
        (run_dir / "report.json").write_text(report_text, encoding="utf-8")
        (run_dir / name).write_text(text, encoding="utf-8")
        with pytest.raises(SigningError) as err:
            sign(run_dir, key)
        assert err.value.code == "UL812" and why in err.value.message, (name, err.value.message)
        assert not (run_dir / SIGNATURE_FILE).exists()
