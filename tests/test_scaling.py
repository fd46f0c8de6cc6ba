"""The effective batch and the DDP/FSDP choice for a training stage (runtime/scaling.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from unlearnspec.runtime.rundir import RunError  # noqa: E402
from unlearnspec.runtime.scaling import (  # noqa: E402
    choose_sharding,
    effective_batch,
    fsdp_arguments,
    row_scale,
    trainer_batch,
    training_bytes,
)

GIB = 1024**3


@pytest.mark.parametrize(("batch", "acc", "procs"), [(8, 1, 1), (8, 1, 2), (8, 2, 4), (6, 1, 3), (3, 2, 2),
                                                      (4, 3, 6), (1, 8, 8), (12, 1, 4)])
def test_every_split_keeps_the_global_batch(batch: int, acc: int, procs: int) -> None:
    eb = effective_batch(batch, acc, procs)
    assert eb.global_batch == batch * acc
    assert eb.processes * eb.micro_batch * eb.accumulation == eb.global_batch  # the step sees the same examples
    assert eb.loader_batch == eb.processes * eb.micro_batch
    if batch % procs == 0:
        assert eb.accumulation == acc  # the plan's own accumulation when it works


def test_one_process_is_the_plan_unchanged() -> None:
    kw, eb = trainer_batch(8, 2)
    assert kw == {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2}
    assert (eb.processes, eb.micro_batch, eb.sharding) == (1, 8, "single")


def test_several_processes_split_each_loader_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    kw, eb = trainer_batch(8, 1)
    assert kw["accelerator_config"] == {"split_batches": True} and kw["per_device_train_batch_size"] == 8
    assert (eb.processes, eb.micro_batch, eb.accumulation, eb.sharding) == (4, 2, 1, "ddp")


def test_a_batch_the_processes_cannot_share_is_a_diagnostic() -> None:
    with pytest.raises(RunError) as err:
        effective_batch(8, 1, 3)
    assert err.value.code == "UL720" and "8 examples" in str(err.value.message) and "3 processes" in err.value.message


def test_memory_estimate_counts_weights_gradients_and_adam() -> None:
    n = 1_000_000
    assert training_bytes(n, "fp32", "full") == n * (4 + 4 + 8)
    assert training_bytes(n, "bf16", "full") == n * (2 + 2 + 8 + 4)  # fp32 master copy in mixed precision
    assert training_bytes(n, "bf16", "lora", trainable=1000) == n * 2 + 1000 * (2 + 8 + 4)


def test_fsdp_is_chosen_only_when_a_replica_does_not_fit() -> None:
    eight_b = 8_000_000_000
    # issue #179 of open-unlearning: an 8B model, full fine-tuning, 40 GB devices
    big = choose_sharding(eight_b, "bf16", "full", 4, 40 * GIB)
    assert big.strategy == "fsdp" and "sharded across 4 processes" in big.reason
    assert big.bytes_per_device_ddp == training_bytes(eight_b, "bf16", "full") > 40 * GIB
    # LoRA on the same model trains 1%: the frozen bf16 weights (16 GB) fit one 40 GB device
    assert choose_sharding(eight_b, "bf16", "lora", 4, 40 * GIB).strategy == "ddp"
    assert choose_sharding(eight_b, "bf16", "lora", 4, 20 * GIB).strategy == "fsdp"
    assert choose_sharding(1_000_000, "fp32", "full", 2, 8 * GIB).strategy == "ddp"
    assert choose_sharding(eight_b, "bf16", "full", 1, 40 * GIB).strategy == "single"
    assert choose_sharding(1_000_000, "fp32", "full", 2, 8 * GIB, override="fsdp").strategy == "fsdp"
    assert choose_sharding(eight_b, "bf16", "full", 2, None).strategy == "ddp"  # unknown memory: no guess


def test_rmu_counts_what_it_trains_and_its_copy_of_the_original_values() -> None:
    """RMU's full fine-tuning trains three MLP down-projections and keeps their original values (its retain
    target): a Llama-3-8B (32 blocks of 4096 x 14336 down-projections) then fits where full training does not."""
    eight_b, proj = 8_000_000_000, 3 * 4096 * 14336
    assert training_bytes(eight_b, "bf16", "full", trainable=proj, frozen=proj) == (
        (eight_b + proj) * 2 + proj * (2 + 8 + 4))
    assert training_bytes(100, "fp32", "full", frozen=10) == 110 * 4 + 100 * (4 + 8)
    rmu = choose_sharding(eight_b, "bf16", "full", 4, 40 * GIB, trainable=proj, frozen=proj)
    assert rmu.strategy == "ddp" and rmu.bytes_per_device_ddp < 18 * GIB  # 16 GB of bf16 weights, 2.8 GB for the projections
    # the copy is counted: a device that holds the weights and the trained state, but not the copy, shards
    fits = training_bytes(eight_b, "bf16", "full", trainable=proj)
    memory = int(fits / 0.7) + 1
    assert choose_sharding(eight_b, "bf16", "full", 2, memory, trainable=proj).strategy == "ddp"
    assert choose_sharding(eight_b, "bf16", "full", 2, memory, trainable=proj, frozen=proj).strategy == "fsdp"


def test_fsdp_arguments_wrap_each_transformer_block(tmp_path: Path) -> None:
    """What the Trainer hands accelerate's FSDP plugin: FSDP2, one unit per block, full state dicts."""
    from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16))
    plugin = TrainingArguments(output_dir=str(tmp_path), **fsdp_arguments(model, "lora")).fsdp_plugin_args
    assert plugin["fsdp_version"] == 2  # per-parameter sharding: LoRA's frozen and trained weights share a unit
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert plugin["transformer_cls_names_to_wrap"] == "GPT2Block"
    assert plugin["reshard_after_forward"] is True  # FSDP1's FULL_SHARD
    assert plugin["state_dict_type"] == "FULL_STATE_DICT"


