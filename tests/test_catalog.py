"""The catalog is the one table of claims, metrics, methods, probes and codes: its entries refer to each other
consistently, it is plain data (no third-party import, nothing else of unlearnspec), and the modules that used
to keep their own tables now read it."""

from __future__ import annotations

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
