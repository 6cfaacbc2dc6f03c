/* Matrix products of the float32 training core on packed operands (C; AVX-512 or AVX2+FMA,
 * chosen at run time), included from csrc/_gru.pyx.
 *
 * Two drivers cover every matrix product of a training window:
 *   bk_gemm_xw_f  C (M, N) (+)= X (M, K) W, W packed once per window (bk_pack_w_f): the per-step
 *                 recurrent products and the whole-window products with a weight matrix (input
 *                 projections, logits, the gradients of a layer's input and of the top h).
 *   bk_gemm_tn_f  C (M, N) (+)= A^T B for activations A (K, M) and B (K, N), B packed block by
 *                 block into scratch: the weight gradients, sums over the rows of a window.
 * Packed W: ceil(N / 16) slices of 16 columns, each K rows of 16 contiguous floats, zero past
 * column N. Both drivers run register tiles over K: AVX-512 up to 10 rows by 32 columns (20 zmm
 * accumulators), AVX2 up to 6 rows by 16 columns (12 ymm accumulators); per k a tile loads one
 * 16-wide vector of W per slice, used by every row, and broadcasts one X value per row.
 * Every element of C receives its K terms in order, one FMA each, so both instruction sets give
 * bit-identical results.
 *
 * AVX code is compiled with target attributes and chosen at run time (bk_gemm_level), so the
 * default build needs no -march flag. Callers keep a BLAS path for other CPUs and for double.
 */
#ifndef BLEKOTA_PACKED_GEMM_H
#define BLEKOTA_PACKED_GEMM_H

#include <stddef.h>
#include <string.h>

#define BK_SLICE 16      /* columns per packed slice */
#define BK_KC 256        /* rows of B that bk_gemm_tn_f packs at a time */
#define BK_NC 256        /* columns of B that bk_gemm_tn_f packs at a time */
#define BK_ROW_BLOCK 96  /* rows of X per block in bk_gemm_xw_f (a block stays in L2) */
#define BK_MAX_ROWS 10   /* rows of the largest tile */
#define BK_PREFETCH_ROWS 8  /* bk_gemm_tn_f asks for rows of B this far ahead while packing */

enum { BK_LEVEL_NONE = 0, BK_LEVEL_AVX2 = 1, BK_LEVEL_AVX512 = 2 };

/* Elements of W (K, N) packed by bk_pack_w_f. */
static inline ptrdiff_t bk_packed_w_size(ptrdiff_t K, ptrdiff_t N)
{
    return K * ((N + BK_SLICE - 1) / BK_SLICE * BK_SLICE);
}

/* Slices s0..s1-1 of W (K, N) packed into dst (the whole packed array), where
 * W[k, n] = src[k * ld + n], or src[n * ld + k] if trans. */
static inline void bk_pack_w_f(const float *src, ptrdiff_t ld, int trans, ptrdiff_t K,
                               ptrdiff_t N, ptrdiff_t s0, ptrdiff_t s1, float *dst)
{
    for (ptrdiff_t s = s0; s < s1; s++) {
        float *d = dst + s * K * BK_SLICE;
        ptrdiff_t n0 = s * BK_SLICE, cols = N - n0 < BK_SLICE ? N - n0 : BK_SLICE;
        if (trans) {
            for (ptrdiff_t j = 0; j < BK_SLICE; j++)
                for (ptrdiff_t k = 0; k < K; k++)
                    d[k * BK_SLICE + j] = j < cols ? src[(n0 + j) * ld + k] : 0.0f;
            continue;
        }
        for (ptrdiff_t k = 0; k < K; k++, d += BK_SLICE) {
            for (ptrdiff_t j = 0; j < cols; j++)
                d[j] = src[k * ld + n0 + j];
            for (ptrdiff_t j = cols; j < BK_SLICE; j++)
                d[j] = 0.0f;
        }
    }
}

/* Floats of scratch that bk_gemm_tn_f needs. */
static inline ptrdiff_t bk_gemm_tn_scratch(void) { return BK_KC * BK_NC; }

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define BK_GEMM_X86 1
#include <immintrin.h>
#endif

