"""Where each weight lives: the flat parameter vector the compiled core reads, and the canonical
state dictionary (STYLE: W, Wr, Wz (H, X + H + 1) per layer, Wy (256, H + 1); with a frame tier,
blekota.frames' matrices) that files, the reference and other frameworks speak."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import frames, memory
from .mulaw import LEVELS

GATES = ("Wr", "Wz", "W")  # the order of the gate blocks inside the compiled core


@dataclass(frozen=True)
class Layout:
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
        return memory.parameter_count(self.layers, self.hidden)


def flat_to_canonical(flat: np.ndarray, layers: int, hidden: int, frame: int = 0) -> dict[str, np.ndarray]:
    """Flat vector -> canonical dict: gru{l}.W/Wr/Wz (H, X+H+1), out.Wy (256, H+1), and with a
    frame tier (frame > 0) frame.W/Wr/Wz (H, F+H+1), frame.Cr/Cz/C (H, H) (see blekota.frames)."""
    layout = Layout(layers, hidden)
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
    if frame:
        tier = frames.FrameTier(flat[layout.size :], frame, hidden)
        for block, (name, condition) in enumerate(zip(GATES, frames.CONDITIONS)):
            cols = slice(block * H, (block + 1) * H)
            state[f"frame.{name}"] = np.concatenate(
                [tier.WxT[:, cols].T, tier.UhT[:, cols].T, tier.b[cols, None]], axis=1
            )
            state[f"frame.{condition}"] = tier.CT[:, cols].T.copy()
    return state


def canonical_to_flat(state: dict[str, np.ndarray], layers: int, hidden: int, out: np.ndarray,
                      frame: int = 0) -> None:
    """Canonical dict -> the flat vector `out` (written in place, in out's dtype)."""
    layout = Layout(layers, hidden)
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
    if frame:
        tier = frames.FrameTier(out[layout.size :], frame, hidden)
        for block, (name, condition) in enumerate(zip(GATES, frames.CONDITIONS)):
            cols = slice(block * H, (block + 1) * H)
            matrix = state[f"frame.{name}"]
            tier.WxT[:, cols] = matrix[:, :frame].T
            tier.UhT[:, cols] = matrix[:, frame : frame + H].T
            tier.b[cols] = matrix[:, -1]
            tier.CT[:, cols] = state[f"frame.{condition}"].T


def canonical_shapes(layers: int, hidden: int, frame: int = 0) -> dict[str, tuple[int, int]]:
    """The shape of every matrix of the canonical state dictionary (frame > 0: with a frame tier)."""
    shapes = {}
    for layer in range(layers):
        inputs = LEVELS if layer == 0 else hidden
        for name in ("W", "Wr", "Wz"):
            shapes[f"gru{layer}.{name}"] = (hidden, inputs + hidden + 1)
    shapes["out.Wy"] = (LEVELS, hidden + 1)
    if frame:
        for name, condition in zip(GATES, frames.CONDITIONS):
            shapes[f"frame.{name}"] = (hidden, frame + hidden + 1)
            shapes[f"frame.{condition}"] = (hidden, hidden)
    return shapes


def frame_of(state: dict[str, np.ndarray]) -> int:
    """The frame length of a canonical state dictionary's frame tier (0: none)."""
    if "frame.W" not in state:
        return 0
    shape = np.shape(state["frame.W"])
    return int(shape[1]) - int(shape[0]) - 1 if len(shape) == 2 else -1
