"""Where and how a run computes: ``tf.distribute`` strategy, mixed precision and XLA.

``train.strategy``:

- ``auto``: ``MirroredStrategy`` over every GPU when more than one is visible, else the
  default strategy (one device: the GPU when there is one, else the CPU).
- ``default``: TensorFlow's default strategy; no replication, the plain single-device path.
- ``mirrored``: one replica per visible GPU, or with no GPU one per visible logical CPU device
  (split a CPU into several with ``tf.config.set_logical_device_configuration``; useful for
  tests, rarely for speed).
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` across processes/machines described by the
  standard ``TF_CONFIG`` environment variable; every worker runs the same command.

``data.batch_size`` is the batch of *one replica*; a step consumes ``batch_size x replicas``
images (the global batch), and the loss is the mean over that global batch.

With more than one worker, only the chief (task ``chief``, else ``worker`` 0) writes the run
directory; the others take part in every collective step, including checkpoint saving, but
write into a scratch directory that is deleted when they finish.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from malaria_tui.engine.config import TrainConfig
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.tfenv import Dataset, Strategy
from malaria_tui.engine.tfenv import tf as _tf

_multi_worker = None  # TF allows one MultiWorkerMirroredStrategy (collective ops) per process
# One MirroredStrategy per device set and process: each new instance numbers its collective
# ops from the same keys, and a later run's all-reduce could then collide with an earlier
# run's (seen here: "Shape mismatch in the collective instance" on the fourth run).
_mirrored: dict[tuple[str, ...], object] = {}


def gpus() -> list[Any]:
    """Physical GPUs TensorFlow can use (listing them does not initialise the runtime)."""
    return _tf().config.list_physical_devices("GPU")


def make_strategy(tc: TrainConfig) -> Strategy:
    """The ``tf.distribute.Strategy`` for ``train.strategy`` (see the module docstring).

    For ``multi_worker`` call this before TensorFlow runs any op in the process (TF requires
    collective ops to be configured at start-up); the trainer does so first thing.
    """
    tf = _tf()
    kind = tc.strategy
    if kind == "auto":
        kind = "mirrored" if len(gpus()) > 1 else "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        devices = tuple(d.name for d in tf.config.list_logical_devices("GPU")) or tuple(
            d.name for d in tf.config.list_logical_devices("CPU")
        )
        if devices not in _mirrored:
            _mirrored[devices] = tf.distribute.MirroredStrategy(devices=list(devices))
        return _mirrored[devices]
    if kind == "multi_worker":
        return _multi_worker_strategy()
    raise ConfigError(f"train.strategy = {kind!r}: unknown strategy")  # pragma: no cover


def _tf_config() -> dict[str, Any]:
    """``TF_CONFIG`` parsed and checked, with one clear line for each way it can be wrong."""
    where = "train.strategy = 'multi_worker'"
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        raise ConfigError(
            f"{where} needs the TF_CONFIG environment variable, e.g. "
            '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' (see docs/gpu.md)'
        )
    try:
        conf = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{where}: TF_CONFIG is not valid JSON ({e})") from None
    cluster = conf.get("cluster") if isinstance(conf, dict) else None
    task = conf.get("task") if isinstance(conf, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(f"{where}: TF_CONFIG needs a 'cluster' object and a 'task' object")
    jobs = {k: v for k, v in cluster.items() if k in ("chief", "worker")}
    if not jobs or not all(
        isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v)
        for v in jobs.values()
    ):
        raise ConfigError(
            f"{where}: TF_CONFIG cluster needs a 'worker' (and optionally 'chief') list of "
            "'host:port' addresses"
        )
    ttype, index = task.get("type"), task.get("index")
    if ttype not in jobs or not isinstance(index, int) or not 0 <= index < len(jobs[ttype]):
        raise ConfigError(
            f"{where}: TF_CONFIG task {task!r} is not in the cluster "
            f"({', '.join(f'{k}: {len(v)}' for k, v in jobs.items())})"
        )
    return conf


def _multi_worker_strategy() -> Strategy:
    global _multi_worker
    if _multi_worker is not None:
        return _multi_worker
    tf = _tf()
    _tf_config()
    try:
        _multi_worker = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver()
        )
    except (RuntimeError, ValueError) as e:
        raise ConfigError(
            f"train.strategy = 'multi_worker': cannot start ({e}); it must be set up before "
            "TensorFlow runs anything in the process (run each worker as its own command)"
        ) from None
    return _multi_worker


def is_multi_worker(strategy: Strategy) -> bool:
    return isinstance(strategy, _tf().distribute.MultiWorkerMirroredStrategy)


def is_default(strategy: Strategy) -> bool:
    """True for TensorFlow's default (no-op) strategy: the plain single-device path."""
    tf = _tf()
    return not isinstance(
        strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    )


