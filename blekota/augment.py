"""Training windows changed on the way in. Random gain: windows replayed louder or softer, so
that a short recording teaches more than its exact sequences of levels. Input noise: the inputs
read a few levels off while the clean levels are the targets (input_noise). Random speed: each
epoch plays the training sounds a little faster or slower (epoch_speed, played_at).

A window's levels are turned back into samples, multiplied by a gain, clipped to [-1, 1] and
quantized again. Each stream's window gets its own gain, uniform in decibels within +-max_db,
drawn from a generator keyed by the iteration alone: every process of a data-parallel run and
every resumed run draws the same gains, and there is no state to save.
"""

from __future__ import annotations

import math

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


SPEED_KEY = 0x73706564  # "sped"
SPEED_STEPS = 1024  # speeds are multiples of 1/SPEED_STEPS: resample_poly's up and down
MAX_SPEED_CHANGE = 0.5
SPEED_CHUNK = 1 << 18  # input samples resampled at a time (about), so no long float copy is made
SPEED_MARGIN = 16  # input samples beyond a chunk's ends that its outputs reach: resample_poly's filter
# reaches 10 * max(up, down) / up of them, at most 15 for the speeds up to 1 + MAX_SPEED_CHANGE


def check_speed(change: object) -> float:
    """change as a float, or ConfigError unless it is a number in [0, MAX_SPEED_CHANGE]."""
    return number("random_speed", change, 0, MAX_SPEED_CHANGE)


def epoch_speed(change: float, epoch: int) -> float:
    """How many times as fast epoch `epoch` (0-based) plays the training sounds: log-uniform
    within [1 / (1 + change), 1 + change], rounded to a multiple of 1/SPEED_STEPS, keyed by the
    epoch alone (every process, every resumed run alike); 1 when change is 0."""
    if change == 0:
        return 1.0
    rng = np.random.default_rng((SPEED_KEY, epoch))
    speed = math.exp(rng.uniform(-math.log1p(change), math.log1p(change)))
    return round(speed * SPEED_STEPS) / SPEED_STEPS


def played_at(levels: np.ndarray, speed: float) -> np.ndarray:
    """(n,) uint8 levels -> the levels of the same sound played `speed` times as fast (pitch and
    tempo together; about n / speed of them), through scipy's band-limited polyphase resampling, a
    chunk at a time: only a chunk is ever in float. The levels themselves at speed 1."""
    down = round(speed * SPEED_STEPS)
    if down == SPEED_STEPS:
        return levels
    from scipy.signal import resample_poly  # scipy.signal takes seconds to import: only when needed

    gcd = math.gcd(SPEED_STEPS, down)
    up, down = SPEED_STEPS // gcd, down // gcd
    step, margin = (-(-size // down) * down for size in (SPEED_CHUNK, SPEED_MARGIN))  # whole outputs each
    parts = []
    for start in range(0, levels.size, step):
        lo, hi = max(0, start - margin), min(levels.size, start + step + margin)
        out = resample_poly(LEVEL_SAMPLES[levels[lo:hi]].astype(np.float64), up, down)
        first = (start - lo) * up // down
        count = -(-(min(start + step, levels.size) - start) * up // down)
        parts.append(quantize(out[first : first + count]))
    return np.concatenate(parts) if parts else levels[:0]
