"""Pictures of sounds and models: waveform, probability heatmap, loss curve, spectrogram.

Every function draws one figure. With `out=None` and a display it opens a window (`block=False`
returns at once, for interactive sessions); otherwise it writes a PNG with matplotlib's Agg
renderer and returns its path. `out` may be a file name or a directory; without one (or in a
directory) the file is named after the picture (`heatmap.png`, `heatmap-2.png`, ...) and an
existing file is never overwritten. A file name given explicitly is written as asked; one that
promises another image format (.jpg, .svg, .pdf, ...) is refused (ConfigError). `out` may
also be a binary file object (io.BytesIO for the PNG's bytes in memory): the PNG is written into
it and None returned.
matplotlib is imported only when a picture is drawn, and pyplot only when a window can open.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .audio import NOT_WAV_SUFFIXES
from .checks import file_name, integer, non_negative_int, positive_int
from .emphasis import check_preemphasis, emphasize
from .errors import BlekotaError, ConfigError
from .fileutil import open_output, refused_suffix
from .mulaw import LEVELS, quantize, sound_array
from .trainlog import read_log

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO

    from numpy.typing import ArrayLike

DPI = 100
FLOOR = 1e-4  # the heatmap's colour scale starts here: rarer levels are drawn as never drawn
AMPLITUDE_TICKS = (-1.0, -0.1, -0.01, 0.0, 0.01, 0.1, 1.0)
OTHER_IMAGE_SUFFIXES = frozenset({  # names that promise another image format than the PNG written
    ".jpg", ".jpeg", ".svg", ".pdf", ".gif", ".tif", ".tiff", ".webp", ".bmp", ".eps", ".ps",
})
NOT_PNG_SUFFIXES = OTHER_IMAGE_SUFFIXES | NOT_WAV_SUFFIXES | {".wav"}  # and names of sounds and model files


def display_available() -> bool:
    """Whether a window could be opened here: on Linux and other X11/Wayland systems this
    needs DISPLAY or WAYLAND_DISPLAY; a non-interactive MPLBACKEND (agg, pdf, ...) says no."""
    backend = os.environ.get("MPLBACKEND", "").lower()
    if backend and (backend in {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}
                    or "inline" in backend):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_png_name(out: str | os.PathLike) -> None:
    """Refuse (ConfigError) a file name whose suffix promises another image format than PNG, a
    sound or a model file (a folder of that name is where the picture gets a name of its own)."""
    refused = None if Path(out).is_dir() else refused_suffix(out, NOT_PNG_SUFFIXES)
    if refused:
        suffix, named = refused
        raise ConfigError(f"{named}: pictures are written as PNG, not {suffix[1:]}; give out a name ending in .png")


def _figure(figsize: tuple[float, float], out) -> tuple[object, bool]:
    """A new figure (width, height in inches at DPI) and whether it lives in a window."""
    if out is not None and not _is_file_object(out):
        check_png_name(file_name("out", out))
    if out is None and display_available():
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=figsize, dpi=DPI, layout="constrained")
        if figure.canvas.required_interactive_framework is not None:
            return figure, True
        plt.close(figure)  # pyplot settled on a non-interactive backend: draw to a file
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained"), False


def _is_file_object(out) -> bool:
    """Whether out is a binary file object to write the PNG into (not a name)."""
    return hasattr(out, "write")


PNG_MARK = ("Software", "blekota")  # a tEXt chunk in every picture blekota saves: its mark


def is_marked_png(path: str | os.PathLike) -> bool:
    """Whether the file at path is a PNG that carries blekota's mark (a picture it saved)."""
    wanted = PNG_MARK[0].encode() + b"\0" + PNG_MARK[1].encode()
    try:
        with open(path, "rb") as file:
            if file.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
            while header := file.read(8):
                if len(header) < 8:
                    return False
                size, kind = int.from_bytes(header[:4], "big"), header[4:]
                if kind == b"tEXt" and file.read(size) == wanted:
                    return True
                if kind == b"IDAT" or kind == b"IEND":
                    return False
                if kind != b"tEXt":
                    file.seek(size, os.SEEK_CUR)
                file.seek(4, os.SEEK_CUR)  # the chunk's CRC
    except OSError:
        return False
    return False


