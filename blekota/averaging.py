"""The moving average of the weights over training iterations (Polyak averaging), which the
model files of a run hold in place of the weights as last updated.

With Adam at the default learning rate the weights jitter from update to update. Their
exponential moving average with decay d (a horizon of about 1 / (1 - d) iterations) predicts
held-out sound better and free-runs more like its source (benchmarks/README.md, "Weight
averaging"). The average starts empty and is corrected for it: after one update it is that
update's weights, after many the weighted sum of the last ~1 / (1 - d).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _optim
from .checks import fraction, positive_int
from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import DTypeLike

    from .model import Model


def check_decay(decay: object) -> float:
    """decay as a float, or ConfigError unless it is a number in [0, 1) (0: no averaging)."""
    return fraction("ema", decay, expected="a decay in [0, 1) (0: no averaging)")


class WeightAverage:
    """The exponential moving average of a flat weight vector.

    decay: each update keeps this share of the average (0: the average is the last weights).
    total: the weight the sum carries, 1 - decay^updates for a constant decay (0: nothing yet);
    total_sum: (size,) the uncorrected sum, of `dtype` (float32 or float64). Raises ConfigError
    for another dtype, a size that is not a positive integer, and weights unlike the sum.
    """

    def __init__(self, decay: float, size: int, dtype: DTypeLike):
        self.decay = check_decay(decay)
        self.total = 0.0
        try:
            kind = np.dtype(dtype)
        except TypeError:
            kind = None
        if kind not in (np.float32, np.float64):
            raise ConfigError(f"dtype must be float32 or float64, got {kind or repr(dtype)}")
        self.total_sum = np.zeros(positive_int("size", size), kind)

    def update(self, weights: np.ndarray, threads: int = 1) -> None:
        """Take in the weights (size,) of the sum's dtype after an update: total_sum = total_sum *
        decay + weights * (1 - decay), compiled, on `threads` threads (blekota._optim)."""
        ours = self.total_sum
        if not isinstance(weights, np.ndarray) or weights.dtype != ours.dtype or weights.shape != ours.shape:
            got = (f"a {weights.shape} {weights.dtype} array" if isinstance(weights, np.ndarray)
                   else type(weights).__name__)
            raise ConfigError(f"weights must be a {ours.shape} {ours.dtype} array, as the average is, got {got}")
        _optim.moving_average(ours, weights, self.decay, threads)
        self.count()

    def count(self) -> None:
        """Count an update whose weights were taken into total_sum elsewhere (on a device)."""
        self.total = self.decay * self.total + (1.0 - self.decay)

    def weights(self, out: np.ndarray) -> np.ndarray:
        """The average (size,) into out; out unchanged when nothing was taken in yet."""
        if self.total > 0:
            np.divide(self.total_sum, self.total, out=out, casting="unsafe")
        return out


class TrainingAverage:
    """The average of a model's weights while a Trainer updates them: model.params holds the
    weights as trained during steps and, once hold_average() is called, their average (what the
    model files hold) until hold_trained() puts the trained weights back."""

    def __init__(self, model: Model, decay: float):
        self.model = model
        self.average = WeightAverage(decay, model.n_params, model.dtype)
        self._trained = np.empty_like(model.params)
        self.holding = False  # whether model.params holds the average (and _trained the weights)

    def update(self) -> None:
        """Take in model.params after an update (they are the trained weights then)."""
        self.average.update(self.model.params, self.model.threads)

    def hold_average(self, zero_pruned: Callable[[np.ndarray], object]) -> None:
        """Put the average in model.params (nothing before the first update), its pruned
        weights zeroed by zero_pruned(params)."""
        if self.holding or not self.average.total:
            return
        self._trained[:] = self.model.params
        self.average.weights(self.model.params)
        zero_pruned(self.model.params)
        self.holding = True

    def hold_trained(self) -> None:
        """Put the trained weights back in model.params."""
        if self.holding:
            self.model.params[:] = self._trained
            self.holding = False

    def trained_weights(self) -> np.ndarray:
        """(n_params,) the weights as the last update left them."""
        return self._trained if self.holding else self.model.params

    def arrays(self) -> dict[str, np.ndarray]:
        """What a model file keeps of it: the trained weights and the average's sum (none
        before the first update)."""
        return {"trained": self.trained_weights(), "sum": self.average.total_sum} if self.average.total else {}

    def restore(self, trained: np.ndarray, total_sum: np.ndarray, total: float) -> None:
        """Go on from a saved run whose model.params are its average (see arrays)."""
        self.average.total_sum[:] = total_sum
        self.average.total = total
        self._trained[:] = trained
        self.holding = True
