"""Training data: sounds as uint8 mu-law levels, held-out tails, and the windows training reads.

A dataset is one or more sounds (files, a directory, a glob, or a float array), each mixed to mono,
resampled to the model's rate, pre-emphasized for a model that hears it so (blekota.emphasis) and
quantized one file at a time, so only one byte per sample of the whole collection stays in memory.
The last `val_fraction` of every sound is held out for validation and never trained on.

Training windows never span two sounds: each sound's training part is cut into windows of T+1
levels (consecutive windows share one level, so T predictions each), the windows of all sounds are
laid end to end and dealt into B streams of equal length. Each iteration trains on the next window
of every stream; the hidden state a stream carries is reset to zero where its next window starts a
different sound (and at the start of each epoch). Up to B-1 windows do not fit the streams. Each
epoch deals the windows from another one on, cyclically (epoch e from the floor(n frac(e g))-th of
the n windows, g = (sqrt 5 - 1) / 2, so the starting points spread evenly over the sounds): where
the streams start and end, which windows share a batch and which ones are left out change from
epoch to epoch, and over epochs every part of the sounds is trained on. Epoch 0 starts at the first
window and leaves out the last ones. With random speed (blekota.augment.epoch_speed) each epoch
reads its windows from the training parts played at its own speed (epoch_windows).
"""

from __future__ import annotations

import glob
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .audio import load_audio
from .augment import SPEED_STEPS, epoch_speed, played_at
from .checks import fraction
from .emphasis import emphasize
from .errors import AudioError, BlekotaWarning
from .mulaw import SILENCE, quantize, sound_array, warn_beyond_full_scale

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeAlias

    from numpy.typing import ArrayLike

    from .model import Model

    Sounds: TypeAlias = str | os.PathLike | Sequence[str | os.PathLike] | ArrayLike  # what Dataset.load reads

QUANTIZE_CHUNK = 1 << 20
GLOB_CHARS = frozenset("*?[")
AUDIO_SUFFIXES = frozenset(
    ".wav .wave .bwf .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd .caf .w64 .rf64 .sph .nist .voc .paf .svx "
    ".8svx .ircam".split()
)
UNREAD_SUFFIXES = frozenset(".m4a .aac .mp4 .wma .webm .mka .ape .wv .amr .ac3".split())  # sound libsndfile cannot read


def _are_numbers(items: list | tuple) -> bool:
    """Whether a list is samples (numbers), not names of sounds."""
    return bool(items) and all(isinstance(item, (int, float, np.number)) and not isinstance(item, bool) for item in items)


def audio_paths(audio: str | os.PathLike | list) -> list[Path]:
    """The sound files named by a path, a directory (its audio files, sorted; hidden ones, such
    as the ._NAME files macOS leaves, are skipped, and those in sound formats libsndfile does not
    read, such as .m4a, are named in a BlekotaWarning), a glob string (its matches, sorted) or a
    list of those, in order."""
    if isinstance(audio, (list, tuple)):
        return [path for item in audio for path in audio_paths(item)]
    if not isinstance(audio, (str, os.PathLike)):
        raise AudioError(f"training audio must be a path, directory, glob, list or float array, got {type(audio).__name__}")
    path = Path(audio)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        found = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
        unread = [p.name for p in files if p.suffix.lower() in UNREAD_SUFFIXES]
        them = "them" if len(unread) > 1 else "it"
        convert = f"{', '.join(unread[:3])}{', ...' * (len(unread) > 3)}; convert {them} to flac or wav to train on {them}"
        if not found:
            raise AudioError(f"{path}: directory holds no sound files" + (f" libsndfile reads ({convert})" if unread else ""))
        if unread:
            kind = "formats" if len(unread) > 1 else "a format"
            warnings.warn(f"{path}: left out {len(unread)} file{'s' * (len(unread) > 1)} in {kind} libsndfile does not "
                          f"read ({convert})", BlekotaWarning, stacklevel=2)
        return found
    if not path.exists() and GLOB_CHARS & set(str(audio)):
        found = sorted(Path(p) for p in glob.glob(str(audio)) if Path(p).is_file())
        if not found:
            raise AudioError(f"{audio}: no files match")
        return found
    return [path]


