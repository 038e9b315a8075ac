"""A small, real ``cell_images.zip`` for exercising TFDS's ``malaria`` builder offline.

The layout is NIH's (and what ``malaria_dataset_builder.py`` reads): ``cell_images/Parasitized/*.png``
and ``cell_images/Uninfected/*.png``, plus a ``Thumbs.db`` per class folder like the real zip has;
the builder keeps only ``*.png`` entries, so it must be skipped. The PNG bytes are real NIH cells,
copied unchanged: the original colour crops first, then 50x50 grayscale copies to fill up.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

CLASSES = ("Parasitized", "Uninfected")
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # next to the repo, here and in CI
# Not an image: a stand-in for the Windows thumbnail cache (an OLE2 file) that NIH's zip carries.
THUMBS_DB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


def source_images(label: str) -> list[Path]:
    """Real cells of one class, colour originals first; the bundled sample if shared/ is absent."""
    roots = [SHARED_DATA / "malaria-rgb" / "cell_images", SHARED_DATA / "malaria" / "cell_images"]
    found = [p for r in roots for p in sorted((r / label).glob("*.png"))]
    if not found:
        found = sorted((REPO_ROOT / "malaria_tui" / "sample_data" / label).glob("*.png"))
    if not found:
        raise FileNotFoundError(f"no {label} images under {SHARED_DATA} or the bundled sample")
    return found


def make_cell_images_zip(dest_dir: str | Path, n_per_class: int = 12) -> Path:
    """Write ``dest_dir/cell_images.zip`` with ``n_per_class`` real PNGs per class; return its path.

    With the shared data, 12 per class gives the 11 colour Parasitized crops plus one grayscale
    cell, so both RGB and 1-channel PNGs go through TFDS's 3-channel decoding.
    """
    dest = Path(dest_dir) / "cell_images.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
        for label in CLASSES:
            images = source_images(label)[:n_per_class]
            if len(images) < n_per_class:
                raise ValueError(f"only {len(images)} {label} images available")
            for p in images:
                zf.write(p, f"cell_images/{label}/{p.name}")
            zf.writestr(f"cell_images/{label}/Thumbs.db", THUMBS_DB)
    return dest


def png_counts(zip_path: str | Path) -> dict[str, int]:
    """Number of PNG members per class folder of a ``cell_images.zip``."""
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    return {
        c: sum(n.startswith(f"cell_images/{c}/") and n.endswith(".png") for n in names)
        for c in CLASSES
    }


def malaria_builder_for(zip_path: str | Path):
    """TFDS's own ``malaria`` builder class, with ``zip_path``'s size and sha256 as the registered
    checksum of the NIH URL.

    TFDS validates a file found in ``manual_dir`` against the builder's ``url_infos`` and offers
    no switch to skip that; ``register_checksums=True`` would instead rewrite the checksums.tsv
    inside the installed tensorflow_datasets package. So the test registers its zip the way a
    dataset author does, in the builder's ``url_infos``, computed by TFDS's own
    ``compute_url_info``: the manual file is still verified, just against the test archive.
    Same name, version and features, so what it prepares is what ``tfds.builder("malaria")`` reads.
    """
    import dataclasses

    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import checksums

    base = tfds.builder_cls("malaria")
    ((url, registered),) = base.url_infos.items()
    info = dataclasses.replace(checksums.compute_url_info(zip_path), filename=registered.filename)

    class Builder(base, skip_registration=True):
        name = "malaria"
        url_infos = {url: info}

    return Builder