def test_fsdp_on_a_cpu_launch_falls_back_to_ddp_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """accelerate ignores an FSDP plugin on a CPU launch (it sets FSDP only for accelerator launches),
    so a CPU run that would need FSDP asks for DDP and records why, instead of claiming FSDP."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if torch.cuda.is_available():
        pytest.skip("the CPU fallback is for machines without CUDA")
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("UNLEARNSPEC_SHARDING", "fsdp")
    kw, eb = trainer_batch(4, 1, model=model)
    assert "fsdp" not in kw and eb.sharding == "ddp"
    assert "UNLEARNSPEC_SHARDING=fsdp" in eb.sharding_reason and "MULTI_CPU" in eb.sharding_reason


def test_fsdp_that_still_does_not_fit_says_so() -> None:
    # 70B parameters, full bf16 fine-tuning: ~1 TiB of state; 8 devices of 139 GiB (an H200 node)
    choice = choose_sharding(70_000_000_000, "bf16", "full", 8, 139 * GIB)
    assert choice.strategy == "fsdp" and "still exceeds the device" in choice.reason
    assert "still exceeds" not in choose_sharding(8_000_000_000, "bf16", "full", 8, 139 * GIB).reason


def test_unsharded_model_rebuilds_the_weights_and_refuses_ones_that_do_not_fit() -> None:
    """The main process's plain copy of an FSDP-trained model (its sharded run: tests/test_fsdp.py)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from unlearnspec.runtime.scaling import unsharded_model

    torch.manual_seed(0)
    trained = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16))
    trained.unlearnspec_source = "builtin:tiny-bios"
    state = {k: v.clone() for k, v in trained.state_dict().items() if k != "lm_head.weight"}  # tied: may be absent
    plain = unsharded_model(trained, state)
    assert plain is not trained and plain.unlearnspec_source == "builtin:tiny-bios"
    for k, v in trained.state_dict().items():
        assert torch.equal(plain.state_dict()[k], v), k
    assert plain.lm_head.weight is plain.transformer.wte.weight  # still tied
    del state["transformer.h.0.mlp.c_fc.weight"]
    with pytest.raises(RuntimeError, match="c_fc"):
        unsharded_model(trained, state)


