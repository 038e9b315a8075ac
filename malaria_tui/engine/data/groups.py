"""Patient (slide) keys from NIH file names, so no patient lands in two splits.

The rule is the dataset README's: the token before ``thin``/``Thin`` with a trailing ``_``
removed, e.g. ``C100P61ThinF_IMG_...`` -> ``C100P61``.
"""

from __future__ import annotations

import re

GROUP_RE = re.compile(r"^(C\d+[A-Za-z]*?(?:P\d+)?[A-Za-z]*?)_?thin", re.IGNORECASE)


def group_of(file_name: str) -> str | None:
    """The patient key of a file name, or ``None`` when the name has none."""
    m = GROUP_RE.match(file_name)
    return m.group(1) if m else None
