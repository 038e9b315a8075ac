"""What a data source holds and how a run would split it: classes, splits, patients, image sizes.

One description serves ``malaria-tui data`` (its JSON is :meth:`SourceDescription.to_dict`) and
the TUI's Dataset screen. Folder sources (and the bundled sample) are described without
TensorFlow, with the very split a run trains on (:func:`splits.for_training`); a TFDS source is
counted only when ``open_tfds`` allows TensorFlow to read it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from malaria_tui.engine.config import Config
from malaria_tui.engine.data import label_overlay, splits
from malaria_tui.engine.data import records as rec


@dataclass(frozen=True)
class ImageSizes:
    """Pixel sizes and Pillow modes of the images probed (all of them, or an even sample)."""

    probed: int
    width: tuple[int, float, int]  # min, median, max
    height: tuple[int, float, int]
    modes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        def stats(v: tuple[int, float, int]) -> dict[str, float]:
            return {"min": v[0], "median": v[1], "max": v[2]}

        return {"width": stats(self.width), "height": stats(self.height), "modes": self.modes}


@dataclass(frozen=True)
class SourceDescription:
    source: str  # the data.source spec as given
    kind: str  # sample | folder | tfds
    root: str  # the folder read ("" for TFDS in its default folder)
    split: str  # patient | image ("" for a TFDS source not opened)
    fractions: list[float]
    seed: int
    counts: dict[str, dict[str, int]]  # per split, as training reports them (splits.counts)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) not readable
    records: list[rec.Record] = field(default_factory=list)  # every image found, before limit
    parts: splits.Splits = field(default_factory=dict)  # the run's splits (data.limit applied)
    groups_known: bool = False
    sizes: ImageSizes | None = None
    overlay: label_overlay.Effect | None = None  # what data.label_overrides changes, per split

    @property
    def found(self) -> dict[str, int]:
        """``Parasitized``, ``Uninfected``, ``total`` and ``groups`` of every image found."""
        return splits.counts({"all": self.records})["all"]

    @property
    def split_of(self) -> dict[str, str]:
        """Image path -> the split a run puts it in (absent: left out by ``data.limit``)."""
        return {r.path: s for s, rs in self.parts.items() for r in rs}

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``malaria-tui data``."""
        out: dict[str, Any] = {
            "source": self.source,
            "split": self.split,
            "fractions": list(self.fractions),
            "seed": self.seed,
            "counts": self.counts,
            "skipped": [{"path": p, "why": w} for p, w in self.skipped],
            "total": sum(c["total"] for c in self.counts.values()),
        }
        if self.parts:
            out["groups"] = len({r.group for rs in self.parts.values() for r in rs})
        if self.sizes is not None:
            out["sizes"] = self.sizes.to_dict()
        if self.overlay is not None:
            out["label_overrides"] = self.overlay.to_dict()
        return out


def image_sizes(records: list[rec.Record], probe: int | None = None) -> ImageSizes | None:
    """Sizes from the image headers of all ``records``, or of an even sample of about ``probe``."""
    from PIL import Image

    step = max(1, len(records) // probe) if probe else 1
    ws: list[int] = []
    hs: list[int] = []
    modes: dict[str, int] = {}
    for r in records[::step]:
        try:
            with Image.open(r.path) as im:  # reads the header only
                ws.append(im.width)
                hs.append(im.height)
                modes[im.mode] = modes.get(im.mode, 0) + 1
        except Exception:  # an unreadable file is reported by the scan, not here
            continue
    if not ws:
        return None
    return ImageSizes(
        probed=len(ws),
        width=(min(ws), statistics.median(ws), max(ws)),
        height=(min(hs), statistics.median(hs), max(hs)),
        modes=modes,
    )


def describe_source(
    config: Config,
    *,
    check_images: bool = True,
    size_probe: int | None = None,
    open_tfds: bool = True,
) -> SourceDescription:
    """The source of ``config.data`` and the split a run of ``config`` would train on.

    ``check_images`` decodes every image to find unreadable ones (as training does); without
    it only the file names are read. Raises ``DataError`` for a source that cannot be used.
    """
    d = config.data
    kind, root = rec.locate(d.source)

    def description(
        split: str, counts: dict[str, dict[str, int]], **more: Any
    ) -> SourceDescription:
        return SourceDescription(
            d.source, kind, root, split, list(d.fractions), config.seed, counts, **more
        )

    if kind == "tfds":
        if not open_tfds:
            return description("", {})
        from malaria_tui.engine.data import pipeline

        prepared = pipeline.prepare(config)
        return description(prepared.split_mode, prepared.counts)
    scan = rec.scan_folder(root, check=check_images)
    plan = splits.for_training(scan.records, scan.groups_known, d, config.seed)
    # the labels a run would see: the overlay applied after the split, test untouched
    parts, overlay = label_overlay.for_splits(plan.parts, d.label_overrides)
    return description(
        plan.mode,
        splits.counts(parts),
        skipped=scan.skipped,
        records=scan.records,
        parts=parts,
        groups_known=scan.groups_known,
        sizes=image_sizes(plan.records, size_probe),
        overlay=overlay,
    )


def describe(config: Config) -> dict[str, Any]:
    """``malaria-tui data``: the full description (every image decoded) as its JSON."""
    return describe_source(config).to_dict()
