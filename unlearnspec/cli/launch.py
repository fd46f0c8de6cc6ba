"""`unlearnspec run --processes N`: a run on N processes in one command, with the run's own exit status.

By hand, a multi-process run is an `accelerate launch` line with five flags, a hidden-GPU trick on a CPU
machine (accelerate's `--cpu` starts one process unless MPI is set up) and `--out` chosen in advance; and the
launcher's exit status keeps only success or failure, so a run whose verdict is *fail* (1), whose plan cannot
start (2) or whose evidence is incomplete (3) all exit 1 there. This module writes that line (docs/running.md),
names the run folder once before the processes start (they must all write to the same one), and returns the
exit status the main process chose: each process of the launch is a plain `unlearnspec run`, and the main one
writes its status to the file named by :data:`EXIT_FILE` before it exits.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from unlearnspec.cli.common import UsageError
from unlearnspec.io import atomic_write_text
from unlearnspec.markdown import code_span

#: The environment variable naming the file where the launch's main process writes its exit status.
EXIT_FILE = "UNLEARNSPEC_EXIT_FILE"


def under_launch() -> bool:
    """Whether this process is one of a launch's (accelerate and torchrun set these for every process)."""
    return int(os.environ.get("WORLD_SIZE", "1") or "1") > 1 or "LOCAL_RANK" in os.environ


def record_exit(code: int) -> bool:
    """The main process of a launch writes its exit status for :func:`launch`; whether it was written (never
    outside a launch started by `run --processes`, nor on another process)."""
    where = os.environ.get(EXIT_FILE)
    if not where or os.environ.get("RANK", "0") not in ("", "0"):
        return False
    try:
        atomic_write_text(Path(where), f"{code}\n")
    except OSError:  # the parent then falls back on the launcher's status
        return False
    return True


def visible_gpus() -> int:
    """How many CUDA devices a process started here would see (torch's count: CUDA_VISIBLE_DEVICES applied)."""
    import torch  # the runtime is installed (checked before a launch); loaded only to count devices

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def free_port() -> int:
    """A TCP port free on this machine now, for the launch's rendezvous: two launches at once on one machine
    would otherwise both take accelerate's default (29500) and the second would fail to start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_arguments(args: argparse.Namespace, out: str | None) -> list[str]:
    """The `unlearnspec run` arguments every process of the launch gets: this command's, less `--processes`,
    with the run folder named (``out``) unless the run is resumed."""
    argv: list[str] = [args.path] if args.path else []
    if args.resume:
        argv += ["--resume", args.resume]
    elif out is not None:
        argv += ["--out", out]
    if args.ledger:
        argv += ["--ledger", args.ledger]
    argv += [flag for flag, on in (("--allow-infeasible", args.allow_infeasible), ("--trust-plan", args.trust_plan),
                                   ("--no-ledger", args.no_ledger), ("--allow-remote-code", args.allow_remote_code),
                                   ("--quiet", args.quiet)) if on]
    return argv


def launch_command(processes: int, run_argv: Sequence[str], gpus: int, port: int) -> tuple[list[str], dict[str, str]]:
    """The launcher's command line and the environment changes for ``processes`` processes: one per GPU where
    there are enough GPUs (`--multi_gpu`, NCCL), else CPU processes (gloo): the GPUs are hidden and the same
    multi-process launcher is used, since accelerate's `--cpu --num_processes N` starts one process without MPI.

    Raises :class:`UsageError` when GPUs are visible but fewer than ``processes``: a CPU run of a model sized for
    GPUs is not what was asked for, and two processes sharing one GPU are not supported by accelerate's DDP."""
    if 0 < gpus < processes:
        raise UsageError(f"`--processes {processes}` asks for more processes than the {gpus} GPU(s) visible here",
                         help=[f"give `--processes {gpus}` or fewer (one process per GPU)",
                               "or run on CPU processes: `CUDA_VISIBLE_DEVICES= unlearnspec run ... --processes "
                               f"{processes}`"])
    env = {} if gpus else {"CUDA_VISIBLE_DEVICES": ""}
    argv = [sys.executable, "-m", "unlearnspec.cli.launcher", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no",
            "--dynamo_backend", "no", "-m", "unlearnspec", "run", *run_argv]
    return argv, env


def read_exit(path: Path) -> int | None:
    """The exit status the launch's main process wrote, or None when it wrote none (it died first)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def launch(args: argparse.Namespace, out: str | None, *, gpus: int,
           spawn: Callable[[list[str], dict[str, str]], int] | None = None) -> int:
    """Run this `unlearnspec run` command as ``args.processes`` processes and return the run's exit status:
    the main process's (0 pass, 1 a claim failed, 2 the user must act, 3 incomplete evidence), or the
    launcher's when the main process died before it could write one (a crash or a kill), with a line that
    says so and how to resume. ``spawn`` runs the command (a test's stand-in for the launcher)."""
    argv, env_changes = launch_command(args.processes, run_arguments(args, out), gpus, free_port())
    with tempfile.TemporaryDirectory(prefix="unlearnspec-launch-") as tmp:
        exit_file = Path(tmp) / "exit"
        env = {**os.environ, **env_changes, EXIT_FILE: str(exit_file)}
        rc = (spawn or _spawn)(argv, env)
        code = read_exit(exit_file)
    if code is not None:
        return code
    if rc == 0:  # a launch whose main process returned without writing (not this runtime): trust the launcher
        return 0
    folder = args.resume or out
    sys.stderr.write(f"error: the {args.processes} processes of the run ended (launcher status {rc}) before the "
                     "main process reported the run's exit status; see its errors above\n")
    if folder and (Path(folder) / "run.json").is_file():
        sys.stderr.write(f"  = help: the run folder {code_span(folder)} can be continued: "
                         f"`unlearnspec run --resume {folder} --processes {args.processes}`\n")
    return rc if rc > 0 else 1  # a launcher killed by a signal has a negative status


def _spawn(argv: list[str], env: dict[str, str]) -> int:
    return subprocess.run(argv, env=env, check=False).returncode
