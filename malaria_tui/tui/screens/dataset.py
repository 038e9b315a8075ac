"""Dataset: where the images come from, class/split/patient counts and a gallery of real cells."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static
from textual.worker import get_current_worker

from malaria_tui.engine.data.records import CLASS_NAMES
from malaria_tui.tui.datasource import DatasetInfo, load_info
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.screens.dialogs import CellDialog
from malaria_tui.tui.widgets.cells import CellGrid, CellItem

CLASS_FILTERS = ("all", "Parasitized", "Uninfected")
SPLIT_FILTERS = ("all", "train", "val", "test")


class DatasetScreen(BaseScreen):
    MODE = "dataset"
    CSS_PATH = "dataset.tcss"
    AUTO_FOCUS = "#cells"
    BINDINGS = [
        Binding("c", "cycle_class", "Class", id="dataset.class_filter", tooltip="Filter by class"),
        Binding("s", "cycle_split", "Split", id="dataset.split_filter", tooltip="Filter by split"),
        Binding(
            "o",
            "open_cell",
            "Open",
            id="dataset.open",
            tooltip="Open the selected cell large, with its file name, label and patient",
            show=False,
        ),
        Binding("r", "reload", "Reload", id="dataset.reload", tooltip="Read the data source again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.info: DatasetInfo | None = None
        self.class_filter = "all"
        self.split_filter = "all"
        self._loaded_source: tuple | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="body"):
            with VerticalScroll(id="summary"):
                yield Static("Reading the data source…", id="summary-text")
            with Vertical(id="gallery"):
                yield Static("", id="filters", markup=False)
                yield CellGrid(id="cells", empty_text="no images for this filter")

    def on_mount(self) -> None:
        self.action_reload()

    def on_screen_resume(self) -> None:
        key = self._source_key()
        if self._loaded_source is not None and key != self._loaded_source:
            self.action_reload()
        self.update_status()

    def _source_key(self) -> tuple:
        d = self.mapp.config.data
        return (d.source, d.split, tuple(d.fractions), self.mapp.config.seed, d.limit)

    # --- loading ---------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._loaded_source = self._source_key()
        self.query_one("#summary-text", Static).update(f"Reading {self.mapp.config.data.source}…")
        self._load(self.mapp.config)

    @work(thread=True, exclusive=True, group="dataset", exit_on_error=False)
    def _load(self, config) -> None:
        info = load_info(config)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._loaded, info)

    def _loaded(self, info: DatasetInfo) -> None:
        self.info = info
        self.query_one("#summary-text", Static).update(self._summary(info))
        self._apply_filter()

    # --- summary ---------------------------------------------------------------------------

    def _summary(self, info: DatasetInfo) -> Group | Text:
        head = Text()
        head.append("Source ", style="bold")
        head.append(info.spec)
        if info.root:
            root = info.root
            if info.kind == "sample":
                root = "bundled sample (package data)"
            head.append(f"\n{root}", style="dim")
        if info.error:
            head.append(f"\n\n{info.error}", style="bold red")
            return head
        if not info.records:
            head.append(f"\n\n{info.note}")
            return head
        cc = info.class_counts
        sc = info.split_counts()
        gps = info.groups_per_split()
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), expand=False)
        t.add_column("split")
        t.add_column("Para", justify="right")
        t.add_column("Uninf", justify="right")
        t.add_column("pat.", justify="right")
        for s in ("train", "val", "test"):
            t.add_row(
                s, str(sc[s][1]), str(sc[s][0]), str(gps[s]) if info.mode == "patient" else "-"
            )
        t.add_row(
            Text("total", style="bold"),
            str(cc[1]),
            str(cc[0]),
            str(info.n_groups) if info.groups_known else "-",
        )
        lines = Text()
        lines.append(f"{len(info.records)} images", style="bold")
        lines.append(f" ({cc[1]} Parasitized, {cc[0]} Uninfected)")
        if info.skipped:
            lines.append(f"\n{info.skipped} files skipped (unreadable)", style="yellow")
        lines.append("\nsplit by ", style="")
        lines.append(info.mode, style="bold")
        lines.append(" (data.split = " + self.mapp.config.data.split + ")", style="dim")
        if info.groups_known:
            lines.append(f"\n{info.n_groups} patient groups (slides)")
        else:
            lines.append("\nno patient keys in file names")
        if info.sizes:
            s = info.sizes
            mn, mx, md = s["min"], s["max"], s["median"]
            if mn == mx:
                lines.append(f"\nimages {mn[0]}x{mn[1]} px")
            else:
                lines.append(
                    f"\nimages {mn[0]}x{mn[1]} to {mx[0]}x{mx[1]} px (median {md[0]}x{md[1]})"
                )
            lines.append(f" -> model input {self.mapp.config.data.image_size} px", style="dim")
        parts: list = [head, Text(""), lines, t]
        if info.note:
            parts.append(Text(info.note, style="dim"))
        return Group(*parts)

    # --- gallery -------------------------------------------------------------------------

    def _apply_filter(self) -> None:
        info = self.info
        items: list[CellItem] = []
        if info is not None:
            # Alternate the classes so an unfiltered gallery shows both side by side.
            by_class = [[r for r in info.records if r.label == c] for c in (1, 0)]
            mixed = [r for pair in zip(*by_class, strict=False) for r in pair]
            n = min(len(b) for b in by_class)
            mixed += by_class[0][n:] + by_class[1][n:]
            for r in mixed:
                split = info.split_of.get(r.path, "")
                if self.class_filter != "all" and CLASS_NAMES[r.label] != self.class_filter:
                    continue
                if self.split_filter != "all" and split != self.split_filter:
                    continue
                items.append(
                    CellItem(
                        r.path,
                        f"{'P' if r.label else 'U'} {split[:5]} {r.group[:5]}",
                        positive=bool(r.label),
                        info={
                            "label": CLASS_NAMES[r.label],
                            "patient": r.group if not r.group.startswith("file:") else "unknown",
                            "split": split or "-",
                            "folder": str(Path(r.path).parent),
                        },
                    )
                )
        grid = self.query_one("#cells", CellGrid)
        grid.set_items(items)
        total = len(info.records) if info else 0
        self.query_one("#filters", Static).update(
            f"class {self.class_filter} · split {self.split_filter} · {len(items)} of {total} cells"
        )

    @property
    def shown(self) -> list[CellItem]:
        return self.query_one("#cells", CellGrid).items

    def action_cycle_class(self) -> None:
        i = CLASS_FILTERS.index(self.class_filter)
        self.set_filter(class_=CLASS_FILTERS[(i + 1) % len(CLASS_FILTERS)])

    def action_cycle_split(self) -> None:
        i = SPLIT_FILTERS.index(self.split_filter)
        self.set_filter(split=SPLIT_FILTERS[(i + 1) % len(SPLIT_FILTERS)])

    def set_filter(self, class_: str | None = None, split: str | None = None) -> None:
        if class_ is not None:
            self.class_filter = class_
        if split is not None:
            self.split_filter = split
        self._apply_filter()

    def action_open_cell(self) -> None:
        self.query_one("#cells", CellGrid).action_open()

    @on(CellGrid.Opened)
    def _open(self, event: CellGrid.Opened) -> None:
        self.app.push_screen(CellDialog(event.item))

    def palette_commands(self) -> list[PaletteCommand]:
        out: list[PaletteCommand] = []
        for c in CLASS_FILTERS:
            out.append(
                (
                    f"Show class: {c}",
                    "Filter the gallery by class",
                    lambda c=c: self.set_filter(class_=c),
                )
            )
        for s in SPLIT_FILTERS:
            out.append(
                (
                    f"Show split: {s}",
                    "Filter the gallery by split",
                    lambda s=s: self.set_filter(split=s),
                )
            )
        out.append(("Reload dataset", "Re-read the data source", self.action_reload))
        return out
