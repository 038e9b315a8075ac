"""Do reviewed training labels help? Exclude a CV's suspects from training, train the default
once with and once without them, and score both on the same outer test split.

    python bench/reviewed_labels.py CV_DIR [--top N] [--montage top50.png] [--train]

1. cleanlab's suspects of the CV's out-of-fold probabilities (``malaria-tui review``); all of
   them are outside the test split, so the test split is untouched.
2. An overlay that excludes the first ``--top`` (default: every flagged cell), written to
   ``CV_DIR/../<cv>-excluded.csv`` (the CV's own ``label_overrides.csv`` is left to people).
3. ``--montage``: the first 50 suspects in a grid, given label in the caption, to judge by eye.
4. ``--train``: ``malaria-tui --no-ui`` on the CV's data and seed, as typed, twice at once
   (one core each, the same treatment): ``single`` and ``reviewed`` (with the overlay). Then
   compare with ``bench/cv_targets.py CV_DIR --single RUN --reviewed RUN`` (paired bootstrap
   over the test patients; test figures against the original labels, as always).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO

from malaria_tui.engine import cvdir
from malaria_tui.engine.data import label_overlay
from malaria_tui.engine.review import suspects as sus


def montage(found, out: Path, n: int = 50, size: int = 96, cols: int = 10) -> None:
    from PIL import Image, ImageDraw

    items = found.suspects[:n]
    rows = -(-len(items) // cols)
    sheet = Image.new("RGB", (cols * size, rows * (size + 14)), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for i, s in enumerate(items):
        with Image.open(s.path) as im:
            cell = im.convert("RGB").resize((size, size), Image.Resampling.NEAREST)
        x, y = (i % cols) * size, (i // cols) * (size + 14)
        sheet.paste(cell, (x, y))
        colour = (255, 90, 90) if s.label else (90, 220, 90)
        draw.text(
            (x + 2, y + size), f"{s.rank} {'P' if s.label else 'U'} {s.prob:.2f}", fill=colour
        )
    sheet.save(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cv_dir")
    ap.add_argument("--top", type=int, help="exclude only the first N suspects")
    ap.add_argument("--montage", type=Path)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--runs-dir", type=Path)
    a = ap.parse_args()
    cv = cvdir.open_cv(a.cv_dir)
    found = sus.for_cv(cv.path, overlay=cv.path / "unused-overlay.csv")
    print(
        f"cleanlab flags {found.n_flagged} of {found.n_images} out-of-fold cells "
        f"({100 * found.n_flagged / found.n_images:.1f}%); by given label: "
        f"{sum(s.label == 1 for s in found.suspects)} Parasitized, "
        f"{sum(s.label == 0 for s in found.suspects)} Uninfected"
    )
    if a.montage:
        montage(found, a.montage)
        print(f"montage of the first 50: {a.montage}")
    chosen = found.suspects[: a.top] if a.top else found.suspects
    overlay = cv.path.parent / f"{cv.path.name}-excluded.csv"
    overlay.unlink(missing_ok=True)
    label_overlay.record_many(
        overlay,
        [
            label_overlay.Decision(
                str(Path(s.path).resolve()),
                label_overlay.file_sha256(s.path),
                s.label,
                label_overlay.EXCLUDE,
                label_overlay.now(),
            )
            for s in chosen
        ],
    )
    print(f"overlay excluding {len(chosen)} training cells: {overlay}")
    if not a.train:
        return
    base = cvdir.open_cv(cv.path)
    cfg = (base.fold_dirs()[0] / "config.toml").read_text()
    source = next(
        line.split("=", 1)[1].strip().strip('"')
        for line in cfg.splitlines()
        if line.startswith("source")
    )
    runs = a.runs_dir or cv.path.parent
    cmd = [
        sys.executable,
        "-m",
        "malaria_tui",
        "--no-ui",
        "--plain",
        "--data",
        source,
        "--runs-dir",
        str(runs),
    ]
    env = {**os.environ, "MALARIA_TUI_THREADS": "1"}
    t = time.perf_counter()
    procs = {
        "single": subprocess.Popen([*cmd, "--name", "single"], env=env, cwd=REPO, stdout=subprocess.DEVNULL),
        "reviewed": subprocess.Popen(
            [*cmd, "--name", "reviewed", "--set", f'data.label_overrides="{overlay}"'],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL,
        ),
    }  # fmt: skip
    codes = {k: p.wait() for k, p in procs.items()}
    print(f"trained in {time.perf_counter() - t:.0f} s: exit codes {codes}")
    for name in procs:
        run = max(runs.glob(f"*-{name}"), key=lambda p: p.name)
        print(f"{name}: {run}")


if __name__ == "__main__":
    main()
