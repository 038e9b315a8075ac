"""Reviewing suspect labels: the label overlay (format, decisions, what a run does with it),
cleanlab's suspects from out-of-fold probabilities, ``malaria-tui review`` and ``data`` as
typed, bad overlays refused in one line, and the honesty rule (the test split is always scored
on its original labels; on the reviewed ones beside them only when test cells were reviewed).

Real cells throughout; the slow tests train real models (``malaria-tui cv`` on cells with
planted label flips, and a run on an overlay).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from malaria_tui.engine import config as cfgmod
from malaria_tui.engine import cvdir
from malaria_tui.engine.data import label_overlay as lo
from malaria_tui.engine.data import pipeline, records
from malaria_tui.engine.errors import DataError
from malaria_tui.engine.review import suspects as sus
from tests.conftest import MALARIA_TUI, TINY, copy_cells


def _cli(*args: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(
        [*MALARIA_TUI, *args], capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


def _one_line(out: subprocess.CompletedProcess) -> str:
    err = out.stderr.strip()
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _config(cells: Path, overlay: Path | str = "", *more: str) -> cfgmod.Config:
    return cfgmod.load(
        None,
        [f'data.source="folder:{cells}"', f'data.label_overrides="{overlay}"', *more],
    )


def _by_name(cells: Path) -> dict[str, records.Record]:
    return {Path(r.path).name: r for r in records.scan_folder(cells).records}


def _parts(cells: Path) -> dict[str, list[records.Record]]:
    return pipeline.prepare(_config(cells)).split_records or {}


# --- the overlay file -----------------------------------------------------------------------


def test_overlay_round_trip_one_row_per_path_the_latest_decision_wins(cells, tmp_path):
    ov = tmp_path / "reviewed" / "labels.csv"
    par = sorted((cells / "Parasitized").glob("*.png"))
    d1 = lo.record(ov, par[0], 1, "keep")
    lo.record(ov, par[1], 1, "exclude")
    d3 = lo.record(ov, par[0], 1, "relabel")  # a second look at the first cell
    text = ov.read_text()
    assert text.splitlines()[0] == "path,sha256,given_label,decision,time"
    assert len(text.splitlines()) == 3  # header + one row per cell
    read = lo.read(ov)
    assert list(read.decisions) == [str(par[1]), str(par[0])]  # decision order: latest last
    assert read.get(str(par[0])) == d3 and d3.label == 0 and d1.label == 1
    assert d3.sha256 == hashlib.sha256(par[0].read_bytes()).hexdigest()
    assert read.sha256 == hashlib.sha256(ov.read_bytes()).hexdigest()
    assert read.get(str(par[1])).label is None  # excluded
    # a hand-appended row for a path already there: the later row wins when read
    with open(ov, "a") as f:
        f.write(",".join(read.get(str(par[1])).row()[:3] + ["keep", "2030-01-01T00:00:00Z"]))
        f.write("\n")
    assert lo.read(ov).get(str(par[1])).decision == "keep"
    assert lo.forget(ov, par[1]) and not lo.forget(ov, par[1])
    assert list(lo.read(ov).decisions) == [str(par[0])]
    assert not list(ov.parent.glob(".*tmp"))  # atomic rewrites leave nothing behind


def test_apply_relabels_excludes_keeps_and_keeps_the_order(cells, tmp_path):
    recs = records.scan_folder(cells).records
    ov = tmp_path / "o.csv"
    p = next(r for r in recs if r.label == 1)
    u = next(r for r in recs if r.label == 0)
    x = recs[-1]
    lo.record(ov, p.path, 1, "relabel")
    lo.record(ov, u.path, 0, "relabel")
    lo.record(ov, x.path, x.label, "exclude")
    lo.record(ov, recs[5].path, recs[5].label, "keep")
    out, ch = lo.apply(recs, ov)
    assert len(out) == len(recs) - 1 and x.path not in {r.path for r in out}
    new = {r.path: r for r in out}
    assert new[p.path].label == 0 and new[u.path].label == 1
    assert new[recs[5].path] == recs[5]
    assert [r.path for r in out] == [r.path for r in recs if r.path != x.path]
    assert (ch.reviewed, ch.relabelled, ch.excluded, ch.changed) == (4, 2, 1, 3)
    assert (ch.to_parasitized, ch.to_uninfected) == (1, 1)


def test_the_overlay_applies_after_the_split_to_train_and_val_never_to_test(cells, tmp_path):
    before = _parts(cells)
    ov = tmp_path / "o.csv"
    tr, va, te = before["train"], before["val"], before["test"]
    lo.record(ov, tr[0].path, tr[0].label, "relabel")
    lo.record(ov, tr[1].path, tr[1].label, "exclude")
    lo.record(ov, va[0].path, va[0].label, "relabel")
    lo.record(ov, te[0].path, te[0].label, "relabel")
    lo.record(ov, te[1].path, te[1].label, "exclude")
    prepared = pipeline.prepare(_config(cells, ov))
    after = prepared.split_records or {}
    # no cell changes split (the patient split is computed before any decision applies)
    for split in before:
        assert {r.path for r in after[split]} <= {r.path for r in before[split]}
        assert {r.group for r in after[split]} <= {r.group for r in before[split]}
    assert tr[1].path not in {r.path for r in after["train"]}
    assert next(r for r in after["train"] if r.path == tr[0].path).label == 1 - tr[0].label
    assert next(r for r in after["val"] if r.path == va[0].path).label == 1 - va[0].label
    assert after["test"] == te  # test: original records, original labels
    assert prepared.counts["train"]["total"] == len(tr) - 1
    assert prepared.counts["test"]["total"] == len(te)
    effect = prepared.overlay
    assert effect is not None and effect.sha256 == hashlib.sha256(ov.read_bytes()).hexdigest()
    assert effect.applied == ("train", "val")
    assert (effect.changes["train"].relabelled, effect.changes["train"].excluded) == (1, 1)
    assert effect.changes["test"].changed == 2  # counted, not applied
    assert set(effect.reviewed["test"]) == {lo.key(te[0].path), lo.key(te[1].path)}


def test_the_honesty_rule_reviewed_test_figures_only_beside_and_only_when_reviewed(cells, tmp_path):
    from malaria_tui.engine.evaluation import measures
    from malaria_tui.engine.evaluation.score_run import on_reviewed_labels

    parts = _parts(cells)
    te, tr0 = parts["test"], parts["train"][0]
    ov = tmp_path / "o.csv"
    lo.record(ov, tr0.path, tr0.label, "keep")  # about a training cell only
    prepared = pipeline.prepare(_config(cells, ov))
    p = np.array([0.9 if r.label else 0.1 for r in te])  # a model that agrees with the folders
    assert on_reviewed_labels(prepared, "test", p, 0.5, {}) is None  # no test cell reviewed
    lo.record(ov, te[0].path, te[0].label, "relabel")
    lo.record(ov, te[1].path, te[1].label, "exclude")
    lo.record(ov, te[2].path, te[2].label, "keep")
    prepared = pipeline.prepare(_config(cells, ov))
    assert [r.label for r in prepared.split_records["test"]] == [r.label for r in te]
    rv = on_reviewed_labels(prepared, "test", p, 0.5, {"youden": 0.3})
    assert rv is not None and rv["labels"] == "reviewed"
    assert (rv["reviewed"], rv["relabelled"], rv["excluded"], rv["n_changed"]) == (3, 1, 1, 2)
    assert rv["n"] == len(te) - 1  # the excluded cell is left out of the reviewed figures
    y = np.array([1 - te[0].label] + [r.label for r in te[2:]])
    expected = measures.binary_metrics(y, np.r_[p[0], p[2:]], 0.5)
    assert rv["accuracy"] == pytest.approx(expected["accuracy"])
    assert rv["accuracy"] < 1.0  # the relabelled cell now disagrees with the model
    assert set(rv["at"]) == {"youden"}
    assert rv["overlay_sha256"] == hashlib.sha256(ov.read_bytes()).hexdigest()


# --- bad overlays: one line, exit 2, nothing trains -------------------------------------------


def _bad_overlays(cells: Path, tmp: Path) -> dict[str, tuple[Path, list[str]]]:
    par = sorted((cells / "Parasitized").glob("*.png"))
    good = tmp / "good.csv"
    for f in par[:3]:
        lo.record(good, f, 1, "exclude")
    unknown = tmp / "unknown.csv"
    unknown.write_text(good.read_text().replace(",exclude,", ",maybe,", 1))
    foreign = tmp / "foreign.csv"
    foreign.write_text("path,label\n/x.png,1\n")
    binary = tmp / "binary.csv"
    binary.write_bytes(b"\x00\xff\xfe garbage")
    stale = tmp / "stale.csv"
    shutil.copy(good, stale)
    return {
        "missing": (tmp / "nö such.csv", ["nö such.csv", "not found"]),
        "foreign": (foreign, ["foreign.csv", "not a label overlay"]),
        "binary": (binary, ["binary.csv", "not a label overlay"]),
        "unknown decision": (unknown, ["unknown.csv line 2", "'maybe'", "keep, relabel"]),
        # two of the three reviewed images changed since: the count, and stop
        "hashes": (stale, ["stale.csv", "2 of 3 rows no longer match", "2 changed"]),
    }


@pytest.mark.parametrize("case", ["missing", "foreign", "binary", "unknown decision", "hashes"])
def test_a_bad_overlay_is_one_line_naming_it_and_exit_2(cells, tmp_path, case):
    path, words = _bad_overlays(cells, tmp_path)[case]
    if case == "hashes":
        for f in sorted((cells / "Parasitized").glob("*.png"))[:2]:
            f.write_bytes(f.read_bytes() + b"\x00")  # same picture, other bytes
    out = _cli("data", f"folder:{cells}", "--set", f'data.label_overrides="{path}"')
    line = _one_line(out)
    assert all(w in line for w in words), line
    with pytest.raises(DataError):
        pipeline.prepare(_config(cells, path))


def test_data_shows_what_the_overlay_changes_per_split(cells, tmp_path):
    parts = _parts(cells)
    ov = tmp_path / "o.csv"
    tr, te = parts["train"], parts["test"]
    lo.record(ov, tr[0].path, tr[0].label, "relabel")
    lo.record(ov, tr[1].path, tr[1].label, "exclude")
    lo.record(ov, tr[2].path, tr[2].label, "exclude")
    lo.record(ov, te[0].path, te[0].label, "relabel")
    setting = f'data.label_overrides="{ov}"'
    out = _cli("data", f"folder:{cells}", "--set", setting, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    o = info["label_overrides"]
    assert o["sha256"] == hashlib.sha256(ov.read_bytes()).hexdigest() and o["rows"] == 4
    assert o["changes"]["train"]["relabelled"] == 1 and o["changes"]["train"]["excluded"] == 2
    assert o["changes"]["test"]["relabelled"] == 1 and "test" not in o["applied_to"]
    assert info["counts"]["train"]["total"] == len(tr) - 2
    assert info["counts"]["test"]["total"] == len(te)
    table = _cli("data", f"folder:{cells}", "--set", setting)
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "train: 1 relabelled" in text and "2 excluded" in text
    assert "test: 1 reviewed, not applied" in text


# --- suspects and `malaria-tui review` -------------------------------------------------------


def _lay_out_cv(cells: Path, where: Path, planted: list[str]) -> Path:
    """A CV directory laid out as ``cvdir.py`` says, over real cells: ``oof.csv`` with
    probabilities that agree with the folders, except for the ``planted`` cells, which they
    contradict firmly. (The slow test below gets real ones from ``malaria-tui cv``.)"""
    where.mkdir(parents=True)
    (where / cvdir.MARKER).write_text(json.dumps({"folds": 3, "split": "patient"}))
    rng = np.random.default_rng(7)
    rows = []
    for i, r in enumerate(records.scan_folder(cells).records):
        agree = rng.uniform(0.75, 0.99)
        p = agree if r.label else 1 - agree
        if Path(r.path).name in planted:
            p = 0.02 + 0.01 * planted.index(Path(r.path).name)
            p = p if r.label else 1 - p
        rows.append((r.path, r.label, r.group, i % 3 + 1, p))
    with open(where / cvdir.OOF, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cvdir.OOF_COLUMNS)
        w.writerows(rows)
    return where


@pytest.mark.slow  # the command as typed, in a subprocess per case
def test_review_as_typed_ranks_the_contradicted_cells_first(cells, tmp_path):
    names = sorted(p.name for p in cells.rglob("*.png"))
    planted = [names[3], names[40], names[17]]  # the order of their evidence: 0.02, 0.03, 0.04
    cv = _lay_out_cv(cells, tmp_path / "cv", planted)
    out = _cli("review", str(cv), "--json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert [Path(s["path"]).name for s in found["suspects"][:3]] == planted
    assert found["n_flagged"] == len(found["suspects"]) >= 3 and found["n_images"] == 60
    assert [s["rank"] for s in found["suspects"]] == list(range(1, found["n_flagged"] + 1))
    scores = [s["score"] for s in found["suspects"]]
    assert scores == sorted(scores) and scores[0] == pytest.approx(0.02)
    top = found["suspects"][0]
    assert top["patient"] and top["fold"] in (1, 2, 3) and top["decision"] == ""
    # decisions recorded through the API show beside the suspects
    overlay = sus.overlay_of(cv)
    sus.decide(overlay, sus.find_suspects(cv / cvdir.OOF).suspects[0], "relabel")
    table = _cli("review", str(cv), "--top", "2")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "cleanlab flags" in lines[0]
    rows = [ln for ln in lines if ln.split()[0].isdigit() and "more:" not in ln]
    assert len(rows) == 2 and all(len(ln) <= 80 for ln in lines[1:4])
    assert "relabel" in rows[0] and planted[0].split("_")[0] in rows[0]
    assert str(overlay) in table.stdout
    rows_csv = list(csv.DictReader(_cli("review", str(cv), "--csv").stdout.splitlines()))
    assert rows_csv[0]["path"].endswith(planted[0]) and rows_csv[0]["decision"] == "relabel"
    assert len(rows_csv) == found["n_flagged"]


def test_review_refuses_what_is_not_a_finished_cv_directory(cells, tmp_path):
    line = _one_line(_cli("review", str(cells)))
    assert "not a cross-validation directory" in line and str(cells) in line
    unfinished = tmp_path / "cv"
    unfinished.mkdir()
    (unfinished / cvdir.MARKER).write_text(json.dumps({"folds": 3, "split": "patient"}))
    line = _one_line(_cli("review", str(unfinished)))
    assert "oof.csv" in line and "--resume" in line
    (unfinished / cvdir.OOF).write_text("something,else\n1,2\n")
    assert "not an oof.csv" in _one_line(_cli("review", str(unfinished)))
    assert "--top" in _one_line(_cli("review", str(unfinished), "--top", "0"))


def test_a_decision_is_stored_relative_to_the_folder_label(cells, tmp_path):
    """A CV trained on an earlier overlay shows a relabelled cell with its reviewed label; what
    the person decides about that label is stored against the folder's label."""
    cell = sorted((cells / "Parasitized").glob("*.png"))[0]
    shown = sus.Scored(str(cell), 0, "C1", 1, 0.9)  # oof.csv says Uninfected (relabelled)
    ov = tmp_path / "o.csv"
    assert sus.decide(ov, shown, "relabel").decision == "keep"  # back to Parasitized
    assert sus.decide(ov, shown, "keep").decision == "relabel"  # stays Uninfected
    d = sus.decide(ov, shown, "exclude")
    assert (d.decision, d.given_label) == ("exclude", 1)
    plain = sus.Scored(str(cell), 1, "C1", 1, 0.1)
    assert sus.decide(ov, plain, "relabel").decision == "relabel"


