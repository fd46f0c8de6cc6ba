"""Stage execution for one run: prepare ▶ reference ▶ unlearn ▶ evaluate ▶ attack ▶ verdict.

An audit (the spec's ``unlearned``) has a ``given`` stage instead of ``unlearn``: the named checkpoint is checked
against the plan's hash and loaded as the unlearned model; every other stage runs unchanged.

Each stage's outputs go to the objective's folder in the run directory and the stage is marked done
in ``run.json`` only after they are written, so a resumed run skips exactly the finished stages.
Models are saved with ``save_pretrained(safe_serialization=True)`` into a temporary folder that is
renamed into place: a kill never leaves a half-written model that a resume would trust. The evaluation's results
(``checks.json``, ``generations.jsonl``) are read back on resume only while they hash to what ``run.json`` records
of them; otherwise the (deterministic) evaluation is done again. Every file is written confined to the run folder.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from unlearnspec.builtin.corpus import build_corpus
from unlearnspec.builtin.recipe import RECIPE, RECIPES
from unlearnspec.catalog.methods import REFUSAL_TEXT
from unlearnspec.inputs import spec_path
from unlearnspec.io import atomic_write_text, replace_folder
from unlearnspec.markdown import code_span
from unlearnspec.plan import (
    AttackStage,
    DataSets,
    EvaluateStage,
    FileHash,
    GivenStage,
    ObjectivePlan,
    Plan,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
)
from unlearnspec.records import Record, distinct, folder_files, read_records, sha256_path, split_holdout
from unlearnspec.report import (
    TrainingLog,
    build_objective_report,
)
from unlearnspec.report.model import CheckResult, DataUse, ObjectiveReport, PromptInfo
from unlearnspec.runtime import checks
from unlearnspec.runtime.builtin_model import ensure_retrained
from unlearnspec.runtime.checks import DataBundle
from unlearnspec.runtime.distributed import Distributed
from unlearnspec.runtime.loading import (
    E_BAD_MODEL,
    LoadError,
    describe_error,
    load_model,
    tokenizer_difference,
)
from unlearnspec.runtime.methods import METHODS
from unlearnspec.runtime.methods import unlearn as run_method
from unlearnspec.runtime.methods.guard import GUARD_FILE, OutputGuard
from unlearnspec.runtime.prompting import PromptFormat, check_planned_format
from unlearnspec.runtime.rundir import (
    E_STALE_PLAN,
    RunDir,
    RunError,
    RunState,
    model_problem,
    model_record,
    now,
    safe_name,
)

log = logging.getLogger("unlearnspec.run")


def _stage_of(op: ObjectivePlan, kind: type) -> Any:
    return next((s for s in op.stages if isinstance(s, kind)), None)


def local_model_path(source: str, spec_dir: Path) -> str:
    """A plan's local model folder as the compiler read it (:func:`unlearnspec.inputs.spec_path`), resolved."""
    return str(spec_path(source, spec_dir).resolve())


def _load_records(paths: list[str], spec_dir: Path) -> list[Record]:
    out: list[Record] = []
    for p in paths:
        if p.startswith("builtin:"):
            split = p.split(":", 1)[1]
            out.extend(getattr(build_corpus(), split))
        else:
            out.extend(read_records(spec_dir / p))
    return out


RESULTS_FILE = "checks.json"
GENERATIONS_FILE = "generations.jsonl"
"""Every generated output of the evaluation, one JSON object a line, beside the report in the run
directory: not in report.json, which may be shared (outputs can hold personal data); report.json
keeps its path and sha256."""


def _fewer(once: list[Record], given: list[Record]) -> int | None:
    """How many different records a set holds, where that is fewer than it gives (the report then says so)."""
    return len(once) if len(once) < len(given) else None


