"""What a prediction found per folder: parasitemia with its 95% Wilson interval, at a threshold.

Also the threshold itself (and whether it is still the model's own), the cell count, and the
files that could not be read.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from malaria_tui.tui.widgets.cell_table import short_name


class FolderSummary(Static):
    def show(
        self,
        *,
        threshold: float | None,
        model_threshold: float | None,
        cells: list,
        folders: list,
        unreadable: list[tuple[str, str]],
        tta: bool,
        narrow: bool,
    ) -> None:
        """``cells`` are ``CellResult`` and ``folders`` ``FolderSummary`` rows of
        ``engine.inference.diagnose``, both labelled at ``threshold``."""
        parts: list = []
        head = Text()
        if threshold is None:
            head.append("threshold: the model's operating point", style="dim")
        else:
            head.append(f" threshold {threshold:.2f} ", style="bold reverse")
            note = "" if threshold == model_threshold else " (d: model's)"
            head.append(f"  +/- moves it{note}", style="dim")
        parts.append(head)
        if cells:
            k = sum(c.label == "Parasitized" for c in cells)
            parts.append(
                Text(f"{len(cells)} cells, {k} parasitized{'  (TTA)' if tta else ''}", style="bold")
            )
            parts.append(_folder_table(folders, narrow))
        if unreadable:
            shown = 2 if narrow else 5
            parts.append(Text(f"{len(unreadable)} unreadable:", style="yellow"))
            for path, reason in unreadable[:shown]:
                line = Text(f"  {short_name(path, 30)}  {reason}", style="yellow")
                line.no_wrap, line.overflow = True, "ellipsis"
                parts.append(line)
            if len(unreadable) > shown:
                parts.append(Text(f"  … and {len(unreadable) - shown} more", style="yellow"))
        self.update(Group(*parts))


def _folder_table(folders: list, narrow: bool) -> Table:
    t = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, expand=True, show_edge=False)
    t.add_column("folder", ratio=1, no_wrap=True, overflow="ellipsis", min_width=6)
    t.add_column("n" if narrow else "cells", justify="right")
    t.add_column("+" if narrow else "par.", justify="right")
    t.add_column("% (95% CI)" if narrow else "parasitemia (95% CI)", justify="right")
    ci = "{:.0f}-{:.0f}" if narrow else "{:.1f}-{:.1f}"
    for f in folders:
        t.add_row(
            Path(f.folder).name or f.folder,
            str(f.cells),
            str(f.parasitized),
            f"{f.parasitemia:.1f}% ({ci.format(f.ci_low, f.ci_high)})",
        )
    return t
