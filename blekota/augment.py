"""Training windows changed on the way in. Random gain: windows replayed louder or softer, so
that a short recording teaches more than its exact sequences of levels. Input noise: the inputs
read a few levels off while the clean levels are the targets (input_noise).

A window's levels are turned back into samples, multiplied by a gain, clipped to [-1, 1] and
quantized again. Each stream's window gets its own gain, uniform in decibels within +-max_db,
drawn from a generator keyed by the iteration alone: every process of a data-parallel run and
every resumed run draws the same gains, and there is no state to save.
"""

from __future__ import annotations

import numpy as np

from .checks import number
from .mulaw import quantize, unquantize

GAIN_KEY = 0x6761696E  # "gain": keeps these draws apart from other generators keyed by small numbers
LEVEL_SAMPLES = unquantize(np.arange(256))  # (256,) float32: the sample each level stands for
MAX_DB = 96.0  # the range of 16-bit sound: a larger gain turns every window into silence or clipping


def check_max_db(max_db: object) -> float:
    """max_db as a float, or ConfigError unless it is a number in [0, MAX_DB]."""
    return number("random_gain_db", max_db, 0, MAX_DB)


def stream_gains(max_db: float, iteration: int, streams: int) -> np.ndarray:
    """(streams,) linear gains for the window trained at `iteration` (0-based)."""
    rng = np.random.default_rng((GAIN_KEY, iteration))
    return 10.0 ** (rng.uniform(-max_db, max_db, streams) / 20.0)


def random_gain(window: np.ndarray, max_db: float, iteration: int) -> np.ndarray:
    """window (T+1, B) uint8 levels -> the same levels with column b at gain stream_gains()[b];
    the window itself when max_db is 0."""
    if max_db == 0:
        return window
    return quantize(LEVEL_SAMPLES[window] * stream_gains(max_db, iteration, window.shape[1]).astype(np.float32))


NOISE_KEY = 0x6E6F6973  # "nois"


def check_noise(levels: object) -> float:
    """levels as a float, or ConfigError unless it is a number of levels in [0, 255]."""
    return number("input_noise", levels, 0, 255)


def input_noise(window: np.ndarray, levels: float, iteration: int) -> np.ndarray:
    """window (T+1, B) uint8 levels -> a copy with each level moved by a rounded normal draw of
    standard deviation `levels` (clipped to 0..255), keyed by the iteration alone; the window
    itself when levels is 0. The model reads these noisy inputs and is taught the clean levels,
    so it learns to carry on from levels a little off, as its own drawn ones are."""
    if levels == 0:
        return window
    rng = np.random.default_rng((NOISE_KEY, iteration))
    shift = np.rint(rng.normal(0.0, levels, window.shape)).astype(np.int16)
    return np.clip(window + shift, 0, 255).astype(np.uint8)
