"""Review of sharded evaluation and process-count independence (issue 16): defects found, each pinned.

Two CPU processes joined by a gloo process group (a file store, as in ``tests/test_sharding.py``) run:

* a failure in one rank's share of a sharded call (an out-of-memory error on the costliest batch is
  the realistic case: only the rank that was dealt it fails). Every rank must raise that error (the
  others with a note naming the failing rank), instead of the others waiting in the gather for the
  process group's timeout (six hours) or, where the failing rank caught its error and went on, taking
  its next call's values for this call's;
* two measurements of the *same* model object measured together (the unlearned model and the served
  system share it), whose generations set the model's own ``generation_config`` aside: interleaved,
  the second one saved the first one's stand-in and put it back last, so the checkpoint's shipped
  configuration was lost for good under a launch (never on one process).

The last tests pin what a Trainer step trains on under ``runtime/scaling.py``'s split of the plan's batch: a full
step the 1-process examples and gradient; an epoch's last, partial step, which accelerate completes with the
epoch's first examples, the 1-process gradient too — in the unlearning trainers and the relearning attack's,
which weigh the repeated rows out (the plain Trainer, the control, does not).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sharding import PREAMBLE, largest_change, launch, one_and_two

_SCRIPT = PREAMBLE + r'''
from unlearnspec.builtin.corpus import build_corpus
from unlearnspec.runtime.evaluation.generation import generate
from unlearnspec.runtime.evaluation.likelihood import score_texts
from unlearnspec.runtime.evaluation.metrics import rouge_l
from unlearnspec.runtime.evaluation.sharding import map_batches, map_items, together
from unlearnspec.runtime.loading import load_model

model, tok = load_model(model_dir)
result = {}
records = [r for r in build_corpus().forget if r.is_qa]
prompts = [r.question for r in records][:5]

# -- one model object measured twice, together: its shipped generation config must survive ------------
model.generation_config.repetition_penalty = 1.7  # a setting a checkpoint may ship
gens = together([lambda: generate(model, tok, prompts, max_new_tokens=5, batch_size=2),
                 lambda: generate(model, tok, prompts[:3], max_new_tokens=5, batch_size=2)])
result["penalty_after"] = model.generation_config.repetition_penalty
result["generations"] = gens
result["alone"] = [generate(model, tok, prompts, max_new_tokens=5, batch_size=2),
                   generate(model, tok, prompts[:3], max_new_tokens=5, batch_size=2)]
result["training_after"] = model.training

# -- a failure in one rank's share: every rank raises, none waits -----------------------------------
def failing(batch):  # the batch holding item 0 fails, wherever it is dealt
    if 0 in batch:
        raise ValueError("out of memory in this batch")
    return {i: i for i in batch}

def outcome(fn):
    try:
        fn()
        return "returned"
    except Exception as exc:
        return " | ".join([f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])])

result["map_batches"] = outcome(lambda: map_batches([[0, 1], [2, 3], [4]], failing, [1.0, 5.0, 1.0]))
result["map_items"] = outcome(lambda: map_items(list(range(5)), lambda x: 1 // (x - 4) if x == 4 else x))
result["together"] = outcome(lambda: together([
    lambda: map_batches([[0], [1]], failing, [5.0, 1.0]),
    lambda: score_texts(model, tok, ["A short text.", "Another one here."], batch_size=1).loss().tolist()]))
result["after_failure"] = map_batches([[0, 1], [2]], lambda b: {i: 10 * i for i in b})  # the group still works
json.dump(result, open(f"{out}/rank{rank}.json", "w"))
if world > 1:  # leave together: a rank that tears gloo down while the other still talks to it can abort
    dist.barrier()
    dist.destroy_process_group()
'''


@pytest.mark.slow
def test_two_processes_fail_together_and_keep_the_model_as_it_was(builtin_model_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "review.py"
    script.write_text(_SCRIPT)
    (single,) = launch(script, builtin_model_dir, tmp_path / "one", 1)
    ranks = launch(script, builtin_model_dir, tmp_path / "two", 2)
    # one process: the failing call raises its own error, in order, and the model is untouched
    assert single["map_batches"] == single["together"] == "ValueError: out of memory in this batch"
    assert single["map_items"].startswith("ZeroDivisionError")
    assert single["penalty_after"] == pytest.approx(1.7) and single["training_after"] is False
    # two processes: the batch holding item 0 (cost 1) is dealt to rank 1, the costliest to rank 0. Every rank
    # raises the failing rank's error, the other rank with a note naming it, instead of waiting for it in the
    # gather (or, had it caught its error, answering the other's gather with its next call's values)
    lone = "ValueError: out of memory in this batch"
    told = " | raised on rank 1 of 2, in its share of a sharded evaluation call"
    assert [r["map_batches"] for r in ranks] == [lone + told, lone]
    # the item map fails on the rank whose share holds item 4 (the last share: rank 1); rank 0 is told
    zero = "ZeroDivisionError: integer division or modulo by zero"
    assert [r["map_items"] for r in ranks] == [zero + told, zero]
    # together: the two measurements' batches are dealt as one round; the failing batch goes to rank 0 there
    assert [r["together"] for r in ranks] == [lone, lone + told.replace("rank 1", "rank 0")]
    for r in ranks:
        assert r["after_failure"] == {"0": 0, "1": 10, "2": 20}
        # the same model measured twice together: its generation config survives, the outputs are the plain ones
        assert r["penalty_after"] == pytest.approx(1.7)
        assert r["training_after"] is False
        assert r["generations"] == r["alone"] == single["alone"]


def test_interleaved_measurements_of_one_model_restore_it_once() -> None:
    """What ``together`` does to a model measured by two tasks, without processes: the first task enters,
    the second enters, the first exits, the second exits. The shipped generation config and training mode
    must come back (before the fix the model kept the first task's stand-in config for good)."""
    transformers = pytest.importorskip("transformers")
    from unlearnspec.runtime.evaluation.generation import _shipped_config_set_aside
    from unlearnspec.runtime.evaluation.likelihood import evaluating

    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16, n_positions=8)
    model = transformers.GPT2LMHeadModel(config)
    model.generation_config.repetition_penalty = 1.7
    shipped = model.generation_config
    model.train()
    first, second = _shipped_config_set_aside(model), _shipped_config_set_aside(model)
    first_mode, second_mode = evaluating(model), evaluating(model)
    first.__enter__()
    first_mode.__enter__()
    second.__enter__()
    second_mode.__enter__()
    assert model.generation_config.repetition_penalty is None and not model.training  # set aside, evaluating
    first_mode.__exit__(None, None, None)
    first.__exit__(None, None, None)
    assert model.generation_config.repetition_penalty is None  # the second task is still generating
    assert not model.training  # and still computing: no dropout under it
    second_mode.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert model.generation_config is shipped and model.training


