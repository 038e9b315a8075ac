"""Write files so that a crash never leaves a half-written one: temp file, fsync, rename.

The temp file gets the mode a plain ``open()`` would give (0666 less the umask), not
``mkstemp``'s 0600: on a shared machine colleagues read each other's runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``os.umask`` can
    only be read by setting it, which races with threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8; file names that are not valid UTF-8 keep their original bytes (surrogateescape)."""
    write_bytes(path, text.encode("utf-8", "surrogateescape"))


def write_json(path: str | os.PathLike[str], obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename durable; harmless where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
