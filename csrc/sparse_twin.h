/* The block-sparse one-stream sampler: a twins.h template (format in sparse_kernel.h). The int8
 * products exist for float only. The layer 0 table, the biases and the output panels are read
 * from the dense sampler's packed weights (sample_kernel.h). */
#ifndef BK_DISPATCH

/* acc (4 groups of 8 columns) += the set's n padded blocks per group times [x (Kx rows), v]:
 * each column's terms in increasing row order (then zeros), one multiply-add each, as the dense
 * kernel adds them. */
BK_FN inline __attribute__((always_inline)) void BK_NAME(bk_sparse_set)(const int32_t *rows, ptrdiff_t n, const BK_REAL *w,
                                   ptrdiff_t Kx, const BK_REAL *x, const BK_REAL *v,
                                   BK_REAL acc[BK_GROUPS][BK_BLOCK_COLUMNS])
{
#if BK_IS_FLOAT && BK_LEVEL != BK_PORTABLE
    /* the four chains in registers, their multiply-adds interleaved row by row */
    __m256 a0 = _mm256_loadu_ps(acc[0]), a1 = _mm256_loadu_ps(acc[1]);
    __m256 a2 = _mm256_loadu_ps(acc[2]), a3 = _mm256_loadu_ps(acc[3]);
    for (ptrdiff_t b = 0; b < n; b++, rows += BK_GROUPS, w += 4 * 32) {
        const float *i0 = rows[0] < Kx ? x + rows[0] : v + (rows[0] - Kx);
        const float *i1 = rows[1] < Kx ? x + rows[1] : v + (rows[1] - Kx);
        const float *i2 = rows[2] < Kx ? x + rows[2] : v + (rows[2] - Kx);
        const float *i3 = rows[3] < Kx ? x + rows[3] : v + (rows[3] - Kx);
        for (int i = 0; i < BK_BLOCK_ROWS; i++) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(i0 + i), _mm256_loadu_ps(w + 8 * i), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(i1 + i), _mm256_loadu_ps(w + 32 + 8 * i), a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(i2 + i), _mm256_loadu_ps(w + 64 + 8 * i), a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(i3 + i), _mm256_loadu_ps(w + 96 + 8 * i), a3);
        }
    }
    _mm256_storeu_ps(acc[0], a0);
    _mm256_storeu_ps(acc[1], a1);
    _mm256_storeu_ps(acc[2], a2);
    _mm256_storeu_ps(acc[3], a3);
#else
    for (ptrdiff_t b = 0; b < n; b++, rows += BK_GROUPS)
        for (int k = 0; k < BK_GROUPS; k++, w += BK_BLOCK_ROWS * BK_BLOCK_COLUMNS) {
            const BK_REAL *in = rows[k] < Kx ? x + rows[k] : v + (rows[k] - Kx);
            for (int i = 0; i < BK_BLOCK_ROWS; i++)
                for (int j = 0; j < BK_BLOCK_COLUMNS; j++)
                    acc[k][j] += in[i] * w[BK_BLOCK_COLUMNS * i + j];
        }
#endif
}

/* out (columns) = init + one product over [x (Kx rows), v], in sets of four groups of 8
 * columns (each set's groups at the columns its index names), advancing the walk. Float: v and
 * x as they are. Int8 (walk->bytes set): q holds q(x) in its first Kx bytes and q(v) after them. */
