"""Claim files: which worker trains which trial, so two workers never train the same one.

A worker claims a trial by creating ``<grid>/claims/<trial>.claim`` with ``O_CREAT|O_EXCL``,
which the filesystem grants to exactly one process, on one machine or on several sharing the
folder (NFS v3+ and Lustre honour exclusive create). The file says who holds it (host, pid)
and its modification time is the holder's heartbeat, touched while the trial trains.

A claim is stale when its holder is known dead: on this host, its pid is gone; on another
host, its heartbeat is older than :data:`STALE_SECONDS`. A stale claim is taken over by
renaming it away first (only one renamer wins), then claiming afresh, so two workers taking
over at the same instant still leave one holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

CLAIMS = "claims"
STALE_SECONDS = 600.0  # a holder on another machine touches its claim every HEARTBEAT_SECONDS
HEARTBEAT_SECONDS = 30.0
TEST_CLAIM = "best-trial-test"  # the one worker that scores the best trial on the test split


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    since: float  # when the claim was made
    heartbeat: float  # the claim file's modification time

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


def _path(grid_dir: Path, name: str) -> Path:
    return Path(grid_dir) / CLAIMS / f"{name}.claim"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(grid_dir: Path, name: str) -> Holder | None:
    """Who holds the claim on ``name``; ``None`` if nobody does (or the file is unreadable,
    which only a crash during the few bytes of its creation can cause)."""
    p = _path(grid_dir, name)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        beat = p.stat().st_mtime
        return Holder(str(data["host"]), int(data["pid"]), float(data["since"]), beat)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_stale(h: Holder, now: float | None = None) -> bool:
    if h.host == socket.gethostname():
        return h.pid != os.getpid() and not _pid_alive(h.pid)
    return (now if now is not None else time.time()) - h.heartbeat > STALE_SECONDS


def claim(grid_dir: Path, name: str) -> bool:
    """Claim ``name`` for this process; False if another live worker holds it. A stale claim
    (its holder died) is taken over. Claiming what this process already holds succeeds."""
    p = _path(grid_dir, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
    for _ in range(3):
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            h = holder(grid_dir, name)
            if h is None:  # being written this instant, or torn by a crash
                time.sleep(0.05)
                h = holder(grid_dir, name)
                if h is None and time.time() - _mtime(p) < 5:
                    return False
            if h is not None and h.host == socket.gethostname() and h.pid == os.getpid():
                return True
            if h is not None and not is_stale(h):
                return False
            gone = p.with_name(f"{p.name}.stale-{os.getpid()}")
            try:  # take it over: one renamer wins, the others find the file gone
                os.rename(p, gone)
                gone.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        return True
    return False


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def heartbeat(grid_dir: Path, names: list[str]) -> None:
    """Touch this process's claims, so workers on other machines see it is alive."""
    for name in names:
        with contextlib.suppress(OSError):
            os.utime(_path(grid_dir, name))


def release(grid_dir: Path, name: str) -> None:
    """Give up the claim on ``name`` if this process holds it."""
    h = holder(grid_dir, name)
    if h is not None and h.host == socket.gethostname() and h.pid == os.getpid():
        _path(grid_dir, name).unlink(missing_ok=True)
