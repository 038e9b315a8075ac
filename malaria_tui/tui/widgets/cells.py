"""Real cell images drawn with coloured half-blocks (``▀``: top pixel fg, bottom pixel bg).

Works in any truecolor terminal, over SSH and inside tmux: no graphics protocol needed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    import numpy as np

_CACHE_MAX = 512
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()  # numpy is imported on first use
_cache_lock = Lock()
_STYLE_CACHE: dict[tuple, Style] = {}


def _placeholder(w: int, h: int) -> np.ndarray:
    import numpy as np

    arr = np.full((h, w, 3), 96, dtype=np.uint8)
    for i in range(min(w, h)):  # a diagonal cross says "no image"
        arr[i * h // max(1, min(w, h)), i * w // max(1, min(w, h))] = 200
        arr[i * h // max(1, min(w, h)), w - 1 - i * w // max(1, min(w, h))] = 200
    return arr


def load_rgb(path: str | Path, width: int, height: int, keep_aspect: bool = False) -> np.ndarray:
    """``height x width x 3`` uint8 pixels of an image file (cached); a grey cross if unreadable."""
    key = (str(path), width, height, keep_aspect)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    import numpy as np

    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            if keep_aspect:
                scale = min(width / im.width, height / im.height)
                w2, h2 = max(1, round(im.width * scale)), max(1, round(im.height * scale))
                im2 = im.resize((w2, h2), Image.Resampling.BILINEAR)
                canvas = Image.new("RGB", (width, height), (0, 0, 0))
                canvas.paste(im2, ((width - w2) // 2, (height - h2) // 2))
                im = canvas
            else:
                im = im.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except Exception:  # a broken file shows as a placeholder, never crashes the UI
        arr = _placeholder(width, height)
    with _cache_lock:
        _cache[key] = arr
        while len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return arr


def fit_array(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an in-memory uint8 image (HxW, HxWx1/3/4) to ``height x width x 3``."""
    import numpy as np
    from PIL import Image

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    im = Image.fromarray(a).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _style(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Style:
    key = (top, bottom)
    st = _STYLE_CACHE.get(key)
    if st is None:
        if len(_STYLE_CACHE) > 65536:
            _STYLE_CACHE.clear()
        st = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))
        _STYLE_CACHE[key] = st
    return st


