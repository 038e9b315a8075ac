"""Rich tables for the headless `evaluate`, `data` and `predict` commands."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_evaluation(r: dict) -> None:
    c = Console()
    c.print(f"[bold]{r['run']}[/] on {r['data']}: {r['n']} images")
    t = Table(
        "metric",
        f"@ {r['threshold']:.3f}",
        *[f"{k} @ {v['threshold']:.3f}" for k, v in r["at"].items()],
    )
    for key in ("accuracy", "auc", "sensitivity", "specificity", "precision", "npv", "f1"):
        t.add_row(key, f"{r[key]:.4f}", *[f"{v[key]:.4f}" for v in r["at"].values()])
    c.print(t)
    cm = Table(
        "actual \\ predicted",
        "Parasitized",
        "Uninfected",
        title=f"confusion @ {r['threshold']:.3f}",
    )
    cm.add_row("Parasitized", str(r["tp"]), str(r["fn"]))
    cm.add_row("Uninfected", str(r["fp"]), str(r["tn"]))
    c.print(cm)
    if "patients" in r:
        pl = r["patients"]
        c.print(
            f"patients: {pl['patients']}, mean per-patient accuracy {pl['mean_accuracy']:.4f}, "
            f"worst {pl['worst_accuracy']:.4f} ({pl['rows'][0]['group']})"
        )
    if "test_reviewed" in r:
        _print_reviewed(c, r)


def _print_reviewed(c: Console, r: dict) -> None:
    """The honesty rule: the test split on its original labels (above) and, beside, on the
    reviewed labels of the label overlay, named as such."""
    rv = r["test_reviewed"]
    t = Table(
        "metric",
        f"original labels @ {r['threshold']:.3f}",
        f"reviewed labels @ {rv['threshold']:.3f}",
        title=(
            f"{rv['reviewed']} test cells reviewed: {rv['relabelled']} relabelled, "
            f"{rv['excluded']} excluded"
        ),
    )
    for key in ("n", "accuracy", "auc", "sensitivity", "specificity"):
        fmt = (lambda v: str(v)) if key == "n" else (lambda v: f"{v:.4f}")
        t.add_row(key, fmt(r[key]), fmt(rv[key]))
    c.print(t)


def print_cv_evaluation(r: dict) -> None:
    """The fold ensemble and every fold model side by side, in 80 columns: accuracy, AUC,
    sensitivity and specificity at ``r['threshold']`` (0.5) and at each model's chosen one."""
    from rich import box

    c = Console()
    op = r["operating_point"]
    tta = " with TTA" if r["tta"] else ""
    c.print(f"[bold]{r['cv']}[/] on {r['data']}: {r['n']} images{tta}", highlight=False)
    t = Table(
        "model",
        "acc",
        "AUC",
        "sens",
        "spec",
        "thr*",
        "acc*",
        "sens*",
        "spec*",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title=f"@ {r['threshold']:.3f} | * @ the model's {op} threshold",
    )
    for row in r["models"]:
        at = row["chosen"]
        name = "[bold]ensemble[/]" if "members" in row else row["model"]
        t.add_row(
            name,
            *(f"{row[k]:.4f}" for k in ("accuracy", "auc", "sensitivity", "specificity")),
            f"{at['threshold']:.3f}",
            *(f"{at[k]:.4f}" for k in ("accuracy", "sensitivity", "specificity")),
        )
    c.print(t)
    how = (
        "scored by running the fold models"
        if r["scored_from"] == "models"
        else f"read from {r['scored_from']}"
    )
    c.print(
        "* ensemble (mean of the folds): threshold chosen on the out-of-fold probabilities; "
        f"each fold: on its own validation part. Probabilities {how}.",
        highlight=False,
    )


def _sizes(s: dict) -> str:
    """``50x50 px, 1500 grayscale`` or ``width 40-130 (median 85) px, ...``: short and exact."""
    w, h = s["width"], s["height"]
    if w["min"] == w["max"] and h["min"] == h["max"]:
        size = f"{w['min']}x{h['min']} px"
    else:
        size = ", ".join(
            f"{name} {d['min']}-{d['max']} (median {d['median']:g})"
            for name, d in (("width", w), ("height", h))
        )
    kinds = ", ".join(f"{n} {_MODE_NAMES.get(m, m)}" for m, n in s["modes"].items())
    return f"{size}; {kinds}"


