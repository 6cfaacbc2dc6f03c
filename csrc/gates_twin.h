/* GRU gate math, the output softmax over rows of a batch and whole-array exp/tanh/sigmoid: a
 * twins.h template (see gates.h).
 *
 * Row layout as in gates.pxi: a row of a holds the 3H gate values [r, z, candidate]; rows of a
 * are `lda` elements apart, rows of the (rows, H) arrays H apart. Each function loops over rows
 * and hands every row to an inline helper whose pointers are restrict parameters: GCC trusts
 * restrict on parameters, not on local pointers, and without it two stores H apart into one row
 * (which could overlap for H below the vector width) keep the loop from being vectorized.
 */
#ifndef BK_DISPATCH

#if BK_IS_FLOAT
#define BK_SIGMOID bk_sigmoidf
#define BK_TANH bk_tanhf
#define BK_EXP bk_expf
#else
#define BK_SIGMOID bk_sigmoid
#define BK_TANH bk_tanh
#define BK_EXP bk_exp
#endif

BK_FN inline void BK_NAME(bk_gates_rz_row)(BK_REAL *restrict a, const BK_REAL *restrict bias,
                                           const BK_REAL *restrict hp, BK_REAL *restrict rh,
                                           ptrdiff_t H)
{
    for (ptrdiff_t j = 0; j < 2 * H; j++)
        a[j] = BK_SIGMOID(a[j] + bias[j]);
    for (ptrdiff_t j = 0; j < H; j++)
        rh[j] = a[j] * hp[j];
}

/* a's r and z pre-activations (without bias) -> gates; rh = r * h_prev. */
BK_FN void BK_NAME(bk_gates_rz)(BK_REAL *a, ptrdiff_t lda, const BK_REAL *bias,
                                const BK_REAL *h_prev, BK_REAL *rh, ptrdiff_t H, ptrdiff_t rows)
{
    for (ptrdiff_t i = 0; i < rows; i++)
        BK_NAME(bk_gates_rz_row)(a + i * lda, bias, h_prev + i * H, rh + i * H, H);
}

BK_FN inline void BK_NAME(bk_candidate_row)(const BK_REAL *restrict z, BK_REAL *restrict c,
                                            const BK_REAL *restrict bias,
                                            const BK_REAL *restrict hp, BK_REAL *restrict hn,
                                            ptrdiff_t H)
{
    for (ptrdiff_t j = 0; j < H; j++) {
        BK_REAL cand = BK_TANH(c[j] + bias[j]);
        c[j] = cand;
        hn[j] = (1 - z[j]) * hp[j] + z[j] * cand;
    }
}

/* candidate = tanh(pre-activation + bias), in place; h_new = (1 - z) h_prev + z candidate. */
BK_FN void BK_NAME(bk_candidate_update)(BK_REAL *a, ptrdiff_t lda, const BK_REAL *bias,
                                        const BK_REAL *h_prev, BK_REAL *h_new, ptrdiff_t H,
                                        ptrdiff_t rows)
{
    for (ptrdiff_t i = 0; i < rows; i++)
        BK_NAME(bk_candidate_row)(a + i * lda + H, a + i * lda + 2 * H, bias + 2 * H,
                                  h_prev + i * H, h_new + i * H, H);
}

BK_FN inline void BK_NAME(bk_backward_zc_row)(const BK_REAL *restrict z,
                                              const BK_REAL *restrict c,
                                              const BK_REAL *restrict hp,
                                              const BK_REAL *restrict up, BK_REAL *restrict dn,
                                              BK_REAL *restrict dz, BK_REAL *restrict dc,
                                              ptrdiff_t H)
{
    for (ptrdiff_t j = 0; j < H; j++) {
        BK_REAL dh = up[j] + dn[j];
        dc[j] = dh * z[j] * (1 - c[j] * c[j]);
        dz[j] = dh * (c[j] - hp[j]) * z[j] * (1 - z[j]);
        dn[j] = dh * (1 - z[j]);
    }
}

/* Gate gradients of z and the candidate from dh = dh_above + dh_next; dh_next = dh (1 - z). */
BK_FN void BK_NAME(bk_backward_zc)(const BK_REAL *a, const BK_REAL *h_prev,
                                   const BK_REAL *dh_above, BK_REAL *dh_next, BK_REAL *da,
                                   ptrdiff_t lda, ptrdiff_t H, ptrdiff_t rows)
{
    for (ptrdiff_t i = 0; i < rows; i++)
        BK_NAME(bk_backward_zc_row)(a + i * lda + H, a + i * lda + 2 * H, h_prev + i * H,
                                    dh_above + i * H, dh_next + i * H, da + i * lda + H,
                                    da + i * lda + 2 * H, H);
}

BK_FN inline void BK_NAME(bk_backward_r_row)(const BK_REAL *restrict r,
                                             const BK_REAL *restrict hp,
                                             const BK_REAL *restrict drh, BK_REAL *restrict dn,
                                             BK_REAL *restrict dr, ptrdiff_t H)
{
    for (ptrdiff_t j = 0; j < H; j++) {
        dr[j] = drh[j] * hp[j] * r[j] * (1 - r[j]);
        dn[j] += drh[j] * r[j];
    }
}

