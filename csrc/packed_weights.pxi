# Included by _gru.pyx after its product helpers (share, slices, pack_part): the packed weights
# of a window and the threads' copies of the weight gradients.

# ---------------------------------------------------------------- packed weights, gradient parts
#
# float32 above the portable level runs every product with a weight matrix on a copy packed once
# per window (see packed_gemm.h), in one buffer: per layer the forward set [U_rz, U_c, Wx] (K = H
# rows each) and the backward set [U_rz^T, U_c^T, Wx^T] (Wx only above layer 0), then the
# output's [Wy, Wy^T]. All of it is packed at the start of a window, in one parallel region.
#
# Weight gradients are sums over the rows of the window: each thread sums its contiguous share of
# rows into its own copy of the gradient block (thread 0 into grads itself, the others into
# `partials`, `block` elements each), then reduce_parts adds the copies up. So every thread packs
# only its own rows for the products, and no operand is packed twice.

cdef inline Py_ssize_t packed_forward_size(Py_ssize_t H) noexcept nogil:
    """Floats of one layer's forward set of packed weights."""
    return bk_packed_w_size(H, 2 * H) + bk_packed_w_size(H, H) + bk_packed_w_size(H, 3 * H)


cdef inline Py_ssize_t packed_layer_size(Py_ssize_t H) noexcept nogil:
    """Floats of one layer's packed weights, both sets."""
    return (packed_forward_size(H) + bk_packed_w_size(2 * H, H) + bk_packed_w_size(H, H)
            + bk_packed_w_size(3 * H, H))


cdef inline Py_ssize_t packed_total_size(int L, Py_ssize_t H) noexcept nogil:
    return (L * packed_layer_size(H) + bk_packed_w_size(H, LEVELS)
            + bk_packed_w_size(LEVELS, H))


cdef void pack_weights(const floating* params, int L, Py_ssize_t H, bint backward, float* packed,
                       int threads, int part, bint bf16) noexcept nogil:
    """This thread's share of the packed weights (layout above; float only), the backward sets
    only if backward, each slice in bf16 pairs if bf16 (bf16_gemm.h: the same offsets)."""
    cdef Py_ssize_t G = 3 * H, X
    cdef int layer
    cdef const floating* WxT
    cdef const floating* UhT
    cdef float* dst
    for layer in range(L):
        X = LEVELS if layer == 0 else H
        WxT = params + layer_offset(layer, H)
        UhT = WxT + X * G
        dst = packed + layer * packed_layer_size(H)
        pack_part(UhT, G, False, H, 2 * H, threads, part, dst, bf16)
        dst += bk_packed_w_size(H, 2 * H)
        pack_part(UhT + 2 * H, G, False, H, H, threads, part, dst, bf16)
        dst += bk_packed_w_size(H, H)
        if layer > 0:
            pack_part(WxT, G, False, H, G, threads, part, dst, bf16)
        if backward:
            dst = packed + layer * packed_layer_size(H) + packed_forward_size(H)
            pack_part(UhT, G, True, 2 * H, H, threads, part, dst, bf16)
            dst += bk_packed_w_size(2 * H, H)
            pack_part(UhT + 2 * H, G, True, H, H, threads, part, dst, bf16)
            dst += bk_packed_w_size(H, H)
            if layer > 0:
                pack_part(WxT, G, True, G, H, threads, part, dst, bf16)
    dst = packed + L * packed_layer_size(H)
    WxT = params + layer_offset(L, H)
    pack_part(WxT, LEVELS, False, H, LEVELS, threads, part, dst, bf16)
    pack_part(WxT, LEVELS, True, LEVELS, H, threads, part, dst + bk_packed_w_size(H, LEVELS),
              bf16)


cdef inline floating* gradient_part(floating* grads, floating* partials, Py_ssize_t block,
                                    int part) noexcept nogil:
    """Where thread `part` sums its rows' share of the gradient block at grads."""
    return grads if part == 0 else partials + (part - 1) * block


cdef void reduce_parts(floating* grads, Py_ssize_t size, const floating* partials,
                       Py_ssize_t block, int threads, Py_ssize_t shares,
                       Py_ssize_t which) noexcept nogil:
    """Adds the other threads' copies into grads (size elements): share `which` of `shares`.
    Every element's sum runs in thread order, whoever computes it."""
    cdef Py_ssize_t lo = share(size, shares, which), hi = share(size, shares, which + 1), i
    cdef int other
    cdef const floating* copy
    if grads == NULL:
        return
    for other in range(1, threads):
        copy = partials + (other - 1) * block
        for i in range(lo, hi):
            grads[i] = grads[i] + copy[i]
