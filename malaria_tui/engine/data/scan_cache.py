"""The scan cache: what decoding each image of a data folder found, so the next scan skips it.

:func:`malaria_tui.engine.data.records.scan_folder` decodes every image in full to find the
unreadable ones; on the 23,597 shared cells that is seconds before every run, every
``malaria-tui data`` and every grid trial. The verdict of a file (readable, or why not) depends
only on its bytes, so it is remembered here and reused while the file is unchanged.

Design, and why:

- **What is cached: only the verdicts.** The folder is still walked and every image still
  stat'ed on each scan (about 0.2 s for 23k files), so added and removed files are always
  seen, and records, groups and ordering are computed exactly as without a cache: the only
  thing that can differ is where a verdict came from, never the :class:`~records.Scan`.
- **When a verdict is reused:** its file, by path relative to the scanned folder, still has the
  same size, ``st_mtime_ns`` and ``st_ctime_ns``, and the checker (``_problem``'s version and
  Pillow's) is the same. The ctime, as in git's index, catches what size and mtime miss: a file
  replaced by one of the same size with its mtime restored (``rsync -a``, ``cp -p``, ``tar``,
  ``unzip``), and a permission fix (``chmod``) on a file that could not be opened. The stat
  is taken *before* the decode, so a file written during the scan gets a newer stamp than the
  one stored and is decoded again next time. A verdict caused by the operating system (an
  ``OSError`` with an errno: EIO, EACCES...) says nothing about the file's bytes and may pass,
  so the checker marks it :class:`Unremembered` and it is reported but not stored. A file that
  could not be stat'ed is decoded every time (its verdict has no stamp to key it).
- **Where:** one JSON file per scanned folder, ``scans/<hash of its resolved path>.json``,
  under ``$MALARIA_TUI_CACHE_DIR``, else ``$XDG_CACHE_HOME/malaria-tui``, else
  ``~/.cache/malaria-tui``. Never inside the data folder, which may be read-only or shared by
  colleagues. The resolved path names the file, so ``folder:~/cells``, ``folder:./cells`` and a
  symlink to it share one file, and the folder's path is stored in it to reject a collision.
  ``MALARIA_TUI_CACHE_DIR=off`` turns the cache off; removing the ``scans`` folder clears it.
- **Never an error:** the cache only ever saves time. An unreadable, corrupt, foreign or
  old-version cache file is ignored (and rewritten after the scan); a cache folder that cannot
  be created or written is ignored silently and the scan still works.
- **Writes are atomic** (:mod:`malaria_tui.engine.atomic`: temp file, fsync, rename, the
  user's umask), so two processes scanning at once each write a whole file and the last rename
  wins; a reader sees one writer's file or the other's, never a mix. Nothing is merged across
  processes: losing the other's verdicts costs at most one more decode of those files. The file
  is rewritten only when a verdict was added or dropped; an unchanged scan only touches it.
- **Housekeeping:** each write removes cache files (and temp files of killed writers) not used
  for :data:`PRUNE_AFTER_DAYS` days, so the folders of finished experiments and of test runs do
  not pile up; a reused cache file is touched to count as used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malaria_tui.engine import atomic

ENV = "MALARIA_TUI_CACHE_DIR"
OFF = ("off", "none", "no", "false", "0")  # values of ENV that turn the cache off
FORMAT = "malaria-tui scan cache"
VERSION = 1  # of the file's layout; bump when it changes (older files are then ignored)
PRUNE_AFTER_DAYS = 30

Verdict = str | None  # None: readable; else why the file is skipped
Stamp = tuple[int, int, int]  # st_size, st_mtime_ns, st_ctime_ns
Checker = Callable[[list[Path]], list[Verdict]]


class Unremembered(str):
    """A verdict to report but not to cache: the operating system failed to read the file
    (an errno-bearing ``OSError``), which may not happen next time."""

    __slots__ = ()


def cache_dir() -> Path | None:
    """malaria-tui's cache folder, or ``None`` when the cache is off or there is no home."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() in OFF:
        return None
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / "malaria-tui"
    try:
        return Path.home() / ".cache" / "malaria-tui"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def cache_file(root: str | os.PathLike[str]) -> Path | None:
    """The file holding the verdicts for the folder ``root`` (``None``: cache off)."""
    base = cache_dir()
    if base is None:
        return None
    name = hashlib.sha256(os.fsencode(_resolved(root))).hexdigest()[:32]
    return base / "scans" / f"{name}.json"


