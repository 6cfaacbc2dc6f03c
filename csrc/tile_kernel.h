/* Register-tile matrix products on pre-packed weights (C, float, AVX2+FMA), shared by the
 * sampling kernels (csrc/sample_kernel.h) and the training core (csrc/_gru.pyx).
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


/* Packed layout for training (bk_pack16_f): B (K, N) as ceil(N / 16) slices of 16 columns, each
 * slice K rows of 16 contiguous floats (row stride BK_TILE), zero past column N. */
static inline ptrdiff_t bk_packed16_size(ptrdiff_t K, ptrdiff_t N)
{
    return K * ((N + BK_TILE - 1) / BK_TILE * BK_TILE);
}

/* Slices s0..s1-1 of B packed into dst (the whole packed array), where B[k, n] =
 * src[k * ld + n], or src[n * ld + k] if trans. */
static inline void bk_pack16_f(const float *src, ptrdiff_t ld, int trans, ptrdiff_t K, ptrdiff_t N,
                      ptrdiff_t s0, ptrdiff_t s1, float *dst)
{
    for (ptrdiff_t s = s0; s < s1; s++) {
        float *d = dst + s * K * BK_TILE;
        ptrdiff_t n0 = s * BK_TILE, cols = N - n0 < BK_TILE ? N - n0 : BK_TILE;
        for (ptrdiff_t k = 0; k < K; k++, d += BK_TILE) {
            for (ptrdiff_t j = 0; j < cols; j++)
                d[j] = trans ? src[(n0 + j) * ld + k] : src[k * ld + n0 + j];
            for (ptrdiff_t j = cols; j < BK_TILE; j++)
                d[j] = 0.0f;
        }
    }
}

/* C (M, N; row stride ldc) += X (M, K; row stride ldx) times B packed by bk_pack16_f, in tiles
 * of up to 6 rows by 16 columns (a slice of B stays in L1 while the row tiles pass over it).
 * AVX2+FMA only: check bk_use_avx2() first. */
static inline void bk_gemm16_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                             ptrdiff_t ldx, const float *packed, float *c, ptrdiff_t ldc)
{
    float tmp[6 * BK_TILE];
    for (ptrdiff_t n0 = 0; n0 < N; n0 += BK_TILE, packed += K * BK_TILE) {
        ptrdiff_t cols = N - n0 < BK_TILE ? N - n0 : BK_TILE;
        for (ptrdiff_t r = 0, R; r < M; r += R) {
            R = M - r;
            R = R >= 6 && R != 8 ? 6 : R >= 4 ? 4 : R;
            const float *xr = x + r * ldx;
            float *cr = c + r * ldc + n0;
            if (cols == BK_TILE) {
                bk_tile_avx2((int)R, packed, K, xr, ldx, 0, xr, ldx, cr, ldc, BK_TILE);
                continue;
            }
            /* the last, partial slice: through a full-width copy of the tile */
            for (ptrdiff_t i = 0; i < R; i++) {
                memcpy(tmp + i * BK_TILE, cr + i * ldc, cols * sizeof(float));
                memset(tmp + i * BK_TILE + cols, 0, (BK_TILE - cols) * sizeof(float));
            }
            bk_tile_avx2((int)R, packed, K, xr, ldx, 0, xr, ldx, tmp, BK_TILE, BK_TILE);
            for (ptrdiff_t i = 0; i < R; i++)
                memcpy(cr + i * ldc, tmp + i * BK_TILE, cols * sizeof(float));
        }
    }
}

static inline int bk_packed_gemm_available(void) { return bk_use_avx2(); }

#else /* not x86: callers use BLAS */

static inline int bk_packed_gemm_available(void) { return 0; }
static inline ptrdiff_t bk_packed16_size(ptrdiff_t K, ptrdiff_t N) { return K * ((N + BK_TILE - 1) / BK_TILE * BK_TILE); }
static inline void bk_pack16_f(const float *src, ptrdiff_t ld, int trans, ptrdiff_t K, ptrdiff_t N,
                      ptrdiff_t s0, ptrdiff_t s1, float *dst) {}
static inline void bk_gemm16_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                             ptrdiff_t ldx, const float *packed, float *c, ptrdiff_t ldc) {}

#endif /* BK_X86 */

#endif /* BLEKOTA_TILE_KERNEL_H */
