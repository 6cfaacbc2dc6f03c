"""blekota's network as a PyTorch module: train with PyTorch (on a GPU, say), sample with blekota.

Optional: needs `pip install torch`; nothing else in blekota imports this module.

GRUModel implements exactly blekota's cell (see blekota.reference), not torch.nn.GRU's, which
applies the reset gate after the recurrent product:

    r  = sigmoid(Wr . [x, h, 1])
    z  = sigmoid(Wz . [x, h, 1])
    h~ = tanh(W . [x, r*h, 1])
    h' = (1 - z) * h + z * h~

Its parameters are the canonical matrices themselves (layer l's W, Wr, Wz of shape (H, X+H+1),
the output's Wy of shape (256, H+1)), so GRUModel.from_blekota(model) and .to_blekota() copy
weights one to one, and gradients are those of Model.loss_and_grad.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import positive_int
from .errors import ConfigError
from .model import Model
from .mulaw import LEVELS

try:
    import torch
    from torch import nn
    from torch.nn import functional
except ImportError:
    raise ImportError(
        "blekota.torch needs PyTorch, which is not installed: pip install torch "
        "(blekota itself does not need it)"
    ) from None

NUMPY_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def starting_weights(shape: tuple[int, int], hidden: int, dtype: torch.dtype, device) -> torch.Tensor:
    """A new weight matrix of `shape`, biases in its last column, uniform in +-1/sqrt(hidden) as a
    new blekota Model's (and PyTorch's GRU's)."""
    bound = 1.0 / math.sqrt(hidden)
    return torch.empty(shape, dtype=dtype, device=device).uniform_(-bound, bound)


