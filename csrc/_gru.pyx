# cython: language_level=3
"""Compiled GRU training core: forward and backward of the whole stack over a window.

The parameter layout is described in gates.pxi. All activations are row-major and time-major:
(T, B, .). The forward pass runs layer by layer; each step computes its input projection (a row
gather for layer 0), adds the recurrent products and applies the fused gate math (gates.h). The
backward pass computes per step only the gate gradients and dh(t-1); the weight gradients are
then sums over the rows of the window. float32 at the AVX2 and AVX-512 levels (cpu_level) runs
every matrix product on weights packed once per window, with the register tiles of packed_gemm.h;
double and the portable level call single-threaded BLAS. The work is split over OpenMP threads
(see "one layer, whole window" below).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import numpy as np

include "blas.pxi"
include "cpu.pxi"
include "gates.pxi"


def n_parameters(int layers, int hidden) -> int:
    """Length of the flat parameter vector for this architecture."""
    return parameter_count(layers, hidden)


def gradient_blocks(int layers, int hidden) -> list:
    """[(start, stop), ...]: the blocks of the flat gradient in the order in which window()'s
    backward pass finishes them (and announces them to its `ready`): the output layer's, then
    each layer's from the top down. Together they cover the whole vector."""
    blocks = [(layer_offset(layers, hidden), parameter_count(layers, hidden))]
    for layer in range(layers - 1, -1, -1):
        blocks.append((layer_offset(layer, hidden), layer_offset(layer + 1, hidden)))
    return blocks


cdef extern from "gates.h" nogil:
    void bk_prefetch(const void* p, Py_ssize_t bytes)
    void bk_gates_rz_f(float* a, Py_ssize_t lda, const float* bias, const float* h_prev,
                       float* rh, Py_ssize_t H, Py_ssize_t rows)
    void bk_gates_rz_d(double* a, Py_ssize_t lda, const double* bias, const double* h_prev,
                       double* rh, Py_ssize_t H, Py_ssize_t rows)
    void bk_candidate_update_f(float* a, Py_ssize_t lda, const float* bias, const float* h_prev,
                               float* h_new, Py_ssize_t H, Py_ssize_t rows)
    void bk_candidate_update_d(double* a, Py_ssize_t lda, const double* bias,
                               const double* h_prev, double* h_new, Py_ssize_t H, Py_ssize_t rows)
    double bk_softmax_rows_f(float* y, const float* bias, const unsigned char* targets,
                             Py_ssize_t rows, float scale, int gradient)
    double bk_softmax_rows_d(double* y, const double* bias, const unsigned char* targets,
                             Py_ssize_t rows, double scale, int gradient)
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


cdef extern from "packed_gemm.h" nogil:
    Py_ssize_t bk_packed_w_size(Py_ssize_t K, Py_ssize_t N)
    void bk_pack_w_f(const float* src, Py_ssize_t ld, int trans, Py_ssize_t K, Py_ssize_t N,
                     Py_ssize_t s0, Py_ssize_t s1, float* dst)
    Py_ssize_t bk_gemm_tn_scratch()
    int bk_gemm_tn_wide(int wide)
    void bk_gemm_xw_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* x, Py_ssize_t ldx,
                      const float* w, float* c, Py_ssize_t ldc, int add)
    void bk_gemm_tn_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* a, Py_ssize_t lda,
                      const float* b, Py_ssize_t ldb, float* c, Py_ssize_t ldc, int add,
                      float* sums, const unsigned char* levels, float* scattered,
                      Py_ssize_t lds, float* scratch)


cdef extern from "bf16_gemm.h" nogil:
    int bk_cpu_bf16()
    int bk_cpu_intel()
    int bk_amx_use(int use)
    void bk_pack_w_bf(const float* src, Py_ssize_t ld, int trans, Py_ssize_t K, Py_ssize_t N,
                      Py_ssize_t s0, Py_ssize_t s1, float* dst)
    void bk_gemm_xw_bf(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* x, Py_ssize_t ldx,
                       const float* w, float* c, Py_ssize_t ldc, int add)
    void bk_gemm_tn_bf(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* a, Py_ssize_t lda,
                       const float* b, Py_ssize_t ldb, float* c, Py_ssize_t ldc, int add,
                       float* sums, const unsigned char* levels, float* scattered,
                       Py_ssize_t lds, float* scratch)

# bf16 products round rows of X into a stack buffer of 12288 pairs (bf16_gemm.h)
BF16_MAX_HIDDEN = 2 * 12288 // 3


def bf16_products() -> bool:
    """Whether window(bf16=True) can run here: float32 at the AVX-512 level (cpu_level) on a CPU
    with AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids and later)."""
    return bool(bk_cpu_bf16())


