"""Trials side by side and across workers: ``grid --parallel N``, ``--shard I/N`` and the claim
files that keep two workers off one trial, run as typed, on real cells and tiny real models.

Results of a parallel grid equal a sequential one's at the same thread count per process:
with 1 intra-op thread instead of 2, float sums run in another order and metrics move in the
third decimal, so the sequential reference runs with ``MALARIA_TUI_THREADS=1`` as each
parallel trial does on this 2-core machine.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from malaria_tui.engine.grid import claims
from malaria_tui.engine.grid.results_table import read_csv
from tests.conftest import MALARIA_TUI, copy_cells

GRID = """
name = "{name}"
[data]
source = "folder:{cells}"
image_size = 32
batch_size = 16
[model]
name = "lenet"
[train]
epochs = {epochs}
tensorboard_images = false
batch_events_per_second = 1000
[grid.values]
"optimizer.learning_rate" = [0.001, 0.003]
"model.dropout" = [0.2, 0.4]
"""


def _grid(tmp_path: Path, name: str = "p", epochs: int = 2) -> Path:
    cells = tmp_path / "cells"
    if not cells.exists():
        copy_cells(cells, 20)
    path = tmp_path / f"{name}.toml"
    path.write_text(GRID.format(name=name, cells=cells, epochs=epochs))
    return path


def _cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MALARIA_TUI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _figures(grid_dir: Path) -> dict[str, tuple[str, ...]]:
    keep = ("status", "val_auc", "val_loss", "val_accuracy", "best_epoch", "epochs")
    return {r["trial"]: tuple(r[k] for k in keep) for r in read_csv(grid_dir / "grid.csv")}


def _starts(grid_dir: Path) -> dict[str, list[bool]]:
    """Per trial, the ``resumed`` flag of each training session its event log holds."""
    out = {}
    for trial in sorted((grid_dir / "trials").iterdir()):
        lines = (trial / "events.jsonl").read_text().splitlines()
        out[trial.name] = [
            json.loads(line)["resumed"]
            for line in lines
            if json.loads(line)["event"] == "run_started"
        ]
    return out


# --- claims: exactly one winner, even at the same instant ----------------------------------------


def _try_claim(grid_dir: str, barrier, results) -> None:
    barrier.wait()
    results.put((os.getpid(), claims.claim(Path(grid_dir), "t1")))


def _race(grid_dir: Path, n: int = 8) -> list[tuple[int, bool]]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_try_claim, args=(str(grid_dir), barrier, results)) for _ in range(n)
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return got


def test_eight_workers_claiming_one_trial_at_once_leave_one_holder(tmp_path):
    got = _race(tmp_path)
    winners = [pid for pid, won in got if won]
    assert len(winners) == 1
    holder = claims.holder(tmp_path, "t1")
    assert holder is not None and holder.pid == winners[0]


def test_a_dead_workers_claim_is_taken_over_by_exactly_one(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / claims.CLAIMS).mkdir()
    (tmp_path / claims.CLAIMS / "t1.claim").write_text(
        json.dumps({"host": os.uname().nodename, "pid": dead.pid, "since": 0})
    )
    got = _race(tmp_path)
    assert sum(won for _, won in got) == 1
    assert claims.holder(tmp_path, "t1").pid in {pid for pid, won in got if won}
    assert sorted(p.name for p in (tmp_path / claims.CLAIMS).iterdir()) == ["t1.claim"]


def test_a_live_claim_on_another_machine_is_respected_until_its_heartbeat_stops(tmp_path):
    (tmp_path / claims.CLAIMS).mkdir()
    path = tmp_path / claims.CLAIMS / "t1.claim"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": 0}))
    assert not claims.claim(tmp_path, "t1")
    old = time.time() - claims.STALE_SECONDS - 5
    os.utime(path, (old, old))
    assert claims.claim(tmp_path, "t1")
    assert claims.holder(tmp_path, "t1").pid == os.getpid()
    claims.release(tmp_path, "t1")
    assert not path.exists()


# --- bad input: one line, exit 2, nothing made -------------------------------------------------


@pytest.mark.slow  # the command as typed, in a subprocess per case
@pytest.mark.parametrize(
    "args, words",
    [
        (["--parallel", "0"], ["--parallel", "0", "1 or more"]),
        (["--parallel", "two"], ["--parallel", "'two'", "whole number"]),
        (["--shard", "3/2"], ["--shard", "3/2", "0 to N-1"]),
        (["--shard", "1"], ["--shard", "'1'", "I/N"]),
        (["--devices", "0"], ["--devices 0", "no GPU 0", "visible GPUs: none"]),
        (["--devices", "0,,1"], ["--devices", "0,,1", "commas"]),
    ],
)
def test_bad_parallel_options_give_one_line_and_exit_2(tmp_path, args, words):
    config = _grid(tmp_path)
    done = _cli(
        "grid", "--config", str(config), "--no-ui", "--runs-dir", str(tmp_path / "r"), *args
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert all(w in lines[-1] for w in words), lines
    assert not (tmp_path / "r").exists()


def test_joining_a_shared_grid_made_from_another_file_is_refused(tmp_path):
    from malaria_tui.engine.errors import RunDirError
    from malaria_tui.engine.grid import search
    from malaria_tui.engine.grid import spec as gspec

    first = gspec.load(_grid(tmp_path, "same"))
    path = search.shared_grid_dir(tmp_path / "r", first)
    assert search.shared_grid_dir(tmp_path / "r", first) == path  # the second worker joins
    other = gspec.load(_grid(tmp_path, "same"), ["train.epochs=3"])
    with pytest.raises(RunDirError, match="another grid file"):
        search.shared_grid_dir(tmp_path / "r", other)


# --- real grids ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_parallel_2_trains_each_trial_as_a_sequential_grid_does(tmp_path):
    config = _grid(tmp_path)
    par = _cli(
        "grid",
        "--config",
        str(config),
        "--no-ui",
        "--parallel",
        "2",
        "--runs-dir",
        str(tmp_path / "par"),
    )
    assert par.returncode == 0, par.stderr
    assert "4 trials, 4 to run, 2 at once" in par.stdout
    assert "scored once on the test split" in par.stdout
    seq = _cli(
        "grid", "--config", str(config), "--no-ui", "--plain", "--runs-dir", str(tmp_path / "seq"),
        env={"MALARIA_TUI_THREADS": "1"},
    )  # fmt: skip
    assert seq.returncode == 0, seq.stderr
    (par_dir,) = (tmp_path / "par").iterdir()
    (seq_dir,) = (tmp_path / "seq").iterdir()
    assert _figures(par_dir) == _figures(seq_dir)
    assert {row[0] for row in _figures(par_dir).values()} == {"completed"}
    # the same patients in each split: the trials' own logs say so
    for trial in (par_dir / "trials").iterdir():
        a = json.loads((trial / "events.jsonl").read_text().splitlines()[0])
        b = json.loads(
            (seq_dir / "trials" / trial.name / "events.jsonl").read_text().splitlines()[0]
        )
        assert (a["n_train"], a["n_val"], a["n_test"]) == (b["n_train"], b["n_val"], b["n_test"])
    # both trial processes ran at once: their first epochs overlap in time
    spans = []
    for trial in sorted((par_dir / "trials").iterdir())[:2]:
        events = [json.loads(line) for line in (trial / "events.jsonl").read_text().splitlines()]
        spans.append((events[0]["time"], events[-1]["time"]))
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]
    assert not list((par_dir / claims.CLAIMS).iterdir())  # every claim given back


@pytest.mark.slow
def test_two_shard_workers_finish_every_trial_exactly_once(tmp_path):
    config = _grid(tmp_path, "shared")
    common = [
        "grid",
        "--config",
        str(config),
        "--no-ui",
        "--plain",
        "--runs-dir",
        str(tmp_path / "r"),
    ]
    workers = [
        subprocess.Popen(
            [*MALARIA_TUI, *common, "--shard", f"{i}/2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1] for o in outs]
    grid_dir = tmp_path / "r" / "grid-shared"
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["grid-shared"]
    assert _starts(grid_dir) == {name: [False] for name in _starts(grid_dir)}
    assert len(_starts(grid_dir)) == 4
    rows = read_csv(grid_dir / "grid.csv")
    assert [r["status"] for r in rows] == ["completed"] * 4
    tested = [r["trial"] for r in rows if r["test_auc"]]
    assert tested == [next(r["trial"] for r in rows if r["rank"] == "1")]
    assert sum("scored once on the test split" in out for out, _ in outs) == 1
    shares = [
        {line.split()[2].rstrip(":") for line in out.splitlines() if line.startswith("trial ")}
        for out, _ in outs
    ]
    assert shares[0] | shares[1] == set(_starts(grid_dir)) and not shares[0] & shares[1]


@pytest.mark.slow
def test_a_killed_worker_leaves_its_trials_to_resume_and_nothing_trains_twice(tmp_path):
    config = _grid(tmp_path, "killed", epochs=400)
    worker = subprocess.Popen(
        [*MALARIA_TUI, "grid", "--config", str(config), "--no-ui", "--plain", "--parallel", "2",
         "--runs-dir", str(tmp_path / "r")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    grid_dir = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "r").glob("*/trials/*/checkpoints/latest.json"))
        if len(found) >= 2:
            grid_dir = found[0].parents[3]
            break
        time.sleep(0.5)
    assert grid_dir is not None, "two trials never reached a checkpoint"
    os.kill(worker.pid, signal.SIGKILL)  # no goodbye: its trial processes are orphaned...
    worker.wait()
    deadline = time.monotonic() + 120  # ...and stop at a checkpoint on their own (PDEATHSIG)
    while time.monotonic() < deadline:
        statuses = [
            json.loads(p.read_text().splitlines()[-1])["event"]
            for p in grid_dir.glob("trials/*/events.jsonl")
        ]
        if statuses.count("run_interrupted") == 2:
            break
        time.sleep(0.5)
    assert statuses.count("run_interrupted") == 2, statuses
    # the resumed worker takes both trials over from their checkpoints; stop it once it has
    resumed = subprocess.Popen(
        [*MALARIA_TUI, "grid", "--resume", str(grid_dir), "--no-ui", "--plain", "--parallel", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        starts = _starts(grid_dir)
        if sum(flags == [False, True] for flags in starts.values()) == 2:
            break
        time.sleep(0.5)
    resumed.send_signal(signal.SIGINT)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 130, err
    starts = _starts(grid_dir)
    assert sorted(starts.values()) == [[False, True], [False, True]], starts  # taken over, once
    assert "resume with: malaria-tui grid --resume" in err
    assert not list((grid_dir / claims.CLAIMS).iterdir())
