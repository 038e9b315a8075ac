"""Where each of N trials running at once trains: one GPU each, or a share of the CPU cores.

For a model of a few hundred thousand parameters, splitting one batch over several GPUs
(``mirrored``) mostly adds synchronisation; one trial per GPU keeps every GPU busy with no
communication at all. So the k-th running trial gets ``CUDA_VISIBLE_DEVICES`` = the k-th
device of the list (round-robin when more trials than GPUs run; memory growth is then on so
they can share one). With no GPU, the cores are split: each process gets
``cores // N`` intra-op threads (``$MALARIA_TUI_THREADS``, applied by ``tfenv``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from malaria_tui.engine.errors import ConfigError


@dataclass(frozen=True)
class Placement:
    parallel: int = 1
    devices: tuple[str, ...] = ()  # CUDA device ids, one per slot round-robin; () = CPU

    @property
    def processes(self) -> bool:
        """Trials train in their own processes (several at once, or pinned to a GPU)."""
        return self.parallel > 1 or bool(self.devices)

    def env(self, slot: int) -> dict[str, str]:
        """Environment of the trial process in ``slot`` (0 .. parallel-1)."""
        from malaria_tui.engine.tfenv import THREADS_ENV

        if self.devices:
            return {
                "CUDA_VISIBLE_DEVICES": self.devices[slot % len(self.devices)],
                "TF_FORCE_GPU_ALLOW_GROWTH": "true",
            }
        threads = str(max(1, cpu_cores() // self.parallel))
        return {
            "CUDA_VISIBLE_DEVICES": "",  # a CPU split: keep off any GPU the parent sees
            THREADS_ENV: threads,
            "OMP_NUM_THREADS": threads,
        }

    def describe(self) -> str:
        if self.parallel == 1:
            return "one trial at a time"
        if self.devices:
            return f"{self.parallel} trials at once on GPU {','.join(self.devices)}"
        each = max(1, cpu_cores() // self.parallel)
        return f"{self.parallel} trials at once, {each} CPU core(s) each"


def cpu_cores() -> int:
    """Cores this process may run on (a scheduler's cgroup/affinity, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """CUDA ids of the GPUs this process may use (as ``CUDA_VISIBLE_DEVICES`` names them)."""
    from malaria_tui.engine.tfenv import tf

    n = len(tf().config.list_physical_devices("GPU"))
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and env.strip():
        ids = [d.strip() for d in env.split(",") if d.strip()]
        return ids[:n]
    return [str(i) for i in range(n)]


def parse_devices(text: str) -> tuple[str, ...]:
    """``--devices 0,1,3`` as ids; a usage error for an empty or malformed list."""
    ids = tuple(d.strip() for d in text.split(","))
    if not ids or any(not d for d in ids):
        raise ConfigError(f"--devices {text!r}: give GPU ids separated by commas, e.g. 0,1,2,3")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"--devices {text}: a GPU is named twice")
    return ids


def plan(parallel: int, devices: tuple[str, ...] | None) -> Placement:
    """The placement for ``--parallel``/``--devices``, checked against the GPUs really here:
    named devices must exist; without ``--devices`` every visible GPU is used, else the CPU."""
    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: give 1 or more trials to run at once")
    if devices:
        visible = visible_gpus()
        missing = [d for d in devices if d not in visible]
        if missing:
            have = ",".join(visible) if visible else "none"
            raise ConfigError(
                f"--devices {','.join(devices)}: no GPU {missing[0]} here (visible GPUs: {have}); "
                "leave --devices out to split the CPU cores"
            )
        return Placement(parallel, tuple(devices))
    if parallel == 1:
        return Placement(1, ())  # in this process, on whatever it sees
    return Placement(parallel, tuple(visible_gpus()))
