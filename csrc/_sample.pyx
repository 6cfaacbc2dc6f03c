# cython: language_level=3
"""Compiled generation loop: S streams step by step through the stack, each drawn level fed back.

The weights are repacked once per call by `pack` into panels (sample_kernel.h): layer 0's gate
inputs are one row of a table per level, every other product streams through panels of 64
output columns. One stream (S = 1) runs a fused matrix-vector step whose output columns are split
over the threads inside one OpenMP region (with a tuner that falls back to one thread when the
other cores are busy). Several streams are split into contiguous groups, one per thread, each
stepped with small matrix-matrix tiles on the same panels. Softmax with temperature, the
truncation (top-k, top-p, min-p) and the draw happen in place; everything runs without the GIL. A stream's arithmetic, hence its sound for a
given seed, does not depend on the number of threads. A conditioning vector per stream (cond,
from a frame tier) may be added to layer 0's gate pre-activations on every path.
The dense streams of a float32 model may take their products in bfloat16 (generate's `half`:
pack_half's panels; one stream reads half the bytes a step, several run 1.6-1.9x as fast where
the CPU has AVX512_BF16), the same sums for a stream alone or among several.

Drawing: one NumPy bit generator (PCG64 when blekota.Model makes it) gives one uniform double u
in [0, 1) per stream per drawn step, steps in order and, within a step, streams 0..S-1; the level
is the first k whose running sum of the (truncated) p (levels 0..255) exceeds u * sum(p). Hinted steps and
temperature 0 (argmax) draw nothing. The uniforms are taken BLOCK steps at a time.
"""

import numpy as np

from .mulaw import unquantize

from cpython.pycapsule cimport PyCapsule_GetPointer
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int32_t, uint16_t, uint32_t
from numpy.random cimport bitgen_t

include "cpu.pxi"
include "gates.pxi"

cdef extern from "sample_kernel.h" nogil:
    ctypedef struct bk_tuner:
        double cost[2]
        long pieces
        long interval
    long BK_REPROBE
    ctypedef struct bk_sampling:
        double temperature
        int top_k
        double top_p
        double min_p
        int truncates
        const double* values
        Py_ssize_t wake_after
        Py_ssize_t* quiet
    Py_ssize_t bk_packed_size(int layers, Py_ssize_t hidden)
    Py_ssize_t bk_padded(Py_ssize_t hidden)
    void bk_pack_f(const float* params, int layers, Py_ssize_t H, float* packed)
    void bk_pack_d(const double* params, int layers, Py_ssize_t H, double* packed)
    void bk_pack_half(const float* packed, int layers, Py_ssize_t H, uint16_t* half)
    int bk_cpu_bf16()
    int bk_cpu_intel()
    void bk_run_one_tuned_f(bk_tuner* tuner, const float* packed, const uint16_t* half, int layers, Py_ssize_t H,
                            const float* cond, float* h, float* scratch, int* level,
                            unsigned char* out, float* means, Py_ssize_t n,
                            const unsigned char* hint,
                            Py_ssize_t n_hint, const double* uniform, float* probs,
                            Py_ssize_t n_probs, const bk_sampling* how, int threads)
    void bk_run_one_tuned_d(bk_tuner* tuner, const double* packed, const uint16_t* half, int layers, Py_ssize_t H,
                            const double* cond, double* h, double* scratch, int* level,
                            unsigned char* out, double* means, Py_ssize_t n,
                            const unsigned char* hint,
                            Py_ssize_t n_hint, const double* uniform, double* probs,
                            Py_ssize_t n_probs, const bk_sampling* how, int threads)
    void bk_run_streams_f(const float* packed, const uint16_t* half, uint32_t* words, int layers,
                          Py_ssize_t H, Py_ssize_t S,
                          const float* cond, float* hs, float* pre, float* rh, float* logits,
                          unsigned char* previous, unsigned char* levels, float* means,
                          Py_ssize_t n, const unsigned char* hint, Py_ssize_t hint_stride,
                          const Py_ssize_t* hint_length, float* probs, Py_ssize_t n_probs,
                          const double* uniform, Py_ssize_t t0, Py_ssize_t t1,
                          const bk_sampling* how, Py_ssize_t s0, Py_ssize_t s1)
    void bk_run_streams_d(const double* packed, const uint16_t* half, uint32_t* words, int layers,
                          Py_ssize_t H, Py_ssize_t S,
                          const double* cond, double* hs, double* pre, double* rh, double* logits,
                          unsigned char* previous, unsigned char* levels, double* means,
                          Py_ssize_t n, const unsigned char* hint, Py_ssize_t hint_stride,
                          const Py_ssize_t* hint_length, double* probs, Py_ssize_t n_probs,
                          const double* uniform, Py_ssize_t t0, Py_ssize_t t1,
                          const bk_sampling* how, Py_ssize_t s0, Py_ssize_t s1)