def bf16_by_default() -> bool:
    """Whether training takes the bf16 products by default here, where they beat float32: on AMX
    tiles (amx_products), or on VDPBF16PS of a CPU that is not Intel's (an AMD Zen 4 runs it at
    its FMA's rate, twice the multiply-adds; an Intel Xeon at half, no faster than float32)."""
    return bool(bk_cpu_bf16()) and (bool(bk_amx_use(-1)) or not bk_cpu_intel())


def amx_products(use=None) -> bool:
    """Whether the bf16 products run on AMX tiles (amx_gemm.h: Intel Sapphire Rapids and later,
    where Linux grants the tile state) rather than on AVX512_BF16's VDPBF16PS. With use, choose
    first (tests, benchmarks): False keeps them on VDPBF16PS. AMX rounds its sums otherwise, so
    the two differ in the last bits of a float32 sum."""
    return bool(bk_amx_use(-1 if use is None else int(bool(use))))


# Linux grants the tile state once, here, before any thread runs a product
amx_products()


def bf16_product(const float[:, ::1] x, const float[:, ::1] w, bint trans=False,
                 float[:, ::1] c=None) -> np.ndarray:
    """bf16(X) (M, K) bf16(op(W)) (K, N) in float32 sums, op(W) = W.T if trans, plus c if given
    (then returned): the kernel of window(bf16=True)'s products with a weight matrix, for
    tests. Needs bf16_products()."""
    cdef Py_ssize_t M = x.shape[0], K = x.shape[1]
    cdef Py_ssize_t N = w.shape[0] if trans else w.shape[1]
    cdef float[:, ::1] packed
    if not bk_cpu_bf16():
        raise ValueError("bf16_product needs a CPU with AVX512_BF16 (bf16_products())")
    if (w.shape[1] if trans else w.shape[0]) != K or M < 1 or N < 1 or K < 1:
        raise ValueError("bf16_product: x (M, K) and w (K, N) (or (N, K) if trans), none empty")
    if K > 2 * BF16_MAX_HIDDEN:
        raise ValueError(f"bf16_product: K must be at most {2 * BF16_MAX_HIDDEN}")
    out = np.zeros((M, N), np.float32) if c is None else c
    if out.shape != (M, N):
        raise ValueError("bf16_product: c must be (M, N)")
    cdef float[:, ::1] result = out
    packed = np.empty((1, bk_packed_w_size(K, N)), np.float32)
    with nogil:
        bk_pack_w_bf(&w[0, 0], w.shape[1], trans, K, N, 0, slices(N), &packed[0, 0])
        bk_gemm_xw_bf(M, N, K, &x[0, 0], K, &packed[0, 0], &result[0, 0], N, c is not None)
    return np.asarray(out)


def bf16_product_tn(const float[:, ::1] a, const float[:, ::1] b) -> tuple:
    """(bf16(A)^T bf16(B) (M, N), the column sums of B (N,)) for A (K, M) and B (K, N), in
    float32 sums: the kernel of window(bf16=True)'s weight gradients, for tests."""
    cdef Py_ssize_t K = a.shape[0], M = a.shape[1], N = b.shape[1]
    if not bk_cpu_bf16():
        raise ValueError("bf16_product_tn needs a CPU with AVX512_BF16 (bf16_products())")
    if b.shape[0] != K or M < 1 or N < 1:
        raise ValueError("bf16_product_tn: a (K, M) and b (K, N), M and N at least 1")
    c = np.zeros((M, N), np.float32)
    sums = np.zeros(N, np.float32)
    scratch = np.empty(bk_gemm_tn_scratch(), np.float32)
    cdef float[:, ::1] cv = c
    cdef float[::1] sv = sums
    cdef float[::1] scratch_view = scratch
    with nogil:
        bk_gemm_tn_bf(M, N, K, &a[0, 0] if K > 0 else NULL, M, &b[0, 0] if K > 0 else NULL, N,
                      &cv[0, 0], N, 0, &sv[0], NULL, NULL, 0, &scratch_view[0])
    return c, sums


def wide_gradient_tiles(wide=None) -> bool:
    """Whether the float32 weight-gradient products run on the wide AVX-512 register tiles (6 rows
    by 64 columns; chosen on Intel CPUs, where they are faster) instead of the 10 by 32 tiles of
    the other products. With wide, choose first (tests, benchmarks). The results are the same."""
    return bool(bk_gemm_tn_wide(-1 if wide is None else int(bool(wide))))


