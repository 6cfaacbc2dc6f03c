"""Truncated backpropagation through time over sounds, with validation, a learning-rate
schedule, a log, checkpoints and exactly resumable state.

The training part of the sounds is laid into `batch_size` parallel streams of windows (see
blekota.dataset: no window spans two sounds; a stream's state is reset where it moves on to
another sound). Each iteration trains on the next window of `seq_length` steps of every stream,
starting from the hidden state the previous window ended with. When the streams are used up, an
epoch ends: the position and the hidden state go back to the start. Every `val_every` iterations
and at the end, the loss on the held-out tails is measured; the best model is kept as
NAME_best.npz.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from . import memory, modelfile, trainlog
from .audio import save_wav
from .dataset import Dataset, WindowLayout, held_out, validation_pieces
from .errors import AudioError, BlekotaWarning, ConfigError, ModelFileError
from .model import Model, _positive_int, _seed
from .mulaw import SILENCE
from .optim import OPTIMIZERS, make_optimizer
from .schedule import Schedule, make_schedule

REPORT_EVERY = 50
VAL_EVERY = 200
VAL_FRACTION = 0.05
VAL_MIN_WINDOWS = 10

PRESETS: dict[str, dict] = {
    # the lowest held-out loss after 10 and 20 minutes on speech and music (benchmarks/README.md)
    # (schedule None: plateau when there is validation, else constant)
    "default": {"optimizer": "adam", "lr": 4e-3, "schedule": None},
    # the original NumPy blekota's update rule, learning rate and fixed schedule
    "original": {"optimizer": "rmsprop", "lr": 2e-3, "schedule": "constant"},
    # what the usual PyTorch recipe does (Adam at 2e-3, constant)
    "pytorch": {"optimizer": "adam", "lr": 2e-3, "schedule": "constant"},
}
DEFAULTS = PRESETS["default"]


@dataclass
class Progress:
    """One report from the trainer to its callback.

    kind: "step" (after every iteration, only with report_steps; loss is that window's),
    "progress" (every report_every iterations), "validation" (val_loss was just measured),
    "checkpoint" (path was written; also NAME_best.npz), "note" (message: the learning rate
    changed), "warning" (message: a save or the log failed; training goes on), "done" or
    "interrupted" (train() is returning; path is the final model file).
    loss: mean nats per sample over the iterations before the latest progress report.
    val_loss, best_val_loss: the latest and the lowest validation loss, nats per sample.
    lr: the learning rate in use. elapsed_s: seconds since train() started.
    """

    kind: str
    iteration: int
    epoch: int
    loss: float | None
    samples_per_s: float
    elapsed_s: float
    iterations_left: int
    path: Path | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    lr: float = 0.0
    message: str = ""

    @property
    def val_bits(self) -> float | None:
        """The validation loss in bits per sample."""
        return None if self.val_loss is None else self.val_loss / math.log(2)


@dataclass
class TrainResult:
    """What train() did: iterations run, the last reported loss, the last validation loss, the
    final file, interruption."""

    iterations: int
    loss: float | None
    path: Path | None
    interrupted: bool
    val_loss: float | None = None


def warn_if_silent(levels: np.ndarray, files: list[str]) -> None:
    """Warn (BlekotaWarning) when every level is silence: the model would learn only silence."""
    if levels.size and (levels == SILENCE).all():
        where = f"{', '.join(files)}: " if files else ""
        warnings.warn(
            f"{where}the training sound is silent (every sample quantizes to silence); "
            "the model will learn silence",
            BlekotaWarning,
            stacklevel=3,
        )


class Trainer:
    """Trains a Model on sounds with truncated BPTT.

    model: the Model to train (updated in place). audio: a sound file, a list of files, a
    directory (its sound files, sorted), a glob string, or a float array at model.fs.
    seq_length: steps per window (T). batch_size: parallel streams (B). optimizer: "adam",
    "rmsprop" (the original's) or "adagrad"; lr: its (initial) learning rate. schedule:
    "constant", "step", "plateau", a blekota.schedule.Schedule, or None: plateau when there is
    validation, else constant. The defaults are PRESETS["default"]; PRESETS holds other sets
    (the original's RMSprop) to pass as **PRESETS[name]. val_fraction: the tail of every sound
    held out for validation (0: none); val_every: validate every that many iterations (0: only
    at the end).
    name: prefix of the files written. checkpoint_every: save NAME_N.npz every that many
    iterations (0: never); checkpoint_sound: also generate that many samples and save NAME_N.wav;
    keep: keep only the newest `keep` NAME_N.npz up to the current iteration (0: all; NAME_best
    and sounds are kept). directory: where files go. log: append to NAME.log.jsonl there (see
    blekota.trainlog). callback: called with a Progress at reports, validations and files written
    (and after every iteration when report_steps). seed: seeds the sounds generated at checkpoints.

    A failed checkpoint or best-model save (disk full, no permission) leaves the previous file
    intact, is reported as a "warning" and training goes on; only the final save raises.
    """

    def __init__(
        self,
        model: Model,
        audio,
        seq_length: int = 100,
        batch_size: int = 80,
        optimizer: str = DEFAULTS["optimizer"],
        lr: float = DEFAULTS["lr"],
        name: str = "unnamed_model",
        checkpoint_every: int = 1000,
        checkpoint_sound: int = 0,
        directory: str | os.PathLike = ".",
        callback: Callable[[Progress], None] | None = None,
        report_every: int = REPORT_EVERY,
        seed: int | None = None,
        val_fraction: float = VAL_FRACTION,
        val_every: int = VAL_EVERY,
        schedule: str | Schedule | None = None,
        keep: int = 0,
        log: bool = True,
        report_steps: bool = False,
    ):
        self.model = model
        self.seq_length = _positive_int("seq_length", seq_length)
        self.batch_size = _positive_int("batch_size", batch_size)
        for option, value in (("checkpoint_every", checkpoint_every), ("val_every", val_every), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{option} must be an integer >= 0, got {value!r}")
        if not isinstance(name, str) or not name or os.sep in name:
            raise ConfigError(f"name must be a non-empty file name prefix, got {name!r}")
        if (
            isinstance(checkpoint_sound, bool)
            or not isinstance(checkpoint_sound, (int, np.integer))
            or checkpoint_sound < 0
        ):
            raise ConfigError(f"checkpoint_sound must be an integer >= 0, got {checkpoint_sound!r}")
        self.name = name
        self.checkpoint_every = checkpoint_every
        self.checkpoint_sound = int(checkpoint_sound)
        self.directory = Path(directory)
        self.callback = callback
        self.report_every = _positive_int("report_every", report_every)
        self.val_every = val_every
        self.keep = keep
        self.log = bool(log)
        self.report_steps = bool(report_steps)
        if schedule is None:
            schedule = "plateau" if val_fraction else "constant"
        self.schedule = make_schedule(schedule) if isinstance(schedule, str) else schedule
        if not isinstance(self.schedule, Schedule):
            raise ConfigError(f"schedule must be a name or a Schedule, got {schedule!r}")
        slots = len(OPTIMIZERS[optimizer].slots) if optimizer in OPTIMIZERS else 2
        memory.ensure(
            memory.training_bytes(model.layers, model.hidden, self.seq_length, self.batch_size,
                                  model.dtype.itemsize, slots),
            f"training a {model.layers}x{model.hidden} {model.dtype.name} model with seq_length "
            f"{self.seq_length} and batch_size {self.batch_size}",
            "use a smaller batch_size, seq_length or hidden",
        )
        self.optimizer = make_optimizer(optimizer, model.n_params, model.dtype, lr)
        self.grads = np.empty_like(model.params)
        self.rng = np.random.default_rng(_seed(seed))
        self.iteration = int(model.info.get("iterations", 0))
        self.epoch = int(model.info.get("epochs", 0))
        self.history: list[list[float]] = [list(row) for row in model.info.get("history", [])]
        self.val_history: list[list[float]] = [list(row) for row in model.info.get("val_history", [])]
        self.best_val_loss: float | None = model.info.get("best_val_loss")
        self.val_loss: float | None = self.val_history[-1][1] if self.val_history else None
        self.continues_data = False
        self._saved_iteration = -1
        self._run_start = time.perf_counter()
        self._done = self._iterations = 0
        self._last_loss: float | None = None
        self._log_failed = False
        self.val_fraction = val_fraction
        self.set_audio(audio)
        if self.schedule.name == "plateau" and not self.val_samples:
            raise ConfigError("the plateau schedule needs validation: val_fraction must be > 0")

    def set_audio(self, audio) -> None:
        """Train on these sounds (see the class docstring); restarts at their start."""
        data = Dataset.load(audio, self.model.fs)
        train_ranges, val_ranges = data.split(self.val_fraction)
        T, B = self.seq_length, self.batch_size
        try:
            layout = WindowLayout(train_ranges, T, B)
        except ValueError:
            need = B * T + 1
            while need - held_out(need, self.val_fraction) < B * T + 1:
                need += 1
            where = f"{data.files[0]}: " if len(data.files) == 1 else ""
            raise AudioError(
                f"{where}the sound is too short: {data.levels.size} samples, need at least {need} "
                f"({need / self.model.fs:.2f} s at {self.model.fs} Hz) for batch_size {B} windows of "
                f"seq_length {T} plus the {self.val_fraction:.0%} held out for validation"
            ) from None
        if self.val_fraction and not any(stop - start >= 2 for start, stop in val_ranges):
            raise AudioError(f"the sound is too short to hold out {self.val_fraction:.0%} for validation")
        self.data, self.layout, self.files = data, layout, data.files
        self._val = validation_pieces(val_ranges, B, VAL_MIN_WINDOWS * T)
        self.val_samples = sum(stop - start - 1 for start, stop in val_ranges)
        self._data_sha256 = data.sha256()
        warn_if_silent(data.levels, data.files)
        self.position = 0
        self.h = self.model.zero_state(B)

    @property
    def samples_per_iteration(self) -> int:
        return self.seq_length * self.batch_size

    def _next_window(self) -> np.ndarray:
        """The (T+1, B) levels of the next window; zeroes the state of streams that start a new
        sound; starts a new epoch when the streams end."""
        if self.position >= self.layout.windows_per_stream:
            self.epoch += 1
            self.position = 0
        self.h[:, self.layout.reset[:, self.position], :] = 0
        return self.layout.window(self.data.levels, self.position)

    def step(self) -> float:
        """One training iteration: forward, backward, optimizer update, schedule. Returns the loss."""
        x = self._next_window()
        loss, h_last = self.model.window(x, self.h, self.grads)
        self.optimizer.step(self.model.params, self.grads)
        self.h = h_last
        self.position += 1
        self.iteration += 1
        self.optimizer.lr = self.schedule.after_step(self.iteration, self.optimizer.lr)
        return loss

    def validation_loss(self) -> float | None:
        """Mean nats per held-out sample (None when nothing is held out), by forward passes only.

        The held-out tails are cut into about batch_size pieces of at least 10 windows that run
        side by side from a zero state, carrying their state from window to window.
        """
        starts, L, rest = self._val
        levels, T = self.data.levels, self.seq_length
        total, count = 0.0, 0
        h_full = None
        if starts.size:
            h = self.model.zero_state(starts.size)
            for offset in range(0, L, T):
                steps = min(T, L - offset)
                x = levels[starts[None, :] + offset + np.arange(steps + 1)[:, None]]
                loss, h = self.model.window(x, h)
                total += float(loss) * steps * starts.size
                count += steps * starts.size
            h_full = h
        for start, stop, piece in rest:
            h = self.model.zero_state(1) if piece < 0 else h_full[:, piece : piece + 1]
            for offset in range(start, stop - 1, T):
                end = min(offset + T, stop - 1)
                loss, h = self.model.window(levels[offset : end + 1, None], h)
                total += float(loss) * (end - offset)
                count += end - offset
        return total / count if count else None

    def train(self, iterations: int, max_seconds: float | None = None) -> TrainResult:
        """Run `iterations` iterations (or until max_seconds of wall time have passed), validate,
        then save NAME_N.npz (N = total iterations so far).

        Ctrl+C (SIGINT) or SIGTERM ends training after the current update and still saves
        (without the final validation); so does a KeyboardInterrupt raised by the callback.
        Returns a TrainResult. Raises ModelFileError if the final save fails (the previous file
        of that name is intact and the trainer can save elsewhere).
        """
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ConfigError(f"iterations must be an integer >= 0, got {iterations!r}")
        if max_seconds is not None and (
            isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0
        ):
            raise ConfigError(f"max_seconds must be > 0, got {max_seconds!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._run_start = time.perf_counter()
        self._done, self._iterations = 0, int(iterations)
        window_losses: list[float] = []
        self._stop = False
        interrupted = False
        pending_loss = None
        with self._deferred_interrupts():
            try:
                while self._done < iterations and not self._stop:
                    if max_seconds is not None and time.perf_counter() - self._run_start >= max_seconds:
                        break
                    lr = self.optimizer.lr
                    loss = self.step()
                    window_losses.append(loss)
                    self._done += 1
                    if self.report_steps:
                        self._report("step", loss=loss)
                    if self.optimizer.lr != lr:
                        self._report("note", message=f"learning rate {lr:.3g} -> {self.optimizer.lr:.3g}")
                    train_loss = None
                    if self._done % self.report_every == 0 or self._done == iterations:
                        train_loss = self._record_loss(window_losses)
                        self._report("progress")
                    val_loss = None
                    if self.val_every and self.val_samples and self.iteration % self.val_every == 0:
                        val_loss = self._validate(scheduled=True)
                    if self._done == iterations and val_loss is None:
                        pending_loss = train_loss  # logged with the final validation
                    else:
                        self._log(train_loss, val_loss)
                    if self.checkpoint_every and self.iteration % self.checkpoint_every == 0:
                        self._save_checkpoint()
            except KeyboardInterrupt:
                interrupted = True
            interrupted = interrupted or self._stop
            train_loss = self._record_loss(window_losses) if window_losses else pending_loss
            val_loss = None
            validated = self.val_history and self.val_history[-1][0] == self.iteration
            if self.val_samples and not interrupted and not validated:
                val_loss = self._validate(scheduled=False)
            self._log(train_loss, val_loss)
            path = self.checkpoint_path()
            if self._saved_iteration != self.iteration or not path.exists():
                path = self.save(path)
                self._prune()
            self._report("interrupted" if interrupted else "done", path=path)
        return TrainResult(self._done, self._last_loss, path, interrupted, self.val_loss)

    def _record_loss(self, window_losses: list[float]) -> float:
        """Average the losses since the last report into the history; clears the list."""
        self._last_loss = float(np.mean(window_losses))
        self.history.append([self.iteration, self._last_loss])
        window_losses.clear()
        return self._last_loss

    def _validate(self, scheduled: bool) -> float:
        """Measure, record and report the validation loss; scheduled ones feed the schedule.
        A new best is saved as NAME_best.npz."""
        loss = self.validation_loss()
        self.val_loss = loss
        self.val_history.append([self.iteration, loss])
        lr = self.optimizer.lr
        if scheduled:
            self.optimizer.lr = self.schedule.observe(loss, lr)
        improved = self.best_val_loss is None or loss < self.best_val_loss
        if improved:
            self.best_val_loss = loss
        self._report("validation")
        if self.optimizer.lr != lr:
            self._report("note", message=f"validation loss stopped improving: learning rate {lr:.3g} -> {self.optimizer.lr:.3g}")
        if improved:
            self._save_quietly(self.best_path())
        return loss

    def _log(self, train_loss: float | None, val_loss: float | None) -> None:
        if not self.log or self._log_failed or (train_loss is None and val_loss is None):
            return
        elapsed = time.perf_counter() - self._run_start
        line = trainlog.format_line(self.iteration, elapsed, train_loss, val_loss, self.optimizer.lr)
        try:
            trainlog.append(self.log_path(), line)
        except OSError as error:
            self._log_failed = True
            self._report("warning", message=f"{self.log_path()}: cannot write the log ({error.strerror or error}); training goes on without it")

    def _save_quietly(self, path: Path) -> Path | None:
        """Save; on failure report a warning and go on. Returns the path written or None."""
        try:
            written = self.save(path)
        except ModelFileError as error:
            self._report("warning", message=f"{error}; training goes on")
            return None
        self._report("checkpoint", path=written)
        return written

    def _save_checkpoint(self) -> None:
        """The periodic checkpoint: NAME_N.npz (+ NAME_N.wav), then pruning to `keep`."""
        if self._save_quietly(self.checkpoint_path()) is None:
            return
        if self.checkpoint_sound > 0:
            try:
                self._report("checkpoint", path=self.checkpoint_wav(self.checkpoint_sound))
            except (OSError, soundfile.SoundFileError) as error:
                self._report("warning", message=f"could not write the checkpoint sound ({error}); training goes on")
        self._prune()

    def _prune(self) -> None:
        """Delete all but the newest `keep` NAME_N.npz with N <= the current iteration."""
        if not self.keep:
            return
        pattern = re.compile(re.escape(self.name) + r"_(\d+)" + re.escape(modelfile.EXTENSION))
        numbered = sorted(
            (int(match[1]), path)
            for path in self.directory.iterdir()
            if (match := pattern.fullmatch(path.name)) and int(match[1]) <= self.iteration
        )
        for _, path in numbered[: -self.keep]:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                self._report("warning", message=f"{path}: could not delete ({error.strerror or error})")

    def _report(self, kind: str, loss: float | None = None, path: Path | None = None, message: str = "") -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self._run_start
        rate = self._done * self.samples_per_iteration / elapsed if elapsed > 0 else 0.0
        self.callback(
            Progress(
                kind, self.iteration, self.epoch, self._last_loss if loss is None else loss, rate, elapsed,
                self._iterations - self._done, path, self.val_loss, self.best_val_loss, self.optimizer.lr, message,
            )
        )

    @contextmanager
    def _deferred_interrupts(self):
        """While training in the main thread, SIGINT and SIGTERM ask the loop to stop after the
        current update instead of interrupting it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            self._stop = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def checkpoint_path(self) -> Path:
        """DIRECTORY/NAME_N.npz for the current iteration N."""
        return self.directory / f"{self.name}_{self.iteration}{modelfile.EXTENSION}"

    def best_path(self) -> Path:
        """DIRECTORY/NAME_best.npz: the model with the lowest validation loss so far."""
        return self.directory / f"{self.name}_best{modelfile.EXTENSION}"

    def log_path(self) -> Path:
        """DIRECTORY/NAME.log.jsonl: the training log (see blekota.trainlog)."""
        return self.directory / f"{self.name}.log.jsonl"

    def checkpoint_wav(self, samples: int) -> Path:
        """Generate `samples` samples with the model and save them as DIRECTORY/NAME_N.wav."""
        seed = int(self.rng.integers(2**63))
        sound = self.model.sample(samples, seed=seed)
        return save_wav(self.directory / f"{self.name}_{self.iteration}.wav", sound, self.model.fs)

    def checkpoint(self, sound_samples: int | None = None) -> list[Path]:
        """Save NAME_N.npz and, when sound_samples (default checkpoint_sound) > 0, a generated
        NAME_N.wav. Returns the paths written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = [self.save(self.checkpoint_path())]
        samples = self.checkpoint_sound if sound_samples is None else int(sound_samples)
        if samples > 0:
            paths.append(self.checkpoint_wav(samples))
        return paths

    def _data_signature(self) -> dict:
        """What must match for a resumed run to continue at the saved data position."""
        return {
            "sha256": self._data_sha256, "seq_length": self.seq_length, "batch_size": self.batch_size,
            "val_fraction": self.val_fraction,
        }

    def info(self) -> dict:
        """The JSON metadata saved with the model: history and everything needed to resume."""
        return {
            "iterations": self.iteration,
            "epochs": self.epoch,
            "training_files": self.files,
            "history": self.history,
            "val_history": self.val_history,
            "best_val_loss": self.best_val_loss,
            "trainer": {
                "seq_length": self.seq_length,
                "batch_size": self.batch_size,
                "optimizer": self.optimizer.name,
                "lr": self.optimizer.lr,
                "clip": self.optimizer.clip,
                "t": self.optimizer.t,
                "schedule": self.schedule.state_dict(),
                "name": self.name,
                "checkpoint_every": self.checkpoint_every,
                "checkpoint_sound": self.checkpoint_sound,
                "keep": self.keep,
                "val_fraction": self.val_fraction,
                "val_every": self.val_every,
                "position": self.position,
                "data": self._data_signature(),
                "rng": self.rng.bit_generator.state,
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Save model, optimizer state, data position and hidden state to path (atomically).
        Raises ModelFileError when it cannot (the previous file at path is then intact)."""
        self.model.info = self.info()
        arrays = {"h": self.h}
        for key, value in self.optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optim.{key}"] = value
        path = modelfile.save(path, self.model, self.model.info, arrays)
        self._saved_iteration = self.iteration
        return path

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        audio=None,
        callback: Callable[[Progress], None] | None = None,
        threads: int | None = None,
        **overrides,
    ) -> Trainer:
        """Continue training from a model file written by Trainer.save or a checkpoint.

        audio: the sounds to train on (default: the files the model was trained on). Weights,
        optimizer state, learning rate and schedule state, iteration and epoch counters,
        validation history and hidden state come from the file; so do the data position and
        carried state when the data and its layout (seq_length, batch_size, val_fraction) are
        unchanged (then trainer.continues_data is True), else training starts at the data's
        beginning. N iterations, save, resume, M iterations give the same weights as N + M.
        overrides replace saved hyperparameters (e.g. lr, schedule, name, directory, keep).
        """
        loaded = modelfile.read(path, threads)
        saved = dict(loaded.info.get("trainer") or {})
        if audio is None:
            audio = list(loaded.info.get("training_files") or [])
            if not audio:
                raise ModelFileError(f"{path}: does not say which sound it was trained on; give one")
        keys = ("seq_length", "batch_size", "optimizer", "lr", "name", "checkpoint_every", "checkpoint_sound",
                "keep", "val_fraction", "val_every")
        options = {key: saved[key] for key in keys if key in saved}
        if "schedule" in saved and "schedule" not in overrides:
            try:
                options["schedule"] = make_schedule(**saved["schedule"])
            except (ConfigError, TypeError) as error:
                raise ModelFileError(f"{path}: bad learning-rate schedule state ({error})") from None
        options.update(overrides)
        trainer = cls(loaded.model, audio, callback=callback, **options)
        optim_state = {"name": saved.get("optimizer"), "lr": trainer.optimizer.lr,
                       "clip": saved.get("clip", trainer.optimizer.clip), "t": saved.get("t", 0)}
        for key, value in loaded.train_arrays.items():
            if key.startswith("optim."):
                optim_state[key[len("optim."):]] = value
        if saved.get("optimizer") == trainer.optimizer.name:
            try:
                trainer.optimizer.load_state_dict(optim_state)
            except (KeyError, ConfigError) as error:
                raise ModelFileError(f"{path}: optimizer state does not fit the model ({error})") from None
        h = loaded.train_arrays.get("h")
        position = saved.get("position", 0)
        if (
            saved.get("data") == trainer._data_signature()
            and h is not None and h.shape == trainer.h.shape
            and isinstance(position, int) and 0 <= position <= trainer.layout.windows_per_stream
        ):
            trainer.h = np.ascontiguousarray(h, dtype=trainer.model.dtype)
            trainer.position = position
            trainer.continues_data = True
        if "rng" in saved:
            try:
                trainer.rng.bit_generator.state = saved["rng"]
            except (TypeError, ValueError, KeyError):
                raise ModelFileError(f"{path}: corrupted (its random generator state)") from None
        return trainer
