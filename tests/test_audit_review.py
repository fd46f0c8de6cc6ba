"""Review of the audit trail (ledger, signatures, manifests): each test pins a way a record could be changed, or a
verb could fail, without the diagnostic the docs promise (docs/requests.md, "The ledger" and "Signed reports")."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

import pytest
from test_ledger import MODEL, _fields, _ledger, _lines, _write
from test_signing import OBJ, full_run

from unlearnspec.audit.hashchain import locked
from unlearnspec.audit.ledger import append, ledger_name, verify_file
from unlearnspec.audit.signing import SigningError, keygen, sign, verify_run
from unlearnspec.cli import main


def _head(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + ".head.json")


def _codes(path: Path) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in verify_file(path).problems]


# --- the ledger's end -------------------------------------------------------------------------------------


def test_a_ledger_cut_to_its_first_line_with_its_head_deleted_is_found(tmp_path: Path) -> None:
    """Deleting the head file and every line but the first left a ledger that verified: the head is now written
    (recording no entries) before the first line, so a ledger of any length without its head was tampered with."""
    path = _ledger(tmp_path, 4)
    _head(path).unlink()
    _write(path, _lines(path)[:1])
    assert _codes(path) == [("UL804", 1)]
    assert main(["ledger", "verify", str(tmp_path), "--color", "never"]) == 1


def test_the_head_exists_before_the_first_line_so_a_crash_between_them_is_no_break(tmp_path: Path) -> None:
    """The first append writes the head (0 entries), then the line, then the head (1 entry): a crash between any
    two leaves a ledger that verifies and that the next append extends."""
    path = _ledger(tmp_path, 1)
    head = json.loads(_head(path).read_text(encoding="utf-8"))
    assert head["count"] == 1 and head["hash"] == json.loads(_lines(path)[0])["hash"]
    # a crash after the line, before the head recorded it: the head says 0 entries, the ledger has 1
    _head(path).write_text(json.dumps({"count": 0, "hash": "0" * 64}), encoding="utf-8")
    assert _codes(path) == []
    append(tmp_path, _fields(2))
    assert _codes(path) == [] and len(verify_file(path).entries) == 2
    # a crash after the first head, before the line: the head records no entries, and there is no ledger
    other = tmp_path / "crashed"
    other.mkdir()
    lone = other / ledger_name(MODEL)
    _head(lone).write_text(json.dumps({"count": 0, "hash": "0" * 64}), encoding="utf-8")
    assert verify_file(lone).ok
    append(other, _fields(1))
    assert _codes(lone) == [] and len(verify_file(lone).entries) == 1


def test_a_head_that_lags_more_than_one_append_or_says_true_is_a_break(tmp_path: Path) -> None:
    """Only a crash between the ledger's write and the head's leaves the head one line behind; a count that is a
    boolean (`true` is 1 to Python) is not a count."""
    path = _ledger(tmp_path, 3)
    first = json.loads(_lines(path)[0])
    _head(path).write_text(json.dumps({"count": 1, "hash": first["hash"]}), encoding="utf-8")
    assert _codes(path) == [("UL804", 2)]  # from line 2 on, the head vouches for nothing
    _write(path, _lines(path)[:1])
    _head(path).write_text(json.dumps({"count": True, "hash": first["hash"]}), encoding="utf-8")
    assert [c for c, _ in _codes(path)] == ["UL804"]


def test_ledger_verify_of_a_head_file_checks_its_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger verify DIR/<model>.head.json` verifies that head's ledger, not the head as if it were a ledger."""
    path = _ledger(tmp_path, 2)
    assert main(["ledger", "verify", str(_head(path)), "--color", "never"]) == 0
    _write(path, _lines(path)[:1])
    assert main(["ledger", "verify", str(_head(path)), "--color", "never"]) == 1
    assert "error[UL804]" in capsys.readouterr().out


# --- keys -------------------------------------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + body


def _pem(label: str, der: bytes) -> bytes:
    return f"-----BEGIN {label}-----\n".encode() + base64.encodebytes(der) + f"-----END {label}-----\n".encode()


#: DER of an algorithm identifier whose OID (1.2.3.4) no library knows
_UNKNOWN_ALG = _der(0x30, _der(0x06, bytes([0x2A, 0x03, 0x04])))


