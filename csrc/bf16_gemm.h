/* The training products with bfloat16 operands and float32 sums (C; AVX-512 with AVX512_BF16),
 * included from csrc/_gru.pyx: the opt-in `bf16` products of a training window. The drivers
 * mirror packed_gemm.h's, with the same arguments and the same packed buffer:
 *   bk_pack_w_bf   W (K, N) packed in the slices of bk_pack_w_f (slice s still at s * K * 16
 *                  floats), each slice now ceil(K / 2) rows of 16 pairs: 32 bits holding
 *                  bf16(W[2p, n]) in the low half and bf16(W[2p + 1, n]) in the high half,
 *                  then (K >= BK_AMX_MIN_K) zero pairs up to whole AMX tiles.
 *   bk_gemm_xw_bf  C (M, N) (+)= bf16(X) (M, K) bf16(W): rows of X rounded block by block.
 *   bk_gemm_tn_bf  C (M, N) (+)= bf16(A)^T bf16(B) for A (K, M), B (K, N): blocks of A and B
 *                  rounded into pairs in scratch (bk_gemm_tn_scratch() floats, as the float
 *                  kernel); the column sums and the scatter of B stay float, taken as
 *                  its rows are rounded.
 * Rounding is to nearest even (denormals to zero, as VCVTNEPS2BF16 does); every product of two
 * bf16 is exact in float32, and vdpbf16ps adds a pair of them per lane. A tile of R rows by V
 * vectors of 16 columns sums a row's pairs in order, so every tile shape gives the same result.
 * Zen 4 runs vdpbf16ps at the rate of its float32 FMA, twice the multiply-adds; an Intel Xeon
 * with AVX512_BF16 at half that rate, so there both drivers hand their products to the AMX tiles
 * (amx_gemm.h) where the CPU has them: 4-5x the rate.
 */
#ifndef BLEKOTA_BF16_GEMM_H
#define BLEKOTA_BF16_GEMM_H

#include <stdint.h>
#include <string.h>

#include "packed_gemm.h"

/* 32-bit pairs of rounded rows of X that bk_gemm_xw_bf keeps: 48 KB of stack, so that perf's
 * 64 KB copies of the stack (benchmarks/parts.py) still reach its callers. */
#define BK_BF_ROW_WORDS 12288
#define BK_BF_GROUP 8         /* pairs of rows that bk_bf16_slices takes through a slice at once */
#define BK_BF_A_COLUMNS 256    /* columns of A that bk_gemm_tn_bf rounds at a time */

#ifdef BK_HAVE_BF16

/* 16 pairs of words: bf16(low) in each low half, bf16(high) in each high half. */
BK_TARGET_BF16 static inline __m512i bk_bf16_pair_words(__m512 low, __m512 high)
{
    return _mm512_or_si512(
        _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(low)),
        _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(high)), 16));
}

/* Pairs (lo[j], hi[j]) for j < n rounded into out (n 32-bit words); hi NULL: zeros. */
BK_TARGET_BF16 static inline void bk_bf16_pairs(const float *lo, const float *hi, ptrdiff_t n,
                                                uint32_t *out)
{
    for (ptrdiff_t j = 0; j < n; j += 16) {
        ptrdiff_t left = n - j;
        __mmask16 mask = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 low = _mm512_maskz_loadu_ps(mask, lo + j);
        __m512 high = hi != NULL ? _mm512_maskz_loadu_ps(mask, hi + j) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(out + j, mask, bk_bf16_pair_words(low, high));
    }
}

/* row[j] += v[j] for the lanes of mask. */
BK_TARGET_BF16 static inline void bk_bf16_scatter(float *row, __mmask16 mask, __m512 v)
{
    _mm512_mask_storeu_ps(row, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row), v));
}

