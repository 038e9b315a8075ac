"""Errors that are the user's to fix: the front ends print them as one line and exit 2."""


class UserError(Exception):
    """Bad input (config, data, run folder, model file): shown as one line, exit code 2."""


class ConfigError(UserError):
    """A config file or override is invalid."""


class DataError(UserError):
    """A data source is missing, empty or unusable."""


class RunDirError(UserError):
    """A path given as a run directory is not one (or is busy)."""


class TrainingFailed(Exception):
    """Training stopped for a numerical or runtime reason (exit code 1)."""
