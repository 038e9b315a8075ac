"""The Review screen with Pilot, at 80x24 and 120x36: suspects of a real CV directory layout
over real cells, surest first; keys write the label overlay, undo forgets, and a rerun
(``malaria-tui data`` as typed, which reads data as a run does) uses the decisions."""

from __future__ import annotations

import asyncio
import csv
import subprocess
from pathlib import Path

import pytest

from malaria_tui.engine.review import suspects as sus
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screens.review import ReviewScreen, colour_original, newest_cv_dir
from tests.conftest import MALARIA_TUI, copy_cells
from tests.test_review import _lay_out_cv

from .test_app import wait_for


@pytest.fixture
def review_cv(tmp_path):
    from malaria_tui.engine.data import records, splits

    cells = copy_cells(tmp_path / "cells", 30)
    parts = splits.split_records(records.scan_folder(cells).records, (0.8, 0.1, 0.1), 42, "patient")
    names = sorted(Path(r.path).name for r in parts["train"])  # cells a run trains on
    planted = [names[3], names[30], names[17]]
    cv = _lay_out_cv(cells, tmp_path / "runs" / "20250101-cv-demo", planted)
    return cells, cv, planted


def _overlay_rows(cv: Path) -> dict[str, str]:
    with open(sus.overlay_of(cv), newline="") as f:
        return {Path(r["path"]).name: r["decision"] for r in csv.DictReader(f)}


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_keys_write_the_overlay_and_a_rerun_uses_it(review_cv, size):
    cells, cv, planted = review_cv

    async def go():
        app = create_app(runs_dir=cv.parent, load_tf=False, initial="review")
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            assert isinstance(screen, ReviewScreen)
            await wait_for(pilot, lambda: screen.found is not None)
            assert screen.cv_path == cv  # the newest CV directory under the runs folder
            assert [Path(s.path).name for s in screen.found.suspects[:3]] == planted
            title = str(screen.query_one("#review-title").render())
            assert f"{screen.found.n_flagged} of 60 cells flagged" in title
            details = str(screen.query_one("#review-details").render())
            assert f"#1 {planted[0][:10]}" in details and "none yet" in details  # name cut to fit
            await pilot.press("r")  # relabel the first; the selection moves on
            await pilot.press("x")  # exclude the second
            await pilot.press("k")  # keep the third
            await pilot.pause()
            assert [s.decision for s in screen.found.suspects[:3]] == ["relabel", "exclude", "keep"]
            n = len(screen.found.suspects)
            assert screen.grid.selected == min(3, n - 1)  # the next one (the last stays)
            await pilot.press("home")  # the keys move through the montage
            await pilot.pause()
            assert screen.grid.selected == 0
            await pilot.press("right", "right")  # to the third: undo its decision
            await pilot.pause()
            assert screen.grid.selected == 2
            await pilot.press("u")
            await pilot.pause()
            assert screen.found.suspects[2].decision == ""
            captions = [i.caption for i in screen.grid.items[:2]]
            assert captions[0].startswith("⇄1") and captions[1].startswith("✗2")
            assert "1 decided" not in str(screen.query_one("#review-title").render())
            assert "2 decided" in str(screen.query_one("#review-title").render())

    asyncio.run(go())
    assert _overlay_rows(cv) == {planted[0]: "relabel", planted[1]: "exclude"}
    overlay = sus.overlay_of(cv)
    done = subprocess.run(
        [*MALARIA_TUI, "data", f"folder:{cells}", "--set", f'data.label_overrides="{overlay}"'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "1 relabelled" in text and "1 excluded" in text

    # and the app reads the decisions back: reopened, the screen shows them
    async def again():
        app = create_app(runs_dir=cv.parent, load_tf=False, initial="review", cv_dir=cv)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.screen.found is not None)
            return [s.decision for s in app.screen.found.suspects[:2]]

    assert asyncio.run(again()) == ["relabel", "exclude"]


def test_without_a_cross_validation_the_screen_says_how_to_make_one(tmp_path):
    async def go():
        app = create_app(runs_dir=tmp_path, load_tf=False, initial="review")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert screen.cv_path is None and newest_cv_dir(tmp_path) is None
            assert "malaria-tui cv" in str(screen.query_one("#review-details").render())
            await pilot.press("k")  # nothing to decide: no error, nothing written
            assert not list(tmp_path.iterdir())

    asyncio.run(go())


def test_the_colour_original_is_shown_when_the_data_folder_has_one(tmp_path):
    gray = tmp_path / "malaria" / "cell_images" / "Parasitized" / "C1_thinF_x.png"
    rgb = tmp_path / "malaria-rgb" / "cell_images" / "Parasitized" / "C1_thinF_x.png"
    for p in (gray, rgb):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"png")
    assert colour_original(str(gray)) == str(rgb)
    rgb.unlink()
    assert colour_original(str(gray)) == str(gray)
