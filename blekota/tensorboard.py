"""A training run in TensorBoard: what a Trainer reports, written as TensorBoard event files.

    with TensorBoard("runs/voice", trainer):
        trainer.train(5000)

Against the iteration (TensorBoard's step): the scalars loss/train and loss/validation (nats per
sample), train/learning_rate, train/samples_per_second (since train() started, all processes'
streams) and train/epoch; at each checkpoint NAME_N.npz and the final model the picture loss/curve
(blekota.plot's loss curve over the whole history); at each checkpoint sound NAME_N.wav that sound itself,
generated/sound (at the model's rate), and its picture generated/spectrogram.

The events go through tensorboardX (the optional extra blekota[tensorboard]), written and flushed
in the training thread as each report comes, so TensorBoard shows them at once and a failure (a
full disk) is a "warning" report after which training goes on without TensorBoard (tensorboardX's
SummaryWriter writes from a thread of its own, whose failure would be lost and then block training).

Each TensorBoard writes an event file of its own; a resumed run's goes beside the earlier ones.
Its first event is a purge mark at the step after the trainer's iteration, so that TensorBoard
drops what an earlier run wrote past that point (a run that went on after its last checkpoint, or a
resume from an older checkpoint). Its Rust reader (the default) ignores the mark, but drops a
series' points from a step on when that step comes again: each tag is written at increasing steps
only, so it shows the same once this run writes the series at or before a dropped point. In a
folder with no events yet, the loss history the trainer brings (a model trained before without
TensorBoard) is written first.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import soundfile

from . import plot
from .errors import BlekotaError, install_hint
from .fileutil import prepare_directory
from .progress import Progress
from .runfiles import RunFiles

if TYPE_CHECKING:
    from .train import Trainer

RGBA = 4  # the colour space of matplotlib's PNGs, as TensorBoard's Image proto numbers it
DT_STRING = 7  # TensorFlow's string dtype (types.proto)
WAV = b"\x10\x0b"  # TensorBoard's AudioPluginData(encoding=WAV) serialized: field 2, value 11


def _tensorboardx():
    """tensorboardX's event file writer and protos; BlekotaError with how to install it when missing."""
    try:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
    except ImportError:
        raise BlekotaError(f"TensorBoard needs the tensorboardX package: {install_hint('tensorboard')}") from None
    return EventsWriter, Event, SessionLog, Summary, SummaryMetadata, TensorProto, TensorShapeProto


