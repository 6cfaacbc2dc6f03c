"""A model's sound as a live source: Stream.process(n) gives the next n samples, and how they are
drawn can change between calls (blekota.live plays a Stream through the sound device)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import checks, memory, modelchecks
from .emphasis import Deemphasis
from .errors import ConfigError
from .drawing import SMOOTH, WAKE, _smooth, _truncation, _wake, describe_sampling, smoothed, wake_steps
from .model import Model
from .sampler import Sampler
from .mulaw import LEVELS, unquantize

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

SOUND_OF_LEVEL = unquantize(np.arange(LEVELS))  # float32 sample of each level, as unquantize gives it


@dataclass(frozen=True)
class Sampling:
    """How each level is drawn and written (the meaning of Model.sample's options of the same names)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    smooth: float = SMOOTH
    wake: float = WAKE

    @classmethod
    def checked(cls, temperature: float, top_k: int, top_p: float, min_p: float, smooth: float,
                wake: float) -> Sampling:
        """Settings checked as Model.sample checks them (ConfigError naming the option)."""
        temperature = checks.non_negative_float("temperature", temperature)
        return cls(temperature, *_truncation(top_k, top_p, min_p), _smooth(smooth), _wake(wake))

    def __str__(self) -> str:
        return describe_sampling(**asdict(self))


class Stream:
    """One voice of a model, generated block by block as a program asks for it (Model.stream).

    process(n) gives the next n samples, (n,) float32 in [-1, 1]; consecutive calls continue one
    sound: with the same seed and settings, process(a) then process(b) is
    model.sample(a + b, seed=seed), and with a hint, what model.sample(hint.size + a + b,
    hint=hint, seed=seed) draws after the hint. The hint (a float sound at the model's rate) is
    heard when the stream is made, drawing nothing, so the first samples continue it.
    set(temperature=, top_k=, top_p=, min_p=, smooth=, wake=) changes how levels are drawn and written
    from the next call on;
    reset(seed) goes back to the start (silence, or just after the hint) with new draws.
    The weights are the model's when the stream is made (packed once). set() and reset() may be
    called from another thread while process() runs: they apply from the next call.
    """

    def __init__(self, model: Model, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 min_p: float = 0.0, seed: int | None = None, hint: ArrayLike | Sequence[ArrayLike] | None = None,
                 smooth: float = SMOOTH, wake: float = WAKE):
        self._sampling = Sampling.checked(temperature, top_k, top_p, min_p, smooth, wake)
        seed = checks.seed(seed)
        if not isinstance(model, Model):
            raise ConfigError(f"model must be a blekota Model, got {type(model).__name__}")
        modelchecks.params(model, finite=True)
        hint_levels, hint_lengths = model.hint_levels(hint, 1, modelchecks.MAX_WINDOW)
        self.fs = model.fs
        self.hinted = int(hint_lengths[0])  # samples of hint heard before the first process()
        self.position = 0  # samples given by process() since the start or the last reset
        self._lock = threading.Lock()
        self._no_hint = (np.empty((1, 0), np.uint8), np.zeros(1, np.intp))
        self._sampler = Sampler(model, 1, seed)
        self._no_probs = np.empty((1, 0, LEVELS), self._sampler.h.dtype)
        if self.hinted:
            self._sampler.run(np.empty((1, self.hinted), np.uint8), hint_levels, hint_lengths, self._no_probs,
                              self._sampling.temperature, self._truncation(self._sampling), None,
                              wake_steps(self._sampling.wake, self.fs))
        self._deemphasis = Deemphasis(model.preemphasis, 1) if model.preemphasis else None
        if self._deemphasis:
            self._deemphasis(SOUND_OF_LEVEL[hint_levels[:, : self.hinted]])
        self._start = self._sampler.state(), self._deemphasis.last.copy() if self._deemphasis else None

    def __repr__(self) -> str:
        return f"Stream(fs={self.fs}, {self._sampling}, position={self.position})"

    @property
    def settings(self) -> dict:
        """The current temperature, top_k, top_p, min_p, smooth and wake."""
        return asdict(self._sampling)

    def set(self, *, temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
            min_p: float | None = None, smooth: float | None = None, wake: float | None = None) -> None:
        """Change how levels are drawn and written from the next process() on; None keeps a
        setting. Checked as Model.sample checks them; nothing changes when one is refused
        (ConfigError)."""
        now = self._sampling
        self._sampling = Sampling.checked(
            now.temperature if temperature is None else temperature, now.top_k if top_k is None else top_k,
            now.top_p if top_p is None else top_p, now.min_p if min_p is None else min_p,
            now.smooth if smooth is None else smooth, now.wake if wake is None else wake,
        )

    def reset(self, seed: int | None = None) -> None:
        """Go back to the start (silence, or just after the hint) with draws from
        numpy.random.PCG64(seed) (None: fresh ones); the settings stay."""
        seed = checks.seed(seed)
        with self._lock:
            state, last = self._start
            self._sampler.restore(state)
            if self._deemphasis:
                self._deemphasis.last[...] = last
            self._sampler.bit_generator = np.random.PCG64(seed)
            self.position = 0

    def process(self, n: int) -> np.ndarray:
        """The next n samples, (n,) float32 in [-1, 1]."""
        n = checks.non_negative_int("n", n)
        memory.ensure((5 + self._no_probs.itemsize) * n, f"{n} samples", "process fewer samples at a time")
        levels = np.empty((1, n), np.uint8)
        means = np.empty((1, n), self._no_probs.dtype)
        with self._lock:
            sampling = self._sampling
            self._sampler.run(levels, *self._no_hint, self._no_probs, sampling.temperature,
                              self._truncation(sampling), means, wake_steps(sampling.wake, self.fs))
            self.position += n
            sound = smoothed(SOUND_OF_LEVEL[levels], means, sampling.smooth)
            return (self._deemphasis(sound) if self._deemphasis else sound)[0]

    @staticmethod
    def _truncation(sampling: Sampling) -> tuple[int, float, float]:
        return sampling.top_k, sampling.top_p, sampling.min_p