class GRULayer(nn.Module):
    """One layer of blekota's GRU: W, Wr, Wz of shape (hidden, inputs + hidden + 1)."""

    def __init__(self, inputs: int, hidden: int, dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.inputs, self.hidden = inputs, hidden
        for name in ("W", "Wr", "Wz"):
            setattr(self, name, nn.Parameter(starting_weights((hidden, inputs + hidden + 1), hidden, dtype, device)))

    def forward(self, projected: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """projected: (T, B, 3H) input products [r | z | candidate] with biases, from project();
        h: (B, H). Returns the hidden states after each step (T, B, H) and the last one (B, H)."""
        X, H = self.inputs, self.hidden
        recurrent_rz = torch.cat([self.Wr[:, X : X + H], self.Wz[:, X : X + H]]).T  # (H, 2H)
        recurrent_candidate = self.W[:, X : X + H].T  # (H, H)
        states = []
        for step in projected.unbind(0):
            gates = torch.sigmoid(step[:, : 2 * H] + h @ recurrent_rz)
            r, z = gates[:, :H], gates[:, H:]
            candidate = torch.tanh(step[:, 2 * H :] + (r * h) @ recurrent_candidate)
            h = (1 - z) * h + z * candidate
            states.append(h)
        return torch.stack(states), h

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The input products of all steps at once: x (T, B) levels for the first layer (a column
        lookup, as a one-hot product) or (T, B, X) states of the layer below -> (T, B, 3H)."""
        X = self.inputs
        input_weights = torch.cat([self.Wr[:, :X], self.Wz[:, :X], self.W[:, :X]])  # (3H, X)
        bias = torch.cat([self.Wr[:, -1], self.Wz[:, -1], self.W[:, -1]])
        if x.dtype == torch.long:
            return functional.embedding(x, input_weights.T) + bias
        return x @ input_weights.T + bias


class GRUModel(nn.Module):
    """blekota's stacked GRU over 256 mu-law levels as a torch module.

    hidden: units per layer; layers: GRU layers; fs: the sample rate in Hz the model speaks
    (carried into to_blekota); dtype, device: of the parameters. Weights and biases start as
    blekota's do: uniform in +-1/sqrt(hidden) (seed them with torch.manual_seed).
    """

    def __init__(
        self,
        hidden: int = 256,
        layers: int = 3,
        fs: int = 8000,
        dtype: torch.dtype = torch.float32,
        device=None,
    ):
        super().__init__()
        hidden, layers, fs = (positive_int(name, value) for name, value in (("hidden", hidden), ("layers", layers), ("fs", fs)))
        self.hidden, self.fs = hidden, fs
        self.preemphasis = 0.0  # of the sound whose levels it predicts (blekota.emphasis); from_blekota sets it
        self.gru = nn.ModuleList(
            GRULayer(LEVELS if layer == 0 else hidden, hidden, dtype, device) for layer in range(layers)
        )
        self.Wy = nn.Parameter(starting_weights((LEVELS, hidden + 1), hidden, dtype, device))

    @property
    def layers(self) -> int:
        return len(self.gru)

    def zero_state(self, batch: int) -> torch.Tensor:
        """An all-zero hidden state (layers, batch, hidden) on the parameters' device."""
        return self.Wy.new_zeros(self.layers, batch, self.hidden)

    def forward(self, levels: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """levels: (T, B) integer levels 0..255; h0: (layers, B, H) or None for zeros.
        Returns logits (T, B, 256) of the level after each input, and the last state (layers, B, H).
        """
        if not isinstance(levels, torch.Tensor) or levels.ndim != 2 or levels.dtype.is_floating_point:
            raise ConfigError("levels must be a (T, B) integer tensor of levels 0..255")
        if levels.numel() and (levels.min() < 0 or levels.max() >= LEVELS):
            raise ConfigError("levels must lie in 0..255")
        T, B = levels.shape
        if h0 is None:
            h0 = self.zero_state(B)
        elif tuple(h0.shape) != (self.layers, B, self.hidden):
            raise ConfigError(f"h0 must have shape {(self.layers, B, self.hidden)}, got {tuple(h0.shape)}")
        return self.unchecked_forward(levels.to(device=self.Wy.device, dtype=torch.long), h0)

    def unchecked_forward(self, levels: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """forward() without its checks, which read the levels back to the host: levels (T, B)
        long tensor of 0..255 on the parameters' device, h0 (layers, B, H). For callers that
        checked their input, such as a training step captured in a CUDA graph (blekota.torchstep)."""
        x, last = levels, []
        for layer, h in zip(self.gru, h0):
            x, h = layer(layer.project(x), h)
            last.append(h)
        logits = x @ self.Wy[:, :-1].T + self.Wy[:, -1]
        return logits, torch.stack(last)

    def loss(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean nats per predicted sample over a (T+1, B) window (rows 0..T-1 inputs, 1..T
        targets), as Model.loss_and_grad; returns (loss, last state (layers, B, H))."""
        logits, h = self(x[:-1], h0)
        targets = x[1:].to(device=logits.device, dtype=torch.long)
        return functional.cross_entropy(logits.reshape(-1, LEVELS), targets.reshape(-1)), h

    def canonical_parameters(self) -> dict[str, nn.Parameter]:
        """The parameters keyed as blekota's canonical state dictionary (gru{l}.W, .Wr, .Wz, out.Wy)."""
        named = {f"gru{index}.{name}": getattr(layer, name) for index, layer in enumerate(self.gru)
                 for name in ("W", "Wr", "Wz")}
        named["out.Wy"] = self.Wy
        return named

    def canonical_state_dict(self) -> dict[str, np.ndarray]:
        """The weights as blekota's canonical state dictionary of float64 NumPy arrays."""
        return {key: _to_numpy(parameter) for key, parameter in self.canonical_parameters().items()}

    def load_canonical_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy the weights of a canonical state dictionary (Model.state_dict()) into the parameters."""
        with torch.no_grad():
            for key, parameter in self.canonical_parameters().items():
                parameter.copy_(torch.from_numpy(np.asarray(state[key])))

    @classmethod
    def from_blekota(cls, model: Model, dtype: torch.dtype | None = None,
                     device: torch.device | str | int | None = None) -> GRUModel:
        """A GRUModel with model's weights and fs; dtype: the model's (float32/float64) by default."""
        if not isinstance(model, Model):
            raise ConfigError(f"from_blekota needs a blekota Model, got {type(model).__name__}")
        if model.frame:
            raise ConfigError("a model with a frame tier has no PyTorch twin: GRUModel is the stack alone")
        if dtype is None:
            dtype = torch.float64 if model.dtype == np.float64 else torch.float32
        module = cls(model.hidden, model.layers, model.fs, dtype=dtype, device=device)
        module.load_canonical_state_dict(model.state_dict())
        module.preemphasis = model.preemphasis
        return module

    def to_blekota(self, fs: int | None = None, dtype: str | None = None, **kwargs) -> Model:
        """A blekota Model with these weights: fs (default self.fs), dtype "float32"/"float64"
        (default: the parameters' own, float32 for half precisions); kwargs go to Model
        (preemphasis: default self.preemphasis)."""
        if dtype is None:
            dtype = NUMPY_DTYPES.get(self.Wy.dtype, "float32")
        state = self.canonical_state_dict()
        if not all(np.isfinite(value).all() for value in state.values()):
            raise ConfigError("the weights contain NaN or infinite values")
        kwargs.setdefault("preemphasis", self.preemphasis)
        return Model.from_state_dict(state, fs=self.fs if fs is None else fs, dtype=dtype, **kwargs)


def _to_numpy(parameter: torch.Tensor) -> np.ndarray:
    return parameter.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
