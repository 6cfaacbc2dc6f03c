"""Sounds written in another format than wav, by the file name's suffix: FLAC, Ogg Vorbis, Opus,
MP3, AIFF, AU, CAF and W64, through libsndfile (soundfile).

The samples are made chunk by chunk and may be interrupted, while an encoder writes one file from
start to end: so the 16-bit samples wait in an anonymous temporary file in the output's folder
(gone with the process, whatever ends it) and are encoded into the output when the block ends,
through fileutil.open_output (a temporary file renamed into place: a file already there is
replaced only then, and kept when encoding fails or is interrupted).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from .audio import NOT_WAV_SUFFIXES, WAV_MAX_FRAMES, RecordingLength, WavRecorder, WavWriter, pcm16
from .checks import MAX_FS, file_name, is_integer
from .errors import ConfigError
from .fileutil import is_stream, open_output
from .mulaw import sound_array, warn_beyond_full_scale

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from numpy.typing import ArrayLike

ENCODINGS = {  # suffix -> (libsndfile's format, subtype)
    ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"), ".aif": ("AIFF", "PCM_16"), ".aiff": ("AIFF", "PCM_16"),
    ".au": ("AU", "PCM_16"), ".caf": ("CAF", "PCM_16"), ".w64": ("W64", "PCM_16"),
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the only rates Opus encodes
SUFFIXES = ", ".join([".wav", *ENCODINGS])
NAMED_FILES = NOT_WAV_SUFFIXES | {".wav"}  # the suffixes that say what kind of file is there
ENCODE_BLOCK = 1 << 16  # samples encoded at a time


def encoding_for(path: str | os.PathLike, option: str = "the sound's path") -> tuple[str, str] | None:
    """libsndfile's (format, subtype) for the file name's suffix, or None for a wav (any other
    suffix, and "-", a device or a FIFO, which are written a wav as a stream). Raises
    ConfigError for a sound format blekota does not write, one this libsndfile lacks, and a
    model file's name (.npz, .pkl, .onnx); option names path where it is not a file name."""
    path = file_name(option, path)
    suffix = Path(path).suffix.lower()
    if is_stream(path):
        return None
    target = Path(os.path.realpath(path)).suffix.lower() if os.path.islink(path) else suffix
    if ENCODINGS.get(target) != ENCODINGS.get(suffix) and target in NAMED_FILES:
        written = f"{ENCODINGS[suffix][0]} is" if suffix in ENCODINGS else "a wav is"
        raise ConfigError(f"{path} (a link to {os.path.realpath(path)}): {written} written here, not {target[1:]}; "
                          "give it a name of its own")
    if suffix not in ENCODINGS and suffix not in NOT_WAV_SUFFIXES:
        return None
    if suffix not in ENCODINGS:
        raise ConfigError(f"{path}: blekota writes sounds as {SUFFIXES}, not {suffix}")
    encoding = ENCODINGS[suffix]
    if encoding[0] not in soundfile.available_formats() or encoding[1] not in soundfile.available_subtypes(encoding[0]):
        raise ConfigError(f"{path}: this libsndfile ({soundfile.__libsndfile_version__}) does not write "
                          f"{suffix[1:]}; write .wav or .flac")
    return encoding


