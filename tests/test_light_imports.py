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
    [["fmt", "--check", "specs/"], ["explain", "UL201"], ["explain", "all"], ["schema"], ["init", "--list"]],
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


LSP_PROBE = """
import json, sys
from pathlib import Path
from lsprotocol import types as lsp
from unlearnspec.cli import build_parser
from unlearnspec.lsp import features
from unlearnspec.lsp.server import build_server
build_parser().parse_args(["lsp"])
build_server()
for path in sorted(Path("specs").glob("*.unlearn")):
    doc = features.Document(uri=path.resolve().as_uri(), text=path.read_text())
    features.diagnostics(doc)
    features.code_actions(doc, doc.whole())
    features.symbols(doc)
    features.formatting(doc)
    for line in range(len(doc.lines)):
        features.hover(doc, lsp.Position(line=line, character=4))
        features.completion(doc, lsp.Position(line=line, character=4))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"heavy": heavy}))
"""


def test_language_server_leaves_heavy_libraries_unloaded() -> None:
    pytest.importorskip("pygls")
    code = LSP_PROBE.replace("HEAVY", repr(HEAVY))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"the language server imported {out['heavy']}"


CHECK_PROBE = """
import contextlib, io, json, sys
from unlearnspec.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(["check", "specs/"])
print(json.dumps({"code": code, "plan": "unlearnspec.plan" in sys.modules,
                  "lowering": sorted(m for m in sys.modules if m in LOWERING)}))
"""
LOWERING = ("unlearnspec.compiler.lower", "unlearnspec.compiler.stages", "unlearnspec.compiler.chain_plan",
            "unlearnspec.compiler.models", "unlearnspec.compiler.estimate")


def test_check_builds_no_plan_models() -> None:
    """`check` needs the syntax tree, the AST and the analysis; the plan's ~30 pydantic classes are built
    only when a plan is (a third of the model classes `check` used to build at start-up)."""
    code = CHECK_PROBE.replace("LOWERING", repr(LOWERING))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["code"] in (0, 1)
    assert out == {"code": out["code"], "plan": False, "lowering": []}
