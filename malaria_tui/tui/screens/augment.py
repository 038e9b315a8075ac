"""Augment: each augmentation on/off with its strength, and one real cell augmented N times.

The preview calls the engine's own ``augment.preview`` (the same ops training uses), in a
thread, after TensorFlow has loaded; it refreshes once the settings stop changing, or on ``r``.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Static

from malaria_tui.engine.data.records import CLASS_NAMES, sample_root, scan_folder
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.screens.dialogs import CellDialog
from malaria_tui.tui.widgets.cell_table import short_name
from malaria_tui.tui.widgets.cells import CellGrid, CellItem
from malaria_tui.tui.widgets.form import ConfigField

AUGMENTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("rotation", "rotation", [("probability", "probability"), ("max_degrees", "max degrees")]),
    ("flip_horizontal", "flip horiz.", [("probability", "probability")]),
    ("flip_vertical", "flip vert.", [("probability", "probability")]),
    ("contrast", "contrast", [("probability", "probability"), ("strength", "strength")]),
    ("brightness", "brightness", [("probability", "probability"), ("strength", "strength")]),
    ("mixup", "Mix-Up", [("probability", "probability"), ("alpha", "alpha")]),
    ("cutmix", "CutMix", [("probability", "probability"), ("alpha", "alpha")]),
]
DEBOUNCE = 0.3


class AugmentScreen(BaseScreen):
    MODE = "augment"
    CSS_PATH = "augment.tcss"
    AUTO_FOCUS = "#variants"
    BINDINGS = [
        Binding(
            "r",
            "reshuffle",
            "Re-roll",
            id="augment.refresh",
            tooltip="Draw new random augmentations of the same cell",
        ),
        Binding(
            "n",
            "next_cell(1)",
            "Next cell",
            id="augment.next_cell",
            tooltip="Preview the next cell of the training split",
        ),
        Binding(
            "p",
            "next_cell(-1)",
            "Prev cell",
            id="augment.prev_cell",
            tooltip="Preview the previous cell",
            show=False,
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.seed = 0
        self.cell_index = 0
        self.cells: list[tuple[str, int, str]] = []  # path, label, group
        self.variants: list = []
        self.preview_count = 0  # previews shown so far (tests wait on it)
        self._timer: Timer | None = None
        self._preview_key: tuple | None = None  # what the shown (or pending) preview is of
        self._pending = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="body"):
            with VerticalScroll(id="form"):
                yield Static("Augmentation (train split)", classes="section")
                for key, label, params in AUGMENTS:
                    yield ConfigField(f"augment.{key}.enabled", label, boolean=True)
                    for pkey, plabel in params:
                        field = ConfigField(f"augment.{key}.{pkey}", f"  {plabel}")
                        field.add_class("param")
                        yield field
            with Vertical(id="preview"):
                yield Static("", id="preview-title", markup=False)
                yield CellGrid(
                    thumb_width=12, thumb_height=6, id="variants", empty_text="choosing a cell…"
                )

    def on_mount(self) -> None:
        self._pick_cells()

    def on_screen_resume(self) -> None:
        for f in self.query(ConfigField):
            f.sync()
        self.update_status()
        self.schedule_preview()

    def on_tf_ready(self) -> None:
        if self.is_mounted:
            self.schedule_preview(0.0)

    # --- the cell to augment --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="augment-cells", exit_on_error=False)
    def _pick_cells(self) -> None:
        src = self.mapp.config.data.source
        root = src.split(":", 1)[1] if src.startswith("folder:") else str(sample_root())
        try:
            scan = scan_folder(root, check=False)
        except Exception:  # fall back to the bundled sample
            scan = scan_folder(sample_root(), check=False)
        pos = [r for r in scan.records if r.label == 1][:50]
        neg = [r for r in scan.records if r.label == 0][:50]
        cells = [(r.path, r.label, r.group) for pair in zip(pos, neg, strict=False) for r in pair]
        self.app.call_from_thread(self._cells_ready, cells)

    def _cells_ready(self, cells: list[tuple[str, int, str]]) -> None:
        self.cells = cells
        self.schedule_preview(0.0)

    @property
    def cell(self) -> tuple[str, int, str] | None:
        return self.cells[self.cell_index % len(self.cells)] if self.cells else None

    def action_next_cell(self, step: int) -> None:
        if self.cells:
            self.cell_index = (self.cell_index + step) % len(self.cells)
            self.schedule_preview(0.0)

    def action_reshuffle(self) -> None:
        self.seed += 1
        self.schedule_preview(0.0)

    # --- preview ----------------------------------------------------------------------------

    @on(ConfigField.Applied)
    def _applied(self, event: ConfigField.Applied) -> None:
        if not event.error:
            self.schedule_preview()

    def schedule_preview(self, delay: float = DEBOUNCE) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(max(delay, 0.01), self._start_preview)

    def _start_preview(self) -> None:
        self._timer = None
        cell = self.cell
        grid = self.query_one("#variants", CellGrid)
        if cell is None:
            return
        path, label, group = cell
        original = CellItem(
            path,
            "original",
            positive=bool(label),
            info={"label": CLASS_NAMES[label], "patient": group},
        )
        if not self.mapp.tf_ready:
            grid.set_items([original])
            loading = self.mapp.tf_state == "loading"
            why = "preview once TensorFlow is loaded…" if loading else "TensorFlow is unavailable"
            self._set_title(path, label, f"no preview: {why}" if not loading else why)
            return
        n = max(3, grid.columns * grid.visible_rows - 1)
        cfg = self.mapp.config
        key = (path, cfg.augment.model_dump_json(), cfg.data.image_size, n, self.seed)
        if key == self._preview_key:  # on show, unchanged: no TensorFlow work beside training
            return
        self._preview_key = key
        self._set_title(path, label, f"augmenting {n}x…")
        self._preview(path, cfg, n, self.seed, original)

    @work(thread=True, exclusive=True, group="augment-preview", exit_on_error=False)
    def _preview(self, path: str, cfg, n: int, seed: int, original: CellItem) -> None:
        import numpy as np
        from PIL import Image

        from malaria_tui.engine.data.augment import preview

        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
            out = preview(image, cfg.augment, n, seed, cfg.data.image_size)
        except Exception as e:  # shown in the title, the UI keeps going
            self._preview_key = None
            self.app.call_from_thread(
                self._show, original, [], f"preview failed: {type(e).__name__}: {e}"
            )
            return
        self.app.call_from_thread(self._show, original, out, "")

    def _show(self, original: CellItem, variants: list, error: str) -> None:
        self.variants = variants
        self.preview_count += 1
        items = [original] + [
            CellItem(
                f"{original.path}#aug{i}",
                f"#{i + 1}",
                info=dict(original.info, variant=i + 1),
                pixels=v,
            )
            for i, v in enumerate(variants)
        ]
        self.query_one("#variants", CellGrid).set_items(items, keep_selection=True)
        on = [label for key, label, _ in AUGMENTS if getattr(self.mapp.config.augment, key).enabled]
        label = CLASS_NAMES.index(original.info["label"]) if original.info.get("label") else None
        self._set_title(
            original.path,
            label,
            error
            or f"{len(variants)} variants, seed {self.seed}: {', '.join(on) or 'no augmentation'}",
        )

    def _set_title(self, path: str, label: int | None, status: str) -> None:
        """Two lines that fit the preview's width: the cell's file name (cut in its middle,
        both ends kept) with its class, then what the preview shows."""
        title = self.query_one("#preview-title", Static)
        width = title.size.width or max(20, self.app.size.width - 38)
        cls = f" ({CLASS_NAMES[label]})" if label is not None else ""
        name = short_name(path, max(8, width - len(cls)))
        if len(status) > width:  # the augmentations on are listed in the form too
            status = status[: width - 1] + "…"
        title.update(Text(f"{name}{cls}\n{status}", no_wrap=True))

    @on(CellGrid.Opened)
    def _open(self, event: CellGrid.Opened) -> None:
        self.app.push_screen(CellDialog(event.item))

    def palette_commands(self) -> list[PaletteCommand]:
        out: list[PaletteCommand] = [
            (
                "Re-roll augmentation preview",
                "New random draws for the preview",
                self.action_reshuffle,
            ),
            ("Preview next cell", "Augment another cell", lambda: self.action_next_cell(1)),
        ]
        for key, label, _ in AUGMENTS:
            field_id = f"#f-augment-{key}-enabled"
            out.append(
                (
                    f"Toggle {label}",
                    f"Turn augment.{key} on/off",
                    lambda fid=field_id, k=key: self.query_one(fid, ConfigField).set_text(
                        "false" if getattr(self.mapp.config.augment, k).enabled else "true"
                    ),
                )
            )
        return out