def quantize_chunked(samples: np.ndarray, preemphasis: float = 0.0) -> np.ndarray:
    """quantize() of the sound as a model with this preemphasis hears it (blekota.emphasis), in
    chunks, so no float64 copy of a long sound is ever made."""
    levels = np.empty(samples.size, np.uint8)
    for start in range(0, samples.size, QUANTIZE_CHUNK):
        part = samples[start : start + QUANTIZE_CHUNK]
        if preemphasis:
            part = emphasize(part, preemphasis, float(samples[start - 1]) if start else 0.0)
        levels[start : start + QUANTIZE_CHUNK] = quantize(part)
    return levels


def held_out(size: int, val_fraction: float) -> int:
    """Levels held out at the end of a sound of `size` levels."""
    return int(val_fraction * size)


@dataclass
class Dataset:
    """The levels of one or more sounds end to end: sound i is levels[offsets[i]:offsets[i+1]].

    levels: uint8 (n,); offsets: int64 (sounds + 1,); files: the file names (empty for an array).
    """

    levels: np.ndarray
    offsets: np.ndarray
    files: list[str]

    @classmethod
    def load(cls, audio: Sounds, fs: int,
             preemphasis: float = 0.0) -> Dataset:
        """Read audio (see audio_paths, or a 1-D float array at fs, also as a list of numbers) as
        levels at fs Hz, each sound pre-emphasized with this coefficient first (blekota.emphasis;
        0: as it is). Raises AudioError when a sound is missing, unreadable or not a 1-D array of
        finite samples."""
        if isinstance(audio, (str, os.PathLike)) or (isinstance(audio, (list, tuple)) and not _are_numbers(audio)):
            paths = audio_paths(audio)
            if not paths:
                raise AudioError("no training sound given")
            parts = []
            for path in paths:
                samples, _ = load_audio(path, fs)
                parts.append(quantize_chunked(samples, preemphasis))
                del samples
            files = [str(path) for path in paths]
        else:
            samples = np.asarray(audio)
            if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.number):
                got = f"shape {samples.shape}" if samples.ndim else repr(audio) if audio is None else type(audio).__name__
                raise AudioError(f"training audio must be a path, directory, glob, list of those or a 1-D float "
                                 f"array, got {got}")
            sound_array(samples, "training audio must be an array of float samples")
            if not np.isfinite(samples).all():
                raise AudioError("training audio contains NaN or infinite samples")
            warn_beyond_full_scale(samples, "training audio")
            parts, files = [quantize_chunked(samples, preemphasis)], []
        offsets = np.concatenate([[0], np.cumsum([part.size for part in parts])]).astype(np.int64)
        return cls(np.concatenate(parts), offsets, files)

    @property
    def sizes(self) -> list[int]:
        """Levels per sound."""
        return np.diff(self.offsets).tolist()

    def sha256(self) -> str:
        """A fingerprint of the levels and where each sound starts."""
        digest = hashlib.sha256(self.offsets.tobytes())
        digest.update(self.levels.tobytes())
        return digest.hexdigest()

    def split(self, val_fraction: float) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(training, validation) ranges [start, stop) of levels: the last val_fraction of each
        sound (rounded down) is held out."""
        val_fraction = fraction("val_fraction", val_fraction)
        train, val = [], []
        for start, stop in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist()):
            cut = stop - held_out(stop - start, val_fraction)
            train.append((start, cut))
            if cut < stop:
                val.append((cut, stop))
        return train, val


GOLDEN = (5**0.5 - 1) / 2


def first_window(epoch: int, windows: int) -> int:
    """The window epoch `epoch` deals first, of `windows`: floor(windows * frac(epoch * GOLDEN)),
    the same on every machine (IEEE products and remainders are exact to the bit)."""
    return int(windows * (epoch * GOLDEN % 1.0))


class WindowLayout:
    """Training windows of T+1 levels from the ranges, dealt into B streams of S windows each,
    for one epoch.

    starts: int64 (B, S) start of each window in the levels; reset: bool (B, S), True where a
    stream's window does not continue the one before it (the hidden state must be zeroed).
    unused: levels of the ranges that this epoch predicts nothing of (each range's first level,
    heard but never predicted, aside): the ends of ranges shorter than a window, and the
    windows left over when they do not deal evenly into the streams; left_over: those windows'
    count. Epoch e deals the windows from the first_window(e, windows)-th on, cyclically.
    """

    def __init__(self, ranges: list[tuple[int, int]], seq_length: int, batch_size: int, epoch: int = 0):
        T, B = seq_length, batch_size
        starts = np.concatenate(
            [np.arange(start, stop - T, T, dtype=np.int64) for start, stop in ranges] or [np.empty(0, np.int64)]
        )
        per_stream = starts.size // B
        if per_stream == 0:
            raise ValueError(f"{starts.size} windows for {B} streams")
        self.seq_length, self.ranges, self.epoch = T, ranges, epoch
        self.left_over = starts.size - B * per_stream
        starts = np.roll(starts, -first_window(epoch, starts.size))
        self.starts = starts[: B * per_stream].reshape(B, per_stream)
        self.unused = sum(max(stop - start - 1, 0) for start, stop in ranges) - self.samples
        self.reset = np.ones(self.starts.shape, bool)
        self.reset[:, 1:] = self.starts[:, 1:] != self.starts[:, :-1] + T

    def at_epoch(self, epoch: int) -> WindowLayout:
        """The same windows dealt for another epoch."""
        return WindowLayout(self.ranges, self.seq_length, self.starts.shape[0], epoch)

    def left_out_words(self, fs: int) -> str:
        """' (...)': what of the sounds (at fs Hz) an epoch leaves out, in words; '' for nothing."""
        rotating = self.left_over * self.seq_length
        parts = [f"{rotating / fs:.2g} s left out in each epoch, a different part in the next"] if rotating else []
        if self.unused > rotating:
            parts.append(f"{(self.unused - rotating) / fs:.2g} s at the ends never")
        return f" (the streams take whole windows: {'; '.join(parts)})" if parts else ""

    @property
    def windows_per_stream(self) -> int:
        return self.starts.shape[1]

    @property
    def samples(self) -> int:
        """Levels predicted in one epoch."""
        return self.starts.size * self.seq_length

    def window(self, levels: np.ndarray, position: int) -> np.ndarray:
        """The (T+1, B) uint8 levels of window `position` of every stream."""
        steps = np.arange(self.seq_length + 1, dtype=np.int64)[:, None]
        return levels[self.starts[:, position][None, :] + steps]


def epoch_windows(levels: np.ndarray, ranges: list[tuple[int, int]], T: int, B: int, epoch: int,
                  random_speed: float = 0.0) -> tuple[np.ndarray, WindowLayout]:
    """(levels, layout): what epoch `epoch` reads its windows from and how they are dealt (B
    streams of windows of T steps from the training ranges of levels). Without random speed, or
    at the epoch's speed 1, the levels themselves; else the ranges played at the epoch's speed
    (blekota.augment.epoch_speed, played_at), end to end."""
    speed = epoch_speed(random_speed, epoch)
    if speed == 1.0:
        return levels, WindowLayout(ranges, T, B, epoch)
    parts = [played_at(levels[start:stop], speed) for start, stop in ranges]
    ends = np.cumsum([part.size for part in parts]).tolist()
    return np.concatenate(parts), WindowLayout(list(zip([0, *ends[:-1]], ends)), T, B, epoch)


class TooShortForWindows(AudioError):
    """The sounds are too short for the training windows. The message names Trainer's arguments
    (batch_size, seq_length, random_speed); naming() names them as a caller does (its options)."""

    ARGUMENTS = ("batch_size", "seq_length", "random_speed")

    def __init__(self, template: str, values: dict):
        self.template, self.values = template, values
        super().__init__(self.naming({}))

    def __reduce__(self) -> tuple:
        return type(self), (self.template, self.values)

    def naming(self, names: dict[str, str]) -> str:
        """The message with each argument in names called by its name there."""
        return self.template.format(**{key: names.get(key, key) for key in self.ARGUMENTS}, **self.values)


def file_prefix(data: Dataset) -> str:
    """"FILE: " to start a message about the sound of a one-file dataset, else nothing."""
    return f"{data.files[0]}: " if len(data.files) == 1 else ""


def sounds_are(data: Dataset) -> str:
    """"the sound is", or "the N sounds are" for a dataset of N > 1 files: a message's subject."""
    return f"the {len(data.files)} sounds are" if len(data.files) > 1 else "the sound is"


