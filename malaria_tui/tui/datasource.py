"""The Dataset screen's view of ``data.source``: the engine's description, in the screen's terms.

The description (what the source holds, and the split a run will train on) is
:func:`malaria_tui.engine.data.describe.describe_source`, read without TensorFlow: file names
only (no full decode) and the sizes of a few hundred images, so the screen opens quickly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from malaria_tui.engine.config import Config
from malaria_tui.engine.data import describe
from malaria_tui.engine.data import records as rec
from malaria_tui.engine.data.splits import SPLITS
from malaria_tui.engine.errors import UserError

MAX_SIZE_PROBES = 400
TFDS_NOTE = (
    "TFDS `malaria` (27,558 cells) is read by tensorflow-datasets when training "
    "starts; its images are not previewed here. Use `sample` or `folder:PATH` to browse."
)


@dataclass
class DatasetInfo:
    spec: str
    kind: str
    root: str = ""
    described: describe.SourceDescription | None = None
    split_of: dict[str, str] = field(default_factory=dict)
    note: str = ""
    error: str = ""

    @property
    def records(self) -> list[rec.Record]:
        return self.described.records if self.described else []

    @property
    def mode(self) -> str:
        return self.described.split if self.described else ""

    @property
    def skipped(self) -> int:
        return len(self.described.skipped) if self.described else 0

    @property
    def groups_known(self) -> bool:
        return self.described.groups_known if self.described else False

    @property
    def sizes(self) -> dict[str, object]:
        s = self.described.sizes if self.described else None
        if s is None:
            return {}
        return {
            "probed": s.probed,
            "min": (s.width[0], s.height[0]),
            "max": (s.width[2], s.height[2]),
            "median": (int(s.width[1]), int(s.height[1])),
        }

    @property
    def class_counts(self) -> Counter[int]:
        found = self.described.found if self.described else {}
        return Counter({1: found.get("Parasitized", 0), 0: found.get("Uninfected", 0)})

    def split_counts(self) -> dict[str, Counter[int]]:
        counts = self.described.counts if self.described else {}
        out = {}
        for s in SPLITS:
            c = counts.get(s, {})
            out[s] = Counter({1: c.get("Parasitized", 0), 0: c.get("Uninfected", 0)})
        return out

    def groups_per_split(self) -> dict[str, int]:
        counts = self.described.counts if self.described else {}
        return {s: counts.get(s, {}).get("groups", 0) for s in SPLITS}

    @property
    def n_groups(self) -> int:
        return self.described.found["groups"] if self.described else 0


def load_info(config: Config) -> DatasetInfo:
    """Everything about the configured source; a user error is returned in ``.error``."""
    spec = config.data.source
    try:
        kind, root = rec.locate(spec)
    except UserError as e:
        return DatasetInfo(spec, "?", error=str(e))
    if kind == "tfds":
        return DatasetInfo(spec, kind, root=root, note=TFDS_NOTE)
    try:
        d = describe.describe_source(
            config, check_images=False, size_probe=MAX_SIZE_PROBES, open_tfds=False
        )
    except UserError as e:
        return DatasetInfo(spec, kind, root=root, error=str(e))
    note = ""
    if config.data.limit:
        note = f"data.limit = {config.data.limit}: training uses only that many of these images."
    return DatasetInfo(spec, kind, root=root, described=d, split_of=d.split_of, note=note)