def _finish(figure, in_window: bool, name: str, out, block: bool) -> Path | None:
    """Show the figure in its window, or save it as PNG; returns the path written (None for a
    window or a file object)."""
    if in_window:
        import matplotlib.pyplot as plt

        plt.show(block=block)
        if not block:
            plt.pause(0.001)  # let the window draw itself before returning
        return None
    if _is_file_object(out):
        figure.savefig(out, format="png", dpi=DPI, metadata=dict([PNG_MARK]))
        return None
    path, claimed = _claim(name, out)
    try:
        with open_output(path) as out:
            figure.savefig(out, format="png", dpi=DPI, metadata=dict([PNG_MARK]))
    except BaseException:
        if claimed:
            path.unlink(missing_ok=True)
        raise
    return path


def _claim(name: str, out) -> tuple[Path, bool]:
    """The file to write and whether it was claimed here: out itself, or NAME.png, NAME-2.png,
    ... created empty in out (a directory, default the current one), so that no existing file
    is overwritten."""
    if out is not None and not Path(out).is_dir():
        path = Path(out)
        if not path.parent.is_dir():
            raise BlekotaError(f"{path}: the folder {path.parent} does not exist")
        return path, False
    directory = Path("." if out is None else out)
    for number in range(1, 1_000_000):
        path = directory / (f"{name}.png" if number == 1 else f"{name}-{number}.png")
        try:
            with open(path, "xb"):
                return path, True
        except FileExistsError:
            continue
    raise BlekotaError(f"{directory}: no free file name for {name}.png")


def _mono(sound, what: str) -> np.ndarray:
    sound = sound_array(sound, f"{what} must be a sound: an array of float samples").astype(np.float64)
    if sound.ndim != 1 or sound.size == 0:
        raise ConfigError(f"{what} must be a non-empty 1-D sound, got shape {sound.shape}")
    return sound


def _drawable(title: str) -> str:
    """title with its lone surrogates written as escapes, as the terminal shows them: the bytes of
    a file name that is not UTF-8 (v\\udce9.wav), which matplotlib refuses to draw."""
    return title.encode("utf-8", "backslashreplace").decode("utf-8")


def _draw_waveform(axes, sound: np.ndarray, fs: int, title: str) -> None:
    t = np.arange(sound.size) / fs
    axes.plot(t, sound, color="tab:blue", linewidth=0.6)
    axes.set_xlim(0, sound.size / fs)
    axes.set_ylim(-1.05, 1.05)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("amplitude")
    axes.set_title(_drawable(title))
    axes.grid(alpha=0.3)