def is_chief(strategy: Strategy) -> bool:
    """Whether this process writes the run directory (always, except on non-chief workers)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def describe(strategy: Strategy) -> str:
    """One line for the run log, e.g. ``MirroredStrategy, 2 replicas``."""
    n = strategy.num_replicas_in_sync
    name = "default (one device)" if is_default(strategy) else type(strategy).__name__
    if is_multi_worker(strategy):  # its class is CollectiveAllReduceStrategy
        r = strategy.cluster_resolver
        return f"MultiWorkerMirroredStrategy, {n} replicas, this is {r.task_type} {r.task_id}"
    return f"{name}, {n} replica{'s' if n > 1 else ''}"


def prepare_dataset(ds: Dataset, strategy: Strategy, last_batch: int | None = None) -> Dataset:
    """A batched dataset ready for ``strategy`` (unchanged on the default strategy).

    Multi-worker: each worker runs the (deterministic) pipeline and keeps its share of every
    global batch (``AutoShardPolicy.DATA``; there are no files to shard by). Training (pass
    ``last_batch``, the size of the epoch's last batch): a last batch smaller than the number
    of replicas is dropped, because a replica given an empty batch would put NaN batch
    statistics into BatchNormalization's moving averages.
    """
    if is_default(strategy):
        return ds
    tf = _tf()
    n = strategy.num_replicas_in_sync
    if last_batch is not None and last_batch < n:
        # take() keeps a known length known (Keras warns about datasets of unknown length)
        steps = int(ds.cardinality())
        ds = ds.take(steps - 1) if steps >= 1 else ds.filter(lambda x, y: tf.shape(x)[0] >= n)
    if is_multi_worker(strategy):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        ds = ds.with_options(options)
    return ds


def any_worker(strategy: Strategy, flag: bool) -> bool:
    """``flag`` OR-ed over every worker (a collective: all workers must call it together)."""
    if not is_multi_worker(strategy):
        return flag
    tf = _tf()
    value = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)) > 0.0


def sync_interval(strategy: Strategy, steps: int) -> int | None:
    """Multi-worker: the fixed step interval at which every worker reads the (all-reduced)
    metrics and agrees on stopping; ``None`` elsewhere (events are throttled by time)."""
    if not is_multi_worker(strategy):
        return None
    return max(1, round(steps / 25))


def resolve_jit(tc: TrainConfig, strategy: Strategy) -> bool:
    """``train.jit_compile``: ``auto`` is XLA on when a GPU is visible and off on the CPU
    (measured slower here, see docs/gpu.md); ``true``/``false`` force it. XLA compiles a step
    for one device, so with several replicas ``auto`` is off (as in Keras) and ``true`` is
    refused."""
    several = strategy.num_replicas_in_sync > 1
    if tc.jit_compile is True and several:
        raise ConfigError(
            f"train.jit_compile = true does not work with {strategy.num_replicas_in_sync} "
            "replicas (XLA compiles a step for one device); use jit_compile = 'auto' or false"
        )
    if isinstance(tc.jit_compile, bool):
        return tc.jit_compile
    return bool(gpus()) and not several


def policy_name(tc: TrainConfig) -> str | None:
    """``mixed_float16`` on a GPU, ``mixed_bfloat16`` on the CPU, ``None`` when off."""
    if not tc.mixed_precision:
        return None
    return "mixed_float16" if gpus() else "mixed_bfloat16"


@contextlib.contextmanager
def precision(tc: TrainConfig) -> Iterator[str | None]:
    """Set Keras' global dtype policy for the run and restore the previous one afterwards."""
    name = policy_name(tc)
    if name is None:
        yield None
        return
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer: Any, policy: str | None) -> Any:
    """float16 needs dynamic loss scaling (its range underflows small gradients); bfloat16
    has float32's range and does not."""
    if policy != "mixed_float16":
        return optimizer
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer)
