"""Test-time augmentation: a cell on a slide has no orientation, so its probability is averaged
over the eight flips and 90-degree rotations of the image (the dihedral group of the square).

Used by the end-of-run evaluation (``eval.tta``) and by ``predict --tta`` alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def dihedral(x: np.ndarray) -> list[np.ndarray]:
    """The eight flips and 90-degree rotations of a batch (N, H, W, C)."""
    out = []
    for k in range(4):
        r = np.rot90(x, k, axes=(1, 2))
        out += [r, r[:, :, ::-1]]
    return out


def dihedral_mean(probabilities: Callable[[np.ndarray], object], x: np.ndarray) -> np.ndarray:
    """``probabilities`` (a batch of images -> P(Parasitized)) averaged over the eight views."""
    views = dihedral(np.asarray(x))
    return np.mean(
        [np.asarray(probabilities(np.ascontiguousarray(v))).ravel() for v in views], axis=0
    )