/* Row r of X (K floats) as ceil(K / 2) pairs. */
BK_TARGET_BF16 static inline void bk_bf16_row(const float *x, ptrdiff_t K, uint32_t *out)
{
    for (ptrdiff_t k = 0; k < K; k += 32) {
        ptrdiff_t left = K - k < 32 ? K - k : 32;
        __mmask16 lo = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __mmask16 hi = left > 16 ? (__mmask16)((left >= 32 ? 0xffffu : (1u << (left - 16)) - 1))
                                 : (__mmask16)0;
        __m256bh a = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lo, x + k));
        __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(hi, x + k + 16));
        __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i)a), (__m256i)b, 1);
        ptrdiff_t words = (left + 1) / 2;
        _mm512_mask_storeu_epi32(out + k / 2, words >= 16 ? (__mmask16)0xffff
                                                          : (__mmask16)((1u << words) - 1),
                                 both);
    }
}

/* Rows 2p and 2p + 1 (p < ceil(kc / 2)) of a block of B (kc rows by nc columns, rows ldb apart)
 * as slices of pairs: slice s at out + s * ws, pair row p 16 words into it, zero past column nc.
 * On the way, unless NULL, sums (nc,) += the columns of B, and unless levels is NULL row k of B
 * is added to row levels[k] of `scattered` (rows lds apart): what the weight gradients take.
 * BK_BF_GROUP pairs pass through a slice at a time, its sums in a register (each column still
 * adds its rows in order); one pair at a time ran 2.5x slower on an Intel Xeon. */
BK_TARGET_BF16 static inline void bk_bf16_slices(const float *b, ptrdiff_t ldb, ptrdiff_t kc,
                                                 ptrdiff_t nc, ptrdiff_t ws, uint32_t *out,
                                                 float *sums, const unsigned char *levels,
                                                 float *scattered, ptrdiff_t lds)
{
    const ptrdiff_t slices = (nc + BK_SLICE - 1) / BK_SLICE, pairs = (kc + 1) / 2;
    for (ptrdiff_t p0 = 0; p0 < pairs; p0 += BK_BF_GROUP) {
        const ptrdiff_t p1 = pairs - p0 < BK_BF_GROUP ? pairs : p0 + BK_BF_GROUP;
        for (ptrdiff_t s = 0; s < slices; s++) {
            const ptrdiff_t j0 = s * BK_SLICE, cols = nc - j0 < BK_SLICE ? nc - j0 : BK_SLICE;
            const __mmask16 mask = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
            __m512 sum = sums != NULL ? _mm512_maskz_loadu_ps(mask, sums + j0)
                                      : _mm512_setzero_ps();
            for (ptrdiff_t p = p0; p < p1; p++) {
                const ptrdiff_t k = 2 * p;
                const int two = k + 1 < kc;
                const __m512 low = _mm512_maskz_loadu_ps(mask, b + k * ldb + j0);
                const __m512 high = two ? _mm512_maskz_loadu_ps(mask, b + (k + 1) * ldb + j0)
                                        : _mm512_setzero_ps();
                sum = _mm512_add_ps(sum, low);
                if (two)
                    sum = _mm512_add_ps(sum, high);
                if (levels != NULL) {
                    bk_bf16_scatter(scattered + levels[k] * lds + j0, mask, low);
                    if (two)
                        bk_bf16_scatter(scattered + levels[k + 1] * lds + j0, mask, high);
                }
                _mm512_storeu_si512(out + s * ws + p * BK_SLICE, bk_bf16_pair_words(low, high));
            }
            if (sums != NULL)
                _mm512_mask_storeu_ps(sums + j0, mask, sum);
        }
    }
}

#include "amx_gemm.h"

/* Slices s0..s1-1 of W (K, N) packed into dst in pairs (layout above), where W[k, n] =
 * src[k * ld + n], or src[n * ld + k] if trans (then a pair is two adjacent floats). */
