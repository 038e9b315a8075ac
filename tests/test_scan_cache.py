"""The scan cache: a folder scanned once is not decoded again, and the scan's result never changes.

Real cells copied from the bundled sample into ``tmp_path``; the cache lives in ``tmp_path`` too
(``MALARIA_TUI_CACHE_DIR``). What was decoded is seen through a wrapper around the real
``records._problem`` that records each path and then calls it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from malaria_tui.engine.data import records, scan_cache
from malaria_tui.engine.errors import DataError
from tests.conftest import REPO, copy_cells


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv(scan_cache.ENV, str(d))
    return d


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """File names ``records._problem`` is called on, in any order (it runs in a thread pool)."""
    seen: list[str] = []
    real = records._problem

    def counting(path: Path) -> str | None:
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(records, "_problem", counting)
    return seen


@pytest.fixture
def folder(tmp_path) -> Path:
    """40 real cells, and four files no decoder can read, one with a non-UTF-8 name."""
    root = copy_cells(tmp_path / "cells", 20)
    par, uni = root / "Parasitized", root / "Uninfected"
    (par / "zero.png").write_bytes(b"")
    good = next(uni.glob("*.png")).read_bytes()
    (uni / "truncated.png").write_bytes(good[: len(good) // 2])
    (uni / "notes.png").write_text("not an image")
    weird = os.fsdecode(b"C99P1thinF_\xff\xfe_cell.png")
    (uni / weird).write_bytes(b"\x89PNG garbage")
    return root


def uncached(root: Path, monkeypatch) -> records.Scan:
    with monkeypatch.context() as m:
        m.setenv(scan_cache.ENV, "off")
        return records.scan_folder(root)


def stored(root: Path) -> dict:
    path = scan_cache.cache_file(root)
    assert path is not None
    return json.loads(path.read_bytes())["files"]


def test_second_scan_decodes_nothing_and_equals_an_uncached_scan(folder, decoded, monkeypatch):
    plain = uncached(folder, monkeypatch)
    assert len(plain.records) == 40 and len(plain.skipped) == 4
    decoded.clear()
    cold = records.scan_folder(folder)
    assert len(decoded) == 44
    decoded.clear()
    warm = records.scan_folder(folder)
    assert decoded == []
    assert cold == plain and warm == plain  # records, skipped (with reasons), order, groups
    assert all(type(why) is str for _, why in warm.skipped)
    assert len(stored(folder)) == 44


def test_verdicts_come_from_the_cache_alone(folder, monkeypatch):
    """A decoder that finds nothing wrong does not un-skip the files the cache knows are bad."""
    records.scan_folder(folder)
    monkeypatch.setattr(records, "_problem", lambda path: None)
    assert len(records.scan_folder(folder).skipped) == 4
    monkeypatch.setenv(scan_cache.ENV, "off")
    assert records.scan_folder(folder).skipped == []


def test_a_touched_file_is_decoded_again_and_a_truncated_one_is_then_skipped(
    folder, decoded, monkeypatch
):
    records.scan_folder(folder)
    a, b = sorted((folder / "Parasitized").glob("C*.png"))[:2]
    later = a.stat().st_mtime_ns + 5_000_000_000
    os.utime(a, ns=(later, later))
    b.write_bytes(b.read_bytes()[:-40])
    decoded.clear()
    scan = records.scan_folder(folder)
    assert sorted(decoded) == sorted([a.name, b.name])
    assert (str(b), "not a readable image (OSError)") in scan.skipped
    assert str(a) in {r.path for r in scan.records}
    assert scan == uncached(folder, monkeypatch)
    decoded.clear()
    assert records.scan_folder(folder) == scan and decoded == []


def test_same_size_bytes_with_the_old_mtime_restored_are_still_decoded(folder, decoded):
    """What ``cp -p``, ``rsync -a`` or ``tar`` do: new bytes, same size, the old mtime; the
    ctime (which no user call can set) gives it away."""
    records.scan_folder(folder)
    f = sorted((folder / "Uninfected").glob("C*.png"))[0]
    st = f.stat()
    f.write_bytes(b"\0" * st.st_size)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    decoded.clear()
    scan = records.scan_folder(folder)
    assert decoded == [f.name] and str(f) in dict(scan.skipped)


def test_added_files_are_decoded_and_removed_ones_dropped(folder, decoded, monkeypatch):
    records.scan_folder(folder)
    gone = sorted((folder / "Parasitized").glob("C*.png"))[0]
    new = folder / "Uninfected" / "sub" / "new_cell.png"
    new.parent.mkdir()
    new.write_bytes(gone.read_bytes())
    gone.unlink()
    (folder / "Parasitized" / "zero.png").unlink()  # a skipped file removed too
    decoded.clear()
    scan = records.scan_folder(folder)
    assert decoded == ["new_cell.png"]
    paths = {r.path for r in scan.records}
    assert str(new) in paths and str(gone) not in paths
    assert "Parasitized/zero.png" not in stored(folder)
    assert "Uninfected/sub/new_cell.png" in stored(folder)
    assert len(stored(folder)) == 40 + 4 - 2 + 1
    assert scan == uncached(folder, monkeypatch)


CORRUPT = {
    "garbage": b"\x00\xff not json",
    "empty": b"",
    "a list": b"[]",
    "truncated": b'{"format": "malaria-tui scan cache", "version": 1, "files": {"Para',
    "another version": None,
    "another folder": None,
    "another checker": None,
    "bad entries": None,
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_or_foreign_cache_file_is_ignored_and_rewritten(
    folder, decoded, monkeypatch, case
):
    records.scan_folder(folder)
    path = scan_cache.cache_file(folder)
    assert path is not None
    doc = json.loads(path.read_bytes())
    if case == "another version":
        doc["version"] = 0
    elif case == "another folder":
        doc["root"] = "/elsewhere"
    elif case == "another checker":
        doc["checker"] = "problem rules 0, Pillow 1.0"
    elif case == "bad entries":  # every file's verdict stored as "readable", in broken shapes
        doc["files"] = {k: [1, 2.5, "3", None] for k in doc["files"]}
    data = CORRUPT[case] if CORRUPT[case] is not None else json.dumps(doc).encode()
    path.write_bytes(data)
    decoded.clear()
    scan = records.scan_folder(folder)
    assert len(decoded) == 44  # nothing trusted
    assert scan == uncached(folder, monkeypatch)
    decoded.clear()
    assert records.scan_folder(folder) == scan and decoded == []  # rewritten, whole


def test_a_directory_where_the_cache_file_goes_is_no_error(folder, monkeypatch):
    path = scan_cache.cache_file(folder)
    assert path is not None
    path.mkdir(parents=True)
    assert records.scan_folder(folder) == uncached(folder, monkeypatch)


@pytest.mark.parametrize("how", ["under a file", "read-only"])
def test_an_unwritable_cache_dir_is_ignored_silently(
    folder, decoded, monkeypatch, tmp_path, how, capfd
):
    if how == "under a file":
        (tmp_path / "blocker").write_text("a file, not a folder")
        monkeypatch.setenv(scan_cache.ENV, str(tmp_path / "blocker" / "cache"))
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        monkeypatch.setenv(scan_cache.ENV, str(ro / "cache"))
    first = records.scan_folder(folder)
    second = records.scan_folder(folder)
    assert len(decoded) == 44 * 2  # nothing remembered, nothing failed
    assert first == second == uncached(folder, monkeypatch)
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("value", ["off", "OFF", " none "])
def test_off_turns_the_cache_off(folder, decoded, monkeypatch, tmp_path, value):
    monkeypatch.setenv(scan_cache.ENV, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert scan_cache.cache_file(folder) is None
    records.scan_folder(folder)
    records.scan_folder(folder)
    assert len(decoded) == 88
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()
    assert not (tmp_path / "cache").exists()


def test_where_the_cache_lives_and_never_in_the_data_folder(folder, monkeypatch, tmp_path):
    before = sorted(folder.rglob("*"))
    monkeypatch.delenv(scan_cache.ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert scan_cache.cache_dir() == tmp_path / "xdg" / "malaria-tui"
    records.scan_folder(folder)
    (made,) = (tmp_path / "xdg" / "malaria-tui" / "scans").iterdir()
    assert made == scan_cache.cache_file(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # invalid by the XDG spec: ignored
    assert scan_cache.cache_dir() == tmp_path / "home" / ".cache" / "malaria-tui"
    monkeypatch.delenv("XDG_CACHE_HOME")
    records.scan_folder(folder)
    assert scan_cache.cache_file(folder) in (tmp_path / "home" / ".cache").rglob("*.json")
    assert sorted(folder.rglob("*")) == before


def test_one_cache_file_per_folder_however_it_is_spelled(
    folder, decoded, monkeypatch, tmp_path, cache
):
    records.scan_folder(folder)
    link = tmp_path / "link"
    link.symlink_to(folder)
    monkeypatch.chdir(tmp_path)
    decoded.clear()
    spellings = (link, "cells", "./link/")
    scans = [records.scan_folder(s) for s in spellings]
    assert decoded == []
    for spelling, scan in zip(spellings, scans, strict=True):
        assert scan == uncached(Path(spelling), monkeypatch)  # paths as the caller spelled them
    assert len(list(cache.rglob("*.json"))) == 1


def test_processes_scanning_at_once_leave_a_whole_cache(folder, decoded, cache):
    code = (
        "import sys; from malaria_tui.engine.data import records as r;"
        "[r.scan_folder(sys.argv[1]) for _ in range(3)]"
    )
    env = {**os.environ, scan_cache.ENV: str(cache)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=REPO, env=env)
        for _ in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert len(stored(folder)) == 44
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    records.scan_folder(folder)
    assert decoded == []


def test_a_verdict_from_an_os_error_is_reported_but_not_remembered(folder, tmp_path, monkeypatch):
    loop = folder / "Parasitized" / "loop.png"
    loop.symlink_to(loop)  # ELOOP: an error of the OS, not of the file's bytes
    why = records._problem(loop)
    assert isinstance(why, scan_cache.Unremembered) and why == "not a readable image (OSError)"
    scan = records.scan_folder(folder)
    assert (str(loop), why) in scan.skipped and "Parasitized/loop.png" not in stored(folder)
    # a readable file whose checker hit such an error is decoded again next time
    calls: list[int] = []

    def flaky(paths: list[Path]) -> list[str | None]:
        calls.append(len(paths))
        return [scan_cache.Unremembered("not a readable image (OSError)") for _ in paths]

    cell = sorted((folder / "Uninfected").glob("C*.png"))[0]
    one = [("Uninfected/" + cell.name, cell)]
    out = scan_cache.verdicts(tmp_path / "other", one, flaky, "test")
    assert out == ["not a readable image (OSError)"] and type(out[0]) is str
    scan_cache.verdicts(tmp_path / "other", one, flaky, "test")
    assert calls == [1, 1]


def test_an_unchanged_scan_does_not_rewrite_and_old_cache_files_are_pruned(folder, tmp_path):
    records.scan_folder(folder)
    path = scan_cache.cache_file(folder)
    assert path is not None
    ino = path.stat().st_ino
    records.scan_folder(folder)
    assert path.stat().st_ino == ino  # touched at most, not replaced
    scans = path.parent
    old = time.time() - (scan_cache.PRUNE_AFTER_DAYS + 1) * 86400
    for name in ("0123abcd.json", ".0123abcd.json.x1y2.tmp", "notes.txt"):
        (scans / name).write_text("{}")
        os.utime(scans / name, (old, old))
    (scans / "fresh.json").write_text("{}")
    other = copy_cells(tmp_path / "other", 3)
    records.scan_folder(other)  # a write prunes our files unused for PRUNE_AFTER_DAYS
    left = sorted(p.name for p in scans.iterdir())
    theirs = scan_cache.cache_file(other)
    assert theirs is not None
    assert left == sorted(["notes.txt", "fresh.json", path.name, theirs.name])
    os.utime(path, (old, old))
    records.scan_folder(folder)  # reused: touched, so it counts as used
    assert path.stat().st_mtime > old + 86400


def test_check_false_never_reads_or_writes_the_cache(folder, cache, decoded):
    scan = records.scan_folder(folder, check=False)
    assert len(scan.records) == 44 and decoded == [] and not cache.exists()


def test_errors_are_unchanged_with_a_warm_cache(tmp_path):
    root = copy_cells(tmp_path / "d", 4)
    for f in (root / "Uninfected").iterdir():
        f.write_bytes(b"")
    for _ in range(2):
        with pytest.raises(DataError, match="no images of class Uninfected"):
            records.scan_folder(root)
