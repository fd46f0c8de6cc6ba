"""What every check reads: one model measured once (:class:`Measurer`), the data of an objective, and
the per-item series and point estimates the checks decide on (docs in :mod:`unlearnspec.runtime.checks`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unlearnspec.catalog.methods import REFUSAL_TEXT
from unlearnspec.plan import (
    EvaluateStage,
    ObjectivePlan,
    QuantizeAttack,
    RelearnAttack,
)
from unlearnspec.records import Record
from unlearnspec.runtime.evaluation import intervals, likelihood, mcq, metrics, mia, probes, representation
from unlearnspec.runtime.evaluation.generation import generate
from unlearnspec.runtime.evaluation.intervals import Estimate
from unlearnspec.runtime.prompting import PromptFormat, resolve

log = logging.getLogger("unlearnspec.run")



PRIVLEAK_ATTACK = "min_k"
PRIVLEAK_K = 0.4
"""MUSE's PrivLeak uses one attack for both models; open-unlearning's MUSE configs use Min-K% with
k = 0.4 (``privleak`` below), whatever the evaluate stage's ``mink_fraction`` for membership."""

SCORED_PARTS: likelihood.RecordPart = "both"
"""What of each record the likelihood pass scores: its document and its answer, each an item of its own type."""


def record_of(item_id: str) -> str:
    """The record an item id belongs to: ``forget[3]`` for ``forget[3]``, ``forget[3]:answer`` and
    ``forget[3]:paraphrased`` — the items of one record are resampled together."""
    return item_id.split(":", 1)[0]


ITEM_TYPES = ("documents", "qa", "qa_paraphrased")
"""Membership is decided per item type, worst type deciding: documents, question–answer pairs
(the answer given its question), and the answer given a held-out paraphrase of the question."""


def muse_privleak(auc_unlearned: float | Any, auc_reference: float | Any) -> Any:
    """MUSE PrivLeak in percent with MUSE's sign, from conventional AUCs (members scored higher,
    1 = complete leak): ``100 * (AUC_reference - AUC_unlearned) / (1 - AUC_reference)``.

    MUSE (arXiv:2407.06460) defines ``(AUC_unlearn - AUC_retrain) / AUC_retrain`` in its own,
    inverted AUC convention (AUC' = 1 - AUC); substituting gives the formula above. Negative means
    a leak (the original model sits near -100%), positive over-unlearning, 0 the reference."""
    return 100.0 * (auc_reference - auc_unlearned) / (1.0 - auc_reference)

MIN_FORGOTTEN = 0.05
"""How much knowledge ROUGE unlearning must have removed (original minus unlearned) before "the
fraction an attack recovers" means anything. Below it there is nothing to recover, and a recovery
of 0 would let ``robust_to_finetuning`` pass for a model that forgot nothing: such a check is not
evaluated, with the reason, and the efficacy checks say whether anything was forgotten."""


def nothing_forgotten(original: float | None, unlearned: float | None) -> str | None:
    """The not-evaluated reason of a recovery check when unlearning removed too little to recover."""
    if original is None or unlearned is None or not (math.isfinite(original) and math.isfinite(unlearned)):
        return None
    if original - unlearned >= MIN_FORGOTTEN:
        return None
    return (f"unlearning removed no measurable knowledge of these questions (knowledge ROUGE original "
            f"{original:.3g}, unlearned {unlearned:.3g}; at least {MIN_FORGOTTEN:g} must be removed), so "
            "there is nothing for the attack to recover; the efficacy checks show whether anything was forgotten")


@dataclass
class DataBundle:
    """The plan's data sets by role, loaded. Each list holds every record once (:func:`unlearnspec.records.distinct`):
    it is what evaluation counts items over. ``training`` keeps a set as given where it repeats records, for
    unlearning to train on as the user gave it (:meth:`for_training`)."""

    forget: list[Record]
    retain: list[Record]
    neighbors: list[Record]
    holdout: list[Record]  # the holdout's evaluation half: the non-members every verdict is measured on
    test: list[Record]
    aliases: list[str] = field(default_factory=list)
    attribute: str | None = None
    holdout_calibration: list[Record] = field(default_factory=list)  # the stopping rule's half, never evaluated on
    training: dict[str, list[Record]] = field(default_factory=dict)

    def get(self, name: str) -> list[Record]:
        return list(getattr(self, name, []) or [])

    def for_training(self, name: str) -> list[Record]:
        """A set as given, repeats included, for the unlearning method to train on."""
        return list(self.training.get(name) or self.get(name))


