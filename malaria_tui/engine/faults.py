"""Runtime faults in words a user can act on (out of memory, a vanished file, a full disk).

TensorFlow reports its own file errors as ``tf.errors`` exceptions, not ``OSError``: the errno
is only in the text (``.../ckpt_temp/part-...; No space left on device``) and the class is
picked from it (ENOSPC and EDQUOT become ``ResourceExhaustedError``, the very class of an
out-of-memory error; EFBIG becomes ``OutOfRangeError``). So the text is read first.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

# strerror text -> errno, for errors that arrive from TensorFlow's C++ file system as text
_TEXT_ERRNO = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "File too large": errno.EFBIG,
    "Read-only file system": errno.EROFS,
    "No such file or directory": errno.ENOENT,
}
_TF_PATH = re.compile(r"(?:^|\s)(/[^;\n]*?|[A-Za-z]:\\[^;\n]*?); (" + "|".join(_TEXT_ERRNO) + ")")
# the ``{{function_node __wrapped__...}}`` prefix of TensorFlow's messages, meaningless to users
_TF_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


def _readable_dir(path: str) -> str:
    """The folder a user recognises: a temp file's first real ancestor
    (``checkpoints/.state-*.tmp/ckpt_temp/part-...tempstate...`` becomes ``checkpoints``)."""
    p = Path(path)
    while p.parent != p and (
        p.name.startswith(".") or p.name == "ckpt_temp" or "tempstate" in p.name
    ):
        p = p.parent
    return str(p)


def _os_error(e: BaseException) -> tuple[int, str] | None:
    """(errno, path) of a file-system error, from an ``OSError`` or a TensorFlow error's text."""
    if isinstance(e, OSError) and e.errno is not None:
        return e.errno, str(e.filename or "")
    if type(e).__module__.startswith("tensorflow"):
        m = _TF_PATH.search(str(e))
        if m:
            return _TEXT_ERRNO[m.group(2)], m.group(1)
    return None


def explain_fault(e: BaseException) -> str:
    """One line naming what went wrong and what to change."""
    name = type(e).__name__
    text = _TF_NODE.sub("", (str(e).strip().splitlines() or [""])[0])[:200]
    fs = _os_error(e)
    if fs is not None:
        code, path = fs
        where = _readable_dir(path) if path else "the run directory"
        if code in (errno.ENOSPC, errno.EDQUOT):
            what = "disk full" if code == errno.ENOSPC else "disk quota exceeded"
            return (
                f"{what} writing {where}; free space on that disk and resume the run "
                "(or train again with --runs-dir on another disk)"
            )
        if code == errno.EFBIG:
            return (
                f"file too large writing {where} (over the file-size limit, `ulimit -f`, or the "
                "file system's maximum); raise the limit and resume the run "
                "(or train again with --runs-dir on another disk)"
            )
        if code in (errno.EACCES, errno.EROFS, errno.EPERM):
            reason = "read-only file system" if code == errno.EROFS else "permission denied"
            return f"cannot write {where} ({reason}); pass a writable --runs-dir"
        if code == errno.ENOENT:  # TensorFlow reads only the data files while training
            what = "a file" if isinstance(e, OSError) else "a data file"
            return f"{what} disappeared during training ({path}); restore it and resume the run"
    if name == "ResourceExhaustedError" or isinstance(e, MemoryError):
        return (
            "out of memory; lower data.batch_size or data.image_size and start a new run "
            "(checkpoints already written are kept)"
        )
    if name == "NotFoundError":
        return f"a data file disappeared during training ({text}); restore it and resume the run"
    if name in ("InvalidArgumentError", "UnknownError") and (
        "decode" in text.lower() or "image" in text.lower()
    ):
        return f"an image could not be decoded during training ({text}); remove the file and resume"
    return f"{name}: {text}"