def halfblock_lines(pixels: np.ndarray) -> list[list[Segment]]:
    """Terminal lines for ``H x W x 3`` pixels: each cell shows two vertical pixels with ``▀``."""
    import numpy as np

    h = pixels.shape[0]
    if h % 2:
        pixels = np.concatenate([pixels, pixels[-1:]], axis=0)
        h += 1
    q = (pixels // 8 * 8).astype(np.uint8)  # quantise a little: far fewer distinct styles
    lines: list[list[Segment]] = []
    for y in range(0, h, 2):
        top, bot = q[y], q[y + 1]
        segs: list[Segment] = []
        for x in range(q.shape[1]):
            t = (int(top[x, 0]), int(top[x, 1]), int(top[x, 2]))
            b = (int(bot[x, 0]), int(bot[x, 1]), int(bot[x, 2]))
            segs.append(Segment("▀", _style(t, b)))
        lines.append(list(Segment.simplify(segs)))
    return lines


class HalfBlockImage:
    """A Rich renderable of pixels (use in a ``Static``)."""

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        self._lines = halfblock_lines(pixels)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return len(self._lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self._lines:
            yield from line
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


@dataclass(frozen=True)
class CellItem:
    """One image in a :class:`CellGrid`: the file, a short caption and what to show when opened."""

    path: str
    caption: str
    positive: bool | None = None  # colours the caption (Parasitized / Uninfected / unknown)
    info: dict = field(default_factory=dict, hash=False, compare=False)
    pixels: np.ndarray | None = field(default=None, hash=False, compare=False, repr=False)


class CellGrid(Widget, can_focus=True):
    """A keyboard- and mouse-navigable grid of cell thumbnails with captions."""

    COMPONENT_CLASSES = {
        "cell-grid--caption",
        "cell-grid--selected",
        "cell-grid--positive",
        "cell-grid--negative",
        "cell-grid--empty",
    }

    DEFAULT_CSS = """
    CellGrid {
        width: 1fr;
        height: 1fr;
        background: $surface;
    }
    CellGrid > .cell-grid--caption { color: $text-muted; }
    CellGrid > .cell-grid--positive { color: $error; text-style: bold; }
    CellGrid > .cell-grid--negative { color: $success; }
    CellGrid > .cell-grid--selected { background: $accent 40%; text-style: bold reverse; }
    CellGrid:focus > .cell-grid--selected { background: $accent; color: $text; text-style: bold; }
    CellGrid > .cell-grid--empty { color: $text-muted; text-style: italic; }
    """

    BINDINGS = [
        Binding(
            "left",
            "move(-1, 0)",
            "Left",
            show=False,
            id="grid.left",
            tooltip="Select the cell to the left",
        ),
        Binding(
            "right",
            "move(1, 0)",
            "Right",
            show=False,
            id="grid.right",
            tooltip="Select the cell to the right",
        ),
        Binding(
            "up", "move(0, -1)", "Up", show=False, id="grid.up", tooltip="Select the cell above"
        ),
        Binding(
            "down",
            "move(0, 1)",
            "Down",
            show=False,
            id="grid.down",
            tooltip="Select the cell below",
        ),
        Binding(
            "pageup", "page(-1)", "Page up", show=False, id="grid.page_up", tooltip="One page up"
        ),
        Binding(
            "pagedown",
            "page(1)",
            "Page down",
            show=False,
            id="grid.page_down",
            tooltip="One page down",
        ),
        Binding("home", "jump(0)", "First", show=False, id="grid.first", tooltip="First cell"),
        Binding("end", "jump(-1)", "Last", show=False, id="grid.last", tooltip="Last cell"),
        Binding(
            "enter", "open", "Open cell", id="grid.open", tooltip="Open the selected cell large"
        ),
    ]

    selected: reactive[int] = reactive(0, always_update=True)

    class Opened(Message):
        def __init__(self, grid: CellGrid, item: CellItem, index: int) -> None:
            super().__init__()
            self.grid, self.item, self.index = grid, item, index

        @property
        def control(self) -> CellGrid:
            return self.grid

    class Highlighted(Message):
        def __init__(self, grid: CellGrid, item: CellItem | None, index: int) -> None:
            super().__init__()
            self.grid, self.item, self.index = grid, item, index

        @property
        def control(self) -> CellGrid:
            return self.grid

    def __init__(
        self,
        thumb_width: int = 12,
        thumb_height: int = 6,
        empty_text: str = "no images",
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.thumb_width = thumb_width
        self.thumb_height = thumb_height
        self.empty_text = empty_text
        self.items: list[CellItem] = []
        self.top_row = 0
        self._strip_cache: OrderedDict[tuple, list[list[Segment]]] = OrderedDict()

    # --- geometry ---------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return max(1, (self.size.width + 1) // (self.thumb_width + 1))

    @property
    def row_height(self) -> int:
        return self.thumb_height + 1

    @property
    def visible_rows(self) -> int:
        return max(1, self.size.height // self.row_height)

    @property
    def current(self) -> CellItem | None:
        return self.items[self.selected] if 0 <= self.selected < len(self.items) else None

    def set_items(self, items: list[CellItem], keep_selection: bool = False) -> None:
        old = self.current
        self.items = list(items)
        index = 0
        if keep_selection and old is not None:
            index = next((i for i, it in enumerate(self.items) if it.path == old.path), 0)
        self.top_row = 0
        self.selected = min(index, max(0, len(self.items) - 1))
        self.refresh()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.row_height * 2

    # --- navigation -------------------------------------------------------------------------

    def validate_selected(self, value: int) -> int:
        return max(0, min(value, len(self.items) - 1)) if self.items else 0

    def watch_selected(self, value: int) -> None:
        row = value // self.columns
        if row < self.top_row:
            self.top_row = row
        elif row >= self.top_row + self.visible_rows:
            self.top_row = row - self.visible_rows + 1
        self.refresh()
        self.post_message(self.Highlighted(self, self.current, value))

    def on_resize(self) -> None:
        self.selected = self.selected

    def action_move(self, dx: int, dy: int) -> None:
        self.selected = self.selected + dx + dy * self.columns

    def action_page(self, direction: int) -> None:
        self.selected = self.selected + direction * self.columns * self.visible_rows

    def action_jump(self, index: int) -> None:
        self.selected = index if index >= 0 else len(self.items) - 1

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.Opened(self, self.current, self.selected))

    def _index_at(self, x: int, y: int) -> int | None:
        col = x // (self.thumb_width + 1)
        row = self.top_row + y // self.row_height
        if col >= self.columns or x % (self.thumb_width + 1) == self.thumb_width:
            return None
        i = row * self.columns + col
        return i if 0 <= i < len(self.items) else None

    def on_click(self, event: events.Click) -> None:
        i = self._index_at(event.x, event.y)
        if i is None:
            return
        if i == self.selected and event.chain >= 1 and self.has_focus:
            self.action_open()
        self.selected = i

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.selected = self.selected + self.columns
        event.stop()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.selected = self.selected - self.columns
        event.stop()

    # --- drawing ----------------------------------------------------------------------------

    def _thumb_lines(self, item: CellItem) -> list[list[Segment]]:
        key = (item.path, id(item.pixels), self.thumb_width, self.thumb_height)
        lines = self._strip_cache.get(key)
        if lines is None:
            w, h = self.thumb_width, self.thumb_height * 2
            if item.pixels is not None:
                px = fit_array(item.pixels, w, h)
            else:
                px = load_rgb(item.path, w, h)
            lines = halfblock_lines(px)
            self._strip_cache[key] = lines
            while len(self._strip_cache) > 256:
                self._strip_cache.popitem(last=False)
        return lines

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self.items:
            if y == 0:
                text = f" {self.empty_text}"[:width]
                st = base + self.get_component_rich_style("cell-grid--empty")
                return Strip([Segment(text, st), Segment(" " * (width - len(text)), base)], width)
            return Strip.blank(width, base)
        row = self.top_row + y // self.row_height
        line = y % self.row_height
        cols = self.columns
        segs: list[Segment] = []
        used = 0
        for c in range(cols):
            i = row * cols + c
            if i >= len(self.items) or y // self.row_height >= self.visible_rows:
                break
            item = self.items[i]
            if line < self.thumb_height:
                segs.extend(self._thumb_lines(item)[line])
            else:
                cap = item.caption[: self.thumb_width].ljust(self.thumb_width)
                st = base + self.get_component_rich_style("cell-grid--caption")
                if item.positive is True:
                    st += self.get_component_rich_style("cell-grid--positive")
                elif item.positive is False:
                    st += self.get_component_rich_style("cell-grid--negative")
                if i == self.selected:
                    st += self.get_component_rich_style("cell-grid--selected")
                segs.append(Segment(cap, st))
            used += self.thumb_width
            if c < cols - 1:
                segs.append(Segment(" ", base))
                used += 1
        if used < width:
            segs.append(Segment(" " * (width - used), base))
        return Strip(segs, width).crop(0, width)
