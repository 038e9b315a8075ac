"""Per-cell prediction results as a table: file, P(parasitized) and label, sortable.

It shows ``CellResult`` rows (``engine.inference.diagnose``) in a chosen order, most suspicious
first by default, and keeps the highlighted cell across re-sorts and relabelling.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from malaria_tui.tui.widgets.export_table import ExportTable

SORTS = {  # column key -> (header, sort key of a CellResult, largest first by default)
    "file": ("file", lambda c: Path(c.path).name.lower(), False),
    "prob": ("P(parasitized)", lambda c: c.prob, True),
    "label": ("label", lambda c: (c.label, c.prob), True),
}
NARROW = 110  # terminal columns below which the table and its neighbours use short forms


def short_name(path: str, width: int = 28) -> str:
    """A file name cut in its middle to ``width`` characters (both ends say the most), as
    ``malaria-tui predict`` prints it."""
    from malaria_tui.engine.inference.diagnose import short_paths

    return short_paths([path], width)[path]


class CellTable(ExportTable):
    """The cells of one prediction; ``selected`` is the index (in ``cells``) highlighted."""

    class Highlighted(Message):
        """Another cell is highlighted (``index`` into ``CellTable.cells``)."""

        def __init__(self, table: CellTable, index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

        @property
        def control(self) -> CellTable:
            return self.table

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.cells: list = []
        self.order: list[int] = []  # row i shows cells[order[i]]
        self.selected: int | None = None
        self.sort_key = "prob"
        self.sort_reverse = True
        self._layout: tuple = ()

    @property
    def narrow(self) -> bool:
        return self.app.size.width < NARROW

    @property
    def sorted_cells(self) -> list:
        return [self.cells[i] for i in self.order]

    def show(self, cells: list) -> None:
        """Fill the table with ``cells``; the highlighted index stays when it still exists
        (the caller shows the highlighted cell: only a move by the user posts Highlighted)."""
        self.cells = list(cells)
        if self.selected is not None and self.selected >= len(self.cells):
            self.selected = None
        self._fill()

    def relabel(self, cells: list) -> None:
        """The same cells with new labels: only the label cells that changed are rewritten."""
        old, self.cells = self.cells, list(cells)
        if self.sort_key == "label":
            self._fill()
            return
        for i, (a, b) in enumerate(zip(old, self.cells, strict=True)):
            if a.label != b.label:
                self.update_cell(str(i), "label", self._label(b.label))

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        if key not in SORTS:
            return
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else SORTS[key][2]
        self.sort_key, self.sort_reverse = key, reverse
        self._fill()

    def cycle_sort(self) -> None:
        keys = list(SORTS)
        self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)])

    def on_resize(self) -> None:
        if self._layout != (self.narrow, self._name_width()):
            self._fill()

    def _name_width(self) -> int:
        """Characters of file name that fit beside the probability and label columns."""
        width = self.size.width or self.app.size.width - 46
        label_w, prob_w = (6, 9) if self.narrow else (11, 16)
        return max(10, min(48, width - label_w - prob_w - 2 * 3 - 4))  # 4: the scrollbar

    def _label(self, label: str) -> Text:
        pos = label == "Parasitized"
        text = ("Para." if pos else "Uninf.") if self.narrow else label
        return Text(text, style="bold red" if pos else "green")

    def _fill(self) -> None:
        self._layout = (self.narrow, self._name_width())
        keep = self.selected
        _, key, _ = SORTS[self.sort_key]
        self.order = sorted(
            range(len(self.cells)), key=lambda i: key(self.cells[i]), reverse=self.sort_reverse
        )
        self.clear(columns=True)
        for col_key, (header, _, _) in SORTS.items():
            if self.narrow and col_key == "prob":
                header = "P(para.)"
            arrow = ""
            if col_key == self.sort_key:
                arrow = " ▼" if self.sort_reverse else " ▲"
            width = self._layout[1] if col_key == "file" else None
            self.add_column(Text(header + arrow), key=col_key, width=width)
        for i in self.order:
            c = self.cells[i]
            self.add_row(
                Text(short_name(c.path, self._layout[1])),
                Text(f"{c.prob:.4f}", justify="right"),
                self._label(c.label),
                key=str(i),
            )
        if self.order:
            row = self.order.index(keep) if keep in self.order else 0
            self.move_cursor(row=row)
            self.selected = self.order[row]

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is None or event.row_key.value is None:
            return
        i = int(event.row_key.value)
        if i != self.selected:
            self.selected = i
            self.post_message(self.Highlighted(self, i))
