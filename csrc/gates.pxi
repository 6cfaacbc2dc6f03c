# Shared by the compiled modules: the parameter layout.
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

cdef enum:
    LEVELS = 256


cdef inline Py_ssize_t layer_size(Py_ssize_t inputs, Py_ssize_t hidden) noexcept nogil:
    return (inputs + hidden + 1) * 3 * hidden


cdef inline Py_ssize_t layer_offset(int layer, Py_ssize_t hidden) noexcept nogil:
    if layer == 0:
        return 0
    return layer_size(LEVELS, hidden) + (layer - 1) * layer_size(hidden, hidden)


cdef inline Py_ssize_t parameter_count(int layers, Py_ssize_t hidden) noexcept nogil:
    """Length of the flat parameter vector for this architecture."""
    return layer_offset(layers, hidden) + (hidden + 1) * LEVELS

