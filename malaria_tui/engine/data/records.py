"""Image records (path, label, patient group) for folder-backed sources, without TensorFlow.

``Parasitized`` is the positive class (label 1) everywhere in malaria-tui.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from malaria_tui.engine.data import scan_cache
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


def _walk_images(top: Path, base: Path) -> list[tuple[Path, str]]:
    """Image files below ``top``, each with its path relative to ``base`` (the scan cache's key);
    symlinked folders are not followed, so loops cannot hang us."""
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        rel = os.path.relpath(dirpath, base)  # once per folder: cheap for 23k files
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append((p, os.path.join(rel, name)))
    return found


# Bump when _problem's rules change: verdicts cached under the old rules are then decoded again.
_PROBLEM_RULES = 1


def _problem(path: Path) -> str | None:
    """Why an image cannot be used, or ``None``; decodes fully, so truncated files are caught.

    A failure of the operating system rather than of the file's bytes (an ``OSError`` with an
    errno, such as EIO or EACCES; Pillow's own ``OSError``s have none) is reported the same way
    but marked :class:`scan_cache.Unremembered`, so the scan cache decodes the file again next
    time instead of skipping it for good."""
    from PIL import Image

    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as im:
            if im.width < 1 or im.height < 1:
                return "no pixels"
            im.load()
    except Exception as e:  # any decoder failure means "skip this file"
        why = f"not a readable image ({type(e).__name__})"
        return scan_cache.Unremembered(why) if getattr(e, "errno", None) else why
    return None


def _checker() -> str:
    """What the verdicts of :func:`_problem` depend on besides the file: its rules and Pillow."""
    import PIL

    return f"problem rules {_PROBLEM_RULES}, Pillow {PIL.__version__}"


def scan_folder(root: str | os.PathLike, check: bool = True) -> Scan:
    """Records of a folder with one subfolder per class (``Parasitized``/``Uninfected``, any case).

    ``check`` decodes every image to skip unreadable ones; what it found is kept in the scan
    cache (:mod:`scan_cache`), so a later scan decodes only the files added or changed since.
    The folder is walked every time, and the result is the same as without the cache."""
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
    files = [
        (label, *f) for label, d in sorted(class_dirs.items()) for f in _walk_images(d, root_p)
    ]
    problems: list[str | None] = [None] * len(files)
    if check:
        keyed = [(key, p) for _, p, key in files]
        problems = scan_cache.verdicts(root_p, keyed, _check_all, _checker())
    records, skipped = [], []
    for (label, p, _), why in zip(files, problems, strict=True):
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