cdef enum:
    SLICE = 16  # columns per slice of a packed weight (BK_SLICE)
    OUTPUT_BLOCK = 64  # rows of logits that stay in cache from the product to its gradient
    GRADIENT_ROWS = 256  # rows of d_acts that stay in cache across a layer's gradient products
    AMX_GRADIENT_ROWS = 1024  # on AMX tiles: rows per gradient tile load and store (BK_AMX_KC)


cdef inline Py_ssize_t slices(Py_ssize_t n) noexcept nogil:
    return (n + SLICE - 1) // SLICE


cdef inline void pack_part(const floating* src, Py_ssize_t ld, bint trans, Py_ssize_t K,
                           Py_ssize_t N, int threads, int part, float* dst,
                           bint bf16) noexcept nogil:
    """This thread's share of the slices of W (K, N) (src row-major, or its transpose if trans)
    packed into dst for product() (float only; in bf16 pairs if bf16)."""
    if floating is float:
        (bk_pack_w_bf if bf16 else bk_pack_w_f)(src, ld, trans, K, N,
                                                share(slices(N), threads, part),
                                                share(slices(N), threads, part + 1), dst)


cdef inline void product(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating* x,
                         Py_ssize_t ldx, const float* packed, const floating* w, Py_ssize_t ldw,
                         bint trans_w, floating* c, Py_ssize_t ldc, bint accumulate,
                         bint bf16) noexcept nogil:
    """C (M, N) = X (M, K) op(W) (K, N), plus C if accumulate. W is a weight matrix: float uses
    its packed copy (packed, see pack_weights; its bf16 pairs if bf16) unless packed is NULL
    (double, the portable level), which means BLAS (which would pack W again in every call)."""
    if floating is float:
        if packed != NULL:
            (bk_gemm_xw_bf if bf16 else bk_gemm_xw_f)(M, N, K, x, ldx, packed, c, ldc, accumulate)
            return
    gemm(False, trans_w, M, N, K, 1, x, ldx, w, ldw, 1 if accumulate else 0, c, ldc)


cdef inline void product_tn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating* a,
                            Py_ssize_t lda, const floating* b, Py_ssize_t ldb, floating* c,
                            Py_ssize_t ldc, bint add, floating* sums, const unsigned char* levels,
                            floating* scattered, Py_ssize_t lds, float* scratch,
                            bint bf16) noexcept nogil:
    """A weight gradient over K rows of a window: C (M, N) = A^T B (+ C if add) for A (K, M)
    and B (K, N); sums (N,) = the column sums of B (+ sums if add) unless sums is NULL; unless
    levels is NULL, scattered (256, N; rows lds apart) += onehot(levels[k]) outer B[k] for every
    k (a row gather's gradient). float with scratch (room for bk_gemm_tn_scratch() floats) uses
    the packed kernels, reading B once (with A and B rounded to bf16 if bf16); the rest BLAS."""
    cdef Py_ssize_t i, j
    cdef floating* dest
    if floating is float:
        if scratch != NULL:
            (bk_gemm_tn_bf if bf16 else bk_gemm_tn_f)(M, N, K, a, lda, b, ldb, c, ldc, add, sums,
                                                      levels, scattered, lds, scratch)
            return
    gemm(True, False, M, N, K, 1, a, lda, b, ldb, 1 if add else 0, c, ldc)
    if sums != NULL and not add:
        memset(sums, 0, N * sizeof(floating))
    for i in range(K):
        if sums != NULL:
            for j in range(N):
                sums[j] = sums[j] + b[i * ldb + j]
        if levels != NULL:
            dest = scattered + levels[i] * lds
            for j in range(N):
                dest[j] = dest[j] + b[i * ldb + j]


