"""Distribution strategies, mixed precision and XLA, on this CPU.

``mirrored`` runs for real on two logical CPU devices and ``multi_worker`` on two local worker
processes; both need TensorFlow configured before it starts, so they train in subprocesses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

from malaria_tui.engine import config
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.training import strategy as st
from malaria_tui.engine.training.trainer import train
from tests.conftest import REPO, TINY, copy_cells

# Deterministic training: no augmentation, no dropout (its masks depend on the replica).
DETERMINISTIC = [
    "augment.rotation.enabled=false",
    "augment.flip_horizontal.enabled=false",
    "augment.flip_vertical.enabled=false",
    "augment.contrast.enabled=false",
    "augment.brightness.enabled=false",
    "model.dropout=0.0",
    "train.tensorboard=false",
    "train.batch_events_per_second=1000",
]

_MIRRORED = r"""
import json, sys, threading
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from malaria_tui.engine import config
from malaria_tui.engine.models import registry
from malaria_tui.engine.training.trainer import train

_build = registry.build_model


def frozen_bn(cfg):
    # BatchNormalization normalises each replica's half batch by that half's statistics, so
    # with it training, 2 x 8 is not the same computation as 16 (first epoch within ~0.3%,
    # then the curves drift apart). Frozen, it uses its moving statistics and the forward pass
    # no longer depends on how a batch is split: what remains is exactly what this test is
    # about (loss scaling by the global batch, regularization share, gradient all-reduce,
    # metric aggregation, uneven last batch, checkpoints).
    model = _build(cfg)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


registry.build_model = frozen_bn
cells, root, base = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])


def run(name, extra, stop_at=None):
    events, stop = [], threading.Event()

    def on_event(ev):
        events.append(ev)
        if stop_at and ev.kind == "batch" and (ev.epoch, ev.step) == stop_at:
            stop.set()

    cfg = config.load(None, [*base, f'data.source="folder:{cells}"', *extra])
    r = train(cfg, runs_dir=f"{root}/{name}", on_event=on_event, stop=stop)
    if stop_at:
        train(run=r, resume=True, on_event=events.append)
    return {
        "status": r.status(),
        "epochs": [dict(e.train, **e.val, epoch=e.epoch) for e in events if e.kind == "epoch_end"],
        "log": [e.message for e in events if e.kind == "log"],
        "test": json.loads((r.eval_dir / "metrics.json").read_text())["test"],
        "best": r.best_model.exists(),
    }


out = {
    "single": run("single", ['train.strategy="default"', "data.batch_size=16"]),
    "mirrored": run("mirrored", ['train.strategy="mirrored"', "data.batch_size=8"]),
    "resumed": run(
        "resumed", ['train.strategy="mirrored"', "data.batch_size=8"], stop_at=(1, 1)
    ),
    "fit": run("fit", ['train.strategy="mirrored"', "data.batch_size=8", 'train.loop="fit"']),
    "chunked": run(  # two steps per compiled call, over replicas: 3 steps = one call of 2 + 1
        "chunked",
        ['train.strategy="mirrored"', "data.batch_size=8", "train.steps_per_execution=2"],
    ),
}
from malaria_tui.engine.training import strategy as st

mirrored = st.make_strategy(config.TrainConfig(strategy="mirrored"))
batches = tf.data.Dataset.range(5).batch(2).map(lambda x: (x, x))  # 2, 2, then 1 < 2 replicas
out["kept"] = [len(x) for x, _ in st.prepare_dataset(batches, mirrored, last_batch=1)]
print(json.dumps(out))
"""

_WORKER = r"""
import json, sys
from malaria_tui.engine import config
from malaria_tui.engine.training.trainer import train

