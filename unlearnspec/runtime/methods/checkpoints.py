"""Atomic Trainer checkpoints and an honest choice of the one to resume from.

The Trainer writes ``checkpoint-N`` file by file in place, so a kill (or a full disk) in the middle
leaves a folder without ``trainer_state.json`` that ``get_last_checkpoint`` still picks. Here every
checkpoint is written into ``checkpoints/.staging/checkpoint-N``, every file and the folder are
fsynced, and the folder is renamed into ``checkpoints/`` (``rename(2)``: atomic on one file system).
A ``checkpoint-N`` folder therefore is either complete or absent; ``.staging`` leftovers of a killed
save are removed when training starts again.

:func:`last_usable_checkpoint` still checks what it picks (a checkpoint written by an older version, a
damaged disk): a checkpoint needs a readable ``trainer_state.json`` at its own step, readable model
weights, the optimizer state, the learning-rate scheduler's state (``scheduler.pt``: the Trainer loads the
optimizer state only when it is there, so without it the run would go on with fresh AdamW moments and
say nothing) and the RNG state of every process of this launch (``rng_state.pth`` for one process,
``rng_state_K.pth`` for each rank K of several: the Trainer, missing one, goes on with that rank's
current random state and only logs it); else the next older one is taken, and with none the stage
restarts from step 0. A checkpoint written by another process count has the other count's RNG files,
so it is not resumed either: its numbers would not be an uninterrupted run's. Standard library and
safetensors' header reader and a file's sha256 only.

Two layouts are resumable. A single process or DDP: the Trainer's ``optimizer.pt`` beside the
safetensors weights. FSDP (runtime/scaling.py asks for ``FULL_STATE_DICT``): accelerate's
``save_fsdp_model`` / ``save_fsdp_optimizer`` add ``pytorch_model_fsdp.bin`` and ``optimizer.bin``,
which are what the Trainer loads back on resume; with a sharded state dict they are
``pytorch_model_fsdp_0/`` and ``optimizer_0/`` folders of torch.distributed.checkpoint, each complete
once its ``.metadata`` is written. A torch-saved file is a zip archive, complete when its central
directory (at the end of the file) is readable.

Those checks find a file cut short, not one damaged in place (a flipped byte leaves every size and header as it
was), so :func:`publish` also writes ``checksums.json`` into the checkpoint, the sha256 of each of its files, before
the rename; :func:`problem` checks every file against it. A checkpoint without one (an older unlearnspec's) gets the
other checks only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import zipfile
from pathlib import Path

from unlearnspec.inputs import safetensors_whole
from unlearnspec.io import fsync_dir, fsync_tree, replace_folder
from unlearnspec.records import sha256_path

__all__ = ["CHECKSUMS", "STAGING", "checksums", "clear_staging", "fsync_dir", "fsync_tree", "last_usable_checkpoint", "problem", "publish",
           "replace_folder", "rng_files"]

log = logging.getLogger("unlearnspec.unlearn")

STAGING = ".staging"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("model.safetensors", "adapter_model.safetensors")
# the optimizer state: the Trainer's own file, then accelerate's FSDP names (full, then sharded state dict)
OPTIMIZER_FILES = ("optimizer.pt", "optimizer.bin")
OPTIMIZER_DCP = "optimizer_0"
FSDP_WEIGHTS, FSDP_WEIGHTS_DCP = "pytorch_model_fsdp.bin", "pytorch_model_fsdp_0"
SCHEDULER = "scheduler.pt"  # transformers' SCHEDULER_NAME, written by the main process beside the optimizer state
CHECKSUMS = "checksums.json"  # the sha256 of every other file of the checkpoint, written last (publish)


def rng_files(processes: int) -> list[str]:
    """The RNG state files the Trainer writes (and reads back) for a launch of ``processes`` processes."""
    return ["rng_state.pth"] if processes <= 1 else [f"rng_state_{k}.pth" for k in range(processes)]


def checksums(checkpoint: Path) -> dict[str, str]:
    """The sha256 of every file of ``checkpoint`` (hidden ones too: a DCP folder's ``.metadata``) but the checksums."""
    out: dict[str, str] = {}
    for folder, _dirs, files in os.walk(checkpoint):
        for name in files:
            rel = (Path(folder) / name).relative_to(checkpoint).as_posix()
            if rel != CHECKSUMS:
                out[rel] = sha256_path(Path(folder) / name)
    return dict(sorted(out.items()))


def publish(staged: Path, final_root: Path) -> Path:
    """Move a fully written checkpoint folder from the staging area into place, durably, with the sha256 of each of
    its files (:data:`CHECKSUMS`) so that a resume can tell it is still what was saved."""
    (staged / CHECKSUMS).write_text(json.dumps(checksums(staged), indent=1) + "\n", encoding="utf-8")
    fsync_tree(staged)
    dest = final_root / staged.name
    if dest.is_symlink():
        dest.unlink()
    elif dest.exists():  # a checkpoint of the same step from an interrupted earlier attempt
        shutil.rmtree(dest)
    os.replace(staged, dest)
    fsync_dir(final_root)
    return dest


def clear_staging(checkpoints: Path) -> None:
    """Remove what a killed save left half-written."""
    staging = checkpoints / STAGING
    if staging.is_symlink():  # planted: the next save would write through it
        staging.unlink()
    elif staging.exists():
        shutil.rmtree(staging, ignore_errors=True)


def problem(checkpoint: Path, processes: int = 1) -> str | None:
    """Why ``checkpoint`` cannot be resumed from by a launch of ``processes`` processes, or ``None`` when it is
    complete."""
    m = _CHECKPOINT.match(checkpoint.name)
    if m is None:
        return "not a checkpoint folder"
    if checkpoint.is_symlink():
        return "a symbolic link, not a folder this run saved"
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no readable trainer_state.json"
    if not isinstance(state, dict) or state.get("global_step") != int(m.group(1)):
        return "trainer_state.json is not at the checkpoint's step"
    weights = [checkpoint / w for w in WEIGHTS if (checkpoint / w).is_file()]
    if not weights:
        return "no model weights"
    if not all(safetensors_whole(w) for w in weights):
        return "truncated model weights"
    if (checkpoint / FSDP_WEIGHTS).exists() and not _torch_file_ok(checkpoint / FSDP_WEIGHTS):
        return "truncated FSDP model state"
    if (checkpoint / FSDP_WEIGHTS_DCP).exists() and not _dcp_ok(checkpoint / FSDP_WEIGHTS_DCP):
        return "incomplete FSDP model state"
    optimizers = [checkpoint / o for o in OPTIMIZER_FILES if (checkpoint / o).is_file()]
    if optimizers:
        if not all(_torch_file_ok(o) for o in optimizers):
            return "truncated optimizer state"
    elif (checkpoint / OPTIMIZER_DCP).exists():
        if not _dcp_ok(checkpoint / OPTIMIZER_DCP):
            return "incomplete optimizer state"
    else:
        return "no optimizer state"
    if not _torch_file_ok(checkpoint / SCHEDULER):
        return f"no readable {SCHEDULER} (the Trainer would resume without the optimizer state)"
    missing = [f for f in rng_files(processes) if not _torch_file_ok(checkpoint / f)]
    if missing:
        return (f"no readable RNG state {', '.join(missing)} for {processes} process(es) (damaged, or written by "
                "another process count)")
    return _checksum_problem(checkpoint)


def _checksum_problem(checkpoint: Path) -> str | None:
    """Why the files of ``checkpoint`` are not the ones :func:`publish` summed, or ``None`` (also when it has no
    :data:`CHECKSUMS`: written before they were)."""
    path = checkpoint / CHECKSUMS
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no readable {CHECKSUMS}"
    if not isinstance(saved, dict):
        return f"no readable {CHECKSUMS}"
    for rel, sha in sorted(saved.items()):
        f = checkpoint / rel
        if not f.is_file():
            return f"{rel} is missing"
        if sha256_path(f) != sha:
            return f"{rel} is not what was saved (its sha256 differs: damaged on the disk)"
    return None


def _torch_file_ok(path: Path) -> bool:
    """A ``torch.save`` file (a zip archive) whose central directory, written last, is there."""
    try:
        return path.stat().st_size > 0 and zipfile.is_zipfile(path)
    except OSError:
        return False


def _dcp_ok(folder: Path) -> bool:
    """A torch.distributed.checkpoint folder: its ``.metadata`` is written once every shard is."""
    try:
        return folder.is_dir() and (folder / ".metadata").stat().st_size > 0
    except OSError:
        return False


def last_usable_checkpoint(checkpoints: Path, processes: int = 1) -> str | None:
    """The newest complete checkpoint under ``checkpoints`` for a launch of ``processes`` processes (logged),
    skipping unusable ones (logged)."""
    if not checkpoints.is_dir():
        return None
    found = []
    for p in checkpoints.iterdir():
        m = _CHECKPOINT.match(p.name)
        if m is not None and p.is_dir():
            found.append((int(m.group(1)), p))
    for _step, p in sorted(found, reverse=True):
        why = problem(p, processes)
        if why is None:
            log.info("resuming from %s, the last complete checkpoint", p.name)
            return str(p)
        log.warning("checkpoint %s is unusable (%s): skipped", p.name, why)
        if p.is_symlink():  # removed itself, never what it names
            p.unlink()
        else:
            shutil.rmtree(p, ignore_errors=True)  # so that the Trainer's rotation never keeps it over a good one
    if found:
        log.warning("no usable checkpoint: the stage restarts from step 0")
    return None
