"""``grid.csv`` and ``grid.jsonl``: one row per trial, rewritten atomically as trials progress.

``grid.csv`` columns (the TUI's HParams screen reads them by name)::

    trial, status, rank, <each varied key>, <each metric>, test_accuracy, test_auc,
    test_sensitivity, test_specificity, best_epoch, epochs, seconds

``status`` is ``pending``, ``running``, ``completed``, ``early_stopped``, ``interrupted``,
``failed`` (the loss became NaN/Inf: final) or ``error`` (the grid stopped on an unexpected error:
retried by ``--resume``). Metrics are the validation (``val_*``) and training figures of the
trial's best epoch (the one kept as ``best.keras``, chosen by ``train.monitor``); ``rank`` 1 is
the best finished trial by the grid's metric (ties: lower ``val_loss``, then the earlier trial).
``test_*`` are filled for the best trial only, once every trial has finished. ``grid.jsonl``
holds the same rows as JSON objects (typed values, plus ``error`` text and the trial's folder).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malaria_tui.engine import atomic
from malaria_tui.engine import rundir as rd
from malaria_tui.engine.events import CheckpointSaved, EpochEnd

if TYPE_CHECKING:
    from malaria_tui.engine.grid.spec import GridSpec

CSV, JSONL = "grid.csv", "grid.jsonl"
DEFAULT_METRICS = (
    "val_auc",
    "val_accuracy",
    "val_loss",
    "val_precision",
    "val_recall",
    "auc",
    "accuracy",
    "loss",
)
TEST_COLUMNS = ("test_accuracy", "test_auc", "test_sensitivity", "test_specificity")
FINISHED = ("completed", "early_stopped")
FINAL = (*FINISHED, "failed")


def metric_columns(spec: GridSpec) -> list[str]:
    """The ranking metric first, then the usual validation and training figures."""
    return [spec.metric, *(m for m in DEFAULT_METRICS if m != spec.metric)]


def columns(spec: GridSpec) -> list[str]:
    return [
        "trial",
        "status",
        "rank",
        *spec.keys,
        *metric_columns(spec),
        *TEST_COLUMNS,
        "best_epoch",
        "epochs",
        "seconds",
    ]


def trial_figures(run: rd.RunDir) -> dict[str, Any]:
    """Best-epoch metrics, epochs done, seconds and (best trial only) test metrics of a run."""
    epochs: dict[int, EpochEnd] = {}
    best_epoch = None
    for ev in run.events():
        if isinstance(ev, EpochEnd):
            epochs[ev.epoch] = ev
        elif isinstance(ev, CheckpointSaved) and ev.role == "best":
            best_epoch = ev.epoch
    out: dict[str, Any] = {
        "metrics": {},
        "best_epoch": None,
        "epochs": len(epochs),
        "seconds": round(sum(e.seconds for e in epochs.values()), 2),
        "test": {},
    }
    if best_epoch is None and epochs:
        best_epoch = max(epochs)
    if best_epoch in epochs:
        e = epochs[best_epoch]
        out["metrics"] = {
            k: float(v) for k, v in (e.train | e.val).items() if isinstance(v, int | float)
        }
        out["best_epoch"] = best_epoch + 1
    try:
        saved = json.loads((run.eval_dir / "metrics.json").read_text(encoding="utf-8"))
        test = saved.get("test") or {}
    except (OSError, ValueError, AttributeError):
        test = {}
    out["test"] = {
        f"test_{k}": float(test[k])
        for k in ("accuracy", "auc", "sensitivity", "specificity")
        if isinstance(test.get(k), int | float)
    }
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class Summary:
    """The rows of one grid, in trial order; :meth:`write` rewrites both files atomically."""

    def __init__(self, grid_dir: Path, spec: GridSpec) -> None:
        self.dir = Path(grid_dir)
        self.spec = spec
        self.columns = columns(spec)
        self.metrics = metric_columns(spec)
        self.rows: dict[str, dict[str, Any]] = {
            t.name: {
                "trial": t.name,
                "index": t.index,
                "status": "pending",
                "rank": None,
                "params": dict(t.params),
                "metrics": {},
                "test": {},
                "best_epoch": None,
                "epochs": 0,
                "seconds": 0.0,
                "error": "",
                "run_dir": f"trials/{t.name}",
            }
            for t in spec.trials
        }

    @property
    def csv_path(self) -> Path:
        return self.dir / CSV

    @property
    def jsonl_path(self) -> Path:
        return self.dir / JSONL

    def previous_statuses(self) -> dict[str, str]:
        """Statuses from the last ``grid.jsonl`` written (to tell ``failed`` from ``error``)."""
        out: dict[str, str] = {}
        try:
            lines = self.jsonl_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                row = json.loads(line)
                out[row["trial"]] = row["status"]
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def update(
        self, trial_name: str, status: str, run: rd.RunDir | None = None, error: str = ""
    ) -> dict[str, Any]:
        row = self.rows[trial_name]
        row["status"] = status
        row["error"] = error
        if run is not None and run.events_path.exists():
            row.update(trial_figures(run))
        self._rank()
        return row

    def _rank(self) -> None:
        m, sign = self.spec.metric, (-1 if self.spec.mode == "max" else 1)
        scored = [
            r
            for r in self.rows.values()
            if r["status"] in FINISHED and _finite(r["metrics"].get(m))
        ]

        def key(
            r: dict[str, Any],
        ) -> tuple[
            float, float, int
        ]:  # ties (small validation sets) go to the lower val_loss, then the earlier trial
            loss = r["metrics"].get("val_loss")
            tie = loss if m != "val_loss" and _finite(loss) else math.inf
            return (sign * r["metrics"][m], tie, r["index"])

        scored.sort(key=key)
        for r in self.rows.values():
            r["rank"] = None
        for i, r in enumerate(scored, start=1):
            r["rank"] = i

    def best(self) -> dict[str, Any] | None:
        return next((r for r in self.rows.values() if r["rank"] == 1), None)

    def ranked(self) -> list[dict[str, Any]]:
        """Rows sorted by rank (unranked last, in trial order)."""
        return sorted(
            self.rows.values(),
            key=lambda r: (r["rank"] is None, r["rank"] or 0, r["index"]),
        )

    def flat(self, row: dict[str, Any]) -> dict[str, str]:
        out = {
            "trial": row["trial"],
            "status": row["status"],
            "rank": "" if row["rank"] is None else str(row["rank"]),
            "best_epoch": "" if row["best_epoch"] is None else str(row["best_epoch"]),
            "epochs": str(row["epochs"]),
            "seconds": f"{row['seconds']:.1f}",
        }
        for k in self.spec.keys:
            v = row["params"][k]
            out[k] = v if isinstance(v, str) else json.dumps(v)
        for k in (*self.metrics, *TEST_COLUMNS):
            v = row["metrics"].get(k) if not k.startswith("test_") else row["test"].get(k)
            out[k] = repr(float(v)) if _finite(v) else ("nan" if v is not None else "")
        return out

    def write(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        w.writeheader()
        for row in self.rows.values():
            w.writerow(self.flat(row))
        atomic.write_text(self.csv_path, buf.getvalue())
        lines = [
            json.dumps({k: v for k, v in row.items()}, allow_nan=True, sort_keys=False)
            for row in self.rows.values()
        ]
        atomic.write_text(self.jsonl_path, "".join(line + "\n" for line in lines))


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """``grid.csv`` as dicts (for readers such as the TUI and the tests)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