cdef inline void add_rows(floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """a[i] += b[i] for i < n."""
    cdef Py_ssize_t i
    for i in range(n):
        a[i] = a[i] + b[i]


cdef inline void gates_rz_rows(floating* a, Py_ssize_t lda, const floating* bias,
                               const floating* h_prev, floating* rh, Py_ssize_t H,
                               Py_ssize_t rows) noexcept nogil:
    """For each of `rows` rows (lda apart in a, H apart in h_prev and rh): a's [r, z]
    pre-activations without bias become gates and rh = r * h_prev."""
    if floating is float:
        bk_gates_rz_f(a, lda, bias, h_prev, rh, H, rows)
    else:
        bk_gates_rz_d(a, lda, bias, h_prev, rh, H, rows)


cdef inline void candidate_update_rows(floating* a, Py_ssize_t lda, const floating* bias,
                                       const floating* h_prev, floating* h_new, Py_ssize_t H,
                                       Py_ssize_t rows) noexcept nogil:
    """For each row: candidate = tanh(pre-activation + bias), stored in place in a;
    h_new = (1 - z) h_prev + z candidate."""
    if floating is float:
        bk_candidate_update_f(a, lda, bias, h_prev, h_new, H, rows)
    else:
        bk_candidate_update_d(a, lda, bias, h_prev, h_new, H, rows)


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


cdef inline double softmax_rows(floating* y, const floating* bias, const unsigned char* targets,
                                Py_ssize_t rows, floating scale, bint gradient) noexcept nogil:
    """Rows of logits y (rows, 256) without bias -> probabilities in place, or, if gradient,
    (p - onehot(target)) * scale. Returns the sum over the rows of -log p[target] in nats."""
    if floating is float:
        return bk_softmax_rows_f(y, bias, targets, rows, scale, gradient)
    else:
        return bk_softmax_rows_d(y, bias, targets, rows, scale, gradient)


cdef inline Py_ssize_t share(Py_ssize_t n, Py_ssize_t parts, Py_ssize_t k) noexcept nogil:
    """Start of part k when n items are split into `parts` contiguous, near-equal parts."""
    return k * n // parts


include "packed_weights.pxi"


# ---------------------------------------------------------------- one layer, whole window
#
# Threading: every parallel region splits its work into contiguous parts, each calling the packed
# kernels or single-threaded BLAS (the caller limits BLAS to one thread). The time loops split
# the batch into chunks (batch_chunks): rows of different sequences never interact, so a chunk
# runs all T steps of its rows without any barrier, and chunks go to whichever thread is free, so
# a thread that the OS preempts on a busy machine holds up less of the loop. The weight
# gradients split the rows of the window, one fixed part per thread (their sums must not depend
# on timing). A window costs one or two parallel regions per layer and pass, not a few per step.

cdef enum:
    CHUNK_ROWS = 24  # at most about this many batch rows per chunk of a time loop
    AMX_CHUNK_ROWS = 48  # on AMX tiles, whose products take rows 16 at a time


cdef inline Py_ssize_t batch_chunks(Py_ssize_t B, int threads, bint amx) noexcept nogil:
    """Chunks of the batch in the time loops: one for one thread, else a multiple of the thread
    count with at most about CHUNK_ROWS rows each (AMX_CHUNK_ROWS with amx: two threads' 80
    rows as 2 chunks of 40, 3 tiles of rows each, not 4 of 20 in 2 each; 11 % faster on a Xeon)
    and at most B."""
    cdef Py_ssize_t per_thread = (B + threads - 1) // threads
    cdef Py_ssize_t most = AMX_CHUNK_ROWS if amx else CHUNK_ROWS
    if threads == 1:
        return 1
    return min(B, threads * ((per_thread + most - 1) // most))

cdef void layer_forward(const floating* params, int layer, Py_ssize_t T, Py_ssize_t B,
                        Py_ssize_t H, const unsigned char* levels, const floating* h_in,
                        floating* hs, floating* acts, floating* rh, const float* packed,
                        int threads, Py_ssize_t chunks, const floating* cond,
                        Py_ssize_t frame, bint bf16) noexcept nogil:
    """Run one layer over T steps, the batch in `chunks` chunks.

    levels (T*B,) for layer 0, else h_in (T*B, H) is the layer below's output. cond (NULL, or
    (ceil(T / frame), B, 3H) for layer 0): added to the gate inputs of step t from row t // frame.
    hs (T+1, B, H)
    holds h0 in row 0 and receives h(1..T); acts (T, B, 3H) receives r, z, candidate; rh
    (T, B, H) receives r * h(t-1). packed: this layer's forward region of the packed weights,
    or NULL (BLAS); bf16: its products in bf16 (pack_weights)."""
    cdef Py_ssize_t G = 3 * H
    cdef Py_ssize_t X = LEVELS if layer == 0 else H
    cdef const floating* WxT = params + layer_offset(layer, H)
    cdef const floating* UhT = WxT + X * G
    cdef const floating* bias = UhT + H * G
    cdef Py_ssize_t chunk, lo, hi, i, t
    cdef floating* a_t
    cdef floating* h_prev
    cdef floating* rh_t
    cdef const float* packed_c = NULL
    cdef const float* packed_x = NULL
    if packed != NULL:
        packed_c = packed + bk_packed_w_size(H, 2 * H)
        packed_x = packed_c + bk_packed_w_size(H, H)
    elif layer > 0:
        # BLAS would pack Wx again for every step's input projection: one product per thread
        for chunk in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            lo = share(T * B, threads, chunk)
            hi = share(T * B, threads, chunk + 1)
            product(hi - lo, G, H, h_in + lo * H, H, NULL, WxT, G, False, acts + lo * G, G, False,
                    False)
    for chunk in prange(chunks, num_threads=threads, schedule="dynamic", chunksize=1):
        lo = share(B, chunks, chunk)
        hi = share(B, chunks, chunk + 1)
        for t in range(T):
            a_t = acts + (t * B + lo) * G
            h_prev = hs + (t * B + lo) * H
            rh_t = rh + (t * B + lo) * H
            # the input projection: a row lookup for layer 0; above, on packed weights here
            if layer == 0:
                for i in range(hi - lo):
                    memcpy(a_t + i * G, WxT + levels[t * B + lo + i] * G, G * sizeof(floating))
                if cond != NULL:
                    add_rows(a_t, cond + ((t // frame) * B + lo) * G, (hi - lo) * G)
            elif packed != NULL:
                product(hi - lo, G, H, h_in + (t * B + lo) * H, H, packed_x, WxT, G, False, a_t,
                        G, False, bf16)
            product(hi - lo, 2 * H, H, h_prev, H, packed, UhT, G, False, a_t, G, True, bf16)
            gates_rz_rows(a_t, G, bias, h_prev, rh_t, H, hi - lo)
            product(hi - lo, H, H, rh_t, H, packed_c, UhT + 2 * H, G, False, a_t + 2 * H, G,
                    True, bf16)
            candidate_update_rows(a_t, G, bias, h_prev, h_prev + B * H, H, hi - lo)


cdef void layer_backward_steps(const floating* params, int layer, Py_ssize_t T, Py_ssize_t B,
                               Py_ssize_t H, const floating* hs, const floating* acts,
                               floating* d_acts, const floating* d_hs, floating* dh_next,
                               floating* d_rh, const float* packed, const floating* partials,
                               Py_ssize_t block, floating* pending, Py_ssize_t pending_size,
                               int threads, Py_ssize_t chunks, bint bf16) noexcept nogil:
    """Backward through one layer's time steps over the window, the batch in `chunks` chunks:
    d_acts (T, B, 3H) receives the gate gradients from d_hs (T, B, H), dLoss/dh(t) from above.
    pending (pending_size elements, NULL if none) is the gradient block of the layer above (or
    the output's) whose threads' copies in partials (block elements each) are still to be added
    up: done here, so it is final when this returns. packed: this layer's backward set of the
    packed weights, or NULL (BLAS); bf16: its products in bf16."""
    cdef Py_ssize_t G = 3 * H
    cdef Py_ssize_t X = LEVELS if layer == 0 else H
    cdef const floating* UhT = params + layer_offset(layer, H) + X * G
    cdef Py_ssize_t chunk, lo, hi, nb, t
    cdef const floating* a_t
    cdef const floating* h_prev
    cdef floating* da_t
    cdef const float* packed_c = NULL
    # the next step's rows asked for ahead: on AMD; on Intel the hardware's own prefetch does
    # better without (one thread 1-5 % faster, float32 and bf16)
    cdef bint ask_ahead = not bk_cpu_intel()
    if packed != NULL:
        # U_rz^T (2H, H) multiplies d[r, z], U_c^T (H, H) d(candidate)
        packed_c = packed + bk_packed_w_size(2 * H, H)
    for chunk in prange(chunks, num_threads=threads, schedule="dynamic", chunksize=1):
        reduce_parts(pending, pending_size, partials, block, threads, chunks, chunk)
        lo = share(B, chunks, chunk)
        hi = share(B, chunks, chunk + 1)
        nb = hi - lo
        memset(dh_next + lo * H, 0, nb * H * sizeof(floating))
        for t in range(T - 1, -1, -1):
            a_t = acts + (t * B + lo) * G
            da_t = d_acts + (t * B + lo) * G
            h_prev = hs + (t * B + lo) * H
            backward_zc(a_t, h_prev, d_hs + (t * B + lo) * H, dh_next + lo * H, da_t, H, nb)
            if t > 0 and ask_ahead:
                bk_prefetch(a_t - B * G, nb * G * sizeof(floating))
                bk_prefetch(h_prev - B * H, nb * H * sizeof(floating))
                bk_prefetch(d_hs + ((t - 1) * B + lo) * H, nb * H * sizeof(floating))
            product(nb, H, H, da_t + 2 * H, G, packed_c, UhT + 2 * H, G, True, d_rh + lo * H, H,
                    False, bf16)
            backward_r(a_t, h_prev, d_rh + lo * H, dh_next + lo * H, da_t, H, nb)
            product(nb, H, 2 * H, da_t, G, packed, UhT, G, True, dh_next + lo * H, H, True, bf16)


cdef void layer_weight_gradients(const floating* params, floating* grads, int layer,
                                 Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                                 const unsigned char* levels, const floating* h_in,
                                 const floating* hs, const floating* rh, const floating* d_acts,
                                 floating* d_hs, const float* packed, floating* partials,
                                 Py_ssize_t block, float* scratch, int threads,
                                 bint bf16) noexcept nogil:
    """One layer's weight gradients from its gate gradients d_acts (T, B, 3H), and for layers
    above 0 dLoss/d(input of this layer) into d_hs (T, B, H). The gradients are sums over the
    rows of the window: thread 0's share goes to grads, the other threads' to their copies in
    partials (block elements each), which the caller adds up later (reduce_parts). packed: this
    layer's backward set of the packed weights, or NULL (BLAS); scratch:
    bk_gemm_tn_scratch() floats per thread for the packed weight-gradient products, or NULL
    (BLAS); bf16: those products in bf16."""
    cdef Py_ssize_t G = 3 * H
    cdef Py_ssize_t X = LEVELS if layer == 0 else H
    cdef Py_ssize_t offset = layer_offset(layer, H)
    cdef const floating* WxT = params + offset
    cdef floating* dWxT
    cdef floating* dUhT
    cdef floating* d_bias
    cdef Py_ssize_t n = T * B, part, lo, hi, r0, r1
    cdef float* tn_scratch
    cdef const float* packed_x = NULL
    cdef Py_ssize_t rows = AMX_GRADIENT_ROWS if bf16 and bk_amx_use(-1) else GRADIENT_ROWS
    if packed != NULL:
        packed_x = packed + bk_packed_w_size(2 * H, H) + bk_packed_w_size(H, H)
    for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
        # this thread's rows of the window: its share of the weight gradients, rows of d(input),
        # in blocks of rows whose d_acts stay in cache across the products that read them (on
        # AMX tiles, blocks that load and store the gradients' tiles less often)
        lo = share(n, threads, part)
        hi = share(n, threads, part + 1)
        dWxT = gradient_part(grads + offset, partials, block, part)
        dUhT = dWxT + X * G
        d_bias = dUhT + H * G
        tn_scratch = NULL if scratch == NULL else scratch + part * bk_gemm_tn_scratch()
        if layer == 0:
            memset(dWxT, 0, X * G * sizeof(floating))
        r0 = lo
        while True:
            r1 = min(hi, r0 + rows) if scratch != NULL else hi
            product_tn(H, 2 * H, r1 - r0, hs + r0 * H, H, d_acts + r0 * G, G, dUhT, G, r0 > lo,
                       d_bias, levels + r0 if layer == 0 else NULL, dWxT, G, tn_scratch, bf16)
            product_tn(H, H, r1 - r0, rh + r0 * H, H, d_acts + r0 * G + 2 * H, G, dUhT + 2 * H,
                       G, r0 > lo, d_bias + 2 * H, levels + r0 if layer == 0 else NULL,
                       dWxT + 2 * H, G, tn_scratch, bf16)
            if layer > 0:
                product_tn(H, G, r1 - r0, h_in + r0 * H, H, d_acts + r0 * G, G, dWxT, G, r0 > lo,
                           NULL, NULL, NULL, 0, tn_scratch, bf16)
                product(r1 - r0, H, G, d_acts + r0 * G, G, packed_x, WxT, G, True,
                        d_hs + r0 * H, H, False, bf16)
            r0 = r1
            if r0 >= hi:
                break


# ---------------------------------------------------------------- the whole stack over a window

cdef tuple shape3(const floating[:, :, ::1] a):
    return (a.shape[0], a.shape[1], a.shape[2])


cdef tuple shape4(const floating[:, :, :, ::1] a):
    return (a.shape[0], a.shape[1], a.shape[2], a.shape[3])


def window(const floating[::1] params, floating[::1] grads, const unsigned char[:, ::1] x,
           const floating[:, :, ::1] h0, floating[:, :, ::1] h_last,
           floating[:, :, :, ::1] hs, floating[:, :, :, ::1] acts, floating[:, :, :, ::1] rh,
           floating[:, ::1] out, floating[:, :, ::1] d_acts, floating[:, :, ::1] d_hs,
           floating[:, ::1] dh_next, floating[:, ::1] d_rh, bint backward, int threads,
           const unsigned char[:, ::1] targets=None, ready=None,
           const floating[:, :, ::1] cond=None, Py_ssize_t frame=0, bint bf16=False):
    """Forward (and backward) pass of the whole stack over one window.

    x (T+1, B) levels: rows 0..T-1 are inputs, rows 1..T targets, unless targets (T, B) gives the
    levels to predict (x's last row is then unused). h0, h_last (L, B, H).
    threads: OpenMP threads; BLAS must be limited to one thread during the call (the
    kernel calls it from every thread on separate parts of the work). Scratch, reused across calls: hs (L, T+1, B, H), acts (L, T, B, 3H), rh (L, T, B, H),
    out (T*B, 256), and for the backward pass d_acts (T, B, 3H), d_hs (T, B, H), dh_next and
    d_rh (B, H). Without backward, out receives the probabilities p[t*B + b] of the next level;
    with it, out receives dLoss/dlogits and grads the full gradient (same layout as params).
    ready: None, or a callable that the backward pass calls as ready(start, stop), holding the
    GIL between two parallel regions, as soon as grads[start:stop] is final (the blocks of
    gradient_blocks(), in that order); the kernel neither reads nor writes that block again, so
    ready may start sending it (a nonblocking MPI Allreduce) while the pass goes on. An exception
    it raises ends the pass and propagates.
    cond: None, or (ceil(T / frame), B, 3H) added to layer 0's gate inputs (gate blocks [r, z,
    candidate]) of steps t in [k frame, (k+1) frame) from row k: a frame tier's conditioning
    (blekota.frames). With backward, d_acts then holds layer 0's gate gradients, which are also
    dLoss/dcond per step.
    bf16: every matrix product with both operands rounded to bfloat16 and float32 sums
    (bf16_gemm.h), twice the multiply-adds per cycle where the CPU has them (bf16_products(): a
    ValueError otherwise); float32 only, hidden at most BF16_MAX_HIDDEN.
    Returns the loss in mean nats per predicted sample.
    """
    cdef Py_ssize_t L = hs.shape[0], T = x.shape[0] - 1, B = x.shape[1], H = hs.shape[3]
    cdef Py_ssize_t n = T * B, i, rows, part, lo, hi, block, chunks, pending_size, finished
    cdef int layer
    cdef double[::1] partial
    cdef double* nll
    cdef floating scale
    cdef const floating* P = &params[0]
    cdef const floating* WyT
    cdef const floating* by
    cdef const floating* h_top
    cdef const unsigned char* levels = &x[0, 0]
    cdef const unsigned char* predicted = levels + x.shape[1]
    cdef floating* G = NULL
    cdef floating* mine
    cdef floating* partials = NULL
    cdef floating* pending
    cdef float* packed = NULL
    cdef float* packed_y = NULL
    cdef float* packed_yt = NULL
    cdef float* scratch = NULL
    cdef float* tn_scratch
    cdef bint announce = backward and ready is not None
    cdef const floating* cond_ptr = NULL

    if T < 1 or B < 1 or L < 1 or H < 1:
        raise ValueError("window needs T >= 1, B >= 1, at least one layer and hidden >= 1")
    if params.shape[0] != parameter_count(L, H):
        raise ValueError(f"params has {params.shape[0]} values, the architecture needs "
                         f"{parameter_count(L, H)}")
    if (shape3(h0) != (L, B, H) or shape3(h_last) != (L, B, H)
            or shape4(hs) != (L, T + 1, B, H) or shape4(acts) != (L, T, B, 3 * H)
            or shape4(rh) != (L, T, B, H) or (out.shape[0], out.shape[1]) != (n, LEVELS)):
        raise ValueError("window: scratch or state arrays do not match (layers, T, B, hidden)")
    if targets is not None:
        if (targets.shape[0], targets.shape[1]) != (T, B):
            raise ValueError("window: targets must be (T, B)")
        predicted = &targets[0, 0]
    if cond is not None:
        if frame < 1 or shape3(cond) != ((T + frame - 1) // frame, B, 3 * H):
            raise ValueError("window: cond must be (ceil(T / frame), B, 3 * hidden) with frame >= 1")
        cond_ptr = &cond[0, 0, 0]
    if bf16 and (sizeof(floating) != sizeof(float) or not bk_cpu_bf16()):
        raise ValueError("window: bf16 products need float32 and a CPU with AVX512_BF16 "
                         "(bf16_products())")
    if bf16 and H > BF16_MAX_HIDDEN:
        raise ValueError(f"window: bf16 products need hidden <= {BF16_MAX_HIDDEN}")
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
    # the largest gradient block (a layer's or the output's), one copy per thread but the first
    block = max(layer_size(max(LEVELS, H), H), (H + 1) * LEVELS)
    if backward and threads > 1:
        partials = <floating*> malloc((threads - 1) * block * sizeof(floating))
        if partials == NULL:
            raise MemoryError("window: no memory for the threads' gradient copies")
    if floating is float:
        if bk_cpu_level() > 0:
            # weight-sized; without the memory the products fall back to BLAS
            packed = <float*> malloc(packed_total_size(L, H) * sizeof(float))
            scratch = <float*> malloc(threads * bk_gemm_tn_scratch() * sizeof(float))
            if packed == NULL or scratch == NULL:
                free(packed)
                free(scratch)
                packed = scratch = NULL
            else:
                packed_y = packed + L * packed_layer_size(H)
                packed_yt = packed_y + bk_packed_w_size(H, LEVELS)

    chunks = batch_chunks(B, threads, bf16 and bk_amx_use(-1))
    try:
        with nogil:
            if packed != NULL:
                for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
                    pack_weights(P, L, H, backward, packed, threads, part, bf16)
            for layer in range(L):
                memcpy(&hs[layer, 0, 0, 0], &h0[layer, 0, 0], B * H * sizeof(floating))
                layer_forward(P, layer, T, B, H, levels,
                              &hs[layer - 1, 1, 0, 0] if layer > 0 else NULL,
                              &hs[layer, 0, 0, 0], &acts[layer, 0, 0, 0], &rh[layer, 0, 0, 0],
                              packed + layer * packed_layer_size(H) if packed != NULL else NULL,
                              threads, chunks, cond_ptr if layer == 0 else NULL, frame, bf16)
                memcpy(&h_last[layer, 0, 0], &hs[layer, T, 0, 0], B * H * sizeof(floating))
            h_top = &hs[L - 1, 1, 0, 0]
            for part in prange(threads, num_threads=threads, schedule="static", chunksize=1):
                # this thread's rows: logits, softmax, their gradient in blocks that stay in
                # cache; then its share of the output layer's weight gradient
                lo = share(n, threads, part)
                hi = share(n, threads, part + 1)
                i = lo
                while i < hi:
                    rows = min(hi - i, OUTPUT_BLOCK if packed != NULL else hi - lo)
                    product(rows, LEVELS, H, h_top + i * H, H, packed_y, WyT, LEVELS, False,
                            &out[i, 0], LEVELS, False, bf16)
                    nll[part] += softmax_rows(&out[i, 0], by, predicted + i, rows, scale, backward)
                    if backward:
                        product(rows, H, LEVELS, &out[i, 0], LEVELS, packed_yt, WyT, LEVELS, True,
                                &d_hs[0, 0, 0] + i * H, H, False, bf16)
                    i = i + rows
                if backward:
                    mine = gradient_part(G + layer_offset(L, H), partials, block, part)
                    tn_scratch = NULL if scratch == NULL else scratch + part * bk_gemm_tn_scratch()
                    product_tn(H, LEVELS, hi - lo, h_top + lo * H, H, &out[0, 0] + lo * LEVELS,
                               LEVELS, mine, LEVELS, False, mine + H * LEVELS, NULL, NULL, 0,
                               tn_scratch, bf16)
            if backward:
                # A block is final once the threads' copies are added up: with one thread at
                # once, else inside the next layer's time loop (the output's first). `finished`
                # is the offset of the last block computed, not yet announced (-1: none).
                finished = layer_offset(L, H)
                pending_size = (H + 1) * LEVELS
                for layer in range(L - 1, -1, -1):
                    if threads == 1 and announce:
                        with gil:
                            ready(finished, finished + pending_size)
                    layer_backward_steps(P, layer, T, B, H, &hs[layer, 0, 0, 0],
                                         &acts[layer, 0, 0, 0], &d_acts[0, 0, 0], &d_hs[0, 0, 0],
                                         &dh_next[0, 0], &d_rh[0, 0],
                                         packed + layer * packed_layer_size(H)
                                         + packed_forward_size(H) if packed != NULL else NULL,
                                         partials, block,
                                         G + finished if threads > 1 else NULL, pending_size,
                                         threads, chunks, bf16)
                    if threads > 1 and announce:
                        with gil:
                            ready(finished, finished + pending_size)
                    layer_weight_gradients(P, G, layer, T, B, H, levels,
                                           &hs[layer - 1, 1, 0, 0] if layer > 0 else NULL,
                                           &hs[layer, 0, 0, 0], &rh[layer, 0, 0, 0],
                                           &d_acts[0, 0, 0], &d_hs[0, 0, 0],
                                           packed + layer * packed_layer_size(H)
                                           + packed_forward_size(H) if packed != NULL else NULL,
                                           partials, block, scratch, threads, bf16)
                    finished = layer_offset(layer, H)
                    pending_size = layer_size(LEVELS if layer == 0 else H, H)
                if threads > 1:
                    for part in prange(threads, num_threads=threads, schedule="static",
                                       chunksize=1):
                        reduce_parts(G, pending_size, partials, block, threads, threads, part)
                if announce:
                    with gil:
                        ready(finished, finished + pending_size)
    finally:
        free(packed)
        free(scratch)
        free(partials)
    return float(np.sum(partial)) / n