def test_an_error_that_does_not_unpickle_travels_as_text() -> None:
    """An exception with required constructor arguments pickles but does not unpickle: the gather would fail
    on the receiving ranks, so it travels as its text and is raised there as ``ShardFailed``."""
    pytest.importorskip("torch")
    from unlearnspec.runtime.evaluation.sharding import ShardFailed, _failure

    class Picky(Exception):
        def __init__(self, code: str, detail: str) -> None:
            super().__init__(f"{code}: {detail}")

    sent = _failure(1, Picky("UL1", "no memory"))
    assert sent.error == "Picky: UL1: no memory"
    plain = _failure(0, ValueError("bad batch"))
    assert isinstance(plain.error, ValueError)
    assert isinstance(sent.error, str)
    told = ShardFailed(sent.rank, sent.error)
    assert "rank 1" in str(told) and "Picky: UL1: no memory" in str(told) and told.rank == 1


_TRAIN = r"""
import json, os, sys, tempfile
import torch
import transformers
transformers.utils.logging.set_verbosity_error()
torch.set_num_threads(1)
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
from unlearnspec.builtin.corpus import build_corpus
from unlearnspec.runtime.lm_training import LabelledExamples
from unlearnspec.runtime.loading import load_model
from unlearnspec.runtime.scaling import trainer_batch
from unlearnspec.plan import StoppingRule, UnlearnStage
from unlearnspec.runtime.attacks import RelearnTrainer
from unlearnspec.runtime.methods.base import GradDiffTrainer
from unlearnspec.runtime.methods.data import Example, ForgetRetainCollator, ForgetRetainDataset
model_dir, out = sys.argv[1], sys.argv[2]
rank = os.environ.get("RANK", "0")
_, tok = load_model(model_dir)
rows = []
for r in [r for r in build_corpus().forget if r.text][:6]:
    ids = tok(r.text)["input_ids"][:24] + [tok.eos_token_id]
    rows.append((ids, ids))
index = {tuple(ids): i for i, (ids, _) in enumerate(rows)}
seen = []
collate = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
def recording(features):
    seen.append(sorted(index[tuple(f["input_ids"])] for f in features))
    return collate(features)
kw, eb = trainer_batch(4, 1)  # 6 examples in loader batches of 4: each epoch ends with a batch of 2
def train(steps, optim, lr, cls=Trainer):
    model = load_model(model_dir)[0]
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, max_steps=steps, **kw, learning_rate=lr, optim=optim,
                                 lr_scheduler_type="constant", save_strategy="no", logging_strategy="no", report_to=[],
                                 disable_tqdm=True, use_cpu=True, seed=0, data_seed=0, dataloader_num_workers=0)
        cls(model=model, args=args, train_dataset=LabelledExamples(rows), data_collator=recording,
            processing_class=tok).train()
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}
torch.save(train(1, "sgd", 1.0), f"{out}/sgd{rank}.pt")  # one full step, plain SGD: the gradient itself
seen.clear()
train(3, "adamw_torch", 1e-3)
json.dump({"seen": seen, "examples": len(rows)}, open(f"{out}/rank{rank}.json", "w"))
# the epoch's second step is its last, partial one (2 of 6 examples): plain SGD again, two steps
torch.save(train(2, "sgd", 1.0), f"{out}/plain2-{rank}.pt")
torch.save(train(1, "sgd", 1.0, RelearnTrainer), f"{out}/relearn1-{rank}.pt")
torch.save(train(2, "sgd", 1.0, RelearnTrainer), f"{out}/relearn2-{rank}.pt")
forget = [Example(ids, ids) for ids, _ in rows]
retain = [Example(ids[:12] + [tok.eos_token_id], ids[:12] + [tok.eos_token_id]) for ids, _ in rows[:4]]
data = ForgetRetainDataset(forget, retain, seed=0)
st = UnlearnStage(method="grad_diff", family="approximate", chosen_by="spec", max_steps=2, learning_rate=1.0,
                  batch_size=4, stopping=StoppingRule(kind="fixed_steps"))
for steps in (1, 2):
    model = load_model(model_dir)[0]
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, max_steps=steps, **kw, learning_rate=1.0, optim="sgd",
                                 lr_scheduler_type="constant", save_strategy="no", logging_strategy="no",
                                 report_to=[], disable_tqdm=True, use_cpu=True, seed=0, data_seed=0,
                                 dataloader_num_workers=0, remove_unused_columns=False)
        GradDiffTrainer(model=model, args=args, train_dataset=data, processing_class=tok, stage=st,
                        data_collator=ForgetRetainCollator(tok.pad_token_id)).train()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, f"{out}/graddiff{steps}-{rank}.pt")
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    from accelerate import PartialState
    PartialState().destroy_process_group()
"""


