"""Diagnose new images: per-cell probabilities, labels at the run's threshold, parasitemia.

Images may be any size, grayscale, RGB, RGBA or 16-bit; unreadable files are listed, never
fatal. ``tta`` averages the eight flips/90-degree rotations of each cell.

Reading is batched and pipelined: a thread pool decodes and resizes the next chunk of files
(Pillow's decoders and NumPy's loops release the GIL) while the model scores the current one.
Nothing here imports TensorFlow: the resize is :mod:`images`' NumPy twin of the training one,
so a ``.tflite`` model predicts without TensorFlow installed.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from malaria_tui.engine.data import records
from malaria_tui.engine.data.images import decode, preprocess_many
from malaria_tui.engine.errors import UserError
from malaria_tui.engine.models.tta import dihedral_mean

if TYPE_CHECKING:
    from malaria_tui.engine.inference.predictor import Predictor


@dataclass(frozen=True)
class CellResult:
    path: str
    folder: str
    prob: float
    label: str


@dataclass(frozen=True)
class FolderSummary:
    folder: str
    cells: int
    parasitized: int
    parasitemia: float  # percent of cells
    ci_low: float
    ci_high: float


def short_paths(paths: Sequence[str], width: int | None = None) -> dict[str, str]:
    """Each path by its shortest tail of path components that no other path shares, for
    tables read in 80 columns: ``cell_7.png``, or ``Uninfected/cell_7.png`` where two folders
    hold a ``cell_7.png``; past ``width`` characters cut in the middle, since both ends of a
    cell's name tell cells apart. The full paths stay in JSON and CSV output."""
    parts = {p: Path(p).parts for p in paths}
    # How many paths end in each tail of n components, counted once per n: linear in the
    # number of paths (comparing every pair took ~40 s for the 23,597 NIH cells).
    counts: dict[int, Counter[tuple[str, ...]]] = {}
    out: dict[str, str] = {}
    for p, mine in parts.items():
        tail: tuple[str, ...] = ()
        for n in range(1, len(mine) + 1):
            tail = mine[-n:]
            if n not in counts:
                counts[n] = Counter(other[-n:] for other in parts.values())
            if counts[n][tail] == 1:  # only this path ends so
                break
        text = str(Path(*tail)) if tail else p
        if width is not None and len(text) > width:
            keep = max(width - 1, 2)
            text = text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]
        out[p] = text
    return out