def training_layout(data: Dataset, val_fraction: float, T: int, B: int, fs: int,
                    epoch: int = 0, random_speed: float = 0.0) -> tuple[WindowLayout, list[tuple[int, int]]]:
    """The training windows of data (B streams of windows of T steps, dealt for `epoch`, at speed
    1) and the held-out ranges, split off by val_fraction; AudioError, in one line, when the sounds
    are too short for them, at random_speed's fastest too."""
    train_ranges, val_ranges = data.split(val_fraction)
    try:
        layout = WindowLayout(train_ranges, T, B, epoch)
    except ValueError:
        need = B * T + 1
        while need - held_out(need, val_fraction) < B * T + 1:
            need += 1
        raise TooShortForWindows(
            "{where}{subject} too short: {size} samples{together}, need at least {need} ({seconds:.2f} s at {fs} Hz) "
            "for {batch_size} {B} windows of {seq_length} {T} plus the {held_out:g}% held out for validation",
            dict(where=file_prefix(data), subject=sounds_are(data), together=" together" * (len(data.files) > 1),
                 size=data.levels.size, need=need, seconds=need / fs, fs=fs, B=B, T=T,
                 held_out=val_fraction * 100),
        ) from None
    fastest = [(start, start + int((stop - start) / ((1 + random_speed) * (1 + 1 / SPEED_STEPS))))
               for start, stop in train_ranges]
    try:
        if random_speed:
            WindowLayout(fastest, T, B, epoch)
    except ValueError:
        raise TooShortForWindows(
            "{where}{subject} too short for {batch_size} {B} windows of {seq_length} {T} played {times:g} times as "
            "fast ({random_speed} {speed:g})",
            dict(where=file_prefix(data), subject=sounds_are(data), B=B, T=T, times=1 + random_speed, speed=random_speed),
        ) from None
    if val_fraction and not any(stop - start >= 2 for start, stop in val_ranges):
        raise AudioError(f"{file_prefix(data)}{sounds_are(data)} too short to hold out {val_fraction * 100:g}% for validation")
    return layout, val_ranges


