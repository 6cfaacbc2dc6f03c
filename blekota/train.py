"""Truncated backpropagation through time over a sound, with checkpoints and resumable state.

The quantized sound is cut into `batch_size` equal parallel streams. Each iteration trains on the
next window of `seq_length` steps of every stream, starting from the hidden state the previous
window ended with. When the streams are used up, an epoch ends: the position and the hidden state
go back to the start.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import memory, modelfile
from .audio import load_audio, save_wav
from .errors import AudioError, BlekotaWarning, ConfigError, ModelFileError
from .model import Model, _positive_int, _seed
from .mulaw import SILENCE, quantize
from .optim import OPTIMIZERS, make_optimizer

REPORT_EVERY = 50


@dataclass
class Progress:
    """One report from the trainer to its callback.

    kind: "progress" (every report_every iterations), "checkpoint" (a file was written),
    "done" or "interrupted" (train() is returning; path is the final model file).
    loss: mean nats per sample over the iterations since the previous progress report.
    """

    kind: str
    iteration: int
    epoch: int
    loss: float | None
    samples_per_s: float
    elapsed_s: float
    iterations_left: int
    path: Path | None = None


@dataclass
class TrainResult:
    """What train() did: iterations run, the last reported loss, the final file, interruption."""

    iterations: int
    loss: float | None
    path: Path | None
    interrupted: bool


def load_levels(audio, fs: int) -> tuple[np.ndarray, list[str]]:
    """A path or float array (at fs) -> (uint8 levels, names of the files used)."""
    if isinstance(audio, (str, os.PathLike)):
        samples, _ = load_audio(audio, fs)
        return quantize(samples), [str(audio)]
    samples = np.asarray(audio)
    if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.number):
        raise AudioError(f"training audio must be a path or a 1-D float array, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise AudioError("training audio contains NaN or infinite samples")
    return quantize(samples), []


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
    """Trains a Model on a sound with truncated BPTT.

    model: the Model to train (updated in place). audio: a sound file path or a float array at
    model.fs. seq_length: steps per window (T). batch_size: parallel streams (B). optimizer:
    "rmsprop", "adagrad" or "adam"; lr: its learning rate. name: prefix of the files written.
    checkpoint_every: save NAME_N.npz every that many iterations (0: never); checkpoint_sound:
    also generate that many samples and save NAME_N.wav. directory: where files go.
    callback: called with a Progress every report_every iterations and when files are written.
    seed: seeds the sounds generated at checkpoints.
    """

    def __init__(
        self,
        model: Model,
        audio,
        seq_length: int = 100,
        batch_size: int = 80,
        optimizer: str = "rmsprop",
        lr: float = 2e-3,
        name: str = "unnamed_model",
        checkpoint_every: int = 1000,
        checkpoint_sound: int = 0,
        directory: str | os.PathLike = ".",
        callback: Callable[[Progress], None] | None = None,
        report_every: int = REPORT_EVERY,
        seed: int | None = None,
    ):
        self.model = model
        self.seq_length = _positive_int("seq_length", seq_length)
        self.batch_size = _positive_int("batch_size", batch_size)
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be an integer >= 0, got {checkpoint_every!r}")
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
        self._saved_iteration = -1
        self.set_audio(audio)

    def set_audio(self, audio) -> None:
        """Use this sound (path or float array at model.fs) for training; restarts at its start."""
        levels, self.files = load_levels(audio, self.model.fs)
        T, B = self.seq_length, self.batch_size
        stream_length = levels.size // B
        if stream_length < T + 1:
            need = B * (T + 1)
            where = f"{self.files[0]}: " if self.files else ""
            raise AudioError(
                f"{where}the sound is too short: {levels.size} samples, need at least {need} "
                f"(batch_size * (seq_length + 1) = {need / self.model.fs:.2f} s at {self.model.fs} Hz)"
            )
        warn_if_silent(levels, self.files)
        self.streams = np.ascontiguousarray(levels[: B * stream_length].reshape(B, stream_length))
        self.position = 0
        self.h = self.model.zero_state(B)

    @property
    def samples_per_iteration(self) -> int:
        return self.seq_length * self.batch_size

    def _next_window(self) -> np.ndarray:
        """The (T+1, B) levels of the next window; starts a new epoch when the streams end."""
        T = self.seq_length
        if self.position + T + 1 > self.streams.shape[1]:
            self.epoch += 1
            self.position = 0
            self.h[:] = 0
        return np.ascontiguousarray(self.streams[:, self.position : self.position + T + 1].T)

    def step(self) -> float:
        """One training iteration: forward, backward, optimizer update. Returns the loss."""
        x = self._next_window()
        loss, h_last = self.model.window(x, self.h, self.grads)
        self.optimizer.step(self.model.params, self.grads)
        self.h = h_last
        self.position += self.seq_length
        self.iteration += 1
        return loss

    def train(self, iterations: int, max_seconds: float | None = None) -> TrainResult:
        """Run `iterations` iterations (or until max_seconds of wall time have passed), then
        save NAME_N.npz (N = total iterations so far).

        Ctrl+C (SIGINT) or SIGTERM ends training after the current update and still saves; so
        does a KeyboardInterrupt raised by the callback. Returns a TrainResult.
        """
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ConfigError(f"iterations must be an integer >= 0, got {iterations!r}")
        if max_seconds is not None and (
            isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0
        ):
            raise ConfigError(f"max_seconds must be > 0, got {max_seconds!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        done = 0
        window_losses: list[float] = []
        last_loss = None
        self._stop = False
        interrupted = False
        with self._deferred_interrupts():
            try:
                while done < iterations and not self._stop:
                    if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                        break
                    window_losses.append(self.step())
                    done += 1
                    if done % self.report_every == 0 or done == iterations:
                        last_loss = float(np.mean(window_losses))
                        self.history.append([self.iteration, last_loss])
                        window_losses.clear()
                        self._report("progress", start, done, iterations, last_loss)
                    if self.checkpoint_every and self.iteration % self.checkpoint_every == 0:
                        for path in self.checkpoint():
                            self._report("checkpoint", start, done, iterations, last_loss, path)
            except KeyboardInterrupt:
                interrupted = True
            interrupted = interrupted or self._stop
            if window_losses:
                last_loss = float(np.mean(window_losses))
                self.history.append([self.iteration, last_loss])
            path = self.checkpoint_path()
            if self._saved_iteration != self.iteration or not path.exists():
                path = self.save(path)
            kind = "interrupted" if interrupted else "done"
            self._report(kind, start, done, iterations, last_loss, path)
        return TrainResult(done, last_loss, path, interrupted)

    def _report(self, kind, start, done, iterations, loss, path=None) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - start
        rate = done * self.samples_per_iteration / elapsed if elapsed > 0 else 0.0
        self.callback(
            Progress(kind, self.iteration, self.epoch, loss, rate, elapsed, iterations - done, path)
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
        return self.directory / f"{self.name}_{self.iteration}{modelfile.EXTENSION}"

    def checkpoint(self, sound_samples: int | None = None) -> list[Path]:
        """Save NAME_N.npz and, when sound_samples (default checkpoint_sound) > 0, a generated
        NAME_N.wav. Returns the paths written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = [self.save(self.checkpoint_path())]
        samples = self.checkpoint_sound if sound_samples is None else int(sound_samples)
        if samples > 0:
            seed = int(self.rng.integers(2**63))
            sound = self.model.sample(samples, seed=seed)
            wav = self.directory / f"{self.name}_{self.iteration}.wav"
            paths.append(save_wav(wav, sound, self.model.fs))
        return paths

    def info(self) -> dict:
        """The JSON metadata saved with the model: history and everything needed to resume."""
        return {
            "iterations": self.iteration,
            "epochs": self.epoch,
            "training_files": self.files,
            "history": self.history,
            "trainer": {
                "seq_length": self.seq_length,
                "batch_size": self.batch_size,
                "optimizer": self.optimizer.name,
                "lr": self.optimizer.lr,
                "clip": self.optimizer.clip,
                "t": self.optimizer.t,
                "name": self.name,
                "checkpoint_every": self.checkpoint_every,
                "checkpoint_sound": self.checkpoint_sound,
                "position": self.position,
                "stream_length": int(self.streams.shape[1]),
                "rng": self.rng.bit_generator.state,
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Save model, optimizer state, data position and hidden state to path (atomically)."""
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

        audio: the sound to train on (default: the file(s) the model was trained on). Weights,
        optimizer state, iteration and epoch counters, data position, hidden state and RNG state
        come from the file, so training continues exactly where it stopped. overrides replace
        saved hyperparameters (e.g. lr, name, directory, checkpoint_every).
        """
        loaded = modelfile.read(path, threads)
        saved = dict(loaded.info.get("trainer") or {})
        if audio is None:
            files = loaded.info.get("training_files") or []
            if not files:
                raise ModelFileError(f"{path}: does not say which sound it was trained on; give one")
            audio = files[0]
        options = {
            key: saved[key]
            for key in ("seq_length", "batch_size", "optimizer", "lr", "name", "checkpoint_every", "checkpoint_sound")
            if key in saved
        }
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
        same_data = saved.get("stream_length") == trainer.streams.shape[1]
        h = loaded.train_arrays.get("h")
        if same_data and h is not None and h.shape == trainer.h.shape:
            trainer.h = np.ascontiguousarray(h, dtype=trainer.model.dtype)
            trainer.position = int(saved.get("position", 0))
        if "rng" in saved:
            try:
                trainer.rng.bit_generator.state = saved["rng"]
            except (TypeError, ValueError, KeyError):
                raise ModelFileError(f"{path}: corrupted (its random generator state)") from None
        return trainer
