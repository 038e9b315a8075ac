"""Shared fixtures: small folders of real NIH cell images (from the bundled sample and shared/)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The folder scan cache of the whole session (and the commands it runs) in a temporary folder,
# never the user's ~/.cache; tests of the cache itself point it elsewhere.
os.environ.setdefault("MALARIA_TUI_CACHE_DIR", tempfile.mkdtemp(prefix="malaria-tui-cache-"))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "malaria_tui" / "sample_data"
RGB = SHARED / "malaria-rgb" / "cell_images"
# The installed ``malaria-tui`` command, as a person types it (its console script in this venv).
_SCRIPT = Path(sys.executable).parent / "malaria-tui"
MALARIA_TUI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "malaria_tui"]


def copy_cells(dest: Path, per_class: int, step: int = 7) -> Path:
    """``dest/Parasitized`` and ``dest/Uninfected`` with real sample cells (many patients)."""
    for cls in ("Parasitized", "Uninfected"):
        files = sorted((SAMPLE / cls).glob("*.png"))[::step][:per_class]
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, dest / cls / f.name)
    return dest


@pytest.fixture
def cells(tmp_path) -> Path:
    """60 real cells (30 per class) from ~50 patients."""
    return copy_cells(tmp_path / "cells", 30)


@pytest.fixture
def rgb_dir() -> Path:
    if not RGB.is_dir():
        pytest.skip("shared/data/malaria-rgb is not beside the repo")
    return RGB


TINY = [
    "data.limit=64",
    "data.image_size=32",
    "data.batch_size=16",
    "train.epochs=1",
    'model.name="lenet"',
    "train.tensorboard_images=false",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One real run trained for two quick epochs on 96 real cells (shared by several modules)."""
    from malaria_tui.engine import config
    from malaria_tui.engine.training.trainer import train

    root = tmp_path_factory.mktemp("tiny_run")
    cells_dir = copy_cells(root / "cells", 48, step=11)
    cfg = config.load(
        None,
        [
            *TINY,
            f'data.source="folder:{cells_dir}"',
            "data.limit=0",
            "train.epochs=2",
            'model.name="cellnet"',
            "model.width=8",
        ],
    )
    return train(cfg, runs_dir=root / "runs")
