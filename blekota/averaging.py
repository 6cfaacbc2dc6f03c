"""The moving average of the weights over training iterations (Polyak averaging), which the
model files of a run hold in place of the weights as last updated.

With Adam at the default learning rate the weights jitter from update to update. Their
exponential moving average with decay d (a horizon of about 1 / (1 - d) iterations) predicts
held-out sound better and free-runs more like its source (benchmarks/README.md, "Weight
averaging"). The average starts empty and is corrected for it: after one update it is that
update's weights, after many the weighted sum of the last ~1 / (1 - d).
"""

from __future__ import annotations

import numpy as np

from .checks import fraction, number


def check_decay(decay) -> float:
    """decay as a float, or ConfigError unless it is a number in [0, 1) (0: no averaging)."""
    return fraction("ema", decay, expected="a decay in [0, 1) (0: no averaging)")


class WeightAverage:
    """The exponential moving average of a flat weight vector.

    decay: each update keeps this share of the average (0: the average is the last weights).
    total: the weight the sum carries, 1 - decay^updates for a constant decay (0: nothing yet);
    total_sum: (size,) the uncorrected sum, of `dtype`.
    """

    def __init__(self, decay: float, size: int, dtype, total: float = 0.0):
        self.decay = check_decay(decay)
        self.total = number("ema total", total, 0, 1)
        self.total_sum = np.zeros(size, dtype)

    def update(self, weights: np.ndarray) -> None:
        """Take in the weights (size,) after an update."""
        self.total_sum *= self.decay
        self.total_sum += (1.0 - self.decay) * weights
        self.total = self.decay * self.total + (1.0 - self.decay)

    def weights(self, out: np.ndarray) -> np.ndarray:
        """The average (size,) into out; out unchanged when nothing was taken in yet."""
        if self.total > 0:
            np.divide(self.total_sum, self.total, out=out, casting="unsafe")
        return out
