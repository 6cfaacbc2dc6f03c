# Shared by the compiled modules: the parameter layout and the per-row GRU gate math.
#
# Internal parameter layout (one flat, contiguous vector; blekota.model converts to and from the
# canonical state dictionary). With G = 3H and gate blocks ordered [r, z, candidate]:
#
#     for each layer l (X = 256 for layer 0, H above):
#         WxT  (X, G)   input weights, transposed: layer 0's row WxT[level] is that level's input
#         UhT  (H, G)   recurrent weights, transposed (the candidate block multiplies r * h)
#         b    (G,)     biases
#     WyT  (H, 256)     output weights, transposed
#     by   (256,)       output biases

from cython cimport floating

cdef extern from "fastmath.h" nogil:
    float bk_expf(float x)
    double bk_exp(double x)
    float bk_tanhf(float x)
    double bk_tanh(double x)
    float bk_sigmoidf(float x)
    double bk_sigmoid(double x)

cdef enum:
    LEVELS = 256


# Vectorizable exp, tanh and sigmoid from fastmath.h (a few ulp; NaN and infinities kept).

cdef inline floating sigmoid(floating a) noexcept nogil:
    if floating is float:
        return bk_sigmoidf(a)
    else:
        return bk_sigmoid(a)


cdef inline floating tanh_(floating a) noexcept nogil:
    if floating is float:
        return bk_tanhf(a)
    else:
        return bk_tanh(a)


cdef inline floating exp_(floating a) noexcept nogil:
    if floating is float:
        return bk_expf(a)
    else:
        return bk_exp(a)


cdef inline Py_ssize_t layer_size(Py_ssize_t inputs, Py_ssize_t hidden) noexcept nogil:
    return (inputs + hidden + 1) * 3 * hidden


cdef inline Py_ssize_t layer_offset(int layer, Py_ssize_t hidden) noexcept nogil:
    if layer == 0:
        return 0
    return layer_size(LEVELS, hidden) + (layer - 1) * layer_size(hidden, hidden)


cdef inline Py_ssize_t parameter_count(int layers, Py_ssize_t hidden) noexcept nogil:
    """Length of the flat parameter vector for this architecture."""
    return layer_offset(layers, hidden) + (hidden + 1) * LEVELS


cdef inline void gates_rz(floating* a, const floating* bias, const floating* h_prev, floating* rh,
                          Py_ssize_t H) noexcept nogil:
    """a holds [r, z, .] pre-activations without bias; make them gates and rh = r * h_prev."""
    cdef Py_ssize_t j
    for j in range(2 * H):
        a[j] = sigmoid(a[j] + bias[j])
    for j in range(H):
        rh[j] = a[j] * h_prev[j]


cdef inline void candidate_update(floating* a, const floating* bias, const floating* h_prev,
                                  floating* h_new, Py_ssize_t H) noexcept nogil:
    """Candidate = tanh(pre-activation + bias), stored in place; h_new = (1 - z) h_prev + z c."""
    cdef Py_ssize_t j
    cdef floating c, z, one = 1
    for j in range(H):
        c = tanh_(a[2 * H + j] + bias[2 * H + j])
        a[2 * H + j] = c
        z = a[H + j]
        h_new[j] = (one - z) * h_prev[j] + z * c