cdef extern from "sparse_kernel.h" nogil:
    ctypedef struct bk_walk_f:
        const int32_t* index
        const float* weights
        const int8_t* bytes
        const float* scale
        const int32_t* offset
    ctypedef struct bk_walk_d:
        const int32_t* index
        const double* weights
        const int8_t* bytes
        const float* scale
        const int32_t* offset
    const char* bk_int8_path()
    void bk_run_sparse_f(const bk_walk_f* start, const float* packed, int layers, Py_ssize_t H,
                         const float* cond, float* h, float* scratch, unsigned char* bytes,
                         int* level, unsigned char* out, float* means, Py_ssize_t n,
                         const unsigned char* hint,
                         Py_ssize_t n_hint, const double* uniform, float* probs,
                         Py_ssize_t n_probs, const bk_sampling* how)
    void bk_run_sparse_d(const bk_walk_d* start, const double* packed, int layers, Py_ssize_t H,
                         const double* cond, double* h, double* scratch, unsigned char* bytes,
                         int* level, unsigned char* out, double* means, Py_ssize_t n,
                         const unsigned char* hint,
                         Py_ssize_t n_hint, const double* uniform, double* probs,
                         Py_ssize_t n_probs, const bk_sampling* how)

cdef enum:
    BLOCK = 1024  # steps per batch of uniforms and per OpenMP region

# the sample each level stands for, in double: what a step's mean (generate's means) adds up
cdef const double[::1] SAMPLE_OF_LEVEL = unquantize(np.arange(LEVELS)).astype(np.float64)


def packed_size(int layers, int hidden) -> int:
    """Elements of the single-stream packed weights (see sample_kernel.h)."""
    return bk_packed_size(layers, hidden)


def pack(const floating[::1] params, int layers, int hidden, floating[::1] packed):
    """Repack the flat core parameters into the single-stream panels (packed_size elements)."""
    if params.shape[0] != parameter_count(layers, hidden) or layers < 1 or hidden < 1:
        raise ValueError("pack: params do not match the architecture")
    if packed.shape[0] != bk_packed_size(layers, hidden):
        raise ValueError("pack: packed must have packed_size(layers, hidden) elements")
    with nogil:
        if floating is float:
            bk_pack_f(&params[0], layers, hidden, &packed[0])
        else:
            bk_pack_d(&params[0], layers, hidden, &packed[0])


def pack_half(const float[::1] packed, int layers, int hidden, uint16_t[::1] half):
    """The bfloat16 panels of a float32 model's packed weights (generate's `half`; packed_size
    elements, sample_kernel.h)."""
    if packed.shape[0] != bk_packed_size(layers, hidden) or half.shape[0] != packed.shape[0]:
        raise ValueError("pack_half: packed and half must have packed_size(layers, hidden) elements")
    with nogil:
        bk_pack_half(&packed[0], layers, hidden, &half[0])


def bf16_path(int streams=1) -> str:
    """How the bfloat16 products of `streams` streams run at this CPU level: "avx512_bf16"
    (vdpbf16ps) or "float" (the same arithmetic in float32 instructions, the same bits). Several
    streams take vdpbf16ps only where it runs at the float32 FMA's rate, not on Intel CPUs
    (sample_kernel.h)."""
    return "avx512_bf16" if bk_cpu_bf16() and (streams == 1 or not bk_cpu_intel()) else "float"


def new_tuning():
    """What the one-stream tuner knows before timing anything, for generate's `tuning`."""
    return np.array([-1.0, -1.0, 0.0, BK_REPROBE], dtype=np.float64)