BK_TARGET_BF16 static inline void bk_pack_w_bf(const float *src, ptrdiff_t ld, int trans,
                                               ptrdiff_t K, ptrdiff_t N, ptrdiff_t s0,
                                               ptrdiff_t s1, float *dst)
{
    const ptrdiff_t P = (K + 1) / 2;
    for (ptrdiff_t s = s0; s < s1; s++) {
        uint32_t *d = (uint32_t *)(dst + s * K * BK_SLICE);
        if (K >= BK_AMX_MIN_K) /* zero pairs up to whole tiles: the slice has room for them */
            memset(d + P * BK_SLICE, 0, (bk_amx_pairs(K) - P) * BK_SLICE * sizeof(uint32_t));
        ptrdiff_t n0 = s * BK_SLICE, cols = N - n0 < BK_SLICE ? N - n0 : BK_SLICE;
        for (ptrdiff_t p = 0; p < P; p++) {
            if (!trans) {
                const float *lo = src + 2 * p * ld + n0;
                bk_bf16_pairs(lo, 2 * p + 1 < K ? lo + ld : NULL, cols, d + p * BK_SLICE);
            }
            for (ptrdiff_t j = cols; j < BK_SLICE; j++)
                d[p * BK_SLICE + j] = 0;
        }
        for (ptrdiff_t j = 0; trans && j < cols; j++) {
            uint32_t words[16];
            for (ptrdiff_t k = 0; k < K; k += 32) {
                bk_bf16_row(src + (n0 + j) * ld + k, K - k < 32 ? K - k : 32, words);
                for (ptrdiff_t q = 0; q < 16 && k / 2 + q < P; q++)
                    d[(k / 2 + q) * BK_SLICE + j] = words[q];
            }
        }
    }
}

/* Up to 10 rows by 4 vectors of accumulators (tiles use at most 24 of them). */
#define BK_BF_EACH_V(M, r) M(r, 0) M(r, 1) M(r, 2) M(r, 3)
#define BK_BF_EACH(M)                                                                            \
    BK_BF_EACH_V(M, 0) BK_BF_EACH_V(M, 1) BK_BF_EACH_V(M, 2) BK_BF_EACH_V(M, 3)                  \
    BK_BF_EACH_V(M, 4) BK_BF_EACH_V(M, 5) BK_BF_EACH_V(M, 6) BK_BF_EACH_V(M, 7)                  \
    BK_BF_EACH_V(M, 8) BK_BF_EACH_V(M, 9)
#define BK_BF_ACC(r, v) acc_##r##_##v
#define BK_BF_DECLARE(r, v) __m512 BK_BF_ACC(r, v) = _mm512_setzero_ps();
#define BK_BF_LOAD(r, v)                                                                         \
    if ((r) < R && (v) < V && add)                                                               \
        BK_BF_ACC(r, v) = _mm512_loadu_ps(c + (r) * ldc + (v) * 16);
#define BK_BF_DOT(r, v)                                                                          \
    if ((r) < R && (v) < V)                                                                      \
        BK_BF_ACC(r, v) = _mm512_dpbf16_ps(                                                      \
            BK_BF_ACC(r, v), (__m512bh)_mm512_set1_epi32((int)x[(r) * rs]), w##v);
#define BK_BF_STORE(r, v)                                                                        \
    if ((r) < R && (v) < V)                                                                      \
        _mm512_storeu_ps(c + (r) * ldc + (v) * 16, BK_BF_ACC(r, v));

/* C[r, 0:16 V] = sum over p < P of X[r, p] . W[p, 0:16 V] (+ C if add) for r < R, pairs of
 * X[r, p] = x[r * rs + p * ks], vector v of W at w + v * ws, its pair rows 16 words apart. */
BK_TARGET_BF16 static inline __attribute__((always_inline)) void
bk_bf_tile_body(const int R, const int V, ptrdiff_t P, const uint32_t *x, ptrdiff_t rs,
                ptrdiff_t ks, const uint32_t *w, ptrdiff_t ws, float *c, ptrdiff_t ldc, int add)
{
    BK_BF_EACH(BK_BF_DECLARE)
    BK_BF_EACH(BK_BF_LOAD)
    for (ptrdiff_t p = 0; p < P; p++, x += ks, w += BK_SLICE) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(w);
        __m512bh w1 = V > 1 ? (__m512bh)_mm512_loadu_si512(w + ws) : w0;
        __m512bh w2 = V > 2 ? (__m512bh)_mm512_loadu_si512(w + 2 * ws) : w0;
        __m512bh w3 = V > 3 ? (__m512bh)_mm512_loadu_si512(w + 3 * ws) : w0;
        BK_BF_EACH(BK_BF_DOT)
    }
    BK_BF_EACH(BK_BF_STORE)
}