_MODE_NAMES = {"L": "grayscale", "RGB": "colour", "RGBA": "colour with alpha", "P": "palette"}


def print_data(info: dict) -> None:
    c = Console()
    c.print(
        f"[bold]{info['source']}[/]: {info['total']} images, split by {info['split']} {info['fractions']} (seed {info['seed']})"
    )
    t = Table("split", "Parasitized", "Uninfected", "total", "patients")
    for split, n in info["counts"].items():
        t.add_row(
            split,
            str(n["Parasitized"]),
            str(n["Uninfected"]),
            str(n["total"]),
            str(n.get("groups", "-")),
        )
    c.print(t)
    if "groups" in info:
        c.print(f"patient groups: {info['groups']}; {_sizes(info['sizes'])}", highlight=False)
    if info["skipped"]:
        c.print(
            f"[yellow]skipped {len(info['skipped'])} unreadable file(s)[/], e.g. {info['skipped'][0]['path']}: {info['skipped'][0]['why']}"
        )
    if "label_overrides" in info:
        _print_overlay(c, info["label_overrides"])


def _print_overlay(c: Console, o: dict) -> None:
    """What a label overlay changes, split by split (the counts above already include it)."""
    c.print(
        f"label overlay {o['path']}: {o['rows']} decisions, sha256 {o['sha256'][:12]}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for split, ch in o["changes"].items():
        if not ch["reviewed"]:
            continue
        if split in o["applied_to"]:
            what = (
                f"{ch['relabelled']} relabelled ({ch['to_parasitized']} to Parasitized, "
                f"{ch['to_uninfected']} to Uninfected), {ch['excluded']} excluded"
            )
        else:
            what = f"{ch['reviewed']} reviewed, not applied (original labels; scored on both)"
        c.print(f"  {split}: {what}", highlight=False)
    if o["outside"]:
        c.print(f"  {o['outside']} decisions about images this run does not use", highlight=False)


def print_predictions(
    cells, folders, bad, threshold, model, fmt: str = "table", tta: bool = False
) -> None:
    import csv
    import json
    import sys
    from dataclasses import asdict

    if fmt == "json":
        out = {
            "model": model.source,
            "threshold": threshold,
            "tta": tta,
            "cells": [asdict(c) for c in cells],
            "folders": [asdict(f) for f in folders],
            "unreadable": [{"path": p, "why": w} for p, w in bad],
        }
        print(json.dumps(out, indent=2))
        return
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(["path", "prob_parasitized", "label"])
        for c in cells:
            w.writerow([c.path, f"{c.prob:.6f}", c.label])
        for p, why in bad:
            w.writerow([p, "", f"unreadable: {why}"])
        return
    from malaria_tui.engine.inference.diagnose import short_paths

    c = Console()
    names = short_paths([r.path for r in cells], width=max(20, c.width - 40))
    folder_names = short_paths([f.folder for f in folders], width=max(12, c.width - 60))
    c.print(
        f"model {model.source} ({model.kind}{f', mean of {len(model.members)} folds' if getattr(model, 'members', ()) else ''}, "
        f"{model.image_size}px); threshold {threshold:.3f}{' with TTA' if tta else ''}"
    )
    shown = sorted(cells, key=lambda r: -r.prob)[:20]
    t = Table(
        "image",
        "P(parasitized)",
        "label",
        title=f"{len(cells)} cells (most suspicious first{', first 20' if len(cells) > 20 else ''})",
    )
    for r in shown:
        t.add_row(
            names[r.path],
            f"{r.prob:.3f}",
            f"[red]{r.label}[/]" if r.label == "Parasitized" else r.label,
        )
    c.print(t)
    s = Table("folder", "cells", "parasitized", "parasitemia", "95% CI", title="per folder")
    for f in folders:
        s.add_row(
            folder_names[f.folder],
            str(f.cells),
            str(f.parasitized),
            f"{f.parasitemia:.1f}%",
            f"{f.ci_low:.1f}-{f.ci_high:.1f}%",
        )
    c.print(s)
    if bad:
        c.print(f"[yellow]{len(bad)} unreadable file(s):[/]")
        for p, why in bad:
            c.print(f"  {p}: {why}", markup=False)
    if len(cells) > 20:
        c.print("all cells: add --csv or --json")
