"""TFDS ``malaria`` (NIH's 27,558 cells) as ``(image uint8 [H,W,3], label int32)``, 1 = Parasitized.

Downloading. TFDS's builder calls ``dl_manager.download_and_extract(URL)`` for NIH's
``cell_images.zip``. Before downloading, TFDS's DownloadManager looks for a file named after the
URL's registered ``filename`` (``cell_images.zip``, from the builder's ``checksums.tsv``) in
``manual_dir``, which defaults to ``DATA_DIR/downloads/manual``; if it is there it is used
instead of the network. A manual file is still checked: its size and sha256 must equal the
registered ones, otherwise TFDS raises ``NonMatchingChecksumError``. We keep that check for
real use. ``DownloadConfig`` has no option to skip it (``force_checksums_validation`` only
demands that a checksum exists; ``register_checksums=True`` rewrites the ``checksums.tsv``
inside the installed tensorflow_datasets package). So a test that needs a small archive passes
``builder_cls``: TFDS's own builder with that archive's checksum in ``url_infos``, the place
TFDS reads registered checksums from (see tests/tfds_archive.py).

Offline, TFDS retries the download for minutes before failing, so when nothing is prepared,
no manual zip or cached download exists and NIH's host cannot be reached within seconds, we
raise a one-line DataError without asking TFDS at all.

TFDS's own labels are ``["parasitized", "uninfected"]`` (0 = parasitized); we map them to
malaria-tui's convention. TFDS records carry no file names, hence no patient keys, so the
train/val/test split is by image.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from malaria_tui.engine.errors import DataError, one_line
from malaria_tui.engine.tfenv import Tensor
from malaria_tui.engine.tfenv import tf as _tf

if TYPE_CHECKING:
    import tensorflow as tf

NAME = "malaria"
SPLITS = ("train", "val", "test")
CLASS_NAMES = ("Uninfected", "Parasitized")  # index == label


def load_tfds(
    data_dir: str | None, manual_dir: str | None = None, *, builder_cls: Any = None
) -> tuple[tf.data.Dataset, int]:
    """Prepare TFDS ``malaria`` in ``data_dir`` if needed; return ``(dataset, n_examples)``.

    ``data_dir`` None means TFDS's default (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).
    ``builder_cls`` replaces ``tfds.builder_cls("malaria")``; only tests need it.
    """
    tf = _tf()
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    cls = builder_cls or tfds.builder_cls(NAME)
    builder = cls(data_dir=str(Path(data_dir).expanduser()) if data_dir else None)
    root = Path(builder.data_dir).parents[1]  # <root>/malaria/<version>
    if not builder.is_prepared():
        manual = Path(manual_dir).expanduser() if manual_dir else root / "downloads" / "manual"
        ((url, info),) = builder.url_infos.items()
        if (
            not (manual / info.filename).is_file()
            and not _cached(root, url, info)
            and not _reachable(url)
        ):
            raise DataError(
                f"tfds: {NAME} is not prepared in {root} and cannot be downloaded (no network); "
                f"put {info.filename} in {manual} or use --data folder:PATH"
            )
        config = tfds.download.DownloadConfig(manual_dir=str(manual))
        try:
            builder.download_and_prepare(download_config=config)
        except NonMatchingChecksumError as e:
            got = (
                manual / info.filename
                if (manual / info.filename).is_file()
                else f"the download of {url}"
            )
            raise DataError(
                f"tfds: {got} is not NIH's {info.filename} (TFDS expects "
                f"{int(info.size)} bytes, sha256 {info.checksum[:12]}...)"
            ) from e
        except (OSError, tfds.download.DownloadError) as e:
            raise DataError(f"tfds: could not prepare {NAME} in {root}: {one_line(e, 300)}") from e
    names = builder.info.features["label"].names
    parasitized = names.index("parasitized")
    ds = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
    ds = ds.map(
        lambda im, y: (im, tf.cast(tf.equal(y, parasitized), tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds, int(builder.info.splits["train"].num_examples)


class TfdsSplits(dict[str, Any]):
    """``{"train"|"val"|"test": dataset}`` plus ``split_labels``, the ``(split index, label)`` of
    every example, so the counts take one pass over the labels instead of one per split."""

    def __init__(self, parts: dict[str, Any], split_labels: Any) -> None:
        super().__init__(parts)
        self.split_labels = split_labels


def split_tfds(ds: tf.data.Dataset, fractions: list[float], seed: int) -> TfdsSplits:
    """Image-level split: example ``i`` goes where a stateless uniform draw of ``(seed, i)``
    falls among the cumulative fractions, so the split is the same every run and epoch and
    needs no shuffle buffer. Philox is named so CPU and GPU draw the same numbers."""
    tf = _tf()

    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise DataError(f"data.fractions must be 3 non-negative numbers, got {list(fractions)}")
    total = float(sum(fractions))
    cuts = tf.constant([fractions[0] / total, (fractions[0] + fractions[1]) / total], tf.float32)

    def split_of(i: Tensor) -> Tensor:
        u = tf.random.stateless_uniform(
            [], seed=tf.stack([tf.constant(seed, tf.int64), i]), alg="philox"
        )
        return tf.reduce_sum(tf.cast(u >= cuts, tf.int32))

    keyed = ds.enumerate()
    parts = {
        name: keyed.filter(lambda i, ex, k=k: tf.equal(split_of(i), k)).map(lambda i, ex: ex)
        for k, name in enumerate(SPLITS)
    }
    return TfdsSplits(parts, keyed.map(lambda i, ex: (split_of(i), ex[1])))


def whole(ds: tf.data.Dataset) -> TfdsSplits:
    """All of ``ds`` as one split, ``all`` (a model scored on every image)."""
    return TfdsSplits({"all": ds}, ds.map(lambda im, y: (0, y)))


def count_splits(parts: TfdsSplits) -> dict[str, dict[str, int]]:
    """``{split: {"Parasitized": n, "Uninfected": n, "total": n}}``; an empty split is an error."""
    import numpy as np

    counts = np.zeros((len(parts), len(CLASS_NAMES)), dtype=np.int64)
    for s, y in parts.split_labels.batch(8192).as_numpy_iterator():
        np.add.at(counts, (s, y), 1)
    out = {}
    for k, name in enumerate(parts):
        per_class = {CLASS_NAMES[c]: int(counts[k, c]) for c in (1, 0)}
        out[name] = {**per_class, "total": int(counts[k].sum())}
        if not out[name]["total"]:
            raise DataError(
                f"the {name} split is empty ({int(counts.sum())} images); use more images or change data.fractions"
            )
    return out


def _cached(root: Path, url: str, info: Any) -> bool:
    """Whether TFDS already holds a finished download of ``url`` under ``root/downloads``."""
    from tensorflow_datasets.core.download import resource

    downloads = root / "downloads"
    return any((downloads / resource.get_dl_fname(url, c)).is_file() for c in (info.checksum, None))


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host (or the HTTPS proxy) opens within ``timeout``.

    Run in a daemon thread because name resolution has no timeout of its own."""
    proxy = urllib.request.getproxies().get("https")
    target = urlsplit(proxy if proxy else url)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    done: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            done.append(True)
        except OSError:
            done.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(done and done[0])
