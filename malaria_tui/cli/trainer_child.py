"""The trainer process the app starts (:mod:`malaria_tui.tui.trainer_process`): a headless run
of a run directory the app has already made, followed by the app through that directory.

    python -m malaria_tui.cli.trainer_child RUN_DIR [--resume]

It trains as ``malaria-tui --no-ui --plain`` would, with the command line's own headless
runner: SIGINT saves a resumable checkpoint, plain lines go to the log (``RUN_DIR/train.log``).
It lives with the command line because it is a headless front end; the app starts it by
module name and never imports it.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str]) -> int:
    """Train ``RUN_DIR`` (fresh, its config already there) or resume it."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # before any slow import
    from malaria_tui.cli.exitcodes import ExitCode
    from malaria_tui.cli.headless import run_training
    from malaria_tui.engine import rundir as rd
    from malaria_tui.engine.errors import UserError

    run = rd.RunDir(Path(argv[0]).resolve())
    resume = "--resume" in argv[1:]

    def job(stop, report):
        from malaria_tui.engine.training.trainer import train

        config = None if resume else run.load_config()
        return train(config, run=run, resume=resume, on_event=report, stop=stop)

    try:
        return int(run_training(job, plain=True, stop=stop))
    except UserError as e:  # the window reads this line from the log (failure_reason)
        print(f"malaria-tui: {e}", file=sys.stderr, flush=True)
        return ExitCode.USAGE


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