BK_FN void BK_NAME(bk_sparse_product)(BK_TWIN(bk_walk) *walk, ptrdiff_t columns,
                                       const BK_REAL *init, ptrdiff_t Kx, const BK_REAL *x,
                                       const BK_REAL *v, const uint8_t *q, BK_REAL *out)
{
    const ptrdiff_t width = BK_GROUPS * BK_BLOCK_COLUMNS, block = BK_BLOCK_ROWS * BK_BLOCK_COLUMNS;
#if BK_IS_FLOAT
    bk_int8_set_fn set = walk->bytes ? bk_int8_set() : NULL;
#endif
    for (ptrdiff_t g = 0; g < columns; g += width) {
        ptrdiff_t n = *walk->index++;
        const int32_t *first = walk->index, *rows = first + BK_GROUPS;
        walk->index += BK_GROUPS * (n + 1);
#if BK_IS_FLOAT
        if (set) {
            int32_t sum[BK_GROUPS * BK_BLOCK_COLUMNS];
            set(rows, n, q, walk->bytes, sum);
            for (int k = 0; k < BK_GROUPS; k++) {
                const int32_t *group_sum = sum + BK_BLOCK_COLUMNS * k;
                const int32_t *offset = walk->offset + BK_BLOCK_COLUMNS * k;
                const float *scale = walk->scale + BK_BLOCK_COLUMNS * k;
#if BK_LEVEL != BK_PORTABLE
                __m256i terms = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)group_sum),
                                                 _mm256_loadu_si256((const __m256i *)offset));
                _mm256_storeu_ps(out + first[k], _mm256_fmadd_ps(_mm256_cvtepi32_ps(terms), _mm256_loadu_ps(scale),
                                                                 _mm256_loadu_ps(init + first[k])));
#else
                for (int j = 0; j < BK_BLOCK_COLUMNS; j++)
                    out[first[k] + j] = init[first[k] + j] + (float)(group_sum[j] - offset[j]) * scale[j];
#endif
            }
            walk->bytes += BK_GROUPS * n * block;
            walk->scale += width;
            walk->offset += width;
            continue;
        }
#else
        (void)q;
#endif
        BK_REAL acc[BK_GROUPS][BK_BLOCK_COLUMNS];
        for (int k = 0; k < BK_GROUPS; k++)
            memcpy(acc[k], init + first[k], sizeof acc[k]);
        BK_NAME(bk_sparse_set)(rows, n, walk->weights, Kx, x, v, acc);
        for (int k = 0; k < BK_GROUPS; k++)
            memcpy(out + first[k], acc[k], sizeof acc[k]);
        walk->weights += BK_GROUPS * n * block;
    }
}

/* n steps of one stream on one thread, as bk_run_one (sample_twin.h) with the same arguments
 * (cond included), the products read from `start` (the walk's beginning: float weights, or int8
 * when its bytes are set). scratch: 7 Hp + 256 elements; bytes: 4 Hp. */
