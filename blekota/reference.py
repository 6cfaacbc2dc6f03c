"""The whole GRU stack in plain NumPy float64, written to be read: the oracle for every kernel test.

Per layer, with input x (the one-hot level for layer 0, the layer below's h otherwise), previous
hidden state h and [a, b, 1] concatenation with a constant 1 for the bias:

    r  = sigmoid(Wr . [x, h, 1])
    z  = sigmoid(Wz . [x, h, 1])
    h~ = tanh(W . [x, r*h, 1])
    h' = (1 - z) * h + z * h~

Output y = Wy . [h_top, 1], p = softmax(y) over 256 levels, loss = mean of -log p[next] in nats.

Parameters are the canonical state dictionary: ``gru{l}.W``, ``gru{l}.Wr``, ``gru{l}.Wz`` of shape
(H, X + H + 1) with columns [x, h, 1] (X = 256 for layer 0, H above) and ``out.Wy`` of shape
(256, H + 1). Arrays are time-major: a window is (T + 1, B) levels, hidden states are (B, H).
Layer 0's one-hot input is used as an index (a column of the weight matrix), never materialized.

A frame tier (blekota.frames; forward only here, its gradients are checked by finite differences)
is ``frame.W``, ``frame.Wr``, ``frame.Wz`` (H, F + H + 1), a GRU over the F levels of each frame
as numbers level / 127.5 - 1, and ``frame.Cr``, ``frame.Cz``, ``frame.C`` (H, H): its state h_f
adds Cr . h_f, Cz . h_f, C . h_f to layer 0's r, z and candidate inputs. Frames start at step 0;
the state h_f of frame k has consumed the inputs of frames 0..k-1, and is row `layers` of h.
"""

from __future__ import annotations

import numpy as np

LEVELS = 256


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-a)), elementwise."""
    return 1.0 / (1.0 + np.exp(-a))


def layer_count(params: dict[str, np.ndarray]) -> int:
    """Number of GRU layers in a canonical state dictionary."""
    return sum(1 for key in params if key.startswith("gru") and key.endswith(".Wr"))


def _input_part(weights: np.ndarray, inp: np.ndarray, layer: int) -> np.ndarray:
    """weights[:, :X] . x for a batch: (B, H). Layer 0 takes levels (B,) and gathers columns."""
    if layer == 0:
        return weights[:, inp].T
    return inp @ weights[:, : inp.shape[1]].T


def _step(params, layer, inp, h, cond=(0.0, 0.0, 0.0)):
    """One GRU step of one layer, cond added to its r, z and candidate inputs; returns h' and
    what the backward pass needs."""
    W, Wr, Wz = (params[f"gru{layer}.{name}"] for name in ("W", "Wr", "Wz"))
    H = h.shape[1]
    r = sigmoid(_input_part(Wr, inp, layer) + h @ Wr[:, -H - 1 : -1].T + Wr[:, -1] + cond[0])
    z = sigmoid(_input_part(Wz, inp, layer) + h @ Wz[:, -H - 1 : -1].T + Wz[:, -1] + cond[1])
    candidate = np.tanh(_input_part(W, inp, layer) + (r * h) @ W[:, -H - 1 : -1].T + W[:, -1] + cond[2])
    h_new = (1.0 - z) * h + z * candidate
    return h_new, (inp, h, r, z, candidate)


def frame_step(params: dict[str, np.ndarray], levels: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The frame tier's next state from the levels (B, F) of one frame and its state h (B, H)."""
    W, Wr, Wz = (params[f"frame.{name}"] for name in ("W", "Wr", "Wz"))
    F = W.shape[1] - h.shape[1] - 1
    u = np.asarray(levels, np.float64) / 127.5 - 1.0
    r = sigmoid(u @ Wr[:, :F].T + h @ Wr[:, F:-1].T + Wr[:, -1])
    z = sigmoid(u @ Wz[:, :F].T + h @ Wz[:, F:-1].T + Wz[:, -1])
    candidate = np.tanh(u @ W[:, :F].T + (r * h) @ W[:, F:-1].T + W[:, -1])
    return (1.0 - z) * h + z * candidate


def _initial_state(params, batch: int, h0) -> list[np.ndarray]:
    layers = layer_count(params) + ("frame.W" in params)
    hidden = params["gru0.W"].shape[0]
    if h0 is None:
        return [np.zeros((batch, hidden)) for _ in range(layers)]
    return [np.array(h0[layer], dtype=np.float64) for layer in range(layers)]


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _as_float64(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.asarray(value, np.float64) for key, value in params.items()}


