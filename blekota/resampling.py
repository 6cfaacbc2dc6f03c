"""Resampling a sound that arrives block by block (live play to a device that does not take the
model's rate): the polyphase filter of scipy.signal.resample_poly, with its state carried from
one block to the next, so that any split of the input gives the same samples."""

from __future__ import annotations

from math import gcd

import numpy as np

from . import checks


class StreamResampler:
    """Samples at from_fs Hz in, the same sound at to_fs Hz out, block by block.

    The filter is resample_poly's (a Kaiser-windowed sinc, beta 5, 20 * max(up, down) + 1 taps
    at the common rate), applied causally: output j is scipy.signal.upfirdn(h, x, up, down)[j],
    so the sound comes out (taps - 1) / 2 samples of the common rate late (10 input samples when
    upsampling). process() returns every output sample whose inputs have all arrived.
    """

    def __init__(self, from_fs: int, to_fs: int):
        self.from_fs = checks.sample_rate("from_fs", from_fs)
        self.to_fs = checks.sample_rate("to_fs", to_fs)
        divisor = gcd(self.from_fs, self.to_fs)
        self.up, self.down = self.to_fs // divisor, self.from_fs // divisor
        self.taps = self.filter(self.up, self.down)
        per_phase = -(-self.taps.size // self.up)
        padded = np.zeros(per_phase * self.up)
        padded[: self.taps.size] = self.taps
        self._phases = padded.reshape(per_phase, self.up).T.copy()  # (up, per_phase): phase p, tap t = h[p + t * up]
        self._history = np.zeros(per_phase - 1)  # the last inputs, oldest first
        self._received = 0  # input samples so far
        self._made = 0  # output samples so far

    @staticmethod
    def filter(up: int, down: int) -> np.ndarray:
        """The (20 * max(up, down) + 1,) float64 low-pass taps at the common rate, gain `up` (one
        tap of 1 when the rates are equal)."""
        most = max(up, down)
        if most == 1:
            return np.ones(1)
        from scipy.signal import firwin  # scipy.signal takes seconds to import: only when needed

        return firwin(20 * most + 1, 1.0 / most, window=("kaiser", 5.0)) * up

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The next (n,) float samples at from_fs -> the float32 samples at to_fs they complete
        (about n * to_fs / from_fs of them)."""
        samples = np.asarray(samples, np.float64).ravel()
        first = self._received - self._history.size  # the input index of buffer[0]
        buffer = np.concatenate([self._history, samples])
        self._received += samples.size
        last = (self._received * self.up - 1) // self.down  # the last output whose inputs have all arrived
        outputs = np.arange(self._made, last + 1)
        self._made = last + 1
        if self._history.size:
            self._history = buffer[buffer.size - self._history.size :]
        if not outputs.size:
            return np.empty(0, np.float32)
        position = outputs * self.down
        newest = position // self.up - first  # the buffer index of each output's newest input
        per_phase = self._phases.shape[1]
        index = newest[:, None] - np.arange(per_phase)[None, :]
        before_start = index + first < 0  # inputs before the first sample are silence
        values = buffer[np.clip(index, 0, None)]
        values[before_start] = 0.0
        return np.einsum("ot,ot->o", self._phases[position % self.up], values).astype(np.float32)
