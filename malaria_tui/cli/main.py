"""``malaria-tui``: find the command, parse its options, run it, turn errors into exit codes.

Nothing heavy is imported here: ``--help`` answers before TensorFlow or Textual would load.
Bad input is one line on stderr and exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import sys

from malaria_tui.cli.exitcodes import ExitCode


def main(argv: list[str] | None = None) -> int:
    from malaria_tui.cli.registry import COMMANDS, DEFAULT, build_parser
    from malaria_tui.engine.errors import UserError

    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv.pop(0) if argv and argv[0] in COMMANDS else DEFAULT
    try:
        args = build_parser(name).parse_args(argv)
        from malaria_tui.engine import tfenv

        tfenv.set_verbose(args.verbose)
        return int(COMMANDS[name].run(args))
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    except UserError as e:
        print(f"malaria-tui: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("malaria-tui: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as e:  # a fault no command foresaw: one line, the traceback with --verbose
        from malaria_tui.engine import tfenv
        from malaria_tui.engine.faults import explain_fault

        if tfenv._verbose:
            raise
        print(f"malaria-tui: {name}: {explain_fault(e)}", file=sys.stderr)
        return ExitCode.FAILED
