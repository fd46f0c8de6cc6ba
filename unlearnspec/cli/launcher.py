"""The launcher process of `unlearnspec run --processes N` (cli/launch.py starts it): accelerate's own
launcher, with its failure report in the form of this CLI's.

`accelerate launch` ends any launch in which a process exited with a non-zero status by raising torch's
``ChildFailedError`` (a Python traceback and a table), and logs each failed process at error level before
that. A process's own error is already printed by the process (`error[CODE]: ...`), and the status of the
run is the main process's (written for cli/launch.py), so here a failed launch is one line per process that
failed and the status 1, and a launch stopped by a signal (Ctrl-C) the conventional 128 + its number.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unlearnspec.cli.launch import EXIT_FILE, PARENT, read_exit


def follow_parent() -> None:
    """End this launcher (SIGTERM: it stops its processes first) when the `unlearnspec run --processes N` that
    started it dies, even by SIGKILL, which it cannot pass on; the processes would run on otherwise, each in a
    session of its own, writing a run folder nobody waits for. Linux only (prctl); elsewhere a no-op."""
    parent = os.environ.get(PARENT, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def failure_lines(failures: Mapping[int, Any], main_reported: bool) -> list[str]:
    """One line for each process of the launch that failed (torch's failure records: ``exitcode``, negative for
    a signal); none when the main process reported the run's status, having shown its error itself (the
    others were then stopped by the launcher, or refused alike)."""
    if main_reported:
        return []
    lines = []
    for rank, f in sorted(failures.items()):
        how = (f"was stopped by signal {signal.Signals(-f.exitcode).name}" if f.exitcode < 0
               else f"exited with status {f.exitcode}")
        lines.append(f"process {rank} of the launch {how}\n")
    return lines


def _main_reported() -> bool:
    where = os.environ.get(EXIT_FILE)  # written by the main process
    return bool(where) and read_exit(Path(str(where))) is not None


def main(argv: Sequence[str]) -> int:
    follow_parent()
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args(list(argv))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # replaced by the lines below
    try:
        launch_command(args)
    except ChildFailedError as failed:
        sys.stderr.write("".join(failure_lines(failed.failures, _main_reported())))
        return 1
    except SignalException as stopped:
        return 128 + int(stopped.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
