# cython: language_level=3
"""The kernels' elementwise math (csrc/fastmath.h) over whole arrays: for tests and timing.

apply(name, x, out) writes exp, tanh or sigmoid of x (1-D, float32 or float64) into out, with
the code of the CPU level in use (cpu_level); fma_peak() measures the float32 FMA rate of one
core at that level, the benchmarks' floor, bf16_peak() the rate of the bfloat16 products on
VDPBF16PS and amx_peak() on AMX tiles.
"""

from cython cimport floating

include "cpu.pxi"

cdef extern from "gates.h" nogil:
    void bk_vmath_f(int which, const float* x, float* out, Py_ssize_t n)
    void bk_vmath_d(int which, const double* x, double* out, Py_ssize_t n)

cdef extern from "fmapeak.h" nogil:
    double bk_fma_peak(long n) noexcept
    double bk_bf16_peak(long n) noexcept
    double bk_amx_peak(long n) noexcept

FUNCTIONS = ("exp", "tanh", "sigmoid")


def apply(str name, const floating[::1] x, floating[::1] out) -> None:
    """out[i] = name(x[i]) for name in FUNCTIONS; x and out (n,) of the same dtype."""
    cdef Py_ssize_t n = x.shape[0]
    cdef int which
    if name not in FUNCTIONS:
        raise ValueError(f"name must be one of {FUNCTIONS}, got {name!r}")
    if out.shape[0] != n:
        raise ValueError("x and out must have the same length")
    if n == 0:
        return
    which = FUNCTIONS.index(name)
    with nogil:
        if floating is float:
            bk_vmath_f(which, &x[0], &out[0], n)
        else:
            bk_vmath_d(which, &x[0], &out[0], n)


cdef double best_of_three(double (*peak)(long) noexcept nogil, long rounds) except -1:
    """The best of three runs of a peak loop of `rounds` rounds, in GFLOP/s."""
    cdef double best = 0
    cdef int run
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    with nogil:
        for run in range(3):
            best = max(best, peak(rounds))
    return best


def fma_peak(long rounds=20_000_000) -> float:
    """Float32 GFLOP/s of one core at the CPU level in use: `rounds` rounds of 12 independent
    vector FMAs (2 FLOP per lane), CPU time of this process (the best of three runs); 0.0 at the
    portable level, whose products are BLAS's."""
    return best_of_three(bk_fma_peak, rounds)


def bf16_peak(long rounds=20_000_000) -> float:
    """GFLOP/s of one core's bfloat16 pair multiply-adds (vdpbf16ps, 4 FLOP per float32 lane),
    measured like fma_peak: the floor of the bf16 training products; 0.0 on CPUs without
    AVX512_BF16 at the AVX-512 level."""
    return best_of_three(bk_bf16_peak, rounds)


def amx_peak(long rounds=2_000_000) -> float:
    """GFLOP/s of one core's AMX tile multiplies (TDPBF16PS, 16384 FLOP each), measured like
    fma_peak: the floor of the bf16 training products where they run on AMX tiles
    (blekota._gru.amx_products); 0.0 where the CPU or Linux does not allow the tiles."""
    return best_of_three(bk_amx_peak, rounds)
