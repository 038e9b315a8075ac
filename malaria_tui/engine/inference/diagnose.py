"""Diagnose new images: per-cell probabilities, labels at the run's threshold, parasitemia.

Images may be any size, grayscale, RGB, RGBA or 16-bit; unreadable files are listed, never
fatal. ``tta`` averages the eight flips/90-degree rotations of each cell.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from malaria_tui.engine.data import records
from malaria_tui.engine.data.images import load_pil, to_model_input
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
    out: dict[str, str] = {}
    for p, mine in parts.items():
        for n in range(1, len(mine) + 1):
            tail = mine[-n:]
            if not any(q != p and other[-n:] == tail for q, other in parts.items()):
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
    paths: list[Path], size: int, gray: bool = False
) -> tuple[np.ndarray, list[Path], list[tuple[str, str]]]:
    """Model inputs for the readable images; the rest come back as (path, reason)."""
    arrays, ok, bad = [], [], []
    for p in paths:
        try:
            arr = load_pil(str(p))
        except Exception as e:  # any decoder failure means "unreadable"
            bad.append((str(p), f"not a readable image ({type(e).__name__})"))
            continue
        arrays.append(np.asarray(to_model_input(arr, size, gray)))  # as in training
        ok.append(p)
    x = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.float32)
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


CHUNK = 512  # images read and scored per step, so progress is reported as it goes


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
    images under ``paths``; ``on_progress(done, total)`` after every ``chunk`` files. The
    inputs (for Grad-CAM overlays) are kept only with ``keep_inputs``: 11,840 cells at 50 px
    would hold ~355 MB."""
    files, _ = collect(paths)
    th = predictor.threshold if threshold is None else threshold
    inputs, cells, bad = [], [], []
    if on_progress:
        on_progress(0, len(files))
    for start in range(0, len(files), chunk):
        part = files[start : start + chunk]
        x, ok, unreadable = load_images(part, predictor.image_size, predictor.color == "gray")
        bad += unreadable
        probs = probabilities(predictor, x, tta) if len(x) else np.zeros(0)
        if keep_inputs:
            inputs.append(x)
        cells += [
            CellResult(
                str(p), str(p.parent), float(pr), "Parasitized" if pr >= th else "Uninfected"
            )
            for p, pr in zip(ok, probs, strict=True)
        ]
        if on_progress:
            on_progress(start + len(part), len(files))
    x = (
        np.concatenate(inputs)
        if inputs
        else np.zeros((0, predictor.image_size, predictor.image_size, 3), np.float32)
    )
    return cells, summarise(cells), bad, th, x
