"""Train: start/stop, progress with ETA and images/s, live loss/metric charts, the event log.

Everything drawn here comes from :class:`~malaria_tui.tui.training_session.TrainingSession`,
which the training controller feeds from the trainer (its process or thread, or a grid's
thread) or from a followed ``events.jsonl``; the app calls :meth:`TrainScreen.redraw` at most
once per UI tick, so a fast trainer cannot flood the UI.
"""

from __future__ import annotations

import time

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import RichLog, Static

from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.training_session import TrainingSession, fmt_duration
from malaria_tui.tui.widgets.charts import ChartKeys, Line, LineChart
from malaria_tui.tui.widgets.form import invalid_fields

VIEWS = ("batch+epoch", "epoch", "batch")
# While a run is active the charts are redrawn at most this often (the numbers above them at
# every UI tick): plotting is the UI thread's costliest work, and it takes the trainer's GIL.
CHART_SECONDS = 1.0
LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "", "debug": "dim"}


class TrainScreen(ChartKeys, BaseScreen):
    MODE = "train"
    CSS_PATH = "train.tcss"
    AUTO_FOCUS = "#log"
    BINDINGS = [
        Binding(
            "s",
            "start",
            "Start",
            id="train.start",
            tooltip="Train with the current config in a new run",
        ),
        Binding(
            "x",
            "stop",
            "Stop",
            id="train.stop",
            tooltip="Stop at the next step with a resumable checkpoint",
        ),
        Binding(
            "m",
            "cycle_metric",
            "Metric",
            id="train.metric",
            tooltip="Show the next metric in the right chart",
        ),
        Binding(
            "b",
            "cycle_view",
            "Batch/epoch",
            id="train.view",
            tooltip="Chart per batch or per epoch",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.metric = ""
        self.view = VIEWS[0]
        self._log_shown = 0
        self._binding_state: tuple = ()
        self._charts_at = 0.0
        self._shown_headline: Text | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="body"):
            yield Static("", id="headline")
            yield Static("", id="progress")
            with Horizontal(id="charts"):
                yield LineChart("loss", id="loss-chart")
                yield LineChart("metric", id="metric-chart")
            # long lines wrap under their text (a cut line lost "specificity" at 80 columns)
            yield RichLog(
                id="log", max_lines=500, wrap=True, markup=False, auto_scroll=True, min_width=20
            )

    def on_mount(self) -> None:
        self.redraw()

    def on_screen_resume(self) -> None:
        # The numbers now, the costlier charts just after the screen's first frame: the
        # key press shows at once (the charts it shows are those it had when left).
        self.redraw(charts=False)
        self.update_status()
        self.call_after_refresh(self.redraw, True)

    def on_tf_ready(self) -> None:
        if self.is_mounted:
            self.redraw()

    def on_run_done(self) -> None:
        if self.is_mounted:
            self.redraw()
            self.refresh_bindings()

    # --- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.mapp
        if action == "start":
            if app.controller.watch_run is not None:
                return False
            return None if (app.training or not app.tf_ready) else True
        if action == "stop":
            if app.controller.watch_run is not None:
                return False
            return True if app.training and app.session.status != "stopping" else None
        return super().check_action(action, parameters)

    def action_start(self) -> None:
        bad = invalid_fields(self.app)
        if bad and self.check_action("start", ()):  # the config keeps the last valid values
            key, reason, where = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            self.notify(
                f"Cannot start: {key}: {reason} ({where}){more}. Fix it first: the run "
                "would use the last valid value, not the one shown.",
                severity="error",
                timeout=8,
            )
            self.redraw()
            return
        why = self.mapp.controller.start()
        if why:
            self.notify(f"Cannot start: {why}", severity="warning")
        self._log_shown = 0
        self.query_one("#log", RichLog).clear()
        self.redraw()
        self.refresh_bindings()

    def action_stop(self) -> None:
        if self.mapp.controller.stop():
            self.notify("Stopping: a resumable checkpoint is being saved…")
        self.redraw()
        self.refresh_bindings()

    def action_cycle_metric(self) -> None:
        names = [n for n in self.mapp.session.metric_names if n != "loss"]
        if not names:
            return
        i = names.index(self.metric) if self.metric in names else -1
        self.metric = names[(i + 1) % len(names)]
        self.redraw(force=True)

    def action_cycle_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.redraw(force=True)

    def palette_commands(self) -> list[PaletteCommand]:
        out: list[PaletteCommand] = []
        if self.check_action("start", ()):
            out.append(("Start training", "Train with the current config", self.action_start))
        if self.check_action("stop", ()):
            out.append(("Stop training", "Stop with a resumable checkpoint", self.action_stop))
        out.append(
            (
                "Cycle chart metric",
                "Show the next metric in the right chart",
                self.action_cycle_metric,
            )
        )
        out.append(
            ("Cycle batch/epoch view", "Per batch, per epoch, or both", self.action_cycle_view)
        )
        return out

    # --- drawing --------------------------------------------------------------------------------

    def redraw(self, force: bool = False, charts: bool = True) -> None:
        if not self.query("#headline"):  # called by the app's tick before compose finished
            return
        s = self.mapp.session
        headline = self._headline(s)
        if headline != self._shown_headline:  # it may change height (a failure line): layout
            self._shown_headline = headline
            self.query_one("#headline", Static).update(headline)
        # two lines, always: no layout pass for the whole screen four times a second
        self.query_one("#progress", Static).update(self._progress(s), layout=False)
        now = time.monotonic()
        if charts and (not s.active or force or now - self._charts_at >= CHART_SECONDS):
            self._charts_at = now
            self._draw_charts(s)
        self._draw_log(s)
        # Only when start/stop availability changed: a 4 Hz refresh of the bindings would
        # redraw the key bar (and, with Textual's Footer, leaked a widget per key each time).
        state = (self.check_action("start", ()), self.check_action("stop", ()))
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def _headline(self, s: TrainingSession) -> Text:
        app = self.mapp
        cfg = s.config or app.config.to_dict()
        model = cfg.get("model", {}).get("name", "?")
        t = Text()
        watched = app.controller.watching
        if watched is not None:
            t.append("watching ", style="bold")
            t.append(watched.name, style="bold")
        elif s.run_dir:
            t.append("run ", style="bold")
            t.append(s.run_dir.rstrip("/").rsplit("/", 1)[-1], style="bold")
        else:
            t.append("new run ", style="bold")
        t.append(f"  {model}  ")
        status_style = {
            "running": "bold yellow",
            "starting": "yellow",
            "stopping": "bold yellow",
            "completed": "bold green",
            "early_stopped": "bold green",
            "interrupted": "bold yellow",
            "failed": "bold red",
        }.get(s.status, "dim")
        t.append(s.status.replace("_", " "), style=status_style)
        activity = s.activity
        if activity:
            t.append(f"  {activity}…", style="yellow")
        startable = not s.active and app.controller.watch_run is None
        bad = invalid_fields(self.app) if startable else []
        if bad:
            key, reason, where = bad[0]
            t.append(f"   cannot start: {key}: {reason} ({where})", style="bold red")
        elif s.status == "idle" and app.controller.watch_run is None:
            if app.tf_state == "loading":
                t.append("   TensorFlow loading… (start becomes available when ready)", style="dim")
            elif app.tf_ready:
                d = app.config
                t.append(
                    f"   press s to train {d.train.epochs} epochs, batch {d.data.batch_size}, "
                    f"{d.data.image_size}px, data {d.data.source}",
                    style="dim",
                )
            else:
                t.append(f"   TensorFlow unavailable: {app.tf_error or 'not loaded'}", style="red")
        if s.failure:
            t.append(f"\n{s.failure}", style="red")
        return t

    def _progress(self, s: TrainingSession) -> Table:
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(width=12, no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_column(width=24, no_wrap=True)
        epochs = max(1, s.epochs)
        done_epochs = s.epochs_done
        finished = s.status in ("completed", "early_stopped")
        spe = max(1, s.steps_per_epoch)
        step = s.step if not finished else spe
        total = s.total_steps
        frac_all = (s.global_step / total) if total else (1.0 if finished else 0.0)
        cur_epoch = min(epochs, s.epoch + 1) if s.started_at else 0
        grid.add_row(
            Text(f"epoch {cur_epoch}/{s.epochs or '-'}"),
            ProgressBar(total=epochs, completed=max(done_epochs, frac_all * epochs)),
            Text(f"{100 * frac_all:5.1f}%  ETA {fmt_duration(s.eta_seconds)}"),
        )
        ips = f"{s.images_per_sec:,.0f} img/s" if s.images_per_sec else "- img/s"
        grid.add_row(
            Text(f"batch {step}/{s.steps_per_epoch or '-'}"),
            ProgressBar(total=spe, completed=step),
            Text(f"{ips}  {fmt_duration(s.elapsed_seconds)}"),
        )
        return grid

    def _series_lines(self, s: TrainingSession, name: str) -> list[Line]:
        lines: list[Line] = []
        if self.view in ("batch+epoch", "batch") and name in s.batch:
            xs, ys = s.batch[name].points()
            lines.append(Line("train/batch", xs, ys, color="gray"))
        if self.view in ("batch+epoch", "epoch"):
            if name in s.epoch_train:
                xs, ys = s.epoch_train[name].points()
                lines.append(Line("train", xs, ys, color="blue"))
            if name in s.epoch_val:
                xs, ys = s.epoch_val[name].points()
                lines.append(Line("val", xs, ys, color="orange"))
        return lines

    def _draw_charts(self, s: TrainingSession) -> None:
        names = [n for n in s.metric_names if n != "loss"]
        if self.metric not in names:
            self.metric = "auc" if "auc" in names else (names[0] if names else "")
        xlim = (0.0, float(max(1, s.epochs))) if s.epochs else None
        loss = self.query_one("#loss-chart", LineChart)
        loss.set_lines(self._series_lines(s, "loss"), title=f"loss ({self.view})", xlim=xlim)
        metric = self.query_one("#metric-chart", LineChart)
        if self.metric:
            metric.set_lines(
                self._series_lines(s, self.metric),
                title=f"{self.metric} (m: next of {len(names)})",
                xlim=xlim,
            )
        else:
            metric.set_lines([], title="metrics")

    def _draw_log(self, s: TrainingSession) -> None:
        log = self.query_one("#log", RichLog)
        new = s.log_total - self._log_shown
        if new <= 0:
            return
        lines = list(s.log)[-min(new, len(s.log)) :]
        for line in lines:
            stamp = time.strftime("%H:%M:%S", time.localtime(line.time))
            row = Table.grid(padding=(0, 1))
            row.add_column(width=8, no_wrap=True, style="dim")
            row.add_column(ratio=1)
            row.add_row(stamp, Text(line.text, style=LEVEL_STYLE.get(line.level, "")))
            log.write(row, expand=True)  # the log's width, whatever the console's
        self._log_shown = s.log_total
