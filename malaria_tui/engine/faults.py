"""Runtime faults in words a user can act on (out of memory, a vanished file, a full disk)."""

from __future__ import annotations

import errno


def explain_fault(e: BaseException) -> str:
    """One line naming what went wrong and what to change."""
    name = type(e).__name__
    text = (str(e).strip().splitlines() or [""])[0][:200]
    if name == "ResourceExhaustedError" or isinstance(e, MemoryError):
        return "out of memory; lower data.batch_size or data.image_size (the run can be resumed)"
    if name == "NotFoundError":
        return f"a data file disappeared during training ({text}); restore it and resume the run"
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return f"disk full writing {e.filename or 'the run directory'}; free space (or pass --runs-dir) and resume"
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"cannot write {e.filename or 'the run directory'} ({e.strerror}); pass a writable --runs-dir"
    if name in ("InvalidArgumentError", "UnknownError") and (
        "decode" in text.lower() or "image" in text.lower()
    ):
        return f"an image could not be decoded during training ({text}); remove the file and resume"
    return f"{name}: {text}"
