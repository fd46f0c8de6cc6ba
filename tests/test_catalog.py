"""The catalog is the one table of claims, metrics, methods, probes and codes: its entries refer to each other
consistently, it is plain data (no third-party import, nothing else of unlearnspec), and the modules that used
to keep their own tables now read it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from unlearnspec import catalog
from unlearnspec.catalog import vocab

ROOT = Path(__file__).resolve().parents[1]


def test_every_reference_between_entries_resolves() -> None:
    for c in catalog.CLAIMS.values():
        assert set(c.defaults) <= set(c.evidence), c.name  # a default is one of its evidence family
        assert all(m in catalog.METRICS for m in c.evidence), c.name
    for m in catalog.METRICS.values():
        assert set(m.needs) <= set(catalog.NEEDS), m.name
        assert m.probe is None or m.probe in catalog.PROBES, m.name
        assert m.threshold.op in ("<=", ">="), m.name
        assert m.lower <= m.threshold.value <= m.upper, m.name
        # the default bound points the way the metric gets better
        assert (m.threshold.op == ">=") == (m.better == "higher"), m.name
        if m.fallback is not None:
            assert m.fallback.need in m.needs and m.fallback.stand_in in catalog.NEEDS, m.name
    for p in catalog.PROBES.values():
        assert catalog.METRICS[p.metric].probe == p.name  # the probe's metric reads that probe
    for o in catalog.OUTPUT_KINDS.values():
        assert all(m in catalog.CLAIMS["not_generated"].evidence for m in o.metrics), o.name
    for f in catalog.FAMILIES.values():
        assert set(f.cannot_serve) <= set(catalog.CLAIMS), f.name
    for meth in catalog.METHODS.values():
        assert meth.family in catalog.FAMILIES
    assert catalog.DEFAULT_RELEARN_STEPS > 0 and set(catalog.QUANTIZED) <= set(vocab.PRECISIONS)


def test_code_pages_are_numbered_by_what_they_check() -> None:
    prefix = {"syntax": "UL1", "resolve": "UL2", "runtime": ("RT1", "UL7"), "audit": ("UL80", "UL81"), "data": "UL82"}
    for code, page in catalog.CODES.items():
        assert page.code == code
        if page.category in prefix:
            assert code.startswith(prefix[page.category]), code
        elif code not in ("UL213", "UL214"):  # the accept meta-findings are numbered with the resolve codes
            severity = {"3": "error", "4": "warning", "5": "note", "6": "error"}[code[2]]
            assert page.severity == severity, code
    assert list(catalog.CODES) == sorted(catalog.CODES)


def test_catalog_imports_nothing_but_itself() -> None:
    probe = ("import sys, json; before = set(sys.modules); import unlearnspec.catalog; "
             "print(json.dumps(sorted(m for m in set(sys.modules) - before)))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(r.stdout)
    ours = [m for m in loaded if m.startswith("unlearnspec")]
    assert all(m == "unlearnspec" or m.startswith("unlearnspec.catalog") for m in ours), ours
    assert not [m for m in loaded if m.split(".")[0] in ("pydantic", "lark", "jinja2", "torch")], loaded


def test_the_runtime_reads_its_facts_from_the_catalog() -> None:
    from unlearnspec.report.verdict import metric_label
    from unlearnspec.runtime.evaluation.probes import ADVERSARIAL_TEMPLATES

    assert [t.id for t in ADVERSARIAL_TEMPLATES] == list(catalog.ADVERSARIAL_TEMPLATES)
    assert metric_label("membership_auc") == catalog.METRICS["membership_auc"].label
    assert metric_label("no_such_metric") == "no such metric"
    # the membership attacks the runtime runs are the catalog's, in its order and with its directions
    # (test_eval_mia.py shows each direction is right: the overfit model scores AUC >= 0.9 on every attack)
    from unlearnspec.runtime.evaluation.mia import ATTACKS

    assert [(name, higher) for name, (_, higher) in ATTACKS.items()] == \
        [(a.name, a.higher_is_member) for a in catalog.MEMBERSHIP_ATTACKS.values()]


def test_directions_orders_and_words_are_the_catalogs_alone() -> None:
    """A bound's direction, the guarantees' and goals' order, the compile statuses' words and the comparison symbols
    are stated once, in the catalog; the compiler, the language server, `diff` and the reports read them there."""
    from unlearnspec.catalog.metrics import OP_SYMBOLS
    from unlearnspec.compiler import review, semdiff
    from unlearnspec.report import rules

    better = {"higher": ">=", "lower": "<=", "closer_to_zero": "<="}  # closer to zero: |x| bounded from above
    for m in catalog.METRICS.values():
        assert m.bound_op == better[m.better] == m.threshold.op, m.name
        assert m.tested == (m.unit == "p_value"), m.name
    assert [m.name for m in catalog.METRICS.values() if m.tested] == ["forget_quality"]  # TOFU's KS test
    # strongest first (docs/language.md): retraining is exact, a certified bound promises more than evidence
    assert vocab.GUARANTEES == ("exact", "certified", "empirical") and vocab.GOALS == ("removal", "suppression")
    assert sorted(vocab.GUARANTEE_RANK, key=vocab.GUARANTEE_RANK.__getitem__) == [*vocab.GUARANTEES, None]
    assert vocab.CLAIM_STATUS_WORDS == {"supported": "supported", "cannot_be_verified": "cannot be verified",
                                        "cannot_be_met": "cannot be met"}
    assert list(vocab.CLAIM_STATUS_RANK) == ["supported", "cannot_be_verified", "cannot_be_met"]
    assert rules.OP_SYMBOLS is OP_SYMBOLS and OP_SYMBOLS == {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}
    assert semdiff.GUARANTEE_RANK is vocab.GUARANTEE_RANK and semdiff.GOAL_RANK is vocab.GOAL_RANK
    assert semdiff.STATUS_RANK is vocab.CLAIM_STATUS_RANK and not hasattr(review, "OP_WORDS")

    # and no second table of them: no dict, tuple, list or set literal (a type's `Literal[...]` aside) that holds
    # every name of one of these sets, in the layers that read the catalog's
    names: dict[str, set[str]] = {"guarantees": set(vocab.GUARANTEES), "goals": set(vocab.GOALS),
                                  "statuses": set(vocab.CLAIM_STATUSES), "comparisons": set(OP_SYMBOLS)}
    found: list[str] = []
    for folder in ("compiler", "lsp", "cli", "audit", "report"):
        for path in sorted((ROOT / "unlearnspec" / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            literal = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)
                       and isinstance(n.value, ast.Name) and n.value.id == "Literal"}
            for n in ast.walk(tree):
                if id(n) in literal or not isinstance(n, ast.Dict | ast.Tuple | ast.List | ast.Set):
                    continue
                items = n.keys if isinstance(n, ast.Dict) else n.elts
                words = {k.value for k in items if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                found += [f"{path.relative_to(ROOT)}:{n.lineno} {what}" for what, s in names.items() if s <= words]
    assert not found, found
