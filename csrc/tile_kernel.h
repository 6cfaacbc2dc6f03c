/* Register-tile matrix products on pre-packed weights (C, float, AVX2+FMA) for the sampling
 * kernels (csrc/sample_kernel.h); the training core has its own (csrc/packed_gemm.h).
 *
 * The weights of a product are packed once into column slices of 16: the tile kernels keep a
 * tile of up to 6 rows by 16 columns of C in 12 ymm accumulators and run over K, loading two
 * vectors of weights and broadcasting one input per row, so every weight load serves 6 rows.
 * The arithmetic of one row of C is the same in every kernel (k in order, one FMA per k).
 *
 * AVX2 code is compiled with target attributes and chosen at run time (bk_use_avx2), so the
 * default build needs no -march flag. Callers keep a portable path for other CPUs.
 */
#ifndef BLEKOTA_TILE_KERNEL_H
#define BLEKOTA_TILE_KERNEL_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define BK_X86 1
#include <immintrin.h>
#endif

#define BK_TILE 16 /* columns per packed slice and per tile */

#ifdef BK_X86
static int bk_use_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}


/* Tile products: C[r, 0:16] += X1[r] w[0:K1] + X2[r] w[K1:K1+K2] for rows
 * r < R (R <= 6), where w holds 16 columns per row, rows ldw apart, and row r of X1
 * starts at x1 + r * ldx1 (likewise X2). Six rows keep 12 accumulators in registers and use each
 * weight load 6 times (R = 4 and 1 cover the rest); a stream's arithmetic is the same in every kernel (k in order, FMA). */
__attribute__((target("avx2,fma"))) static void
bk_tile4_avx2(const float *w, ptrdiff_t K1, const float *x1, ptrdiff_t ldx1, ptrdiff_t K2,
              const float *x2, ptrdiff_t ldx2, float *c, ptrdiff_t ldc, ptrdiff_t ldw)
{
    __m256 a0 = _mm256_loadu_ps(c), b0 = _mm256_loadu_ps(c + 8);
    __m256 a1 = _mm256_loadu_ps(c + ldc), b1 = _mm256_loadu_ps(c + ldc + 8);
    __m256 a2 = _mm256_loadu_ps(c + 2 * ldc), b2 = _mm256_loadu_ps(c + 2 * ldc + 8);
    __m256 a3 = _mm256_loadu_ps(c + 3 * ldc), b3 = _mm256_loadu_ps(c + 3 * ldc + 8);
    const float *x = x1;
    ptrdiff_t K = K1, ld = ldx1;
    for (int part = 0; part < 2; part++) {
        for (ptrdiff_t i = 0; i < K; i++, w += ldw) {
            __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), v;
            v = _mm256_broadcast_ss(x + i);
            a0 = _mm256_fmadd_ps(v, w0, a0);
            b0 = _mm256_fmadd_ps(v, w1, b0);
            v = _mm256_broadcast_ss(x + ld + i);
            a1 = _mm256_fmadd_ps(v, w0, a1);
            b1 = _mm256_fmadd_ps(v, w1, b1);
            v = _mm256_broadcast_ss(x + 2 * ld + i);
            a2 = _mm256_fmadd_ps(v, w0, a2);
            b2 = _mm256_fmadd_ps(v, w1, b2);
            v = _mm256_broadcast_ss(x + 3 * ld + i);
            a3 = _mm256_fmadd_ps(v, w0, a3);
            b3 = _mm256_fmadd_ps(v, w1, b3);
        }
        x = x2;
        K = K2;
        ld = ldx2;
    }
    _mm256_storeu_ps(c, a0);
    _mm256_storeu_ps(c + 8, b0);
    _mm256_storeu_ps(c + ldc, a1);
    _mm256_storeu_ps(c + ldc + 8, b1);
    _mm256_storeu_ps(c + 2 * ldc, a2);
    _mm256_storeu_ps(c + 2 * ldc + 8, b2);
    _mm256_storeu_ps(c + 3 * ldc, a3);
    _mm256_storeu_ps(c + 3 * ldc + 8, b3);
}

