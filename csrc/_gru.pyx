# cython: language_level=3
"""Compiled GRU training core: forward and backward of the whole stack over a window.

The parameter layout is described in gates.pxi. All activations are row-major and time-major:
(T, B, .). The forward pass runs layer by layer: the input projection of all T steps is one GEMM
(a row gather for layer 0), each step adds only the recurrent products and applies the fused gate
math (gates.h). The backward pass computes per step only the gate gradients and dh(t-1); each
weight gradient is then one GEMM over the whole window. Every pass splits its work into one
contiguous part per OpenMP thread, each calling single-threaded BLAS (see layer_forward).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import numpy as np

include "blas.pxi"
include "gates.pxi"


def n_parameters(int layers, int hidden) -> int:
    """Length of the flat parameter vector for this architecture."""
    return parameter_count(layers, hidden)


cdef extern from "gates.h" nogil:
    void bk_backward_zc_f(const float* a, const float* h_prev, const float* dh_above,
                          float* dh_next, float* da, Py_ssize_t lda, Py_ssize_t H, Py_ssize_t rows)
    void bk_backward_zc_d(const double* a, const double* h_prev, const double* dh_above,
                          double* dh_next, double* da, Py_ssize_t lda, Py_ssize_t H,
                          Py_ssize_t rows)
    void bk_backward_r_f(const float* a, const float* h_prev, const float* d_rh, float* dh_next,
                         float* da, Py_ssize_t lda, Py_ssize_t H, Py_ssize_t rows)
    void bk_backward_r_d(const double* a, const double* h_prev, const double* d_rh,
                         double* dh_next, double* da, Py_ssize_t lda, Py_ssize_t H,
                         Py_ssize_t rows)


cdef extern from "tile_kernel.h" nogil:
    int bk_packed_gemm_available()
    Py_ssize_t bk_packed16_size(Py_ssize_t K, Py_ssize_t N)
    void bk_pack16_f(const float* src, Py_ssize_t ld, int trans, Py_ssize_t K, Py_ssize_t N,
                   Py_ssize_t s0, Py_ssize_t s1, float* dst)
    void bk_gemm16_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* x,
                          Py_ssize_t ldx, const float* packed, float* c, Py_ssize_t ldc)


cdef enum:
    TILE = 16  # columns per slice of a packed operand (BK_TILE)


cdef inline Py_ssize_t slices(Py_ssize_t n) noexcept nogil:
    return (n + TILE - 1) // TILE


cdef inline void pack_part(const floating* src, Py_ssize_t ld, bint trans, Py_ssize_t K,
                           Py_ssize_t N, int threads, int part, float* dst) noexcept nogil:
    """This thread's share of the slices of B (K, N) (src row-major, or its transpose if trans)
    packed into dst for recurrent_product (float only)."""
    if floating is float:
        bk_pack16_f(src, ld, trans, K, N, share(slices(N), threads, part),
                  share(slices(N), threads, part + 1), dst)


cdef inline void recurrent_product(const float* packed, Py_ssize_t M, Py_ssize_t N,
                                   Py_ssize_t K, const floating* x, Py_ssize_t ldx,
                                   bint trans_b, const floating* b, Py_ssize_t ldb,
                                   floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """C (M, N) = X (M, K) op(B) (K, N) + beta C (beta 0 or 1). A per-step product with the
    recurrent weights: float uses B packed once per window (packed, from pack_part) when the
    CPU has AVX2 (packed is NULL otherwise and for double), instead of BLAS, which would pack B
    again for every step."""
    cdef Py_ssize_t i
    if floating is float:
        if packed != NULL:
            if beta == 0:
                for i in range(M):
                    memset(c + i * ldc, 0, N * sizeof(float))
            bk_gemm16_f(M, N, K, x, ldx, packed, c, ldc)
            return
    gemm(False, trans_b, M, N, K, 1, x, ldx, b, ldb, beta, c, ldc)


cdef inline void backward_zc(const floating* a, const floating* h_prev, const floating* dh_above,
                             floating* dh_next, floating* da, Py_ssize_t H,
                             Py_ssize_t rows) noexcept nogil:
    """Gate gradients of z and the candidate for `rows` rows (a, da rows 3H apart; the others
    H apart); dh_next becomes the direct part of dh(t-1)."""
    if floating is float:
        bk_backward_zc_f(a, h_prev, dh_above, dh_next, da, 3 * H, H, rows)
    else:
        bk_backward_zc_d(a, h_prev, dh_above, dh_next, da, 3 * H, H, rows)


cdef inline void backward_r(const floating* a, const floating* h_prev, const floating* d_rh,
                            floating* dh_next, floating* da, Py_ssize_t H,
                            Py_ssize_t rows) noexcept nogil:
    """Gate gradient of r from d(r * h_prev); adds the r * d(rh) part of dh(t-1)."""
    if floating is float:
        bk_backward_r_f(a, h_prev, d_rh, dh_next, da, 3 * H, H, rows)
    else:
        bk_backward_r_d(a, h_prev, d_rh, dh_next, da, 3 * H, H, rows)


cdef enum:
    LANES = 16  # independent partial results in reductions, so that compilers vectorize them


cdef inline double softmax_row(floating* y, const floating* bias, int target,
                               floating scale, bint gradient) noexcept nogil:
    """y (256,) logits without bias -> probabilities in place, or (p - onehot) * scale if gradient.

    Returns -log p[target] in nats (0 when target < 0)."""
    cdef Py_ssize_t k, u
    cdef floating top, total, factor
    cdef floating part[LANES]
    cdef double nll = 0
    for k in range(LEVELS):
        y[k] = y[k] + bias[k]
    for u in range(LANES):
        part[u] = y[u]
    for k in range(1, LEVELS // LANES):
        for u in range(LANES):
            part[u] = y[k * LANES + u] if y[k * LANES + u] > part[u] else part[u]
    top = part[0]
    for u in range(1, LANES):
        top = part[u] if part[u] > top else top
    for k in range(LEVELS):
        y[k] = exp_(y[k] - top)
    for u in range(LANES):
        part[u] = 0
    for k in range(LEVELS // LANES):
        for u in range(LANES):
            part[u] = part[u] + y[k * LANES + u]
    total = 0
    for u in range(LANES):
        total = total + part[u]
    if target >= 0:
        nll = log(<double> total) - log(<double> y[target])
    factor = (scale if gradient else 1) / total
    for k in range(LEVELS):
        y[k] = y[k] * factor
    if gradient:
        y[target] = y[target] - scale
    return nll


cdef inline Py_ssize_t share(Py_ssize_t n, Py_ssize_t parts, Py_ssize_t k) noexcept nogil:
    """Start of part k when n items are split into `parts` contiguous, near-equal parts."""
    return k * n // parts


cdef void column_sums(const floating* m, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t lo,
                      Py_ssize_t hi, floating* out) noexcept nogil:
    """out[lo:hi] = sums over the rows of columns lo..hi-1 of m (rows, cols)."""
    cdef Py_ssize_t i, j
    for j in range(lo, hi):
        out[j] = 0
    for i in range(rows):
        for j in range(lo, hi):
            out[j] = out[j] + m[i * cols + j]


cdef void scatter_rows(const unsigned char* levels, const floating* m, Py_ssize_t rows,
                       Py_ssize_t cols, Py_ssize_t lo, Py_ssize_t hi, floating* out) noexcept nogil:
    """Columns lo..hi-1 of out (256, cols) = sum over i of onehot(levels[i]) outer m[i]: the
    gradient of a row gather."""
    cdef Py_ssize_t i, j
    cdef floating* dest
    cdef const floating* src
    for i in range(LEVELS):
        for j in range(lo, hi):
            out[i * cols + j] = 0
    for i in range(rows):
        dest = out + levels[i] * cols
        src = m + i * cols
        for j in range(lo, hi):
            dest[j] = dest[j] + src[j]


# ---------------------------------------------------------------- one layer, whole window
#
# Threading: every parallel region splits its work into `threads` contiguous parts, one per
# OpenMP thread, and each thread calls single-threaded BLAS on its own part (the caller limits
# BLAS to one thread). The time loops split the batch: rows of different sequences never
# interact, so a thread runs all T steps of its rows without any barrier. A window costs
# 2 + 2 * layers parallel regions per pass instead of a few per step.
# The per-step products with the recurrent weights (float32 with AVX2) skip BLAS: the weights
# are packed once per layer and pass and each step runs the tile kernel (recurrent_product).

cdef void layer_forward(const floating* params, int layer, Py_ssize_t T, Py_ssize_t B,
                        Py_ssize_t H, const unsigned char* levels, const floating* h_in,
                        floating* hs, floating* acts, floating* rh, float* packed,
                        int threads) noexcept nogil:
    """Run one layer over T steps.

    levels (T*B,) for layer 0, else h_in (T*B, H) is the layer below's output. hs (T+1, B, H)
    holds h0 in row 0 and receives h(1..T); acts (T, B, 3H) receives r, z, candidate; rh
    (T, B, H) receives r * h(t-1). packed: NULL, or room for the packed recurrent weights
    (float with AVX2, see recurrent_product)."""
    cdef Py_ssize_t G = 3 * H
    cdef Py_ssize_t X = LEVELS if layer == 0 else H
    cdef const floating* WxT = params + layer_offset(layer, H)
    cdef const floating* UhT = WxT + X * G
    cdef const floating* bias = UhT + H * G
    cdef Py_ssize_t n = T * B, part, lo, hi, i, t
    cdef floating* a_t
    cdef floating* h_prev
    cdef floating* rh_t
    cdef float* packed_c = NULL
    if packed != NULL:
        packed_c = packed + bk_packed16_size(H, 2 * H)
    for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
        if packed != NULL:
            pack_part(UhT, G, False, H, 2 * H, threads, part, packed)
            pack_part(UhT + 2 * H, G, False, H, H, threads, part, packed_c)
        lo = share(n, threads, part)
        hi = share(n, threads, part + 1)
        if layer == 0:
            for i in range(lo, hi):
                memcpy(acts + i * G, WxT + levels[i] * G, G * sizeof(floating))
        else:
            gemm(False, False, hi - lo, G, H, 1, h_in + lo * H, H, WxT, G, 0, acts + lo * G, G)
    for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
        lo = share(B, threads, part)
        hi = share(B, threads, part + 1)
        for t in range(T):
            a_t = acts + (t * B + lo) * G
            h_prev = hs + (t * B + lo) * H
            rh_t = rh + (t * B + lo) * H
            recurrent_product(packed, hi - lo, 2 * H, H, h_prev, H, False, UhT, G, 1, a_t, G)
            gates_rz_rows(a_t, G, bias, h_prev, rh_t, H, hi - lo)
            recurrent_product(packed_c, hi - lo, H, H, rh_t, H, False, UhT + 2 * H, G, 1,
                              a_t + 2 * H, G)
            candidate_update_rows(a_t, G, bias, h_prev, h_prev + B * H, H, hi - lo)


cdef void layer_backward(const floating* params, floating* grads, int layer, Py_ssize_t T,
                         Py_ssize_t B, Py_ssize_t H, const unsigned char* levels,
                         const floating* h_in, const floating* hs, const floating* acts,
                         const floating* rh, floating* d_acts, floating* d_hs,
                         floating* dh_next, floating* d_rh, float* packed,
                         int threads) noexcept nogil:
    """Backward through one layer over the window.

    d_hs (T, B, H) holds dLoss/dh(t) from above on entry and dLoss/d(input of this layer) on exit
    (for layers above 0). Weight gradients of this layer are written (not added) into grads."""
    cdef Py_ssize_t G = 3 * H
    cdef Py_ssize_t X = LEVELS if layer == 0 else H
    cdef Py_ssize_t offset = layer_offset(layer, H)
    cdef const floating* WxT = params + offset
    cdef const floating* UhT = WxT + X * G
    cdef floating* dWxT = grads + offset
    cdef floating* dUhT = dWxT + X * G
    cdef floating* d_bias = dUhT + H * G
    cdef Py_ssize_t n = T * B, part, lo, hi, nb, t
    cdef const floating* a_t
    cdef const floating* h_prev
    cdef floating* da_t
    cdef float* packed_c = NULL
    if packed != NULL:
        # Uh = UhT^T (3H, H): rows [0, 2H) multiply d[r, z], rows [2H, 3H) d(candidate)
        packed_c = packed + bk_packed16_size(2 * H, H)
        for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            pack_part(UhT, G, True, 2 * H, H, threads, part, packed)
            pack_part(UhT + 2 * H, G, True, H, H, threads, part, packed_c)
    for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
        lo = share(B, threads, part)
        hi = share(B, threads, part + 1)
        nb = hi - lo
        memset(dh_next + lo * H, 0, nb * H * sizeof(floating))
        for t in range(T - 1, -1, -1):
            a_t = acts + (t * B + lo) * G
            da_t = d_acts + (t * B + lo) * G
            h_prev = hs + (t * B + lo) * H
            backward_zc(a_t, h_prev, d_hs + (t * B + lo) * H, dh_next + lo * H, da_t, H, nb)
            recurrent_product(packed_c, nb, H, H, da_t + 2 * H, G, True, UhT + 2 * H, G, 0,
                              d_rh + lo * H, H)
            backward_r(a_t, h_prev, d_rh + lo * H, dh_next + lo * H, da_t, H, nb)
            recurrent_product(packed, nb, H, 2 * H, da_t, G, True, UhT, G, 1, dh_next + lo * H, H)
    for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
        # this thread's rows of dUhT and dWxT, columns of the bias, rows of d(input)
        lo = share(H, threads, part)
        hi = share(H, threads, part + 1)
        gemm(True, False, hi - lo, 2 * H, n, 1, hs + lo, H, d_acts, G, 0, dUhT + lo * G, G)
        gemm(True, False, hi - lo, H, n, 1, rh + lo, H, d_acts + 2 * H, G, 0,
             dUhT + lo * G + 2 * H, G)
        if layer > 0:
            gemm(True, False, hi - lo, G, n, 1, h_in + lo, H, d_acts, G, 0, dWxT + lo * G, G)
        lo = share(G, threads, part)
        hi = share(G, threads, part + 1)
        column_sums(d_acts, n, G, lo, hi, d_bias)
        if layer == 0:
            scatter_rows(levels, d_acts, n, G, lo, hi, dWxT)
        else:
            lo = share(n, threads, part)
            hi = share(n, threads, part + 1)
            gemm(False, True, hi - lo, H, G, 1, d_acts + lo * G, G, WxT, G, 0, d_hs + lo * H, H)


# ---------------------------------------------------------------- the whole stack over a window

cdef tuple shape3(const floating[:, :, ::1] a):
    return (a.shape[0], a.shape[1], a.shape[2])


cdef tuple shape4(const floating[:, :, :, ::1] a):
    return (a.shape[0], a.shape[1], a.shape[2], a.shape[3])


def window(const floating[::1] params, floating[::1] grads, const unsigned char[:, ::1] x,
           const floating[:, :, ::1] h0, floating[:, :, ::1] h_last,
           floating[:, :, :, ::1] hs, floating[:, :, :, ::1] acts, floating[:, :, :, ::1] rh,
           floating[:, ::1] out, floating[:, :, ::1] d_acts, floating[:, :, ::1] d_hs,
           floating[:, ::1] dh_next, floating[:, ::1] d_rh, bint backward, int threads):
    """Forward (and backward) pass of the whole stack over one window.

    x (T+1, B) levels: rows 0..T-1 are inputs, rows 1..T targets. h0, h_last (L, B, H).
    threads: OpenMP threads; BLAS must be limited to one thread during the call (the
    kernel calls it from every thread on separate parts of the work). Scratch, reused across calls: hs (L, T+1, B, H), acts (L, T, B, 3H), rh (L, T, B, H),
    out (T*B, 256), and for the backward pass d_acts (T, B, 3H), d_hs (T, B, H), dh_next and
    d_rh (B, H). Without backward, out receives the probabilities p[t*B + b] of the next level;
    with it, out receives dLoss/dlogits and grads the full gradient (same layout as params).
    Returns the loss in mean nats per predicted sample.
    """
    cdef Py_ssize_t L = hs.shape[0], T = x.shape[0] - 1, B = x.shape[1], H = hs.shape[3]
    cdef Py_ssize_t n = T * B, i, part, lo, hi
    cdef int layer
    cdef double[::1] partial
    cdef double* nll
    cdef floating scale
    cdef const floating* P = &params[0]
    cdef const floating* WyT
    cdef const floating* by
    cdef const floating* h_top
    cdef const unsigned char* levels = &x[0, 0]
    cdef floating* G = NULL
    cdef float* packed = NULL

    if T < 1 or B < 1 or L < 1 or H < 1:
        raise ValueError("window needs T >= 1, B >= 1, at least one layer and hidden >= 1")
    if params.shape[0] != parameter_count(L, H):
        raise ValueError(f"params has {params.shape[0]} values, the architecture needs "
                         f"{parameter_count(L, H)}")
    if (shape3(h0) != (L, B, H) or shape3(h_last) != (L, B, H)
            or shape4(hs) != (L, T + 1, B, H) or shape4(acts) != (L, T, B, 3 * H)
            or shape4(rh) != (L, T, B, H) or (out.shape[0], out.shape[1]) != (n, LEVELS)):
        raise ValueError("window: scratch or state arrays do not match (layers, T, B, hidden)")
    if backward:
        if grads.shape[0] != params.shape[0]:
            raise ValueError("window: grads must have the same length as params")
        if (shape3(d_acts) != (T, B, 3 * H) or shape3(d_hs) != (T, B, H)
                or (dh_next.shape[0], dh_next.shape[1]) != (B, H)
                or (d_rh.shape[0], d_rh.shape[1]) != (B, H)):
            raise ValueError("window: backward scratch arrays do not match (T, B, hidden)")
        G = &grads[0]
    threads = max(threads, 1)
    WyT = P + layer_offset(L, H)
    by = WyT + H * LEVELS
    scale = 1.0 / n
    partial = np.zeros(threads, np.float64)
    nll = &partial[0]
    if floating is float:
        if bk_packed_gemm_available():
            # the recurrent weights of one layer, packed (weight-sized; NULL falls back to BLAS)
            packed = <float*> malloc(max(bk_packed16_size(H, 2 * H), bk_packed16_size(2 * H, H))
                                     * sizeof(float) + bk_packed16_size(H, H) * sizeof(float))

    with nogil:
        for layer in range(L):
            memcpy(&hs[layer, 0, 0, 0], &h0[layer, 0, 0], B * H * sizeof(floating))
            layer_forward(P, layer, T, B, H, levels,
                          &hs[layer - 1, 1, 0, 0] if layer > 0 else NULL,
                          &hs[layer, 0, 0, 0], &acts[layer, 0, 0, 0], &rh[layer, 0, 0, 0],
                          packed, threads)
            memcpy(&h_last[layer, 0, 0], &hs[layer, T, 0, 0], B * H * sizeof(floating))
        h_top = &hs[L - 1, 1, 0, 0]
        for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            lo = share(n, threads, part)
            hi = share(n, threads, part + 1)
            gemm(False, False, hi - lo, LEVELS, H, 1, h_top + lo * H, H, WyT, LEVELS, 0,
                 &out[lo, 0], LEVELS)
            for i in range(lo, hi):
                nll[part] += softmax_row(&out[i, 0], by, levels[i + B], scale, backward)
            if backward:
                gemm(False, True, hi - lo, H, LEVELS, 1, &out[lo, 0], LEVELS, WyT, LEVELS, 0,
                     &d_hs[0, 0, 0] + lo * H, H)
        if backward:
            for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
                lo = share(H, threads, part)
                hi = share(H, threads, part + 1)
                gemm(True, False, hi - lo, LEVELS, n, 1, h_top + lo, H, &out[0, 0], LEVELS, 0,
                     G + layer_offset(L, H) + lo * LEVELS, LEVELS)
                lo = share(LEVELS, threads, part)
                hi = share(LEVELS, threads, part + 1)
                column_sums(&out[0, 0], n, LEVELS, lo, hi, G + layer_offset(L, H) + H * LEVELS)
            for layer in range(L - 1, -1, -1):
                layer_backward(P, G, layer, T, B, H, levels,
                               &hs[layer - 1, 1, 0, 0] if layer > 0 else NULL,
                               &hs[layer, 0, 0, 0], &acts[layer, 0, 0, 0], &rh[layer, 0, 0, 0],
                               &d_acts[0, 0, 0], &d_hs[0, 0, 0], &dh_next[0, 0], &d_rh[0, 0],
                               packed, threads)
    free(packed)
    return float(np.sum(partial)) / n