#ifdef BK_GEMM_X86

static int bk_gemm_cpu_level(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return BK_LEVEL_NONE;
    return __builtin_cpu_supports("avx512f") ? BK_LEVEL_AVX512 : BK_LEVEL_AVX2;
}

static int bk_gemm_chosen = -1;

/* The instruction set the drivers use: the best the CPU has, unless bk_gemm_set_level chose. */
static int bk_gemm_level(void)
{
    if (bk_gemm_chosen < 0)
        bk_gemm_chosen = bk_gemm_cpu_level();
    return bk_gemm_chosen;
}

/* Use `level` (at most what the CPU has; for tests). Returns the level now in use. */
static int bk_gemm_set_level(int level)
{
    int best = bk_gemm_cpu_level();
    bk_gemm_chosen = level < BK_LEVEL_NONE ? BK_LEVEL_NONE : level > best ? best : level;
    return bk_gemm_chosen;
}

#define BK_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define BK_AVX2 __attribute__((target("avx2,fma")))
#define BK_ALWAYS_INLINE static inline __attribute__((always_inline))

/* C[r, 0:16 S] = sum over k < K of X[r, k] W_s[k, 0:16] (+ C[r, 0:16 S] if add) for rows r < R
 * and slices s < S, where X[r, k] = x[r * rs + k * ks], slice s of W starts at w + s * ws with
 * rows 16 apart, and rows of C are ldc apart. R and S are constants in every instance, so the
 * accumulators live in registers. */
