"""A chain of three erasure requests on builtin:tiny-bios, end to end (slow: three retrained references).

Each request starts from the previous one's model; after each, the earlier requests are re-checked on
the new model against the builtin retrained without every target so far; the report carries the drift
and the budget verdict, the ledger one line per request, and the model card the chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = (("erase-jane-doe", "Jane Doe", "data/jane-doe.jsonl"),
          ("erase-barnaby-caldrow", "Barnaby Caldrow", "data/people/barnaby-caldrow.jsonl"),
          ("erase-vesna-gantrell", "Vesna Gantrell", "data/people/vesna-gantrell.jsonl"))


def spec() -> str:
    parts = ["unlearnspec 1\n"]
    for i, (name, person, forget) in enumerate(PEOPLE):
        after = f'  after "{PEOPLE[i - 1][0]}"\n' if i else ""
        budget = "  budget {\n    utility  drop <= 50%\n    requests 2\n  }\n" if i == 0 else ""
        parts.append(f'''objective "{name}" {{
{after}  basis "GDPR Art. 17, request {i + 1}"
  owner "privacy-office"
  model "builtin:tiny-bios"
  release api precision fp32
  target person "{person}" {{
    forget "{forget}"
  }}
  goal removal
  method grad_diff {{ steps 4 }}
  preserve {{
    retain  "data/retain.jsonl"
    utility drop <= 10%
  }}
  claims {{
    removed
  }}
{budget}}}
''')
    return "\n".join(parts)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "unlearnspec", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=3000, check=False)


@pytest.mark.slow
def test_a_chain_of_three_requests_rechecks_earlier_ones_and_reports_drift(tmp_path: Path) -> None:
    from unlearnspec.builtin.recipe import recipe_hash
    from unlearnspec.records import read_records
    from unlearnspec.runtime.builtin_model import cache_root, texts_sha256

    assert cli("builtin", "export", "data", cwd=tmp_path).returncode == 0
    (tmp_path / "chain.unlearn").write_text(spec(), encoding="utf-8")
    r = cli("run", "chain.unlearn", "--out", "run", "--ledger", "ledger", "-q", cwd=tmp_path)
    assert r.returncode in (0, 1, 3), r.stderr
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    (chain,) = report["chains"]
    names = [p[0] for p in PEOPLE]
    assert chain["links"] == names and [s["request"] for s in chain["steps"]] == names
    for k, step in enumerate(chain["steps"]):  # after step k, every earlier request re-checked
        assert [rc["request"] for rc in step["rechecks"]] == names[:k]
        own = {o["name"]: {c["claim"] for c in o["claims"]} for o in report["objectives"]}
        for rc in step["rechecks"]:  # every claim of the earlier request (with the implicit tolerance claim)
            assert "removed" in own[rc["request"]]
            assert rc["claims"] and {c["claim"] for c in rc["claims"]} == own[rc["request"]]
            assert rc["checks"] and all(c["now"] is not None for c in rc["checks"] if c["metric"] == "membership_auc")
        assert step["utility_drop"] is not None
    # Budget: three approximate requests where two are allowed.
    assert chain["budget_exceeded"] and any("3 approximate requests" in x for x in chain["budget_reasons"])
    assert "retrain" in chain["recommendation"]
    # The reference of step k is the builtin retrained without the first k targets (the cache key is the
    # sha256 of the excluded training texts).
    state = json.loads((run / "run.json").read_text())
    excluded: list[str] = []
    for name, _, forget in PEOPLE:
        excluded += [t for rec in read_records(tmp_path / forget) for t in rec.training_texts()]
        expected = cache_root() / "retrained" / recipe_hash() / texts_sha256(sorted(set(excluded)))
        assert Path(state["stages"][f"{name}/reference"]["detail"]["path"]) == expected
    # Drift reaches the reviewer's documents and the ledger.
    md = (run / "report.md").read_text()
    assert "## Chain of requests" in md and "Re-checks after `erase-vesna-gantrell`" in md
    assert cli("ledger", "verify", "ledger", cwd=tmp_path).returncode == 0
    shown = cli("ledger", "show", "ledger", "--format", "json", cwd=tmp_path)
    (ledger,) = json.loads(shown.stdout)["ledgers"]
    entries = ledger["entries"]
    assert [e["request_id"] for e in entries] == names
    assert entries[1]["model_before"] == entries[0]["model_after"]
    assert entries[2]["drift"]["rechecks"].keys() == {names[0], names[1]}
    card = cli("card", "run", cwd=tmp_path)
    assert card.returncode == 0 and "### Requests applied in order" in card.stdout
