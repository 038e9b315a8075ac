"""TensorBoard HParams for a grid: ``tensorboard --logdir GRID_DIR`` shows one row per trial.

Layout (what TensorBoard's hparams plugin expects)::

    GRID_DIR/events.out.tfevents...                   the experiment: every varied key, every metric
    GRID_DIR/trials/<trial>/tensorboard/events...     the session: the trial's values (at its start),
                                                      its metrics as scalars and its end status
    GRID_DIR/trials/<trial>/tensorboard/train|val/    the trainer's own per-epoch curves

The metric scalars are the same numbers as the trial's ``grid.csv`` row (the validation metrics
of the epoch kept as ``best.keras``), so the HParams table and ``grid.csv`` agree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malaria_tui.engine.tfenv import tf as _tf

if TYPE_CHECKING:
    from malaria_tui.engine.grid.spec import GridSpec, Trial

TRAINING, VALIDATION = "train", "val"


def hparam_value(value: Any) -> bool | int | float | str:
    """A value TensorBoard can hold (lists and tables become their JSON text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def _hp() -> Any:
    _tf()
    from tensorboard.plugins.hparams import api as hp

    return hp


def _domain(hp: Any, values: list[Any]) -> Any:
    vals = [hparam_value(v) for v in values]
    if all(isinstance(v, bool) for v in vals):
        return hp.Discrete(vals)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return hp.Discrete([float(v) for v in vals])
    return hp.Discrete([str(v) for v in vals])


def write_experiment(grid_dir: Path, spec: GridSpec, metrics: list[str]) -> None:
    """``hparams_config`` at the top of the grid directory, once, when the grid is created."""
    tf, hp = _tf(), _hp()
    hparams = []
    for key in spec.keys:
        try:
            domain = _domain(hp, spec.values[key])
        except (TypeError, ValueError):  # pragma: no cover - mixed types TensorBoard refuses
            domain = None
        hparams.append(hp.HParam(key, domain, description=f"config key {key}"))
    metric_objs = [
        hp.Metric(
            m,
            display_name=m,
            description=("ranks the trials; " if m == spec.metric else "")
            + ("test split, best trial only" if m.startswith("test_") else "best epoch"),
            dataset_type=None
            if m.startswith("test_")
            else hp.Metric.VALIDATION
            if m.startswith("val_")
            else hp.Metric.TRAINING,
        )
        for m in metrics
    ]
    writer = tf.summary.create_file_writer(str(grid_dir))
    try:
        with writer.as_default():
            hp.hparams_config(hparams=hparams, metrics=metric_objs)
        writer.flush()
    finally:
        writer.close()


def write_trial_start(log_dir: Path, trial: Trial, start_time: float | None = None) -> None:
    """The trial's hyper-parameters (``hp.hparams``), in its own ``tensorboard/`` folder."""
    tf, hp = _tf(), _hp()
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default():
            hp.hparams(
                {k: hparam_value(v) for k, v in trial.params.items()},
                trial_id=trial.name,
                start_time_secs=start_time or time.time(),
            )
        writer.flush()
    finally:
        writer.close()


def write_trial_metrics(
    log_dir: Path, metrics: dict[str, float], step: int, status: str | None = None
) -> None:
    """The trial's metrics as scalars (what the HParams table shows) and, once it has ended,
    its status (``completed``/``early_stopped`` -> success, ``failed`` -> failure)."""
    tf = _tf()
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hp_v1

    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default(step=step):
            for k, v in metrics.items():
                tf.summary.scalar(k, float(v), step=step)
            if status is not None:
                code = (
                    api_pb2.STATUS_FAILURE
                    if status == "failed"
                    else api_pb2.STATUS_SUCCESS
                    if status in ("completed", "early_stopped")
                    else api_pb2.STATUS_RUNNING
                )
                pb = hp_v1.session_end_pb(code)
                tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=step)
        writer.flush()
    finally:
        writer.close()