def forward(params: dict[str, np.ndarray], inputs: np.ndarray,
            h0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[tuple[list, np.ndarray]]]:
    """Teacher-forced forward pass.

    inputs: (T, B) levels fed to the network. h0: (layers, B, H) (with a frame tier,
    (layers + 1, B, H)) or None for zeros.
    Returns (probs (T, B, 256), h_last like h0, caches for the backward pass: per step, the
    per-layer step caches and the top layer's output (B, H)).
    """
    params = _as_float64(params)
    inputs = np.asarray(inputs)
    T, B = inputs.shape
    layers = layer_count(params)
    Wy = params["out.Wy"]
    h = _initial_state(params, B, h0)
    probs = np.empty((T, B, LEVELS))
    caches = []
    frame = params["frame.W"].shape[1] - params["frame.W"].shape[0] - 1 if "frame.W" in params else 0
    for t in range(T):
        inp = inputs[t]
        step_caches = []
        cond = (0.0, 0.0, 0.0)
        if frame:
            if t and t % frame == 0:
                h[layers] = frame_step(params, inputs[t - frame : t].T, h[layers])
            cond = tuple(h[layers] @ params[f"frame.{name}"].T for name in ("Cr", "Cz", "C"))
        for layer in range(layers):
            h[layer], cache = _step(params, layer, inp, h[layer], cond if layer == 0 else (0.0, 0.0, 0.0))
            step_caches.append(cache)
            inp = h[layer]
        probs[t] = _softmax(inp @ Wy[:, :-1].T + Wy[:, -1])
        caches.append((step_caches, inp))
    if frame and T % frame == 0:
        h[layers] = frame_step(params, inputs[T - frame :].T, h[layers])
    return probs, np.stack(h), caches