def test_flag_needs_both_classes():
    assert len(sus.flag([1, 1, 1], [0.1, 0.2, 0.9])) == 0


# --- real models ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cleanlab_finds_label_flips_planted_in_real_cells_from_real_out_of_fold_probs(
    tmp_path,
):
    """Cells moved to the other class folder (a real label flip), a real 3-fold CV, and
    ``review`` as typed: the flips are flagged far more often than the other cells."""
    cells = copy_cells(tmp_path / "cells", 150, step=3)
    par = sorted((cells / "Parasitized").glob("*.png"))
    unf = sorted((cells / "Uninfected").glob("*.png"))
    flipped = set()
    for f in par[5::25][:4] + unf[7::25][:4]:
        other = "Uninfected" if f.parent.name == "Parasitized" else "Parasitized"
        shutil.move(f, cells / other / f.name)
        flipped.add(str(cells / other / f.name))
    sets = [*TINY, "data.limit=0", "data.image_size=32", "data.batch_size=32"]
    sets += ["train.epochs=20", 'model.name="cellnet"', "model.width=16"]
    args = [a for s in sets for a in ("--set", s)]
    runs = tmp_path / "runs"
    done = _cli("cv", "--folds", "3", "--no-ui", "--plain", "--runs-dir", str(runs),
                "--data", f"folder:{cells}", *args)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (cv,) = runs.iterdir()
    out = _cli("review", str(cv), "--json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    oof = {r["path"] for r in csv.DictReader((cv / cvdir.OOF).read_text().splitlines())}
    planted = flipped & oof  # the ones outside the outer test split
    flagged = {s["path"] for s in found["suspects"]}
    assert len(planted) >= 5
    hit = len(planted & flagged) / len(planted)
    base = len(flagged - planted) / (len(oof) - len(planted))
    assert hit >= 0.6 and hit >= 2 * base, (hit, base, found["n_flagged"])
    top10 = {s["path"] for s in found["suspects"][:10]}
    assert len(planted & top10) >= 2, found["suspects"][:10]
    table = _cli("review", str(cv))
    assert table.returncode == 0 and all(len(ln) <= 80 for ln in table.stdout.splitlines()[:22])


@pytest.mark.slow
def test_a_run_on_an_overlay_learns_the_reviewed_labels_records_the_hash_and_is_honest(
    cells, tmp_path
):
    from malaria_tui.engine import rundir
    from malaria_tui.engine.errors import ConfigError
    from malaria_tui.engine.training import trainer

    parts = _parts(cells)
    tr, va, te = parts["train"], parts["val"], parts["test"]
    ov = tmp_path / "reviewed.csv"
    lo.record(ov, tr[0].path, tr[0].label, "relabel")
    lo.record(ov, tr[1].path, tr[1].label, "exclude")
    lo.record(ov, va[0].path, va[0].label, "relabel")
    lo.record(ov, te[0].path, te[0].label, "relabel")
    lo.record(ov, te[1].path, te[1].label, "exclude")
    sha = hashlib.sha256(ov.read_bytes()).hexdigest()
    sets = [*TINY, "data.limit=0", f'data.label_overrides="{ov}"']
    args = [a for s in sets for a in ("--set", s)]
    out = _cli("--no-ui", "--plain", "--runs-dir", str(tmp_path / "runs"),
               "--data", f"folder:{cells}", *args)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"label overlay {ov.resolve()} (sha256 {sha[:12]})" in out.stdout
    assert "test on the reviewed labels (1 relabelled, 1 excluded of 2 reviewed)" in out.stdout
    (path,) = (tmp_path / "runs").iterdir()
    run = rundir.open_run(path)
    events = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    start = next(e for e in events if e["event"] == "run_started")
    assert start["config"]["data"]["label_overrides_sha256"] == sha  # the hash, on record
    assert start["n_train"] == len(tr) - 1 and start["n_test"] == len(te)
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert metrics["label_overrides"]["sha256"] == sha
    assert metrics["test"]["n"] == len(te)  # original labels, every test cell
    rv = metrics["test_reviewed"]
    assert (rv["n"], rv["n_changed"], rv["relabelled"], rv["excluded"]) == (len(te) - 1, 2, 1, 1)
    preds = list(csv.DictReader((run.eval_dir / "predictions.csv").read_text().splitlines()))
    label_of = {(p["split"], p["path"]): int(p["label"]) for p in preds}
    assert label_of[("val", va[0].path)] == 1 - va[0].label  # val picks on reviewed labels
    assert label_of[("test", te[0].path)] == te[0].label  # test keeps the original ones
    assert label_of[("test", te[1].path)] == te[1].label
    # `evaluate` as typed: the original labels, and the reviewed ones beside them, named
    ev = _cli("evaluate", str(run.path), "--json")
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["n"] == len(te) and res["test_reviewed"]["n_changed"] == 2
    table = _cli("evaluate", str(run.path))
    assert "original labels" in table.stdout and "reviewed labels" in table.stdout
    # no test cell reviewed: no reviewed figures at all
    lo.forget(ov, te[0].path)
    lo.forget(ov, te[1].path)
    res = json.loads(_cli("evaluate", str(run.path), "--json").stdout)
    assert "test_reviewed" not in res and res["n"] == len(te)
    # the overlay changed since the run started: it would not resume on other labels
    with pytest.raises(ConfigError, match="label overlay changed"):
        trainer._same_overlay(run, pipeline.prepare(run.load_config()))
