"""The model: a stacked GRU over mu-law levels, its weights, and the calls into the compiled core."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from .errors import ConfigError
from .mulaw import LEVELS, SILENCE, quantize, unquantize

try:
    from . import _gru, _sample
except ImportError as error:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        f"blekota's compiled core is missing from {Path(__file__).parent} ({error}). Build it with "
        "'pip install -e .', or run from outside the source folder after 'pip install .'."
    ) from error

DTYPES = {"float32": np.float32, "float64": np.float64}
GATES = ("Wr", "Wz", "W")  # the order of the gate blocks inside the compiled core


_blas_controller: ThreadpoolController | None = None


def single_threaded_blas():
    """A context in which BLAS runs on the calling thread only.

    The compiled kernels split their work over OpenMP threads and call BLAS from each of them;
    a multi-threaded BLAS underneath would fight them for the same cores.
    """
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def default_threads() -> int:
    """OMP_NUM_THREADS when set, else the number of CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _dtype(dtype) -> np.dtype:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return np.dtype(DTYPES[name])


@dataclass(frozen=True)
class _Layout:
    """Where each matrix lives in the flat parameter vector (see csrc/gates.pxi)."""

    layers: int
    hidden: int

    def layer_slices(self, layer: int) -> tuple[slice, slice, slice]:
        """Slices of WxT (X, 3H), UhT (H, 3H) and b (3H,) of one layer."""
        H, G = self.hidden, 3 * self.hidden
        inputs = LEVELS if layer == 0 else H
        start = 0 if layer == 0 else (LEVELS + H + 1) * G + (layer - 1) * (2 * H + 1) * G
        wx = slice(start, start + inputs * G)
        uh = slice(wx.stop, wx.stop + H * G)
        return wx, uh, slice(uh.stop, uh.stop + G)

    def output_slices(self) -> tuple[slice, slice]:
        """Slices of WyT (H, 256) and by (256,)."""
        start = self.layer_slices(self.layers - 1)[2].stop
        return slice(start, start + self.hidden * LEVELS), slice(start + self.hidden * LEVELS, self.size)

    @property
    def size(self) -> int:
        return _gru.n_parameters(self.layers, self.hidden)


def flat_to_canonical(flat: np.ndarray, layers: int, hidden: int) -> dict[str, np.ndarray]:
    """Flat core vector -> canonical dict: gru{l}.W/Wr/Wz (H, X+H+1), out.Wy (256, H+1)."""
    layout = _Layout(layers, hidden)
    H, G = hidden, 3 * hidden
    state = {}
    for layer in range(layers):
        wx_s, uh_s, b_s = layout.layer_slices(layer)
        wx = flat[wx_s].reshape(-1, G)
        uh = flat[uh_s].reshape(H, G)
        bias = flat[b_s]
        for block, name in enumerate(GATES):
            cols = slice(block * H, (block + 1) * H)
            state[f"gru{layer}.{name}"] = np.concatenate(
                [wx[:, cols].T, uh[:, cols].T, bias[cols, None]], axis=1
            )
    wy_s, by_s = layout.output_slices()
    state["out.Wy"] = np.concatenate([flat[wy_s].reshape(H, LEVELS).T, flat[by_s][:, None]], axis=1)
    return state


def canonical_to_flat(state: dict[str, np.ndarray], layers: int, hidden: int, out: np.ndarray) -> None:
    """Canonical dict -> the flat core vector `out` (written in place, in out's dtype)."""
    layout = _Layout(layers, hidden)
    H, G = hidden, 3 * hidden
    for layer in range(layers):
        wx_s, uh_s, b_s = layout.layer_slices(layer)
        inputs = LEVELS if layer == 0 else H
        wx = out[wx_s].reshape(inputs, G)
        uh = out[uh_s].reshape(H, G)
        bias = out[b_s]
        for block, name in enumerate(GATES):
            matrix = state[f"gru{layer}.{name}"]
            cols = slice(block * H, (block + 1) * H)
            wx[:, cols] = matrix[:, :inputs].T
            uh[:, cols] = matrix[:, inputs : inputs + H].T
            bias[cols] = matrix[:, -1]
    wy_s, by_s = layout.output_slices()
    out[wy_s].reshape(H, LEVELS)[:] = state["out.Wy"][:, :H].T
    out[by_s] = state["out.Wy"][:, H]


def canonical_shapes(layers: int, hidden: int) -> dict[str, tuple[int, int]]:
    """The shape of every matrix of the canonical state dictionary."""
    shapes = {}
    for layer in range(layers):
        inputs = LEVELS if layer == 0 else hidden
        for name in ("W", "Wr", "Wz"):
            shapes[f"gru{layer}.{name}"] = (hidden, inputs + hidden + 1)
    shapes["out.Wy"] = (LEVELS, hidden + 1)
    return shapes


