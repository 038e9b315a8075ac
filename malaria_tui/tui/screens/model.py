"""Model: architecture from the registry with its layer summary, and the training knobs.

Every field is validated through the pydantic Config as you type; a refused value is marked
with the reason and the config keeps its last valid value.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.widgets.export_table import ExportTable
from malaria_tui.tui.widgets.form import ConfigField

FALLBACK_MODELS = ["cellnet", "lenet", "lenet_subclassed", "mobilenetv2", "efficientnetb0"]

FIELDS: list[tuple[str, str, list[str] | None]] = [
    ("optimizer.learning_rate", "learning rate", None),
    ("optimizer.schedule", "schedule", ["constant", "cosine", "exponential"]),
    ("optimizer.warmup_epochs", "warmup epochs", None),
    ("model.dropout", "dropout", None),
    ("model.l2", "L2", None),
    ("loss.name", "loss", ["focal", "bce"]),
    ("loss.alpha", "focal alpha", None),
    ("loss.gamma", "focal gamma", None),
    ("train.epochs", "epochs", None),
    ("data.batch_size", "batch size", None),
    ("data.image_size", "image size", None),
    ("train.loop", "loop", ["custom", "fit"]),
]


def compact_shape(shape: object) -> str:
    """``(None, 50, 50, 32)`` as ``50x50x32`` (the batch axis said nothing)."""
    text = str(shape).strip()
    if not (text.startswith("(") and text.endswith(")")):
        return text
    dims = [d.strip() for d in text[1:-1].split(",") if d.strip()]
    if dims and dims[0] == "None":
        dims = dims[1:]
    return "x".join(dims) or text


TYPE_WORDS = (
    ("Normalization", "Norm"),
    ("Pooling", "Pool"),
    ("Average", "Avg"),
    ("Activation", "Act."),
    ("InputLayer", "Input"),
)


def compact_type(kind: str) -> str:
    """A layer's class name in fewer columns: ``BatchNormalization`` as ``BatchNorm``,
    ``MaxPooling2D`` as ``MaxPool2D``, ``GlobalAveragePooling2D`` as ``GlobalAvgPool2D``."""
    for word, short in TYPE_WORDS:
        kind = kind.replace(word, short)
    return kind


def model_names() -> list[str]:
    try:
        from malaria_tui.engine.models.registry import MODEL_NAMES  # no TensorFlow at import

        return list(MODEL_NAMES)
    except ImportError:  # pragma: no cover - registry not there yet
        return FALLBACK_MODELS


class ModelScreen(BaseScreen):
    MODE = "model"
    CSS_PATH = "model.tcss"
    AUTO_FOCUS = "#layers"
    BINDINGS = [
        Binding(
            "ctrl+d",
            "describe",
            "Describe",
            id="model.describe",
            tooltip="Show the model's layer summary for the current settings",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._described_key: tuple | None = None
        self.summary: dict | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="body"):
            with VerticalScroll(id="form"):
                yield Static("Model and training", classes="section")
                yield ConfigField("model.name", "architecture", options=model_names())
                for key, label, options in FIELDS:
                    yield ConfigField(key, label, options=options)
                yield Static("", id="form-note", markup=False)
            with Vertical(id="summary"):
                yield Static("", id="model-head")
                yield ExportTable(id="layers", zebra_stripes=True, cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#layers", DataTable)
        # output and parameters before the type: at 80 columns the type is what may be cut
        table.add_column("layer", key="layer")
        table.add_column("output", key="output")
        table.add_column("params", key="params")
        table.add_column("type", key="type")
        self._maybe_describe()

    def on_screen_resume(self) -> None:
        for f in self.query(ConfigField):
            f.sync()
        self._maybe_describe()
        self.update_status()

    def on_tf_ready(self) -> None:
        if self.is_mounted:
            self._maybe_describe()

    @on(ConfigField.Applied)
    def _applied(self, event: ConfigField.Applied) -> None:
        note = self.query_one("#form-note", Static)
        if event.error:
            note.update(f"{event.key} not changed: {event.error}")
        else:
            note.update("")
            if event.key.startswith("model.") or event.key == "data.image_size":
                self._maybe_describe()

    # --- the model summary (needs TensorFlow) ---------------------------------------------------

    def action_describe(self) -> None:
        self._described_key = None
        self._maybe_describe()

    def _maybe_describe(self) -> None:
        cfg = self.mapp.config
        head = self.query_one("#model-head", Static)
        if not self.mapp.tf_ready:
            state = "loading…" if self.mapp.tf_state == "loading" else "not available"
            head.update(
                Text(
                    f"{cfg.model.name}\nTensorFlow {state}: the layer summary appears when it is ready.",
                    style="dim",
                )
            )
            return
        key = (cfg.model.model_dump_json(), cfg.data.image_size)
        if key == self._described_key:
            return
        self._described_key = key
        head.update(Text(f"{cfg.model.name}: building the model…", style="dim"))
        self._describe(cfg)

    @work(thread=True, exclusive=True, group="describe", exit_on_error=False)
    def _describe(self, cfg) -> None:
        from malaria_tui.engine.models.registry import describe

        try:
            summary = describe(cfg)
        except Exception as e:  # shown in place of the summary
            self.app.call_from_thread(self._described, cfg, None, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._described, cfg, summary, "")

    def _described(self, cfg, summary: dict | None, error: str) -> None:
        if (
            cfg.model != self.mapp.config.model
            or cfg.data.image_size != self.mapp.config.data.image_size
        ):
            return  # a newer request is on its way
        head = self.query_one("#model-head", Static)
        table = self.query_one("#layers", DataTable)
        table.clear()
        self.summary = summary
        if summary is None:
            head.update(Text(f"cannot build {cfg.model.name}: {error}", style="red"))
            return
        t = Text()
        t.append(summary["name"], style="bold")
        if summary.get("description"):
            t.append(f"  {summary['description']}", style="dim")
        t.append(
            f"\n{summary['params']:,} parameters ({summary['trainable_params']:,} trainable), "
            f"input {'x'.join(str(d) for d in summary['input_shape'])}, {len(summary['layers'])} layers"
        )
        head.update(t)
        for name, kind, shape, params in summary["layers"]:
            table.add_row(
                name, compact_shape(shape), Text(f"{params:,}", justify="right"), compact_type(kind)
            )

    def palette_commands(self) -> list[PaletteCommand]:
        out: list[PaletteCommand] = []
        for name in model_names():
            out.append(
                (
                    f"Model: {name}",
                    "Use this architecture",
                    lambda n=name: self.query_one("#f-model-name", ConfigField).set_text(n),
                )
            )
        out.append(("Describe model", "Rebuild the layer summary", self.action_describe))
        return out