def _stft_db(sound: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequencies Hz, frame centres s, power in dB) over ~32 ms Hann windows, 75 % overlap.
    The sound is continued by point reflection at both ends (smooth, unlike zeros or a mirror),
    so that frames are centred from 0 s up to its end."""
    from scipy.signal import stft

    window = min(max(16, 2 ** round(math.log2(0.032 * fs))), sound.size)
    frequencies, times, spectrum = stft(
        sound, fs, window="hann", nperseg=window, noverlap=window * 3 // 4, boundary="odd",
        padded=False, scaling="spectrum",
    )
    return frequencies, times, 10 * np.log10(np.abs(spectrum) ** 2 + 1e-12)


def _top_db(db: np.ndarray) -> float:
    """The top of the colour scale: nearly the loudest, so one odd cell cannot dim the rest."""
    return float(np.percentile(db, 99.9))


def _draw_spectrogram(axes, frequencies, times, db, vmax: float, title: str):
    image = axes.pcolormesh(times, frequencies, db, shading="nearest", cmap="magma",
                            vmin=vmax - 80, vmax=vmax, rasterized=True)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("frequency (Hz)")
    axes.set_title(_drawable(title))
    return image


def show(sound: ArrayLike, fs: int = 8000, *, title: str = "waveform", out: str | os.PathLike | BinaryIO | None = None,
         block: bool = True) -> Path | None:
    """The waveform of a sound: sound (n,) floats in [-1, 1] at fs Hz against time in seconds.

    Returns the PNG path when written to a file, None when shown in a window.
    """
    sound, fs = _mono(sound, "sound"), positive_int("fs", fs)
    figure, in_window = _figure((10, 3.5), out)
    _draw_waveform(figure.add_subplot(), sound, fs, f"{title} ({sound.size / fs:.2f} s at {fs} Hz)")
    return _finish(figure, in_window, "waveform", out, block)


def heatmap(
    probs: ArrayLike,
    fs: int = 8000,
    samples: ArrayLike | None = None,
    *,
    start: int = 0,
    length: int | None = None,
    title: str = "probability of each level",
    out: str | os.PathLike | BinaryIO | None = None,
    block: bool = True,
    first: int = 0,
    preemphasis: float = 0.0,
) -> Path | None:
    """What the model expected: probs (n, 256), row t the distribution sample t was drawn
    from, drawn over the 256 mu-law levels against time in seconds (log colour scale).

    samples: the sound actually drawn, (n,) floats in [-1, 1], overlaid as dots. start, length:
    the slice of samples to draw (default: from start to the end). first: the index of probs[0]
    in the whole sound, where the time axis counts from (0: probs starts the sound).
    preemphasis: the model's (blekota.emphasis): the dots are then the levels it heard, and the
    amplitudes on the right those of the pre-emphasized sound. Returns the PNG path when written
    to a file, None in a window.
    """
    from matplotlib.colors import LogNorm

    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != LEVELS or probs.shape[0] == 0:
        raise ConfigError(f"probs must be an (n, {LEVELS}) array with n > 0, got shape {probs.shape}")
    fs = positive_int("fs", fs)
    first, preemphasis = non_negative_int("first", first), check_preemphasis(preemphasis)
    n = probs.shape[0]
    start = integer("start", start, 0, n - 1)
    if length is not None:
        length = positive_int("length", length)
    stop = n if length is None else min(n, start + length)
    window = np.asarray(probs[start:stop], dtype=np.float64)
    figure, in_window = _figure((10, 5), out)
    axes = figure.add_subplot()
    extent = ((first + start) / fs, (first + stop) / fs, -0.5, LEVELS - 0.5)
    image = axes.imshow(
        np.maximum(window.T, FLOOR), origin="lower", aspect="auto", extent=extent,
        cmap="magma", norm=LogNorm(vmin=FLOOR, vmax=1.0), interpolation="antialiased",
    )
    if samples is not None:
        drawn = _mono(samples, "samples")
        if drawn.size != n:
            raise ConfigError(f"samples has {drawn.size} values but probs has {n} rows")
        t = np.arange(first + start, first + stop) / fs
        size = float(np.clip(4000 / (stop - start), 1, 16))  # in points^2: big when few
        heard = emphasize(drawn, preemphasis)[start:stop] if preemphasis else drawn[start:stop]
        axes.scatter(t, quantize(heard), s=size, color="#35d0ff", linewidths=0,
                     label="drawn sample")
        axes.legend(loc="upper right", fontsize="small", markerscale=max(1.0, 3 / np.sqrt(size)),
                    framealpha=0.8)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("mu-law level")
    axes.set_ylim(-0.5, LEVELS - 0.5)
    axes.set_title(_drawable(f"{title} (samples {first + start}-{first + stop - 1} at {fs} Hz)"))
    amplitude = axes.secondary_yaxis("right")
    amplitude.set_yticks(quantize(AMPLITUDE_TICKS), [f"{a:g}" for a in AMPLITUDE_TICKS])
    amplitude.set_ylabel("amplitude, pre-emphasized" if preemphasis else "amplitude")
    figure.colorbar(image, ax=axes, label="probability", pad=0.02)
    return _finish(figure, in_window, "heatmap", out, block)


def loss_points(log: str | os.PathLike | Sequence[dict] | dict) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation loss from a training log: (train (k, 2), val (m, 2)) rows of
    [iteration, loss in nats/sample].

    log: the path of a NAME.log.jsonl file (one JSON object per line with the keys iteration,
    time, train_loss, val_loss, lr; losses may be null), a list of such dicts, or a model's
    info dict (rows [iteration, loss] in "history" and, optionally, "val_history").
    """
    where = _file_words(log)
    if isinstance(log, dict):
        train = log.get("history") or []
        val = log.get("val_history") or []
        return _rows(train, "history"), _rows(val, "val_history")
    if isinstance(log, (str, os.PathLike)):
        records = read_log(log)
    elif isinstance(log, (list, tuple)):
        records = list(log)
    else:
        raise ConfigError(
            f"log must be a .log.jsonl path, a list of dicts or a model's info, got {type(log).__name__}"
        )
    train, val = [], []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict) or "iteration" not in record:
            raise ConfigError(f"{where}training log entry {number} is not a dict with an iteration")
        for key, rows in (("train_loss", train), ("val_loss", val)):
            if record.get(key) is not None:
                rows.append([record["iteration"], record[key]])
    return _rows(train, f"{where}train_loss"), _rows(val, f"{where}val_loss")


