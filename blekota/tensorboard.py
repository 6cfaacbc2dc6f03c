"""A training run as TensorBoard sees it: a Trainer callback that writes event files.

Scalars against the iteration: loss/train and loss/validation (nats per sample),
loss/best_validation, lr, samples_per_s and epoch. At each numbered checkpoint the sound the
trainer wrote beside it (NAME_N.wav) as audio at the model's rate, and two pictures: that
sound's spectrogram and the loss curve so far. Written through tensorboardX (the optional extra
`blekota[tensorboard]`); read with `tensorboard --logdir DIR`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import plot
from .audio import load_audio
from .errors import BlekotaError, install_hint
from .progress import Progress


def summary_writer():
    """tensorboardX's SummaryWriter class; BlekotaError saying how to install it when missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise BlekotaError(f"--tensorboard needs tensorboardX: {install_hint('tensorboard')}") from None
    return SummaryWriter


class TensorBoardLog:
    """Writes a run's reports to TensorBoard event files in `directory`, then passes each report
    on to `then` (the display, say).

    fs: the model's sample rate in Hz; log: the run's NAME.log.jsonl (for the loss curve);
    start: the iteration the run starts from: a resumed run drops whatever an earlier one wrote
    after it (TensorBoard's purge), so the curves never run backwards.
    """

    def __init__(self, directory: str | os.PathLike, fs: int, log: str | os.PathLike, start: int = 0,
                 then: Callable[[Progress], None] | None = None):
        self.directory = Path(directory)
        writer = summary_writer()
        try:
            self.writer = writer(str(self.directory), purge_step=start + 1 if start else None)
        except OSError as error:
            raise BlekotaError(f"{self.directory}: cannot write TensorBoard files here ({error.strerror or error})") from None
        self.fs, self.log, self.then = fs, Path(log), then
        self._drawn = -1  # the iteration of the last loss curve

    def __call__(self, progress: Progress) -> None:
        step = progress.iteration
        if progress.kind == "progress" and progress.loss is not None:
            self.writer.add_scalar("loss/train", progress.loss, step)
            self.writer.add_scalar("lr", progress.lr, step)
            self.writer.add_scalar("samples_per_s", progress.samples_per_s, step)
            self.writer.add_scalar("epoch", progress.epoch, step)
        elif progress.kind == "validation" and progress.val_loss is not None:
            self.writer.add_scalar("loss/validation", progress.val_loss, step)
            if progress.best_val_loss is not None:
                self.writer.add_scalar("loss/best_validation", progress.best_val_loss, step)
        elif progress.kind == "checkpoint" and progress.path is not None and _numbered(progress.path):
            if progress.path.suffix == ".wav":
                self._sound(progress.path, step)
            else:
                self._loss_curve(step)
        elif progress.kind in ("done", "interrupted"):
            if progress.path is not None and _numbered(progress.path):
                self._loss_curve(step)
            self.writer.flush()
        if self.then is not None:
            self.then(progress)

    def _sound(self, path: Path, step: int) -> None:
        """The checkpoint's sound NAME_N.wav, and its spectrogram."""
        sound = load_audio(path, self.fs)[0]
        self.writer.add_audio("sound", sound, step, sample_rate=self.fs)
        with tempfile.TemporaryDirectory() as folder:
            picture = plot.spectrogram(sound, self.fs, title=path.name, out=Path(folder) / "picture.png")
            self.writer.add_image("spectrogram", _pixels(picture), step, dataformats="HWC")
        self.writer.flush()

    def _loss_curve(self, step: int) -> None:
        """The loss curve so far, from the run's log (once per iteration: the final save may
        write the last checkpoint again)."""
        if step == self._drawn or not self.log.is_file() or not any(rows.size for rows in plot.loss_points(self.log)):
            return
        self._drawn = step
        with tempfile.TemporaryDirectory() as folder:
            picture = plot.loss_curve(self.log, title=f"loss at iteration {step}", out=Path(folder) / "picture.png")
            self.writer.add_image("loss_curve", _pixels(picture), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        """Write everything out and close the event file."""
        self.writer.close()


def _numbered(path: Path) -> bool:
    """Whether path is a numbered checkpoint, NAME_N.npz (not NAME_best.npz)."""
    return re.fullmatch(r".*_[0-9]+", path.stem) is not None


def _pixels(path: Path) -> np.ndarray:
    """A PNG file as (height, width, 3) uint8 RGB."""
    from matplotlib.image import imread

    image = imread(path)
    return (np.clip(image[..., :3], 0, 1) * 255).round().astype(np.uint8)