def probabilities(params: dict[str, np.ndarray], inputs: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """p[t, b] = the distribution of the level after inputs[t, b]: (T, B, 256) float64."""
    return forward(params, inputs, h0)[0]


def loss_and_grad(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
                  targets: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
    """Loss and gradients over one window.

    x: (T + 1, B) levels; rows 0..T-1 are inputs, rows 1..T the targets unless targets (T, B)
    gives them. Returns (loss in mean nats per predicted sample, gradients keyed like params,
    h_last).
    """
    params = _as_float64(params)
    x = np.asarray(x)
    inputs, targets = x[:-1], x[1:] if targets is None else np.asarray(targets)
    T, B = inputs.shape
    layers = layer_count(params)
    probs, h_last, caches = forward(params, inputs, h0)
    n = T * B
    rows = np.arange(B)
    loss = -np.log(probs[np.arange(T)[:, None], rows, targets]).sum() / n

    grads = {key: np.zeros(value.shape) for key, value in params.items()}
    Wy = params["out.Wy"]
    hidden = Wy.shape[1] - 1
    dh_next = [np.zeros((B, hidden)) for _ in range(layers)]
    for t in reversed(range(T)):
        dy = probs[t].copy()
        dy[rows, targets[t]] -= 1.0
        dy /= n
        step_caches, h_top = caches[t]
        grads["out.Wy"][:, :-1] += dy.T @ h_top
        grads["out.Wy"][:, -1] += dy.sum(axis=0)
        dh_from_above = dy @ Wy[:, :-1]
        for layer in reversed(range(layers)):
            dh = dh_from_above + dh_next[layer]
            dh_next[layer], dh_from_above = _step_backward(params, grads, layer, step_caches[layer], dh)
    return float(loss), grads, h_last


def _step_backward(params, grads, layer, cache, dh):
    """Backward through one GRU step; accumulates weight gradients, returns (dh_prev, d_input)."""
    inp, h, r, z, candidate = cache
    W, Wr, Wz = (params[f"gru{layer}.{name}"] for name in ("W", "Wr", "Wz"))
    H = h.shape[1]
    d_candidate = dh * z * (1.0 - candidate**2)
    d_z = dh * (candidate - h) * z * (1.0 - z)
    d_rh = d_candidate @ W[:, -H - 1 : -1]
    d_r = d_rh * h * r * (1.0 - r)
    dh_prev = dh * (1.0 - z) + d_rh * r + d_r @ Wr[:, -H - 1 : -1] + d_z @ Wz[:, -H - 1 : -1]

    d_input = None
    for name, d_pre, recurrent_in in (("W", d_candidate, r * h), ("Wr", d_r, h), ("Wz", d_z, h)):
        g = grads[f"gru{layer}.{name}"]
        weights = params[f"gru{layer}.{name}"]
        if layer == 0:
            np.add.at(g.T, inp, d_pre)
        else:
            X = inp.shape[1]
            g[:, :X] += d_pre.T @ inp
            part = d_pre @ weights[:, :X]
            d_input = part if d_input is None else d_input + part
        g[:, -H - 1 : -1] += d_pre.T @ recurrent_in
        g[:, -1] += d_pre.sum(axis=0)
    return dh_prev, d_input


def sampling_distribution(
    probs: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
    min_p: float = 0.0,
) -> np.ndarray:
    """The distribution a level is drawn from, given the model's p (..., 256): float64, same shape.

    Tempered: p^(1 / temperature), renormalized (temperature 0 counts as 1 here; it draws the
    argmax). Then truncated, each step on what the one before left, and renormalized:
    top_k keeps the k likeliest levels (0 or >= 256: all); top_p keeps the fewest likeliest levels
    whose probabilities sum to at least top_p (1: all); min_p drops the levels less likely than
    min_p times the likeliest (0: none). Levels rank by probability, equal ones by level (lowest
    first), so exactly the likeliest ones are kept and the likeliest always is.
    """
    p = np.asarray(probs, np.float64)
    if temperature > 0:
        p = p ** (1.0 / temperature)
    p = p / p.sum(axis=-1, keepdims=True)
    order = np.argsort(-p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    keep = np.ones(ranked.shape, bool)
    if 0 < top_k < LEVELS:
        keep[..., top_k:] = False
    if top_p < 1:
        left = np.where(keep, ranked, 0.0)
        before = np.concatenate([np.zeros(left.shape[:-1] + (1,)), np.cumsum(left, axis=-1)[..., :-1]],
                                axis=-1)
        keep &= before < top_p * left.sum(axis=-1, keepdims=True)
    if min_p > 0:
        keep &= ranked >= min_p * ranked[..., :1]
    kept = np.zeros_like(p)
    np.put_along_axis(kept, order, np.where(keep, ranked, 0.0), axis=-1)
    return kept / kept.sum(axis=-1, keepdims=True)


def draw_level(p: np.ndarray, u: float) -> int:
    """The level drawn from p (256,) with the uniform u in [0, 1): the first level whose running
    sum of p (from level 0 up) exceeds u times the sum of p, skipping levels of probability 0."""
    p = np.asarray(p, np.float64)
    above = (np.cumsum(p) > u * p.sum()) & (p > 0)
    return int(np.argmax(above)) if above.any() else int(np.flatnonzero(p > 0)[-1])


QUIET_LEVELS = (126, 129)  # the levels of silence for waking (|sample| < 3e-4)
WAKE_SPREAD = 2  # a dithered silent level moves by -2..2


def heard_level(drawn: int, u: float, quiet_run: int, wake_after: int, hinted: bool = False,
                temperature: float = 1.0) -> tuple[int, int]:
    """What the model hears after drawing `drawn` with the uniform u (Model.sample's wake, in steps:
    wake_after; 0: never), and the stream's new waking state (quiet_run before: >= 0 the silent
    levels (QUIET_LEVELS) drawn in a row, < 0 awake with -quiet_run sound levels drawn in a row).
    Once more than wake_after silent levels were drawn in a row the stream is awake: a silent level
    is heard moved by int(frac(4096 u) * 5) - 2, clipped to 0..255, until wake_after sound levels
    were drawn in a row. Hinted steps and temperature 0 are heard as they are (a hint's levels
    still count)."""
    if wake_after <= 0:
        return drawn, quiet_run
    if not QUIET_LEVELS[0] <= drawn <= QUIET_LEVELS[1]:
        if quiet_run > wake_after:
            quiet_run = -1
        elif quiet_run < 0:
            quiet_run -= 1
        else:
            quiet_run = 0
        return drawn, 0 if -quiet_run >= wake_after else quiet_run
    quiet_run = wake_after + 1 if quiet_run < 0 else quiet_run + 1
    if hinted or temperature <= 0 or quiet_run <= wake_after:
        return drawn, quiet_run
    fraction = u * 4096.0
    fraction -= np.floor(fraction)
    moved = drawn + int(fraction * (2 * WAKE_SPREAD + 1)) - WAKE_SPREAD
    return min(LEVELS - 1, max(0, moved)), quiet_run
