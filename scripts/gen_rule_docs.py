"""Regenerate docs/rules/ from the diagnostic-code registry (one page per code, and README.md).

    .venv/bin/python scripts/gen_rule_docs.py

Pages of codes that are no longer registered are removed, so the folder mirrors the registry exactly.
"""

from __future__ import annotations

from pathlib import Path

from unlearnspec.compiler.explain import rule_doc_files

RULES_DIR = Path(__file__).resolve().parent.parent / "docs" / "rules"


def main() -> None:
    RULES_DIR.mkdir(parents=True, exist_ok=True)
    files = rule_doc_files()
    for stale in sorted(set(p.name for p in RULES_DIR.glob("*.md")) - set(files)):
        (RULES_DIR / stale).unlink()
        print(f"removed docs/rules/{stale}")
    for name, text in files.items():
        path = RULES_DIR / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote docs/rules/{name}")


if __name__ == "__main__":
    main()