typedef void (*bk_bf_tile_fn)(ptrdiff_t P, const uint32_t *x, ptrdiff_t rs, ptrdiff_t ks,
                              const uint32_t *w, ptrdiff_t ws, float *c, ptrdiff_t ldc, int add);

#define BK_BF_TILE(R, V)                                                                         \
    BK_TARGET_BF16 static void bk_bf_tile_##R##_##V(ptrdiff_t P, const uint32_t *x,              \
                                                    ptrdiff_t rs, ptrdiff_t ks,                  \
                                                    const uint32_t *w, ptrdiff_t ws, float *c,   \
                                                    ptrdiff_t ldc, int add)                      \
    {                                                                                            \
        bk_bf_tile_body(R, V, P, x, rs, ks, w, ws, c, ldc, add);                                 \
    }
#define BK_BF_TILES6(V)                                                                          \
    BK_BF_TILE(1, V) BK_BF_TILE(2, V) BK_BF_TILE(3, V) BK_BF_TILE(4, V) BK_BF_TILE(5, V)       \
    BK_BF_TILE(6, V)
#define BK_BF_TILES8(V) BK_BF_TILES6(V) BK_BF_TILE(7, V) BK_BF_TILE(8, V)
#define BK_BF_TILES10(V) BK_BF_TILES8(V) BK_BF_TILE(9, V) BK_BF_TILE(10, V)
#define BK_BF_REFS6(V)                                                                           \
    NULL, bk_bf_tile_1_##V, bk_bf_tile_2_##V, bk_bf_tile_3_##V, bk_bf_tile_4_##V,                \
        bk_bf_tile_5_##V, bk_bf_tile_6_##V
#define BK_BF_REFS8(V) BK_BF_REFS6(V), bk_bf_tile_7_##V, bk_bf_tile_8_##V
#define BK_BF_REFS10(V) BK_BF_REFS8(V), bk_bf_tile_9_##V, bk_bf_tile_10_##V

BK_BF_TILES10(1)
BK_BF_TILES10(2)
BK_BF_TILES8(3)
BK_BF_TILES6(4)
#define BK_BF_ROWS 10     /* most rows of a tile, at 1 or 2 vectors wide */
#define BK_BF_VECTORS 4   /* most vectors of 16 columns of a tile */
static const bk_bf_tile_fn bk_bf_tiles[BK_BF_VECTORS + 1][BK_BF_ROWS + 1] = {
    {NULL}, {BK_BF_REFS10(1)}, {BK_BF_REFS10(2)}, {BK_BF_REFS8(3)}, {BK_BF_REFS6(4)}};

/* The most rows of a tile `cols` columns wide: 10 by 2 vectors, 8 by 3, 6 by 4 (24 sums). Wider
 * tiles broadcast fewer elements of X per multiply-add: with 6 by 4 the products ran 5-12 %
 * faster than with 10 by 2 on the Zen 4. */
static inline int bk_bf_rows(ptrdiff_t cols)
{
    return cols > 3 * BK_SLICE ? 6 : cols > 2 * BK_SLICE ? 8 : BK_BF_ROWS;
}

/* One tile of R <= bk_bf_rows(cols) rows by `cols` <= 64 columns; a narrower one than its V
 * vectors goes through a zero-padded copy of C. */
