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
        f"model {model.source} ({model.kind}, {model.image_size}px); threshold {threshold:.3f}{' with TTA' if tta else ''}"
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