def int8_path() -> str:
    """The int8 products in use at this CPU level: "vnni" (AVX-512 VNNI), "avx2" or "portable"."""
    return bk_int8_path().decode()


def walk_blocks(const int32_t[::1] index, int layers, int hidden, bint output) -> int:
    """Check a sparse index (sparse_kernel.h) for this architecture, with the output layer's
    product or without: the number of its blocks, padding included. ValueError when a count, a
    group's column or a row is out of place (the kernel trusts the index)."""
    cdef Py_ssize_t Hp = bk_padded(hidden), at = 0, blocks = 0, count, b, k, row, g, column, columns, rows
    cdef int layer, product
    cdef unsigned char[::1] written  # per group of the product: named by a set already
    for layer in range(layers + output):
        rows = Hp if layer == 0 or layer == layers else 2 * Hp
        for product in range(1 if layer == layers else 2):
            columns = LEVELS if layer == layers else 2 * Hp if product == 0 else Hp
            written = np.zeros(columns // 8, np.uint8)
            for g in range(0, columns, 32):
                if at + 5 > index.shape[0]:
                    raise ValueError("sparse index: too short for the architecture")
                count = 4 * index[at]
                for k in range(4):
                    column = index[at + 1 + k]
                    if column % 8 != 0 or column < 0 or column >= columns or written[column // 8]:
                        raise ValueError("sparse index: a group's column is out of range or repeated")
                    written[column // 8] = 1
                at += 5
                if count < 0 or at + count > index.shape[0]:
                    raise ValueError("sparse index: a block count is out of range")
                for b in range(count):
                    row = index[at + b]
                    if row % 4 != 0 or row < 0 or row + 4 > rows:
                        raise ValueError("sparse index: a block row is out of range")
                at += count
                blocks += count
    if at != index.shape[0]:
        raise ValueError("sparse index: longer than the architecture needs")
    return blocks


def _described(value) -> str:
    """What a wrong argument is, for an error message: shape, dtype and layout of an array."""
    if not isinstance(value, np.ndarray):
        return type(value).__name__
    layout = "C-contiguous" if value.flags.c_contiguous else "non-contiguous"
    return f"a {layout} {value.shape} array of {value.dtype}"


def generate(const floating[::1] packed, floating[:, :, ::1] h, unsigned char[:, ::1] levels,
             const unsigned char[:, ::1] hint, const Py_ssize_t[::1] hint_length,
             unsigned char[::1] previous, floating[:, :, ::1] probs, double temperature,
             bit_generator, int threads, int top_k=0, double top_p=1.0, double min_p=0.0,
             double[::1] tuning=None, sparse=None, cond=None, means=None, Py_ssize_t wake_after=0,
             quiet=None, const uint16_t[::1] half=None):
    """Generate levels.shape[1] steps for S = levels.shape[0] streams.

    packed: pack() of the model's parameters. h (L, S, H): hidden state in, state after the
    last step out. previous (S,): the level fed before the first step, and on return the last
    level of each stream. hint (S, nh), hint_length (S,): for t < hint_length[s] <= nh, step t
    of stream s takes hint[s, t] instead of drawing. probs (S, m, 256): the distribution of the
    first m steps is recorded (m may be 0).
    temperature: 0 for argmax. bit_generator: a numpy.random.BitGenerator, used under its lock.
    top_k (0 or >= 256: off), top_p (1: off), min_p (0: off): the truncation applied after the
    temperature (sample_twin.h, bk_truncate); probs records the truncated, renormalized p.
    tuning: None, or new_tuning()'s 4 values (seconds per step on 1 thread and on all, < 0 before
    timing; pieces since the last probe; pieces between probes), read at the start and written
    back at the end, so that one stream generated in many short calls keeps what the tuner
    learned instead of probing again in every call (S = 1 only; the sound does not depend on it).
    sparse: for one stream, the block-sparse products (sparse_kernel.h) as (index, float
    weights of packed's dtype, int8 bytes, scales, offsets), run on one thread; float when the
    bytes are empty (then the scales and offsets are too), else int8 (float32 models only).
    cond: None, or an (S, 3H) C-contiguous array of packed's dtype, gate blocks [r, z, candidate]
    (blekota.model.GATES): at every step of this call, stream s's layer 0 gate pre-activations
    get + cond[s], as if layer 0's bias were b + cond[s] (equal up to rounding). Any path: dense,
    sparse, int8, one stream or several. None adds nothing.
    means: None, or an (S, n) array of packed's dtype that receives the mean sample of each step's
    distribution (the tempered, truncated one it draws from; at temperature 0 the likeliest
    level's, on a hinted step its hint's): sum over levels of p times the sample the level
    stands for (blekota.mulaw.unquantize), in double.
    wake_after (steps; 0: off) and quiet (S,) intp, in and out: a stream that has drawn silence
    (levels 126..129) for more than wake_after steps in a row hears each further silent level
    moved by -2..2 (from its step's uniform; sample_kernel.h, bk_heard) until it has drawn sound
    for wake_after steps in a row; `levels` keep what was drawn, `previous` is what is heard next.
    quiet[s] is stream s's waking state (bk_heard's run), carried from call to call. Any path.
    half: None, or pack_half of a float32 packed: dense streams with their products in bfloat16
    (both operands rounded to nearest, float32 sums; sample_kernel.h).
    """
    cdef Py_ssize_t L = h.shape[0], S = h.shape[1], H = h.shape[2]
    cdef Py_ssize_t n = levels.shape[1], nh = hint.shape[1], n_probs = probs.shape[1]
    cdef Py_ssize_t Hp = bk_padded(H), t0, t1, t, s, k, part, parts = min(max(threads, 1), S)
    cdef bint draws = temperature > 0
    cdef int level
    cdef bitgen_t* rng
    cdef bk_tuner tuner
    cdef bk_sampling how
    cdef const unsigned char* hint_ptr = &hint[0, 0] if nh > 0 else NULL
    cdef Py_ssize_t n_hint
    cdef floating* probs_ptr = &probs[0, 0, 0] if n_probs > 0 else NULL

    if levels.shape[0] != S or previous.shape[0] != S or hint.shape[0] != S:
        raise ValueError("generate: levels, hint and previous must have one row per stream")
    lengths = np.asarray(hint_length)
    if lengths.shape != (S,) or (lengths < 0).any() or (lengths > nh).any():
        raise ValueError("generate: hint_length must be (streams,) lengths within the hint")
    if n_probs > 0 and (probs.shape[0] != S or probs.shape[2] != LEVELS or n_probs > n):
        raise ValueError("generate: probs must be (streams, m <= n, 256)")
    if packed.shape[0] != bk_packed_size(<int> L, H) or S < 1 or H < 1 or L < 1:
        raise ValueError("generate: packed weights do not match the hidden state's architecture")
    if not temperature >= 0:
        raise ValueError("generate: temperature must be >= 0")
    if top_k < 0 or not 0 < top_p <= 1 or not 0 <= min_p <= 1:
        raise ValueError("generate: top_k must be >= 0, top_p in (0, 1] and min_p in [0, 1]")
    if means is None:
        means = np.empty((S, n), dtype=np.asarray(packed).dtype)
    cdef floating[:, ::1] means_out = means
    if means_out.shape[0] != S or means_out.shape[1] != n:
        raise ValueError("generate: means must be (streams, n), as levels")
    if tuning is not None and tuning.shape[0] != 4:
        raise ValueError("generate: tuning must hold the 4 values of new_tuning()")
    if wake_after < 0:
        raise ValueError("generate: wake_after must be >= 0")
    cdef Py_ssize_t[::1] quiet_runs
    if wake_after > 0:
        if quiet is None:
            quiet = np.zeros(S, np.intp)
        quiet_runs = quiet
        if quiet_runs.shape[0] != S:
            raise ValueError("generate: quiet must be (streams,), as previous")
    dtype = np.asarray(packed).dtype
    cdef const floating[:, ::1] shift
    cdef const floating* cond_ptr = NULL
    if cond is not None:
        if not (isinstance(cond, np.ndarray) and cond.dtype == dtype and cond.shape == (S, 3 * H)
                and cond.flags.c_contiguous):
            raise ValueError(f"generate: cond must be None or a C-contiguous ({S}, {3 * H}) array "
                             f"of {dtype} (streams, 3 x hidden; packed's dtype), got "
                             f"{_described(cond)}")
        if Hp == H:
            shift = cond
        else:
            padded = np.zeros((S, 3, Hp), dtype)  # the padded units' entries stay 0
            padded[:, :, :H] = cond.reshape(S, 3, H)
            shift = padded.reshape(S, 3 * Hp)
        cond_ptr = &shift[0, 0]
    if half is not None and (floating is double or sparse is not None or half.shape[0] != packed.shape[0]):
        raise ValueError("generate: half panels are for dense streams of float32 packed weights, "
                         "with packed_size elements")
    cdef const uint16_t* half_ptr = &half[0] if half is not None else NULL
    cdef bint half_streams = half is not None and S > 1
    cdef uint32_t[:, ::1] words = np.empty((S if half_streams else 1, 2 * Hp if half_streams else 1), np.uint32)
    cdef uint32_t* words_ptr = &words[0, 0] if half_streams else NULL
    cdef bk_walk_f walk_f
    cdef bk_walk_d walk_d
    cdef const int32_t[::1] sparse_index
    cdef const floating[::1] sparse_weights
    cdef const int8_t[::1] sparse_bytes
    cdef const float[::1] sparse_scale
    cdef const int32_t[::1] sparse_offset
    cdef unsigned char[::1] quantized
    cdef bint int8 = False
    if sparse is not None:
        sparse_index, sparse_weights, sparse_bytes, sparse_scale, sparse_offset = sparse
        int8 = sparse_bytes.shape[0] > 0
        blocks = walk_blocks(sparse_index, <int> L, <int> H, int8)
        if S != 1:
            raise ValueError("generate: the sparse kernel runs one stream")
        if int8 and (floating is double or sparse_bytes.shape[0] != 32 * blocks
                     or sparse_scale.shape[0] != 3 * Hp * L + LEVELS
                     or sparse_offset.shape[0] != 3 * Hp * L + LEVELS):
            raise ValueError("generate: int8 blocks, scales or offsets do not match the index")
        if not int8 and sparse_weights.shape[0] != 32 * blocks:
            raise ValueError("generate: sparse weights do not match the index")
        quantized = np.zeros(4 * Hp, np.uint8)
        if floating is float:
            walk_f.index = &sparse_index[0]
            walk_f.weights = &sparse_weights[0] if not int8 and blocks > 0 else NULL
            walk_f.bytes = &sparse_bytes[0] if int8 else NULL
            walk_f.scale = &sparse_scale[0] if int8 else NULL
            walk_f.offset = &sparse_offset[0] if int8 else NULL
        else:
            walk_d.index = &sparse_index[0]
            walk_d.weights = &sparse_weights[0] if blocks > 0 else NULL
            walk_d.bytes = NULL
            walk_d.scale = NULL
            walk_d.offset = NULL
    if n == 0:
        return
    how.temperature = temperature
    how.top_k = top_k
    how.top_p = top_p
    how.min_p = min_p
    how.truncates = 0 < top_k < LEVELS or top_p < 1 or min_p > 0
    how.values = &SAMPLE_OF_LEVEL[0]
    how.wake_after = wake_after
    how.quiet = &quiet_runs[0] if wake_after > 0 else NULL
    n_hint = hint_length[0]
    level = previous[0]
    tuner.cost[0] = tuner.cost[1] = -1
    tuner.pieces = 0
    tuner.interval = BK_REPROBE
    if tuning is not None:
        tuner.cost[0], tuner.cost[1] = tuning[0], tuning[1]
        tuner.pieces, tuner.interval = <long> tuning[2], <long> tuning[3]
    state_array = np.zeros((S, L, Hp), dtype=dtype)
    state_array[:, :, :H] = np.asarray(h).transpose(1, 0, 2)
    cdef floating[:, :, ::1] state = state_array
    # one stream: its scratch (7 Hp + 256 for the sparse kernel); S > 1: a row of 3Hp per stream
    cdef floating[:, ::1] pre = np.empty((S, 7 * Hp + LEVELS), dtype=dtype)
    cdef floating[:, ::1] rh = np.empty((S, Hp), dtype=dtype)
    cdef floating[:, ::1] logits = np.empty((S, LEVELS), dtype=dtype)
    cdef double[::1] uniform = np.zeros(BLOCK * S, dtype=np.float64)
    rng = <bitgen_t*> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")

    with bit_generator.lock, nogil:
        t0 = 0
        while t0 < n:
            t1 = min(n, t0 + BLOCK)
            if draws:
                k = 0
                for t in range(t0, t1):
                    for s in range(S):
                        if t >= hint_length[s]:
                            uniform[k] = rng.next_double(rng.state)
                        k = k + 1
            if S > 1:
                for part in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                    if floating is float:
                        bk_run_streams_f(&packed[0], half_ptr, words_ptr, <int> L, H, S, cond_ptr,
                                         &state[0, 0, 0],
                                         &pre[0, 0], &rh[0, 0], &logits[0, 0], &previous[0],
                                         &levels[0, 0], &means_out[0, 0],
                                         n, hint_ptr, nh, &hint_length[0], probs_ptr, n_probs,
                                         &uniform[0],
                                         t0, t1, &how, part * S // parts,
                                         (part + 1) * S // parts)
                    else:
                        bk_run_streams_d(&packed[0], NULL, NULL, <int> L, H, S, cond_ptr,
                                         &state[0, 0, 0],
                                         &pre[0, 0], &rh[0, 0], &logits[0, 0], &previous[0],
                                         &levels[0, 0], &means_out[0, 0],
                                         n, hint_ptr, nh, &hint_length[0], probs_ptr, n_probs,
                                         &uniform[0],
                                         t0, t1, &how, part * S // parts,
                                         (part + 1) * S // parts)
            elif sparse is not None:
                if floating is float:
                    bk_run_sparse_f(&walk_f, &packed[0], <int> L, H, cond_ptr, &state[0, 0, 0],
                                    &pre[0, 0], &quantized[0], &level, &levels[0, t0],
                                    &means_out[0, t0], t1 - t0,
                                    hint_ptr + t0 if t0 < n_hint else NULL,
                                    max(0, min(n_hint, t1) - t0), &uniform[0],
                                    probs_ptr + t0 * LEVELS if t0 < n_probs else NULL,
                                    max(0, min(n_probs, t1) - t0), &how)
                else:
                    bk_run_sparse_d(&walk_d, &packed[0], <int> L, H, cond_ptr, &state[0, 0, 0],
                                    &pre[0, 0], &quantized[0], &level, &levels[0, t0],
                                    &means_out[0, t0], t1 - t0,
                                    hint_ptr + t0 if t0 < n_hint else NULL,
                                    max(0, min(n_hint, t1) - t0), &uniform[0],
                                    probs_ptr + t0 * LEVELS if t0 < n_probs else NULL,
                                    max(0, min(n_probs, t1) - t0), &how)
            elif floating is float:
                bk_run_one_tuned_f(&tuner, &packed[0], half_ptr, <int> L, H, cond_ptr, &state[0, 0, 0],
                                   &pre[0, 0], &level, &levels[0, t0], &means_out[0, t0],
                                   t1 - t0,
                                   hint_ptr + t0 if t0 < n_hint else NULL,
                                   max(0, min(n_hint, t1) - t0), &uniform[0],
                                   probs_ptr + t0 * LEVELS if t0 < n_probs else NULL,
                                   max(0, min(n_probs, t1) - t0), &how, threads)
            else:
                bk_run_one_tuned_d(&tuner, &packed[0], NULL, <int> L, H, cond_ptr, &state[0, 0, 0],
                                   &pre[0, 0], &level, &levels[0, t0], &means_out[0, t0],
                                   t1 - t0,
                                   hint_ptr + t0 if t0 < n_hint else NULL,
                                   max(0, min(n_hint, t1) - t0), &uniform[0],
                                   probs_ptr + t0 * LEVELS if t0 < n_probs else NULL,
                                   max(0, min(n_probs, t1) - t0), &how, threads)
            t0 = t1
    if S == 1:
        previous[0] = <unsigned char> level
    if tuning is not None:
        tuning[0], tuning[1], tuning[2], tuning[3] = tuner.cost[0], tuner.cost[1], tuner.pieces, tuner.interval
    np.asarray(h)[...] = state_array[:, :, :H].transpose(1, 0, 2)
