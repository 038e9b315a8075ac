"""Which cells set the AUC? Each cell's share of ``1 - AUC`` in a finished run's predictions.

    python bench/auc_shortfall.py RUN_DIR [--split val|test] [--top 12] [--montage FILE.png]

Reads ``eval/predictions.csv`` (no model, no TensorFlow). A cell's share is the fraction of all
(positive, negative) pairs that it ranks the wrong way, so the positives' shares add up to the
shortfall, and the share carried by the worst 1, 3 and 10 shows how much a handful of cells
decide. ``--montage`` draws the worst positives (top row) and negatives (bottom row) to look at:
are they label errors? (TFDS runs have no files to draw: their tiles stay blank.)
Use ``--split val`` to diagnose while tuning; ``test`` only reads scores already written.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from _common import predictions

from malaria_tui.engine.evaluation.measures import auc, auc_shares


def montage(rows: list[dict], worst_pos, worst_neg, out: Path, size: int = 96) -> None:
    from PIL import Image, ImageDraw

    cols = max(len(worst_pos), len(worst_neg))
    sheet = Image.new("RGB", (cols * size, 2 * (size + 28)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (tag, idx) in enumerate((("P", worst_pos), ("U", worst_neg))):
        for col, i in enumerate(idx):
            r = rows[i]
            x, y = col * size, row * (size + 28)
            try:
                with Image.open(r["path"]) as im:
                    sheet.paste(im.convert("RGB").resize((size, size), Image.NEAREST), (x, y))
            except OSError:  # a TFDS record ("tfds:val:12") or a moved file
                draw.rectangle((x, y, x + size - 1, y + size - 1), outline="gray")
            draw.text((x + 2, y + size + 2), f"{tag} p={float(r['prob']):.3f}", fill="black")
            draw.text((x + 2, y + size + 14), r["group"][:15], fill="black")
    sheet.save(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--montage", type=Path)
    a = ap.parse_args()
    rows = predictions(a.run, a.split)
    y = np.array([int(r["label"]) for r in rows])
    p = np.array([float(r["prob"]) for r in rows])
    score, shares = auc(y, p), auc_shares(y, p)
    short = 1 - score
    print(
        f"{a.split}: {len(y)} cells ({int(y.sum())} Parasitized), AUC {score:.5f}, "
        f"shortfall {short:.5f}"
    )
    worst = {}
    for label, name in ((1, "Parasitized"), (0, "Uninfected")):
        idx = np.flatnonzero(y == label)
        order = idx[np.argsort(-shares[idx], kind="stable")]
        cum = np.cumsum(shares[order])
        carried = ", ".join(
            f"{k}: {cum[k - 1]:.5f} ({cum[k - 1] / short:.0%})" for k in (1, 3, 10) if k <= len(cum)
        )
        print(f"  worst {name}-labelled cells carry {carried}")
        print(f"    AUC if the worst {name} cell were ranked right: {score + cum[0]:.5f}")
        top = order[: a.top]
        groups = Counter(rows[i]["group"] for i in top)
        print(f"    top {len(top)} by patient: {dict(groups.most_common())}")
        for i in top:
            r = rows[i]
            print(
                f"    p={p[i]:.4f}  share {shares[i]:.5f}  {r['group']:14s} {Path(r['path']).name}"
            )
        worst[label] = top
    if a.montage:
        montage(rows, worst[1], worst[0], a.montage)
        print(f"montage: {a.montage}")


if __name__ == "__main__":
    main()