def collect(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Image files under the given files/folders (recursive, symlinked folders not followed)."""
    found: list[Path] = []
    missing: list[str] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            for dirpath, dirnames, files in os.walk(path, followlinks=False):
                dirnames.sort()
                found += [
                    Path(dirpath) / f
                    for f in sorted(files)
                    if Path(f).suffix.lower() in records.IMAGE_SUFFIXES
                ]
        elif path.is_file():
            found.append(path)
        else:
            missing.append(str(path))
    if missing:
        raise UserError(f"{missing[0]}: no such file or folder")
    if not found:
        raise UserError(f"{paths[0]}: no images found (PNG, JPEG, BMP, GIF or TIFF)")
    return found, []


def load_images(
    paths: Sequence[Path], size: int, gray: bool = False
) -> tuple[np.ndarray, list[Path], list[tuple[str, str]]]:
    """Model inputs for the readable images, in order; the rest come back as (path, reason).

    The same bytes as training's TensorFlow preprocessing (see :mod:`images`), computed with
    NumPy; same-sized images are resized together."""
    arrays: list[np.ndarray] = []
    ok: list[Path] = []
    bad: list[tuple[str, str]] = []
    for p in paths:
        try:
            arrays.append(decode(str(p)))
        except Exception as e:  # any decoder failure means "unreadable"
            bad.append((str(p), f"not a readable image ({type(e).__name__})"))
            continue
        ok.append(p)
    try:
        x = preprocess_many(arrays, size, gray)
    except Exception:  # one odd image must not sink the batch: find it, list it, keep the rest
        kept: list[np.ndarray] = []
        kept_ok: list[Path] = []
        for p, arr in zip(ok, arrays, strict=True):
            try:
                kept.append(preprocess_many([arr], size, gray)[0])
            except Exception as e:
                bad.append((str(p), f"not a usable image ({type(e).__name__})"))
                continue
            kept_ok.append(p)
        order = {str(p): i for i, p in enumerate(paths)}
        bad.sort(key=lambda b: order.get(b[0], 0))
        x = np.stack(kept) if kept else np.zeros((0, size, size, 3), np.float32)
        ok = kept_ok
    return x, ok, bad


def probabilities(predictor: Predictor, x: np.ndarray, tta: bool) -> np.ndarray:
    return dihedral_mean(predictor.probabilities, x) if tta else predictor.probabilities(x)


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sane at 0 and n, unlike the normal one)."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def summarise(cells: list[CellResult]) -> list[FolderSummary]:
    by: dict[str, list[CellResult]] = defaultdict(list)
    for c in cells:
        by[c.folder].append(c)
    out = []
    for folder, items in sorted(by.items()):
        k = sum(c.label == "Parasitized" for c in items)
        lo, hi = wilson(k, len(items))
        out.append(FolderSummary(folder, len(items), k, 100 * k / len(items), 100 * lo, 100 * hi))
    return out


# Files read and scored per step: progress is reported after each. 512 cells make two of the
# predictor's batches of 256 and, at 50-128 px, 15-100 MB of inputs (two chunks are in memory:
# the one scored and the one read ahead).
CHUNK = 512
# Reader threads: Pillow's decoders and NumPy's loops release the GIL, so one per core; at
# most 8, as the model scores on the same cores (on 2 cores, 3 or 4 threads were no faster).
WORKERS = min(8, os.cpu_count() or 1)
# Files per reader task: enough to resize same-sized cells together (images.BATCH) and to
# keep the per-task overhead small, small enough to share a chunk among all workers.
READ_BATCH = 32
# Chunks read ahead of the one being scored. One keeps two chunks in memory; deeper read-ahead
# measured no faster on 2 cores, where reading and scoring share the CPU anyway.
AHEAD = 1


def _read_chunk(
    pool: ThreadPoolExecutor, part: list[Path], size: int, gray: bool
) -> list[Future[tuple[np.ndarray, list[Path], list[tuple[str, str]]]]]:
    """Start reading ``part`` as tasks of :data:`READ_BATCH` files (run in submission order)."""
    return [
        pool.submit(load_images, part[i : i + READ_BATCH], size, gray)
        for i in range(0, len(part), READ_BATCH)
    ]


def run_predict(
    predictor: Predictor,
    paths: list[str],
    threshold: float | None = None,
    tta: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    keep_inputs: bool = False,
    chunk: int = CHUNK,
) -> tuple[list[CellResult], list[FolderSummary], list[tuple[str, str]], float, np.ndarray]:
    """(cells, folder summaries, unreadable files, threshold used, the model inputs) for the
    images under ``paths``, in file order; ``on_progress(done, total)`` after every ``chunk``
    files. While the model scores one chunk, the reader threads decode and resize the next.
    The inputs (for Grad-CAM overlays) are kept only with ``keep_inputs``: 11,840 cells at
    50 px would hold ~355 MB."""
    files, _ = collect(paths)
    th = predictor.threshold if threshold is None else threshold
    size, gray = predictor.image_size, predictor.color == "gray"
    inputs: list[np.ndarray] = []
    cells: list[CellResult] = []
    bad: list[tuple[str, str]] = []
    if on_progress:
        on_progress(0, len(files))
    parts = [files[s : s + chunk] for s in range(0, len(files), chunk)]
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="predict-read")
    try:
        ahead = deque(_read_chunk(pool, part, size, gray) for part in parts[: AHEAD + 1])
        done = 0
        for k, part in enumerate(parts):
            read = [f.result() for f in ahead.popleft()]
            if k + AHEAD + 1 < len(parts):  # keep reading ahead while this chunk is scored
                ahead.append(_read_chunk(pool, parts[k + AHEAD + 1], size, gray))
            ok = [p for _, o, _ in read for p in o]
            bad += [b for _, _, u in read for b in u]
            x = (
                np.concatenate([r[0] for r in read])
                if ok
                else np.zeros((0, size, size, 3), np.float32)
            )
            probs = probabilities(predictor, x, tta) if len(x) else np.zeros(0)
            if keep_inputs:
                inputs.append(x)
            cells += [
                CellResult(
                    str(p), str(p.parent), float(pr), "Parasitized" if pr >= th else "Uninfected"
                )
                for p, pr in zip(ok, probs, strict=True)
            ]
            done += len(part)
            if on_progress:
                on_progress(done, len(files))
    finally:  # also when on_progress cancels: drop the reads not started, wait for the rest
        pool.shutdown(wait=True, cancel_futures=True)
    x = (
        np.concatenate(inputs)
        if inputs
        else np.zeros((0, predictor.image_size, predictor.image_size, 3), np.float32)
    )
    return cells, summarise(cells), bad, th, x
