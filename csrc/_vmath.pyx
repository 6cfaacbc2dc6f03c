# cython: language_level=3
"""The kernels' elementwise math (csrc/fastmath.h) over whole arrays: for tests and timing.

apply(name, x, out) writes exp, tanh or sigmoid of x (1-D, float32 or float64) into out.
"""

from cython cimport floating

include "gates.pxi"

FUNCTIONS = ("exp", "tanh", "sigmoid")


def apply(str name, const floating[::1] x, floating[::1] out) -> None:
    """out[i] = name(x[i]) for name in FUNCTIONS; x and out (n,) of the same dtype."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int which
    if name not in FUNCTIONS:
        raise ValueError(f"name must be one of {FUNCTIONS}, got {name!r}")
    if out.shape[0] != n:
        raise ValueError("x and out must have the same length")
    which = FUNCTIONS.index(name)
    with nogil:
        if which == 0:
            for i in range(n):
                out[i] = exp_(x[i])
        elif which == 1:
            for i in range(n):
                out[i] = tanh_(x[i])
        else:
            for i in range(n):
                out[i] = sigmoid(x[i])