def event_files(directory: str | os.PathLike) -> list[Path]:
    """The TensorBoard event files in a folder (none when it does not exist), by name."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if "tfevents" in path.name and path.is_file())


def check_folder(directory: str | os.PathLike, new_run: bool) -> None:
    """Refuse (BlekotaError, one line) before any training when TensorBoard events cannot be
    written in directory: tensorboardX missing, the folder not creatable or writable, or, for a
    new run, events of an earlier run already there. Creates the folder."""
    _tensorboardx()
    directory = Path(directory)
    prepare_directory(directory)
    if new_run and event_files(directory):
        raise BlekotaError(
            f"{directory}: holds the TensorBoard events of an earlier run; give another folder (TensorBoard "
            "shows each folder as a run of its own), go on with that run (--resume), or remove them"
        )


class TensorBoard:
    """Writes what `trainer` reports as TensorBoard events in `directory` (created) and passes
    every report on to the trainer's callback, taking its place until close() or the end of a
    with block (see the module docstring for what is written).

    Raises BlekotaError when tensorboardX is missing (saying how to install it) or the folder
    cannot be written. When the with block ends in an error before the trainer's first update,
    the event file it started is removed (it holds no training). In a data-parallel run every
    process creates it, together, like the Trainer's methods; rank 0 alone writes.
    """

    def __init__(self, directory: str | os.PathLike, trainer: Trainer):
        self.directory = Path(directory)
        self.trainer = trainer
        self._writer = None
        self._path: Path | None = None  # this run's event file (rank 0)
        self._first = trainer.iteration + 1  # the first step this run writes
        self._steps: dict[str, int] = {}  # the last step written of each tag
        trainer.processes.from_root(self._open)
        self._callback = trainer.callback
        trainer.callback = self

    def _open(self) -> None:
        """Open this run's event file; write the purge mark and, in a new folder, the history."""
        EventsWriter, self._Event, SessionLog, self._Summary, *self._audio_protos = _tensorboardx()
        prepare_directory(self.directory)
        earlier = event_files(self.directory)
        prefix = str(self.directory.resolve() / "events")  # absolute: never taken for gs: or s3:
        try:
            # events.out.tfevents.SECONDS.HOST.NANOSECONDS.PID: sorts after the earlier files, and is new
            self._writer = EventsWriter(prefix, f".{time.time_ns()}.{os.getpid()}")
            self._path = next((path for path in event_files(self.directory) if path not in earlier), None)
            self._writer.write_event(self._Event(wall_time=time.time(), step=self._first,
                                                 session_log=SessionLog(status=SessionLog.START)))
            if not earlier:
                self._write_history()
            self._writer.flush()
        except OSError as error:
            self._stop()
            if self._path is not None:  # it holds no event, and would make the folder refuse this run once there is room
                with contextlib.suppress(OSError):
                    self._path.unlink()
            raise BlekotaError(f"{self.directory}: cannot write TensorBoard events ({error.strerror or error})") from None

    def _write_history(self) -> None:
        """The losses the trainer brings from earlier training, at their iterations."""
        for tag, rows in (("loss/train", self.trainer.history), ("loss/validation", self.trainer.val_history)):
            for step, loss in rows:
                if self._steps.get(tag, -1) < step < self._first:
                    self._writer.write_event(self._event(int(step), [self._scalar(tag, loss)]))
                    self._steps[tag] = int(step)

    def __call__(self, report: Progress) -> None:
        """The trainer's callback: write what the report holds, then pass it on."""
        if self._writer is not None:
            try:
                self._write(report.iteration, self._values(report))
                self._writer.flush()
            except OSError as error:
                self._stop()
                self._warn(report, f"{self.directory}: cannot write TensorBoard events ({error.strerror or error}); "
                                   "training goes on without TensorBoard")
        if self._callback is not None:
            self._callback(report)

    def _values(self, report: Progress) -> list:
        """The summary values of one report."""
        values = []
        if report.kind in ("progress", "done", "interrupted") and report.loss is not None:
            values.append(self._scalar("loss/train", report.loss))  # done, interrupted: when not written yet
        if report.kind == "progress":
            values += [self._scalar("train/learning_rate", report.lr),
                       self._scalar("train/samples_per_second", report.samples_per_s),
                       self._scalar("train/epoch", report.epoch)]
        if report.kind == "validation" and report.val_loss is not None:
            values.append(self._scalar("loss/validation", report.val_loss))
        if report.kind == "checkpoint" and report.path is not None:
            trainer = self.trainer
            if report.path.name == trainer.checkpoint_path().name:
                values += self._loss_curve(report.iteration)
            elif report.path.name == RunFiles(trainer.directory, trainer.name).sound_path(report.iteration).name:
                values += self._sound(report)
        if report.kind in ("done", "interrupted"):  # the final model file
            values += self._loss_curve(report.iteration)
        return values

    def _loss_curve(self, step: int) -> list:
        history = {"history": self.trainer.history, "val_history": self.trainer.val_history}
        if not any(points.size for points in plot.loss_points(history)):
            return []
        png = io.BytesIO()
        plot.loss_curve(history, title=f"{self.trainer.name}: loss at iteration {step}", out=png)
        return [self._image("loss/curve", png.getvalue())]

    def _sound(self, report: Progress) -> list:
        """The checkpoint's sound file as it is (a 16-bit wav at the model's rate) and its spectrogram."""
        try:
            data = report.path.read_bytes()
            sound, fs = soundfile.read(io.BytesIO(data), dtype="float64")
        except (OSError, soundfile.SoundFileError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else error
            self._warn(report, f"{report.path}: cannot read the checkpoint sound for TensorBoard ({why}); "
                               "training goes on")
            return []
        png = io.BytesIO()
        plot.spectrogram(sound, fs, title=f"generated at iteration {report.iteration}", out=png)
        return [self._audio("generated/sound", data), self._image("generated/spectrogram", png.getvalue())]

    def _scalar(self, tag: str, value: float):
        return self._Summary.Value(tag=tag, simple_value=float(value))

    def _audio(self, tag: str, wav: bytes):
        """A wav file as tf.summary.audio writes it: a (1, 2) string tensor of clip and label, with
        the audio plugin's metadata saying WAV (so that both of TensorBoard's readers serve it as
        audio/wav; its older Audio proto gets a generic type from the newer one)."""
        SummaryMetadata, TensorProto, TensorShapeProto = self._audio_protos
        shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=1), TensorShapeProto.Dim(size=2)])
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="audio", content=WAV))
        tensor = TensorProto(dtype=DT_STRING, tensor_shape=shape, string_val=[wav, b""])
        return self._Summary.Value(tag=tag, tensor=tensor, metadata=metadata)

    def _image(self, tag: str, png: bytes):
        width, height = struct.unpack(">II", png[16:24])  # from the PNG's IHDR chunk
        image = self._Summary.Image(height=height, width=width, colorspace=RGBA, encoded_image_string=png)
        return self._Summary.Value(tag=tag, image=image)

    def _event(self, step: int, values: list):
        return self._Event(wall_time=time.time(), step=step, summary=self._Summary(value=values))

    def _write(self, step: int, values: list) -> None:
        """One event of the values whose tag this run has not written at this step or a later one."""
        values = [value for value in values if self._steps.get(value.tag, self._first - 1) < step]
        if values:
            self._writer.write_event(self._event(step, values))
            self._steps.update((value.tag, step) for value in values)

    def _warn(self, report: Progress, message: str) -> None:
        if self._callback is not None:
            self._callback(replace(report, kind="warning", path=None, message=message))

    def _stop(self) -> None:
        """Close the event file; what was flushed before stays readable."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError):  # every report was flushed already: nothing is lost
                writer.close()

    def close(self) -> None:
        """Close the event file and give the trainer its own callback back."""
        self._stop()
        if self.trainer.callback is self:
            self.trainer.callback = self._callback

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close()
        if kind is not None and self.trainer.iteration < self._first and self._path is not None:
            # an error before this run's first update (a file in the run's way): its file holds no
            # training, and would make the folder refuse the same run once the error is put right
            with contextlib.suppress(OSError):
                self._path.unlink()
