/* GRU gate math and the output softmax over rows of a batch, for float (suffix f) and double
 * (suffix d).
 *
 * Row layout as in gates.pxi: a row of a holds the 3H gate values [r, z, candidate]; rows of a
 * are `lda` elements apart, rows of the (rows, H) arrays H apart. With GCC on x86-64 each
 * function is compiled three times (baseline SSE2, x86-64-v3 with AVX2 and FMA, x86-64-v4 with
 * AVX-512) and the loader picks the best one for the CPU, so the default build runs on any
 * x86-64 and still uses wide vectors where they exist.
 */
#ifndef BLEKOTA_GATES_H
#define BLEKOTA_GATES_H

#include <math.h>
#include <stddef.h>

#include "fastmath.h"

#define BK_OUTPUTS 256 /* logits per row of the output layer */
#define BK_LANES 16    /* independent partial results in reductions, so that they vectorize */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BK_CLONES __attribute__((unused, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__)
#define BK_CLONES __attribute__((unused))
#else
#define BK_CLONES
#endif

/* Each function loops over rows and hands every row to an inline helper whose pointers are
 * restrict parameters: GCC trusts restrict on parameters, not on local pointers, and without it
 * two stores H apart into one row (which could overlap for H below the vector width) keep the
 * loop from being vectorized. */
#define BK_DEFINE_GATES(T, S, SIGMOID, TANH, EXP)                                                     \
static inline void bk_gates_rz_row_##S(T* restrict a, const T* restrict bias,                   \
                                       const T* restrict hp, T* restrict rh, ptrdiff_t H) {     \
    for (ptrdiff_t j = 0; j < 2 * H; j++)                                                        \
        a[j] = SIGMOID(a[j] + bias[j]);                                                          \
    for (ptrdiff_t j = 0; j < H; j++)                                                            \
        rh[j] = a[j] * hp[j];                                                                    \
}                                                                                                \
                                                                                                 \
/* a's r and z pre-activations (without bias) -> gates; rh = r * h_prev. */                      \
BK_CLONES static void bk_gates_rz_##S(T* a, ptrdiff_t lda, const T* bias, const T* h_prev,      \
                                      T* rh, ptrdiff_t H, ptrdiff_t rows) {                      \
    for (ptrdiff_t i = 0; i < rows; i++)                                                         \
        bk_gates_rz_row_##S(a + i * lda, bias, h_prev + i * H, rh + i * H, H);                   \
}                                                                                                \
                                                                                                 \
static inline void bk_candidate_row_##S(const T* restrict z, T* restrict c,                     \
                                        const T* restrict bias, const T* restrict hp,            \
                                        T* restrict hn, ptrdiff_t H) {                           \
    for (ptrdiff_t j = 0; j < H; j++) {                                                          \
        T cand = TANH(c[j] + bias[j]);                                                           \
        c[j] = cand;                                                                             \
        hn[j] = (1 - z[j]) * hp[j] + z[j] * cand;                                                \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
/* candidate = tanh(pre-activation + bias), in place; h_new = (1 - z) h_prev + z candidate. */   \
BK_CLONES static void bk_candidate_update_##S(T* a, ptrdiff_t lda, const T* bias,                \
                                              const T* h_prev, T* h_new, ptrdiff_t H,            \
                                              ptrdiff_t rows) {                                  \
    for (ptrdiff_t i = 0; i < rows; i++)                                                         \
        bk_candidate_row_##S(a + i * lda + H, a + i * lda + 2 * H, bias + 2 * H, h_prev + i * H, \
                             h_new + i * H, H);                                                  \
}                                                                                                \
                                                                                                 \
static inline void bk_backward_zc_row_##S(const T* restrict z, const T* restrict c,             \
                                          const T* restrict hp, const T* restrict up,            \
                                          T* restrict dn, T* restrict dz, T* restrict dc,        \
                                          ptrdiff_t H) {                                         \
    for (ptrdiff_t j = 0; j < H; j++) {                                                          \
        T dh = up[j] + dn[j];                                                                    \
        dc[j] = dh * z[j] * (1 - c[j] * c[j]);                                                   \
        dz[j] = dh * (c[j] - hp[j]) * z[j] * (1 - z[j]);                                         \
        dn[j] = dh * (1 - z[j]);                                                                 \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
/* Gate gradients of z and the candidate from dh = dh_above + dh_next; dh_next = dh (1 - z). */  \
BK_CLONES static void bk_backward_zc_##S(const T* a, const T* h_prev, const T* dh_above,         \
                                         T* dh_next, T* da, ptrdiff_t lda, ptrdiff_t H,          \
                                         ptrdiff_t rows) {                                       \
    for (ptrdiff_t i = 0; i < rows; i++)                                                         \
        bk_backward_zc_row_##S(a + i * lda + H, a + i * lda + 2 * H, h_prev + i * H,             \
                               dh_above + i * H, dh_next + i * H, da + i * lda + H,              \
                               da + i * lda + 2 * H, H);                                         \
}                                                                                                \
                                                                                                 \