/* Gate gradient of r from d(r * h_prev); adds r * d(rh) to dh_next. */
BK_FN void BK_NAME(bk_backward_r)(const BK_REAL *a, const BK_REAL *h_prev, const BK_REAL *d_rh,
                                  BK_REAL *dh_next, BK_REAL *da, ptrdiff_t lda, ptrdiff_t H,
                                  ptrdiff_t rows)
{
    for (ptrdiff_t i = 0; i < rows; i++)
        BK_NAME(bk_backward_r_row)(a + i * lda, h_prev + i * H, d_rh + i * H, dh_next + i * H,
                                   da + i * lda, H);
}

BK_FN inline double BK_NAME(bk_softmax_row)(BK_REAL *restrict y, const BK_REAL *restrict bias,
                                            int target, BK_REAL scale, int gradient)
{
    BK_REAL part[BK_LANES], top, total = 0, factor;
    for (int k = 0; k < BK_OUTPUTS; k++)
        y[k] += bias[k];
    for (int u = 0; u < BK_LANES; u++)
        part[u] = y[u];
    for (int k = BK_LANES; k < BK_OUTPUTS; k += BK_LANES)
        for (int u = 0; u < BK_LANES; u++)
            part[u] = y[k + u] > part[u] ? y[k + u] : part[u];
    top = part[0];
    for (int u = 1; u < BK_LANES; u++)
        top = part[u] > top ? part[u] : top;
    for (int k = 0; k < BK_OUTPUTS; k++)
        y[k] = BK_EXP(y[k] - top);
    for (int u = 0; u < BK_LANES; u++)
        part[u] = 0;
    for (int k = 0; k < BK_OUTPUTS; k += BK_LANES)
        for (int u = 0; u < BK_LANES; u++)
            part[u] += y[k + u];
    for (int u = 0; u < BK_LANES; u++)
        total += part[u];
    double nll = log((double)total) - log((double)y[target]);
    factor = (gradient ? scale : (BK_REAL)1) / total;
    for (int k = 0; k < BK_OUTPUTS; k++)
        y[k] *= factor;
    if (gradient)
        y[target] -= scale;
    return nll;
}

/* Rows of logits y (rows, 256) without bias -> probabilities in place, or, if gradient, the
 * loss gradient (p - onehot(target)) * scale. Returns the sum over the rows of -log p[target]. */
BK_FN double BK_NAME(bk_softmax_rows)(BK_REAL *y, const BK_REAL *bias,
                                      const unsigned char *targets, ptrdiff_t rows,
                                      BK_REAL scale, int gradient)
{
    double nll = 0;
    for (ptrdiff_t i = 0; i < rows; i++)
        nll += BK_NAME(bk_softmax_row)(y + i * BK_OUTPUTS, bias, targets[i], scale, gradient);
    return nll;
}

/* out[i] = f(x[i]) for f = exp (which 0), tanh (1) or sigmoid (2): fastmath.h over an array. */
BK_FN void BK_NAME(bk_vmath)(int which, const BK_REAL *restrict x, BK_REAL *restrict out,
                             ptrdiff_t n)
{
    if (which == 0)
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = BK_EXP(x[i]);
    else if (which == 1)
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = BK_TANH(x[i]);
    else
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = BK_SIGMOID(x[i]);
}

#undef BK_SIGMOID
#undef BK_TANH
#undef BK_EXP

#else /* the dispatchers: the version of the level in use */

static inline void BK_TWIN(bk_gates_rz)(BK_REAL *a, ptrdiff_t lda, const BK_REAL *bias,
                                 const BK_REAL *h_prev, BK_REAL *rh, ptrdiff_t H, ptrdiff_t rows)
{
    BK_PICK(BK_TWIN(bk_gates_rz))(a, lda, bias, h_prev, rh, H, rows);
}

static inline void BK_TWIN(bk_candidate_update)(BK_REAL *a, ptrdiff_t lda, const BK_REAL *bias,
                                         const BK_REAL *h_prev, BK_REAL *h_new, ptrdiff_t H,
                                         ptrdiff_t rows)
{
    BK_PICK(BK_TWIN(bk_candidate_update))(a, lda, bias, h_prev, h_new, H, rows);
}

static inline void BK_TWIN(bk_backward_zc)(const BK_REAL *a, const BK_REAL *h_prev,
                                    const BK_REAL *dh_above, BK_REAL *dh_next, BK_REAL *da,
                                    ptrdiff_t lda, ptrdiff_t H, ptrdiff_t rows)
{
    BK_PICK(BK_TWIN(bk_backward_zc))(a, h_prev, dh_above, dh_next, da, lda, H, rows);
}

static inline void BK_TWIN(bk_backward_r)(const BK_REAL *a, const BK_REAL *h_prev,
                                          const BK_REAL *d_rh, BK_REAL *dh_next, BK_REAL *da,
                                          ptrdiff_t lda, ptrdiff_t H, ptrdiff_t rows)
{
    BK_PICK(BK_TWIN(bk_backward_r))(a, h_prev, d_rh, dh_next, da, lda, H, rows);
}

static inline double BK_TWIN(bk_softmax_rows)(BK_REAL *y, const BK_REAL *bias,
                                       const unsigned char *targets, ptrdiff_t rows,
                                       BK_REAL scale, int gradient)
{
    return BK_PICK(BK_TWIN(bk_softmax_rows))(y, bias, targets, rows, scale, gradient);
}

static inline void BK_TWIN(bk_vmath)(int which, const BK_REAL *x, BK_REAL *out, ptrdiff_t n)
{
    BK_PICK(BK_TWIN(bk_vmath))(which, x, out, n);
}

#endif
