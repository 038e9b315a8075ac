"""What the Dataset screen shows about ``data.source``: records, splits, groups, sizes.

No TensorFlow: folder-backed sources are listed with :mod:`malaria_tui.engine.data.records`
and split with the engine's own seeded :mod:`~malaria_tui.engine.data.splits`, so the splits
shown here are the ones training will use.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from malaria_tui.engine.config import Config
from malaria_tui.engine.data import records as rec
from malaria_tui.engine.data import splits as spl
from malaria_tui.engine.errors import UserError

MAX_SIZE_PROBES = 400


@dataclass
class DatasetInfo:
    spec: str
    kind: str
    root: str = ""
    records: list[rec.Record] = field(default_factory=list)
    split_of: dict[str, str] = field(default_factory=dict)
    mode: str = ""
    skipped: int = 0
    groups_known: bool = False
    sizes: dict[str, object] = field(default_factory=dict)
    note: str = ""
    error: str = ""

    @property
    def class_counts(self) -> Counter:
        return Counter(r.label for r in self.records)

    def split_counts(self) -> dict[str, Counter]:
        out = {s: Counter() for s in spl.SPLITS}
        for r in self.records:
            s = self.split_of.get(r.path)
            if s:
                out[s][r.label] += 1
        return out

    def groups_per_split(self) -> dict[str, int]:
        out: dict[str, set] = {s: set() for s in spl.SPLITS}
        for r in self.records:
            s = self.split_of.get(r.path)
            if s:
                out[s].add(r.group)
        return {s: len(g) for s, g in out.items()}

    @property
    def n_groups(self) -> int:
        return len({r.group for r in self.records})


def _sizes(records: list[rec.Record]) -> dict[str, object]:
    from PIL import Image

    step = max(1, len(records) // MAX_SIZE_PROBES)
    ws, hs = [], []
    for r in records[::step]:
        try:
            with Image.open(r.path) as im:  # reads the header only
                ws.append(im.width)
                hs.append(im.height)
        except Exception:  # noqa: BLE001,S112 - unreadable files are counted elsewhere
            continue
    if not ws:
        return {}
    return {
        "probed": len(ws),
        "min": (min(ws), min(hs)),
        "max": (max(ws), max(hs)),
        "median": (int(statistics.median(ws)), int(statistics.median(hs))),
    }


def load_info(config: Config) -> DatasetInfo:
    """Everything about the configured source; a user error is returned in ``.error``."""
    spec = config.data.source
    try:
        kind, arg = rec.parse_spec(spec)
    except UserError as e:
        return DatasetInfo(spec, "?", error=str(e))
    if kind == "tfds":
        return DatasetInfo(
            spec,
            kind,
            root=arg or "",
            note=(
                "TFDS `malaria` (27,558 cells) is read by tensorflow-datasets when training "
                "starts; its images are not previewed here. Use `sample` or `folder:PATH` to browse."
            ),
        )
    root = str(rec.sample_root()) if kind == "sample" else str(arg)
    try:
        scan = rec.scan_folder(root, check=False)
        mode = spl.resolve_mode(
            config.data.split, scan.groups_known, len({r.group for r in scan.records})
        )
        parts = spl.split_records(scan.records, config.data.fractions, config.seed, mode)
    except UserError as e:
        return DatasetInfo(spec, kind, root=root, error=str(e))
    split_of = {r.path: s for s, rs in parts.items() for r in rs}
    info = DatasetInfo(
        spec,
        kind,
        root=root,
        records=scan.records,
        split_of=split_of,
        mode=mode,
        skipped=len(scan.skipped),
        groups_known=scan.groups_known,
    )
    info.sizes = _sizes(scan.records)
    if config.data.limit:
        info.note = (
            f"data.limit = {config.data.limit}: training uses only that many of these images."
        )
    return info