cells, runs, base = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cfg = config.load(None, [*base, f'data.source="folder:{cells}"', 'train.strategy="multi_worker"'])
events = []
run = train(cfg, runs_dir=runs, on_event=events.append)
print(json.dumps({
    "kinds": [e.kind for e in events],
    "epoch": [dict(e.train, **e.val) for e in events if e.kind == "epoch_end"],
    "log": [e.message for e in events if e.kind == "log"],
}))
"""


def _env(**more) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return env | {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **more}


def _script(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _curve(epochs: list[dict], keys=("loss", "auc", "accuracy", "tp", "fp", "val_loss", "val_auc")):
    return np.array([[e[k] for k in keys] for e in epochs])


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_matches_one_device_with_the_same_global_batch(tmp_path):
    cells = copy_cells(tmp_path / "cells", 30)  # 47 training images: 3 steps of 16, last 15
    base = [*TINY, "data.limit=0", "train.epochs=2", *DETERMINISTIC]
    proc = subprocess.run(
        [sys.executable, _script(tmp_path, "m.py", _MIRRORED), str(cells), str(tmp_path)]
        + [json.dumps(base)],
        capture_output=True,
        text=True,
        timeout=420,
        env=_env(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    single, mirrored, resumed, fit = (out[k] for k in ("single", "mirrored", "resumed", "fit"))
    assert any(
        "MirroredStrategy, 2 replicas; global batch 16 (8 per replica)" in m
        for m in mirrored["log"]
    )
    assert any("default (one device)" in m and "global batch 16" in m for m in single["log"])
    for r in (single, mirrored, resumed, fit):
        assert r["status"] == "completed" and r["best"]
    # The same computation up to float summation order (two partial sums instead of one):
    # the observed difference is ~1e-7, so 1e-4 is tight yet not flaky. A wrongly reduced loss
    # (per-replica mean, regularization counted per replica) would be off by ~2x, far outside.
    np.testing.assert_allclose(
        _curve(mirrored["epochs"]), _curve(single["epochs"]), rtol=1e-4, atol=1e-6
    )
    e0 = mirrored["epochs"][0]
    assert e0["tp"] + e0["tn"] + e0["fp"] + e0["fn"] == 47  # each image once, over both replicas
    # Stopped mid-epoch under mirrored and resumed: ends where the uninterrupted run ended.
    last = lambda r: r["epochs"][-1]  # noqa: E731
    np.testing.assert_allclose(last(resumed)["val_loss"], last(mirrored)["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(resumed["test"]["auc"], mirrored["test"]["auc"], rtol=1e-4)
    assert out["kept"] == [2, 2]  # a last batch that cannot feed every replica is dropped
    np.testing.assert_allclose(
        _curve(out["chunked"]["epochs"]), _curve(mirrored["epochs"]), rtol=1e-4, atol=1e-6
    )
    # Keras fit under the same strategy (its validation batch of 7 splits 4 + 3: see FitLoop).
    assert len(fit["epochs"]) == 2 and np.all(np.isfinite(_curve(fit["epochs"])))


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_local_processes_only_the_chief_writes(tmp_path):
    cells = copy_cells(tmp_path / "cells", 30)
    base = [*TINY, "data.limit=0", "data.batch_size=8"]
    script = _script(tmp_path, "w.py", _WORKER)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    try:
        for i in range(2):
            scratch = tmp_path / f"tmp{i}"
            scratch.mkdir()
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            procs.append(
                subprocess.Popen(
                    [sys.executable, script, str(cells), str(tmp_path / "runs"), json.dumps(base)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=_env(TF_CONFIG=tf_config, TMPDIR=str(scratch)),
                    cwd=REPO,
                )
            )
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:  # never leave a worker waiting for its peer
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    for p, (_, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0, stderr[-3000:]
    chief, other = (json.loads(o[0].strip().splitlines()[-1]) for o in outs)
    assert chief["kinds"][-1] == "run_finished" and "evaluation_done" in chief["kinds"]
    assert "evaluation_done" not in other["kinds"] and "epoch_end" in other["kinds"]
    assert any(
        "MultiWorkerMirroredStrategy, 2 replicas, this is worker 0" in m for m in chief["log"]
    )
    # Metrics are all-reduced: both workers see the same numbers, every image counted once.
    assert chief["epoch"] == other["epoch"]
    e = chief["epoch"][0]
    assert e["tp"] + e["tn"] + e["fp"] + e["fn"] == 47 and np.isfinite(e["loss"])
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # the chief's run directory alone
    run = runs[0]
    assert (run / "events.jsonl").stat().st_size > 0
    assert (run / "checkpoints" / "best.keras").exists()
    assert (run / "checkpoints" / "latest.json").exists()
    assert (run / "eval" / "metrics.json").exists()
    assert not any((tmp_path / "tmp1").iterdir())  # the other worker's scratch copy is gone
    assert not any((tmp_path / "tmp0").iterdir())


@pytest.mark.slow
def test_mixed_precision_on_cpu_is_bfloat16_and_the_best_model_loads_back(tmp_path, cells):
    import keras

    events = []
    cfg = config.load(
        None, [*TINY, f'data.source="folder:{cells}"', "data.limit=0", "train.mixed_precision=true"]
    )
    run = train(cfg, runs_dir=tmp_path, on_event=events.append)
    assert run.status() == "completed"
    assert any("precision mixed_bfloat16" in e.message for e in events if e.kind == "log")
    epoch = next(e for e in events if e.kind == "epoch_end")
    assert all(np.isfinite(v) for v in [*epoch.train.values(), *epoch.val.values()])
    assert keras.mixed_precision.global_policy().name == "float32"  # reset after the run
    model = keras.saving.load_model(run.best_model, safe_mode=True, compile=False)
    assert model.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("parasitized").dtype_policy.name == "float32"
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    p = np.asarray(model(x, training=False))
    assert p.dtype == np.float32 and np.all((p >= 0) & (p <= 1))


@pytest.mark.slow
def test_xla_custom_loop_trains(tmp_path, cells):
    events = []
    cfg = config.load(
        None, [*TINY, f'data.source="folder:{cells}"', "data.limit=0", "train.jit_compile=true"]
    )
    run = train(cfg, runs_dir=tmp_path, on_event=events.append)
    assert run.status() == "completed"
    assert any("XLA on" in e.message for e in events if e.kind == "log")


def test_auto_settings_on_this_cpu_machine():
    tc = config.TrainConfig()
    assert (tc.strategy, tc.mixed_precision, tc.jit_compile) == ("auto", False, "auto")
    if st.gpus():
        pytest.skip("a GPU is visible")
    strategy = st.make_strategy(tc)
    assert st.is_default(strategy) and st.is_chief(strategy)
    assert strategy.num_replicas_in_sync == 1
    assert st.resolve_jit(tc, strategy) is False  # XLA is slower on this CPU (bench)
    on = tc.model_copy(update={"mixed_precision": True})
    assert st.policy_name(on) == "mixed_bfloat16" and st.policy_name(tc) is None


def test_xla_true_with_several_replicas_is_refused():
    tc = config.TrainConfig(jit_compile=True)
    with pytest.raises(ConfigError, match="jit_compile = true does not work with 2 replicas"):
        st.resolve_jit(tc, types.SimpleNamespace(num_replicas_in_sync=2))
    auto = config.TrainConfig()
    assert st.resolve_jit(auto, types.SimpleNamespace(num_replicas_in_sync=2)) is False


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {}}', "needs a 'cluster' object and a 'task' object"),
        ('{"cluster": {"worker": ["nohost"]}, "task": {}}', "list of 'host:port' addresses"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
            "is not in the cluster",
        ),
    ],
)
def test_multi_worker_without_a_valid_tf_config_is_a_config_error(
    tmp_path, monkeypatch, value, message
):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    cfg = config.load(None, [*TINY, 'train.strategy="multi_worker"'])
    with pytest.raises(ConfigError, match=message):
        train(cfg, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # refused before a run directory is created
