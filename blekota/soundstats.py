"""How much a made-up sound is like a real one, in numbers: log-mel Fréchet distance, the share of
quiet frames, how long its sounds and pauses last and how loud it is, the spectral flatness of loud
frames and how much their spectra vary, and voicing and pitch by autocorrelation.

All measures work on 32 ms frames with a 10 ms hop. A frame is quiet when its RMS is at most a tenth
of the loud level: the 95th percentile of frame RMS of the reference sound (the real one), so a
made-up sound that is quieter than its source counts as quiet, not as its own scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .errors import ConfigError
from .mulaw import quantize, sound_array, unquantize

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

FRAME_S = 0.032
HOP_S = 0.010
MEL_BANDS = 40
QUIET_FRACTION = 0.1
LOUD_PERCENTILE = 95
PITCH_RANGE_HZ = (60.0, 500.0)
VOICED_CORRELATION = 0.5
MIN_FS = 50  # Hz: the lowest rate with a hop of at least one sample
DB_PER_NEPER_OF_POWER = 10.0 / np.log(10.0)  # a natural log of power in dB


def samples(sound: ArrayLike) -> np.ndarray:
    """sound as float64 samples (n,); ConfigError for what is not finite real samples."""
    sound = sound_array(sound, "the sound must be an array of float samples").astype(np.float64).ravel()
    if not np.isfinite(sound).all():
        raise ConfigError("the sound contains NaN or infinite samples")
    return sound


def frames(sound: np.ndarray, fs: int) -> np.ndarray:
    """(F, N) overlapping frames of sound (n,): N = 32 ms of samples, hop 10 ms; none if shorter.
    Raises ConfigError for a sound that is not finite real numbers or fs under 50 Hz (no 10 ms hop)."""
    sound = samples(sound)
    fs = checks.number("fs", fs, MIN_FS, expected=f"a sample rate of at least {MIN_FS} Hz (frames 10 ms apart)")
    size, hop = round(FRAME_S * fs), max(1, round(HOP_S * fs))  # round(0.5) is 0
    if sound.size < size:
        return np.empty((0, size))
    return np.lib.stride_tricks.sliding_window_view(sound, size)[::hop]


def frame_rms(sound: np.ndarray, fs: int) -> np.ndarray:
    """RMS of each frame: (F,)."""
    return np.sqrt(np.mean(frames(sound, fs) ** 2, axis=1))


def loud_level(sound: np.ndarray, fs: int) -> float:
    """The 95th percentile of frame RMS of sound: what "loud" means for it (0 for an empty one)."""
    rms = frame_rms(sound, fs)
    return float(np.percentile(rms, LOUD_PERCENTILE)) if rms.size else 0.0


def power_spectra(sound: np.ndarray, fs: int) -> np.ndarray:
    """Hann-windowed power spectrum of each frame: (F, N // 2 + 1)."""
    framed = frames(sound, fs)
    return np.abs(np.fft.rfft(framed * np.hanning(framed.shape[1]), axis=1)) ** 2


def mel_filterbank(fs: int, size: int, bands: int = MEL_BANDS) -> np.ndarray:
    """Triangular mel filters (bands, size // 2 + 1) from 0 Hz to fs / 2 (HTK mel scale)."""
    mel = np.linspace(0.0, 2595.0 * np.log10(1.0 + fs / 2 / 700.0), bands + 2)
    edges = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    frequencies = np.fft.rfftfreq(size, 1.0 / fs)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (frequencies - lower) / (centre - lower)
    falling = (upper - frequencies) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel(sound: np.ndarray, fs: int, bands: int = MEL_BANDS) -> np.ndarray:
    """Log mel energies (F, bands) of 32 ms frames every 10 ms, natural log, floored at 1e-10."""
    return mel_of(power_spectra(sound, fs), fs, bands)


def mel_of(spectra: np.ndarray, fs: int, bands: int = MEL_BANDS) -> np.ndarray:
    """Log mel energies (F, bands) of power_spectra()'s (F, N // 2 + 1), natural log, floored at 1e-10."""
    filters = mel_filterbank(fs, round(FRAME_S * fs), bands)
    return np.log(np.maximum(spectra @ filters.T, 1e-10))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows a (Fa, D) and b (Fb, D):
    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)). Each needs 2 rows at least (42 ms of sound)."""
    return sum(frechet_parts(a, b))


def frechet_parts(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The Fréchet distance's two terms: (|mu_a - mu_b|^2, the means' part; the trace, the part of
    how the features vary and go together)."""
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"a Fréchet distance needs at least 2 frames (42 ms) of each sound, got {len(a)} and {len(b)}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    trace = np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt_product(cov_a, cov_b)
    return float(np.sum((mean_a - mean_b) ** 2)), float(max(trace, 0.0))


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr((C_a C_b)^(1/2)) of two covariance matrices (D, D), as the trace of the symmetric
    (C_a^(1/2) C_b C_a^(1/2))^(1/2): from eigenvalues, so a singular C (a silent band, a pure
    tone) is measured as it is, without a general matrix root's warnings."""
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    inner = root_a @ cov_b @ root_a
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2.0), 0.0, None))))


