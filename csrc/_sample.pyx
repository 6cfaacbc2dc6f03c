# cython: language_level=3
"""Compiled generation loop: S streams step by step through the stack, each drawn level fed back.

Per step and layer: layer 0's gate inputs are the row WxT[level] (no product), the recurrent and
higher-layer products are (S, H) x (H, 3H) products, then the fused gate math. The output logits
get the temperature, a softmax and a draw, all without the GIL.

Drawing: one NumPy bit generator (PCG64 when blekota.Model.sample makes it) gives one uniform
double u in [0, 1) per stream per drawn step, streams in order 0..S-1; the level is the first k
whose cumulative probability (levels in order 0..255) exceeds u. Hinted steps draw nothing.
"""

import numpy as np

from cpython.pycapsule cimport PyCapsule_GetPointer
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

include "blas.pxi"
include "gates.pxi"


cdef inline int softmax_draw(floating* y, const floating* bias, double temperature, double u,
                             bint normalize) noexcept nogil:
    """y (256,) logits without bias -> level drawn with uniform u (argmax when temperature == 0).

    When normalize, y receives the probabilities drawn from (the plain softmax for argmax)."""
    cdef Py_ssize_t k
    cdef int best = 0
    cdef floating top, total = 0, inv_temp
    cdef double target, acc = 0
    for k in range(LEVELS):
        y[k] = y[k] + bias[k]
        if y[k] > y[best]:
            best = k
    if temperature == 0 and not normalize:
        return best
    inv_temp = <floating> (1.0 / temperature) if temperature > 0 else 1
    top = y[best]
    for k in range(LEVELS):
        y[k] = exp_((y[k] - top) * inv_temp)
        total = total + y[k]
    if normalize:
        for k in range(LEVELS):
            y[k] = y[k] / total
        total = 1
    if temperature == 0:
        return best
    target = u * total
    for k in range(LEVELS):
        acc += y[k]
        if acc > target and y[k] > 0:
            return <int> k
    for k in range(LEVELS - 1, -1, -1):
        if y[k] > 0:
            return <int> k
    return best


def generate(const floating[::1] params, floating[:, :, ::1] h, unsigned char[:, ::1] levels,
             const unsigned char[:, ::1] hint, unsigned char[::1] previous,
             floating[:, :, ::1] probs, double temperature, bit_generator, int threads):
    """Generate levels.shape[1] steps for S = levels.shape[0] streams.

    h (L, S, H): hidden state in, state after the last step out. previous (S,): the level fed
    before the first step, and on return the last level of each stream. hint (S, nh): for
    t < nh, step t takes hint[s, t] instead of drawing. probs (S, m, 256): the distribution
    of the first m steps is recorded (m may be 0). temperature: 0 for argmax. bit_generator:
    a numpy.random.BitGenerator, used under its lock.
    """
    cdef Py_ssize_t L = h.shape[0], S = h.shape[1], H = h.shape[2]
    cdef Py_ssize_t n = levels.shape[1], n_hint = hint.shape[1], n_probs = probs.shape[1]
    cdef Py_ssize_t G = 3 * H, t, s, layer
    cdef int chosen
    cdef const floating* P = &params[0]
    cdef const floating* WxT
    cdef const floating* UhT
    cdef const floating* bias
    cdef const floating* WyT
    cdef const floating* by
    cdef floating* h_layer
    cdef bitgen_t* rng

    if levels.shape[0] != S or previous.shape[0] != S or (n_hint > 0 and hint.shape[0] != S):
        raise ValueError("generate: levels, hint and previous must have one row per stream")
    if n_probs > 0 and (probs.shape[0] != S or probs.shape[2] != LEVELS or n_probs > n):
        raise ValueError("generate: probs must be (streams, m <= n, 256)")
    if params.shape[0] != parameter_count(L, H) or S < 1 or H < 1 or L < 1:
        raise ValueError("generate: params do not match the hidden state's architecture")
    if not temperature >= 0:
        raise ValueError("generate: temperature must be >= 0")
    threads = max(threads, 1)
    acts_array = np.empty((S, G), dtype=np.asarray(params).dtype)
    rh_array = np.empty((S, H), dtype=acts_array.dtype)
    logits_array = np.empty((S, LEVELS), dtype=acts_array.dtype)
    uniform_array = np.zeros(S, dtype=np.float64)
    cdef floating[:, ::1] acts = acts_array
    cdef floating[:, ::1] rh = rh_array
    cdef floating[:, ::1] logits = logits_array
    cdef double[::1] uniform = uniform_array
    rng = <bitgen_t*> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    WyT = P + layer_offset(<int> L, H)
    by = WyT + H * LEVELS

    with bit_generator.lock, nogil:
        for t in range(n):
            for layer in range(L):
                WxT = P + layer_offset(<int> layer, H)
                UhT = WxT + (LEVELS if layer == 0 else H) * G
                bias = UhT + H * G
                h_layer = &h[layer, 0, 0]
                if layer == 0:
                    for s in range(S):
                        memcpy(&acts[s, 0], WxT + previous[s] * G, G * sizeof(floating))
                else:
                    gemm(False, False, S, G, H, 1, &h[layer - 1, 0, 0], H, WxT, G, 0,
                         &acts[0, 0], G)
                gemm(False, False, S, 2 * H, H, 1, h_layer, H, UhT, G, 1, &acts[0, 0], G)
                for s in prange(S, num_threads=threads, schedule="static"):
                    gates_rz(&acts[s, 0], bias, h_layer + s * H, &rh[s, 0], H)
                gemm(False, False, S, H, H, 1, &rh[0, 0], H, UhT + 2 * H, G, 1, &acts[0, 2 * H], G)
                for s in prange(S, num_threads=threads, schedule="static"):
                    candidate_update(&acts[s, 0], bias, h_layer + s * H, h_layer + s * H, H)
            gemm(False, False, S, LEVELS, H, 1, &h[L - 1, 0, 0], H, WyT, LEVELS, 0,
                 &logits[0, 0], LEVELS)
            if t >= n_hint and temperature > 0:
                for s in range(S):
                    uniform[s] = rng.next_double(rng.state)
            for s in prange(S, num_threads=threads, schedule="static"):
                if t < n_hint:
                    chosen = hint[s, t]
                    if t < n_probs:
                        softmax_draw(&logits[s, 0], by, temperature, 0, True)
                else:
                    chosen = softmax_draw(&logits[s, 0], by, temperature, uniform[s], t < n_probs)
                if t < n_probs:
                    memcpy(&probs[s, t, 0], &logits[s, 0], LEVELS * sizeof(floating))
                levels[s, t] = <unsigned char> chosen
                previous[s] = <unsigned char> chosen
