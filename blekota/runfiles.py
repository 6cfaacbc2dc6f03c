"""The files a training run writes, all named after the run: NAME_N.npz checkpoints (N: the
iteration), NAME_N.wav sounds generated at checkpoints, NAME_best.npz (the lowest validation loss
so far) and the log NAME.log.jsonl (see blekota.trainlog); and, while train writes them, the lock
.NAME.lock that refuses a second train of the run there (run_lock).

Nothing blekota did not write is replaced, appended to or deleted: a run writes a name only where
there is no file, or a file blekota wrote (a model file, a sound carrying blekota's mark, a
training log), and never on a sound it trains on (a checkpoint sound trained on under its run's
name); it refuses to start when such a file is in its way.

In data-parallel training only rank 0 has a RunFiles: no other process writes a file.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import soundfile

try:
    import fcntl
except ImportError:  # Windows: runs go unlocked
    fcntl = None

from . import checks, fileformat, modelfile, trainlog
from .audio import is_marked, save_wav
from .errors import BlekotaError, ConfigError, ModelFileError, OverwriteWarning
from .fileutil import same_file
from .model import Model
from .plot import is_marked_png

Report = Callable[..., None]  # report(kind, path=None, message=""): see blekota.train.Progress


def split_name(name: object) -> tuple[Path, str]:
    """(folder, file name prefix) of a model name: "foo/bar" -> (foo, "bar"), "bar" -> (., "bar").
    The folder is relative and has no ".." parts, so the run's files stay inside its directory."""
    path = Path(name) if isinstance(name, str) and "\0" not in name else None
    if path is None or name.endswith(("/", os.sep)) or not checks.is_plain_name(path.name):
        raise ConfigError(
            f"name must be a file name prefix of at most {checks.MAX_NAME_BYTES} bytes, optionally after a "
            f"folder (foo/bar), got {name!r}"
        )
    if path.anchor or ".." in path.parts:
        raise ConfigError(f"name must stay inside directory: a relative folder without '..' parts, got {name!r}")
    return path.parent, path.name


def default_name(files: list[str]) -> str:
    """The run name for these training sound arguments (files, directories or globs): the first
    sound's name, or its directory's ("model" for the root)."""
    first = Path(files[0])
    if any(char in files[0] for char in "*?[") and not first.exists():
        first = first.parent
    if first.is_dir() or first != Path(files[0]):
        return first.resolve().name or "model"
    return first.stem


