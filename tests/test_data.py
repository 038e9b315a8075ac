"""Folder scanning, patient keys and splits on real NIH cell images."""

import shutil

import pytest

from malaria_tui.engine.data import groups, records, splits
from malaria_tui.engine.errors import DataError
from tests.conftest import SAMPLE, copy_cells


@pytest.mark.parametrize(
    "name, key",
    [
        ("C33P1thinF_IMG_20150619_114756a_cell_179.png", "C33P1"),
        ("C100P61ThinF_IMG_20150918_144104_cell_162.png", "C100P61"),
        ("C1_thinF_IMG_20150604_104722_cell_143.png", "C1"),
        ("C37BP2_thinF_IMG_20150620_133111a_cell_87.png", "C37BP2"),
        ("C68P29N_ThinF_IMG_20150819_134712_cell_81.png", "C68P29N"),
        ("C39P4thinF_original_IMG_20150622_105554_cell_26.png", "C39P4"),
        ("C47P8thin_Original_Motic_cell_1.png", "C47P8"),
        ("C47P8thinOriginalOlympusCX21_cell_1.png", "C47P8"),
        ("C6NThinF_IMG_20150609_121940_cell_1.png", "C6N"),
        ("my_cell.png", None),
    ],
)
def test_group_key_rule_from_dataset_readme(name, key):
    assert groups.group_of(name) == key


def test_bundled_sample_is_balanced_real_cells_from_many_patients():
    scan = records.scan_folder(SAMPLE)
    pos = sum(r.label for r in scan.records)
    assert len(scan.records) == 1500 and pos == 750 and not scan.skipped
    assert scan.groups_known and len({r.group for r in scan.records}) >= 150
    manifest = (SAMPLE / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1501


def test_case_insensitive_classes_and_bad_files_are_skipped_and_counted(tmp_path):
    root = copy_cells(tmp_path / "d", 10)
    (root / "Parasitized").rename(root / "parasitized")
    (root / "parasitized" / "zero.png").write_bytes(b"")
    good = next((root / "Uninfected").glob("*.png")).read_bytes()
    (root / "Uninfected" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "Uninfected" / "notes.png").write_text("not an image")
    (root / "Uninfected" / "readme.txt").write_text("ignored: not an image suffix")
    scan = records.scan_folder(root)
    assert len(scan.records) == 20
    assert sorted(p.split("/")[-1] for p, _ in scan.skipped) == [
        "notes.png",
        "truncated.png",
        "zero.png",
    ]
    assert all(r.label == 1 for r in scan.records if "parasitized" in r.path)


@pytest.mark.parametrize("case", ["missing", "empty", "one_class", "file"])
def test_unusable_folders_are_one_clear_error(tmp_path, case):
    root = tmp_path / "d"
    if case == "empty":
        root.mkdir()
    elif case == "one_class":
        copy_cells(root, 5)
        shutil.rmtree(root / "Uninfected")
        (root / "Uninfected").mkdir()
    elif case == "file":
        root.write_text("x")
    with pytest.raises(DataError) as e:
        records.scan_folder(root)
    assert str(root) in str(e.value) and "\n" not in str(e.value)


def test_patient_split_is_disjoint_balanced_and_seeded():
    recs = records.scan_folder(SAMPLE, check=False).records
    a = splits.split_records(recs, [0.8, 0.1, 0.1], 7, "patient")
    b = splits.split_records(recs, [0.8, 0.1, 0.1], 7, "patient")
    c = splits.split_records(recs, [0.8, 0.1, 0.1], 8, "patient")
    assert a == b and a != c
    sets = {k: {r.group for r in v} for k, v in a.items()}
    assert not (
        sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"]
    )
    assert sum(len(v) for v in a.values()) == len(recs)
    for name, frac in zip(splits.SPLITS, [0.8, 0.1, 0.1], strict=True):
        share = len(a[name]) / len(recs)
        pos = sum(r.label for r in a[name]) / len(a[name])
        assert abs(share - frac) < 0.05 and 0.35 < pos < 0.65, (name, share, pos)


def test_image_split_is_stratified_and_auto_falls_back_without_keys():
    recs = records.scan_folder(SAMPLE, check=False).records
    parts = splits.split_records(recs, [0.8, 0.1, 0.1], 1, "image")
    assert [len(parts[s]) for s in splits.SPLITS] == [1200, 150, 150]
    assert all(sum(r.label for r in parts[s]) * 2 == len(parts[s]) for s in splits.SPLITS)
    assert splits.resolve_mode("auto", groups_known=False, n_groups=0) == "image"
    with pytest.raises(DataError, match="data.split = 'patient' needs"):
        splits.resolve_mode("patient", groups_known=True, n_groups=3)


def test_autotune_is_off_unless_asked_and_never_changes_the_batches(tmp_path):
    """``data.autotune`` only switches tf.data's tuner (off by default: its thread stalled epoch
    ends); the seeded, augmented batches are the same either way."""
    import numpy as np

    from malaria_tui.engine import config
    from malaria_tui.engine.data import pipeline

    cells = copy_cells(tmp_path / "cells", 24, step=7)
    base = [f'data.source="folder:{cells}"', "data.image_size=32", "data.batch_size=8"]
    batches = {}
    for on in (False, True):
        p = pipeline.prepare(config.load(None, [*base, f"data.autotune={str(on).lower()}"]))
        for ds in (p.train_epoch(1), p.eval_dataset("val")):
            assert ds.options().autotune.enabled is on
        batches[on] = [(x.numpy(), y.numpy()) for x, y in p.train_epoch(1)]
    assert len(batches[False]) == len(batches[True]) >= 4
    for (xa, ya), (xb, yb) in zip(batches[False], batches[True], strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_the_description_shows_the_split_a_run_trains_on():
    """``malaria-tui data`` and the Dataset screen describe the very split that training uses,
    ``data.limit`` included."""
    from malaria_tui.engine import config
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.data.describe import describe_source

    cfg = config.load(None, ["data.limit=300"])
    prepared = pipeline.prepare(cfg)
    quick = describe_source(cfg, check_images=False, size_probe=50, open_tfds=False)
    assert quick.parts == prepared.split_records and quick.counts == prepared.counts
    assert len(quick.records) == 1500 and quick.found["total"] == 1500  # the gallery: all
    assert quick.sizes is not None and 50 <= quick.sizes.probed <= 100
    full = describe_source(cfg).to_dict()
    assert full["total"] == 300 and full["split"] == prepared.split_mode
    assert full["sizes"]["width"] == {"min": 50, "median": 50, "max": 50}
    assert full["sizes"]["modes"] == {"L": 300} and full["groups"] <= 170


def test_folder_sources_are_described_without_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from malaria_tui.engine import config\n"
        "from malaria_tui.tui.datasource import load_info\n"
        "from malaria_tui.engine.evaluation.eval_dir import load\n"
        "from malaria_tui.engine.evaluation.measures import confusion as at_threshold\n"
        "info = load_info(config.load(None, []))\n"
        "assert len(info.records) == 1500 and not info.error, info.error\n"
        "assert not {'tensorflow', 'keras', 'sklearn'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