BK_TARGET_BF16 static inline void bk_bf_tile(int R, ptrdiff_t cols, ptrdiff_t P,
                                             const uint32_t *x, ptrdiff_t rs, ptrdiff_t ks,
                                             const uint32_t *w, ptrdiff_t ws, float *c,
                                             ptrdiff_t ldc, int add)
{
    const int V = (int)((cols + BK_SLICE - 1) / BK_SLICE);
    bk_bf_tile_fn run = bk_bf_tiles[V][R];
    float tmp[BK_BF_ROWS * BK_BF_VECTORS * BK_SLICE];
    const ptrdiff_t width = (ptrdiff_t)V * BK_SLICE;
    if (cols == width) {
        run(P, x, rs, ks, w, ws, c, ldc, add);
        return;
    }
    if (add)
        for (int r = 0; r < R; r++)
            memcpy(tmp + r * width, c + r * ldc, cols * sizeof(float));
    run(P, x, rs, ks, w, ws, tmp, width, add);
    for (int r = 0; r < R; r++)
        memcpy(c + r * ldc, tmp + r * width, cols * sizeof(float));
}

/* C (M, N; rows ldc apart) = bf16(X) (M, K; rows ldx apart) W (+ C if add), W packed by
 * bk_pack_w_bf, K <= 2 BK_BF_ROW_WORDS. Rows of X are rounded in blocks that fit
 * BK_BF_ROW_WORDS pairs, and the slices of W pass over each block in tiles of up to 6 rows by 4
 * slices. */
BK_TARGET_BF16 static void bk_gemm_xw_bf(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                                         ptrdiff_t ldx, const float *w, float *c, ptrdiff_t ldc,
                                         int add)
{
#ifdef BK_HAVE_AMX
    if (K >= BK_AMX_MIN_K && K <= BK_AMX_MAX_K && bk_cpu_amx()) {
        bk_gemm_xw_amx(M, N, K, x, ldx, w, c, ldc, add);
        return;
    }
#endif
    uint32_t rounded[BK_BF_ROW_WORDS];
    const ptrdiff_t P = (K + 1) / 2, ws = K * BK_SLICE;
    ptrdiff_t block = BK_BF_ROW_WORDS / (P > 0 ? P : 1);
    block = block > BK_ROW_BLOCK ? BK_ROW_BLOCK : block;
    for (ptrdiff_t m0 = 0; m0 < M; m0 += block) {
        ptrdiff_t rows = M - m0 < block ? M - m0 : block;
        for (ptrdiff_t r = 0; r < rows; r++)
            bk_bf16_row(x + (m0 + r) * ldx, K, rounded + r * P);
        for (ptrdiff_t n0 = 0; n0 < N; n0 += BK_BF_VECTORS * BK_SLICE) {
            ptrdiff_t cols = N - n0 < BK_BF_VECTORS * BK_SLICE ? N - n0 : BK_BF_VECTORS * BK_SLICE;
            const uint32_t *wn = (const uint32_t *)w + n0 / BK_SLICE * ws;
            for (ptrdiff_t r = 0, R; r < rows; r += R) {
                R = bk_tile_height(rows - r, bk_bf_rows(cols));
                bk_bf_tile((int)R, cols, P, rounded + r * P, P, 1, wn, ws,
                           c + (m0 + r) * ldc + n0, ldc, add);
            }
        }
    }
}

/* C (M, N; rows ldc apart) = bf16(A)^T bf16(B) (+ C if add) for A (K, M) and B (K, N),
 * row-major with rows lda and ldb apart; sums, levels, scattered as bk_gemm_tn_f (float B).
 * scratch: bk_gemm_tn_scratch() floats, holding a block of A (BK_KC rows by BK_BF_A_COLUMNS)
 * as pairs, p-major, rounded once for every block of B (BK_KC rows by BK_NC columns) in slices
 * of pairs that passes over it. */
