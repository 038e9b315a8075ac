"""What a data source holds: classes, splits, patients and image sizes (``malaria-tui data``)."""

from __future__ import annotations

import statistics

from malaria_tui.engine.data import pipeline


def _sizes(paths: list[str]) -> dict:
    from PIL import Image

    ws, hs, modes = [], [], {}
    for p in paths:
        with Image.open(p) as im:
            ws.append(im.width)
            hs.append(im.height)
            modes[im.mode] = modes.get(im.mode, 0) + 1
    return {
        "width": {"min": min(ws), "median": statistics.median(ws), "max": max(ws)},
        "height": {"min": min(hs), "median": statistics.median(hs), "max": max(hs)},
        "modes": modes,
    }


def describe(config) -> dict:
    prepared = pipeline.prepare(config)
    info = {
        "source": config.data.source,
        "split": prepared.split_mode,
        "fractions": list(config.data.fractions),
        "seed": config.seed,
        "counts": prepared.counts,
        "skipped": [{"path": p, "why": w} for p, w in prepared.skipped],
    }
    if prepared.split_records:
        records = [r for rs in prepared.split_records.values() for r in rs]
        info["total"] = len(records)
        info["groups"] = len({r.group for r in records})
        info["sizes"] = _sizes([r.path for r in records])
    else:
        info["total"] = sum(c["total"] for c in prepared.counts.values())
    return info
