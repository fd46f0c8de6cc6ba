"""Chains of requests: `after "other"` makes an objective start from another's result.

This pass reads the whole spec (a chain links objectives, so no single objective can check it):

* UL216 — `after` names no objective: not in this file, or (`after "file.unlearn#name"`) not in that file;
* UL217 — the links form a cycle;
* UL218 — two objectives of this file continue from the same one, in this file or in another (a chain is a
  line: one model, requests in order), compared by the file the link leads to and the objective's name;
* UL209 — a link on another model than the one it continues, a `budget` anywhere but on a chain's
  first objective, or a request that preserves (retain, neighbours) a record an earlier request of its
  chain in this file forgot: the later request would train the model to keep what the earlier one removed,
  and the run re-checks the earlier request's claims on each new model.

:func:`chains` orders each chain (first objective first); :func:`unlearnspec.compiler.chain_plan.attach_chains`
records the order and every link's hash in the plan (a module of its own, so that checking never loads the
plan's models). A link to another file is checked here (the file and objective exist, and
following its own `after` links never comes back), and is recorded in the plan with that file's hash
(``ChainPlan.starts_after``); the runtime cannot start from another file's objective yet, and stops with
UL713 (docs/requests.md).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from unlearnspec.compiler.ast import Objective, Spec
from unlearnspec.compiler.decisions import model_kind
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve import resolve
from unlearnspec.compiler.resolve_data import forget_texts, preserved_overlap, shown
from unlearnspec.compiler.suggest import did_you_mean, did_you_mean_fixes
from unlearnspec.inputs import spec_path
from unlearnspec.markdown import code_span

MAX_FILES = 64  # links followed across files before the compiler gives up (a cycle is found sooner)


def _diag(code: str, obj: Objective, message: str, *, labels: list[Label] | None = None,
          help: list[str] | None = None, severity: str = "error", hint: str | None = None) -> Diagnostic:
    """A finding at the objective's `after` value; ``hint``: the `after` value it probably meant (its fix)."""
    span = obj.after.span if obj.after is not None else obj.name_span
    return Diagnostic(code=code, severity=severity, message=message, span=span,  # type: ignore[arg-type]
                      labels=labels or [], help=help or [], objective=obj.name,
                      fixes=did_you_mean_fixes(span, hint, quoted=True) if obj.after is not None else [])


def split_ref(ref: str) -> tuple[str | None, str]:
    """``"file.unlearn#name"`` → (file, name); ``"name"`` → (None, name)."""
    if "#" in ref:
        file, _, name = ref.rpartition("#")
        return file, name
    return None, ref


Reader = Callable[[Path], bytes | None]
"""Reads another spec file a chain names (its bytes; None: read the file)."""


def _load(path: Path, read_other: Reader | None = None) -> Spec | None:
    """The spec at ``path`` as far as it resolves: the text ``read_other`` gives for it (an editor's unsaved
    buffer), else the file's bytes; None when it cannot be read or parsed."""
    data = read_other(path) if read_other is not None else None
    if data is None:
        if not path.is_file():
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
    syntax, _ = parse_bytes(data, str(path))
    if syntax is None:
        return None
    spec, _ = resolve(syntax, path.parent)
    return spec


DEFAULT_MODEL = "builtin:tiny-bios"  # what an objective without `model` unlearns from (docs/language.md)


def _model_target(value: str, base: Path) -> str:
    """What a `model` string names, comparable across spec files: a local folder as the absolute path it leads to
    from its own spec's folder, a built-in or hub id as written."""
    if model_kind(value, base) != "local":
        return value
    return os.path.realpath(spec_path(value, base))


def _shown_path(path: Path, spec: Spec) -> str:
    """A spec file reached through a chain, as a reader of this spec finds it: relative to this spec's folder."""
    return Path(os.path.relpath(path, Path(spec.base_dir).resolve())).as_posix()


