"""The model-card section: a golden for the demo report, each claim's verdict and evidence in its row,
the findings as what is not claimed, what decided each check (the deciding quantity with its own interval
and n, never the decided model's beside it), the checks' findings, the version that made the run, and
hostile spec strings that stay text."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from test_report import make_plan, make_report, passing_results, result
from test_signing import full_run

from unlearnspec import __version__
from unlearnspec.audit.card import card_for_run, render_card
from unlearnspec.audit.signing import keygen, sign
from unlearnspec.catalog import CODES
from unlearnspec.cli import main
from unlearnspec.plan import FileHash, PlanFinding, Threshold
from unlearnspec.report.model import CheckResult, Decision

GOLDEN = Path(__file__).parent / "golden" / "card" / "erase-jane-doe.md"
UPDATE = os.environ.get("UNLEARNSPEC_UPDATE_GOLDENS") == "1"


def _rows(text: str) -> list[list[str]]:
    """Table rows split on unescaped pipes."""
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in text.splitlines() if line.startswith("|")]


def _card(run: Path, **checks: Path) -> str:
    card = card_for_run(run, **checks)
    assert card.text is not None, card.problems
    return card.text


def test_card_matches_its_golden() -> None:
    text = render_card(make_report())
    if UPDATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "UNLEARNSPEC_UPDATE_GOLDENS=1 pytest tests/test_card.py"


def test_each_claim_row_carries_its_verdict_and_its_checks() -> None:
    report = make_report()
    text = render_card(report)
    rows = {cells[0].strip(): cells for cells in _rows(text) if cells[0].strip().startswith("`")}
    obj = report.objectives[0]
    by_id = {c.check_id: c for c in obj.checks}
    assert len(rows) == len(obj.claims)
    for cv in obj.claims:
        cells = next(v for k, v in rows.items() if k.startswith(f"`{cv.claim}"))
        assert cv.verdict.upper().replace("_", " ") in cells[1]
        for cid in cv.checks:  # every deciding check's value is in the evidence cell
            value = by_id[cid].value
            assert value is not None and f"{value:g}" in cells[2]


def test_what_is_not_claimed_lists_unmet_and_unverifiable_claims_with_their_findings() -> None:
    report = make_report()
    text = render_card(report)
    section = text.split("#### Not claimed, and why", 1)[1]
    plan = make_plan()
    for claim in plan.objectives[0].claims:
        if claim.status == "supported":
            continue
        line = next(ln for ln in section.splitlines() if ln.startswith(f"- `{claim.claim}"))
        assert ("cannot be met" if claim.status == "cannot_be_met" else "cannot be fully verified") in line
        for code in claim.reasons:
            assert code in line
    for f in plan.objectives[0].findings:
        if f.accepted:
            words = CODES[f.code].name.replace("-", " ")  # the catalog's name of the code, in words
            assert f"{f.code} ({words}), a risk the reviewers accepted" in section and str(f.justification) in section
    assert "not a compliance proof" in text.lower() and "arXiv:2412.06966" in text


def test_hostile_spec_strings_stay_text() -> None:
    hostile = "<script>alert(1)</script> [click](http://evil.example) | `x` \n# Heading ![i](x)"
    report = make_report(title=hostile)
    obj = report.objectives[0]
    target = obj.target.model_copy(update={"name": hostile, "aliases": [hostile]})
    findings = [f.model_copy(update={"message": hostile, "justification": hostile}) for f in obj.findings]
    obj = obj.model_copy(update={"basis": hostile, "owner": hostile, "target": target, "findings": findings})
    text = render_card(report.model_copy(update={"objectives": [obj]}))
    prose = re.sub(r"(?<!\\)`[^`\n]*(?<!\\)`", "", text)  # code spans show their text literally
    assert not re.search(r"(?<!\\)<", prose), "raw HTML would reach the model card"
    assert not re.search(r"(?<!\\)\]\(", prose), "a link would reach the model card"
    assert not any(line.startswith("# Heading") for line in text.splitlines())
    widths = {len(cells) for cells in _rows(text)}
    assert widths == {3}, widths  # no hostile pipe splits a table row


def test_card_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    report = make_report()
    (run / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    for name in ("report.md", "report.html"):
        (run / name).write_text("the report\n", encoding="utf-8")
    (run / "run.json").write_text('{"stages": {}, "finished_at": "2026-01-02T03:04:05Z"}\n', encoding="utf-8")
    (run / "report.sig.json").write_text('{"key_sha256": "' + "e" * 64 + '"}', encoding="utf-8")  # forged
    assert main(["card", str(run), "-o", str(tmp_path / "card.md")]) == 0
    text = (tmp_path / "card.md").read_text(encoding="utf-8")
    assert text == card_for_run(run).text and "eeeeeeeeeeeeeeee" not in text  # nothing from an unchecked file
    assert "it was not verified when this card was made" in text and "The run is signed" not in text
    capsys.readouterr()
    # `card` only reads the run folder: no output anywhere inside it, a new file or one of its evidence files
    (run / "objectives" / "x").mkdir(parents=True)
    (run / "objectives" / "x" / "checks.json").write_text("{}\n", encoding="utf-8")
    (run / "ledger.json").write_text('{"entries": []}\n', encoding="utf-8")
    for target in ("card.md", "report.json", "ledger.json", "objectives/x/checks.json", "objectives/new.md"):
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        assert main(["card", str(run), "-o", str(run / target)]) == 2, target
        err = capsys.readouterr().err
        assert "error[UL715]" in err and "inside the run folder" in err and "Traceback" not in err, err
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing written or replaced
    link = tmp_path / "into-run"
    link.symlink_to(run)  # through a link to the run folder: still inside it
    assert main(["card", str(run), "-o", str(link / "card.md")]) == 2 and not (run / "card.md").exists()
    assert "error[UL715]" in capsys.readouterr().err
    data = report.model_dump(mode="json")
    data["objectives"][0]["claims"][0]["verdict"] = "fail"  # no longer follows from its checks
    (run / "report.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["card", str(run)]) == 2
    err = capsys.readouterr().err
    # the first problem and where it is, not pydantic's closing link to its documentation
    assert "is not a valid report: objectives.0" in err and "errors.pydantic.dev" not in err
    assert "Value error" not in err  # our own validators' words, without pydantic's prefix
    for version, why in (("9", "report format `9` is newer than this unlearnspec reads (1.x)"),
                         ("0.3", "report format `0.3` is not one this unlearnspec reads (1.x)"),
                         ("one", "report format `one` is not a version number")):
        data = report.model_dump(mode="json") | {"format_version": version}  # another format's report: not misread
        (run / "report.json").write_text(json.dumps(data), encoding="utf-8")
        assert main(["card", str(run)]) == 2
        assert f"is not a valid report: format_version: {why}" in capsys.readouterr().err
    assert main(["card", str(tmp_path / "nope")]) == 2


# --- what decided a check -----------------------------------------------------------------------------

def _g(x: float) -> str:
    """Three significant digits, written out here rather than through the code under test."""
    return f"{x:.3g}"


def _cell(text: str, claim: str) -> str:
    """The evidence cell of ``claim``'s row."""
    return next(cells[2] for cells in _rows(text) if cells[0].strip().startswith(f"`{claim}"))


