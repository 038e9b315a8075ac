"""The ``malaria-tui`` command: the TUI by default, headless runs and tools as subcommands.

Nothing heavy is imported at module level: ``--help`` answers before TensorFlow would load.
Bad input is one line on stderr and exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from malaria_tui.cli.exitcodes import ExitCode

COMMANDS = ("resume", "evaluate", "data", "watch", "predict", "export", "grid")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(ExitCode.USAGE, f"malaria-tui: error: {message} (see --help)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log output")


def _train_in(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--train-in",
        choices=("process", "thread"),
        default="process",
        help="TUI only: train in a child process that the window follows, which can keep "
        "training after the window quits (default), or in a thread of the window's process",
    )


def _train_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="malaria-tui",
        description="Train, tune, evaluate and deploy malaria cell classifiers from the terminal. "
        "With no arguments: the TUI, set up with configs/default.toml's settings on the bundled sample.",
        epilog="commands: resume RUN_DIR | evaluate RUN_DIR | data SPEC | watch [RUN_DIR] | "
        "predict MODEL_OR_RUN PATH... | export RUN | grid --config FILE | serve  "
        "(malaria-tui COMMAND --help for each).  Data SPEC: sample | tfds | tfds:DATA_DIR | folder:PATH",
    )
    p.add_argument(
        "--no-ui",
        action="store_true",
        help="train headless (progress on stdout) instead of the TUI",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML run config (default: the built-in defaults = configs/default.toml)",
    )
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config key, e.g. train.epochs=3",
    )
    p.add_argument("--data", metavar="SPEC", help="data source (same as --set data.source=SPEC)")
    p.add_argument(
        "--runs-dir",
        metavar="DIR",
        default="runs",
        help="where run directories go (default: ./runs)",
    )
    p.add_argument("--name", help="run name (part of the run directory name)")
    p.add_argument(
        "--plain", action="store_true", help="plain one-line-per-epoch output even on a terminal"
    )
    _train_in(p)
    _common(p)
    return p


def _sub_parser(cmd: str) -> argparse.ArgumentParser:
    if cmd == "resume":
        p = _Parser(
            prog="malaria-tui resume", description="Continue an interrupted run where it stopped."
        )
        p.add_argument("run_dir", metavar="RUN_DIR")
        p.add_argument(
            "--no-ui",
            action="store_true",
            help="resume headless instead of in the TUI",
        )
        p.add_argument("--plain", action="store_true")
        _train_in(p)
    elif cmd == "evaluate":
        p = _Parser(
            prog="malaria-tui evaluate",
            description="Score a run's best checkpoint on its own test split, or on every image of --data SPEC.",
        )
        p.add_argument("run_dir", metavar="RUN_DIR")
        p.add_argument(
            "--data",
            metavar="SPEC",
            help="score every image of this source instead of the run's test split",
        )
        p.add_argument(
            "--threshold",
            type=float,
            help="decision threshold (default: 0.5; the run's chosen ones are shown too)",
        )
        p.add_argument("--json", action="store_true", help="print one JSON object")
    elif cmd == "data":
        p = _Parser(
            prog="malaria-tui data",
            description="Describe a data source: classes, splits, patients, sizes.",
        )
        p.add_argument("spec", metavar="SPEC", nargs="?", default="sample")
        p.add_argument("--config", metavar="FILE")
        p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[])
        p.add_argument("--json", action="store_true")
    elif cmd == "predict":
        p = _Parser(
            prog="malaria-tui predict",
            description="Diagnose cell images: P(Parasitized) per cell, labels at the run's threshold, "
            "parasitemia per folder with a 95%% confidence interval.",
        )
        p.add_argument(
            "model",
            metavar="MODEL_OR_RUN",
            help="a run directory, a .keras/.tflite file or a SavedModel folder",
        )
        p.add_argument(
            "paths", metavar="PATH", nargs="+", help="images or folders (searched recursively)"
        )
        p.add_argument(
            "--threshold",
            type=float,
            help="decision threshold (default: the run's chosen operating point)",
        )
        p.add_argument(
            "--operating-point",
            choices=("sensitivity_target", "youden", "default"),
            help="which of the run's thresholds to use",
        )
        fmt = p.add_mutually_exclusive_group()
        fmt.add_argument("--json", action="store_true", help="one JSON object")
        fmt.add_argument("--csv", action="store_true", help="one CSV row per cell")
        p.add_argument(
            "--tta",
            action="store_true",
            help="average the 8 flips/90-degree rotations of each cell",
        )
        p.add_argument(
            "--explain", metavar="DIR", help="write a Grad-CAM overlay PNG per image into DIR"
        )
    elif cmd == "export":
        p = _Parser(
            prog="malaria-tui export",
            description="Export a run's best model and check it against the original.",
        )
        p.add_argument("run_dir", metavar="RUN")
        p.add_argument("--format", choices=("keras", "savedmodel", "tflite"), default="keras")
        p.add_argument(
            "--quantize", choices=("int8",), help="int8 post-training quantization (tflite)"
        )
        p.add_argument("--out", metavar="PATH", help="where to write (default: RUN/export/...)")
        p.add_argument("--json", action="store_true")
    elif cmd == "grid":
        from malaria_tui.cli.commands import grid as grid_cli

        p = grid_cli.add_arguments(
            _Parser(prog="malaria-tui grid", description=grid_cli.DESCRIPTION)
        )
    elif cmd == "serve":
        p = _Parser(
            prog="malaria-tui serve", description="Serve the app to a browser (textual-serve)."
        )
        p.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default: localhost only)"
        )
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--runs-dir", metavar="DIR", default="runs")
        p.add_argument("--config", metavar="FILE")
    else:  # watch
        p = _Parser(
            prog="malaria-tui watch",
            description="Open the TUI on a run started elsewhere (live or finished).",
        )
        p.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
        p.add_argument("--runs-dir", metavar="DIR", default="runs")
    _common(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from malaria_tui.engine.errors import UserError

    try:
        if argv and argv[0] in COMMANDS:
            cmd = argv[0]
            args = _sub_parser(cmd).parse_args(argv[1:])
            _set_verbose(args.verbose)
            return int(globals()[f"_cmd_{cmd}"](args))
        args = _train_parser().parse_args(argv)
        _set_verbose(args.verbose)
        return int(_cmd_train(args))
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    except UserError as e:
        print(f"malaria-tui: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("malaria-tui: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def _set_verbose(verbose: bool) -> None:
    from malaria_tui.engine import tfenv

    tfenv.set_verbose(verbose)


def _load_config(args):
    from malaria_tui.engine import config

    overrides = list(args.set)
    if getattr(args, "data", None):
        overrides.append(f"data.source={json.dumps(args.data)}")
    if getattr(args, "name", None):
        overrides.append(f"name={json.dumps(args.name)}")
    return config.load(args.config, overrides)


def _cmd_train(args) -> int:
    cfg = _load_config(args)
    if not args.no_ui:
        from malaria_tui.tui.app import create_app

        return _run_app(create_app(config=cfg, runs_dir=args.runs_dir, train_in=args.train_in))
    return _headless(
        lambda stop, report: _train(cfg, args.runs_dir, None, False, stop, report), args.plain
    )


def _run_app(app) -> int:
    """Run the TUI; its exit code is the headless one (130 after ctrl+c, SIGINT or SIGTERM
    stopped a run at a checkpoint), with the same hint once the terminal is restored."""
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


def _train(cfg, runs_dir, run, resume, stop, report):
    from malaria_tui.engine.training.trainer import train

    return train(cfg, runs_dir=runs_dir, run=run, resume=resume, on_event=report, stop=stop)


def _headless(job, plain: bool) -> int:
    from malaria_tui.cli.headless import run_training

    return run_training(job, plain)


def _cmd_resume(args) -> int:
    from malaria_tui.engine import rundir

    run = rundir.open_run(args.run_dir)
    if not args.no_ui:
        from malaria_tui.tui.app import create_app

        return _run_app(
            create_app(runs_dir=str(run.path.parent), resume_run=run, train_in=args.train_in)
        )
    return _headless(lambda stop, report: _train(None, None, run, True, stop, report), args.plain)


def _cmd_evaluate(args) -> int:
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.evaluation.score_run import evaluate_run

    tfenv.divert_native_stderr()
    result = evaluate_run(args.run_dir, data=args.data, threshold=args.threshold)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        from malaria_tui.cli.report import print_evaluation

        print_evaluation(result)
    return ExitCode.OK


def _cmd_data(args) -> int:
    from malaria_tui.engine import config
    from malaria_tui.engine.data.describe import describe

    cfg = config.load(args.config, [*args.set, f"data.source={json.dumps(args.spec)}"])
    info = describe(cfg)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        from malaria_tui.cli.report import print_data

        print_data(info)
    return ExitCode.OK


def _cmd_predict(args) -> int:
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.inference import predictor
    from malaria_tui.engine.inference.diagnose import run_predict

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        from malaria_tui.engine.errors import UserError

        raise UserError(f"--threshold {args.threshold}: must be between 0 and 1")
    tfenv.divert_native_stderr()
    model = predictor.load(args.model, args.operating_point)
    cells, folders, bad, th, x = run_predict(model, args.paths, args.threshold, args.tta)
    if args.explain:
        from malaria_tui.engine.explain import write_overlays

        if model.kind != "keras":
            from malaria_tui.engine.errors import UserError

            raise UserError("--explain needs a Keras model (a run directory or a .keras file)")
        write_overlays(model.model, x, [c.path for c in cells], Path(args.explain))
    from malaria_tui.cli.report import print_predictions

    print_predictions(
        cells,
        folders,
        bad,
        th,
        model,
        fmt="json" if args.json else "csv" if args.csv else "table",
        tta=args.tta,
    )
    return ExitCode.OK


def _cmd_export(args) -> int:
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.export import export_run

    tfenv.divert_native_stderr()
    report = export_run(args.run_dir, args.format, args.out, args.quantize)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        change = f"accuracy {report['accuracy_original']:.4f} -> {report['accuracy_export']:.4f} ({report['accuracy_change']:+.4f})"
        print(
            f"exported {report['path']} ({report['bytes'] / 1e6:.2f} MB); checked on {report['checked_on']} test images: "
            f"max |p - p_original| = {report['max_abs_diff']:.2e}, {change}"
        )
    return ExitCode.OK


def _cmd_grid(args) -> int:
    from malaria_tui.cli.commands import grid as grid_cli

    return grid_cli.run(args)


def _cmd_serve(args) -> int:
    from malaria_tui.tui.serve import serve

    serve(host=args.host, port=args.port, runs_dir=args.runs_dir, config_path=args.config)
    return ExitCode.OK


def _cmd_watch(args) -> int:
    from malaria_tui.engine import rundir

    run = rundir.open_run(args.run_dir) if args.run_dir else rundir.newest(args.runs_dir)
    from malaria_tui.tui.app import create_app

    return _run_app(create_app(runs_dir=str(Path(run.path).parent), watch_run=run))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