__attribute__((target("avx2,fma"))) static void
bk_tile6_avx2(const float *w, ptrdiff_t K1, const float *x1, ptrdiff_t ldx1, ptrdiff_t K2,
              const float *x2, ptrdiff_t ldx2, float *c, ptrdiff_t ldc, ptrdiff_t ldw)
{
    __m256 a0 = _mm256_loadu_ps(c), b0 = _mm256_loadu_ps(c + 8);
    __m256 a1 = _mm256_loadu_ps(c + ldc), b1 = _mm256_loadu_ps(c + ldc + 8);
    __m256 a2 = _mm256_loadu_ps(c + 2 * ldc), b2 = _mm256_loadu_ps(c + 2 * ldc + 8);
    __m256 a3 = _mm256_loadu_ps(c + 3 * ldc), b3 = _mm256_loadu_ps(c + 3 * ldc + 8);
    __m256 a4 = _mm256_loadu_ps(c + 4 * ldc), b4 = _mm256_loadu_ps(c + 4 * ldc + 8);
    __m256 a5 = _mm256_loadu_ps(c + 5 * ldc), b5 = _mm256_loadu_ps(c + 5 * ldc + 8);
    const float *x = x1;
    ptrdiff_t K = K1, ld = ldx1;
    for (int part = 0; part < 2; part++) {
        for (ptrdiff_t i = 0; i < K; i++, w += ldw) {
            __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), v;
            v = _mm256_broadcast_ss(x + i);
            a0 = _mm256_fmadd_ps(v, w0, a0);
            b0 = _mm256_fmadd_ps(v, w1, b0);
            v = _mm256_broadcast_ss(x + ld + i);
            a1 = _mm256_fmadd_ps(v, w0, a1);
            b1 = _mm256_fmadd_ps(v, w1, b1);
            v = _mm256_broadcast_ss(x + 2 * ld + i);
            a2 = _mm256_fmadd_ps(v, w0, a2);
            b2 = _mm256_fmadd_ps(v, w1, b2);
            v = _mm256_broadcast_ss(x + 3 * ld + i);
            a3 = _mm256_fmadd_ps(v, w0, a3);
            b3 = _mm256_fmadd_ps(v, w1, b3);
            v = _mm256_broadcast_ss(x + 4 * ld + i);
            a4 = _mm256_fmadd_ps(v, w0, a4);
            b4 = _mm256_fmadd_ps(v, w1, b4);
            v = _mm256_broadcast_ss(x + 5 * ld + i);
            a5 = _mm256_fmadd_ps(v, w0, a5);
            b5 = _mm256_fmadd_ps(v, w1, b5);
        }
        x = x2;
        K = K2;
        ld = ldx2;
    }
    _mm256_storeu_ps(c, a0);
    _mm256_storeu_ps(c + 8, b0);
    _mm256_storeu_ps(c + ldc, a1);
    _mm256_storeu_ps(c + ldc + 8, b1);
    _mm256_storeu_ps(c + 2 * ldc, a2);
    _mm256_storeu_ps(c + 2 * ldc + 8, b2);
    _mm256_storeu_ps(c + 3 * ldc, a3);
    _mm256_storeu_ps(c + 3 * ldc + 8, b3);
    _mm256_storeu_ps(c + 4 * ldc, a4);
    _mm256_storeu_ps(c + 4 * ldc + 8, b4);
    _mm256_storeu_ps(c + 5 * ldc, a5);
    _mm256_storeu_ps(c + 5 * ldc + 8, b5);
}

__attribute__((target("avx2,fma"))) static void
bk_tile1_avx2(const float *w, ptrdiff_t K1, const float *x1, ptrdiff_t K2, const float *x2,
              float *c, ptrdiff_t ldw)
{
    __m256 a0 = _mm256_loadu_ps(c), b0 = _mm256_loadu_ps(c + 8);
    for (ptrdiff_t i = 0; i < K1; i++, w += ldw) {
        __m256 v = _mm256_broadcast_ss(x1 + i);
        a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w), a0);
        b0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 8), b0);
    }
    for (ptrdiff_t i = 0; i < K2; i++, w += ldw) {
        __m256 v = _mm256_broadcast_ss(x2 + i);
        a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w), a0);
        b0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 8), b0);
    }
    _mm256_storeu_ps(c, a0);
    _mm256_storeu_ps(c + 8, b0);
}

static void bk_tile_avx2(int R, const float *w, ptrdiff_t K1, const float *x1, ptrdiff_t ldx1,
                         ptrdiff_t K2, const float *x2, ptrdiff_t ldx2, float *c, ptrdiff_t ldc,
                         ptrdiff_t ldw)
{
    if (R == 6) {
        bk_tile6_avx2(w, K1, x1, ldx1, K2, x2, ldx2, c, ldc, ldw);
        return;
    }
    if (R == 4) {
        bk_tile4_avx2(w, K1, x1, ldx1, K2, x2, ldx2, c, ldc, ldw);
        return;
    }
    for (int r = 0; r < R; r++)
        bk_tile1_avx2(w, K1, x1 + r * ldx1, K2, x2 + r * ldx2, c + r * ldc, ldw);
}

#endif /* BK_X86: elsewhere callers use portable code */

#endif /* BLEKOTA_TILE_KERNEL_H */