def mel_distance(sound: np.ndarray, reference: np.ndarray, fs: int) -> float:
    """Log-mel Fréchet distance between two sounds at fs Hz (0: alike; see the module docstring)."""
    return frechet_distance(log_mel(sound, fs), log_mel(reference, fs))


def pitch_track(sound: np.ndarray, fs: int, level: float) -> np.ndarray:
    """Pitch in Hz of each frame (F,), NaN where the frame is quiet (RMS below a tenth of level) or
    unvoiced (its normalized autocorrelation peaks below 0.5 within 60-500 Hz, and below fs / 2).
    The period is the shortest lag whose peak is within 10 % of the highest, refined by a parabola
    through its neighbours. All NaN at a rate too low for three lags in that range."""
    framed = frames(sound, fs)
    framed = framed - framed.mean(axis=1, keepdims=True)
    size = framed.shape[1]
    spectrum = np.fft.rfft(framed, 2 * size, axis=1)
    correlation = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :size]
    correlation /= (size - np.arange(size)) / size  # unbiased: long lags are not penalized
    energy = np.maximum(correlation[:, :1], 1e-20)
    lo, hi = max(int(fs / PITCH_RANGE_HZ[1]), 2), min(int(fs / PITCH_RANGE_HZ[0]), size // 2)
    if hi - lo < 2:
        return np.full(len(framed), np.nan)
    normalized = correlation[:, lo : hi + 1] / energy
    # the shortest lag among peaks within 10 % of the highest: a period's multiples peak as high
    inner = normalized[:, 1:-1]
    peaks = (inner >= normalized[:, :-2]) & (inner >= normalized[:, 2:])
    peaks &= inner >= 0.9 * inner.max(axis=1, keepdims=True)
    peak = 1 + np.argmax(peaks, axis=1)
    rows = np.arange(len(peak))
    before, at, after = (normalized[rows, peak + k] for k in (-1, 0, 1))
    curvature = before - 2.0 * at + after
    offset = np.where(curvature < 0, 0.5 * (before - after) / np.minimum(curvature, -1e-12), 0.0)
    voiced = (at >= VOICED_CORRELATION) & (np.sqrt(np.mean(framed**2, axis=1)) > QUIET_FRACTION * level)
    return np.where(voiced, fs / (lo + peak + np.clip(offset, -0.5, 0.5)), np.nan)


@dataclass
class SoundStats:
    """A sound's measures. quiet_share: frames below a tenth of the loud level; flatness: median
    spectral flatness (geometric / arithmetic mean of the power spectrum) of the other frames,
    near 0 for harmonics, 1 for white noise (NaN without such frames); voiced_share: share of
    frames with a clear period; pitch_hz: median pitch of voiced frames; pitch_spread: standard
    deviation of their pitch in semitones; pitch_motion: median absolute change of pitch between
    neighbouring voiced frames, semitones per 10 ms (NaN where not defined); loudness: median frame
    RMS over the loud level; burst_ms, pause_ms: median length in ms of the runs of frames that are
    not quiet and of those that are (hop by hop, 10 ms a frame; NaN without such runs); variety_db:
    how much the spectra of the frames that are not quiet vary from frame to frame, the standard
    deviation of their log-mel energies in dB, averaged over the bands (NaN with fewer than 2 such
    frames): speech changes its spectrum with every sound, a drone or a steady hiss does not."""

    seconds: float
    rms: float
    quiet_share: float
    loudness: float
    burst_ms: float
    pause_ms: float
    flatness: float
    variety_db: float
    voiced_share: float
    pitch_hz: float
    pitch_spread: float
    pitch_motion: float

    def as_dict(self) -> dict:
        """The statistics by field name, as floats."""
        return asdict(self)


def run_lengths(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lengths of the runs of True, lengths of the runs of False) in flags (F,) bool, in order."""
    flags = np.asarray(flags, bool)
    if flags.size == 0:
        return np.empty(0, int), np.empty(0, int)
    starts = np.flatnonzero(np.r_[True, flags[1:] != flags[:-1]])
    lengths = np.diff(np.r_[starts, flags.size])
    return lengths[flags[starts]], lengths[~flags[starts]]


def median_ms(lengths: np.ndarray) -> float:
    """Median of run lengths in frames (one hop each), in ms; NaN for none."""
    return float(np.median(lengths) * HOP_S * 1000) if lengths.size else float("nan")


def describe(sound: np.ndarray, fs: int, level: float | None = None) -> SoundStats:
    """Measure sound (n,) at fs Hz; level: the loud level to judge quiet frames by (default the
    sound's own, see loud_level; pass the real sound's to compare a made-up one with it)."""
    sound = samples(sound)
    level = loud_level(sound, fs) if level is None else float(level)
    rms = frame_rms(sound, fs)
    if rms.size == 0:
        nan = float("nan")
        return SoundStats(sound.size / fs, 0.0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    quiet = rms <= QUIET_FRACTION * level
    pauses, bursts = run_lengths(quiet)
    loud_spectra = power_spectra(sound, fs)[~quiet]
    loud_mel = mel_of(loud_spectra, fs)
    spectra = loud_spectra + 1e-20
    flatness = np.exp(np.mean(np.log(spectra), axis=1)) / np.mean(spectra, axis=1)
    pitch = pitch_track(sound, fs, level)
    voiced = ~np.isnan(pitch)
    semitones = 12.0 * np.log2(pitch[voiced]) if voiced.any() else np.empty(0)
    steps = 12.0 * np.abs(np.diff(np.log2(pitch)))
    steps = steps[~np.isnan(steps)]
    return SoundStats(
        seconds=sound.size / fs,
        rms=float(np.sqrt(np.mean(sound**2))),
        quiet_share=float(quiet.mean()),
        loudness=float(np.median(rms) / level) if level > 0 else float("nan"),
        burst_ms=median_ms(bursts),
        pause_ms=median_ms(pauses),
        flatness=float(np.median(flatness)) if flatness.size else float("nan"),
        variety_db=float(np.mean(np.std(loud_mel, axis=0)) * DB_PER_NEPER_OF_POWER) if len(loud_mel) > 1 else float("nan"),
        voiced_share=float(voiced.mean()),
        pitch_hz=float(np.median(pitch[voiced])) if voiced.any() else float("nan"),
        pitch_spread=float(np.std(semitones)) if semitones.size > 1 else float("nan"),
        pitch_motion=float(np.median(steps)) if steps.size else float("nan"),
    )


def distance_scale(real: np.ndarray, fs: int, length: int, seed: int = 0) -> tuple[float, float, float]:
    """What a distance to real (n,) at fs Hz means for a made-up sound of `length` samples:
    (floor, levels floor, ceiling). The floor is the median distance of four real excerpts of that
    length (at most half the sound) to the rest of it; the levels floor that of the same excerpts
    written in 256 mu-law levels (the best a model that draws levels can do); the ceiling that of
    noise of that length shaped to real's average spectrum (seed: its phases)."""
    real, seed = samples(real), checks.seed(seed)
    length = max(1, min(checks.positive_int("length", length), real.size // 2))
    distances, levels_distances = [], []
    for start in np.linspace(0, real.size - length, 4).astype(int):
        excerpt = real[start:start + length]
        rest = np.concatenate([real[:start], real[start + length:]])
        distances.append(mel_distance(excerpt, rest, fs))
        levels_distances.append(mel_distance(unquantize(quantize(excerpt)), rest, fs))
    pieces = real[: real.size // length * length].reshape(-1, length)
    magnitude = np.sqrt(np.mean(np.abs(np.fft.rfft(pieces, axis=1)) ** 2, axis=0))
    phases = np.exp(2j * np.pi * np.random.default_rng(seed).random(magnitude.size))
    noise = np.fft.irfft(magnitude * phases, length)
    noise *= np.sqrt(np.mean(real**2) / max(np.mean(noise**2), 1e-30))
    return float(np.median(distances)), float(np.median(levels_distances)), mel_distance(noise, real, fs)


def judge(made: Sequence[np.ndarray] | np.ndarray, real: np.ndarray, fs: int) -> dict:
    """Made-up streams (each (n,), any lengths; one sound (n,) is one stream, the rows of an (S, n)
    array S streams) against the real sound (n,), both at fs Hz: "fd",
    the distance of the streams joined to real, "fd_average" its part from the average spectrum
    (frechet_parts; the rest is how the spectra vary), and describe()'s measures of them joined, judged
    by real's loud level, with bursts and pauses counted in each stream apart (so that one
    stream's end and the next one's start are not one pause)."""
    if len(made) and np.ndim(made[0]) == 0:  # one sound, not a sequence of them
        made = [made]
    streams = [samples(stream) for stream in made]
    if not streams:
        raise ConfigError("judge needs at least one made-up sound")
    joined, level = np.concatenate(streams), loud_level(real, fs)
    stats = describe(joined, fs, level).as_dict()
    runs = [run_lengths(frame_rms(stream, fs) > QUIET_FRACTION * level) for stream in streams]
    stats["burst_ms"] = median_ms(np.concatenate([bursts for bursts, _ in runs]))
    stats["pause_ms"] = median_ms(np.concatenate([pauses for _, pauses in runs]))
    average, spread = frechet_parts(log_mel(joined, fs), log_mel(real, fs))
    return {"fd": average + spread, "fd_average": average, **stats}
