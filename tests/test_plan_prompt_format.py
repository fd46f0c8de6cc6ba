"""The plan records how question-answer items are put to a local model: its chat template (by sha256),
or the plain format. Read from the folder's files without a framework, as the compiler must."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path

import pytest
from fixtures.frontend import ROOT

from unlearnspec.cli import main

LLAMA3 = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}")


def _project(tmp_path: Path) -> Path:
    """The ARCHITECTURE.md example on a local model folder (one-tensor safetensors, no tokenizer yet)."""
    shutil.copytree(ROOT / "specs" / "data", tmp_path / "data")
    spec = (ROOT / "specs" / "erase-jane-doe.unlearn").read_text(encoding="utf-8")
    spec = spec.replace('"builtin:tiny-bios"', '"model"').replace("    forget_quality >= 0.05\n", "")
    spec = spec.replace("    robust_to_finetuning steps 20\n", "")
    (tmp_path / "s.unlearn").write_text(spec, encoding="utf-8")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    return tmp_path


def _model_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["plan", str(tmp_path / "s.unlearn"), "-o", str(tmp_path / "plan.json")]) == 0, capsys.readouterr()
    plan = json.loads((tmp_path / "plan.json").read_text())
    found: list[dict[str, object]] = []

    def walk(o: object) -> None:
        if isinstance(o, dict):
            if o.get("kind") == "local" and "source" in o:
                found.append(o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(plan)
    assert found
    return found[0]


def test_chat_template_in_tokenizer_config_is_recorded_by_hash(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path)
    (root / "model" / "tokenizer_config.json").write_text(json.dumps({"chat_template": LLAMA3}), encoding="utf-8")
    entry = _model_entry(root, capsys)
    assert entry["prompt_format"] == "chat"
    assert entry["chat_template_sha256"] == hashlib.sha256(LLAMA3.encode()).hexdigest()


def test_named_templates_and_the_jinja_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path)
    named = [{"name": "tool_use", "template": "{{ tools }}"}, {"name": "default", "template": LLAMA3}]
    (root / "model" / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}), encoding="utf-8")
    assert _model_entry(root, capsys)["chat_template_sha256"] == hashlib.sha256(LLAMA3.encode()).hexdigest()
    (root / "model" / "chat_template.jinja").write_text("{{ messages }}", encoding="utf-8")  # transformers 5 layout
    assert _model_entry(root, capsys)["chat_template_sha256"] == hashlib.sha256(b"{{ messages }}").hexdigest()


def test_a_tokenizer_without_template_is_plain_and_the_builtin_records_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path)
    (root / "model" / "tokenizer_config.json").write_text('{"eos_token": "</s>"}', encoding="utf-8")
    entry = _model_entry(root, capsys)
    assert entry["prompt_format"] == "plain" and "chat_template_sha256" not in entry
    assert main(["plan", str(ROOT / "specs" / "erase-jane-doe.unlearn"), "-o", str(tmp_path / "b.json")]) == 0
    assert "prompt_format" not in (tmp_path / "b.json").read_text()  # the built-in's plan is unchanged


def _with_system(spec: Path, model: str | None, system: str = "You are a careful assistant.") -> None:
    text = spec.read_text(encoding="utf-8")
    if model is not None:
        text = text.replace('"model"', f'"{model}"', 1) if '"model"' in text else text.replace(
            '"builtin:tiny-bios"', f'"{model}"', 1)
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("model "))
    lines.insert(at + 1, f'  system "{system}"\n')
    spec.write_text("".join(lines), encoding="utf-8")


def test_a_system_prompt_on_a_model_without_a_chat_template_is_ul221(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.unlearn"
    spec.write_text((ROOT / "specs" / "erase-jane-doe.unlearn").read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copytree(ROOT / "specs" / "data", tmp_path / "data")
    _with_system(spec, None)  # the GPT-2 built-in: plain
    assert main(["check", str(spec)]) == 1  # an error: check exits 1, plan and run refuse with 2
    out = capsys.readouterr().out
    assert "UL221" in out and "`builtin:tiny-bios` has no chat template" in out
    assert 'system "You are a careful assistant."' in out  # the source line under the caret
    # a local folder whose tokenizer has no template: the compiler knows it too
    root = _project(tmp_path / "local")
    (root / "model" / "tokenizer_config.json").write_text('{"eos_token": "</s>"}', encoding="utf-8")
    _with_system(root / "s.unlearn", None)
    assert main(["check", str(root / "s.unlearn")]) == 1
    assert "UL221" in capsys.readouterr().out


def test_a_system_prompt_lands_in_the_plan_and_its_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path)
    (root / "model" / "tokenizer_config.json").write_text(json.dumps({"chat_template": LLAMA3}), encoding="utf-8")
    before = _model_entry(root, capsys)
    hash_before = json.loads((root / "plan.json").read_text())["plan_hash"]
    assert "system" not in before
    _with_system(root / "s.unlearn", None)
    entry = _model_entry(root, capsys)
    assert entry["system"] == "You are a careful assistant." and entry["prompt_format"] == "chat"
    assert json.loads((root / "plan.json").read_text())["plan_hash"] != hash_before
    # the chat built-in takes one as well
    spec = tmp_path / "b.unlearn"
    spec.write_text((ROOT / "specs" / "erase-jane-doe.unlearn").read_text(encoding="utf-8"), encoding="utf-8")
    _with_system(spec, "builtin:tiny-bios-chat")
    assert main(["plan", str(spec), "-o", str(tmp_path / "b.json")]) == 0, capsys.readouterr()
    model = json.loads((tmp_path / "b.json").read_text())["objectives"][0]["model"]
    assert model["system"] == "You are a careful assistant." and model["prompt_format"] == "chat"


def test_fmt_keeps_the_system_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.unlearn"
    spec.write_text((ROOT / "specs" / "erase-jane-doe.unlearn").read_text(encoding="utf-8"), encoding="utf-8")
    _with_system(spec, "builtin:tiny-bios-chat")
    before = spec.read_text(encoding="utf-8")
    assert main(["fmt", str(spec)]) == 0
    after = spec.read_text(encoding="utf-8")
    assert re.search(r'\n  system +"You are a careful assistant\."\n', after)
    assert main(["fmt", str(spec)]) == 0 and spec.read_text(encoding="utf-8") == after  # idempotent
    assert before.count("system") == after.count("system")


def test_diff_reports_a_changed_system_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.unlearn"
    spec.write_text((ROOT / "specs" / "erase-jane-doe-chat.unlearn").read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copytree(ROOT / "specs" / "data", tmp_path / "data")
    assert main(["plan", str(spec), "-o", str(tmp_path / "a.json")]) == 0
    spec.write_text(spec.read_text(encoding="utf-8").replace("Answer briefly.", "Answer in full."), encoding="utf-8")
    assert main(["plan", str(spec), "-o", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--format", "json"])
    changes = json.loads(capsys.readouterr().out)["changes"]
    [change] = [c for c in changes if c["subject"] == "system"]
    assert change["old"].endswith("Answer briefly.") and change["new"].endswith("Answer in full.")


def test_show_states_the_prompt_format_the_plan_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path)
    (root / "model" / "tokenizer_config.json").write_text(json.dumps({"chat_template": LLAMA3}), encoding="utf-8")
    _with_system(root / "s.unlearn", None, "Answer briefly.")
    entry = _model_entry(root, capsys)
    assert main(["show", str(root / "plan.json")]) == 0
    review = capsys.readouterr().out
    line = next(x for x in review.splitlines() if x.startswith("Prompt format:"))
    assert "chat template" in line and str(entry["chat_template_sha256"])[:12] in line
    assert "`Answer briefly.`" in line
    # a tokenizer without a template: the review says the plain format
    (root / "model" / "tokenizer_config.json").write_text('{"eos_token": "</s>"}', encoding="utf-8")
    (root / "s.unlearn").write_text((root / "s.unlearn").read_text().replace('  system "Answer briefly."\n', ""))
    assert _model_entry(root, capsys)["prompt_format"] == "plain"
    assert main(["show", str(root / "plan.json")]) == 0
    assert "Prompt format: plain" in capsys.readouterr().out