@pytest.mark.parametrize("processes, refused", [(2, None), (4, None), (3, "the unlearn stage"), (8, "relearning")])
def test_a_launch_whose_training_batches_do_not_split_is_refused_before_anything_runs(
        processes: int, refused: str | None) -> None:
    """Each stage checked its own batch when it started: a relearning batch (4) that 8 processes cannot split ended
    the run after its training and evaluation. The example plan's batches: the unlearn stage's 8, relearning's 4."""
    from unlearnspec.compiler.check import plan_file
    from unlearnspec.runtime.execute import refuse_unsplittable_batches

    plan, _ = plan_file(Path(__file__).resolve().parents[1] / "specs" / "erase-jane-doe.unlearn")
    assert plan is not None
    if refused is None:
        refuse_unsplittable_batches(plan, processes)
        return
    with pytest.raises(RunError) as err:
        refuse_unsplittable_batches(plan, processes)
    assert err.value.code == "UL720" and refused in err.value.message and "erase-jane-doe" in err.value.message


# -- an epoch's last batch, completed by accelerate with repeated rows ------------------------------------


def _completed_batch(real: int, loader: int, processes: int) -> list[tuple[int, int, bool]]:
    """(rank, row, real?) of a last loader batch as accelerate's ``BatchSamplerShard`` deals it with
    ``split_batches``: the ``real`` examples, then the epoch's first ones repeated up to ``loader``, and rank
    ``r`` takes the ``r``-th equal slice."""
    rows = loader // processes
    dealt = [True] * real + [False] * (loader - real)
    return [(r, i, dealt[r * rows + i]) for r in range(processes) for i in range(rows)]


@pytest.mark.parametrize(("real", "loader", "processes"), [(2, 4, 2), (1, 4, 2), (3, 4, 2), (5, 8, 4), (1, 2, 2),
                                                           (7, 12, 3), (2, 4, 1)])
def test_the_repeated_rows_of_a_completed_batch_weigh_nothing_and_ddp_averages_to_the_real_mean(
        real: int, loader: int, processes: int) -> None:
    import torch

    rows = loader // processes
    dealt = _completed_batch(real, loader, processes)
    losses = torch.rand(len(dealt), dtype=torch.float64) + 0.5  # any per-row losses
    scales = [row_scale(rows, real, r, processes) for r in range(processes)]
    if processes == 1:  # one process never pads: its last batch is the real rows alone
        assert row_scale(real, real, 0, 1) is None
        return
    rank_losses = []
    for r, scale in enumerate(scales):
        mine = losses[r * rows:(r + 1) * rows]
        per_row = torch.ones(rows, dtype=torch.float64) if scale is None else torch.tensor(scale, dtype=torch.float64)
        rank_losses.append(float((mine * per_row).mean()))
        for i in range(rows):  # a repeated row counts for nothing, a real one for something
            assert (per_row[i] == 0) == (not dealt[r * rows + i][2])
    ddp = sum(rank_losses) / processes  # DDP averages the ranks' gradients: the same as their losses' mean
    real_mean = float(torch.stack([x for x, (_, _, ok) in zip(losses, dealt, strict=True) if ok]).mean())
    assert ddp == pytest.approx(real_mean, rel=1e-12)


def test_a_full_last_batch_or_an_unknown_length_is_left_alone() -> None:
    assert row_scale(2, 0, 1, 2) is None  # the epoch divides into loader batches
    assert row_scale(2, -1, 1, 2) is None  # accelerate does not know the dataset's length
    assert row_scale(2, 4, 1, 2) is None  # every row real
    assert row_scale(2, 3, 0, 2) == [4 / 3, 4 / 3]  # rank 0's rows are all real, but the batch's are not


def test_batch_mean_drops_a_weightless_row_even_when_it_is_not_finite() -> None:
    import torch

    from unlearnspec.runtime.methods.losses import batch_mean

    x = torch.tensor([1.0, 3.0, float("inf"), float("nan")], requires_grad=True)
    scale = torch.tensor([2.0, 2.0, 0.0, 0.0])
    out = batch_mean(x, scale)
    assert float(out.detach()) == pytest.approx((2 * 1.0 + 2 * 3.0) / 4)
    out.backward()
    assert x.grad is not None and x.grad.tolist() == [0.5, 0.5, 0.0, 0.0]
    assert float(batch_mean(torch.tensor([1.0, 2.0]))) == 1.5
