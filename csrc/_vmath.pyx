# cython: language_level=3
"""The kernels' elementwise math (csrc/fastmath.h) over whole arrays: for tests and timing.

apply(name, x, out) writes exp, tanh or sigmoid of x (1-D, float32 or float64) into out, with
the code of the CPU level in use (cpu_level).
"""

from cython cimport floating

include "cpu.pxi"

cdef extern from "gates.h" nogil:
    void bk_vmath_f(int which, const float* x, float* out, Py_ssize_t n)
    void bk_vmath_d(int which, const double* x, double* out, Py_ssize_t n)

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
