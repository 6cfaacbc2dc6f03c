"""Audio in and out: read any file libsndfile reads, write wav, play through sounddevice."""

from __future__ import annotations

import os
import re
import struct
import sys
import warnings
from collections.abc import Callable
from math import gcd
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from . import memory
from .checks import MAX_FS, file_name, flag, is_integer, non_negative_int, positive_int, sample_rate
from .devices import PlaybackError, default_rate, open_device, sounddevice_module
from .errors import AudioError, BlekotaWarning, ConfigError, command_word
from .fileutil import input_problem, is_stream, open_output, refused_suffix, starts_with
from .mulaw import sound_array, warn_beyond_full_scale
from .resampling import StreamResampler

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import BinaryIO

    from numpy.typing import ArrayLike

LAST_PLAYED = "last_played.wav"
WAV_MAX_FRAMES = (2**32 - 1 - 36 - 28) // 2  # a 16-bit mono wav (with the mark): the RIFF sizes are 32-bit
# blekota's mark on the sounds it names itself (checkpoint sounds): a LIST INFO chunk, software
# "blekota", after the fmt chunk. A file that has it is blekota's to replace.
OTHER_SOUND_SUFFIXES = frozenset({  # names that promise another sound format than the wav written
    ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64", ".m4a", ".aac", ".wma",
})
NOT_WAV_SUFFIXES = OTHER_SOUND_SUFFIXES | {".npz", ".pkl", ".onnx"}  # and names of model files
MARK = b"LIST" + struct.pack("<I", 20) + b"INFOISFT" + struct.pack("<I", 8) + b"blekota\0"
CUT_SHORT = re.compile(r"^ *(?:data|SSND) : (\d+) \(should be (\d+)\)", re.MULTILINE)  # libsndfile on a cut file
UNKNOWN_SIZES = (0xFFFFFFFF, 0x7FFFFFFF)  # data sizes a stream writes when it cannot know the length