def _external(obj: Objective, spec: Spec, read_other: Reader | None = None) -> list[Diagnostic]:
    """Check a link to another file: the file and objective exist, and the links never come back.

    A problem past the first link (an `after` of the other file that names nothing, or a cycle among other files)
    is said as one found along the chain: the `after` at fault is in that file, so this link gets no fix."""
    assert obj.after is not None
    file, name = split_ref(obj.after.value)
    assert file is not None
    here = (Path(spec.base_dir) / Path(spec.path).name).resolve()
    seen = {(here, obj.name)}
    base = Path(spec.base_dir)
    via: tuple[Path, str] | None = None  # the objective of another file whose `after` this link now follows
    through = f"the chain through {code_span(obj.after.value)}"
    for _ in range(MAX_FILES):
        path = (base / file).resolve()
        other = _load(path, read_other)
        if via is not None:
            at = f"{code_span(via[1])} in {code_span(_shown_path(via[0], spec))}"
            fix_there = [f"the `after` at fault is that of {at}: fix it there (`unlearnspec check` that file)"]
        if other is None:
            if via is None:
                return [_diag("UL216", obj, f"`after` names {code_span(obj.after.value)}, but {code_span(file)} is not a "
                                            "spec file that can be read",
                              help=["paths resolve relative to this spec's folder"])]
            return [_diag("UL216", obj, f"{through} continues {code_span(f'{file}#{name}')} from {at}, but "
                                        f"{code_span(_shown_path(path, spec))} is not a spec file that can be read",
                          help=fix_there)]
        found = next((o for o in other.objectives if o.name == name), None)
        if found is None:
            # an objective never continues itself: not a name to suggest for its own `after`
            hint = did_you_mean(name, [o.name for o in other.objectives if via is None or (path, o.name) != via])
            if via is not None:
                return [_diag("UL216", obj, f"{through} continues {code_span(name)} from {at}, which is not an objective "
                                            f"in {code_span(_shown_path(path, spec))}",
                              help=fix_there + ([f"did you mean {code_span(hint)} there?"] if hint else []))]
            return [_diag("UL216", obj, f"`after` names {code_span(name)}, which is not an objective in {code_span(file)}",
                          help=[f"did you mean {code_span(f'{file}#{hint}')}?"] if hint else
                          [f"{code_span(file)} defines " + ", ".join(code_span(o.name) for o in other.objectives)],
                          hint=f"{file}#{hint}" if hint else None)]
        if (path, name) in seen:
            if (path, name) == (here, obj.name):
                return [_diag("UL217", obj, f"{through} comes back to {code_span(obj.name)}",
                              help=["a request continues from an earlier one; remove one `after` to break the cycle"])]
            return [_diag("UL217", obj, f"{through} runs into a cycle: it reaches {code_span(name)} in "
                                        f"{code_span(_shown_path(path, spec))} a second time, from {at}",
                          help=["the cycle is among the other spec files: remove one `after` there to break it "
                                "(`unlearnspec check` them)"])]
        if via is None:  # the objective this one continues: the same checks as a link inside one file
            if found.unlearned is not None:
                return [_diag("UL220", obj, f"{code_span(obj.name)} continues {code_span(obj.after.value)}, which audits a given "
                                            "checkpoint and unlearns nothing",
                              help=["name the checkpoint as this objective's `model` instead of `after`"])]
            theirs = found.model.value if found.model is not None else DEFAULT_MODEL
            mine = obj.model.value if obj.model is not None else DEFAULT_MODEL
            if _model_target(mine, Path(spec.base_dir)) != _model_target(theirs, path.parent):
                return [_diag("UL209", obj, f"{code_span(obj.name)} continues {code_span(obj.after.value)} but names another model "
                                            f"({code_span(file)} unlearns from {code_span(theirs)})",
                              labels=[Label(span=obj.model.span, message="this objective names another")]
                              if obj.model is not None else [],
                              help=["a chain applies requests one after another to one model; name the same model "
                                    "(a local folder is compared where each spec's path leads)"])]
        seen.add((path, name))
        if found.after is None:
            return []
        via = (path, name)
        nfile, name = split_ref(found.after.value)
        if nfile is not None:
            base, file = path.parent, nfile
        else:
            base, file = path.parent, path.name
    return [_diag("UL216", obj, f"{through} is longer than {MAX_FILES} links")]