BK_ALWAYS_INLINE BK_AVX512 void bk_tile512(const int R, const int S, ptrdiff_t K, const float *x,
                                           ptrdiff_t rs, ptrdiff_t ks, const float *w,
                                           ptrdiff_t ws, float *c, ptrdiff_t ldc, int add)
{
    __m512 acc[BK_MAX_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
            acc[r][s] = add ? _mm512_loadu_ps(c + r * ldc + s * BK_SLICE) : _mm512_setzero_ps();
    for (ptrdiff_t k = 0; k < K; k++, x += ks, w += BK_SLICE) {
        __m512 w0 = _mm512_loadu_ps(w);
        __m512 w1 = S > 1 ? _mm512_loadu_ps(w + ws) : w0;
        for (int r = 0; r < R; r++) {
            __m512 v = _mm512_set1_ps(x[r * rs]);
            acc[r][0] = _mm512_fmadd_ps(v, w0, acc[r][0]);
            if (S > 1)
                acc[r][1] = _mm512_fmadd_ps(v, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
            _mm512_storeu_ps(c + r * ldc + s * BK_SLICE, acc[r][s]);
}

/* The same for AVX2: one slice (two ymm halves), R <= 6. Named accumulators (an array of
 * them ends up on the stack with GCC when there are only 16 vector registers). */
#define BK_ROW256(r)                                                                             \
    if (R > r) {                                                                                 \
        __m256 v = _mm256_broadcast_ss(x + r * rs);                                              \
        a##r = _mm256_fmadd_ps(v, w0, a##r);                                                     \
        b##r = _mm256_fmadd_ps(v, w1, b##r);                                                     \
    }
#define BK_LOAD256(r)                                                                            \
    if (R > r && add) {                                                                          \
        a##r = _mm256_loadu_ps(c + r * ldc);                                                     \
        b##r = _mm256_loadu_ps(c + r * ldc + 8);                                                 \
    }
#define BK_STORE256(r)                                                                           \
    if (R > r) {                                                                                 \
        _mm256_storeu_ps(c + r * ldc, a##r);                                                     \
        _mm256_storeu_ps(c + r * ldc + 8, b##r);                                                 \
    }
BK_ALWAYS_INLINE BK_AVX2 void bk_tile256(const int R, ptrdiff_t K, const float *x, ptrdiff_t rs,
                                         ptrdiff_t ks, const float *w, float *c, ptrdiff_t ldc,
                                         int add)
{
    __m256 zero = _mm256_setzero_ps();
    __m256 a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero;
    __m256 b0 = zero, b1 = zero, b2 = zero, b3 = zero, b4 = zero, b5 = zero;
    BK_LOAD256(0) BK_LOAD256(1) BK_LOAD256(2) BK_LOAD256(3) BK_LOAD256(4) BK_LOAD256(5)
    for (ptrdiff_t k = 0; k < K; k++, x += ks, w += BK_SLICE) {
        __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        BK_ROW256(0) BK_ROW256(1) BK_ROW256(2) BK_ROW256(3) BK_ROW256(4) BK_ROW256(5)
    }
    BK_STORE256(0) BK_STORE256(1) BK_STORE256(2) BK_STORE256(3) BK_STORE256(4) BK_STORE256(5)
}
#undef BK_ROW256
#undef BK_LOAD256
#undef BK_STORE256

typedef void (*bk_tile_fn)(ptrdiff_t K, const float *x, ptrdiff_t rs, ptrdiff_t ks,
                           const float *w, ptrdiff_t ws, float *c, ptrdiff_t ldc, int add);

#define BK_DEFINE_TILE512(R, S)                                                                  \
    static BK_AVX512 void bk_tile512_##R##_##S(ptrdiff_t K, const float *x, ptrdiff_t rs,       \
                                               ptrdiff_t ks, const float *w, ptrdiff_t ws,      \
                                               float *c, ptrdiff_t ldc, int add)                \
    {                                                                                            \
        bk_tile512(R, S, K, x, rs, ks, w, ws, c, ldc, add);                                     \
    }
#define BK_DEFINE_TILE256(R)                                                                     \
    static BK_AVX2 void bk_tile256_##R(ptrdiff_t K, const float *x, ptrdiff_t rs, ptrdiff_t ks, \
                                       const float *w, ptrdiff_t ws, float *c, ptrdiff_t ldc,   \
                                       int add)                                                 \
    {                                                                                            \
        (void)ws;                                                                                \
        bk_tile256(R, K, x, rs, ks, w, c, ldc, add);                                            \
    }

BK_DEFINE_TILE512(1, 1) BK_DEFINE_TILE512(2, 1) BK_DEFINE_TILE512(3, 1) BK_DEFINE_TILE512(4, 1)
BK_DEFINE_TILE512(5, 1) BK_DEFINE_TILE512(6, 1) BK_DEFINE_TILE512(7, 1) BK_DEFINE_TILE512(8, 1)
BK_DEFINE_TILE512(9, 1) BK_DEFINE_TILE512(10, 1)
BK_DEFINE_TILE512(1, 2) BK_DEFINE_TILE512(2, 2) BK_DEFINE_TILE512(3, 2) BK_DEFINE_TILE512(4, 2)
BK_DEFINE_TILE512(5, 2) BK_DEFINE_TILE512(6, 2) BK_DEFINE_TILE512(7, 2) BK_DEFINE_TILE512(8, 2)
BK_DEFINE_TILE512(9, 2) BK_DEFINE_TILE512(10, 2)
BK_DEFINE_TILE256(1) BK_DEFINE_TILE256(2) BK_DEFINE_TILE256(3)
BK_DEFINE_TILE256(4) BK_DEFINE_TILE256(5) BK_DEFINE_TILE256(6)

static const bk_tile_fn bk_tiles512[2][BK_MAX_ROWS] = {
    {bk_tile512_1_1, bk_tile512_2_1, bk_tile512_3_1, bk_tile512_4_1, bk_tile512_5_1,
     bk_tile512_6_1, bk_tile512_7_1, bk_tile512_8_1, bk_tile512_9_1, bk_tile512_10_1},
    {bk_tile512_1_2, bk_tile512_2_2, bk_tile512_3_2, bk_tile512_4_2, bk_tile512_5_2,
     bk_tile512_6_2, bk_tile512_7_2, bk_tile512_8_2, bk_tile512_9_2, bk_tile512_10_2},
};
static const bk_tile_fn bk_tiles256[6] = {bk_tile256_1, bk_tile256_2, bk_tile256_3,
                                          bk_tile256_4, bk_tile256_5, bk_tile256_6};

/* Largest tile of the level: rows, and slices side by side. */
static inline int bk_tile_rows(int level) { return level == BK_LEVEL_AVX512 ? 10 : 6; }
static inline int bk_tile_slices(int level) { return level == BK_LEVEL_AVX512 ? 2 : 1; }

/* Rows of the next tile when `left` rows remain: tiles of near-equal height, at most `rows`. */
static inline ptrdiff_t bk_tile_height(ptrdiff_t left, int rows)
{
    ptrdiff_t tiles = (left + rows - 1) / rows;
    return (left + tiles - 1) / tiles;
}

/* One tile of R rows by `cols` <= 16 S columns of C (see bk_tile512). A tile narrower than its
 * slices (the last one when N is not a multiple of 16) goes through a zero-padded copy of C. */
static inline void bk_tile(int level, int R, int S, ptrdiff_t cols, ptrdiff_t K, const float *x,
                           ptrdiff_t rs, ptrdiff_t ks, const float *w, ptrdiff_t ws, float *c,
                           ptrdiff_t ldc, int add)
{
    bk_tile_fn run = level == BK_LEVEL_AVX512 ? bk_tiles512[S - 1][R - 1] : bk_tiles256[R - 1];
    float tmp[BK_MAX_ROWS * 2 * BK_SLICE];
    const ptrdiff_t width = (ptrdiff_t)S * BK_SLICE;
    if (cols == width) {
        run(K, x, rs, ks, w, ws, c, ldc, add);
        return;
    }
    if (add)
        for (int r = 0; r < R; r++)
            memcpy(tmp + r * width, c + r * ldc, cols * sizeof(float));
    run(K, x, rs, ks, w, ws, tmp, width, add);
    for (int r = 0; r < R; r++)
        memcpy(c + r * ldc, tmp + r * width, cols * sizeof(float));
}

/* C (M, N; rows ldc apart) = X (M, K; rows ldx apart) W (+ C if add), W packed by bk_pack_w_f.
 * Rows go in blocks of BK_ROW_BLOCK: a block of X stays in cache while the slices of W pass over
 * it, and a slice stays in L1 while the tiles of the block use it. Needs bk_gemm_level() > 0. */
static void bk_gemm_xw_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x, ptrdiff_t ldx,
                         const float *w, float *c, ptrdiff_t ldc, int add)
{
    const int level = bk_gemm_level(), rows = bk_tile_rows(level), most = bk_tile_slices(level);
    const ptrdiff_t slices = (N + BK_SLICE - 1) / BK_SLICE, ws = K * BK_SLICE;
    for (ptrdiff_t m0 = 0; m0 < M; m0 += BK_ROW_BLOCK) {
        ptrdiff_t m1 = M - m0 < BK_ROW_BLOCK ? M : m0 + BK_ROW_BLOCK;
        for (ptrdiff_t s = 0, S; s < slices; s += S) {
            S = slices - s < most ? slices - s : most;
            ptrdiff_t cols = N - s * BK_SLICE < S * BK_SLICE ? N - s * BK_SLICE : S * BK_SLICE;
            for (ptrdiff_t r = m0, R; r < m1; r += R) {
                R = bk_tile_height(m1 - r, rows);
                bk_tile(level, (int)R, (int)S, cols, K, x + r * ldx, ldx, 1, w + s * ws, ws,
                        c + r * ldc + s * BK_SLICE, ldc, add);
            }
        }
    }
}

/* C (M, N; rows ldc apart) = A^T B (+ C if add) for A (K, M) and B (K, N), row-major with rows
 * lda and ldb apart. Unless sums is NULL, also sums (N,) = the column sums of B (+ sums if add);
 * unless levels is NULL, rows of B are also added to rows of `scattered` ((256, N), rows lds
 * apart): scattered[levels[k]] += B[k] (the gradient of a row gather). scratch:
 * bk_gemm_tn_scratch() floats. Blocks of BK_KC rows by BK_NC columns of B are packed into slices
 * of 16 columns (the sums and the scatter read B there), and C is updated block by block; the
 * tiles read A in place (a row of a tile's A is contiguous). Needs bk_gemm_level() > 0. */
static void bk_gemm_tn_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                         const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int add,
                         float *sums, const unsigned char *levels, float *scattered,
                         ptrdiff_t lds, float *scratch)
{
    const int level = bk_gemm_level(), rows = bk_tile_rows(level), most = bk_tile_slices(level);
    if (!add) {
        if (sums != NULL)
            memset(sums, 0, N * sizeof(float));
        if (K == 0)
            for (ptrdiff_t i = 0; i < M; i++)
                memset(c + i * ldc, 0, N * sizeof(float));
    }
    for (ptrdiff_t k0 = 0; k0 < K; k0 += BK_KC) {
        const ptrdiff_t kc = K - k0 < BK_KC ? K - k0 : BK_KC;
        for (ptrdiff_t n0 = 0; n0 < N; n0 += BK_NC) {
            const ptrdiff_t nc = N - n0 < BK_NC ? N - n0 : BK_NC;
            const ptrdiff_t slices = (nc + BK_SLICE - 1) / BK_SLICE, ws = kc * BK_SLICE;
            for (ptrdiff_t k = 0; k < kc; k++) {
                const float *row = b + (k0 + k) * ldb + n0;
                if (k + BK_PREFETCH_ROWS < kc)
                    for (ptrdiff_t j = 0; j < nc; j += BK_SLICE)
                        __builtin_prefetch(row + BK_PREFETCH_ROWS * ldb + j);
                for (ptrdiff_t s = 0; s < slices; s++) {
                    float *d = scratch + s * ws + k * BK_SLICE;
                    ptrdiff_t cols = nc - s * BK_SLICE < BK_SLICE ? nc - s * BK_SLICE : BK_SLICE;
                    if (cols == BK_SLICE) {
                        memcpy(d, row + s * BK_SLICE, BK_SLICE * sizeof(float));
                        continue;
                    }
                    memcpy(d, row + s * BK_SLICE, cols * sizeof(float));
                    memset(d + cols, 0, (BK_SLICE - cols) * sizeof(float));
                }
                if (sums != NULL)
                    for (ptrdiff_t j = 0; j < nc; j++)
                        sums[n0 + j] += row[j];
                if (levels != NULL) {
                    float *dest = scattered + levels[k0 + k] * lds + n0;
                    for (ptrdiff_t j = 0; j < nc; j++)
                        dest[j] += row[j];
                }
            }
            for (ptrdiff_t s = 0, S; s < slices; s += S) {
                S = slices - s < most ? slices - s : most;
                ptrdiff_t cols = nc - s * BK_SLICE < S * BK_SLICE ? nc - s * BK_SLICE : S * BK_SLICE;
                for (ptrdiff_t i0 = 0, R; i0 < M; i0 += R) {
                    R = bk_tile_height(M - i0, rows);
                    bk_tile(level, (int)R, (int)S, cols, kc, a + k0 * lda + i0, 1, lda,
                            scratch + s * ws, ws, c + i0 * ldc + n0 + s * BK_SLICE, ldc,
                            add || k0 > 0);
                }
            }
        }
    }
}

#else /* not x86: callers use BLAS */

static inline int bk_gemm_level(void) { return BK_LEVEL_NONE; }
static inline int bk_gemm_set_level(int level) { (void)level; return BK_LEVEL_NONE; }
static inline void bk_gemm_xw_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                                ptrdiff_t ldx, const float *w, float *c, ptrdiff_t ldc, int add) {}
static inline void bk_gemm_tn_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                                ptrdiff_t ldc, int add, float *sums, const unsigned char *levels,
                                float *scattered, ptrdiff_t lds, float *scratch) {}

#endif /* BK_GEMM_X86 */

#endif /* BLEKOTA_PACKED_GEMM_H */