def _decided_results(**overrides: CheckResult) -> dict[str, CheckResult]:
    """The demo results with `removed`'s checks decided on other quantities than the models' own values, as the
    runtime decides them: membership on the worst gap to the reference over 6 items, forget quality by the test."""
    rs = passing_results()
    rs["membership_auc@forget"] = result(
        "membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.124, original=0.91, reference=0.48,
        interval={"unlearned": (0.0347, 0.233)}, n={"unlearned": 20},
        decision=Decision(quantity="worst |AUC − AUC_reference|", value=0.472, interval=(0.108, 0.9999),
                          threshold=Threshold(op="<=", value=0.1), n=6))
    rs["forget_quality@forget"] = result(
        "forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.0811, interval={"unlearned": (1.95e-05, 0.484)},
        n={"unlearned": 20}, decision=Decision(quantity="KS-test p-value", value=0.0811,
                                               threshold=Threshold(op=">=", value=0.05), n=20))
    rs.update(overrides)
    return rs


def test_a_decided_check_shows_the_deciding_quantity_with_its_own_interval_and_n() -> None:
    """Membership decided on a gap with interval [0.108, 1] over 6 items: the card shows that, not the unlearned
    model's AUC interval over 20 (which says nothing about the bound of 0.1 it was held to)."""
    rs = _decided_results()
    cell = _cell(render_card(make_report(results=rs)), "removed")
    membership = next(part for part in cell.split("; ") if part.strip().startswith("membership AUC"))
    d = rs["membership_auc@forget"].decision
    assert d is not None and d.interval is not None
    assert (f"worst \\|AUC − AUC\\_reference\\| {_g(d.value)} \\[{_g(d.interval[0])}, {_g(d.interval[1])}\\], "
            f"n={d.n}, threshold ≤ {_g(d.threshold.value)} (fail)") in membership
    assert _g(0.0347) not in membership and "n=20" not in membership  # the decided model's interval and n


