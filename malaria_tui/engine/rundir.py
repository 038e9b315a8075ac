"""The run directory: the contract between the engine, the headless front end and the TUI.

Layout (documented in docs/run-directory.md)::

    runs/<YYYYmmdd-HHMMSS>-<name>/
      config.toml        resolved config (every key), written once, atomically
      events.jsonl       append-only, one JSON event per line, flushed per line
      run.lock           pid of the process training it (absent when nobody is)
      checkpoints/       latest.json -> state-<epoch>-<step>/ (resumable), best.keras
      eval/              metrics.json, confusion.csv, roc.csv, predictions.csv
      tensorboard/       train/ and val/ summaries
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from malaria_tui.engine import atomic
from malaria_tui.engine.errors import RunDirError
from malaria_tui.engine.events import TERMINAL_KINDS, Event, RunFinished, from_json, to_json

if TYPE_CHECKING:
    from malaria_tui.engine.config import Config

CONFIG = "config.toml"
EVENTS = "events.jsonl"
LOCK = "run.lock"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def eval_dir(self) -> Path:
        return self.path / "eval"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def best_model(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def name(self) -> str:
        return self.path.name

    def load_config(self) -> Config:
        from malaria_tui.engine import config

        return config.load(self.config_path)

    def trained_config(self) -> Config:
        """``config.toml`` with ``data.color``/``data.split`` = "auto" replaced by what training
        resolved them to (the first ``run_started`` event's config). A grid trial's (so a CV
        fold's) config.toml is written before training resolves "auto", and predicting with
        "rgb" would feed colour cells to a model trained on luminance."""
        cfg = self.load_config()
        if "auto" not in (cfg.data.color, cfg.data.split):
            return cfg
        try:
            with open(self.events_path, encoding="utf-8") as f:
                first = next((line for line in f if '"run_started"' in line), None)
            data = json.loads(first)["config"]["data"] if first else {}
        except (OSError, ValueError, KeyError, TypeError):
            return cfg
        update = {
            k: data[k]
            for k, ok in (("color", ("gray", "rgb")), ("split", ("patient", "image")))
            if getattr(cfg.data, k) == "auto" and data.get(k) in ok
        }
        return cfg.model_copy(update={"data": cfg.data.model_copy(update=update)})

    def events(self) -> list[Event]:
        return EventReader(self.events_path).read_new()

    def status(self) -> str:
        """``running``, ``completed``, ``early_stopped``, ``failed``, ``interrupted`` or ``stale``."""
        last: Event | None = None
        for ev in self.events():
            if ev.kind in TERMINAL_KINDS:
                last = ev
            elif ev.kind == "run_started":
                last = None
        if last is None:
            return "running" if lock_holder(self.path) else "stale"
        if isinstance(last, RunFinished):
            return last.status
        return "failed" if last.kind == "run_failed" else "interrupted"


def open_run(path: str | os.PathLike) -> RunDir:
    """A run directory given by the user; one clear error when it is not one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RunDirError(f"{p}: no such run directory")
    if not p.is_dir() or not (p / CONFIG).is_file():
        raise RunDirError(
            f"{p}: not a run directory (it has no {CONFIG}); pass a folder under runs/"
        )
    return RunDir(p.resolve())


def unique_dir(runs_dir: str | os.PathLike, name: str, kind: str = "") -> Path:
    """A new ``<runs_dir>/<YYYYmmdd-HHMMSS>-[<kind>-]<name>`` folder; two made in the same
    second get ``-2``, ``-3``... (``mkdir`` is atomic, so concurrent processes never share one)."""
    root = Path(runs_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(
            f"{root}: cannot create the runs directory ({e.strerror}); pass --runs-dir"
        ) from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "run"
    base = f"{stamp}-{kind}-{safe}" if kind else f"{stamp}-{safe}"
    for i in range(1000):
        p = root / (base if i == 0 else f"{base}-{i + 1}")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(
                f"{root}: cannot write here ({e.strerror}); pass --runs-dir"
            ) from None
    raise RunDirError(f"{root}: too many runs named {safe!r} this second")  # pragma: no cover


def create(runs_dir: str | os.PathLike, name: str, config_toml: str) -> RunDir:
    """A fresh run directory holding its resolved config."""
    run = RunDir(unique_dir(runs_dir, name).resolve())
    write_config(run, config_toml)
    return run


def write_config(run: RunDir, config_toml: str) -> None:
    """Replace a run's resolved config (atomically: a reader never sees half of it)."""
    atomic.write_text(run.config_path, config_toml)


def newest(runs_dir: str | os.PathLike) -> RunDir:
    runs = list_runs(runs_dir)
    if not runs:
        raise RunDirError(f"{runs_dir}: no runs yet; start one with `malaria-tui --no-ui`")
    return runs[-1]


def list_runs(runs_dir: str | os.PathLike) -> list[RunDir]:
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        return []
    found = [RunDir(p.resolve()) for p in root.iterdir() if (p / CONFIG).is_file()]
    return sorted(found, key=lambda r: r.name)


# --- the event log -----------------------------------------------------------------------------


class EventWriter:
    """Appends events as JSON lines, flushed per line so a follower sees them at once."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        if self._f.tell() and not _ends_with_newline(self.path):
            self._f.write("\n")  # end a line torn by a crash, so the next event is whole
            self._f.flush()

    def write(self, event: Event) -> None:
        self._f.write(json.dumps(to_json(event), allow_nan=True) + "\n")
        self._f.flush()
        if event.kind != "batch":
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


class EventReader:
    """Reads new complete lines since the last call; a torn last line waits for its newline.

    A line that is not valid JSON (a crash mid-write followed by more appends) is skipped and
    counted in ``bad_lines``; it is never fatal.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.bad_lines = 0

    def read_new(self) -> list[Event]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out: list[Event] = []
        for raw in data[: end + 1].splitlines():
            if not raw.strip():
                continue
            try:
                ev = from_json(json.loads(raw))
            except (ValueError, TypeError):
                self.bad_lines += 1
                continue
            if ev is not None:
                out.append(ev)
        return out


# --- who is training this run ------------------------------------------------------------------


def lock_holder(path: str | os.PathLike, name: str = LOCK) -> int | None:
    """The pid in ``path/name`` (the process training this run), if that process is alive."""
    try:
        pid = int((Path(path) / name).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def write_lock(run: RunDir, pid: int) -> None:
    """Mark ``run`` as trained by process ``pid`` (a child started to train it)."""
    atomic.write_text(run.path / LOCK, str(pid))


def acquire_lock(run: RunDir) -> None:
    holder = lock_holder(run.path)
    if holder and holder != os.getpid():
        raise RunDirError(
            f"{run.path}: still being trained by process {holder}; watch it with `malaria-tui watch`"
        )
    write_lock(run, os.getpid())


def release_lock(run: RunDir) -> None:
    if lock_holder(run.path) == os.getpid():
        (run.path / LOCK).unlink(missing_ok=True)
