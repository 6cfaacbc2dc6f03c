"""Optimizers over the model's flat parameter vector: RMSprop, Adagrad, Adam.

Each step first clips every gradient element to [-clip, clip] (5 by default, like the original
project), then updates the parameters in place, in one compiled pass over the arrays split over
threads (blekota._optim: the same bits as the NumPy formulas in the class docstrings, whatever
the thread count), with no scratch array. State (moment estimates, step count) is exposed as a
dict of arrays and numbers so that training can be saved and resumed exactly.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from . import _optim
from .checks import positive_float
from .errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike


class Optimizer(ABC):
    """Base class: in-place update of a flat parameter vector from a flat gradient."""

    name = ""
    slots: tuple[str, ...] = ()

    def __init__(self, size: int, dtype: DTypeLike, lr: float, clip: float = 5.0):
        self.lr = positive_float("learning rate", lr)
        self.clip = positive_float("clip", clip)
        self.t = 0
        for slot in self.slots:
            setattr(self, slot, np.zeros(size, dtype))

    def step(self, params: np.ndarray, grads: np.ndarray, threads: int = 1) -> bool:
        """Clip grads in place, then update params in place (both (size,), contiguous, of the
        optimizer's dtype), on `threads` threads. Returns whether every updated weight is finite."""
        self.t += 1
        return self._update(params, grads, threads)

    @abstractmethod
    def _update(self, params: np.ndarray, grads: np.ndarray, threads: int) -> bool:
        """The rule itself, clipping included (blekota._optim); whether the weights are finite."""

    def state_dict(self) -> dict:
        """Everything needed to continue: name, lr, clip, step count and the moment arrays."""
        state = {"name": self.name, "lr": self.lr, "clip": self.clip, "t": self.t}
        for slot in self.slots:
            state[slot] = getattr(self, slot).copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned (arrays must match this optimizer's size)."""
        if state.get("name") != self.name:
            raise ConfigError(f"optimizer state is for {state.get('name')!r}, not {self.name!r}")
        for slot in self.slots:
            value = np.asarray(state[slot])
            current = getattr(self, slot)
            if value.shape != current.shape:
                raise ConfigError(f"optimizer state {slot} has shape {value.shape}, expected {current.shape}")
            current[:] = value
        self.lr = float(state["lr"])
        self.clip = float(state["clip"])
        self.t = int(state["t"])


class RMSprop(Optimizer):
    """m = decay m + (1 - decay) g^2; p -= lr g / sqrt(m + eps). decay 0.9 like the original."""

    name = "rmsprop"
    slots = ("m",)

    def __init__(self, size: int, dtype: DTypeLike, lr: float = 2e-3, clip: float = 5.0, decay: float = 0.9,
                 eps: float = 1e-8):
        super().__init__(size, dtype, lr, clip)
        self.decay, self.eps = decay, eps

    def _update(self, params, grads, threads):
        return _optim.mean_square(params, grads, self.m, self.clip, self.decay, self.eps, self.lr, threads)


class Adagrad(Optimizer):
    """m += g^2; p -= lr g / sqrt(m + eps)."""

    name = "adagrad"
    slots = ("m",)

    def __init__(self, size: int, dtype: DTypeLike, lr: float = 2e-3, clip: float = 5.0, eps: float = 1e-8):
        super().__init__(size, dtype, lr, clip)
        self.eps = eps

    def _update(self, params, grads, threads):
        return _optim.mean_square(params, grads, self.m, self.clip, 0.0, self.eps, self.lr, threads, adagrad=True)


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015) with bias correction; beta1 0.9, beta2 0.999, eps 1e-8."""

    name = "adam"
    slots = ("m", "v")

    def __init__(self, size: int, dtype: DTypeLike, lr: float = 2e-3, clip: float = 5.0, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(size, dtype, lr, clip)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def corrected(self) -> tuple[float, float]:
        """(step size, eps) of step t with the bias corrections folded in: the update is
        step_size * m / (sqrt(v) + eps). Python floats, not NumPy float64 scalars: those would
        promote float32 arrays to a float64 temporary as large as the model on every step."""
        correction = math.sqrt(1.0 - self.beta2**self.t)
        return self.lr * correction / (1.0 - self.beta1**self.t), self.eps * correction

    def _update(self, params, grads, threads):
        step_size, eps = self.corrected()
        return _optim.adam(params, grads, self.m, self.v, self.clip, self.beta1, self.beta2, step_size, eps, threads)


OPTIMIZERS = {cls.name: cls for cls in (RMSprop, Adagrad, Adam)}


def make_optimizer(name: str, size: int, dtype: DTypeLike, lr: float, **options: float) -> Optimizer:
    """An optimizer by name ('rmsprop', 'adagrad' or 'adam') for a flat vector of `size` elements
    of dtype; options are the class's own (clip, decay, beta1, beta2, eps). Raises ConfigError for
    another name, an option the class does not take, or a learning rate or clip that is not a
    positive number."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    known = [p for p in inspect.signature(OPTIMIZERS[name]).parameters if p not in ("size", "dtype", "lr")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"{name} takes no option {', '.join(unknown)} (its options: {', '.join(known)})")
    return OPTIMIZERS[name](size, dtype, lr=lr, **options)