BK_TARGET_BF16 static void bk_gemm_tn_bf(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                         ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                                         ptrdiff_t ldc, int add, float *sums,
                                         const unsigned char *levels, float *scattered,
                                         ptrdiff_t lds, float *scratch)
{
#ifdef BK_HAVE_AMX
    if (bk_cpu_amx()) {
        bk_gemm_tn_amx(M, N, K, a, lda, b, ldb, c, ldc, add, sums, levels, scattered, lds,
                       scratch);
        return;
    }
#endif
    uint32_t *b_pairs = (uint32_t *)scratch;
    uint32_t *a_pairs = b_pairs + BK_KC / 2 * BK_NC;
    bk_gemm_tn_start(M, N, K, c, ldc, add, sums);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += BK_KC) {
        const ptrdiff_t kc = K - k0 < BK_KC ? K - k0 : BK_KC, P = (kc + 1) / 2;
        for (ptrdiff_t m0 = 0; m0 < M; m0 += BK_BF_A_COLUMNS) {
            const ptrdiff_t mc = M - m0 < BK_BF_A_COLUMNS ? M - m0 : BK_BF_A_COLUMNS;
            for (ptrdiff_t p = 0; p < P; p++) {
                const float *lo = a + (k0 + 2 * p) * lda + m0;
                bk_bf16_pairs(lo, 2 * p + 1 < kc ? lo + lda : NULL, mc, a_pairs + p * mc);
            }
            for (ptrdiff_t n0 = 0; n0 < N; n0 += BK_NC) {
                const ptrdiff_t nc = N - n0 < BK_NC ? N - n0 : BK_NC;
                const ptrdiff_t slices = (nc + BK_SLICE - 1) / BK_SLICE, ws = P * BK_SLICE;
                /* the first block of A's columns also takes B's sums and scatter */
                const int first = m0 == 0;
                bk_bf16_slices(b + k0 * ldb + n0, ldb, kc, nc, ws, b_pairs,
                               first && sums != NULL ? sums + n0 : NULL,
                               first && levels != NULL ? levels + k0 : NULL,
                               levels != NULL ? scattered + n0 : NULL, lds);
                for (ptrdiff_t s = 0; s < slices; s += BK_BF_VECTORS) {
                    const ptrdiff_t wide = BK_BF_VECTORS * BK_SLICE;
                    ptrdiff_t cols = nc - s * BK_SLICE < wide ? nc - s * BK_SLICE : wide;
                    for (ptrdiff_t i0 = 0, R; i0 < mc; i0 += R) {
                        R = bk_tile_height(mc - i0, bk_bf_rows(cols));
                        bk_bf_tile((int)R, cols, P, a_pairs + i0, 1, mc, b_pairs + s * ws, ws,
                                   c + (m0 + i0) * ldc + n0 + s * BK_SLICE, ldc, add || k0 > 0);
                    }
                }
            }
        }
    }
}

#undef BK_BF_EACH_V
#undef BK_BF_EACH
#undef BK_BF_ACC
#undef BK_BF_DECLARE
#undef BK_BF_LOAD
#undef BK_BF_DOT
#undef BK_BF_STORE
#undef BK_BF_TILE
#undef BK_BF_TILES6
#undef BK_BF_TILES8
#undef BK_BF_TILES10
#undef BK_BF_REFS6
#undef BK_BF_REFS8
#undef BK_BF_REFS10

#else /* no AVX512_BF16 code: bk_cpu_bf16() is 0 and the drivers are never called */

#include "amx.h"

static inline void bk_pack_w_bf(const float *src, ptrdiff_t ld, int trans, ptrdiff_t K,
                                ptrdiff_t N, ptrdiff_t s0, ptrdiff_t s1, float *dst)
{
}

static inline void bk_gemm_xw_bf(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                                 ptrdiff_t ldx, const float *w, float *c, ptrdiff_t ldc, int add)
{
}
static inline void bk_gemm_tn_bf(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                 ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                                 ptrdiff_t ldc, int add, float *sums,
                                 const unsigned char *levels, float *scattered, ptrdiff_t lds,
                                 float *scratch)
{
}

#endif

#endif /* BLEKOTA_BF16_GEMM_H */
