"""The launcher process of `unlearnspec run --processes N` (cli/launch.py starts it): accelerate's own
launcher, with its failure report in the form of this CLI's.

`accelerate launch` ends any launch in which a process exited with a non-zero status by raising torch's
``ChildFailedError`` (a Python traceback and a table), and logs each failed process at error level before
that. A process's own error is already printed by the process (`error[CODE]: ...`), and the status of the
run is the main process's (written for cli/launch.py), so here a failed launch is one line per process that
failed and the status 1, and a launch stopped by a signal (Ctrl-C) the conventional 128 + its number.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args(list(argv))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # replaced by the lines below
    try:
        launch_command(args)
    except ChildFailedError as failed:
        for rank, f in sorted(failed.failures.items()):
            how = (f"was stopped by signal {signal.Signals(-f.exitcode).name}" if f.exitcode < 0
                   else f"exited with status {f.exitcode}")
            sys.stderr.write(f"process {rank} of the launch {how}\n")
        return 1
    except SignalException as stopped:
        return 128 + int(stopped.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