def file_names(paths: list[Path]) -> str:
    """Up to three of the paths' file names, then "and N more": "a_1.npz, a_2.npz and 4 more"."""
    return ", ".join(path.name for path in paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


class RunFiles:
    """Where and how one run writes: DIRECTORY/NAME_*.

    keep: keep only the newest `keep` NAME_N.npz up to the current iteration (0: all; NAME_best
    and sounds are kept). log: append to NAME.log.jsonl. report: told of every file written
    ("checkpoint") and of every failure ("warning"). A failed checkpoint, best-model save, sound
    or log line leaves the previous file intact and is only reported: training goes on. reads: the
    sounds the run trains on, never written over, not even when blekota wrote them.
    """

    def __init__(self, directory: str | os.PathLike, name: str, keep: int = 0, log: bool = True,
                 report: Report | None = None, reads: Sequence[str] = ()):
        self.directory = Path(directory)
        self.name = name
        self.keep = keep
        self.log = log
        self.report = report or (lambda *args, **kwargs: None)
        self.reads = list(reads)
        self.start: int | None = None  # the iteration the run goes on from (for_run): see append_log
        self._log_failed = self._log_checked = False

    def checkpoint_path(self, iteration: int) -> Path:
        """DIRECTORY/NAME_N.npz for iteration N."""
        return self.directory / f"{self.name}_{iteration}{modelfile.EXTENSION}"

    def sound_path(self, iteration: int) -> Path:
        """DIRECTORY/NAME_N.wav: the sound generated at the checkpoint of iteration N."""
        return self.directory / f"{self.name}_{iteration}.wav"

    def best_path(self) -> Path:
        """DIRECTORY/NAME_best.npz: the model with the lowest validation loss so far."""
        return self.directory / f"{self.name}_best{modelfile.EXTENSION}"

    def log_path(self) -> Path:
        """DIRECTORY/NAME.log.jsonl: the training log."""
        return self.directory / f"{self.name}.log.jsonl"

    def in_the_way(self, path: Path) -> bool:
        """Whether a file blekota did not write is at path (see the module docstring)."""
        if not os.path.lexists(path):
            return False
        if path.name.endswith(".log.jsonl"):
            return not trainlog.is_log(path)
        if path.suffix == ".wav":
            return not is_marked(path)
        if path.suffix == ".png":
            return not is_marked_png(path)
        return not fileformat.written_by_blekota(path)

    def claim(self, path: Path) -> None:
        """Raise BlekotaError when a file blekota did not write, or a sound the run trains on, is at path."""
        if self.is_read(path):
            raise BlekotaError(f"{path}: is a sound this run trains on, so it is left as it is")
        if self.in_the_way(path):
            raise BlekotaError(f"{path}: not a file blekota wrote, so it is left as it is")

    def is_read(self, path: Path) -> bool:
        """Whether path is one of the sounds the run trains on (under another name too)."""
        return any(same_file(path, sound) for sound in self.reads)

    def _left(self, path: Path) -> bool:
        """Whether a file blekota did not write, or a sound the run trains on, is at path; if so,
        warn that it is left as it is."""
        if self.is_read(path):
            what = "a sound this run trains on"
        elif self.in_the_way(path):
            what = "not a file blekota wrote"
        else:
            return False
        self.report("warning", message=f"{path}: {what}, so it is left as it is; training goes on")
        return True

    @classmethod
    def for_run(cls, directory: Path, name: str, keep: int, log: bool, report: Report, iteration: int,
                iterations: int, checkpoint_every: int, sound: bool, best: bool, reads: Sequence[str]) -> RunFiles:
        """The files of a run from `iteration` for `iterations` more, training on the sound files
        reads: the directory created, the way checked (check_way)."""
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(directory, name, keep, log, report, reads)
        files.check_way(iteration, iterations, checkpoint_every, sound, best)
        files.start = iteration
        return files

    def check_way(self, iteration: int, iterations: int, checkpoint_every: int, sound: bool, best: bool) -> None:
        """Refuse (BlekotaError) before a run from `iteration` for `iterations` more when a file
        blekota did not write, or a sound the run trains on, is where it may write: NAME_N.npz (N
        in the run), NAME_N.wav (at checkpoints, or at the end without them, when sound), NAME_best.npz
        (when best) and the log."""
        pattern = re.compile(re.escape(self.name) + r"_(\d+)(\.npz|\.wav)")
        planned = [self.best_path()] if best else []
        planned += [self.log_path()] if self.log else []
        for path in self.directory.iterdir():
            match = pattern.fullmatch(path.name)
            if match and iteration < int(match[1]) <= iteration + iterations:
                n = int(match[1])  # with checkpoint_every 0 the final save is the one checkpoint
                checkpoint = n % checkpoint_every == 0 if checkpoint_every else n == iteration + iterations
                if match[2] == modelfile.EXTENSION or (sound and checkpoint):
                    planned.append(path)
        for path in planned:
            if self.in_the_way(path):
                raise BlekotaError(
                    f"{path}: not a file blekota wrote, and this run would write there; give the run another "
                    "name or folder, or move the file"
                )
            if self.is_read(path):
                raise BlekotaError(f"{path}: is a sound this run trains on, and the run would write there; give the "
                                   "run another name or folder")

    def save_quietly(self, path: Path, model: Model, info: dict, arrays: dict[str, np.ndarray]) -> Path | None:
        """Save a model file; on failure report a warning and go on. Returns the path written or None."""
        if self._left(path):
            return None
        try:
            written = modelfile.save(path, model, info, arrays)
        except ModelFileError as error:
            self.report("warning", message=f"{error}; training goes on")
            return None
        self.report("checkpoint", path=written)
        return written

    def save_sound_quietly(self, iteration: int, sound: np.ndarray, fs: int) -> Path | None:
        """Write the checkpoint sound NAME_N.wav; on failure report a warning and go on."""
        path = self.sound_path(iteration)
        if self._left(path):
            return None
        try:
            written = save_wav(path, sound, fs, mark=True)
        except (OSError, soundfile.SoundFileError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            self.report("warning", message=f"{path}: could not write the checkpoint sound ({reason}); training goes on")
            return None
        self.report("checkpoint", path=written)
        return written

    def append_log(self, iteration: int, elapsed_s: float, train_loss: float | None, val_loss: float | None,
                   lr: float) -> None:
        """One log line, unless the log is off, failed before, or there is no loss to write. With
        the first, a run going on from `start` drops the log's lines past it: they are of a
        history it trains over (a run resumed from an older checkpoint, or a new one of the name)."""
        if not self.log or self._log_failed or (train_loss is None and val_loss is None):
            return
        line = trainlog.format_line(iteration, elapsed_s, train_loss, val_loss, lr)
        path = self.log_path()
        if not self._log_checked and self.in_the_way(path):
            self._log_failed = True
            self.report("warning", message=f"{path}: not a training log, so it is left as it is; training goes on without a log")
            return
        try:
            if not self._log_checked and self.start is not None:
                trainlog.cut_after(path, self.start)
            self._log_checked = True
            trainlog.append(path, line)
        except OSError as error:
            self._log_failed = True
            self.report("warning", message=f"{path}: cannot write the log ({error.strerror or error}); training goes on without it")

    def checkpoints(self) -> list[tuple[int, Path]]:
        """The NAME_N.npz checkpoints in the directory as (N, path), by N."""
        pattern = re.compile(re.escape(self.name) + r"_(\d+)" + re.escape(modelfile.EXTENSION))
        if not self.directory.is_dir():
            return []
        return sorted((int(match[1]), path) for path in self.directory.iterdir()
                      if (match := pattern.fullmatch(path.name)))

    def earlier_run(self) -> list[Path]:
        """The files an earlier run of this name left in the directory: its log, NAME_best.npz and
        the NAME_N.npz checkpoints (the newest last), those that blekota wrote."""
        named = [self.log_path(), self.best_path()] + [path for _, path in self.checkpoints()]
        return [path for path in named if path.exists() and not self.in_the_way(path)]

    def later_than(self, iteration: int, lineage: dict | None = None) -> list[Path]:
        """The files blekota wrote for this run after `iteration`, model files first, each by N:
        NAME_N.npz and NAME_N.wav with N > iteration, and NAME_best.npz when its metadata says it
        was saved later. With lineage (the "history" and "val_history" of the model at
        `iteration`), a model file whose histories do not go on from those is another run's (one
        that train --force started over) and is left out, with its sound."""
        if not self.directory.is_dir():
            return []
        pattern = re.compile(re.escape(self.name) + r"_(\d+)(\.npz|\.wav)")
        found = [(match[2] != modelfile.EXTENSION, int(match[1]), path) for path in self.directory.iterdir()
                 if (match := pattern.fullmatch(path.name)) and int(match[1]) > iteration]
        info = self._info(self.best_path())
        saved = info.get("iterations")
        if checks.is_integer(saved) and saved > iteration:
            found.append((False, int(saved), self.best_path()))
        if lineage is not None:
            others = {path for is_sound, _, path in found if not is_sound and not self._goes_on_from(path, lineage)}
            their_sounds = {n for _, n, path in found if path in others and path != self.best_path()}
            found = [(is_sound, n, path) for is_sound, n, path in found
                     if path not in others and not (is_sound and n in their_sounds)]
        return [path for *_, path in sorted(found) if not self.in_the_way(path)]

    @staticmethod
    def _info(path: Path) -> dict:
        """The info in the metadata of the model file at path ({} where there is none)."""
        info = (fileformat.peek_meta(path) or {}).get("info")
        return info if isinstance(info, dict) else {}

    def _goes_on_from(self, path: Path, lineage: dict) -> bool:
        """Whether the model file at path continues the model whose histories are lineage's: its
        own start with them (a file without them is taken to)."""
        info = self._info(path)
        for key in ("history", "val_history"):
            own, before = info.get(key), lineage.get(key) or []
            if isinstance(own, list) and [list(row) for row in own[: len(before)]] != [list(row) for row in before]:
                return False
        return True

    def prune(self, iteration: int) -> None:
        """Delete all but the newest `keep` NAME_N.npz with N <= iteration."""
        if not self.keep:
            return
        numbered = [(n, path) for n, path in self.checkpoints() if n <= iteration and not self.in_the_way(path)]
        for _, path in numbered[: -self.keep]:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                self.report("warning", message=f"{path}: could not delete ({error.strerror or error})")


def warn_of_later_files(directory: Path, name: str, iteration: int, source: str | os.PathLike,
                        lineage: dict | None = None, reads: Sequence[str] = ()) -> None:
    """Warn (OverwriteWarning, at the line that called this function's caller) when run name in
    directory has files from after iteration (of the run lineage goes on, see
    RunFiles.later_than), which training from source (a model file) writes over; the sounds
    it trains on (reads) are left as they are, so they are not named."""
    files = RunFiles(Path(directory), name, reads=reads)
    later = [path for path in files.later_than(iteration, lineage) if not files.is_read(path)]
    if later:
        warnings.warn(f"{directory}: holds this run's files from after iteration {iteration} ({file_names(later)}), "
                      f"which training from {source} writes over", OverwriteWarning, stacklevel=3)


_held_locks: set[str] = set()  # the run locks this process holds (their files' real paths)


@contextmanager
def run_lock(directory: Path, name: str) -> Iterator[None]:
    """Hold run name's lock in directory for the block, so that a second train of that name there
    at the same time (in another process) is refused (BlekotaError) rather than writing its files
    among this one's. The lock is an empty file .NAME.lock locked with flock(), removed when the
    block ends; where no lock can be had (no fcntl, a file system without locks, something else
    under that name) the block runs without one. A block inside another of the same lock in this
    process (the train command's, then its Trainer.train's) goes on under the outer one."""
    path = directory / f".{name}.lock"
    key = os.path.realpath(path)
    if key in _held_locks:
        yield
        return
    try:
        descriptor = _locked(path)
    except BlockingIOError:
        raise BlekotaError(f"{directory}: another train of {name} is writing its files here now; let it end "
                           "first, or give another --model-name") from None
    _held_locks.add(key)
    try:
        yield
    finally:
        _held_locks.discard(key)
        if descriptor is not None:
            with suppress(OSError):
                path.unlink()  # while locked: whoever locks the old file next sees that it is gone
            os.close(descriptor)


def _locked(path: Path) -> int | None:
    """An open descriptor of the lock file at path, locked; None where no lock can be had.
    BlockingIOError when another holds it."""
    if fcntl is None:
        return None
    while True:
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError:
            return None
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode) or info.st_size:  # not a lock file of blekota's
                os.close(descriptor)
                return None
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if isinstance(error, BlockingIOError):
                raise
            return None
        try:
            now = os.stat(path, follow_symlinks=False)
        except OSError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino):
            return descriptor
        os.close(descriptor)  # the run that held it ended and removed it meanwhile: lock the new one
