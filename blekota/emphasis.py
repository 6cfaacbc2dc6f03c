"""Pre-emphasis: a model with preemphasis a hears y[t] = x[t] - a * x[t-1] instead of the sound x,
and its drawn samples y are turned back by the inverse filter x[t] = y[t] + a * x[t-1].

LPCNet's reason (Valin and Skoglund 2019, a = 0.85): the error of each drawn sample (mu-law
steps, draws from the tail of a distribution) is white in y, and the inverse filter lowers its high
frequencies by up to 1 / (1 + a) where speech and music have little energy, so it is heard as less
hiss. The filter has a unit diagonal, so densities of x and y are equal sample for sample: the
loss of a model on y and one on x are comparable once each is made continuous
(mulaw.level_log_widths).
Before the first sample, x is silence (0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .checks import number

if TYPE_CHECKING:
    from .model import Model

MAX_PREEMPHASIS = 0.95  # the inverse filter's gain at 0 Hz is 1 / (1 - a): 20 at this a
CHUNK = 1 << 20  # samples filtered at a time, so no float64 copy of a long sound is made


def check_preemphasis(value: object) -> float:
    """value as a float, or ConfigError unless it is a number in [0, MAX_PREEMPHASIS]."""
    return number("preemphasis", value, 0.0, MAX_PREEMPHASIS)


def emphasis_words(model: Model) -> str:
    """' hearing x[t] - 0.85 x[t-1]' for a model with pre-emphasis, else ''."""
    return f" hearing x[t] - {model.preemphasis:g} x[t-1]" if model.preemphasis else ""


def emphasize(x: np.ndarray, a: float, previous: float = 0.0) -> np.ndarray:
    """(n,) float samples -> (n,) float32 y[t] = x[t] - a * x[t-1], with x[-1] = previous.

    Values may leave [-1, 1] (by at most 1 + a); quantizing clips them."""
    x = np.asarray(x)
    y = np.empty(x.shape, np.float32)
    for start in range(0, x.size, CHUNK):
        part = x[start : start + CHUNK].astype(np.float64)
        before = previous if start == 0 else float(x[start - 1])
        y[start : start + CHUNK] = part - a * np.concatenate([[before], part[:-1]])
    return y


class Deemphasis:
    """The inverse filter for S streams, carried across calls: (S, n) y -> (S, n) x in [-1, 1].

    The filter runs in float64 on the unclipped x; only what it returns is clipped to [-1, 1]."""

    def __init__(self, a: float, streams: int):
        from scipy.signal import lfilter  # scipy.signal takes seconds to import: only when needed, and
        # here rather than in __call__, so that a live stream's first block does not wait for it

        self._lfilter = lfilter
        self.a = float(a)
        self.last = np.zeros((streams, 1))  # x[t-1] of each stream, unclipped

    def __call__(self, y: np.ndarray) -> np.ndarray:
        if y.shape[1] == 0:
            return y.astype(np.float32)
        x, _ = self._lfilter([1.0], [1.0, -self.a], y.astype(np.float64), axis=1, zi=self.a * self.last)
        self.last = x[:, -1:]
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    def reset(self) -> None:
        """Back to silence before the next sample."""
        self.last[...] = 0.0


def deemphasize(y: np.ndarray, a: float) -> np.ndarray:
    """(n,) samples heard by a model with preemphasis a -> (n,) float32 sound in [-1, 1]."""
    return Deemphasis(a, 1)(np.asarray(y)[None])[0]
