"""The ``malaria-tui`` command line: one registry of commands, headless output, exit codes."""

from malaria_tui.cli.exitcodes import ExitCode
from malaria_tui.cli.main import main

__all__ = ["ExitCode", "main"]
