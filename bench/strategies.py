"""Custom loop on one device vs MirroredStrategy on two logical CPU devices, XLA, bfloat16.

    python bench/strategies.py [--epochs 2] [--limit 3000] [--set KEY=VALUE ...]

Every variant trains the same model on the same global batch (``data.batch_size``; mirrored
runs two replicas of half of it). The CPU is split into two logical devices before TensorFlow
starts; both share the machine's cores and thread pools, so this measures the overhead of
replication and all-reduce, not a speed-up (that needs two GPUs: see docs/gpu.md). Each variant
trains one warm-up epoch (tracing, XLA compilation, cache fill), then the variants alternate
epochs so they see the same machine load; medians are compared. Mirrored with XLA is not
run: the engine refuses it (XLA compiles a step for one device).
"""

from __future__ import annotations

import argparse
import statistics

from _common import config, data_source, tfenv, time_epoch

from malaria_tui.engine import optim


def split_cpu(n: int = 2) -> None:
    tf = tfenv.tf()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
    )


class _Variant:
    """A custom loop under a strategy, fed the (global-batch) epochs of ``prepared``."""

    def __init__(self, cfg, prepared, strategy_name: str, jit: bool, mixed: bool = False):
        from malaria_tui.engine.models.registry import build_model
        from malaria_tui.engine.training import strategy as st
        from malaria_tui.engine.training.custom_loop import CustomLoop

        tc = cfg.train.model_copy(update={"strategy": strategy_name, "mixed_precision": mixed})
        self.strategy = st.make_strategy(tc)
        self.st = st
        with self.strategy.scope(), st.precision(tc):  # the policy is fixed when layers are built
            model = build_model(cfg)
            opt = optim.build_optimizer(cfg.optimizer, prepared.steps_per_epoch, cfg.train.epochs)
            self.loop = CustomLoop(
                model,
                opt,
                optim.build_loss(cfg.loss),
                0.5,
                strategy=self.strategy,
                jit_compile=jit,
            )

    def epoch(self, prepared, e: int, n: int) -> float:
        last = n - (prepared.steps_per_epoch - 1) * prepared.batch_size
        ds = self.st.prepare_dataset(prepared.train_epoch(e), self.strategy, last)
        return time_epoch(self.loop, ds, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=3000)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    split_cpu(2)  # before anything else initialises TensorFlow's devices
    from malaria_tui.engine.data import pipeline

    source, limit = data_source(a.limit)
    cfg = config.load(None, [f'data.source="{source}"', f"data.limit={limit}", *a.set])
    prepared = pipeline.prepare(cfg)  # batch_size = the global batch for every variant
    n = prepared.counts["train"]["total"]
    specs = {
        "one device, XLA off": ("default", False, False),
        "one device, XLA on": ("default", True, False),
        "one device, bfloat16": ("default", False, True),
        "mirrored x2, XLA off": ("mirrored", False, False),
    }
    variants, failed = {}, {}
    for name, (strategy, jit, mixed) in specs.items():
        try:
            v = _Variant(cfg, prepared, strategy, jit, mixed)
            v.epoch(prepared, 0, n)  # warm-up: tracing, compilation, cache
            variants[name] = v
        except Exception as e:  # report and keep benchmarking the others
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    rates = {k: [] for k in variants}
    for e in range(1, a.epochs + 1):
        for k, v in variants.items():
            rates[k].append(v.epoch(prepared, e, n))
    med = {k: statistics.median(v) for k, v in rates.items()}
    g = cfg.data.batch_size
    print(
        f"model {cfg.model.name} @ {cfg.data.image_size}px, global batch {g} "
        f"(mirrored: 2 x {g // 2}), {n} training images ({source}), custom loop"
    )
    for k, v in rates.items():
        print(f"  {k:22s} " + " ".join(f"{r:7.0f}" for r in v) + f"  median {med[k]:7.0f} img/s")
    for k, why in failed.items():
        print(f"  {k:22s} failed: {why}")
    print("  (mirrored + XLA: refused, XLA compiles a step for one device; see docs/gpu.md)")
    base = med.get("one device, XLA off")
    if base:
        for k, m in med.items():
            if k != "one device, XLA off":
                print(f"{k} / one device, XLA off = {m / base:.3f}")


if __name__ == "__main__":
    main()
