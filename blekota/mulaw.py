"""Mu-law companding: float samples in [-1, 1] <-> 256 integer levels (mu = 255).

Level 128 is silence (quantize(0.0)); levels are uint8 so a long sound costs one byte per sample.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from .errors import BlekotaWarning, ConfigError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

MU = 255
LEVELS = MU + 1
SILENCE = 128
MAX_CHANNELS = 8  # a (frames, channels) array of this many channels at most is taken for a multichannel sound


def real_array(values: ArrayLike, what: str) -> np.ndarray:
    """values as an array of booleans, integers or floats; anything else is a ConfigError that
    starts with `what` (the name of the argument and what it must be)."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{what} ({error})") from None
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"{what}, got dtype {array.dtype}")
    return array


def sound_array(values: ArrayLike, what: str) -> np.ndarray:
    """values as an array of samples (real_array), refusing (ConfigError starting with `what`)
    integers beyond [-1, 1] (integer PCM, as scipy.io.wavfile reads it, would be clipped to full
    scale, not scaled) and a (frames, channels) array of 2-8 channels, as soundfile.read gives
    a stereo file (its rows, read as streams (S, n), would interleave the channels)."""
    array = real_array(values, what)
    if array.dtype.kind in "iu" and array.size and (array.min() < -1 or array.max() > 1):
        raise ConfigError(f"{what} in [-1, 1], got {array.dtype} samples up to {max(-int(array.min()), int(array.max()))} "
                          f"(integer PCM: divide 16-bit samples by 32768)")
    if array.ndim == 2 and 2 <= array.shape[1] <= MAX_CHANNELS and array.shape[0] > array.shape[1]:
        frames, channels = array.shape
        raise ConfigError(f"{what} of one channel, got {channels} channels of {frames} frames (shape {array.shape}, "
                          f"as soundfile.read gives a stereo file): mix them to one with y.mean(axis=1)")
    return array


def warn_beyond_full_scale(samples: np.ndarray, where: str) -> None:
    """Warn (BlekotaWarning, starting with `where`) when samples go beyond [-1, 1]: they will be
    clipped."""
    peak = max(float(samples.max()), -float(samples.min())) if samples.size else 0.0
    if peak > 1:
        over = int(np.count_nonzero(samples > 1) + np.count_nonzero(samples < -1))
        warnings.warn(f"{where}: {over} sample{'s' * (over > 1)} beyond full scale (peak {peak:.3g}) are clipped to "
                      "[-1, 1]; lower its level to keep their shape", BlekotaWarning, stacklevel=3)


def quantize(x: ArrayLike) -> np.ndarray:
    """Float samples (any shape; clipped to [-1, 1], +-inf to +-1) -> uint8 levels 0..255.

    NaN samples raise ConfigError.
    """
    x = real_array(x, "mulaw.quantize: expected an array of real numbers").astype(np.float64, copy=False)
    if np.isnan(x).any():
        raise ConfigError("mulaw.quantize: the input contains NaN samples")
    x = np.clip(x, -1.0, 1.0)
    compressed = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.rint((compressed + 1.0) / 2.0 * MU).astype(np.uint8)


def unquantize(levels: ArrayLike) -> np.ndarray:
    """Integer levels 0..255 (any shape; integral floats accepted) -> float32 samples in [-1, 1]."""
    levels = real_array(levels, "mulaw.unquantize: expected an array of real numbers")
    if levels.dtype.kind == "f" and not (np.isfinite(levels) & (levels == np.round(levels))).all():
        raise ConfigError("mulaw.unquantize: levels must be integers 0..255")
    if levels.size and (levels.min() < 0 or levels.max() > MU):
        raise ConfigError("mulaw.unquantize: levels must lie in 0..255")
    compressed = 2.0 * levels.astype(np.float64) / MU - 1.0
    return (np.sign(compressed) * np.expm1(np.abs(compressed) * np.log1p(MU)) / MU).astype(np.float32)


def level_log_widths() -> np.ndarray:
    """(256,) float64 log of the width of the range of samples each level stands for.

    A loss in nats per sample plus the mean log width of the target levels is the loss of the
    density that spreads each level's probability evenly over its range: a continuous loss that
    compares models whose levels stand for different signals (blekota.emphasis)."""
    edges = (np.arange(LEVELS + 1) - 0.5) / MU * 2.0 - 1.0
    edges = np.clip(edges, -1.0, 1.0)
    samples = np.sign(edges) * np.expm1(np.abs(edges) * np.log1p(MU)) / MU
    return np.log(np.diff(samples))