def chain_diagnostics(spec: Spec, read_other: Reader | None = None) -> list[Diagnostic]:
    """The chain's findings (UL209, UL216–UL218, UL220); ``read_other`` reads the other spec files a link names
    (:attr:`~unlearnspec.compiler.unit.CompileOptions.read_other`)."""
    by_name = {o.name: o for o in spec.objectives}
    out: list[Diagnostic] = []
    here = (Path(spec.base_dir) / Path(spec.path).name).resolve()
    # who continues each objective, keyed by the file its link leads to and its name: `after "D.unlearn#w"` twice is
    # a fork as much as `after "w"` twice
    followers: dict[tuple[Path, str], list[Objective]] = defaultdict(list)
    for o in spec.objectives:
        if o.budget is not None and o.after is not None:
            out.append(Diagnostic(
                code="UL209", severity="error", span=o.budget.span, objective=o.name,
                message=f"a `budget` belongs on the first objective of a chain, and {code_span(o.name)} continues another",
                labels=[Label(span=o.after.span, message="this objective continues another")],
                help=["move the `budget` block to the objective the chain starts with"]))
        if o.after is None:
            continue
        ref = o.after.value
        file, name = split_ref(ref)
        if file is not None:
            problems = _external(o, spec, read_other)
            out.extend(problems)
            if not problems:
                followers[((Path(spec.base_dir) / file).resolve(), name)].append(o)
            continue
        if name not in by_name:
            hint = did_you_mean(name, [n for n in by_name if n != o.name])
            out.append(_diag("UL216", o, f"`after` names {code_span(name)}, which is not an objective in this file",
                             help=([f"did you mean {code_span(hint)}?"] if hint else [])
                             + ['an objective in another file is named `after "file.unlearn#name"`'], hint=hint))
            continue
        followers[(here, name)].append(o)
        prev = by_name[name]
        if prev.unlearned is not None:  # an audit produces no model to continue from (docs/models.md)
            out.append(_diag("UL220", o, f"{code_span(o.name)} continues {code_span(name)}, which audits a given checkpoint and "
                             "unlearns nothing",
                             labels=[Label(span=prev.unlearned.span, message="audited as given")],
                             help=["name the checkpoint as this objective's `model` instead of " + code_span(f'after "{name}"')]))
        base = Path(spec.base_dir)  # a local folder compared where it leads (`./m` and `m` are one model)
        if (o.model is not None and prev.model is not None
                and _model_target(o.model.value, base) != _model_target(prev.model.value, base)):
            out.append(_diag("UL209", o, f"{code_span(o.name)} continues {code_span(name)} but names another model",
                             labels=[Label(span=prev.model.span, message=f"{code_span(name)} unlearns from this model"),
                                     Label(span=o.model.span, message="this objective names another")],
                             help=["a chain applies requests one after another to one model; name the same model"]))
    for fs in followers.values():
        for extra in fs[1:]:
            name = extra.after.value if extra.after is not None else ""
            out.append(_diag("UL218", extra, f"{code_span(extra.name)} and {code_span(fs[0].name)} both continue {code_span(name)}",
                             labels=[Label(span=fs[0].after.span, message="already continued here")]  # type: ignore[union-attr]
                             if fs[0].after is not None else [],
                             help=[f"make {code_span(extra.name)} continue {code_span(fs[-1 if extra is not fs[-1] else 0].name)}, "
                                   "so that the requests apply one after another"]))
    out.extend(_preserves_earlier_targets(spec, by_name))
    reported: set[str] = set()
    for o in spec.objectives:  # cycles inside the file
        path: list[str] = []
        cur = o
        while cur.after is not None and split_ref(cur.after.value)[0] is None and cur.after.value in by_name:
            if cur.name in path:
                cycle = path[path.index(cur.name):]
                if not reported & set(cycle):
                    reported |= set(cycle)
                    first = min((by_name[n] for n in cycle), key=lambda x: (x.span.line, x.span.column))
                    others = [by_name[n] for n in cycle if n != first.name]
                    out.append(_diag("UL217", first, "the `after` links form a cycle: "
                                     + " → ".join(code_span(n) for n in [*cycle, cycle[0]]),
                                     labels=[Label(span=x.after.span, message="part of the cycle")  # type: ignore[union-attr]
                                             for x in others],
                                     help=["a chain starts somewhere: remove the `after` of the first request"]))
                break
            path.append(cur.name)
            cur = by_name[cur.after.value]
    return out


