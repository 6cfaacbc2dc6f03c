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


cdef extern from "gates.h" nogil:
    void bk_gates_rz_f(float* a, Py_ssize_t lda, const float* bias, const float* h_prev,
                       float* rh, Py_ssize_t H, Py_ssize_t rows)
    void bk_gates_rz_d(double* a, Py_ssize_t lda, const double* bias, const double* h_prev,
                       double* rh, Py_ssize_t H, Py_ssize_t rows)
    void bk_candidate_update_f(float* a, Py_ssize_t lda, const float* bias, const float* h_prev,
                               float* h_new, Py_ssize_t H, Py_ssize_t rows)
    void bk_candidate_update_d(double* a, Py_ssize_t lda, const double* bias,
                               const double* h_prev, double* h_new, Py_ssize_t H, Py_ssize_t rows)


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


cdef inline void gates_rz(floating* a, const floating* bias, const floating* h_prev, floating* rh,
                          Py_ssize_t H) noexcept nogil:
    """a holds [r, z, .] pre-activations without bias; make them gates and rh = r * h_prev."""
    gates_rz_rows(a, 3 * H, bias, h_prev, rh, H, 1)


cdef inline void candidate_update(floating* a, const floating* bias, const floating* h_prev,
                                  floating* h_new, Py_ssize_t H) noexcept nogil:
    """Candidate = tanh(pre-activation + bias), stored in place; h_new = (1 - z) h_prev + z c."""
    candidate_update_rows(a, 3 * H, bias, h_prev, h_new, H, 1)