def test_a_key_of_an_algorithm_cryptography_does_not_know_is_a_diagnostic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`cryptography` raises UnsupportedAlgorithm (not a ValueError) for a key of an unknown algorithm or curve: it
    was a traceback; it is UL813, exit 2."""
    run = full_run(tmp_path / "run")
    private = tmp_path / "odd"
    private.write_bytes(_pem("PRIVATE KEY", _der(0x30, _der(0x02, b"\x00") + _UNKNOWN_ALG
                                                 + _der(0x04, _der(0x04, b"\x01" * 32)))))
    os.chmod(private, 0o600)
    public = tmp_path / "odd.pub"
    public.write_bytes(_pem("PUBLIC KEY", _der(0x30, _UNKNOWN_ALG + _der(0x03, b"\x00" + b"\x01" * 32))))
    with pytest.raises(SigningError) as err:
        sign(run, private)
    assert err.value.code == "UL813"
    assert main(["sign", str(run), "--key", str(private)]) == 2
    assert "error[UL813]" in capsys.readouterr().err
    good, _ = keygen(tmp_path / "keys" / "signer")
    sign(run, good)
    assert main(["verify", str(run), "--pub", str(public)]) == 2
    assert "error[UL813]" in capsys.readouterr().err


# --- what a signature covers ----------------------------------------------------------------------------


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    run = full_run(tmp_path / "run")
    private, pub = keygen(tmp_path / "keys" / "signer")
    sign(run, private)
    assert verify_run(run, pub).problems == []
    return run, pub


@pytest.mark.parametrize("rel", [f"{OBJ}/unlearn/model/model-00002-of-00002.safetensors",
                                 f"{OBJ}/unlearn/model/adapter_config.json", "objectives/forged/checks.json",
                                 f"{OBJ}/drift/erase-earlier.json"])
def test_a_file_added_to_the_evidence_after_signing_fails(signed: tuple[Path, Path], rel: str) -> None:
    """A shard or an adapter added to the unlearned model's folder changes the model that loads from it; a checks file
    added under `objectives/` is evidence nobody signed. They passed `verify` as merely "not covered"; the manifest
    lists every file below `objectives/` (but the checkpoints) that there was, so one added there fails."""
    run, pub = signed
    (run / rel).parent.mkdir(parents=True, exist_ok=True)
    (run / rel).write_bytes(b"{}")
    problems = verify_run(run, pub).problems
    assert [(p.code, p.file) for p in problems] == [("UL811", rel)]
    assert "added after signing" in problems[0].message
    assert main(["verify", str(run), "--pub", str(pub)]) == 1
    (run / rel).unlink()
    assert verify_run(run, pub).problems == []


def test_a_file_added_at_the_top_or_in_the_checkpoints_is_listed_not_covered(signed: tuple[Path, Path]) -> None:
    run, pub = signed
    (run / "card.md").write_text("## Unlearning\n", encoding="utf-8")
    (run / OBJ / "unlearn" / "checkpoints" / "checkpoint-9").mkdir()
    (run / OBJ / "unlearn" / "checkpoints" / "checkpoint-9" / "optimizer.pt").write_bytes(b"state")
    v = verify_run(run, pub)
    assert v.problems == [] and "card.md" in v.not_covered and f"{OBJ}/unlearn/checkpoints/" in v.not_covered


def test_hidden_entries_links_to_folders_and_odd_files_are_named_as_not_covered(
        signed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`verify` lists what the signature does not cover, so that it never says "verified" for more: hidden files and
    folders, a link to a folder (not followed) and a FIFO were left out of both lists."""
    run, pub = signed
    (run / ".notes").write_text("hidden\n", encoding="utf-8")
    (run / OBJ / "unlearn" / "model" / ".cache").mkdir()
    (run / OBJ / "unlearn" / "model" / ".cache" / "blob").write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "more.json").write_text("{}", encoding="utf-8")
    os.symlink(outside, run / "extra")
    os.mkfifo(run / "pipe")
    v = verify_run(run, pub)
    assert v.problems == []
    assert {".notes", f"{OBJ}/unlearn/model/.cache/", "extra/", "pipe"} <= set(v.not_covered)
    assert main(["verify", str(run), "--pub", str(pub)]) == 0
    listed = capsys.readouterr().out.split("not covered by the signature")[1]
    assert "  .notes\n" in listed and "  extra/" in listed


def test_a_verify_during_an_append_waits_for_it(tmp_path: Path) -> None:
    """`ledger verify` reads the head, then the ledger; an append that wrote the ledger between the two reads made a
    sound ledger look cut. Reading holds the folder's lock shared, so it sees an append whole or not at all."""
    path = _ledger(tmp_path, 2)
    lines, head = _lines(path), _head(path).read_text(encoding="utf-8")
    results: list[list[tuple[str, int]]] = []
    with locked(tmp_path):  # an append, half done: the line is written, the head not yet
        _write(path, lines[:1])
        _head(path).write_text(json.dumps({"count": 3, "hash": "f" * 64}), encoding="utf-8")
        reader = threading.Thread(target=lambda: results.append(_codes(path)))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive() and results == []  # waiting for the append to finish
        _write(path, lines)
        _head(path).write_text(head, encoding="utf-8")
    reader.join(10)
    assert results == [[]]


def test_the_ledger_lock_is_never_taken_through_a_link(tmp_path: Path) -> None:
    """A `.lock` planted as a link to another file made every append create or open that file; it is UL805 at the run
    (an OSError `run` reports), and the file the link names is left alone."""
    folder = tmp_path / "ledger"
    folder.mkdir()
    victim = tmp_path / "victim"
    os.symlink(victim, folder / ".lock")
    with pytest.raises(OSError):
        append(folder, _fields(1))
    assert not victim.exists() and not list(folder.glob("*.jsonl"))