BK_FN void BK_NAME(bk_run_sparse)(const BK_TWIN(bk_walk) *start, const BK_REAL *packed,
                                   int layers, ptrdiff_t H, const BK_REAL *cond, BK_REAL *h,
                                   BK_REAL *scratch,
                                   uint8_t *bytes, int *level, unsigned char *out,
                                   BK_REAL *means, ptrdiff_t n,
                                   const unsigned char *hint, ptrdiff_t n_hint,
                                   const double *uniform, BK_REAL *probs, ptrdiff_t n_probs,
                                   const bk_sampling *how)
{
    ptrdiff_t Hp = bk_padded(H);
    BK_REAL *a = scratch, *rh = a + 2 * Hp, *c = rh + Hp, *logits = c + Hp;
    BK_REAL *shifted = logits + BK_LEVELS; /* layer 0's table row plus cond (3 Hp) */
    uint8_t *q_xh = bytes, *q_xrh = bytes + 2 * Hp; /* [q(x), q(h)] and [q(x), q(r h)] */
    const BK_REAL *wy = packed + bk_packed_offset(layers, Hp), *by = wy + Hp * BK_LEVELS;
    int lvl = *level, int8 = start->bytes != NULL;
    ptrdiff_t quiet = how->wake_after > 0 ? how->quiet[0] : 0;
    for (ptrdiff_t t = 0; t < n; t++) {
        BK_TWIN(bk_walk) walk = *start;
        for (int layer = 0; layer < layers; layer++) {
            const BK_REAL *base = packed + bk_packed_offset(layer, Hp);
            const BK_REAL *init = layer == 0 ? base + (ptrdiff_t)lvl * 3 * Hp : base;
            if (layer == 0 && cond) {
                memcpy(shifted, init, (size_t)(3 * Hp) * sizeof(BK_REAL));
                BK_NAME(bk_add)(shifted, cond, 3 * Hp);
                init = shifted;
            }
            const BK_REAL *x = layer == 0 ? NULL : h + (layer - 1) * Hp;
            ptrdiff_t Kx = layer == 0 ? 0 : Hp;
            BK_REAL *hl = h + layer * Hp;
#if BK_IS_FLOAT
            if (int8) {
                if (layer > 0) {
                    bk_quantize_u8(x, q_xh, Hp);
                    memcpy(q_xrh, q_xh, (size_t)Hp);
                }
                bk_quantize_u8(hl, q_xh + Kx, Hp);
            }
#endif
            BK_NAME(bk_sparse_product)(&walk, 2 * Hp, init, Kx, x, hl, q_xh, a);
            BK_NAME(bk_sigmoid)(a, 2 * Hp);
            for (ptrdiff_t j = 0; j < Hp; j++)
                rh[j] = a[j] * hl[j];
#if BK_IS_FLOAT
            if (int8)
                bk_quantize_u8(rh, q_xrh + Kx, Hp);
#endif
            BK_NAME(bk_sparse_product)(&walk, Hp, init + 2 * Hp, Kx, x, rh, q_xrh, c);
            BK_NAME(bk_tanh)(c, Hp);
            BK_NAME(bk_update)(hl, a + Hp, c, Hp);
        }
#if BK_IS_FLOAT
        if (int8) {
            bk_quantize_u8(h + (layers - 1) * Hp, q_xh, Hp);
            BK_NAME(bk_sparse_product)(&walk, BK_LEVELS, by, 0, NULL, NULL, q_xh, logits);
        } else
#endif
        for (ptrdiff_t o = 0; o < BK_LEVELS / BK_PANEL; o++) {
            BK_REAL *y = logits + o * BK_PANEL;
            memcpy(y, by + o * BK_PANEL, BK_PANEL * sizeof(BK_REAL));
            BK_NAME(bk_panel)(wy + o * Hp * BK_PANEL, 0, NULL, Hp, h + (layers - 1) * Hp, y);
        }
        double mean, unused;
        int drawn;
        if (t < n_hint) {
            drawn = hint[t];
            mean = how->values[drawn];
            if (t < n_probs)
                BK_NAME(bk_softmax_draw)(logits, how, 0.0, 1, &unused);
        } else {
            drawn = BK_NAME(bk_softmax_draw)(logits, how, uniform[t], t < n_probs, &mean);
        }
        lvl = bk_heard(how, drawn, t < n_hint ? 0.0 : uniform[t], t < n_hint, &quiet);
        if (t < n_probs)
            memcpy(probs + t * BK_LEVELS, logits, BK_LEVELS * sizeof(BK_REAL));
        out[t] = (unsigned char)drawn;
        means[t] = (BK_REAL)mean;
    }
    *level = lvl;
    if (how->wake_after > 0)
        how->quiet[0] = quiet;
#if !BK_IS_FLOAT
    (void)int8;
    (void)q_xrh;
#endif
}

#else /* the dispatchers: the version of the level in use */

static inline void BK_TWIN(bk_run_sparse)(const BK_TWIN(bk_walk) *start, const BK_REAL *packed,
                                          int layers, ptrdiff_t H, const BK_REAL *cond,
                                          BK_REAL *h, BK_REAL *scratch,
                                          uint8_t *bytes, int *level, unsigned char *out,
                                          BK_REAL *means, ptrdiff_t n, const unsigned char *hint,
                                          ptrdiff_t n_hint, const double *uniform,
                                          BK_REAL *probs, ptrdiff_t n_probs,
                                          const bk_sampling *how)
{
    BK_PICK(BK_TWIN(bk_run_sparse))(start, packed, layers, H, cond, h, scratch, bytes, level, out,
                                    means, n, hint, n_hint, uniform, probs, n_probs, how);
}

#endif
