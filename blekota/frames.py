"""The frame tier: a GRU over frames of samples whose state conditions the sample-level GRU.

A model with frame length F (samples) runs, beside its stack, one more GRU of the same hidden size
H that steps once per frame (SampleRNN's frame tier). Its input is the F levels fed to the stack
during the last frame, as numbers in [-1, 1] (level / 127.5 - 1); its state h_f, through three
matrices Cr, Cz, C (H, H), is added to the gate inputs [r, z, candidate] of the stack's first
layer at every sample of the next frame:

    cond = [Cr . h_f, Cz . h_f, C . h_f]        (3H,), constant over a frame

With the same GRU math as the stack (blekota.reference), the frame tier sees the last F samples as
a whole and changes its state 1/F as often, so it can carry a sound's structure (pitch, loudness,
where a pause or a note ends) longer than the sample GRU's window.

Frames start at the start of each window (and of each sampling run); the state a window leaves
behind has consumed its full frames (a partial last frame is not consumed). The frame state is the
last row of a frame model's hidden state (layers + 1, B, H). In training, gradients flow through
the frame steps inside a window; like the stack's h0, the state a window starts from is a constant.

Flat layout (after the stack's parameters; see frame_size): WxT (F, 3H), UhT (H, 3H), b (3H,),
CT (H, 3H), gate blocks [r, z, candidate] in every 3H.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError
from .mulaw import LEVELS

if TYPE_CHECKING:
    from .model import Model

CONDITIONS = ("Cr", "Cz", "C")  # the conditioning of the gates blekota.layout.GATES names, in order
MAX_FRAME = 4096


def frame_size(frame: int, hidden: int) -> int:
    """Parameters of the frame tier of frame length `frame` for a stack of `hidden` units."""
    return (frame + 2 * hidden + 1) * 3 * hidden if frame else 0


def frame_words(model: Model) -> str:
    """' with a frame tier of 20 samples' for a model that has one, else ''."""
    return f" with a frame tier of {model.frame} samples" if model.frame else ""


def check_training(model: Model, seq_length: int, device: str) -> None:
    """Refuse to train a frame model (blekota.Model with frame > 0) where it cannot be trained:
    windows of a length that is not a multiple of its frame, or a device other than the CPU."""
    if not model.frame:
        return
    if seq_length % model.frame:
        raise ConfigError(
            f"seq_length {seq_length} (train --seq-length) is not a multiple of the model's frame of "
            f"{model.frame} samples (--frame): "
            "each window must hold whole frames"
        )
    if device != "cpu":
        raise ConfigError(f"a model with a frame tier trains on the CPU only, not on {device}")


def frame_inputs(levels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Levels (..., F) -> the frame tier's inputs in [-1, 1], in dtype."""
    return levels.astype(dtype) * dtype.type(2.0 / (LEVELS - 1)) - dtype.type(1.0)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


class FrameTier:
    """Views of the frame tier's weights in a flat vector (its own part of model.params).

    flat: (frame_size(frame, hidden),) array; the views share its memory.
    """

    def __init__(self, flat: np.ndarray, frame: int, hidden: int):
        F, H, G = frame, hidden, 3 * hidden
        self.frame, self.hidden = F, H
        self.WxT = flat[: F * G].reshape(F, G)
        self.UhT = flat[F * G : (F + H) * G].reshape(H, G)
        self.b = flat[(F + H) * G : (F + H + 1) * G]
        self.CT = flat[(F + H + 1) * G :].reshape(H, G)

    def step(self, h: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, tuple]:
        """One frame: state h (B, H), inputs u (B, F) -> (h', cache for backward_step)."""
        H = self.hidden
        a = u @ self.WxT + self.b
        a[:, : 2 * H] += h @ self.UhT[:, : 2 * H]
        r = _sigmoid(a[:, :H])
        z = _sigmoid(a[:, H : 2 * H])
        rh = r * h
        candidate = np.tanh(a[:, 2 * H :] + rh @ self.UhT[:, 2 * H :])
        return (1 - z) * h + z * candidate, (u, h, r, z, candidate, rh)

    def backward_step(self, dh_new: np.ndarray, cache: tuple, grads: FrameTier) -> np.ndarray:
        """Gradients of one step into grads (added), from dLoss/dh' (B, H); returns dLoss/dh."""
        u, h, r, z, candidate, rh = cache
        H = self.hidden
        d_candidate = dh_new * z * (1 - candidate * candidate)
        d_rh = d_candidate @ self.UhT[:, 2 * H :].T
        da_r = d_rh * h * r * (1 - r)
        da_z = dh_new * (candidate - h) * z * (1 - z)
        d_rz = np.concatenate([da_r, da_z], axis=1)
        dh = dh_new * (1 - z) + d_rh * r + d_rz @ self.UhT[:, : 2 * H].T
        da = np.concatenate([d_rz, d_candidate], axis=1)
        grads.WxT += u.T @ da
        grads.UhT[:, : 2 * H] += h.T @ d_rz
        grads.UhT[:, 2 * H :] += rh.T @ d_candidate
        grads.b += da.sum(axis=0)
        return dh

    def forward(self, inputs: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """The conditioning of one window.

        inputs (T, B) levels fed to the stack; h0 (B, H) the frame state it starts from.
        Returns (cond (ceil(T / F), B, 3H): row k for steps [kF, (k+1)F), the state after the
        window's full frames (B, H), and per frame k >= 1 the state it is conditioned on with the
        cache of the step that made it)."""
        F = self.frame
        T = inputs.shape[0]
        frames = -(-T // F)
        dtype = self.WxT.dtype
        states, caches = [h0], []
        for k in range(1, frames + (T % F == 0)):
            u = frame_inputs(inputs[(k - 1) * F : k * F].T, dtype)
            h, cache = self.step(states[-1], u)
            states.append(h)
            caches.append(cache)
        cond = np.stack(states[:frames]) @ self.CT
        return cond, states[T // F], list(zip(states[1:frames], caches[: frames - 1]))

    def backward(self, d_cond: np.ndarray, h0: np.ndarray, steps: list, grads: FrameTier) -> None:
        """Gradients into grads (overwritten) from dLoss/dcond (frames, B, 3H), with what forward
        returned; the window's first state h0 is a constant (truncation)."""
        for view in (grads.WxT, grads.UhT, grads.b, grads.CT):
            view[...] = 0
        states = [h0] + [state for state, _ in steps]
        grads.CT += np.einsum("kbh,kbg->hg", np.stack(states), d_cond, optimize=True)
        dh = None
        for k in range(len(steps), 0, -1):
            d_state = d_cond[k] @ self.CT.T
            dh = d_state if dh is None else dh + d_state
            dh = self.backward_step(dh, steps[k - 1][1], grads)


def frame_sums(d_acts: np.ndarray, frame: int) -> np.ndarray:
    """(T, B, 3H) per-step gradients -> (ceil(T / frame), B, 3H) sums over each frame's steps."""
    T = d_acts.shape[0]
    starts = np.arange(0, T, frame)
    return np.add.reduceat(d_acts, starts, axis=0)
