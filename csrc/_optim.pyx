# cython: language_level=3
"""The per-iteration updates of a flat weight vector, compiled: the optimizers' rules
(blekota.optim) and the weights' moving average (blekota.averaging).

Each is one pass over its arrays, split into pieces over `threads` OpenMP threads, with no
scratch. Every element takes the same float operations in the same order as the NumPy formula
in the docstring (each constant rounded to the arrays' dtype first, as NumPy does with a Python
float; no fused multiply-adds: setup.py builds this module with -ffp-contract=off), so the
results are the NumPy formula's bits, whatever the thread count.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

cdef enum:
    PIECE = 32768  # elements per piece of the work a thread takes


cdef inline floating clipped(floating g, floating limit) noexcept nogil:
    """g limited to [-limit, limit], NaN kept (np.clip)."""
    if g < -limit:
        return -limit
    if g > limit:
        return limit
    return g


cdef inline floating root(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline Py_ssize_t not_finite(floating x) noexcept nogil:
    """1 for NaN or an infinity (x - x is NaN only for those), else 0."""
    return 0 if x - x == 0 else 1


cdef Py_ssize_t adam_piece(floating* params, floating* grads, floating* m, floating* v,
                           Py_ssize_t lo, Py_ssize_t hi, floating limit, floating beta1,
                           floating rest1, floating beta2, floating rest2, floating step_size,
                           floating eps) noexcept nogil:
    cdef Py_ssize_t i, bad = 0
    cdef floating g, mi, vi, s
    for i in range(lo, hi):
        g = clipped(grads[i], limit)
        grads[i] = g
        mi = m[i] * beta1
        s = g * rest1
        mi = mi + s
        m[i] = mi
        vi = v[i] * beta2
        s = g * g
        s = s * rest2
        vi = vi + s
        v[i] = vi
        s = root(vi)
        s = s + eps
        s = mi / s
        s = s * step_size
        params[i] = params[i] - s
        bad += not_finite(params[i])
    return bad


cdef Py_ssize_t mean_square_piece(floating* params, floating* grads, floating* m,
                                  Py_ssize_t lo, Py_ssize_t hi, floating limit, bint decaying,
                                  floating decay, floating rest, floating eps,
                                  floating lr) noexcept nogil:
    cdef Py_ssize_t i, bad = 0
    cdef floating g, mi, s
    for i in range(lo, hi):
        g = clipped(grads[i], limit)
        grads[i] = g
        s = g * g
        if decaying:
            mi = m[i] * decay
            s = s * rest
        else:
            mi = m[i]
        mi = mi + s
        m[i] = mi
        s = mi + eps
        s = root(s)
        s = g / s
        s = s * lr
        params[i] = params[i] - s
        bad += not_finite(params[i])
    return bad


cdef Py_ssize_t check_sizes(floating[::1] params, floating[::1] grads, floating[::1] first,
                            floating[::1] second) except -1:
    cdef Py_ssize_t n = params.shape[0]
    if grads.shape[0] != n or first.shape[0] != n or second.shape[0] != n:
        raise ValueError("the weights, gradients and the optimizer's moments must have the same length")
    return n


def adam(floating[::1] params, floating[::1] grads, floating[::1] m, floating[::1] v,
         double clip, double beta1, double beta2, double step_size, double eps,
         int threads=1) -> bool:
    """Adam's step with the bias corrections folded into step_size and eps (Adam.corrected), all
    arrays (n,) of one dtype, in place:
        np.clip(grads, -clip, clip, out=grads)
        m = m * beta1 + grads * (1 - beta1);  v = v * beta2 + grads * grads * (1 - beta2)
        params -= (m / (sqrt(v) + eps)) * step_size
    Returns whether every updated weight is finite."""
    cdef Py_ssize_t n = check_sizes(params, grads, m, v), pieces = (n + PIECE - 1) // PIECE
    cdef Py_ssize_t piece, bad = 0
    cdef floating limit = <floating> clip, b1 = <floating> beta1, b2 = <floating> beta2
    cdef floating rest1 = <floating> (1.0 - beta1), rest2 = <floating> (1.0 - beta2)
    cdef floating size = <floating> step_size, e = <floating> eps
    if n == 0:
        return True
    for piece in prange(pieces, nogil=True, num_threads=max(threads, 1), schedule="static"):
        bad += adam_piece(&params[0], &grads[0], &m[0], &v[0], piece * PIECE,
                          min(n, (piece + 1) * PIECE), limit, b1, rest1, b2, rest2, size, e)
    return bad == 0


def mean_square(floating[::1] params, floating[::1] grads, floating[::1] m, double clip,
                double decay, double eps, double lr, int threads=1, bint adagrad=False) -> bool:
    """RMSprop's step, or with adagrad Adagrad's (decay unused), arrays (n,) of one dtype, in
    place:
        np.clip(grads, -clip, clip, out=grads)
        m = m * decay + grads * grads * (1 - decay)   (Adagrad: m = m + grads * grads)
        params -= (grads / sqrt(m + eps)) * lr
    Returns whether every updated weight is finite."""
    cdef Py_ssize_t n = check_sizes(params, grads, m, m), pieces = (n + PIECE - 1) // PIECE
    cdef Py_ssize_t piece, bad = 0
    cdef bint decaying = not adagrad
    cdef floating limit = <floating> clip, d = <floating> decay, rest = <floating> (1.0 - decay)
    cdef floating e = <floating> eps, rate = <floating> lr
    if n == 0:
        return True
    for piece in prange(pieces, nogil=True, num_threads=max(threads, 1), schedule="static"):
        bad += mean_square_piece(&params[0], &grads[0], &m[0], piece * PIECE,
                                 min(n, (piece + 1) * PIECE), limit, decaying, d, rest, e, rate)
    return bad == 0


cdef void average_piece(floating* total_sum, const floating* weights, Py_ssize_t lo,
                        Py_ssize_t hi, floating decay, floating rest) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating s
    for i in range(lo, hi):
        s = total_sum[i] * decay
        total_sum[i] = s + weights[i] * rest


def moving_average(floating[::1] total_sum, const floating[::1] weights, double decay,
                   int threads=1) -> None:
    """total_sum = total_sum * decay + weights * (1 - decay), in place, both (n,) of one dtype
    (WeightAverage.update)."""
    cdef Py_ssize_t n = total_sum.shape[0], pieces = (n + PIECE - 1) // PIECE, piece
    cdef floating d = <floating> decay, rest = <floating> (1.0 - decay)
    if weights.shape[0] != n:
        raise ValueError("the sum and the weights must have the same length")
    if n == 0:
        return
    for piece in prange(pieces, nogil=True, num_threads=max(threads, 1), schedule="static"):
        average_piece(&total_sum[0], &weights[0], piece * PIECE, min(n, (piece + 1) * PIECE), d,
                      rest)
