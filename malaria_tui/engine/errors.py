"""Errors that are the user's to fix: the front ends print them as one line and exit 2."""


class UserError(Exception):
    """Bad input (config, data, run folder, model file): shown as one line, exit code 2."""


class ConfigError(UserError):
    """A config file or override is invalid."""


class DataError(UserError):
    """A data source is missing, empty or unusable."""


class RunDirError(UserError):
    """A path given as a run directory is not one (or is busy)."""


class ModelFileError(UserError):
    """A saved model is missing, damaged, of another kind, or refused as unsafe to load."""


class TrainingFailed(Exception):
    """Training stopped for a numerical or runtime reason (exit code 1)."""


def one_line(e: BaseException, limit: int = 160) -> str:
    """An exception as one line to show or quote: a ``UserError`` by its message alone (it is
    written for the user), anything else as ``Type: first line``, cut at ``limit``."""
    text = str(e).strip().splitlines()
    head = text[0][:limit] if text else ""
    if isinstance(e, UserError) and head:
        return head
    return f"{type(e).__name__}: {head}" if head else type(e).__name__
