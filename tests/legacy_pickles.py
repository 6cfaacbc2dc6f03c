"""Pickles like the original NumPy blekota wrote, made with stand-in modules gru, gru_layer, param.

The stand-ins have the original's class names, attributes and array layout (batch in the last
axis, one-hot inputs), and `forward` re-implements the original's math so tests can compare.
"""

from __future__ import annotations

import pickle
import sys
import types
from contextlib import contextmanager

import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class Param:
    def __init__(self, a):
        self.a = a
        self.d = np.zeros_like(a)
        self.m = np.zeros_like(a)
        self.name = ""


class GRULayer:
    def __init__(self, x_n, h_n, rng):
        self.x_n, self.h_n = x_n, h_n
        self.W, self.Wr, self.Wz = (Param(rng.standard_normal((h_n, x_n + h_n + 1)) * 0.5) for _ in range(3))

    def step(self, x, h):
        """The original's step: x (x_n, b), h (h_n, b) -> h' (h_n, b)."""
        ones = np.ones((1, x.shape[1]))
        z = _sigmoid(self.Wz.a @ np.r_[x, h, ones])
        r = _sigmoid(self.Wr.a @ np.r_[x, h, ones])
        candidate = np.tanh(self.W.a @ np.r_[x, r * h, ones])
        return (1 - z) * h + candidate * z


class GRU:
    def __init__(self, h_n, layer_n, seed=0, **attributes):
        rng = np.random.default_rng(seed)
        self.h_n, self.layer_n = h_n, layer_n
        self.seq_length, self.batches, self.alpha = 100, 80, 2e-3
        self.epochs, self.iterations, self.loss_report_n = 0, 0, 50
        self.layers = [GRULayer(256 if i == 0 else h_n, h_n, rng) for i in range(layer_n)]
        self.Wy = Param(rng.standard_normal((256, h_n + 1)) * 0.5)
        self.params = [self.Wy] + [p for layer in self.layers for p in (layer.W, layer.Wr, layer.Wz)]
        for param in self.params:
            param.m = rng.uniform(0, 1e-3, param.a.shape)
            param.d = rng.standard_normal(param.a.shape)
        self.p = np.zeros(1)
        self.__dict__.update(attributes)

    def forward(self, levels):
        """levels (T, b) -> (T, b, 256) probabilities of the next level, the original's way."""
        T, b = levels.shape
        h = [np.zeros((self.h_n, b)) for _ in range(self.layer_n)]
        probs = np.empty((T, b, 256))
        for t in range(T):
            x = np.zeros((256, b))
            x[levels[t], np.arange(b)] = 1
            for l, layer in enumerate(self.layers):
                h[l] = layer.step(x if l == 0 else h[l - 1], h[l])
            y = self.Wy.a @ np.r_[h[-1], np.ones((1, b))]
            e = np.exp(y - y.max(axis=0))
            probs[t] = (e / e.sum(axis=0)).T
        return probs


@contextmanager
def original_modules():
    """Make gru.GRU, gru_layer.GRULayer and param.Param importable, as in the original project."""
    names = {"gru": GRU, "gru_layer": GRULayer, "param": Param}
    saved = {name: sys.modules.get(name) for name in names}
    originals = {cls: (cls.__module__, cls.__qualname__) for cls in names.values()}
    try:
        for module_name, cls in names.items():
            module = types.ModuleType(module_name)
            cls.__module__ = module_name
            setattr(module, cls.__name__, cls)
            sys.modules[module_name] = module
        yield
    finally:
        for cls, (module_name, qualname) in originals.items():
            cls.__module__, cls.__qualname__ = module_name, qualname
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_pickle(path, gru: GRU, protocol: int = pickle.DEFAULT_PROTOCOL):
    with original_modules(), open(path, "wb") as file:
        pickle.dump(gru, file, protocol=protocol)
    return path
