"""One cell image, large, with its Grad-CAM heat map beside it.

The heat map is computed in a worker thread with a model from the app's predictor cache (so
moving along a table of cells never reloads the model), and kept per image and model, so
coming back to a cell shows it at once. This is the TUI's one Grad-CAM worker: the Predict
screen's highlighted cell and the large cell dialog both show it through this widget.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static
from textual.worker import get_current_worker

from malaria_tui.engine.errors import one_line
from malaria_tui.tui.widgets.cells import HalfBlockImage, fit_array, load_rgb

if TYPE_CHECKING:
    import numpy as np

CAM_CACHE = 256
PENDING = "Grad-CAM…"


class CellView(Horizontal):
    """The image (``#cell-img``) and, with ``heat``, its heat map (``#cam-img``)."""

    DEFAULT_CSS = """
    CellView > #cell-img { width: auto; height: auto; }
    CellView > #cam-img { width: auto; height: auto; margin-left: 1; }
    """

    def __init__(self, heat: bool = True, native: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.heat = heat
        self.native = native  # Kitty/Sixel through textual-image, for an image file
        self.side: int | None = None  # fixed by the parent; None: fit this widget's own size
        self.path: str | None = None
        self.pixels: np.ndarray | None = None
        self.model = ""
        self.note = ""
        self._cams: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._computing: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        if self.native:
            from textual_image.widget import Image as NativeImage

            yield NativeImage(None, id="native-image")
        else:
            yield Static(id="cell-img")
        if self.heat:
            yield Static(id="cam-img")

    def on_mount(self) -> None:
        self.call_after_refresh(self.redraw)

    def on_resize(self) -> None:
        self.redraw()

    def show(
        self,
        path: str | None,
        *,
        model: str = "",
        note: str = "",
        pixels: np.ndarray | None = None,
    ) -> None:
        """Show the image file ``path`` (or in-memory ``pixels``) and the heat map that the
        model at ``model`` (a run directory or a model file) gives it; ``note`` instead says
        why there is none. ``path`` None shows nothing."""
        self.path, self.pixels, self.model, self.note = path, pixels, str(model), note
        self.redraw()

    def forget_heat_maps(self) -> None:
        """Drop the heat maps kept so far (the model file may have changed)."""
        self._cams.clear()

    @property
    def heat_value(self) -> object:
        """The shown cell's heat map (uint8 pixels) or the sentence shown in its place."""
        if self.note:
            return self.note
        return self._cams.get((self.path or "", self.model), PENDING)

    @property
    def heat_ready(self) -> bool:
        """The heat map, or the reason there is none, is on screen."""
        return self.path is not None and (bool(self.note) or (self.path, self.model) in self._cams)

    def _fitting_side(self) -> int:
        if self.side is not None:
            return self.side
        w, h = self.size.width, self.size.height
        across = (w - 1) // 2 if self.heat else w  # the heat map takes the other half
        return max(4, min(across, 2 * h, 64))

    def redraw(self) -> None:
        if not self.is_mounted or not self.children:
            return
        side = self._fitting_side()
        if self.native:
            self.query_one("#native-image").image = self.path  # type: ignore[attr-defined]
        else:
            image = self.query_one("#cell-img", Static)
            if self.pixels is not None:
                image.update(HalfBlockImage(fit_array(self.pixels, side, side)))
            elif self.path is not None:
                image.update(HalfBlockImage(load_rgb(self.path, side, side, keep_aspect=True)))
            else:
                image.update("")
        if self.heat:
            self._draw_heat(side)

    def _draw_heat(self, side: int) -> None:
        cam = self.query_one("#cam-img", Static)
        if self.side is not None:  # a message wraps under the image's width
            cam.styles.width = side
        if self.path is None:
            cam.update("")
            return
        value = self.heat_value
        if isinstance(value, str):
            cam.update(Text(value, style="dim"))
        else:
            cam.update(HalfBlockImage(fit_array(value, side, side)))
        key = (self.path, self.model)
        if value is PENDING and key != self._computing:
            self._computing = key
            self._cam_worker(*key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gradcam", name="gradcam")
    def _cam_worker(self, path: str, model: str) -> None:
        from malaria_tui.engine.explain import gradcam, overlay
        from malaria_tui.engine.inference.diagnose import load_images

        worker = get_current_worker()
        try:
            predictor = self.app.predictors.load(model)  # type: ignore[attr-defined]
            if not predictor.explainable:
                result: object = (
                    "Grad-CAM explains one Keras model, not an ensemble"
                    if predictor.members
                    else "Grad-CAM needs a Keras model"
                )
            else:
                x, ok, bad = load_images(
                    [Path(path)], predictor.image_size, predictor.color == "gray"
                )
                if not ok:
                    result = f"cannot read the image ({bad[0][1]})"
                else:
                    result = overlay(x[0], gradcam(predictor.model, x[:1])[0])
        except Exception as e:  # shown where the heat map would be, never a crash
            result = f"no Grad-CAM: {one_line(e, 200)}"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._cam_done, (path, model), result)

    def _cam_done(self, key: tuple[str, str], result: object) -> None:
        self._cams[key] = result
        while len(self._cams) > CAM_CACHE:
            self._cams.popitem(last=False)
        if self._computing == key:
            self._computing = None
        if key == (self.path, self.model):
            self.redraw()
