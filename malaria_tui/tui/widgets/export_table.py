"""A DataTable that exports what it shows to CSV with one key (``x``).

The file holds the rows as shown (in their sorted and filtered order, the text of each cell,
headers without sort arrows). It goes to ``export_dir`` when the screen set one (the Runs
screen: the runs folder; HParams: the grid's folder), else into the run the screen shows (a
``run`` attribute), else the current directory; it is written atomically and a notification
says where.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable

from malaria_tui.engine import atomic
from malaria_tui.engine.rundir import RunDir

SORT_ARROWS = (" ▲", " ▼", "▲", "▼")


def plain(cell: Any) -> str:
    """A cell's text as the table shows it (Rich ``Text``, Textual ``Content`` or a value)."""
    if isinstance(cell, Text | Content):
        return cell.plain
    return "" if cell is None else str(cell)


def _header(label: Any, key: str | None) -> str:
    text = plain(label).strip()
    for arrow in SORT_ARROWS:
        text = text.removesuffix(arrow)
    return text.strip() or (key or "").strip("_")


class ExportTable(DataTable):
    BINDINGS = [
        Binding(
            "x",
            "export_csv",
            "Export CSV",
            id="table.export_csv",
            tooltip="Write the rows shown (sorted and filtered as here) to a CSV file",
        )
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.export_dir: Path | None = None  # where the CSV goes (see the module docstring)
        self.export_name = ""  # its name's start; the table's id when empty

    def export_rows(self) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) as shown: column order, row order, each cell's text."""
        columns = self.ordered_columns
        headers = [_header(c.label, c.key.value) for c in columns]
        rows = []
        for row in self.ordered_rows:
            cells = self.get_row(row.key)
            rows.append([plain(c) for c in cells])
        return headers, rows

    def export_target(self) -> Path:
        """The file the next export writes."""
        folder = self.export_dir
        if folder is None:
            run = getattr(self.screen, "run", None)
            folder = run.path if isinstance(run, RunDir) else Path.cwd()
        name = self.export_name or self.id or "table"
        return Path(folder) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.csv"

    def export_csv(self, path: Path | None = None) -> Path:
        """Write the rows shown to ``path`` (default :meth:`export_target`), atomically."""
        path = path or self.export_target()
        headers, rows = self.export_rows()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        atomic.write_text(path, buf.getvalue())
        return path

    def action_export_csv(self) -> None:
        if not self.row_count:
            self.notify("Nothing to export: the table is empty", severity="warning")
            return
        try:
            path = self.export_csv()
        except OSError as e:
            self.notify(f"Cannot export: {e}", severity="error", timeout=10)
            return
        n = self.row_count
        self.notify(f"Exported {n} row{'s' if n != 1 else ''} to {path}", timeout=8)