def holdout_halves(d: DataSets, holdout: list[Record], seed: int) -> tuple[list[Record], list[Record]]:
    """(calibration, evaluation) holdout records: the plan's split, or ``split_holdout``'s for a plan
    that predates it. Calibration feeds the stopping rule, evaluation the verdict; never both."""
    cal, ev = d.holdout_calibration, d.holdout_evaluation
    if not cal and not ev:
        cal, ev = split_holdout(holdout, seed)
    if any(i >= len(holdout) for i in [*cal, *ev]) or set(cal) & set(ev):
        raise ValueError("the plan's holdout split does not fit its holdout data")
    return [holdout[i] for i in cal], [holdout[i] for i in ev]


def _save_model_atomically(model: Any, tokenizer: Any, dest: Path, within: Path | None = None) -> None:
    """Save into ``DEST.partial``, fsync every file and folder, rename into place (:func:`replace_folder`): once
    run.json marks the stage done, the model is on the disk whole."""

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)

    replace_folder(dest, write, within=within)


def load_given(folder: Path, form: str, original: Any, tok: Any, *, allow_remote_code: bool = False) -> tuple[Any, Any]:
    """An audited checkpoint as the unlearned model: a model folder as it is, or a peft adapter merged into a
    copy of ``original`` (which stays as loaded). The folder is only read."""
    if form != "adapter":
        model, given_tok = load_model(str(folder), allow_remote_code=allow_remote_code)
        _same_tokens(tok, given_tok, f"the audited checkpoint {code_span(folder)}")
        return model, given_tok
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(copy.deepcopy(original), str(folder), is_trainable=False).merge_and_unload()
    except Exception as exc:  # an adapter for another architecture, a truncated or foreign adapter file
        raise LoadError(f"the adapter in {code_span(folder)} cannot be applied to the original model: {describe_error(exc)}",
                        code=E_BAD_MODEL, help=["an audited adapter must have been trained on the spec's `model`; "
                                                "give the merged model folder instead, or the adapter made for "
                                                "this model"]) from exc
    model.eval()
    return model, tok


def _same_tokens(original_tok: Any, tok: Any, what: str) -> None:
    """RT106 when ``tok`` does not read text as the original model's tokenizer does (``tokenizer_difference``)."""
    differs = tokenizer_difference(original_tok, tok)
    if differs is not None:
        raise LoadError(f"{what} cannot be compared with the original model: {differs}", code=E_BAD_MODEL,
                        help=["every score compares the two models token by token on the same items, so both must "
                              "tokenize text alike; give the folder with the original model's tokenizer files"])


LATER_THAN_UNLEARN = ("evaluate", "attack", "verdict")
"""The stages that read the unlearned model: done again whenever the unlearn stage is."""


