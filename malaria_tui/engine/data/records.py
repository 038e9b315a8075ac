"""Image records (path, label, patient group) for folder-backed sources, without TensorFlow.

``Parasitized`` is the positive class (label 1) everywhere in malaria-tui.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from malaria_tui.engine.data.groups import group_of
from malaria_tui.engine.errors import DataError

CLASS_NAMES = ("Uninfected", "Parasitized")  # index == label
POSITIVE = 1
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"}
TF_DECODABLE = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


@dataclass(frozen=True)
class Record:
    path: str
    label: int
    group: str


@dataclass(frozen=True)
class Scan:
    """What a folder holds: usable records and the files that were skipped, with why."""

    root: str
    records: list[Record]
    skipped: list[tuple[str, str]]
    groups_known: bool

    @property
    def tf_decodable(self) -> bool:
        return all(Path(r.path).suffix.lower() in TF_DECODABLE for r in self.records)


def sample_root() -> Path:
    """The bundled sample of real NIH cells (package data)."""
    return Path(str(resources.files("malaria_tui") / "sample_data"))


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``sample`` | ``tfds`` | ``tfds:DATA_DIR`` | ``folder:PATH`` -> (kind, argument)."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "sample" and not arg:
        return "sample", None
    if kind == "tfds":
        return "tfds", arg or None
    if kind == "folder" and arg:
        return "folder", arg
    raise DataError(f"data source {spec!r}: expected sample, tfds, tfds:DATA_DIR or folder:PATH")


def locate(spec: str) -> tuple[str, str]:
    """``(kind, root)`` of a ``data.source`` spec: the folder to read (the bundled sample's for
    ``sample``), or the TFDS data folder ("" for its default)."""
    kind, arg = parse_spec(spec)
    if kind == "sample":
        return kind, str(sample_root())
    return kind, arg or ""


def _walk_images(root: Path) -> list[Path]:
    """Image files below ``root``; symlinked folders are not followed, so loops cannot hang us."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(p)
    return found


def _problem(path: Path) -> str | None:
    """Why an image cannot be used, or ``None``; decodes fully, so truncated files are caught."""
    from PIL import Image

    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as im:
            if im.width < 1 or im.height < 1:
                return "no pixels"
            im.load()
    except Exception as e:  # any decoder failure means "skip this file"
        return f"not a readable image ({type(e).__name__})"
    return None


def scan_folder(root: str | os.PathLike, check: bool = True) -> Scan:
    """Records of a folder with one subfolder per class (``Parasitized``/``Uninfected``, any case)."""
    root_p = Path(root).expanduser()
    if not root_p.exists():
        raise DataError(
            f"{root_p}: data folder not found; pass --data folder:PATH to an existing folder"
        )
    if not root_p.is_dir():
        raise DataError(
            f"{root_p}: not a folder; expected a folder with Parasitized/ and Uninfected/"
        )
    class_dirs: dict[int, Path] = {}
    for child in sorted(root_p.iterdir()):
        if child.is_dir():
            for label, cname in enumerate(CLASS_NAMES):
                if child.name.lower() == cname.lower():
                    class_dirs[label] = child
    if not class_dirs:
        raise DataError(
            f"{root_p}: no Parasitized/ or Uninfected/ subfolder; put each class's images in its own subfolder"
        )
    files = [(label, p) for label, d in sorted(class_dirs.items()) for p in _walk_images(d)]
    problems = _check_all([p for _, p in files]) if check else [None] * len(files)
    records, skipped = [], []
    for (label, p), why in zip(files, problems, strict=True):
        if why:
            skipped.append((str(p), why))
        else:
            records.append(Record(str(p), label, group_of(p.name) or f"file:{p.name}"))
    counts = [sum(r.label == c for r in records) for c in (0, 1)]
    if not records:
        raise DataError(
            f"{root_p}: no readable images (skipped {len(skipped)}); expected PNG/JPEG/BMP/TIFF files"
        )
    missing = [CLASS_NAMES[c] for c in (0, 1) if counts[c] == 0]
    if missing:
        raise DataError(
            f"{root_p}: no images of class {missing[0]}; both Parasitized/ and Uninfected/ need images"
        )
    known = sum(not r.group.startswith("file:") for r in records)
    return Scan(str(root_p), records, skipped, groups_known=known >= 0.5 * len(records))


def _check_all(paths: list[Path]) -> list[str | None]:
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(_problem, paths, chunksize=64))