def load_audio(path: str | os.PathLike, fs: int | None = 8000) -> tuple[np.ndarray, int]:
    """Read a sound file, mix it to mono and resample it to fs Hz (polyphase filter; None
    keeps the file's own rate).

    Returns (samples float32 (n,) in [-1, 1], fs). Raises AudioError naming the file when it is
    missing, not a regular file (a FIFO or a device), unreadable, not audio (a model file
    says so), empty, holds NaN or infinite samples, or would need more memory than the machine
    has. Warns (BlekotaWarning) when the mix goes beyond full scale, as a float file may: those
    samples are clipped; and when the file ends before the sound its header promises (a copy or
    download cut short): what is there is read.
    """
    path = Path(file_name("path", path))
    problem = input_problem(path, "a sound file")
    if problem:
        raise AudioError(f"{path}: {problem}")
    if fs is not None:
        fs = sample_rate("fs", fs)
    header = _libsndfile(path, soundfile.info)
    if header.samplerate <= 0 or header.channels <= 0:
        shape = f"{header.samplerate} Hz, {header.channels} channels"
        raise AudioError(f"{path}: not a sound file blekota can read ({shape})")
    frames = max(int(header.frames), 0)
    warn_cut_short(path, header, frames)
    fs = header.samplerate if fs is None else int(fs)
    memory.ensure(  # the float32 frames and their mix, then the mix resampled (float32, three times)
        4 * frames * (header.channels + 1) + 12 * (frames * fs // header.samplerate + 1)
        + resampling_bytes(header.samplerate, fs),
        f"{path}: reading {frames / header.samplerate:.0f} s of sound at {header.samplerate} Hz",
    )
    data, file_fs = _libsndfile(path, soundfile.read, dtype="float32", always_2d=True)
    if data.size == 0:
        raise AudioError(f"{path}: contains no sound (0 samples)")
    mono = data.mean(axis=1)  # NaN or infinite where a channel is
    del data
    finite = np.isfinite(mono)
    if not finite.all():
        first = int(np.argmin(finite))
        raise AudioError(f"{path}: contains NaN or infinite samples (the first at {first / file_fs:.3f} s)")
    warn_beyond_full_scale(mono, str(path))
    return to_rate(mono, file_fs, fs), fs


def warn_cut_short(path: Path, header, frames: int) -> None:
    """Warn (BlekotaWarning) when libsndfile's report of the file (soundfile.info's extra_info)
    says its sound data ends before the size its header gives: "data : 160000 (should be 79978)"
    in a wav, "SSND : ..." in an AIFF. Sizes that mean "not known" (a stream's) are not a cut."""
    cut = CUT_SHORT.search(header.extra_info or "")
    if not cut or int(cut[1]) in UNKNOWN_SIZES or int(cut[2]) >= int(cut[1]) or not frames:
        return
    held = frames / header.samplerate
    warnings.warn(f"{path}: cut short: it holds {held:.2f} s of the {held * int(cut[1]) / int(cut[2]):.2f} s its "
                  "header promises (an unfinished copy or download?); reading what is there", BlekotaWarning,
                  stacklevel=3)


def _libsndfile(path: Path, function, **options):
    """function(path, **options) with every failure turned into an AudioError naming the file."""
    try:
        return function(os.fsencode(path), **options)  # bytes: any name the system allows
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as error:
        if starts_with(path, b"PK\x03\x04", b"PK\x05\x06"):
            raise AudioError(
                f"{path}: a model file (or another zip archive), not a sound; to go on training a "
                f"model: python -m blekota train --resume {command_word(path)}"
            ) from None
        if starts_with(path, b"\x80"):
            raise AudioError(
                f"{path}: a Python pickle (a model of the original blekota?), not a sound; to go on "
                f"training such a model: python -m blekota train --resume {command_word(path)}"
            ) from None
        reason = getattr(error, "error_string", None) or str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AudioError(f"{path}: not a sound file blekota can read ({reason})") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot read ({error.strerror or error})") from None
    except MemoryError:
        raise AudioError(f"{path}: not enough memory to read it") from None


def resampling_bytes(from_fs: int, to_fs: int) -> int:
    """About what resample_poly allocates for its filter (20 taps per step of the larger of the
    up and down factors, float64, several temporaries), whatever the length of the sound."""
    if from_fs == to_fs:
        return 0
    divisor = gcd(int(from_fs), int(to_fs))
    return 800 * max(from_fs, to_fs) // divisor


def to_rate(samples: np.ndarray, from_fs: int, to_fs: int) -> np.ndarray:
    """Resample mono samples from from_fs to to_fs Hz; float32 clipped to [-1, 1]."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_fs != to_fs and samples.size:
        divisor = gcd(int(from_fs), int(to_fs))
        from scipy.signal import resample_poly  # scipy.signal takes seconds to import: only when needed

        samples = resample_poly(samples, to_fs // divisor, from_fs // divisor).astype(np.float32)
    return np.clip(samples, -1.0, 1.0)


def save_wav(path: str | os.PathLike, y: ArrayLike, fs: int = 8000, mark: bool = False) -> Path:
    """Write mono float samples y (n,) in [-1, 1] at fs Hz as a 16-bit PCM wav (see WavWriter: a regular file
    atomically, "-" to standard output), with blekota's MARK when mark; the rows of an (S, n) array,
    such as Model.sample's streams, are written one after another; a (frames, channels) array, as
    soundfile.read gives a stereo file, is refused (ConfigError), and so is a name of another
    sound format (.flac, .mp3, ...) or of a model file (.npz, .pkl, .onnx). Returns the path."""
    y = sound_array(y, "the sound to write must be an array of float samples").astype(np.float32).ravel()
    warn_beyond_full_scale(y, str(path))
    with WavWriter(path, fs, y.size, mark) as out:
        out.write(y)
    return Path(path)


def check_wav_name(path: str | os.PathLike) -> None:
    """Refuse (ConfigError) a file name whose suffix promises another sound format than a wav, or
    a model file."""
    refused = None if is_stream(path) else refused_suffix(path, NOT_WAV_SUFFIXES)
    if refused:
        suffix, named = refused
        raise ConfigError(f"{named}: a wav is written here, not {suffix[1:]}; give it a name ending in .wav")


def wav_header(fs: int, frames: int, mark: bool = False) -> bytes:
    """The header of a 16-bit PCM mono wav of `frames` samples at fs Hz: 44 bytes, or 72 with
    blekota's MARK."""
    data, extra = 2 * frames, MARK if mark else b""
    fmt = struct.pack("<4sI4s4sIHHIIHH", b"RIFF", 36 + len(extra) + data, b"WAVE", b"fmt ", 16, 1, 1, fs, 2 * fs, 2, 16)
    return fmt + extra + struct.pack("<4sI", b"data", data)


def is_marked(path: str | os.PathLike) -> bool:
    """Whether the file at path is a wav carrying blekota's MARK (False when it cannot be read)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as file:
            head = file.read(36 + len(MARK))
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt " and head[36:] == MARK


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as little-endian 16-bit integers: x 32768 rounded to nearest,
    clipped to -32768..32767 (libsndfile reads them back divided by 32768). NaN samples raise
    ConfigError."""
    samples = np.asarray(samples, np.float32)
    if np.isnan(samples).any():
        raise ConfigError("the sound to write contains NaN samples")
    scaled = np.rint(samples * np.float32(32768))
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def play(y: ArrayLike, fs: int = 8000, blocking: bool = True) -> None:
    """Play mono samples y (n,) in [-1, 1] through sounddevice, on the default output device: at fs
    Hz, or resampled to the device's default rate where it does not take fs. blocking: return
    only when the sound has been played.

    Without PortAudio or a sound card this writes the sound to last_played.wav in the current
    directory (unless a file blekota did not write is there) and raises PlaybackError saying so.
    """
    y = sound_array(y, "the sound to play must be an array of float samples").astype(np.float32).ravel()
    warn_beyond_full_scale(y, "the sound to play")
    y = np.clip(y, -1, 1)
    fs = positive_int("fs", fs)
    try:
        sounddevice = sounddevice_module()
        try:
            sounddevice.play(y, int(fs), blocking=blocking)
        except Exception as error:  # sounddevice.PortAudioError and friends
            why, rate = str(error).splitlines()[0], default_rate()
            if rate is None or rate == fs:
                raise PlaybackError(f"cannot play sound: no sound output device ({why})") from None
            try:
                sounddevice.play(to_rate(y, fs, rate), rate, blocking=blocking)
            except Exception as error:
                why = str(error).splitlines()[0]
                raise PlaybackError(f"cannot play sound: the device takes neither {fs} Hz nor {rate} Hz ({why})") from None
    except PlaybackError as error:
        if os.path.lexists(LAST_PLAYED) and not is_marked(LAST_PLAYED):
            raise PlaybackError(f"{error}; {LAST_PLAYED} here is not blekota's, so the sound was not saved") from None
        save_wav(LAST_PLAYED, y, fs, mark=True)
        raise PlaybackError(f"{error}; wrote it to {LAST_PLAYED}") from None


class SoundStream:
    """Play mono float chunks as they come: `with SoundStream(fs) as out: out.write(chunk)`.

    device: the output device (its number or a part of its name; None: the default); a device
    that does not take fs gets the sound resampled to its default rate. Raises PlaybackError on
    entry when there is no PortAudio or no output device.
    """

    def __init__(self, fs: int, device: int | str | None = None):
        self.fs, self.device = int(fs), device

    def __enter__(self) -> SoundStream:
        self._stream, rate = open_device(sounddevice_module().OutputStream, self.fs, self.device)
        self._resampler = StreamResampler(self.fs, rate) if rate != self.fs else None
        try:
            self._stream.start()
        except Exception as error:  # sounddevice.PortAudioError
            self._stream.close()
            raise PlaybackError(f"cannot play sound: the device did not start ({str(error).splitlines()[0]})") from None
        return self

    def write(self, chunk: np.ndarray) -> None:
        """Queue (c,) samples; blocks while the device's buffer is full."""
        chunk = np.clip(np.asarray(chunk, np.float32), -1.0, 1.0)
        if self._resampler is not None:
            chunk = self._resampler.process(chunk)
        self._stream.write(chunk.reshape(-1, 1))

    def __exit__(self, *exc) -> None:
        self._stream.stop()
        self._stream.close()


class ChunkPlayer:
    """Plays a sound generated chunk by chunk: each chunk as it comes while generation keeps
    ahead of real time, else what is left once generation ends. Without sound output (or when
    not wanted) it plays nothing; warn() is told why once."""

    def __init__(self, fs: int, wanted: bool, warn: Callable[[str], None], device: int | str | None = None):
        self.fs, self.wanted, self.warn, self.device = fs, wanted, warn, device
        self.stream: SoundStream | None = None
        self.pending: list[np.ndarray] = []

    def __enter__(self) -> ChunkPlayer:
        if self.wanted:
            try:
                self.stream = SoundStream(self.fs, self.device).__enter__()
            except PlaybackError as error:
                self.warn(str(error))
        return self

    def add(self, sound: np.ndarray, samples_per_s: float) -> None:
        """Queue one generated chunk; samples_per_s is the generation speed so far."""
        if self.stream is None:
            return
        self.pending.append(sound)
        if samples_per_s >= 1.1 * self.fs:
            for chunk in self.pending:
                self.stream.write(chunk)
            self.pending.clear()

    def __exit__(self, *exc) -> None:
        if self.stream is None:
            return
        if exc[0] is None:
            for chunk in self.pending:
                self.stream.write(chunk)
        self.stream.__exit__(*exc)


def opened_with_header(path: str | os.PathLike, header: bytes) -> tuple[AbstractContextManager[BinaryIO], BinaryIO]:
    """open_output(path) entered, with `header` written: (the context manager, the file). Leaving
    the context manager is the caller's; a failed header write leaves it here."""
    output = open_output(path)
    file = output.__enter__()
    try:
        file.write(header)
    except BaseException:
        output.__exit__(*sys.exc_info())
        raise
    return output, file


class WavWriter:
    """Write a mono 16-bit wav of `frames` samples chunk by chunk:
    `with WavWriter(path, fs, frames) as out: out.write(chunk)`.

    A regular file appears under its name only when the block completes; until then (and if it
    fails or is interrupted) any existing file at path is untouched. A link is written through
    to its target; a device, a FIFO and "-" (standard output) are written as a stream, so the
    header gives `frames` from the start. mark: carry blekota's MARK. Raises ConfigError when
    frames do not fit a wav.
    """

    def __init__(self, path: str | os.PathLike, fs: int, frames: int, mark: bool = False):
        check_wav_name(file_name("the wav's path", path))
        if not 0 <= frames <= WAV_MAX_FRAMES:
            raise ConfigError(f"a 16-bit wav holds at most {WAV_MAX_FRAMES} samples (4 GiB), got {frames}")
        if not is_integer(fs) or not 0 < fs <= MAX_FS:
            raise ConfigError(f"a wav's sample rate must be 1..{MAX_FS} Hz, got {fs!r}")
        self.path, self.fs, self.frames, self.mark = path, int(fs), int(frames), flag("mark", mark)
        self.written = 0

    def __enter__(self) -> WavWriter:
        self._output, self._file = opened_with_header(self.path, wav_header(self.fs, self.frames, self.mark))
        return self

    def write(self, chunk: np.ndarray) -> None:
        """Append (c,) float samples in [-1, 1]."""
        chunk = sound_array(chunk, "a chunk to write must be an array of float samples").astype(np.float32).ravel()
        if self.written + chunk.size > self.frames:
            raise ConfigError(f"{self.path}: more samples than the {self.frames} announced")
        self._file.write(pcm16(chunk))
        self.written += chunk.size

    def __exit__(self, exc_type, exc, traceback) -> None:
        short = exc_type is None and self.written != self.frames
        if short:
            exc_type, exc = ConfigError, ConfigError(f"{self.path}: {self.written} samples written, {self.frames} announced")
        self._output.__exit__(exc_type, exc, traceback)
        if short:
            raise exc


class _Discarded(Exception):
    """Handed to open_output to remove a recording's temporary file."""


class RecordingLength:
    """The length of a recording known only at the end: of the `written` samples, the first
    `kept` (None: all) go into its file. For WavRecorder and encoding.EncodedRecorder."""

    written: int
    kept: int | None

    def keep(self, frames: int) -> None:
        """Keep only the first `frames` samples written (fewer when fewer were written)."""
        self.kept = min(self.written, non_negative_int("frames", frames))

    @property
    def frames(self) -> int:
        """The samples the file will hold."""
        return self.written if self.kept is None else self.kept


class WavRecorder(RecordingLength):
    """Record a mono 16-bit wav whose length is known only at the end:
    `with WavRecorder(path, fs) as out: out.write(chunk); ...; out.keep(n)`.

    Written to a temporary file beside path and renamed into place when the block ends, also
    when it ends by Ctrl+C or an error, as long as samples were kept: the file then holds the
    first n samples written (keep(n); all of them without it), and `saved` is True. When none were
    kept, or writing itself failed, the temporary file is removed and any file at path is untouched. A regular
    file only: the header, written last, needs a file to go back to (ConfigError otherwise).
    """

    def __init__(self, path: str | os.PathLike, fs: int):
        check_wav_name(file_name("the recording's path", path))
        if is_stream(path):
            raise ConfigError(f"{path}: a recording is written to a file, not a stream (its length is known only at the end)")
        if not is_integer(fs) or not 0 < fs <= MAX_FS:
            raise ConfigError(f"a wav's sample rate must be 1..{MAX_FS} Hz, got {fs!r}")
        self.path, self.fs = path, int(fs)
        self.written = 0
        self.kept: int | None = None
        self.saved = False  # whether the file is in place (after the block)
        self._failed = False

    def __enter__(self) -> WavRecorder:
        self._output, self._file = opened_with_header(self.path, wav_header(self.fs, 0))
        return self

    def write(self, chunk: np.ndarray) -> None:
        """Append (c,) float samples in [-1, 1]; ConfigError past WAV_MAX_FRAMES."""
        chunk = np.asarray(chunk, np.float32).ravel()
        if self.written + chunk.size > WAV_MAX_FRAMES:
            self._failed = True
            raise ConfigError(f"{self.path}: a 16-bit wav holds at most {WAV_MAX_FRAMES} samples (4 GiB)")
        try:
            self._file.write(pcm16(chunk))
        except BaseException:
            self._failed = True
            raise
        self.written += chunk.size

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._failed or not self.frames:
            discarded = exc if exc is not None else _Discarded()
            self._output.__exit__(type(discarded), discarded, traceback)
            return
        try:
            self._file.flush()
            self._file.truncate(len(wav_header(self.fs, 0)) + 2 * self.frames)
            self._file.seek(0)
            self._file.write(wav_header(self.fs, self.frames))
        except BaseException:
            self._output.__exit__(*sys.exc_info())
            raise
        self._output.__exit__(None, None, None)
        self.saved = True