def _earlier(o: Objective, by_name: dict[str, Objective]) -> list[Objective]:
    """The objectives ``o`` continues in this file, nearest first (a cycle is cut where it closes)."""
    out: list[Objective] = []
    cur = o
    while cur.after is not None and split_ref(cur.after.value)[0] is None and cur.after.value in by_name:
        cur = by_name[cur.after.value]
        if cur is o or cur in out:
            break
        out.append(cur)
    return out


def _preserves_earlier_targets(spec: Spec, by_name: dict[str, Objective]) -> list[Diagnostic]:
    base = Path(spec.base_dir)
    out: list[Diagnostic] = []
    for o in spec.objectives:
        for prev in _earlier(o, by_name):
            if prev.target is None or not prev.target.forget:
                continue
            forget = forget_texts(prev.target.forget, base)
            for p, shared in preserved_overlap(o.preserve, forget, base):
                text, line = shared[0]
                first, where = forget[text]
                many = len(shared) > 1
                out.append(Diagnostic(
                    code="UL209", severity="error", span=p.span, objective=o.name,
                    message=f"{len(shared)} text{'s' if many else ''} of {code_span(p.raw)} {'are' if many else 'is'} what "
                            f"{code_span(prev.name)}, earlier in this chain, forgets, so {code_span(o.name)} would preserve "
                            f"{'them' if many else 'it'}",
                    labels=[Label(span=where.span, message=f"record {first} here, forgotten by {code_span(prev.name)}")],
                    help=[f"record {line} of {code_span(p.raw)}: \"{shown(text)}\"",
                          "a later request trains the model to keep what it preserves, undoing the earlier "
                          "removal that the run re-checks on every later model; preserve data without the "
                          "earlier requests' forget records"]))
    return out


def chains(spec: Spec) -> list[list[Objective]]:
    """Each chain of objectives in this file, first objective first. An objective that neither continues
    another nor is continued is left out, unless it has a `budget`: that is a chain of one, whose budget the plan
    records (so that `diff` sees it) and the run checks.

    Call only on a spec without chain errors. An objective whose `after` names another file starts a
    chain here: the objectives of that file are recorded as the chain's external start."""
    by_name = {o.name: o for o in spec.objectives}
    nxt: dict[str, Objective] = {}
    for o in spec.objectives:
        if o.after is not None and split_ref(o.after.value)[0] is None and o.after.value in by_name:
            nxt[o.after.value] = o
    heads = [o for o in spec.objectives
             if (o.after is None or split_ref(o.after.value)[0] is not None)
             and (o.name in nxt or o.after is not None or o.budget is not None)]
    out = []
    for head in heads:
        line, cur = [head], head
        while cur.name in nxt and len(line) <= len(spec.objectives):
            cur = nxt[cur.name]
            line.append(cur)
        out.append(line)
    return out