@dataclass
class Series:
    """Per-item values of one measurement, with the ids of the items. ``groups`` names the record behind each
    value where one record gives several (a question's paraphrases, its adversarial wrappers): the values of
    one record are resampled together, and the record is the item an interval counts."""

    ids: list[str]
    values: list[float]
    groups: list[str] | None = None
    types: list[str] | None = None  # the part of each value (an item type, a template) where a measurement mixes them
    type_name: str = "item types"  # what the parts are, in words ("item types", "templates")

    @property
    def mean(self) -> float | None:
        xs = [x for x in self.values if x is not None and math.isfinite(x)]
        return float(np.mean(xs)) if xs else None


def _point(values: Sequence[float | None], groups: Sequence[str] | None = None) -> Estimate | None:
    """The mean without an interval; its ``n`` counts items as an interval would (records, with ``groups``)."""
    kept = [(x, g) for x, g in zip(values, groups if groups is not None else range(len(values)), strict=True)
            if x is not None and math.isfinite(x)]
    return _point_est(float(np.mean([x for x, _ in kept])), len({g for _, g in kept})) if kept else None


def _point_est(value: float | None, n: int) -> Estimate | None:
    """A value without an interval (intervals switched off, or a statistic without per-item values)."""
    if value is None or not math.isfinite(value):
        return None
    return Estimate(value, value, value, n, point=True)