class _FirstErrorKept:
    """The file an encoder writes through, keeping the first OSError (a full disk) to raise it
    once encoding is over: libsndfile calls the file back through cffi, which prints a traceback
    for an exception there and drops it (soundfile then fails an assert, or the file is left
    short). After an error it writes and seeks nothing more."""

    def __init__(self, file: BinaryIO):
        self._file = file
        self._error: OSError | None = None

    def _call(self, method: str, *args, failed: int) -> int:
        if self._error is None:
            try:
                return getattr(self._file, method)(*args)
            except OSError as error:
                self._error = error
        return failed

    def write(self, data: bytes) -> int:
        return self._call("write", data, failed=0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._call("seek", offset, whence, failed=-1)

    def tell(self) -> int:
        return self._call("tell", failed=-1)

    def raise_kept(self) -> None:
        """Raise the OSError kept, if there is one."""
        if self._error is not None:
            raise self._error


class EncodedWriter:
    """Write a mono sound of `frames` samples at fs Hz in the format its name's suffix says
    (ENCODINGS), chunk by chunk: `with EncodedWriter(path, fs, frames) as out: out.write(chunk)`.
    The file appears when the block completes with all the samples; until then, and when it
    fails or is interrupted, a file at path is untouched (see the module docstring). Raises
    ConfigError for a name encoding_for refuses or takes for a wav, a rate the format does not
    take, or more than audio.WAV_MAX_FRAMES samples."""

    def __init__(self, path: str | os.PathLike, fs: int, frames: int | None):
        encoding = encoding_for(path)
        if encoding is None:
            raise ConfigError(f"{path}: a wav or a stream; write it with audio.WavWriter")
        if not is_integer(fs) or not 0 < fs <= MAX_FS:
            raise ConfigError(f"a sound's sample rate must be 1..{MAX_FS} Hz, got {fs!r}")
        if encoding[1] == "OPUS" and fs not in OPUS_RATES:
            raise ConfigError(f"{path}: Opus takes {', '.join(map(str, OPUS_RATES))} Hz, not {fs}; "
                              "write .ogg or .flac")
        if frames is not None and not 0 <= frames <= WAV_MAX_FRAMES:
            raise ConfigError(f"{path}: at most {WAV_MAX_FRAMES} samples, got {frames}")
        self.path, self.fs, self.encoding = path, int(fs), encoding
        self.announced = frames
        self.written = 0
        self._samples: BinaryIO | None = None

    def __enter__(self) -> EncodedWriter:
        folder = Path(os.path.realpath(self.path)).parent
        with self._naming_the_output():
            self._samples = tempfile.TemporaryFile(dir=folder if folder.is_dir() else None)
        return self

    @contextlib.contextmanager
    def _naming_the_output(self) -> Iterator[None]:
        """An OSError of the anonymous file of samples (it cannot be created, the disk is full)
        names the output: the file's own name is one the user never heard of."""
        try:
            yield
        except OSError as error:
            error.filename, error.filename2 = str(self.path), None
            raise

    def write(self, chunk: ArrayLike) -> None:
        """Append (c,) float samples in [-1, 1]."""
        chunk = sound_array(chunk, "a chunk to write must be an array of float samples").astype(np.float32).ravel()
        if self.written + chunk.size > (WAV_MAX_FRAMES if self.announced is None else self.announced):
            raise ConfigError(f"{self.path}: at most {WAV_MAX_FRAMES} samples" if self.announced is None
                              else f"{self.path}: more samples than the {self.announced} announced")
        with self._naming_the_output():
            self._samples.write(pcm16(chunk))
        self.written += chunk.size

    def encode(self, frames: int) -> None:
        """Encode the first `frames` samples written into the file at path."""
        format_name, subtype = self.encoding
        with self._naming_the_output():
            self._samples.flush()
        self._samples.seek(0)
        with open_output(self.path) as out:
            sink = _FirstErrorKept(out)
            try:
                with soundfile.SoundFile(sink, "w", self.fs, 1, subtype, format=format_name) as encoded:
                    for start in range(0, frames, ENCODE_BLOCK):
                        block = self._samples.read(2 * min(ENCODE_BLOCK, frames - start))
                        encoded.write(np.frombuffer(block, "<i2"))
            except Exception:
                sink.raise_kept()
                raise
            sink.raise_kept()

    def _drop_samples(self) -> None:
        """Close (and so delete) the anonymous file of samples; the buffered samples its close
        could not write (a full disk) are not needed, so that failure is not raised."""
        with contextlib.suppress(OSError):
            self._samples.close()

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if exc_type is None:
                if self.written != self.announced:
                    raise ConfigError(f"{self.path}: {self.written} samples written, {self.announced} announced")
                self.encode(self.written)
        finally:
            self._drop_samples()


class EncodedRecorder(EncodedWriter, RecordingLength):
    """Record a mono sound whose length is known only at the end, in the format its name's
    suffix says: `with EncodedRecorder(path, fs) as out: out.write(chunk); ...; out.keep(n)`.
    As audio.WavRecorder: encoded when the block ends, also by Ctrl+C or an error, as long as
    samples were kept (the first n written, keep(n); all without it), then `saved` is True; when
    none were kept, or writing itself failed, a file at path is untouched."""

    def __init__(self, path: str | os.PathLike, fs: int):
        super().__init__(path, fs, None)
        self.kept: int | None = None
        self.saved = False
        self._failed = False

    def write(self, chunk: ArrayLike) -> None:
        """Append (c,) float samples in [-1, 1]; ConfigError past WAV_MAX_FRAMES."""
        try:
            super().write(chunk)
        except BaseException:
            self._failed = True
            raise

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if not self._failed and self.frames:
                self.encode(self.frames)
                self.saved = True
        finally:
            self._drop_samples()


def sound_writer(path: str | os.PathLike, fs: int, frames: int) -> WavWriter | EncodedWriter:
    """A writer of `frames` samples at fs Hz in the format path's suffix says: a wav (also for
    "-", a device or a FIFO, as a stream) or one of ENCODINGS."""
    return WavWriter(path, fs, frames) if encoding_for(path) is None else EncodedWriter(path, fs, frames)


def sound_recorder(path: str | os.PathLike, fs: int) -> WavRecorder | EncodedRecorder:
    """A recorder (its length known at the end) in the format path's suffix says: a wav or one
    of ENCODINGS."""
    return WavRecorder(path, fs) if encoding_for(path) is None else EncodedRecorder(path, fs)


def save_sound(path: str | os.PathLike, y: ArrayLike, fs: int = 8000) -> Path:
    """Write mono float samples y (n,) in [-1, 1] at fs Hz in the format path's suffix says: a
    16-bit wav (audio.save_wav: also "-" for standard output), FLAC, Ogg Vorbis, Opus, MP3, AIFF,
    AU, CAF or W64 (16-bit where the format has samples). A regular file is replaced only once it
    is complete. The rows of an (S, n) array are written one after another; a (frames, channels)
    array is refused (ConfigError), and so is a name of a format not written or of a model file.
    Returns the path."""
    y = sound_array(y, "the sound to write must be an array of float samples").astype(np.float32).ravel()
    warn_beyond_full_scale(y, str(path))
    with sound_writer(path, fs, y.size) as out:
        out.write(y)
    return Path(path)