def verdicts(
    root: str | os.PathLike[str],
    files: Sequence[tuple[str, Path]],
    check: Checker,
    checker: str,
) -> list[Verdict]:
    """The verdict of every ``(key, path)`` of ``files``, in order: from the cache where the
    file's stamp is unchanged, else from ``check`` (called once, on the others only).

    ``key`` is the file's path relative to ``root``; ``checker`` names the decoder and the
    rules behind its verdicts, so a new Pillow or new rules make every stored verdict stale.
    The cache is then updated to exactly these files (removed ones dropped)."""
    path = cache_file(root)
    stored = _load(path, root, checker) if path is not None else {}
    stamps = [_stamp(p) for _, p in files]
    out: list[Verdict] = [None] * len(files)
    todo: list[int] = []
    for i, ((key, _), stamp) in enumerate(zip(files, stamps, strict=True)):
        hit = stored.get(key) if stamp is not None else None
        if hit is not None and hit[0] == stamp:
            out[i] = hit[1]
        else:
            todo.append(i)
    if todo:
        for i, v in zip(todo, check([files[i][1] for i in todo]), strict=True):
            out[i] = v
    if path is None:
        return [_plain(v) for v in out]
    keep: dict[str, list[Any]] = {}
    for (key, _), stamp, v in zip(files, stamps, out, strict=True):
        if stamp is not None and not isinstance(v, Unremembered):
            keep[key] = [*stamp, v]
    if len(keep) == len(stored) and all(
        stored.get(k) == ((e[0], e[1], e[2]), e[3]) for k, e in keep.items()
    ):
        _touch(path)
    else:
        _save(path, root, checker, keep)
    return [_plain(v) for v in out]


def _resolved(root: str | os.PathLike[str]) -> str:
    return str(Path(root).expanduser().resolve())


def _stamp(p: Path) -> Stamp | None:
    try:
        st = os.stat(p)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _plain(v: Verdict) -> Verdict:
    return None if v is None else str(v)


def _load(
    path: Path, root: str | os.PathLike[str], checker: str
) -> dict[str, tuple[Stamp, Verdict]]:
    """The stored verdicts, or ``{}`` for a missing, unreadable, corrupt or foreign file."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not (
        isinstance(doc, dict)
        and doc.get("format") == FORMAT
        and doc.get("version") == VERSION
        and doc.get("root") == _resolved(root)
        and doc.get("checker") == checker
        and isinstance(doc.get("files"), dict)
    ):
        return {}
    out: dict[str, tuple[Stamp, Verdict]] = {}
    for key, e in doc["files"].items():
        if (
            isinstance(e, list)
            and len(e) == 4
            and all(type(x) is int for x in e[:3])
            and (e[3] is None or isinstance(e[3], str))
        ):
            out[key] = ((e[0], e[1], e[2]), e[3])
    return out


def _save(
    path: Path, root: str | os.PathLike[str], checker: str, files: dict[str, list[Any]]
) -> None:
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "root": _resolved(root),
        "checker": checker,
        "files": files,
    }
    try:
        atomic.write_text(path, json.dumps(doc, separators=(",", ":")))
    except OSError:  # read-only, full or not a folder: the cache is only ever a saving
        return
    _prune(path.parent, keep=path)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _prune(folder: Path, keep: Path) -> None:
    """Remove this cache's files (``*.json``, and ``.*.tmp`` left by killed writers) unused for
    :data:`PRUNE_AFTER_DAYS` days; other files in the folder are not ours and are left."""
    cutoff = time.time() - PRUNE_AFTER_DAYS * 86400
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        ours = e.name.endswith(".json") or (e.name.startswith(".") and e.name.endswith(".tmp"))
        if not ours or e.path == str(keep):
            continue
        with contextlib.suppress(OSError):
            if e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(e.path)
