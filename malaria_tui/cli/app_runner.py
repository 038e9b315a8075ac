"""Running the app from a command: its exit code and the hints printed once the terminal is
back (how to resume an interrupted run, where a detached run goes on)."""

from __future__ import annotations

import sys
from typing import Any

from malaria_tui.cli.exitcodes import ExitCode


def run_app(app: Any) -> int:
    """Run the app; its exit code is the headless one (130 after ctrl+c, SIGINT or SIGTERM
    stopped a run at a checkpoint)."""
    app.run()
    code = app.return_code or ExitCode.OK
    run = app.interrupted_run
    if run is not None:
        print(f"resume with: malaria-tui resume {run.path}", file=sys.stderr)
    if app.detached_run is not None:
        log = app.detached_run.path / "train.log"
        print(
            f"training goes on in process {app.trainer.pid} (its output: {log}); "
            f"follow it with: malaria-tui watch {app.detached_run.path}",
            file=sys.stderr,
        )
    return code
