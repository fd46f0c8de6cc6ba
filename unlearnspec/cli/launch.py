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
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


def record_helper_error(text: str) -> bool:
    """A helper process of a launch started by `run --processes` keeps its error for :func:`launch`, which shows
    it only when the main process reported nothing: the main process shows a helper's failure itself, and where
    every process refuses alike (a resume in another environment) the terminal would show the error twice.
    Whether it was kept (never outside such a launch, nor on the main process)."""
    where, rank = os.environ.get(EXIT_FILE), os.environ.get("RANK", "0")
    if not where or rank in ("", "0"):
        return False
    try:
        with Path(f"{where}.rank{int(rank)}").open("a", encoding="utf-8") as f:
            f.write(text)
    except (OSError, ValueError):
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


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the platform tells it, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def launch_command(processes: int, run_argv: Sequence[str], gpus: int, port: int,
                   cpus: int | None = None) -> tuple[list[str], dict[str, str]]:
    """The launcher's command line and the environment changes for ``processes`` processes: one per GPU where
    there are enough GPUs (`--multi_gpu`, NCCL), else CPU processes (gloo): the GPUs are hidden and the same
    multi-process launcher is used, since accelerate's `--cpu --num_processes N` starts one process without MPI.

    Raises :class:`UsageError` when GPUs are visible but fewer than ``processes``: a CPU run of a model sized for
    GPUs is not what was asked for, and two processes sharing one GPU are not supported by accelerate's DDP;
    and for more CPU processes than ``cpus`` (the cores here): each process loads the runtime and every model,
    so `--processes 64` on two cores only shares them among more copies, slower than one process and short
    of memory long before the run ends."""
    if 0 < gpus < processes:
        raise UsageError(f"`--processes {processes}` asks for more processes than the {gpus} GPU(s) visible here",
                         help=[f"give `--processes {gpus}` or fewer (one process per GPU)",
                               "or run on CPU processes: `CUDA_VISIBLE_DEVICES= unlearnspec run ... --processes "
                               f"{processes}`"])
    cores = cpus if cpus is not None else cpu_cores()
    if not gpus and processes > cores:
        raise UsageError(f"`--processes {processes}` asks for more CPU processes than the {cores} CPU core(s) "
                         "here", help=[f"give `--processes {cores}` or fewer: a process on a core of its own; "
                                       "more only share the cores among more copies of the models"])
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
        try:
            rc = (spawn or _spawn)(argv, env)
        except Stopped as stop:
            return _stopped(args, out, stop.signum)
        code = read_exit(exit_file)
        helpers = "" if code is not None else "".join(
            f.read_text(encoding="utf-8", errors="replace") for f in sorted(Path(tmp).glob("exit.rank*")))
    if code is not None:
        return code
    sys.stderr.write(helpers)
    if rc == 0:  # a launch whose main process returned without writing (not this runtime): trust the launcher
        return 0
    sys.stderr.write(f"error: the {args.processes} processes of the run ended (launcher status {rc}) before the "
                     "main process reported the run's exit status; see its errors above\n")
    _resume_help(args, out)
    return rc if rc > 0 else 1  # a launcher killed by a signal has a negative status


def _stopped(args: argparse.Namespace, out: str | None, signum: int) -> int:
    """A launch stopped on request: one line, how to continue it, and the shell's status for the signal."""
    sys.stderr.write(f"interrupted ({signal.Signals(signum).name}): the {args.processes} processes of the run were "
                     "stopped\n")
    _resume_help(args, out)
    return 128 + signum


def _resume_help(args: argparse.Namespace, out: str | None) -> None:
    folder = args.resume or out
    if folder and (Path(folder) / "run.json").is_file():
        sys.stderr.write(f"  = help: the run folder {code_span(folder)} can be continued: "
                         f"`unlearnspec run --resume {shlex.quote(folder)} --processes {args.processes}`\n")


#: The environment variable naming the process that started the launcher: the launcher ends with it
#: (:func:`unlearnspec.cli.launcher.follow_parent`), so a killed `run --processes N` leaves no process running.
PARENT = "UNLEARNSPEC_LAUNCH_PARENT"
#: The signals passed on to the launcher, which stops its processes and ends (a run folder to resume).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _spawn(argv: list[str], env: dict[str, str]) -> int:
    """Run the launcher in a process group of its own and pass it the first stop signal this process gets.

    The launcher's processes run in sessions of their own (torch's elastic agent starts them so), so they are
    stopped by the launcher alone: Ctrl-C (the terminal's group, this process only), `kill` of this process or
    a closed terminal reach it here and are passed on once; the launcher then stops them and ends. Letting the
    signal end this process instead (Python's default for SIGTERM and SIGHUP, and `subprocess.run`'s kill of
    its child on Ctrl-C) left the launcher or its processes running, still writing the run folder."""
    stops: list[int] = []
    own_group: dict[str, Any] = ({"process_group": 0} if sys.version_info >= (3, 11)  # Python 3.10: no such
                                 else {"preexec_fn": os.setpgrp})                    # argument
    with subprocess.Popen(argv, env={**env, PARENT: str(os.getpid())}, **own_group) as child:
        def forward(signum: int, _frame: object) -> None:
            if not stops:  # a second Ctrl-C waits for the stop already under way
                child.send_signal(signum)
            stops.append(signum)

        before = {s: signal.signal(s, forward) for s in FORWARDED}
        try:
            rc = child.wait()
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)
    if stops:
        raise Stopped(stops[0])
    return rc


class Stopped(Exception):
    """A launch stopped by a signal to the command that started it (Ctrl-C, `kill`, a closed terminal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