class _Workspace:
    """Scratch arrays for one (T, B): allocated once, reused by every window of that shape."""

    def __init__(self, layers: int, T: int, B: int, hidden: int, dtype: np.dtype, backward: bool):
        H = hidden
        self.backward = backward
        self.hs = np.empty((layers, T + 1, B, H), dtype)
        self.acts = np.empty((layers, T, B, 3 * H), dtype)
        self.rh = np.empty((layers, T, B, H), dtype)
        self.out = np.empty((T * B, LEVELS), dtype)
        shape = (T, B) if backward else (0, 0)
        self.d_acts = np.empty(shape + (3 * H,), dtype)
        self.d_hs = np.empty(shape + (H,), dtype)
        self.dh_next = np.empty((shape[1], H), dtype)
        self.d_rh = np.empty((shape[1], H), dtype)


class Model:
    """A stacked GRU that predicts the next mu-law level of a sound.

    hidden: units per layer; layers: GRU layers; fs: sample rate in Hz that the model speaks;
    dtype: "float32" or "float64"; seed: weights initialization (None: random);
    threads: OpenMP threads for the kernels (None: OMP_NUM_THREADS or the CPU count).
    """

    def __init__(
        self,
        hidden: int = 256,
        layers: int = 3,
        fs: int = 8000,
        dtype: str = "float32",
        seed: int | None = None,
        threads: int | None = None,
    ):
        self.hidden = _positive_int("hidden", hidden)
        self.layers = _positive_int("layers", layers)
        self.fs = _positive_int("fs", fs)
        self.dtype = _dtype(dtype)
        self.threads = default_threads() if threads is None else _positive_int("threads", threads)
        self.params = np.zeros(_Layout(self.layers, self.hidden).size, self.dtype)
        self._workspaces: dict[tuple[int, int], _Workspace] = {}
        rng = np.random.default_rng(seed)
        state = {
            key: rng.standard_normal(shape) * 0.01
            for key, shape in canonical_shapes(self.layers, self.hidden).items()
        }
        for matrix in state.values():
            matrix[:, -1] = 0.0
        canonical_to_flat(state, self.layers, self.hidden, self.params)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return self.params.size

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the weights in the canonical layout (see blekota.reference)."""
        return flat_to_canonical(self.params, self.layers, self.hidden)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Replace the weights with a canonical dict of this model's architecture."""
        expected = canonical_shapes(self.layers, self.hidden)
        if set(state) != set(expected):
            raise ConfigError(f"state dict keys {sorted(state)} do not match {sorted(expected)}")
        for key, shape in expected.items():
            if np.shape(state[key]) != shape:
                raise ConfigError(f"{key} has shape {np.shape(state[key])}, expected {shape}")
        canonical_to_flat(state, self.layers, self.hidden, self.params)

    @classmethod
    def from_state_dict(
        cls, state: dict[str, np.ndarray], fs: int = 8000, dtype: str = "float32", **kwargs
    ) -> Model:
        """A model with these canonical weights; the architecture is read from the shapes."""
        if "gru0.W" not in state or "out.Wy" not in state:
            raise ConfigError("state dict needs at least gru0.W and out.Wy")
        hidden = int(np.shape(state["gru0.W"])[0])
        layers = sum(1 for key in state if key.endswith(".Wr"))
        model = cls(hidden=hidden, layers=layers, fs=fs, dtype=dtype, **kwargs)
        model.load_state_dict(state)
        return model

    def zero_state(self, batch: int) -> np.ndarray:
        """An all-zero hidden state (layers, batch, hidden)."""
        return np.zeros((self.layers, batch, self.hidden), self.dtype)

    def _check_window(self, x, h0) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
            raise ConfigError(f"x must be a (T+1, B) array of levels with T >= 1, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ConfigError(f"x must hold integer levels 0..255, got dtype {x.dtype}")
        if x.size and (x.min() < 0 or x.max() >= LEVELS):
            raise ConfigError("x must hold integer levels 0..255")
        x = np.ascontiguousarray(x, dtype=np.uint8)
        B = x.shape[1]
        if h0 is None:
            h0 = self.zero_state(B)
        else:
            h0 = np.asarray(h0)
            if h0.shape != (self.layers, B, self.hidden):
                raise ConfigError(
                    f"h0 must have shape {(self.layers, B, self.hidden)}, got {h0.shape}"
                )
            h0 = np.ascontiguousarray(h0, dtype=self.dtype)
        return x, h0

    def _workspace_for(self, T: int, B: int, backward: bool) -> _Workspace:
        """Scratch for windows of (T, B); the two most recent shapes stay allocated."""
        ws = self._workspaces.pop((T, B), None)
        if ws is None or (backward and not ws.backward):
            ws = _Workspace(self.layers, T, B, self.hidden, self.dtype, backward)
        self._workspaces[(T, B)] = ws
        while len(self._workspaces) > 2:
            del self._workspaces[next(iter(self._workspaces))]
        return ws

    def window(self, x, h0=None, grads: np.ndarray | None = None):
        """Run the compiled core over one window.

        x: (T+1, B) levels; h0: (layers, B, H) or None. With grads (a flat array like
        self.params) the backward pass runs and fills it. Returns (loss in mean nats per
        predicted sample, h_last (layers, B, H)). Scratch memory is kept for the next call.
        """
        x, h0 = self._check_window(x, h0)
        T, B = x.shape[0] - 1, x.shape[1]
        backward = grads is not None
        ws = self._workspace_for(T, B, backward)
        h_last = np.empty_like(h0)
        if grads is None:
            grads = np.empty(0, self.dtype)
        elif grads.shape != self.params.shape or grads.dtype != self.dtype:
            raise ConfigError("grads must be an array shaped and typed like model.params")
        with single_threaded_blas():
            loss = _gru.window(
                self.params, grads, x, h0, h_last, ws.hs, ws.acts, ws.rh, ws.out,
                ws.d_acts, ws.d_hs, ws.dh_next, ws.d_rh, backward, self.threads,
            )
        return loss, h_last

    def loss_and_grad(self, x, h0=None):
        """Loss and gradients over one window, through the compiled core.

        x: (T+1, B) int levels, rows 0..T-1 inputs and 1..T targets; h0: (layers, B, H) or None.
        Returns (loss in mean nats per predicted sample, grads as a canonical dict, h_last).
        """
        grads = np.empty_like(self.params)
        loss, h_last = self.window(x, h0, grads)
        return loss, flat_to_canonical(grads, self.layers, self.hidden), h_last

    def probabilities(self, inputs, h0=None) -> np.ndarray:
        """Teacher-forced distributions: inputs (T, B) levels -> (T, B, 256) p of the next level."""
        inputs = np.asarray(inputs)
        if inputs.ndim != 2:
            raise ConfigError(f"inputs must be a (T, B) array of levels, got shape {inputs.shape}")
        x = np.concatenate([inputs, np.full((1, inputs.shape[1]), SILENCE, inputs.dtype)])
        self.window(x, h0)
        out = self._workspaces[(inputs.shape[0], inputs.shape[1])].out
        return out.reshape(inputs.shape[0], inputs.shape[1], LEVELS).copy()

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        hint=None,
        seed: int | None = None,
        return_probs: bool = False,
        streams: int = 1,
    ):
        """Generate n samples (float in [-1, 1]) by feeding each drawn level back in.

        temperature divides the logits (higher: more varied; 0: always the likeliest level).
        hint: a float sound that primes generation: its samples are used instead of draws, so the
        output starts with the hint. seed: same seed, same sound. streams: S independent voices.
        Returns (n,) float32 for one stream, (S, n) for several; with return_probs also the
        probabilities (n, 256) or (S, n, 256) in the model's dtype (float32 by default): p[t] is
        the distribution sample t was drawn from (the plain softmax when temperature is 0).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"n must be a non-negative integer, got {n!r}")
        streams = _positive_int("streams", streams)
        if not isinstance(temperature, (int, float, np.floating)) or not temperature >= 0:
            raise ConfigError(f"temperature must be a number >= 0, got {temperature!r}")
        hint_levels = self._hint_levels(hint, streams, n)
        levels = np.empty((streams, n), np.uint8)
        h = self.zero_state(streams)
        previous = np.full(streams, SILENCE, np.uint8)
        probs = np.empty((streams, n if return_probs else 0, LEVELS), self.dtype)
        bit_generator = np.random.PCG64(seed)
        _sample.generate(
            self.params, h, levels, hint_levels, previous, probs,
            float(temperature), bit_generator, self.threads,
        )
        sound = unquantize(levels)
        if streams == 1:
            sound, probs = sound[0], probs[0]
        if return_probs:
            return sound, probs
        return sound

    @staticmethod
    def _hint_levels(hint, streams: int, n: int) -> np.ndarray:
        """Hint sound(s) -> (streams, nh) levels, cut to n steps."""
        if hint is None:
            return np.empty((streams, 0), np.uint8)
        if isinstance(hint, (list, tuple)):
            hints = [np.asarray(h, np.float64).ravel() for h in hint]
            if len(hints) != streams:
                raise ConfigError(f"got {len(hints)} hints for {streams} streams")
            length = min(len(h) for h in hints)
            hint = np.stack([h[:length] for h in hints])
        else:
            hint = np.asarray(hint, np.float64)
            if hint.ndim != 1:
                raise ConfigError(f"hint must be a 1-D sound, got shape {hint.shape}")
            hint = np.broadcast_to(hint, (streams, hint.size))
        if not np.isfinite(hint).all():
            raise ConfigError("hint contains NaN or infinite samples")
        return np.ascontiguousarray(quantize(hint[:, :n]))