def test_a_decision_without_an_interval_says_it_was_decided_by_the_test() -> None:
    """Forget quality decided by the KS test on its p-value: the p-value's bootstrap interval [1.95e-05, 0.484]
    straddles the bound and decided nothing, so it must not stand beside the verdict."""
    cell = _cell(render_card(make_report(results=_decided_results())), "removed")
    quality = next(part for part in cell.split("; ") if part.strip().startswith("forget quality"))
    assert f"KS-test p-value {_g(0.0811)} (decided by the test), n=20, threshold ≥ {_g(0.05)} (pass)" in quality
    assert _g(1.95e-05) not in quality and _g(0.484) not in quality


def test_what_besides_the_interval_decided_a_check_is_said() -> None:
    """A test that rejects fails whatever its interval; a check that cannot fail at this size is inconclusive; a
    part that could not be bounded keeps a check from passing: the card says which, beside the status."""
    rejects = result("forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.01,
                     decision=Decision(quantity="KS-test p-value", value=0.01, interval=(0.001, 0.2), rejects=True,
                                       threshold=Threshold(op=">=", value=0.05), n=20))
    cannot_fail = result("verbatim_rouge@relearn", "verbatim_rouge", "<=", 0.30, attacked=0.25, decided_on="attacked",
                         attack="relearn",
                         decision=Decision(quantity="recovery gap", value=-0.37, interval=(-0.91, 0.21),
                                           attainable=(-2.2, 0.233), threshold=Threshold(op="<=", value=0.5), n=11))
    unbounded = "PrivLeak on documents has no bounded interval at this size"
    cannot_pass = result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.12,
                         decision=Decision(quantity="worst |PrivLeak|", value=3.0, interval=(1.0, 4.0), n=10,
                                           threshold=Threshold(op="<=", value=5.0), cannot_pass=unbounded))
    rs = _decided_results(**{"forget_quality@forget": rejects, "verbatim_rouge@relearn": cannot_fail,
                             "verbatim_rouge@forget": cannot_pass})
    text = render_card(make_report(results=rs))
    assert "(fail: the test rejects at that level)" in _cell(text, "removed")
    assert (f"(inconclusive: it can only reach \\[{_g(-2.2)}, {_g(0.233)}\\] here, all of it within the bound, so the "
            "check cannot fail and is no evidence)") in _cell(text, "robust_to_finetuning")
    assert f"(inconclusive: {unbounded})" in _cell(text, "not_generated")


def test_a_checks_findings_reach_the_card() -> None:
    """Over-unlearning and no-power findings are part of what a check showed: they stand beside it, with the
    backticked names the runtime wrote as code spans."""
    over = "over-unlearning: on `qa` the AUC is 0.124, well below the reference's 0.48"
    power = "no power: the probe does not read `birth_city` off the original model"
    rs = _decided_results()
    rs["membership_auc@forget"] = rs["membership_auc@forget"].model_copy(update={"findings": [over]})
    rs["verbatim_rouge@forget"] = rs["verbatim_rouge@forget"].model_copy(update={"findings": [power]})
    text = render_card(make_report(results=rs))
    removed, generated = _cell(text, "removed"), _cell(text, "not_generated")
    assert "finding: over-unlearning: on `qa` the AUC is 0.124, well below the reference's 0.48" in removed
    assert "finding: no power: the probe does not read `birth_city` off the original model" in generated


def test_the_card_names_the_version_that_made_the_run() -> None:
    report = make_report()
    old = "0.0.9"
    assert old != __version__
    report = report.model_copy(update={"audit": report.audit.model_copy(update={"tool_version": old})})
    text = render_card(report)
    assert f"Evaluated with unlearnspec {old};" in text and f"unlearnspec {__version__};" not in text


