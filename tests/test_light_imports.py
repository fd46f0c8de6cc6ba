"""The compiler path never loads the runtime's heavy libraries, so `check` starts fast in a CI job."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fixtures.frontend import ROOT

HEAVY = ("torch", "transformers", "peft", "accelerate", "numpy", "scipy", "sklearn", "datasets", "safetensors")

PROBE = """
import contextlib, io, json, sys
import unlearnspec.cli, unlearnspec.compiler.check, unlearnspec.compiler.render
from unlearnspec.cli import main
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for argv in ARGVS:
        codes.append(main(argv))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


@pytest.mark.parametrize("argvs", [
    [["check", "specs/"]],
    [["check", "--format", "sarif", "specs/"], ["check", "--format", "json", "specs/erase-jane-doe.unlearn"],
     ["check", "--format", "github", "specs/"]],
    [["fmt", "--check", "specs/"], ["explain", "UL201"], ["explain", "all"], ["schema"]],
    [["debug", stage, "specs/erase-jane-doe.unlearn"] for stage in ("syntax", "ast", "analysis", "plan")],
], ids=["check", "check-formats", "fmt-explain-schema", "debug"])
def test_compiler_verbs_leave_heavy_libraries_unloaded(argvs: list[list[str]]) -> None:
    code = PROBE.replace("ARGVS", repr(argvs)).replace("HEAVY", repr(HEAVY))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"the compiler path imported {out['heavy']}"
    assert all(c in (0, 1) for c in out["codes"]), out["codes"]
