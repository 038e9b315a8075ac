"""Line charts (textual-plotext) fed from bounded series, downsampled to ~2x the widget width.

Every chart reads the same three ways, toggled from the screen that shows it (:class:`ChartKeys`):

- **Robust y range** (the default): the y axis spans the data without its far outliers
  (Tukey's fences, 3 IQR beyond the quartiles), so one ``val_loss`` spike to 11.6 no longer
  squashes every other epoch into the bottom row; a clipped point is drawn as ▲ (above) or ▼
  (below) on the edge, and the legend counts them. It only clips when that at least halves the
  range, so ordinary curves keep their plain min-max axis. (Log scale by default for losses was
  the other choice: it changes how every ordinary loss curve reads and does nothing for a
  metric's or a negative value's outlier.)
- **Log y** (``l``): every positive value, nothing clipped.
- **Smoothed** (``a``, average): a centred moving median over about a fifteenth of the points
  (at least 3), drawn over a band (two thin grey lines) of the raw minimum and maximum in the
  same window. A median, not a mean: one spike does not drag its neighbours up, and the band
  still shows it.

The legend is a line of its own under the plot (plotext's sits on top of the curves and cut the
first characters of long names); names are shortened at their end, never at their start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual_plotext import PlotextPlot

from malaria_tui.tui.history import downsample

# plotext colour names -> Rich colour names, for the legend
RICH_COLORS = {
    "orange": "dark_orange",
    "gray": "grey62",
    "grey": "grey62",
    "white": "default",
    None: "default",
}
PALETTE = ("cyan", "orange", "magenta", "green", "yellow", "blue", "red", "white")
FENCE = 3.0  # Tukey's "far out" fences, in IQRs beyond the quartiles
MIN_POINTS_TO_CLIP = 5
BAND_COLOR = "gray"


def rich_color(color: str | None) -> str:
    return RICH_COLORS.get(color, color or "default")


@dataclass(frozen=True)
class Line:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str | None = None
    marker: str = "braille"


# --- the numbers behind the drawing (pure functions, tested directly) ----------------------------


def _quantile(sorted_ys: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_ys) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_ys) - 1)
    return sorted_ys[lo] + (sorted_ys[hi] - sorted_ys[lo]) * (pos - lo)


def robust_range(ys: Sequence[float]) -> tuple[float, float] | None:
    """The y range to draw when a few far outliers would flatten the rest, else None.

    The range is the data inside Tukey's far-out fences; it is used only when it is at most half
    of the full range (so ordinary curves are never clipped)."""
    finite = sorted(y for y in ys if math.isfinite(y))
    if len(finite) < MIN_POINTS_TO_CLIP:
        return None
    q1, q3 = _quantile(finite, 0.25), _quantile(finite, 0.75)
    iqr = q3 - q1
    if iqr <= 0:  # a flat curve with a spike: keep a sliver around the flat part
        iqr = max(abs(q1) * 0.05, 1e-9)
    lo_f, hi_f = q1 - FENCE * iqr, q3 + FENCE * iqr
    inside = [y for y in finite if lo_f <= y <= hi_f]
    lo, hi = inside[0], inside[-1]
    full = finite[-1] - finite[0]
    if full <= 0 or (hi - lo) > full / 2:
        return None
    margin = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1e-9
    return lo - margin, hi + margin


def window_for(n: int) -> int:
    """The smoothing window: about a fifteenth of the points, odd, at least 3."""
    w = max(3, n // 15)
    return w + 1 if w % 2 == 0 else w


def smooth(ys: Sequence[float], window: int) -> tuple[list[float], list[float], list[float]]:
    """Centred moving median of ``ys`` and the raw min/max over the same window (the band);
    the window shrinks at the ends rather than padding."""
    n, half = len(ys), window // 2
    mid, lo, hi = [], [], []
    for i in range(n):
        part = sorted(ys[max(0, i - half) : i + half + 1])
        m = len(part) // 2
        mid.append(part[m] if len(part) % 2 else (part[m - 1] + part[m]) / 2)
        lo.append(part[0])
        hi.append(part[-1])
    return mid, lo, hi


def _bucket_extremes(
    xs: Sequence[float], ys: Sequence[float], n: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Like :func:`downsample` (same buckets), plus each bucket's min and max."""
    total = len(xs)
    if n <= 0 or total <= n:
        return list(xs), list(ys), list(ys), list(ys)
    mx, my = downsample(xs, ys, n)
    lo, hi = [], []
    for b in range(n - 1):
        a = b * (total - 1) // (n - 1)
        z = max(a + 1, (b + 1) * (total - 1) // (n - 1))
        lo.append(min(ys[a:z]))
        hi.append(max(ys[a:z]))
    lo.append(ys[-1])
    hi.append(ys[-1])
    return mx, my, lo, hi


def legend(entries: list[tuple[str, str]], width: int, rows: int = 1, tail: str = "") -> Text:
    """``━ label`` entries (label, Rich colour) in ``width`` columns and at most ``rows`` lines,
    then ``tail`` (in red): labels are shortened at their end (never their start) until they
    fit; what still does not fit is counted as ``+N``."""
    if tail:
        width -= len(tail) + 2
    if not entries or width < 8:
        return Text(tail, style="red")
    longest = max(len(label) for label, _ in entries)
    for limit in range(longest, 5, -1):
        lines = _legend_lines(entries, width, limit)
        if len(lines) <= rows:
            break
    else:
        lines = _legend_lines(entries, width, 6)
    shown = lines[:rows]
    hidden = sum(len(line) for line in lines[rows:])
    out = Text(no_wrap=True, overflow="ellipsis")
    for r, line in enumerate(shown):
        if r:
            out.append("\n")
        for i, (label, color) in enumerate(line):
            if i:
                out.append("  ")
            out.append("━ ", style=color)
            out.append(label, style=color)
    if hidden:
        out.append(f"  +{hidden}", style="dim")
    if tail:
        out.append(f"  {tail}", style="red")
    return out


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _legend_lines(
    entries: list[tuple[str, str]], width: int, limit: int
) -> list[list[tuple[str, str]]]:
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for label, color in entries:
        text = _short(label, limit)
        need = len(text) + 2 + (2 if lines[-1] else 0)
        if lines[-1] and used + need > width:
            lines.append([])
            used, need = 0, len(text) + 2
        lines[-1].append((text, color))
        used += need
    return lines


# --- the widget ----------------------------------------------------------------------------------


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
        self.log_y = False
        self.smoothed = False
        self.clipped = 0  # points drawn on an edge at the last build (robust range)
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

    def set_log(self, on: bool) -> None:
        self.log_y = on
        self._version += 1
        self.refresh()

    def set_smoothed(self, on: bool) -> None:
        self.smoothed = on
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

    def _title(self, width: int = 1000) -> str:
        """The title, the modes first (plotext drops a title wider than the plot)."""
        if not self.has_data:
            title = f"{self.title}: {self.empty_text}"
        else:
            modes = [m for m, on in (("log", self.log_y), ("smoothed", self.smoothed)) if on]
            head, _, hint = self.title.partition("  (")
            title = head + (f" [{', '.join(modes)}]" if modes else "")
            title += f"  ({hint}" if hint else ""
        return title if len(title) <= width else title[: max(1, width - 1)] + "…"

    def _series(self, line: Line, width: int) -> tuple[list[float], list[float], list, list]:
        """What is drawn of ``line``: (xs, ys, band low, band high); no band when not smoothed."""
        xs, ys = list(line.xs), list(line.ys)
        if self.log_y:
            kept = [(x, y) for x, y in zip(xs, ys, strict=False) if y > 0]
            xs, ys = [x for x, _ in kept], [y for _, y in kept]
        if not self.smoothed or len(xs) < 3:
            dx, dy = downsample(xs, ys, 2 * width)
            return dx, dy, [], []
        dx, dy, lo, hi = _bucket_extremes(xs, ys, 2 * width)
        w = window_for(len(dy))
        mid, _, _ = smooth(dy, w)
        half = w // 2
        band_lo = [min(lo[max(0, i - half) : i + half + 1]) for i in range(len(lo))]
        band_hi = [max(hi[max(0, i - half) : i + half + 1]) for i in range(len(hi))]
        return dx, mid, band_lo, band_hi

    def _build(self) -> RenderResult:
        width = max(10, self.size.width)
        if self.size.height < 3:
            return Text(self.title)
        series = [(line, self._series(line, width)) for line in self.lines if len(line.xs)]
        entries = [(line.label, rich_color(line.color)) for line, _ in series if line.label]
        entries += [(label, "red") for _, _, label in self.marks if label]
        legend_rows = 1 if self.size.height >= 8 else 0

        ylim = self.ylim
        self.clipped = 0
        clipped_marks: list[tuple[float, float, str]] = []
        drawn_ys = [y for _, (_, ys, lo, hi) in series for y in (*ys, *lo, *hi)]
        if ylim is None and not self.log_y:
            ylim = robust_range([y for _, (_, ys, _, _) in series for y in ys])
            if ylim is not None:
                for _, (xs, ys, _, _) in series:
                    for x, y in zip(xs, ys, strict=False):
                        if y > ylim[1]:
                            clipped_marks.append((x, ylim[1], "▲"))
                        elif y < ylim[0]:
                            clipped_marks.append((x, ylim[0], "▼"))
                self.clipped = len(clipped_marks)
        elif ylim is not None and self.log_y:
            positive = [y for y in drawn_ys if y > 0]
            low = ylim[0] if ylim[0] > 0 else (min(positive) if positive else 1e-3)
            ylim = (low, max(ylim[1], low * 10))
        tail = f"▲▼ {self.clipped} clipped" if self.clipped else ""

        plt = self.plt
        plt.clear_figure()
        plot_h = self.size.height - legend_rows
        plt.plotsize(self.size.width, plot_h)
        plt._set_size(self.size.width, plot_h)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.title(self._title(self.size.width - 8))
        if self.xlabel:
            plt.xlabel(self.xlabel)
        if self.log_y:
            plt.yscale("log")
        for line, (xs, ys, lo, hi) in series:
            if lo:
                plt.plot(xs, lo, color=BAND_COLOR, marker="braille")
                plt.plot(xs, hi, color=BAND_COLOR, marker="braille")
            if len(xs) == 1:
                plt.scatter(xs, ys, color=line.color, marker="dot")
            elif xs:
                plt.plot(xs, ys, color=line.color, marker=line.marker)
        for x, y, _label in self.marks:
            if not self.log_y or y > 0:
                plt.scatter([x], [y], marker="x", color="red")
        for x, y, glyph in clipped_marks:
            plt.scatter([x], [y], marker=glyph, color="red")
        if self.xlim:
            plt.xlim(*self.xlim)
        if ylim:
            plt.ylim(*ylim)
        plot = Text.from_ansi(plt.build().rstrip("\n"), no_wrap=True)
        if not legend_rows:
            return plot
        return Group(plot, legend(entries, self.size.width, legend_rows, tail))


class ChartKeys(DOMNode):
    """Mixed into a screen that shows charts (``class S(ChartKeys, BaseScreen)``): ``l`` and
    ``a`` switch every chart of the screen to a log y axis or to a smoothed curve with its band.

    A widget's own bindings are active only while it has the focus, and charts never do, so the
    keys belong to the screen."""

    BINDINGS = [
        Binding(
            "l",
            "chart_log",
            "Log y",
            id="chart.log",
            tooltip="Charts: log y axis (every positive value, nothing clipped) or linear",
            show=False,  # the key bar keeps room for the screen's own keys; ? lists these
        ),
        Binding(
            "a",
            "chart_smooth",
            "Smooth",
            id="chart.smooth",
            tooltip="Charts: moving average with the raw min/max band, or the raw curves",
            show=False,
        ),
    ]

    def action_chart_log(self) -> None:
        charts = list(self.query(LineChart))
        on = not (charts and charts[0].log_y)
        for chart in charts:
            chart.set_log(on)

    def action_chart_smooth(self) -> None:
        charts = list(self.query(LineChart))
        on = not (charts and charts[0].smoothed)
        for chart in charts:
            chart.set_smoothed(on)
