"""The table of commands: the parser, ``--help``, dispatch and the README's command table all
come from it, so a command cannot exist in one of them and be missing from another."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from malaria_tui.cli import options
from malaria_tui.cli.commands import (
    cv,
    data,
    evaluate,
    export,
    grid,
    predict,
    resume,
    review,
    runs,
    serve,
    train,
    watch,
)
from malaria_tui.cli.exitcodes import ExitCode

DEFAULT = "train"  # what ``malaria-tui`` with no command runs


@dataclass(frozen=True)
class Command:
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    summary: str  # one line: the README table and the top-level --help


COMMANDS: dict[str, Command] = {
    m.NAME: Command(m.add_arguments, m.run, m.SUMMARY)
    for m in (train, resume, evaluate, data, watch, predict, export, grid, cv, review, runs, serve)
}


class CliParser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def prog(name: str) -> str:
    return "malaria-tui" if name == DEFAULT else f"malaria-tui {name}"


def build_parser(name: str) -> argparse.ArgumentParser:
    command = COMMANDS[name]
    p = CliParser(
        prog=prog(name),
        description=command.summary,
        epilog=_overview() if name == DEFAULT else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_arguments(p)
    options.verbose(p)
    return p


def _overview() -> str:
    lines = ["commands (malaria-tui COMMAND --help for each):"]
    lines += [f"  {n:9} {c.summary}" for n, c in COMMANDS.items() if n != DEFAULT]
    lines.append(f"data SPEC: {options.DATA_SPECS}")
    return "\n".join(lines)


def synopsis(name: str) -> str:
    """The usage line on one line, without ``-h``/``--verbose`` (every command has those)."""
    p = build_parser(name)
    shown = [a for a in p._actions if a.dest not in ("help", "verbose")]
    formatter = argparse.HelpFormatter(prog=p.prog, width=10_000)
    formatter.add_usage(None, shown, p._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def markdown_table() -> str:
    """The README's command table (``tools/readme_commands.py`` writes it there)."""
    rows = ["| command | what it does |", "| --- | --- |"]
    for name, command in COMMANDS.items():
        cell = synopsis(name).replace("|", "\\|")
        rows.append(f"| `{cell}` | {command.summary} |")
    return "\n".join(rows)