def _point_gap(a: Sequence[float | None], b: Sequence[float | None],
               groups: Sequence[str] | None = None) -> Estimate | None:
    """The mean gap without an interval; its ``n`` counts items as an interval would (records, with ``groups``)."""
    keys: Sequence[Any] = groups if groups is not None else range(len(a))
    pairs = [(x, y, g) for x, y, g in zip(a, b, keys, strict=True) if x is not None and y is not None
             and math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        return None
    v = float(np.mean([x - y for x, y, _ in pairs]))
    n = len({g for _, _, g in pairs})
    return Estimate(v, v, v, n, n, point=True)


def _norm(text: str) -> str:
    return " ".join(probes.words(text))


TOKEN_VALUES: dict[str, Callable[[likelihood.TokenScores], Any]] = {
    "exact_memorisation": likelihood.TokenScores.exact_memorisation,
    "extraction_strength": likelihood.TokenScores.extraction_strength,
}
"""How each ``tokens`` metric of the catalog is computed from the teacher-forced scores. A metric not here is not
measured (its check says so), never measured as another one."""


class Measurer:
    def __init__(self, name: str, model: Any, tokenizer: Any, data: DataBundle, stage: EvaluateStage, *,
                 guard: Any = None, refusal_text: str = REFUSAL_TEXT, fmt: PromptFormat | None = None) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.fmt = resolve(fmt, tokenizer)  # the run's one prompt format (runtime/prompting.py)
        self.data = data
        self.stage = stage
        self.guard = guard
        self.refusal_text = refusal_text
        self._cache: dict[tuple[str, ...], Any] = {}
        self.outputs: list[dict[str, Any]] = []  # every generation, for the generations file (not the report)

    def _memo(self, key: tuple[str, ...], fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def _generate_fn(self) -> Callable[[list[str]], list[str]] | None:
        """The served system's decoding: the model's greedy outputs passed through the guard."""
        if self.guard is None:
            return None
        def fn(prompts: list[str]) -> list[str]:
            outs = generate(self.model, self.tokenizer, prompts, max_new_tokens=self.stage.max_new_tokens,
                            batch_size=self.stage.eval_batch_size)
            return [self.guard.apply(o) for o in outs]

        return fn

    # -- outputs ----------------------------------------------------------------------------

    def probe(self, dataset: str, name: str) -> metrics.QAResult:
        def compute() -> metrics.QAResult:
            records = self.data.get(dataset)
            templates = next((p.templates for p in self.stage.probes if p.name == name), None) or None
            facts = [r.text for r in self.data.forget if r.text] or None if name == "in_context" else None
            ps = probes.probe_set(name, records, templates=templates, facts=facts, fmt=self.fmt,
                                  tokenizer=self.tokenizer)
            qa = metrics.answer_probes(self.model, self.tokenizer, ps, batch_size=self.stage.eval_batch_size,
                                       max_new_tokens=self.stage.max_new_tokens, generate_fn=self._generate_fn())
            for i, prompt, pred, gold, key, rec, leak in zip(qa.item_ids, qa.prompts, qa.predictions, qa.answers,
                                                             qa.keys, qa.recall, qa.leaks, strict=True):
                self.outputs.append({"model": self.name, "dataset": dataset, "probe": name, "item": f"{dataset}[{i}]",
                                     "prompt": prompt, "output": pred, "gold": gold, "key": key,
                                     "rouge_l_recall": rec, "leak": leak})
            return qa

        return self._memo(("probe", dataset, name), compute)  # type: ignore[no-any-return]

    def knowledge(self, dataset: str, probe: str) -> Series:
        """Knowledge ROUGE per prompt (against each fact's key span); a record's prompts are resampled together. The
        adversarial probe's values are typed by template (``types``): its checks decide on the worst template."""
        qa = self.probe(dataset, probe)
        variants = qa.variants or [probe] * len(qa.item_ids)
        ids = [f"{dataset}[{i}]:{v}" for i, v in zip(qa.item_ids, variants, strict=True)]
        templated = probe == "adversarial" and len(set(variants)) > 1
        return Series(ids, [float(x) for x in qa.recall], [f"{dataset}[{i}]" for i in qa.item_ids],
                      types=list(variants) if templated else None, type_name="templates" if templated else "item types")

    def _like(self, base: Series, values: Sequence[float]) -> Series:
        return Series(base.ids, list(values), base.groups, base.types, base.type_name)

    def leak(self, dataset: str, probe: str) -> Series:
        """Whether each output states the fact: its key span appears in it (``probes.KeySpan.found_in``)."""
        qa = self.probe(dataset, probe)
        return self._like(self.knowledge(dataset, probe), [float(x) for x in qa.leaks])

    def refusal(self, dataset: str, probe: str) -> Series:
        qa = self.probe(dataset, probe)
        refusal = _norm(self.refusal_text)
        guard_text = _norm(getattr(self.guard, "refusal_text", "") or "")
        return self._like(self.knowledge(dataset, probe),
                          [float(any(t and _norm(p).startswith(t) for t in (refusal, guard_text)))
                           for p in qa.predictions])

    def verbatim(self, dataset: str) -> Series:
        def compute() -> Series:
            records = self.data.get(dataset)
            if not any(r.text for r in records):
                return Series([], [])
            res = metrics.verbatim_memorisation(self.model, self.tokenizer, records,
                                                prefix_fraction=self.stage.prefix_fraction,
                                                batch_size=self.stage.eval_batch_size,
                                                max_new_tokens=self.stage.max_new_tokens,
                                                generate_fn=self._generate_fn())
            for i, prompt, cont, ref, f1 in zip(res.item_ids, res.prompts, res.continuations, res.references,
                                                res.scores, strict=True):
                self.outputs.append({"model": self.name, "dataset": dataset, "probe": "verbatim",
                                     "item": f"{dataset}[{i}]", "prompt": prompt, "output": cont, "gold": ref,
                                     "rouge_l_f1": f1})
            return Series([f"{dataset}[{i}]" for i in res.item_ids], [float(x) for x in res.scores])

        return self._memo(("verbatim", dataset), compute)  # type: ignore[no-any-return]

    # -- likelihood ---------------------------------------------------------------------------

    def scores(self, dataset: str) -> likelihood.TokenScores:
        return self._memo(("scores", dataset), lambda: likelihood.score_records(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), part=SCORED_PARTS, batch_size=self.stage.eval_batch_size,
            fmt=self.fmt))

    def _items(self, dataset: str) -> list[tuple[str, str]]:
        """``(item id, item type)`` of each scored item: ``ds[i]`` for a record's one item, ``ds[i]:answer`` for the
        answer of a record that also has a document (:func:`record_of` gives the record back)."""
        records = self.data.get(dataset)
        return [(f"{dataset}[{i}]" + (":answer" if kind == "qa" and records[i].text else ""),
                 "documents" if kind == "text" else "qa") for i, kind in likelihood.record_parts(records, SCORED_PARTS)]

    def _ids(self, dataset: str) -> list[str]:
        return [i for i, _ in self._items(dataset)]

    def token_metric(self, dataset: str, metric: str) -> Series:
        """Per item: a document's tokens, or a question's answer tokens; each value says which (``types``), and a
        record's two items are resampled together (``groups``). ``metric``: one of :data:`TOKEN_VALUES`."""
        vals = TOKEN_VALUES[metric](self.scores(dataset))
        items = self._items(dataset)
        ids = [i for i, _ in items]
        return Series(ids, [float(x) for x in vals], groups=[record_of(i) for i in ids], types=[t for _, t in items])

    def paraphrase_scores(self, dataset: str) -> tuple[list[str], likelihood.TokenScores | None]:
        """The gold answer given the first held-out paraphrase of each QA record's question."""
        def compute() -> tuple[list[str], likelihood.TokenScores | None]:
            recs = [(i, r) for i, r in enumerate(self.data.get(dataset)) if r.is_qa and r.paraphrases]
            if not recs:
                return [], None
            qs = [r.paraphrases[0] for _, r in recs]
            ans = [r.answer or "" for _, r in recs]
            return ([f"{dataset}[{i}]:paraphrased" for i, _ in recs],
                    likelihood.score_qa(self.model, self.tokenizer, qs, ans, batch_size=self.stage.eval_batch_size,
                                        fmt=self.fmt))

        return self._memo(("para", dataset), compute)  # type: ignore[no-any-return]

    def typed_attack_scores(self, dataset: str, k: float) -> dict[str, tuple[list[str], dict[str, Any]]]:
        """Per item type (:data:`ITEM_TYPES`): the item ids and every attack's per-item score."""
        def compute() -> dict[str, tuple[list[str], dict[str, Any]]]:
            sc = self.scores(dataset)
            items = self._items(dataset)
            ids = [i for i, _ in items]
            is_doc = np.array([t == "documents" for _, t in items], dtype=bool)
            out: dict[str, tuple[list[str], dict[str, Any]]] = {}
            if items:
                allscores = {a: fn(sc, k) for a, (fn, _) in mia.ATTACKS.items()}
                for name, mask in (("documents", is_doc), ("qa", ~is_doc)):
                    if mask.any():
                        out[name] = ([x for x, keep in zip(ids, mask, strict=True) if keep],
                                     {a: np.asarray(v)[mask] for a, v in allscores.items()})
            pids, psc = self.paraphrase_scores(dataset)
            if psc is not None and pids:
                out["qa_paraphrased"] = (pids, {a: fn(psc, k) for a, (fn, _) in mia.ATTACKS.items()})
            return out

        return self._memo(("typed", dataset, str(k)), compute)  # type: ignore[no-any-return]


    def answer_stats(self, dataset: str) -> metrics.AnswerStatistics:
        return self._memo(("stats", dataset), lambda: metrics.answer_statistics(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size, fmt=self.fmt))

    def utility(self, dataset: str) -> metrics.UtilityResult:
        return self._memo(("utility", dataset), lambda: metrics.utility(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size,
            max_new_tokens=self.stage.max_new_tokens, fmt=self.fmt, generate_fn=self._generate_fn()))

    def mcq(self, dataset: str) -> mcq.MCQResult:
        return self._memo(("mcq", dataset), lambda: mcq.mcq_accuracy(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size, fmt=self.fmt))

    def representation(self, attribute: str) -> representation.ProbeResult:
        return self._memo(("repr", attribute), lambda: representation.representation_probe(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.retain + self.data.neighbors, self.data.forget, attribute,
            fmt=self.fmt, subjects=self.data.aliases))  # the target's name and aliases name the forget records' subject


@dataclass
class EvalContext:
    op: ObjectivePlan
    data: DataBundle
    stage: EvaluateStage
    original: tuple[Any, Any]
    unlearned: tuple[Any, Any]
    reference: tuple[Any, Any] | None
    guard: Any
    refusal_text: str
    attacks: list[RelearnAttack | QuantizeAttack]
    work_dir: Path
    strategy: str = "holdout"  # the reference strategy: retrain | model | holdout
    confidence: float = intervals.DEFAULT_CONFIDENCE
    seed: int = 0  # the plan's seed: every bootstrap is seeded from it, the check id and the model
    intervals: bool = True  # False only to measure what the intervals cost (bench/)
    fmt: PromptFormat | None = None  # the run's prompt format (None: each model's tokenizer's own)