static inline void bk_backward_r_row_##S(const T* restrict r, const T* restrict hp,             \
                                         const T* restrict drh, T* restrict dn,                  \
                                         T* restrict dr, ptrdiff_t H) {                          \
    for (ptrdiff_t j = 0; j < H; j++) {                                                          \
        dr[j] = drh[j] * hp[j] * r[j] * (1 - r[j]);                                              \
        dn[j] += drh[j] * r[j];                                                                  \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
/* Gate gradient of r from d(r * h_prev); adds r * d(rh) to dh_next. */                         \
BK_CLONES static void bk_backward_r_##S(const T* a, const T* h_prev, const T* d_rh, T* dh_next,  \
                                        T* da, ptrdiff_t lda, ptrdiff_t H, ptrdiff_t rows) {     \
    for (ptrdiff_t i = 0; i < rows; i++)                                                         \
        bk_backward_r_row_##S(a + i * lda, h_prev + i * H, d_rh + i * H, dh_next + i * H,        \
                              da + i * lda, H);                                                  \
}                                                                                                \
                                                                                                 \
static inline double bk_softmax_row_##S(T* restrict y, const T* restrict bias, int target,      \
                                        T scale, int gradient) {                                 \
    T part[BK_LANES], top, total = 0, factor;                                                    \
    for (int k = 0; k < BK_OUTPUTS; k++)                                                         \
        y[k] += bias[k];                                                                         \
    for (int u = 0; u < BK_LANES; u++)                                                           \
        part[u] = y[u];                                                                          \
    for (int k = BK_LANES; k < BK_OUTPUTS; k += BK_LANES)                                        \
        for (int u = 0; u < BK_LANES; u++)                                                       \
            part[u] = y[k + u] > part[u] ? y[k + u] : part[u];                                   \
    top = part[0];                                                                               \
    for (int u = 1; u < BK_LANES; u++)                                                           \
        top = part[u] > top ? part[u] : top;                                                     \
    for (int k = 0; k < BK_OUTPUTS; k++)                                                         \
        y[k] = EXP(y[k] - top);                                                                  \
    for (int u = 0; u < BK_LANES; u++)                                                           \
        part[u] = 0;                                                                             \
    for (int k = 0; k < BK_OUTPUTS; k += BK_LANES)                                               \
        for (int u = 0; u < BK_LANES; u++)                                                       \
            part[u] += y[k + u];                                                                 \
    for (int u = 0; u < BK_LANES; u++)                                                           \
        total += part[u];                                                                        \
    double nll = log((double)total) - log((double)y[target]);                                    \
    factor = (gradient ? scale : (T)1) / total;                                                  \
    for (int k = 0; k < BK_OUTPUTS; k++)                                                         \
        y[k] *= factor;                                                                          \
    if (gradient)                                                                                \
        y[target] -= scale;                                                                      \
    return nll;                                                                                  \
}                                                                                                \
                                                                                                 \
/* Rows of logits y (rows, 256) without bias -> probabilities in place, or, if gradient, the    \
 * loss gradient (p - onehot(target)) * scale. Returns the sum over the rows of -log p[target]. */\
BK_CLONES static double bk_softmax_rows_##S(T* y, const T* bias, const unsigned char* targets,   \
                                            ptrdiff_t rows, T scale, int gradient) {             \
    double nll = 0;                                                                              \
    for (ptrdiff_t i = 0; i < rows; i++)                                                         \
        nll += bk_softmax_row_##S(y + i * BK_OUTPUTS, bias, targets[i], scale, gradient);        \
    return nll;                                                                                  \
}

/* Ask for `bytes` from p to be brought into L2: rows that a later step will need, fetched while
 * this step's products keep the core busy. */
static inline void bk_prefetch(const void *p, ptrdiff_t bytes)
{
#if defined(__GNUC__)
    for (ptrdiff_t i = 0; i < bytes; i += 64)
        __builtin_prefetch((const char *)p + i, 0, 2);
#else
    (void)p;
    (void)bytes;
#endif
}

BK_DEFINE_GATES(float, f, bk_sigmoidf, bk_tanhf, bk_expf)
BK_DEFINE_GATES(double, d, bk_sigmoid, bk_tanh, bk_exp)

#endif