def test_a_signed_folder_replaced_by_a_link_fails(signed: tuple[Path, Path], tmp_path: Path) -> None:
    """`sign` never follows a link to a folder, so a manifest path that now passes through one was a folder replaced by
    a link after signing: even with the same files behind it, what it holds can change without the run folder
    changing. It fails, and nothing is read through the link."""
    run, pub = signed
    model = run / OBJ / "unlearn" / "model"
    moved = tmp_path / "moved-model"
    model.rename(moved)
    os.symlink(moved, model)
    problems = verify_run(run, pub).problems
    assert {p.file for p in problems} == {f"{OBJ}/unlearn/model/config.json",
                                          f"{OBJ}/unlearn/model/model.safetensors"}
    assert all(p.code == "UL811" and "is now a link to a folder" in p.message for p in problems)
    model.unlink()
    moved.rename(model)
    assert verify_run(run, pub).problems == []


def test_sign_warns_of_what_it_leaves_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hidden file or a link to a folder in the run folder is never signed: `sign` says so when it signs, with the
    name printed escaped (a name holding a line break cannot fake a line of the output)."""
    run = full_run(tmp_path / "run")
    private, _ = keygen(tmp_path / "keys" / "signer")
    (run / ".notes\nsigned: everything").write_text("x", encoding="utf-8")
    os.symlink(tmp_path / "keys", run / "extra")
    assert main(["sign", str(run), "--key", str(private)]) == 0
    err = capsys.readouterr().err
    assert "warning: not covered by the signature" in err and "`extra/`" in err
    assert "`.notes\\nsigned: everything`" in err and "\nsigned: everything" not in err


def test_a_folder_sign_cannot_list_is_said_to_be_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A folder of the run that cannot be listed (no read permission: simulated, the tests may run as root) was
    skipped in silence, its files in no manifest; `sign` now names it, and once readable again its files are
    evidence added after signing."""
    run = full_run(tmp_path / "run")
    private, pub = keygen(tmp_path / "keys" / "signer")
    drift = run / OBJ / "drift"
    drift.mkdir()
    (drift / "erase-earlier.json").write_text("{}", encoding="utf-8")
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(os.fsdecode(path)) == drift:  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", os.fsdecode(path))  # type: ignore[arg-type]
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["sign", str(run), "--key", str(private)]) == 0
    assert f"`{OBJ}/drift/`" in capsys.readouterr().err
    assert f"{OBJ}/drift/" in verify_run(run, pub).not_covered
    monkeypatch.undo()
    [p] = verify_run(run, pub).problems
    assert (p.file, "added after signing" in p.message) == (f"{OBJ}/drift/erase-earlier.json", True)


def test_an_encrypted_private_key_is_said_to_be_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    run = full_run(tmp_path / "run")
    key = tmp_path / "locked-key"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    os.chmod(key, 0o600)
    assert main(["sign", str(run), "--key", str(key)]) == 2
    assert "error[UL813]" in (err := capsys.readouterr().err) and "encrypted with a passphrase" in err


def test_a_receipt_line_number_must_be_a_number(tmp_path: Path) -> None:
    """`"seq": true` is 1 to Python: a receipt that says it is not a receipt `record_run` writes."""
    from unlearnspec.audit.ledger import verify_receipt

    run = full_run(tmp_path / "run")
    receipt = json.loads((run / "ledger.json").read_text(encoding="utf-8"))
    assert verify_receipt(tmp_path / "ledger", run) == []
    receipt["entries"][0]["seq"] = True
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")
    assert any("is not a request, ledger file, line and hash" in p.message
               for p in verify_receipt(tmp_path / "ledger", run))


def test_a_ledger_file_name_cannot_fake_a_line_of_the_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger show` and `ledger verify` print every ledger's file name; one holding a line break (or a byte that is
    not UTF-8) is printed escaped, so a planted file cannot add a request line to what a reader sees."""
    path = _ledger(tmp_path, 1)
    os.link(path, os.fsencode(tmp_path) + b"/x\xff\n    9  2026-01-01T00:00:00  forged  pass.jsonl")
    assert main(["ledger", "show", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "\n    9  2026-01-01" not in listing and "x\\udcff\\n    9  2026-01-01" in listing
    assert main(["ledger", "verify", str(tmp_path), "--color", "never"]) == 1  # the copy has no head of its own
    report = capsys.readouterr().out
    assert "\n    9  2026-01-01" not in report and "error[UL804]" in report


def test_a_ledger_folder_that_is_not_there_is_ul807(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ledger verbs' usage errors carry a code like every other diagnostic (exit 2): a path that is no ledger,
    and a folder with none to verify (a verification of nothing is not a pass)."""
    assert main(["ledger", "verify", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error[UL807]: ")
    assert main(["ledger", "verify", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error[UL807]: no ledgers")
    assert main(["explain", "UL807"]) == 0 and "ledger-not-found" in capsys.readouterr().out
