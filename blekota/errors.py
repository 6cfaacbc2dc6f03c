"""The exceptions blekota raises for bad input: one line that names the file or parameter."""


class BlekotaError(Exception):
    """Base class of every error blekota reports to its user."""


class ConfigError(BlekotaError, ValueError):
    """A hyperparameter or argument has an unsupported value or type."""


class AudioError(BlekotaError):
    """An audio file is missing, unreadable, not audio, or unusable for training."""


class ModelFileError(BlekotaError):
    """A model file is missing, not a blekota model, corrupted, or from a newer version."""


class TrainingDiverged(BlekotaError):
    """Training stopped because the loss or the weights became NaN or infinite."""


class BlekotaWarning(UserWarning):
    """Input blekota accepts but the user should know about (e.g. a silent training sound)."""