@pytest.fixture(scope="module")
def trained(builtin_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same Trainer runs (``trainer_batch``'s split) as one process and under ``accelerate launch`` as two."""
    tmp = tmp_path_factory.mktemp("train")
    script = tmp / "train.py"
    script.write_text(_TRAIN)
    one_and_two(script, builtin_model_dir, tmp)
    return tmp


def _steps(trained: Path) -> tuple[list[list[int]], list[list[int]]]:
    single = json.loads((trained / "one" / "rank0.json").read_text())
    ranks = [json.loads((trained / "two" / f"rank{r}.json").read_text()) for r in range(2)]
    # the batches collated, in order (the loader collates one batch ahead of the step that trains on it)
    assert single["examples"] == 6 and [len(b) for b in single["seen"][:3]] == [4, 2, 4]
    two = [sorted(a + b) for a, b in zip(ranks[0]["seen"], ranks[1]["seen"], strict=True)]
    return single["seen"][:3], two[:3]


@pytest.mark.slow
def test_a_full_step_takes_the_one_process_gradient(trained: Path, builtin_model_dir: Path) -> None:
    """A full step: the ranks' micro-batches are the 1-process batch, and the gradient is the 1-process one to
    float rounding (plain SGD, so the weight change is the gradient: the token-weighted loss is normalised by
    the token count of all ranks, not per rank)."""
    import torch

    from unlearnspec.runtime.loading import load_model

    single, two = _steps(trained)
    assert two[0] == single[0] and two[2] == single[2]
    w0 = load_model(str(builtin_model_dir))[0].state_dict()
    w1 = torch.load(trained / "one" / "sgd0.pt")
    moved = largest_change(w1, w0)
    assert moved > 1e-3
    for rank in range(2):
        assert largest_change(torch.load(trained / "two" / f"sgd{rank}.pt"), w1) <= 1e-4 * moved


@pytest.mark.slow
def test_an_epochs_partial_step_takes_the_one_process_gradient(trained: Path) -> None:
    """6 examples in loader batches of 4: the epoch's second step trains on 2, which 2 processes complete to 4 with
    the epoch's first 2 examples (collated: the control below). The unlearning trainers (gradient difference here,
    with its retain partners) and the relearning attack's Trainer weigh those rows out: after the full step and the
    partial one, plain SGD, the 2-process weights are the 1-process weights to float rounding, while the plain
    Trainer's moved by a visible share of the partial step's own change."""
    import torch

    single, two = _steps(trained)
    assert two[1] != single[1]  # the repeated examples are collated on 2 processes...
    for first, second in (("sgd0", "plain2-0"), ("relearn1-0", "relearn2-0"), ("graddiff1-0", "graddiff2-0")):
        w1 = torch.load(trained / "one" / f"{second}.pt")
        partial = largest_change(w1, torch.load(trained / "one" / f"{first}.pt"))  # the partial step's own change
        assert partial > 1e-3, second
        off = [largest_change(torch.load(trained / "two" / f"{second[:-1]}{rank}.pt"), w1) for rank in range(2)]
        if second == "plain2-0":  # ...and without the weights the partial step trains on other examples: the control
            assert min(off) > 1e-2 * partial, off
        else:
            assert max(off) <= 1e-4 * partial, (second, off, partial)
