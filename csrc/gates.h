/* GRU gate math over rows of a batch, for float (suffix f) and double (suffix d).
 *
 * Row layout as in gates.pxi: a row of a holds the 3H gate values [r, z, candidate]; rows of a
 * are `lda` elements apart, rows of the (rows, H) arrays H apart. With GCC on x86-64 each
 * function is compiled three times (baseline SSE2, x86-64-v3 with AVX2 and FMA, x86-64-v4 with
 * AVX-512) and the loader picks the best one for the CPU, so the default build runs on any
 * x86-64 and still uses wide vectors where they exist.
 */
#ifndef BLEKOTA_GATES_H
#define BLEKOTA_GATES_H

#include <stddef.h>

#include "fastmath.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BK_CLONES __attribute__((unused, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__)
#define BK_CLONES __attribute__((unused))
#else
#define BK_CLONES
#endif

#define BK_DEFINE_GATES(T, S, SIGMOID, TANH)                                                     \
/* a's r and z pre-activations (without bias) -> gates; rh = r * h_prev. */                      \
BK_CLONES static void bk_gates_rz_##S(T* a, ptrdiff_t lda, const T* bias, const T* h_prev,      \
                                      T* rh, ptrdiff_t H, ptrdiff_t rows) {                      \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                       \
        T* restrict ar = a + i * lda;                                                            \
        const T* restrict hp = h_prev + i * H;                                                   \
        T* restrict rhr = rh + i * H;                                                            \
        for (ptrdiff_t j = 0; j < 2 * H; j++)                                                    \
            ar[j] = SIGMOID(ar[j] + bias[j]);                                                    \
        for (ptrdiff_t j = 0; j < H; j++)                                                        \
            rhr[j] = ar[j] * hp[j];                                                              \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
/* candidate = tanh(pre-activation + bias), in place; h_new = (1 - z) h_prev + z candidate. */   \
BK_CLONES static void bk_candidate_update_##S(T* a, ptrdiff_t lda, const T* bias,                \
                                              const T* h_prev, T* h_new, ptrdiff_t H,            \
                                              ptrdiff_t rows) {                                  \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                       \
        T* restrict ar = a + i * lda;                                                            \
        const T* restrict hp = h_prev + i * H;                                                   \
        T* restrict hn = h_new + i * H;                                                          \
        for (ptrdiff_t j = 0; j < H; j++) {                                                      \
            T c = TANH(ar[2 * H + j] + bias[2 * H + j]);                                         \
            T z = ar[H + j];                                                                     \
            ar[2 * H + j] = c;                                                                   \
            hn[j] = (1 - z) * hp[j] + z * c;                                                     \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
/* Gate gradients of z and the candidate from dh = dh_above + dh_next; dh_next = dh (1 - z). */  \
BK_CLONES static void bk_backward_zc_##S(const T* a, const T* h_prev, const T* dh_above,         \
                                         T* dh_next, T* da, ptrdiff_t lda, ptrdiff_t H,          \
                                         ptrdiff_t rows) {                                       \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                       \
        const T* restrict ar = a + i * lda;                                                      \
        const T* restrict hp = h_prev + i * H;                                                   \
        const T* restrict up = dh_above + i * H;                                                 \
        T* restrict dn = dh_next + i * H;                                                        \
        T* restrict dar = da + i * lda;                                                          \
        for (ptrdiff_t j = 0; j < H; j++) {                                                      \
            T dh = up[j] + dn[j];                                                                \
            T z = ar[H + j];                                                                     \
            T c = ar[2 * H + j];                                                                 \
            dar[2 * H + j] = dh * z * (1 - c * c);                                               \
            dar[H + j] = dh * (c - hp[j]) * z * (1 - z);                                         \
            dn[j] = dh * (1 - z);                                                                \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
/* Gate gradient of r from d(r * h_prev); adds r * d(rh) to dh_next. */                         \
BK_CLONES static void bk_backward_r_##S(const T* a, const T* h_prev, const T* d_rh, T* dh_next,  \
                                        T* da, ptrdiff_t lda, ptrdiff_t H, ptrdiff_t rows) {     \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                       \
        const T* restrict ar = a + i * lda;                                                      \
        const T* restrict hp = h_prev + i * H;                                                   \
        const T* restrict drh = d_rh + i * H;                                                    \
        T* restrict dn = dh_next + i * H;                                                        \
        T* restrict dar = da + i * lda;                                                          \
        for (ptrdiff_t j = 0; j < H; j++) {                                                      \
            T r = ar[j];                                                                         \
            dar[j] = drh[j] * hp[j] * r * (1 - r);                                               \
            dn[j] += drh[j] * r;                                                                 \
        }                                                                                        \
    }                                                                                            \
}

BK_DEFINE_GATES(float, f, bk_sigmoidf, bk_tanhf)
BK_DEFINE_GATES(double, d, bk_sigmoid, bk_tanh)

#endif