def _file_words(log) -> str:
    """'NAME: ' to begin an error about a log or model given as a file name, else ''."""
    return f"{log}: " if isinstance(log, (str, os.PathLike)) else ""


def _rows(rows, what: str) -> np.ndarray:
    try:
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected rows of [iteration, loss]") from None
    return array[np.isfinite(array).all(axis=1)]


def loss_curve(log: str | os.PathLike | Sequence[dict] | dict, *, title: str = "loss",
               out: str | os.PathLike | BinaryIO | None = None, block: bool = True) -> Path | None:
    """Training and validation loss (nats/sample) against iterations; see loss_points for log.

    Returns the PNG path when written to a file, None when shown in a window.
    """
    train, val = loss_points(log)
    if not train.size and not val.size:
        raise BlekotaError(f"{_file_words(log)}no loss values yet (no training reported)")
    figure, in_window = _figure((8, 4.5), out)
    axes = figure.add_subplot()
    if train.size:
        axes.plot(train[:, 0], train[:, 1], color="tab:blue", linewidth=1.2, label="training",
                  marker="o" if len(train) == 1 else None, markersize=3)  # a line of one point draws nothing
    if val.size:
        axes.plot(val[:, 0], val[:, 1], color="tab:orange", linewidth=1.2, marker="o",
                  markersize=3, label="validation")
    axes.axhline(math.log(LEVELS), color="gray", linestyle=":", linewidth=1,
                 label=f"knows nothing (log 256 = {math.log(LEVELS):.2f})")
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss (nats/sample)")
    axes.set_title(_drawable(title))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _finish(figure, in_window, "loss", out, block)


def spectrogram(
    sound: ArrayLike, fs: int = 8000, *, title: str = "spectrogram", out: str | os.PathLike | BinaryIO | None = None,
    block: bool = True,
) -> Path | None:
    """Power over frequency (Hz, 0 to fs/2) and time (s), in dB (an 80 dB range), of sound (n,).

    Returns the PNG path when written to a file, None when shown in a window.
    """
    sound, fs = _mono(sound, "sound"), positive_int("fs", fs)
    frequencies, times, db = _stft_db(sound, fs)
    figure, in_window = _figure((10, 4.5), out)
    axes = figure.add_subplot()
    image = _draw_spectrogram(axes, frequencies, times, db, _top_db(db), title)
    axes.set_xlim(0, sound.size / fs)
    figure.colorbar(image, ax=axes, label="power (dB)", pad=0.02)
    return _finish(figure, in_window, "spectrogram", out, block)


def compare(
    training_sound: ArrayLike, generated_sound: ArrayLike, fs: int = 8000, *,
    out: str | os.PathLike | BinaryIO | None = None, block: bool = True,
) -> Path | None:
    """The training sound and a generated one side by side: waveforms above, spectrograms
    below, on the same amplitude and dB scales. Sounds are (n,) floats at fs Hz.

    Returns the PNG path when written to a file, None when shown in a window.
    """
    fs = positive_int("fs", fs)
    sounds = {"training": _mono(training_sound, "training_sound"),
              "generated": _mono(generated_sound, "generated_sound")}
    spectra = {name: _stft_db(sound, fs) for name, sound in sounds.items()}
    vmax = max(_top_db(db) for _, _, db in spectra.values())
    figure, in_window = _figure((12, 6.5), out)
    grid = figure.subplots(2, 2, sharey="row")
    for column, (name, sound) in enumerate(sounds.items()):
        duration = f"{name} ({sound.size / fs:.2f} s)"
        _draw_waveform(grid[0, column], sound, fs, duration)
        image = _draw_spectrogram(grid[1, column], *spectra[name], vmax, "")
        grid[1, column].set_xlim(0, sound.size / fs)
    grid[0, 1].set_ylabel("")
    grid[1, 1].set_ylabel("")
    figure.colorbar(image, ax=grid[1, :], label="power (dB)", pad=0.01)
    figure.suptitle(f"training vs generated at {fs} Hz")
    return _finish(figure, in_window, "compare", out, block)