def validation_pieces(
    ranges: list[tuple[int, int]], streams: int, min_length: int, multiple: int = 1
) -> tuple[np.ndarray, int, list[tuple[int, int, int]]]:
    """Cut held-out ranges into pieces for batched evaluation.

    Returns (starts, L, rest). starts: int64 (P,), the first level of each full piece of L
    predictions (L + 1 levels), evaluated side by side from a zero state. L is at least min_length
    and large enough for about `streams` full pieces, a multiple of `multiple`. rest: the shorter end of each range as
    (start, stop, piece), where piece is the full piece it continues (its state carries on) or -1.
    Every held-out prediction is in exactly one piece.
    """
    predictions = sum(max(stop - start - 1, 0) for start, stop in ranges)
    L = max(min_length, -(-predictions // streams), 1)
    L = -(-L // multiple) * multiple
    starts, rest = [], []
    for start, stop in ranges:
        n = stop - start - 1
        if n < 1:
            continue
        full = n // L
        starts.extend(start + k * L for k in range(full))
        if n % L:
            rest.append((start + full * L, stop, len(starts) - 1 if full else -1))
    return np.array(starts, dtype=np.int64), L, rest


def validation_sums(model: Model, levels: np.ndarray, T: int, starts: np.ndarray, L: int,
                    rest: list[tuple[int, int, int]],
                    abandon: Callable[[], bool] = lambda: False) -> tuple[float, int] | None:
    """(nats, predictions) of model (a blekota Model) over the validation pieces of levels that
    validation_pieces() cut (starts, L, rest), in windows of T steps by forward passes; None when
    abandon() (asked before each window) says to give up."""
    total, count = 0.0, 0
    h_full = None
    if starts.size:
        h = model.zero_state(starts.size)
        for offset in range(0, L, T):
            if abandon():
                return None
            steps = min(T, L - offset)
            x = levels[starts[None, :] + offset + np.arange(steps + 1)[:, None]]
            loss, h = model.window(x, h)
            total += float(loss) * steps * starts.size
            count += steps * starts.size
        h_full = h
    for start, stop, piece in rest:
        h = model.zero_state(1) if piece < 0 else h_full[:, piece : piece + 1]
        for offset in range(start, stop - 1, T):
            if abandon():
                return None
            end = min(offset + T, stop - 1)
            loss, h = model.window(levels[offset : end + 1, None], h)
            total += float(loss) * (end - offset)
            count += end - offset
    return total, count



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
