"""Signed reports: keygen, sign and verify round trip; any changed byte of the report, the plan or the
signature is caught, and so is another key; the audit verbs never import torch."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fixtures.frontend import ROOT
from test_report import make_plan, make_report, passing_results

from unlearnspec.audit.ledger import record_run
from unlearnspec.audit.signing import SIGNATURE_FILE, SigningError, keygen, sign, verify, verify_run
from unlearnspec.cli import main
from unlearnspec.plan import FileHash, Plan, Threshold
from unlearnspec.records import sha256_path
from unlearnspec.report import build_objective_report, build_report, render_html, render_markdown
from unlearnspec.report.model import Report

#: the files a reviewer reads first, named in every manifest (docs/requests.md, signed reports)
REVIEWED = ("report.json", "plan.json", "report.md", "report.html", "run.json", "ledger.json")
OBJ = "objectives/erase-jane-doe"
WEIGHTS = f"{OBJ}/unlearn/model/model.safetensors"


def full_run(d: Path, report: Report | None = None, plan: Plan | None = None) -> Path:
    """A run folder as `unlearnspec run` writes one, small: the report in its three forms, the plan, run.json, the
    log and lock, the ledger receipt, the objective's checks, generations, unlearned model and a training checkpoint;
    the report records the generations' and the model's hashes (:func:`records.sha256_path`)."""
    plan = plan or make_plan()
    report = report or make_report()
    obj = d / OBJ
    (obj / "unlearn" / "model").mkdir(parents=True)
    (obj / "unlearn" / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    (obj / "unlearn" / "checkpoints" / "checkpoint-5" / "optimizer.pt").write_bytes(b"optimizer state")
    (obj / "checks.json").write_text('{"membership_auc@forget": {}}\n', encoding="utf-8")
    (obj / "generations.jsonl").write_text('{"prompt": "Jane Doe was born in", "output": "a city"}\n', encoding="utf-8")
    (d / WEIGHTS).write_bytes(b"weights " * 100)
    (obj / "unlearn" / "model" / "config.json").write_text('{"model_type": "tiny"}', encoding="utf-8")
    o = report.objectives[0].model_copy(update={
        "generations": FileHash(path=f"{OBJ}/generations.jsonl", sha256=sha256_path(obj / "generations.jsonl"),
                                role="generations"),
        "models": [FileHash(path="builtin:tiny-bios", sha256="7" * 64, role="original"),
                   FileHash(path=f"{OBJ}/unlearn/model", sha256=sha256_path(obj / "unlearn" / "model"),
                            role="unlearned")]})
    report = report.model_copy(update={"objectives": [o, *report.objectives[1:]]})
    (d / "report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (d / "plan.json").write_text(plan.canonical_json(), encoding="utf-8")
    (d / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (d / "report.html").write_text(render_html(report), encoding="utf-8")
    (d / "run.json").write_text('{"format_version": "1.1", "stages": {}, "finished_at": "2026-01-02T03:04:05Z"}\n',
                                encoding="utf-8")  # a finished run: sign and card refuse one whose finish was cut short
    (d / "run.log").write_text("run started\n", encoding="utf-8")
    (d / "run.lock").write_text("4242\n", encoding="utf-8")
    record_run(d.parent / "ledger", d, plan, report, {})  # the receipt, ledger.json
    return d


def expected_manifest(d: Path) -> dict[str, str | None]:
    """The manifest `sign` is documented to sign, computed here without the code under test: every file below the run
    folder but the signature, run.lock, hidden entries and the training checkpoints; null for a reviewed file
    that is not there."""
    files: dict[str, str | None] = dict.fromkeys(REVIEWED)
    for root, dirs, names in os.walk(d):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for name in names:
            rel = (Path(root) / name).relative_to(d).as_posix()
            if name.startswith(".") or rel in (SIGNATURE_FILE, "run.lock") or "/unlearn/checkpoints/" in rel:
                continue
            files[rel] = hashlib.sha256((Path(root) / name).read_bytes()).hexdigest()
    return files


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return full_run(tmp_path / "run")


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
    signed = sign(run_dir, key)
    assert verify(run_dir, key.with_name("signer.pub")) == []
    # Independent check with the cryptography package: the signed message is the compact, sorted JSON of the
    # format, the manifest of the run folder's files (sha256 of each; null for a reviewed file it lacks), the plan
    # hash and the key fingerprint.
    held = json.loads(signed.path.read_text())
    public = serialization.load_pem_public_key(key.with_name("signer.pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    fields = {
        "format_version": "2", "algorithm": "ed25519", "files": expected_manifest(run_dir),
        "plan_hash": make_plan().plan_hash,
        "key_sha256": hashlib.sha256(public.public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)).hexdigest(),
    }
    assert {k: held[k] for k in fields} == fields
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


@pytest.mark.parametrize("cut", ["reports", "finished_at", "report.md", "report.html", "run.json"])
def test_sign_and_card_refuse_a_run_whose_finish_was_cut_short(run_dir: Path, key: Path, cut: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A run killed while it wrote its reports has report.json, maybe not report.md, and no finish time in run.json;
    its resume writes the reports again (new timestamps), so a signature or a card made now would not last. UL812,
    exit 2, nothing written; once the run has finished, both go ahead."""
    state_path = run_dir / "run.json"
    finished = state_path.read_bytes()
    kept = {name: (run_dir / name).read_bytes() for name in ("report.md", "report.html")}
    state = json.loads(finished)
    if cut in ("reports", "finished_at"):  # "reports": killed after report.json, before report.md
        state["finished_at"] = None
        state_path.write_text(json.dumps(state), encoding="utf-8")
    if cut in ("reports", "report.md", "report.html", "run.json"):
        (run_dir / ("report.md" if cut == "reports" else cut)).unlink()
    with pytest.raises(SigningError) as info:
        sign(run_dir, key)
    assert info.value.code == "UL812"
    said = {"reports": "has not finished", "finished_at": "has not finished", "run.json": "`run.json`"}
    assert said.get(cut, f"`{cut}`") in info.value.message, info.value.message
    assert not (run_dir / SIGNATURE_FILE).exists()
    for argv in (["sign", str(run_dir), "--key", str(key)], ["card", str(run_dir)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "error[UL812]" in err and "Traceback" not in err, err
        if cut in ("reports", "finished_at"):
            assert f"unlearnspec run --resume {run_dir}" in err
    assert not (run_dir / SIGNATURE_FILE).exists()
    state_path.write_bytes(finished)  # the resume finished it: every report written, the finish time recorded
    for name, data in kept.items():
        (run_dir / name).write_bytes(data)
    assert sign(run_dir, key).files["run.json"] == hashlib.sha256(finished).hexdigest()
    assert main(["card", str(run_dir)]) == 0


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


# --- what a signature covers (format 2: a manifest of the run folder) ---------------------------------------

def _change(d: Path, rel: str) -> None:
    p = d / rel
    p.write_bytes(p.read_bytes() + b" ")


@pytest.mark.parametrize("rel", ["report.md", "report.html", "run.json", "ledger.json", "run.log", f"{OBJ}/checks.json",
                                 f"{OBJ}/generations.jsonl", WEIGHTS, f"{OBJ}/unlearn/model/config.json"])
def test_every_file_a_reviewer_relies_on_is_covered(run_dir: Path, key: Path, rel: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The sign-off document, the HTML report, the run's state, the receipt, the log, the checks, the generations and
    the unlearned model's files: a changed byte or a removed file fails `verify` (exit 1) at that file."""
    sign(run_dir, key)
    pub = key.with_name("signer.pub")
    original = (run_dir / rel).read_bytes()
    _change(run_dir, rel)
    [p] = verify(run_dir, pub)
    assert (p.code, p.file) == ("UL811", rel) and "changed after it was signed" in p.message
    assert main(["verify", str(run_dir), "--pub", str(pub), "--color", "never"]) == 1
    assert f"error[UL811]: `{rel}` changed after it was signed" in capsys.readouterr().out
    (run_dir / rel).unlink()
    [p] = verify(run_dir, pub)
    assert p.file == rel and "missing" in p.message
    (run_dir / rel).write_bytes(original)
    assert verify(run_dir, pub) == []


def test_a_reviewed_file_absent_when_signed_must_stay_absent(tmp_path: Path, key: Path) -> None:
    """A run folder signed without a ledger receipt (a `--no-ledger` run): a ledger.json added later is not what was
    signed off, and fails."""
    d = full_run(tmp_path / "run")
    (d / "ledger.json").unlink()
    signed = sign(d, key)
    assert signed.files["ledger.json"] is None
    pub = key.with_name("signer.pub")
    assert verify(d, pub) == []
    (d / "ledger.json").write_text('{"ledger": "elsewhere", "entries": []}\n', encoding="utf-8")
    [p] = verify(d, pub)
    assert p.file == "ledger.json" and "was added after signing" in p.message


def test_verify_says_what_it_does_not_cover(run_dir: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file added after signing (a card written into the run folder), run.lock and the training checkpoints are
    outside the signature: `verify` passes, lists exactly the signed files and names those it does not cover."""
    sign(run_dir, key)
    (run_dir / "card.md").write_text("## Unlearning\n", encoding="utf-8")
    _change(run_dir, "run.lock")
    _change(run_dir, f"{OBJ}/unlearn/checkpoints/checkpoint-5/optimizer.pt")
    v = verify_run(run_dir, key.with_name("signer.pub"))
    assert v.problems == [] and v.version == "2"
    assert v.files == {k: val for k, val in expected_manifest(run_dir).items() if k != "card.md"}
    assert set(v.not_covered) == {"card.md", "run.lock", f"{OBJ}/unlearn/checkpoints/"}
    assert main(["verify", str(run_dir), "--pub", str(key.with_name("signer.pub"))]) == 0
    text = capsys.readouterr().out
    covered, outside = text.split("not covered by the signature")
    assert all(f"  {rel}\n" in covered for rel in v.files) and "card.md" not in covered
    assert "  card.md\n" in outside and f"  {OBJ}/unlearn/checkpoints/\n" in outside


def _format_1_signature(d: Path, key: Path) -> None:
    """A signature as the first format wrote it (report.json and plan.json), made here with `cryptography` alone."""
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fields = {"format_version": "1", "algorithm": "ed25519",
              "report_sha256": hashlib.sha256((d / "report.json").read_bytes()).hexdigest(),
              "plan_sha256": hashlib.sha256((d / "plan.json").read_bytes()).hexdigest(),
              "plan_hash": json.loads((d / "plan.json").read_text())["plan_hash"],
              "key_sha256": hashlib.sha256(raw).hexdigest()}
    signature = private.sign(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    held = {**fields, "signature": base64.b64encode(signature).decode()}
    (d / SIGNATURE_FILE).write_text(json.dumps(held, sort_keys=True, indent=2) + "\n", encoding="ascii")


def test_a_format_1_signature_is_verified_as_covering_report_and_plan_only(
        run_dir: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An old signature still verifies, but never for more than it covers: report.md and the model are named as
    not covered, and a changed report.md does not make it fail (nor pass for report.md)."""
    _format_1_signature(run_dir, key)
    pub = key.with_name("signer.pub")
    v = verify_run(run_dir, pub)
    assert v.problems == [] and v.version == "1" and set(v.files) == {"report.json", "plan.json"}
    assert {"report.md", "report.html", WEIGHTS, "ledger.json"} <= set(v.not_covered)
    _change(run_dir, "report.md")
    assert main(["verify", str(run_dir), "--pub", str(pub)]) == 0
    text = capsys.readouterr().out
    assert "covers report.json and plan.json only (signature format 1)" in text
    assert "  report.md\n" in text.split("not covered by the signature")[1]
    _change(run_dir, "report.json")
    assert [p.file for p in verify(run_dir, pub)] == ["report.json"]


def test_a_manifest_that_names_a_path_outside_the_run_folder_is_refused_unread(run_dir: Path, key: Path) -> None:
    sign(run_dir, key)
    path = run_dir / SIGNATURE_FILE
    held = json.loads(path.read_text())
    for bad in ("../outside.txt", "/etc/hostname", "a/../report.json", ".hidden", ""):
        held["files"] = {**{k: v for k, v in held["files"].items() if v}, bad: "0" * 64}
        path.write_text(json.dumps(held, sort_keys=True, indent=2) + "\n", encoding="ascii")
        problems = verify(run_dir, key.with_name("signer.pub"))
        assert any(p.message == "the signature file is not as `unlearnspec sign` wrote it" for p in problems), bad
        assert not any(p.file == bad for p in problems), bad  # the path was never read


# --- what `sign` checks before it signs ---------------------------------------------------------------------

def _report_of(plan: Plan, vouched: Plan) -> Report:
    """A report made from ``plan`` that claims to be of ``vouched`` (its plan hash)."""
    base = make_report()
    o = build_objective_report(plan.objectives[0], passing_results())
    return base.model_copy(update={"objectives": [o], "overall": o.overall,
                                   "audit": base.audit.model_copy(update={"plan_hash": vouched.plan_hash})})


def _rebuilt(report: Report) -> Report:
    return Report.model_validate_json(build_report(report.objectives, report.audit).model_dump_json())


def test_sign_refuses_a_report_that_names_its_plan_but_is_not_its_report(tmp_path: Path, key: Path) -> None:
    """The report must be the plan's report, not only name its hash: a claim deleted, a bound changed, the model's,
    the spec's or an input's hash changed are refused (UL812), and nothing is signed."""
    plan = make_plan()
    base = make_report()
    fewer = plan.objectives[0].model_copy(update={"claims": plan.objectives[0].claims[:1]})
    looser = plan.objectives[0].model_copy(update={"checks": [
        c.model_copy(update={"threshold": Threshold(op="<=", value=0.99)}) if c.id == "membership_auc@forget" else c
        for c in plan.objectives[0].checks]})
    audit = base.audit
    cases = {
        "claims": _report_of(plan.model_copy(update={"objectives": [fewer]}), plan),
        "bound": _report_of(plan.model_copy(update={"objectives": [looser]}), plan),
        "source model's hash": base.model_copy(update={"audit": audit.model_copy(update={"model_sha256": "0" * 64})}),
        "spec's sha256": base.model_copy(update={"audit": audit.model_copy(update={"spec_sha256": "0" * 64})}),
        "input files' hashes": base.model_copy(update={"audit": audit.model_copy(update={"inputs": []})}),
    }
    for i, (why, report) in enumerate(cases.items()):
        d = full_run(tmp_path / f"run{i}", _rebuilt(report), plan)
        with pytest.raises(SigningError) as err:
            sign(d, key)
        text = " ".join([err.value.message, *err.value.help])
        assert err.value.code == "UL812" and "is not a report of the `plan.json` beside it" in text, why
        assert why in text, (why, text)
        assert not (d / SIGNATURE_FILE).exists()


def test_sign_refuses_a_file_that_is_not_the_one_the_report_records(run_dir: Path, key: Path) -> None:
    for rel in (f"{OBJ}/generations.jsonl", WEIGHTS):
        original = (run_dir / rel).read_bytes()
        _change(run_dir, rel)
        with pytest.raises(SigningError) as err:
            sign(run_dir, key)
        assert err.value.code == "UL812" and "`report.json` records" in err.value.message
        assert not (run_dir / SIGNATURE_FILE).exists()
        (run_dir / rel).write_bytes(original)
    sign(run_dir, key)


def test_a_plan_run_as_given_is_signed_with_a_warning(tmp_path: Path, key: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = make_report()
    trusted = base.model_copy(update={"audit": base.audit.model_copy(update={"plan_provenance": "trusted"})})
    d = full_run(tmp_path / "run", trusted)
    assert main(["sign", str(d), "--key", str(key)]) == 0
    assert "warning: the plan was run as given (`run --trust-plan`)" in capsys.readouterr().err


# --- where the signature is written -------------------------------------------------------------------------

def test_sign_never_writes_through_a_link_nor_replaces_a_signature_unasked(
        run_dir: Path, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (run_dir / SIGNATURE_FILE).symlink_to(victim)
    assert main(["sign", str(run_dir), "--key", str(key)]) == 2
    assert "error[UL814]" in capsys.readouterr().err and victim.read_text(encoding="utf-8") == "precious\n"
    assert main(["sign", str(run_dir), "--key", str(key), "--force"]) == 0  # the link itself is replaced
    assert victim.read_text(encoding="utf-8") == "precious\n" and not (run_dir / SIGNATURE_FILE).is_symlink()
    assert verify(run_dir, key.with_name("signer.pub")) == []
    before = (run_dir / SIGNATURE_FILE).read_bytes()
    _, other = keygen(tmp_path / "other")
    assert main(["sign", str(run_dir), "--key", str(tmp_path / "other")]) == 2
    assert "error[UL814]" in capsys.readouterr().err and (run_dir / SIGNATURE_FILE).read_bytes() == before
    assert main(["sign", str(run_dir), "--key", str(tmp_path / "other"), "--force"]) == 0
    assert verify(run_dir, other) == [] and verify(run_dir, key.with_name("signer.pub"))


def _keygen_worker(out: str, go: Any, results: Any) -> None:
    go.wait()
    try:
        keygen(Path(out))
        results.put("made")
    except SigningError as err:
        results.put(err.code)


def test_concurrent_keygens_never_leave_a_key_and_a_pub_of_two_pairs(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(3):
        out = tmp_path / f"k{attempt}"
        go, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_keygen_worker, args=(str(out), go, results)) for _ in range(6)]
        for p in procs:
            p.start()
        go.set()
        for p in procs:
            p.join(30)
        outcomes = sorted(results.get(timeout=5) for _ in procs)
        assert outcomes.count("made") <= 1 and set(outcomes) <= {"made", "UL813"}, outcomes
        if "made" in outcomes:
            private = serialization.load_pem_private_key(out.read_bytes(), password=None)
            public = serialization.load_pem_public_key(Path(f"{out}.pub").read_bytes())
            raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
            assert isinstance(private, Ed25519PrivateKey) and isinstance(public, Ed25519PublicKey)
            assert private.public_key().public_bytes(*raw) == public.public_bytes(*raw)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


# --- bad input is a diagnostic, never a traceback -------------------------------------------------------------

def test_signing_verbs_without_cryptography_say_so(run_dir: Path, key: Path, tmp_path: Path) -> None:
    code = f"""
import contextlib, io, json, sys
sys.modules["cryptography"] = None  # the `audit` extra is not installed: every import of it fails
from unlearnspec.cli import main
err = io.StringIO()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
    codes = [main(["keygen", "--out", {str(tmp_path / "new")!r}]), main(["sign", {str(run_dir)!r}, "--key", {str(key)!r}]),
             main(["verify", {str(run_dir)!r}, "--pub", {str(key) + ".pub"!r}]),
             main(["card", {str(run_dir)!r}, "--pub", {str(key) + ".pub"!r}])]
print(json.dumps({{"codes": codes, "err": err.getvalue()}}))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["codes"] == [2, 2, 2, 2]
    assert result["err"].count("error[UL813]: signing needs the `cryptography` package") == 4
    assert not (tmp_path / "new").exists() and not (run_dir / SIGNATURE_FILE).exists()


@pytest.mark.parametrize("body", ["[" * 100_000, '{"format_version": "2", "files": ' + "[" * 5000 + "]" * 5000 + "}",
                                  '{"format_version": 2}', '{"format_version": "2", "files": {"report.json": 5}}'])
def test_a_deep_or_badly_typed_signature_file_is_a_diagnostic(run_dir: Path, key: Path, body: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / SIGNATURE_FILE).write_text(body, encoding="ascii")
    assert main(["verify", str(run_dir), "--pub", f"{key}.pub", "--color", "never"]) == 1
    assert "error[UL811]" in capsys.readouterr().out
