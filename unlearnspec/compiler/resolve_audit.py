"""The resolve pass's readers for auditing a given checkpoint: ``unlearned "folder"`` (UL207 when it is not a
checkpoint), ``method unknown`` without one (UL219), and fields that configure training in an audit (UL220).

See docs/models.md, auditing a checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from unlearnspec.catalog import UNKNOWN
from unlearnspec.compiler.ast import Given, Objective
from unlearnspec.compiler.diagnostics import Label
from unlearnspec.compiler.resolve_values import ValueResolver, display_dir
from unlearnspec.compiler.syntax import Field
from unlearnspec.inputs import spec_path
from unlearnspec.markdown import code_span
from unlearnspec.records import hidden_in


class AuditResolver(ValueResolver):
    """Reads the audit fields of an objective (mixed into the resolve pass's resolver)."""

    def given(self, field: Field) -> Given | None:
        """``unlearned "folder"``: a local checkpoint to audit — a model folder, or a peft adapter folder."""
        text = self.one_string(field)
        if text is None:
            return None
        value = text.value
        where = ["give the local folder of the checkpoint to audit, relative to the spec's folder "
                 f"({code_span(display_dir(self.base_dir))}); the plan hashes every file it audits, so a hub id must be "
                 "downloaded to a folder first"]
        if not value.strip() or value.startswith("builtin:"):
            self.report("UL207", "error", text.span, f"`unlearned` names a local folder, found {code_span(value)}", help=where)
            return None
        path = spec_path(value, self.base_dir)
        if not path.is_dir():
            self.report("UL207", "error", text.span, f"unlearned model folder {code_span(value)} does not exist",
                        help=where)
            return None
        try:
            files = sorted(f for f in path.rglob("*") if not f.is_dir() and not hidden_in(f, path))
        except OSError as exc:
            self.report("UL207", "error", text.span, f"unlearned model folder {code_span(value)} cannot be read: "
                        f"{(exc.strerror or str(exc)).lower()}", help=["check that this user may read the folder"])
            return None
        unreadable = next((f for f in files if not f.is_file() or not os.access(f, os.R_OK)), None)
        if unreadable is not None:
            self.report("UL207", "error", text.span,
                        f"{code_span(unreadable.relative_to(path).as_posix())} in unlearned model folder {code_span(value)} is not a "
                        "readable file", help=["every file of the folder is hashed into the plan"])
            return None
        weights = any(f.suffix == ".safetensors" and f.parent == path for f in files)
        if (path / "adapter_config.json").is_file():
            form = "adapter"
        elif (path / "config.json").is_file():
            form = "model"
        else:
            self.report("UL207", "error", text.span,
                        f"{code_span(value)} is neither a model folder (`config.json`) nor a peft adapter folder "
                        "(`adapter_config.json`)", help=["save the checkpoint with `save_pretrained(folder)`"])
            return None
        if not weights:
            self.report("UL207", "error", text.span, f"unlearned model folder {code_span(value)} has no safetensors weights",
                        help=["only safetensors weights are loaded; convert pickled weights with "
                              "`save_pretrained(folder, safe_serialization=True)`"])
            return None
        resolved = os.path.realpath(path)
        return Given(span=text.span, raw=value, resolved=resolved if os.sep == "/" else Path(resolved).as_posix(),
                     form=form)  # type: ignore[arg-type]

    def audit_fields(self, obj: Objective, present: dict[str, Field]) -> None:
        """UL219 (`method unknown` with no checkpoint) and UL220 (an audit that also configures training)."""
        method = obj.method
        # an `unlearned` field that names no usable folder already has its UL207: `method unknown` is not wrong too
        if method is not None and method.name.value == UNKNOWN and "unlearned" not in present:
            self.report("UL219", "error", method.name.span,
                        "`method unknown` needs a checkpoint to audit: with no `unlearned` model, a method must run",
                        help=['name the checkpoint the vendor unlearned: `unlearned "models/vendor-unlearned"`',
                              "or name the method to run here (`method npo`), or leave `method` out"])
        if obj.unlearned is None:
            return
        given = Label(span=obj.unlearned.span, message="the checkpoint is audited as given")
        knobs = present.get("method")
        if knobs is not None and knobs.block is not None:
            self.report("UL220", "error", knobs.block.open_span, "a method block tunes training, and an audit trains nothing",
                        labels=[given], help=["drop the block and keep the method as the vendor stated it: "
                                              f"`method {method.name.value if method else 'unknown'}`"])
        if method is not None and method.name.value == "filter":
            self.report("UL220", "error", method.name.span, "an output filter is not part of a checkpoint's weights",
                        labels=[given], help=["audit the weights as given (`method unknown`), or drop `unlearned` "
                                              "and plan the filter here"])
        for name in ("after", "budget"):
            f = present.get(name)
            if f is not None:
                self.report("UL220", "error", f.name_span, f"{code_span(name)} chains requests, and an audited checkpoint "
                            "is not produced by this run", labels=[given],
                            help=[f"drop {code_span(name)}; audit each checkpoint in an objective of its own"])