class ObjectiveRun:
    """Executes one objective's stages against its folder in the run directory."""

    def __init__(self, plan: Plan, op: ObjectivePlan, rd: RunDir, state: RunState, *, quiet: bool,
                 allow_remote_code: bool, dist: Distributed | None = None, start_from: str | None = None,
                 exclude_texts: list[str] | None = None) -> None:
        # A chain (runtime/chain.py): unlearn from ``start_from`` (the previous step's model) instead of
        # the source, and retrain the reference without ``exclude_texts`` (the earlier targets) too.
        self.start_from = start_from
        self.exclude_texts = exclude_texts or []
        self.dist = dist or Distributed()
        self.plan = plan
        self.op = op
        self.rd = rd
        self.state = state
        self.quiet = quiet
        self.allow_remote_code = allow_remote_code
        self.dir = rd.root / "objectives" / safe_name(op.objective.name)
        if self.dist.is_main:
            self.dir = rd.objective_dir(op.objective.name)
        self.spec_dir = Path(state.spec_dir)
        self.key = op.objective.name

    # -- state helpers -------------------------------------------------------------------------

    def _save(self) -> None:
        if self.dist.is_main:  # one writer per run directory
            self.rd.save_state(self.state)

    def _done(self, stage: str) -> bool:
        return self.state.stage(f"{self.key}/{stage}").status == "done"

    def _start(self, stage: str) -> None:
        st = self.state.stage(f"{self.key}/{stage}")
        st.status, st.started_at = "running", now()
        self._save()
        log.info("[%s] %s", self.key, stage)

    def _finish(self, stage: str, **detail: Any) -> None:
        st = self.state.stage(f"{self.key}/{stage}")
        st.status, st.finished_at = "done", now()
        st.detail.update(detail)
        self._save()

    def detail(self, stage: str) -> dict[str, Any]:
        return self.state.stage(f"{self.key}/{stage}").detail

    # -- stages ----------------------------------------------------------------------------------

    def prepare(self) -> tuple[Any, Any, Any]:
        self._start("prepare")
        d = self.op.data
        t = self.op.objective.target
        ev: EvaluateStage | None = _stage_of(self.op, EvaluateStage)
        holdout = _load_records(d.holdout, self.spec_dir)
        calibration, evaluation = holdout_halves(d, holdout, self.plan.seed)
        given = {role: _load_records(getattr(d, role), self.spec_dir) for role in ("forget", "retain", "neighbors", "test")}
        once = {role: distinct(records) for role, records in given.items()}
        # evaluation counts each record once (a repeat is no new item: UL222); unlearning trains on the sets as given
        data = DataBundle(
            forget=once["forget"], retain=once["retain"], neighbors=once["neighbors"], test=once["test"],
            holdout=distinct(evaluation), aliases=[t.name, *t.aliases],
            attribute=ev.representation_probe if ev else None, holdout_calibration=distinct(calibration),
            training={role: given[role] for role in ("forget", "retain") if len(given[role]) > len(once[role])})
        source = self.op.model.source
        if self.op.model.kind == "local":
            source = local_model_path(source, self.spec_dir)
        model, tok = load_model(source, allow_remote_code=self.allow_remote_code, revision=self.op.model.revision)
        # the one prompt format every evaluation, method and attack of this objective uses (runtime/prompting.py)
        self.fmt: PromptFormat = check_planned_format(tok, self.op.model)
        self.data_use = [DataUse(role=role, sources=list(getattr(d, role)), records=len(given[role]),
                                 distinct=_fewer(data.get(role), given[role]))
                         for role in ("forget", "retain", "neighbors", "test") if getattr(d, role)]
        if d.holdout:
            unlearn_stage = _stage_of(self.op, UnlearnStage)
            self.data_use.insert(1, DataUse(
                role="holdout", sources=list(d.holdout), records=len(holdout), distinct=_fewer(distinct(holdout), holdout),
                calibration=len(data.holdout_calibration), evaluation=len(data.holdout),
                calibration_stops_training=unlearn_stage is not None and unlearn_stage.stopping.kind == "holdout_loss"))
        self._finish("prepare", records={k: len(data.get(k)) for k in ("forget", "retain", "neighbors", "holdout", "test")},
                     model=self.op.model.source, prompt=self.fmt.describe())
        return data, model, tok

    def reference(self, data: Any) -> tuple[Any, Any] | None:
        """The reference model; under a launch the main process makes it and the other ranks load it."""
        if not self.dist.active:
            return self._reference(data)
        if self.dist.is_main:
            ref = self._reference(data)
            self.dist.broadcast(self.detail("reference"))
            return ref
        det = self.dist.broadcast(None)
        return load_model(det["path"], allow_remote_code=self.allow_remote_code) if det.get("path") else None

    def _reference(self, data: Any) -> tuple[Any, Any] | None:
        stage: ReferenceStage | None = _stage_of(self.op, ReferenceStage)
        if stage is None or stage.strategy == "holdout":
            if not self._done("reference"):
                self._start("reference")
                self._finish("reference", strategy="holdout")
            return None
        if self._done("reference"):
            path = self.detail("reference")["path"]
            if stage.strategy != "retrain" or Path(path).is_dir():
                return load_model(path)
            # the retrained reference lives in the cache, which may have been cleared since: retraining is
            # deterministic and keyed by what it excludes, so the stage is done again and gives the same model
            log.info("the retrained reference `%s` is no longer in the cache: retraining it", path)
        self._start("reference")
        if stage.strategy == "retrain":
            exclude = [t for r in data.forget for t in r.training_texts()] + self.exclude_texts
            path = str(ensure_retrained(exclude, recipe=RECIPES.get(self.op.model.source, RECIPE)))
        else:
            assert stage.model is not None
            path = stage.model if Path(stage.model).is_absolute() or not (self.spec_dir / stage.model).exists() \
                else str((self.spec_dir / stage.model).resolve())
        model, tok = load_model(path, allow_remote_code=self.allow_remote_code)
        if stage.strategy != "retrain":
            _same_tokens(self.original[1], tok, f"the reference model {code_span(stage.model)}")
        self._finish("reference", strategy=stage.strategy, path=path)
        return model, tok

    def given(self, stage: GivenStage, original: Any, tok: Any) -> tuple[Any, Any]:
        """An audit: the checkpoint the spec names, checked against the plan's hash, then loaded as the unlearned
        model (a peft adapter is applied to a copy of the original). The folder is only read, never written."""
        folder = spec_path(stage.source, self.spec_dir).resolve()
        self._start("given")
        if not folder.is_dir():
            raise RunError(E_STALE_PLAN, f"the unlearned model folder {code_span(stage.source)} no longer exists",
                           help=[f"the plan audits {code_span(folder)}; restore it, or make a new plan and review it"])
        found = sha256_path(folder)
        if found != stage.sha256:
            raise RunError(E_STALE_PLAN, f"the unlearned model folder {code_span(stage.source)} changed since the plan was "
                           "made", help=[f"the plan pins sha256 {stage.sha256[:12]}…, the folder now hashes to "
                                         f"{found[:12]}…", "audit the checkpoint the plan was reviewed for, or make a "
                                         "new plan (`unlearnspec plan SPEC -o plan.json`) and review it"])
        model, utok = load_given(folder, stage.form, original, tok, allow_remote_code=self.allow_remote_code)
        self._finish("given", sha256=found, source=stage.source, form=stage.form)
        return model, utok

    def unlearn(self, data: Any, model: Any, tok: Any) -> tuple[Any, Any, Any, TrainingLog | None]:
        """Returns (unlearned model, its tokenizer, the output guard or None, training log).

        Under a launch every rank trains (DDP or FSDP); the main process saves the result and the other
        ranks load it from the run directory, so all of them evaluate the same model. In an audit nothing
        is unlearned here: every rank loads the given checkpoint itself."""
        given: GivenStage | None = _stage_of(self.op, GivenStage)
        if given is not None:
            unlearned, utok = self.given(given, model, tok)
            return unlearned, utok, None, None
        done = self._unlearn(data, model, tok)
        if not self.dist.active:
            return done
        det = self.dist.broadcast(self.detail("unlearn") if self.dist.is_main else None)
        if self.dist.is_main:
            return done
        out = self.dir / "unlearn"
        guard = OutputGuard.load(out) if (out / "guard.json").exists() else None
        training = TrainingLog.model_validate(det["training"]) if det.get("training") else None
        if det.get("model_dir"):
            m, t = load_model(det["model_dir"])
            return m, t, guard, training
        return model, tok, guard, training

    def _unlearn(self, data: Any, model: Any, tok: Any) -> tuple[Any, Any, Any, TrainingLog | None]:
        stage: UnlearnStage = _stage_of(self.op, UnlearnStage)
        out = self.dir / "unlearn"
        model_dir = out / "model"
        guard_path = out / "guard.json"
        if self._done("unlearn"):
            det = self.detail("unlearn")  # model_dir: in this run folder (RunDir.load_state resolves it)
            damaged = model_problem(Path(det["model_dir"]), det) if det.get("model_dir") and self.dist.is_main else None
            damaged = self.dist.broadcast(damaged)
            if damaged is None:
                guard = OutputGuard.load(out) if guard_path.exists() else None
                training = TrainingLog.model_validate(det["training"]) if det.get("training") else None
                if det.get("model_dir"):
                    self._made_sha256 = det.get("model_sha256")  # checked just now: the report names it by this
                    m, t = load_model(det["model_dir"])
                    return m, t, guard, training
                return model, tok, guard, training
            log.warning("[%s] the unlearned model `%s` %s: the unlearn stage is done again, from its last complete "
                        "checkpoint", self.key, det["model_dir"], damaged)
            for later in LATER_THAN_UNLEARN:  # measured on the model now made again, never on the one that was lost
                self.state.stage(f"{self.key}/{later}").status = "pending"
        self._start("unlearn")
        if not self.dist.is_main:  # a helper rank: take part in the Trainer's DDP / FSDP, write nothing
            spec = METHODS.get(stage.method)
            if spec is not None and spec.trainer is not None:
                resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("checkpoint-*"))
                run_method(stage, copy.deepcopy(model), tok, data.for_training("forget"), data.for_training("retain"),
                           data.holdout_calibration, out,
                           resume_from_checkpoint=True if resume else None, quiet=True,
                           aliases=data.aliases, model_source=self.op.model.source, fmt=self.fmt,
                           eval_batch_size=_stage_of(self.op, EvaluateStage).eval_batch_size
                           if _stage_of(self.op, EvaluateStage) else 32)
            return model, tok, None, None
        out.mkdir(parents=True, exist_ok=True)
        resume = any((out / "checkpoints").glob("checkpoint-*")) if (out / "checkpoints").exists() else False
        working = copy.deepcopy(model)  # get_peft_model and training mutate: never touch the source
        # in a chain, exact retraining leaves out every target so far (the earlier requests' too), not only its own
        forget = data.for_training("forget") + ([Record(text=t) for t in self.exclude_texts]
                                                if stage.method == "retrain" else [])
        result = run_method(stage, working, tok, forget, data.for_training("retain"),
                            data.holdout_calibration, out,
                            resume_from_checkpoint=True if resume else None, quiet=self.quiet,
                            aliases=data.aliases, model_source=self.op.model.source, fmt=self.fmt,
                            eval_batch_size=_stage_of(self.op, EvaluateStage).eval_batch_size
                            if _stage_of(self.op, EvaluateStage) else 32)
        training = _training_log(result)
        guard = getattr(result, "guard", None)
        model_dir_str: str | None = None
        if stage.method == "filter":
            unlearned = model
        elif stage.method == "retrain" and getattr(result, "model_dir", None):
            model_dir_str = str(result.model_dir)
            unlearned = result.model
        else:
            unlearned = result.model
            _save_model_atomically(unlearned, tok, model_dir, within=self.rd.root)
            model_dir_str = str(model_dir)  # run.json stores it relative to the run folder (RunDir.save_state)
        if guard is not None:
            guard.save(out)
        record = model_record(Path(model_dir_str)) if model_dir_str else {}  # sizes and sha256, checked on resume
        self._made_sha256 = record.get("model_sha256")
        self._finish("unlearn", model_dir=model_dir_str, **record, steps=getattr(result, "steps_done", 0),
                     stop_reason=getattr(result, "stop_reason", None),
                     wall_s=getattr(result, "wall_time_s", None),
                     samples_per_s=getattr(result, "train_samples_per_second", None),
                     training=training.model_dump(mode="json") if training else None)
        return unlearned, tok, guard, training

    def run(self) -> ObjectiveReport:
        data, original, tok = self.prepare()
        self.data, self.original = data, (original, tok)
        reference = self.reference(data)
        start, stok = (original, tok)
        if self.start_from is not None:
            from unlearnspec.runtime.loading import load_model

            start, stok = load_model(self.start_from, allow_remote_code=self.allow_remote_code)
        unlearned, utok, guard, training = self.unlearn(data, start, stok)
        # every model evaluated on this rank's device (its own GPU under a launch; no change on CPU)
        original, unlearned = self.dist.place(original), self.dist.place(unlearned)
        if reference is not None:
            reference = (self.dist.place(reference[0]), reference[1])
        ev: EvaluateStage = _stage_of(self.op, EvaluateStage) or EvaluateStage()
        attack_stage: AttackStage = _stage_of(self.op, AttackStage) or AttackStage()
        unlearn_stage: UnlearnStage = _stage_of(self.op, UnlearnStage)
        ref_stage: ReferenceStage | None = _stage_of(self.op, ReferenceStage)
        results_path = self.dir / RESULTS_FILE
        results = self._finished_results(results_path) if self._done("evaluate") and self._done("attack") else None
        if results is None:
            self._start("evaluate")
            ctx = checks.EvalContext(
                op=self.op, data=data, stage=ev, original=(original, tok),
                unlearned=(unlearned, utok), reference=reference, guard=guard,
                refusal_text=unlearn_stage.refusal_text if unlearn_stage else REFUSAL_TEXT,
                attacks=[a for a in attack_stage.attacks if isinstance(a, RelearnAttack | QuantizeAttack)],
                work_dir=self.dir,
                strategy=ref_stage.strategy if ref_stage else "holdout",
                confidence=ev.confidence, seed=self.plan.seed, fmt=self.fmt)

            def attack_phase() -> None:
                self._finish("evaluate")
                self._start("attack")

            outputs: list[dict[str, Any]] = []
            # on every rank of a launch: each forward pass and generation is shared out (evaluation/sharding.py)
            results = checks.compute(ctx, on_attack_start=attack_phase, generations=outputs)
            # the attacked models' generations (`unlearned@quantize_int4`, `reference@relearn_20`, ...: each row names
            # its model) after those of the models as evaluated, so that what an attack changed can be audited
            outputs.sort(key=lambda o: "@" in str(o.get("model", "")))
            written: dict[str, str] = {}
            if self.dist.is_main:
                atomic_write_text(self.dir / GENERATIONS_FILE, "".join(
                    json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in outputs), within=self.rd.root)
                atomic_write_text(results_path, json.dumps({k: v.model_dump(mode="json") for k, v in results.items()},
                                                           indent=2, sort_keys=True) + "\n", within=self.rd.root)
                # what a resume reads back instead of evaluating again: checked against these first
                written = {name: sha256_path(self.dir / name) for name in (RESULTS_FILE, GENERATIONS_FILE)}
            self._finish("attack", written=written)
        self._start("verdict")
        report = build_objective_report(self.op, results, training=training)
        report = report.model_copy(update={"prompt": PromptInfo.model_validate(self.fmt.describe()),
                                           "data": self.data_use})
        gen = self.dir / GENERATIONS_FILE
        if gen.is_file():
            rel = gen.relative_to(self.rd.root).as_posix()
            report = report.model_copy(update={"generations": FileHash(path=rel, sha256=sha256_path(gen),
                                                                      role="generations")})
        if self.dist.is_main:
            report = report.model_copy(update={"models": self._model_hashes(original)})
        self._finish("verdict", overall=report.overall)
        return report

    @property
    def retrained_without(self) -> str:
        """What a retrained reference (or an exact retrain) of this run leaves out: its forget set, and in a chain every
        earlier request's target too (runtime/chain.py)."""
        if self.exclude_texts:
            return "retrained without every target so far (this request's forget set and every earlier request's)"
        return "retrained without the forget set"

    def _finished_results(self, path: Path) -> dict[str, CheckResult] | None:
        """The results a finished evaluation wrote (``checks.json``), read back on resume; ``None`` (the evaluation
        is done again: it is deterministic) when the file, or ``generations.jsonl`` the report names by its hash, is
        missing, damaged or no longer what the stage wrote (``run.json`` records their sha256)."""
        written = self.detail("attack").get("written") or {}
        why = None
        for name in (RESULTS_FILE, GENERATIONS_FILE):
            f = self.dir / name
            if not f.is_file():
                why = f"{name} is missing"
            elif name in written and sha256_path(f) != written[name]:
                why = f"{name} is not what the stage wrote (another sha256)"
            if why:
                break
        if why is None:
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                return {k: CheckResult.model_validate(v) for k, v in raw.items()}
            except (OSError, UnicodeDecodeError, ValueError, AttributeError):
                why = f"{RESULTS_FILE} cannot be read"
        log.warning("[%s] the finished evaluation's results cannot be used (%s): evaluating again", self.key, why)
        return None

    def _model_hashes(self, original: Any) -> list[FileHash]:
        """The content hash of every model folder the verdicts are about: the original as loaded (the plan
        pins a built-in by its recipe, not by its weights), the reference, and the unlearned model this run
        wrote — the artifact a release would ship, so a report can be matched to it."""
        out: list[FileHash] = []
        src = getattr(original, "unlearnspec_dir", None)
        if src and Path(src).is_dir():
            m = self.op.model
            # a local folder or a pinned hub snapshot: the plan pins it by the same content hash, and the preflight
            # has checked each of its files, so unless a file was added since, the plan's hash is the folder's (no
            # second read of the weights); a built-in is pinned by its recipe, so its weights are hashed here
            base = Path(src) if m.kind == "hub" else self.spec_dir  # a snapshot's files are listed inside it
            listed = {(base / f.path).resolve() for f in m.files}
            found = {f.resolve() for f in folder_files(src)}
            sha = m.sha256 if m.kind in ("local", "hub") and m.sha256 and listed == found else sha256_path(src)
            out.append(FileHash(path=m.source, sha256=sha, role="original"))
        ref = self.detail("reference").get("path")
        if ref and Path(ref).is_dir():
            stage: ReferenceStage | None = _stage_of(self.op, ReferenceStage)
            name = (f"{self.op.model.source} {self.retrained_without}" if stage and stage.strategy == "retrain"
                    else str(stage.model if stage and stage.model else ref))
            out.append(FileHash(path=name, sha256=sha256_path(ref), role="reference"))
        made = self.detail("unlearn").get("model_dir")  # in this run folder (or the cache: a retrained model)
        if made and Path(made).is_dir():
            # the hash taken when this process saved it, or checked it on resume: the model that was evaluated
            sha = getattr(self, "_made_sha256", None) or sha256_path(Path(made).resolve())
            out.append(FileHash(path=self.rd.shown(made), sha256=sha, role="unlearned"))
        guard = self.dir / "unlearn" / GUARD_FILE  # a system filter: the served results are about it as much
        if guard.is_file():
            out.append(FileHash(path=self.rd.shown(guard), sha256=sha256_path(guard), role="filter"))
        return out


def _training_log(result: Any) -> TrainingLog | None:
    hist = getattr(result, "log_history", None) or []
    steps, fl, rl = [], [], []
    for row in hist:
        if "forget_loss" in row and "step" in row:
            steps.append(int(row["step"]))
            fl.append(row.get("forget_loss"))
            rl.append(row.get("retain_loss"))
    if not steps:
        return None
    if all(x is None for x in rl):
        rl = []
    return TrainingLog(steps=steps, forget_loss=fl, retain_loss=rl, stop_reason=getattr(result, "stop_reason", None),
                       stop_threshold=getattr(result, "stop_threshold", None), batch=getattr(result, "batch", None))
