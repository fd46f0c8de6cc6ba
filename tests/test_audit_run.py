"""Auditing a given checkpoint end to end, on the built-in model (slow: it evaluates two audits).

The spec names a checkpoint with `unlearned` and says nothing of how it was made (`method unknown`). Given
the built-in model retrained without Jane Doe (the exact reference, ``ensure_retrained``), the audit does not
fail the removal claim; given the original model (``ensure_builtin``), which was trained on her, it fails it.
The verdicts are read from report.json. The given folders are copies, and the run leaves them byte for byte
as they were; the report says the model was given, with the folder's hash.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from unlearnspec.builtin import corpus as C
from unlearnspec.cli import main
from unlearnspec.records import sha256_path
from unlearnspec.runtime.builtin_model import ensure_builtin, ensure_retrained

pytestmark = pytest.mark.slow

AUDIT = """unlearnspec 1

objective "audit" {
  model     "builtin:tiny-bios"
  unlearned "checkpoint"
  release   api precision fp32

  target person "Jane Doe" {
    kind   observed
    forget "jane-doe.jsonl"
  }

  goal   removal
  method unknown

  scope {
    outputs facts
    prompts direct
  }

  preserve {
    retain    "retain.jsonl"
    neighbors "neighbors.jsonl"
    utility   drop <= 5%
  }

  claims {
    removed
  }
}
"""


def tree_hash(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def audit(tmp: Path, checkpoint: Path) -> tuple[int, dict[str, Any], Path]:
    """Audit a copy of ``checkpoint`` against Jane Doe's records; (exit code, report.json, the copy)."""
    tmp.mkdir(parents=True)
    corpus = C.build_corpus()  # the records the built-in model was trained on
    # the neighbours and retain records also train the representation probe that `removed` reads
    for name, records in (("jane-doe", corpus.forget), ("retain", corpus.retain[:30]), ("neighbors", corpus.neighbors)):
        (tmp / f"{name}.jsonl").write_text("".join(r.model_dump_json(exclude_defaults=True) + "\n" for r in records))
    given = tmp / "checkpoint"
    shutil.copytree(checkpoint, given, ignore=shutil.ignore_patterns(".*"))
    (tmp / "audit.unlearn").write_text(AUDIT)
    before = tree_hash(given)
    code = main(["run", str(tmp / "audit.unlearn"), "--out", str(tmp / "run"), "--quiet"])
    assert tree_hash(given) == before  # the given folder is never written
    return code, json.loads((tmp / "run" / "report.json").read_text()), given


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {c["claim"]: c["verdict"] for o in report["objectives"] for c in o["claims"]}


@pytest.fixture(scope="module")
def retrained() -> Path:
    return ensure_retrained([t for r in C.build_corpus().forget for t in r.training_texts()])


def test_auditing_the_retrained_model_passes_the_removal_claim(tmp_path: Path, retrained: Path) -> None:
    code, report, given = audit(tmp_path / "retrained", retrained)
    assert verdicts(report)["removed"] in ("pass", "inconclusive"), report["objectives"][0]["claims"]
    assert code in (0, 3)  # not 1: no claim failed
    obj = report["objectives"][0]
    assert obj["given"] == {"source": "checkpoint", "form": "model", "sha256": sha256_path(given), "method": "unknown"}
    assert obj["method"] == "unknown" and obj.get("training") is None
    md = (tmp_path / "retrained" / "run" / "report.md").read_text()
    assert "given, not produced by this run" in md and sha256_path(given) in md


def test_auditing_the_original_model_fails_the_removal_claim(tmp_path: Path) -> None:
    code, report, _ = audit(tmp_path / "original", ensure_builtin())
    assert verdicts(report)["removed"] == "fail", report["objectives"][0]["claims"]
    assert code == 1


def test_an_adapter_is_merged_into_a_copy_of_the_original() -> None:
    """The example spec's vendor adapter (gradient ascent on Jane Doe): loaded the way an audit loads it, it
    raises the forget loss over the original's, and the original model object is left as it was."""
    import torch

    from unlearnspec.records import read_records
    from unlearnspec.runtime.loading import load_model
    from unlearnspec.runtime.pipeline import load_given

    root = Path(__file__).resolve().parents[1]
    adapter = root / "specs" / "models" / "vendor-jane-doe-lora"
    before = tree_hash(adapter)
    original, tok = load_model("builtin:tiny-bios")
    weights = {k: v.clone() for k, v in original.state_dict().items()}
    given, gtok = load_given(adapter, "adapter", original, tok)
    assert gtok is tok and given is not original
    texts = [t for r in read_records(root / "specs" / "data" / "jane-doe.jsonl") for t in r.training_texts()]
    enc = tok(texts, padding=True, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    with torch.no_grad():
        loss_original = original(**enc, labels=labels).loss.item()
        loss_given = given(**enc, labels=labels).loss.item()
    assert loss_given > loss_original
    assert all(torch.equal(weights[k], v) for k, v in original.state_dict().items())
    assert tree_hash(adapter) == before
