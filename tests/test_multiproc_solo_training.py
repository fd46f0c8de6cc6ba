"""A recipe's model built by one process of a launch trains alone, and as one process would.

Under ``accelerate launch`` the built-in model and its exact-retraining reference are built by one
process (under the cache's lock) while the others wait. A Trainer started there used to read the
launch's ``WORLD_SIZE``, wrap the model in DDP and wait forever in DDP's first collective call for
processes that were waiting elsewhere: the run hung. ``lm_training.alone`` makes it train as one
process; the weights it gives are the ones a plain single process gives (the cache keys a build by its
recipe, never by the process count), and the launch goes on afterwards (a barrier every rank passes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

_SCRIPT = r'''
import sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from transformers import PreTrainedTokenizerFast
from tokenizers import Tokenizer, models, pre_tokenizers
from unlearnspec.runtime.lm_training import train_causal_lm

def tokenizer():
    tok = Tokenizer(models.WordLevel({"<eos>": 0, "<pad>": 1, "<unk>": 2, "alpha": 3, "beta": 4, "gamma": 5,
                                      "delta": 6}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")

CONFIG = {"model": {"n_positions": 16, "n_embd": 8, "n_layer": 1, "n_head": 2},
          "train": {"epochs": 2, "batch_size": 2, "learning_rate": 1e-2, "device": "cpu"}}
TEXTS = ["alpha beta", "gamma delta", "beta gamma alpha", "delta alpha"]
out = Path(sys.argv[1])
if len(sys.argv) > 2 and sys.argv[2] == "launch":
    from accelerate import PartialState
    state = PartialState(cpu=True)
    if state.is_main_process:  # the others wait, as they wait for the cache's lock
        train_causal_lm(TEXTS, tokenizer(), CONFIG, out / "launched", seed=3)
    state.wait_for_everyone()
    assert PartialState().num_processes == 2  # the launch's state is back
    (out / f"rank{state.process_index}.done").write_text("ok")
    state.destroy_process_group()
else:
    train_causal_lm(TEXTS, tokenizer(), CONFIG, out / "alone", seed=3)
'''


@pytest.mark.slow
def test_one_rank_of_a_launch_trains_a_recipe_alone(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    script = tmp_path / "solo.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    accelerate = Path(sys.executable).with_name("accelerate")
    launch = subprocess.Popen([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                               "--mixed_precision", "no", "--dynamo_backend", "no", str(script), str(tmp_path),
                               "launch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _, err = launch.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)  # the launcher and its workers, started in their own session
        launch.communicate()
        pytest.fail("a rank training alone under a launch hung")
    assert launch.returncode == 0, err[-3000:]
    assert "ParallelMode.DISTRIBUTED" not in err  # no advice to launch with DDP: training alone is meant
    assert sorted(p.name for p in tmp_path.glob("rank*.done")) == ["rank0.done", "rank1.done"]
    alone = load_file(tmp_path / "alone" / "model.safetensors")
    launched = load_file(tmp_path / "launched" / "model.safetensors")
    assert alone.keys() == launched.keys()
    for name, weight in alone.items():
        assert torch.equal(weight, launched[name]), name  # the same bits as a single process