def test_compiler_sentences_keep_their_code_spans() -> None:
    """A finding's message and help are the compiler's sentences: their backticked names are code spans, as in
    report.md, not escaped backticks; the reviewers' justification stays plain text."""
    report = make_report()
    obj = report.objectives[0]
    finding = PlanFinding(code="UL411", severity="warning", message="the tolerance that `membership_auc <= 0.6` allows",
                          help=["add `holdout` documents"], claim=None, accepted=False)
    accepted = PlanFinding(code="UL405", severity="warning", message="what `Jane Doe`'s data is", accepted=True,
                           justification="see `ticket`")
    obj = obj.model_copy(update={"findings": [*obj.findings, finding, accepted]})
    text = render_card(report.model_copy(update={"objectives": [obj]}))
    assert "- UL411 (underpowered evidence) (warning): the tolerance that `membership_auc <= 0.6` allows (help: add `holdout` documents)." in text
    assert "UL405 (forget set completeness), a risk the reviewers accepted: what `Jane Doe`'s data is; justification: see \\`ticket\\`" in text


# --- what the card says about the signature and the ledger: only what was checked ----------------------------

def _fingerprint(pub: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(pub.read_bytes())
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    run = full_run(tmp_path / "run")
    key, pub = keygen(tmp_path / "keys" / "signer")
    sign(run, key)
    return run, pub


def test_the_card_says_the_run_is_signed_only_when_the_signature_verified(
        signed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, pub = signed
    plain = _card(run)
    assert "not verified when this card was made" in plain and _fingerprint(pub)[:16] not in plain
    text = _card(run, pub=pub)
    assert f"The run is signed (Ed25519, key `{_fingerprint(pub)[:16]}`)" in text
    assert "verified with that key when this card was made" in text
    for name in ("report.json", "plan.json", "report.md", "report.html", "run.json", "ledger.json"):
        assert f"`{name}`" in text.split("It covers", 1)[1].split("\n", 1)[0]
    # another key, or a file changed after signing: no card, exit 1, the reason as a diagnostic
    _, other = keygen(tmp_path / "other")
    out = tmp_path / "card.md"
    assert main(["card", str(run), "--pub", str(other), "-o", str(out), "--color", "never"]) == 1
    err = capsys.readouterr().err
    assert "error[UL811]: the run was signed with another key" in err and "no card was made" in err
    assert not out.exists()
    (run / "report.md").write_text("# PASS\n", encoding="utf-8")
    assert main(["card", str(run), "--pub", str(pub), "-o", str(out)]) == 1
    assert "`report.md` changed after it was signed" in capsys.readouterr().err and not out.exists()
    assert main(["card", str(run), "--pub", str(tmp_path / "nope.pub")]) == 2  # an unreadable key: UL813
    assert "error[UL813]" in capsys.readouterr().err


def test_a_format_1_signature_is_carded_as_covering_report_and_plan_only(signed: tuple[Path, Path]) -> None:
    run, pub = signed
    from test_signing import _format_1_signature

    _format_1_signature(run, pub.with_name("signer"))
    text = _card(run, pub=pub)
    assert "covers report.json and plan.json only" in text and "`report.md`" not in text


def test_the_card_cites_ledger_lines_only_when_the_receipt_was_checked(
        signed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = signed
    ledger = tmp_path / "ledger"  # where full_run recorded the run
    receipt = json.loads((run / "ledger.json").read_text(encoding="utf-8"))
    [item] = receipt["entries"]
    plain = _card(run)
    assert "not checked against the ledger" in plain and "line 1" not in plain
    text = _card(run, ledger=ledger)
    assert f"`{item['request_id']}` line {item['seq']} of `{item['file']}`" in text
    assert "checked against it when this card was made" in text
    ledger_file = ledger / item["file"]
    ledger_file.write_text(ledger_file.read_text(encoding="utf-8").replace('"overall":"', '"overall":"x'),
                           encoding="utf-8")
    assert main(["card", str(run), "--ledger", str(ledger), "--color", "never"]) == 1
    assert "error[UL806]" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["report.sig.json", "ledger.json"])
def test_deep_or_badly_typed_signature_and_receipt_files_are_diagnostics(
        signed: tuple[Path, Path], name: str, capsys: pytest.CaptureFixture[str]) -> None:
    run, pub = signed
    for body in ("[" * 100_000, '{"entries": [{"seq": "1", "request_id": 7}], "key_sha256": 5}'):
        (run / name).write_text(body, encoding="utf-8")
        assert main(["card", str(run)]) == 0  # named as present and unchecked, never parsed into the card
        assert "Traceback" not in capsys.readouterr().err
        check = ["--pub", str(pub)] if name == "report.sig.json" else ["--ledger", str(run.parent / "ledger")]
        assert main(["card", str(run), *check, "--color", "never"]) == 1
        assert ("error[UL811]" if name == "report.sig.json" else "error[UL806]") in capsys.readouterr().err


def test_the_card_names_the_plans_model_hash_for_what_it_is_and_a_trusted_plan() -> None:
    """The audit trail's model hash is the plan's pin: for a built-in model its recipe's hash, not the weights the
    ledger records as model_before; and a plan run with --trust-plan was not re-derived from its spec."""
    report = make_report()
    pin = report.audit.model_sha256
    assert pin is not None
    text = render_card(report)
    assert f"the plan's hash of the source model `{pin[:16]}`" in text and "source model `" not in text.replace(
        "the plan's hash of the source model `", "")
    obj = report.objectives[0].model_copy(update={"models": [FileHash(path="builtin:tiny-bios", sha256="7" * 64,
                                                                     role="original")]})
    builtin = report.model_copy(update={"objectives": [obj]})
    assert "(a built-in model's training recipe, not its weights)" in render_card(builtin)
    assert "run as given" not in text
    trusted = report.model_copy(update={"audit": report.audit.model_copy(update={"plan_provenance": "trusted"})})
    assert "The plan was run as given (`--trust-plan`): it was not re-derived from its spec" in render_card(trusted)


@pytest.mark.parametrize("unfinished", ["no finish time", "a report missing", "no run.json"])
def test_the_library_refuses_to_card_an_unfinished_run(tmp_path: Path, unfinished: str) -> None:
    """`card_for_run` itself refuses a run that has not finished (UL812), not only the `card` verb: a run stopped while
    it wrote its reports is rewritten by its resume, so a card made from it would describe reports that do not last."""
    from unlearnspec.audit.signing import SigningError

    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(make_report().model_dump_json(indent=2), encoding="utf-8")
    for name in ("report.md", "report.html"):
        (run / name).write_text("the report\n", encoding="utf-8")
    (run / "run.json").write_text('{"stages": {}, "finished_at": "2026-01-02T03:04:05Z"}\n', encoding="utf-8")
    assert _card(run)  # finished: a card
    if unfinished == "no finish time":
        (run / "run.json").write_text('{"stages": {}}\n', encoding="utf-8")
    elif unfinished == "a report missing":
        (run / "report.html").unlink()
    else:
        (run / "run.json").unlink()
    with pytest.raises(SigningError) as info:
        card_for_run(run)
    assert info.value.code == "UL812"


@pytest.mark.parametrize("check", ["pub", "ledger"])
def test_a_report_swapped_between_the_cards_read_and_the_checks_read_gets_no_card(
        signed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: str) -> None:
    """The card read report.json, then the signature check and the receipt check read it again: a forged report in
    place for the first read and the original back for the second made a "signed" card of the forgery."""
    from unlearnspec.audit import card as card_mod

    run, pub = signed
    real = (run / "report.json").read_bytes()
    forged = real.replace(b"Right-to-erasure", b"Forged-erasure", 1)
    assert forged != real
    reads = []

    def first_read_forged(path: Path, *args: object, **kwargs: object) -> bytes:
        reads.append(path)
        return forged if Path(path).name == "report.json" and len(reads) == 1 else Path(path).read_bytes()

    monkeypatch.setattr(card_mod, "read_regular", first_read_forged)
    args = {"pub": pub} if check == "pub" else {"ledger": tmp_path / "ledger"}
    made = card_for_run(run, **args)
    assert made.text is None
    [(path, problem)] = made.problems
    assert path.name in ("report.json", "ledger.json") and problem.code == ("UL811" if check == "pub" else "UL806")
    monkeypatch.setattr(card_mod, "read_regular", lambda path, *a, **k: Path(path).read_bytes())
    assert card_for_run(run, **args).text is not None  # the same bytes throughout: the card is made
