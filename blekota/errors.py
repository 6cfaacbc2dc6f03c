"""The exceptions blekota raises for bad input (one line that names the file or parameter), the
install hint they give when an optional part is missing, a file's name in the commands they
suggest, and their text made one printable line."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class BlekotaError(Exception):
    """Base class of every error blekota reports to its user."""


class ConfigError(BlekotaError, ValueError):
    """A hyperparameter or argument has an unsupported value or type."""


class AudioError(BlekotaError):
    """An audio file is missing, unreadable, not audio, or unusable for training."""


class ModelFileError(BlekotaError):
    """A model file is missing, not a blekota model, corrupted, or from a newer version."""


def install_hint(extra: str) -> str:
    """How to install one of blekota's optional parts (pyproject.toml's extras): from a package
    index, or in a clone of the repository, as README.md installs it."""
    return f'pip install "blekota[{extra}]", or in a clone of blekota: pip install -e ".[{extra}]"'


def command_word(path: str | os.PathLike) -> str:
    """A file's name as a message's command line gives it, to be copied: quoted for the shell,
    and after ./ where it starts with "-" (a command would take it for an option)."""
    name = str(path)
    return shlex.quote(f"./{name}" if name.startswith("-") else name)


def one_line(message: str) -> str:
    """message as printed: its control characters (a newline or an escape sequence in a file's
    name) and the bytes of a name that is not UTF-8 written as escapes, so that it stays one line
    and does nothing to the terminal."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


class TrainingDiverged(BlekotaError):
    """Training stopped because the loss or the weights became NaN or infinite."""

    @classmethod
    def at(cls, iteration: int, what: str, lr: float, last_saved: Path | None) -> TrainingDiverged:
        """The error for `what` (the loss, the weights) gone bad at `iteration` and learning rate
        lr; last_saved: the run's last file saved, kept (None: none)."""
        kept = f"; {last_saved}, the last file saved, is kept" if last_saved else "; nothing was saved in this run"
        return cls(f"training diverged at iteration {iteration}: {what} became NaN or infinite at learning "
                   f"rate {lr:g}{kept}")


class BlekotaWarning(UserWarning):
    """Input blekota accepts but the user should know about (e.g. a silent training sound)."""


class OverwriteWarning(BlekotaWarning):
    """Training will write over files blekota wrote earlier: a run resumed at a checkpoint older
    than the run's later files."""
