"""Line charts (textual-plotext) fed from bounded series, downsampled to ~2x the widget width."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from malaria_tui.tui.history import downsample


@dataclass(frozen=True)
class Line:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str | None = None
    marker: str = "braille"


class LineChart(PlotextPlot):
    """A titled plot of a few named lines; data is replaced, never accumulated here."""

    DEFAULT_CSS = """
    LineChart { width: 1fr; height: 1fr; min-height: 6; }
    """

    def __init__(
        self,
        title: str = "",
        *,
        xlabel: str = "",
        id: str | None = None,
        classes: str | None = None,
    ):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.xlabel = xlabel
        self.lines: list[Line] = []
        self.xlim: tuple[float, float] | None = None
        self.ylim: tuple[float, float] | None = None
        self.empty_text = "no data yet"
        self.marks: list[tuple[float, float, str]] = []  # (x, y, label) single points
        self._version = 0  # bumped by set_lines: a plot is built once per data, size and theme
        self._built: tuple[tuple, RenderResult] | None = None

    def set_lines(
        self,
        lines: list[Line],
        *,
        title: str | None = None,
        xlim: tuple[float, float] | None = None,
        ylim: tuple[float, float] | None = None,
        marks: list[tuple[float, float, str]] | None = None,
    ) -> None:
        self.lines = lines
        if title is not None:
            self.title = title
        self.xlim, self.ylim = xlim, ylim
        self.marks = marks or []
        self._version += 1
        self.refresh()

    @property
    def has_data(self) -> bool:
        return any(len(line.xs) for line in self.lines)

    def render(self) -> RenderResult:
        """The plot, rebuilt only when data, size or theme changed: Textual renders again on
        every screen switch, and building a plot is among the costliest work of the UI thread."""
        key = (self._version, self.title, self.size, self.app.theme)
        if self._built is None or self._built[0] != key:
            self._built = (key, self._build())
        return self._built[1]

    def _build(self) -> RenderResult:
        width = max(10, self.size.width)
        if self.size.height < 3:
            return Text(self.title)
        plt = self.plt
        plt.clear_figure()
        plt.title(self.title if self.has_data else f"{self.title}: {self.empty_text}")
        if self.xlabel:
            plt.xlabel(self.xlabel)
        for line in self.lines:
            if not len(line.xs):
                continue
            xs, ys = downsample(line.xs, line.ys, 2 * width)
            if len(xs) == 1:
                plt.scatter(xs, ys, label=line.label, color=line.color, marker="dot")
            else:
                plt.plot(xs, ys, label=line.label, color=line.color, marker=line.marker)
        for x, y, label in self.marks:
            plt.scatter([x], [y], label=label, marker="x", color="red")
        if self.xlim:
            plt.xlim(*self.xlim)
        if self.ylim:
            plt.ylim(*self.ylim)
        return super().render()
