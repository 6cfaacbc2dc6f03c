/* The bf16 training products on AMX tiles (C; Intel Sapphire Rapids and later: AMX-TILE and
 * AMX-BF16), included from bf16_gemm.h. Where the CPU has them and Linux grants the tile state
 * (bk_cpu_amx), bk_gemm_xw_bf and bk_gemm_tn_bf hand their products to
 *   bk_gemm_xw_amx  C (M, N) (+)= bf16(X) (M, K) bf16(W) on bk_pack_w_bf's slices, for
 *                   BK_AMX_MIN_K <= K <= BK_AMX_MAX_K: a slice's pair rows past ceil(K / 2) are
 *                   zero up to the next multiple of 16 (bk_pack_w_bf writes them);
 *   bk_gemm_tn_amx  C (M, N) (+)= bf16(A)^T bf16(B): each block of A's pairs transposed so that
 *                   a tile row holds one column of A.
 * A tile is 16 rows by 64 bytes: C 16 by 16 floats, A 16 rows by 16 pairs (32 values of k), B 16
 * pair rows by 16 columns, which is a packed slice's layout. One TDPBF16PS adds 16 pairs of
 * exact bf16 products to each element of C; the tiles of a block run 2 by 2 (4 of C, 2 of A,
 * 2 of B: all 8). AMX rounds its sums otherwise than VDPBF16PS, so its results are not
 * bit-identical to bf16_gemm.h's, but as there every element is summed over k in the same
 * order whatever the tile shape, and every tile shape gives the same result. Products with a
 * weight matrix and K < BK_AMX_MIN_K or K > BK_AMX_MAX_K stay on VDPBF16PS.
 */
#ifndef BLEKOTA_AMX_GEMM_H
#define BLEKOTA_AMX_GEMM_H

#include <stdint.h>
#include <string.h>

#include "amx.h"

#define BK_AMX_PAIRS 16                        /* pair rows (32 values of k) per tile multiply */
#define BK_AMX_MIN_K 30                        /* the packed slice has room for the zero pairs */
#define BK_AMX_MAX_K (2 * BK_BF_ROW_WORDS / 16) /* 16 rounded rows of X fit in the row buffer */
#define BK_AMX_ROW_BLOCK 32  /* rows of X rounded at a time: their tiles stay in L1 as W's pass */

/* ceil(K / 2) pairs rounded up to whole tiles. */
static inline ptrdiff_t bk_amx_pairs(ptrdiff_t K)
{
    return ((K + 1) / 2 + BK_AMX_PAIRS - 1) / BK_AMX_PAIRS * BK_AMX_PAIRS;
}

#ifdef BK_HAVE_AMX

/* A part of a C tile (rows by cols floats, rows ldc apart) to or from a 16 by 16 copy. */
static inline void bk_amx_edge_in(float *copy, const float *c, ptrdiff_t ldc, ptrdiff_t rows,
                                  ptrdiff_t cols, int add)
{
    memset(copy, 0, 256 * sizeof(float));
    for (ptrdiff_t r = 0; add && r < rows; r++)
        memcpy(copy + r * 16, c + r * ldc, cols * sizeof(float));
}

static inline void bk_amx_edge_out(const float *copy, float *c, ptrdiff_t ldc, ptrdiff_t rows,
                                   ptrdiff_t cols)
{
    for (ptrdiff_t r = 0; r < rows; r++)
        memcpy(c + r * ldc, copy + r * 16, cols * sizeof(float));
}

static inline ptrdiff_t bk_amx_part(ptrdiff_t n, ptrdiff_t start)
{
    return n - start > 16 ? 16 : n - start;
}

/* Tile t (= 2 i + j, a literal for the assembler) of C: C[16 i.., 16 j..] into tile t (zero
 * unless add) or back out. */
#define BK_AMX_C_IN(i, j, t)                                                                     \
    if ((i) < mt && (j) < nt) {                                                                  \
        float *at = c + (i) * 16 * ldc + (j) * 16;                                               \
        if (whole && add)                                                                        \
            _tile_loadd(t, at, ldc * sizeof(float));                                             \
        else if (whole)                                                                          \
            _tile_zero(t);                                                                       \
        else {                                                                                   \
            bk_amx_edge_in(edge[t], at, ldc, bk_amx_part(rows, 16 * (i)),                        \
                           bk_amx_part(cols, 16 * (j)), add);                                    \
            _tile_loadd(t, edge[t], 64);                                                         \
        }                                                                                        \
    }
#define BK_AMX_C_OUT(i, j, t)                                                                    \
    if ((i) < mt && (j) < nt) {                                                                  \
        float *at = c + (i) * 16 * ldc + (j) * 16;                                               \
        if (whole)                                                                               \
            _tile_stored(t, at, ldc * sizeof(float));                                            \
        else {                                                                                   \
            _tile_stored(t, edge[t], 64);                                                        \
            bk_amx_edge_out(edge[t], at, ldc, bk_amx_part(rows, 16 * (i)),                       \
                            bk_amx_part(cols, 16 * (j)));                                        \
        }                                                                                        \
    }

/* C[0:rows, 0:cols] (+ C if add) = sum over tiles q < Q of A_i(q) B_j(q), for mt by nt tiles of
 * C (rows <= 16 mt, cols <= 16 nt). Row tile i of A at a + 16 i a_row words (rows a_row words
 * apart), its tile q 16 words further each; column tile j of B at b + j b_slice words, its tile
 * q 256 words further. The rows of A past `rows` and the columns of B past `cols` are read (zero
 * or not): only C's part is written. */
BK_TARGET_AMX static inline __attribute__((always_inline)) void
bk_amx_block(const int mt, const int nt, ptrdiff_t Q, const uint32_t *a, ptrdiff_t a_row,
             const uint32_t *b, ptrdiff_t b_slice, float *c, ptrdiff_t ldc, ptrdiff_t rows,
             ptrdiff_t cols, int add)
{
    float edge[4][256] __attribute__((aligned(64)));
    const int whole = rows == 16 * mt && cols == 16 * nt;
    const ptrdiff_t a_stride = a_row * sizeof(uint32_t);
    BK_AMX_C_IN(0, 0, 0) BK_AMX_C_IN(0, 1, 1) BK_AMX_C_IN(1, 0, 2) BK_AMX_C_IN(1, 1, 3)
    for (ptrdiff_t q = 0; q < Q; q++) {
        _tile_loadd(4, a + q * 16, a_stride);
        if (mt > 1)
            _tile_loadd(5, a + 16 * a_row + q * 16, a_stride);
        _tile_loadd(6, b + q * 256, 64);
        if (nt > 1)
            _tile_loadd(7, b + b_slice + q * 256, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (nt > 1)
            _tile_dpbf16ps(1, 4, 7);
        if (mt > 1) {
            _tile_dpbf16ps(2, 5, 6);
            if (nt > 1)
                _tile_dpbf16ps(3, 5, 7);
        }
    }
    BK_AMX_C_OUT(0, 0, 0) BK_AMX_C_OUT(0, 1, 1) BK_AMX_C_OUT(1, 0, 2) BK_AMX_C_OUT(1, 1, 3)
}

#undef BK_AMX_C_IN
#undef BK_AMX_C_OUT

#define BK_AMX_BLOCK(mt, nt)                                                                     \
    BK_TARGET_AMX static void bk_amx_block_##mt##nt(ptrdiff_t Q, const uint32_t *a,              \
                                                    ptrdiff_t a_row, const uint32_t *b,          \
                                                    ptrdiff_t b_slice, float *c, ptrdiff_t ldc,  \
                                                    ptrdiff_t rows, ptrdiff_t cols, int add)     \
    {                                                                                            \
        bk_amx_block(mt, nt, Q, a, a_row, b, b_slice, c, ldc, rows, cols, add);                  \
    }
BK_AMX_BLOCK(1, 1)
BK_AMX_BLOCK(1, 2)
BK_AMX_BLOCK(2, 1)
BK_AMX_BLOCK(2, 2)
#undef BK_AMX_BLOCK

/* C[0:rows, 0:cols] of the blocks of 2 by 2 tiles (the last ones narrower) that cover it. */
BK_TARGET_AMX static void bk_amx_blocks(ptrdiff_t Q, const uint32_t *a, ptrdiff_t a_row,
                                        const uint32_t *b, ptrdiff_t b_slice, float *c,
                                        ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols, int add)
{
    for (ptrdiff_t j0 = 0; j0 < cols; j0 += 32) {
        const ptrdiff_t width = cols - j0 < 32 ? cols - j0 : 32;
        const int nt = width > 16 ? 2 : 1;
        for (ptrdiff_t i0 = 0; i0 < rows; i0 += 32) {
            const ptrdiff_t height = rows - i0 < 32 ? rows - i0 : 32;
            const int mt = height > 16 ? 2 : 1;
            const uint32_t *ai = a + i0 * a_row, *bj = b + j0 / 16 * b_slice;
            float *cij = c + i0 * ldc + j0;
            if (mt == 2 && nt == 2)
                bk_amx_block_22(Q, ai, a_row, bj, b_slice, cij, ldc, height, width, add);
            else if (mt == 2)
                bk_amx_block_21(Q, ai, a_row, bj, b_slice, cij, ldc, height, width, add);
            else if (nt == 2)
                bk_amx_block_12(Q, ai, a_row, bj, b_slice, cij, ldc, height, width, add);
            else
                bk_amx_block_11(Q, ai, a_row, bj, b_slice, cij, ldc, height, width, add);
        }
    }
}

/* C (M, N; rows ldc apart) = bf16(X) (M, K; rows ldx apart) W (+ C if add), W packed by
 * bk_pack_w_bf, BK_AMX_MIN_K <= K <= BK_AMX_MAX_K: rows of X rounded in blocks of whole tiles
 * (zero pairs and rows past X's), and the tiles of each block against all of W's. Blocks of 32
 * rows rather than the 96 of the float kernel: 5 % faster per iteration on one Xeon core. */
BK_TARGET_AMX static void bk_gemm_xw_amx(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                                         ptrdiff_t ldx, const float *w, float *c, ptrdiff_t ldc,
                                         int add)
{
    uint32_t rounded[BK_BF_ROW_WORDS] __attribute__((aligned(64)));
    const ptrdiff_t P = bk_amx_pairs(K), filled = (K + 1) / 2;
    ptrdiff_t block = BK_BF_ROW_WORDS / P / 16 * 16;
    block = block > BK_AMX_ROW_BLOCK ? BK_AMX_ROW_BLOCK : block;
    bk_amx_configure();
    for (ptrdiff_t m0 = 0; m0 < M; m0 += block) {
        const ptrdiff_t rows = M - m0 < block ? M - m0 : block;
        const ptrdiff_t tiled = (rows + 15) / 16 * 16;
        for (ptrdiff_t r = 0; r < rows; r++) {
            bk_bf16_row(x + (m0 + r) * ldx, K, rounded + r * P);
            memset(rounded + r * P + filled, 0, (P - filled) * sizeof(uint32_t));
        }
        memset(rounded + rows * P, 0, (tiled - rows) * P * sizeof(uint32_t));
        bk_amx_blocks(P / BK_AMX_PAIRS, rounded, P, (const uint32_t *)w, K * BK_SLICE,
                      c + m0 * ldc, ldc, rows, N, add);
    }
    _tile_release();
}

/* The 16 by 16 words v[0..15] transposed in place: v[r][q] becomes v[q][r]. */
BK_TARGET_AMX static inline void bk_amx_transpose(__m512i v[16])
{
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        v[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        v[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int q = 0; q < 4; q++) {
        t[q] = _mm512_shuffle_i32x4(v[q], v[4 + q], 0x88);
        t[q + 4] = _mm512_shuffle_i32x4(v[q], v[4 + q], 0xdd);
        t[q + 8] = _mm512_shuffle_i32x4(v[8 + q], v[12 + q], 0x88);
        t[q + 12] = _mm512_shuffle_i32x4(v[8 + q], v[12 + q], 0xdd);
    }
    for (int q = 0; q < 4; q++) {
        v[q] = _mm512_shuffle_i32x4(t[q], t[q + 8], 0x88);
        v[q + 8] = _mm512_shuffle_i32x4(t[q], t[q + 8], 0xdd);
        v[q + 4] = _mm512_shuffle_i32x4(t[q + 4], t[q + 12], 0x88);
        v[q + 12] = _mm512_shuffle_i32x4(t[q + 4], t[q + 12], 0xdd);
    }
}

/* The pairs of rows 2p and 2p + 1 of A (kc rows by mc columns, rows lda apart) as tile rows:
 * out[m * P + p] for m < mc rounded up to 16 and p < P (a multiple of 16), zero past A. */
BK_TARGET_AMX static void bk_amx_columns_as_rows(const float *a, ptrdiff_t lda, ptrdiff_t kc,
                                                 ptrdiff_t mc, ptrdiff_t P, uint32_t *out)
{
    __m512i v[16];
    for (ptrdiff_t m0 = 0; m0 < mc; m0 += 16) {
        const ptrdiff_t left = mc - m0;
        const __mmask16 mask = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (ptrdiff_t p0 = 0; p0 < P; p0 += 16) {
            for (int q = 0; q < 16; q++) {
                const ptrdiff_t k = 2 * (p0 + q);
                __m512 low = k < kc ? _mm512_maskz_loadu_ps(mask, a + k * lda + m0)
                                    : _mm512_setzero_ps();
                __m512 high = k + 1 < kc ? _mm512_maskz_loadu_ps(mask, a + (k + 1) * lda + m0)
                                         : _mm512_setzero_ps();
                v[q] = bk_bf16_pair_words(low, high);
            }
            bk_amx_transpose(v);
            for (int r = 0; r < 16; r++)
                _mm512_storeu_si512(out + (m0 + r) * P + p0, v[r]);
        }
    }
}

/* bk_gemm_tn_bf on AMX tiles, with its arguments and scratch: a block of A (BK_AMX_KC rows by
 * BK_BF_A_COLUMNS) as tile rows, and for each block of B (BK_AMX_KC rows by BK_NC columns) its
 * slices of pairs, which take B's sums and scatter as bk_gemm_tn_bf does. Blocks of 1024 rows
 * rather than bk_gemm_tn_bf's 256 load and store each tile of C once for 32 tile products, not 8:
 * C, the gradient, is the operand that is farthest from the core. */
BK_TARGET_AMX static void bk_gemm_tn_amx(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                         ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                                         ptrdiff_t ldc, int add, float *sums,
                                         const unsigned char *levels, float *scattered,
                                         ptrdiff_t lds, float *scratch)
{
    uint32_t *b_pairs = (uint32_t *)scratch;
    uint32_t *a_rows = b_pairs + BK_AMX_KC / 2 * BK_NC;
    bk_gemm_tn_start(M, N, K, c, ldc, add, sums);
    bk_amx_configure();
    for (ptrdiff_t k0 = 0; k0 < K; k0 += BK_AMX_KC) {
        const ptrdiff_t kc = K - k0 < BK_AMX_KC ? K - k0 : BK_AMX_KC, filled = (kc + 1) / 2;
        const ptrdiff_t P = bk_amx_pairs(kc), ws = P * BK_SLICE;
        for (ptrdiff_t m0 = 0; m0 < M; m0 += BK_BF_A_COLUMNS) {
            const ptrdiff_t mc = M - m0 < BK_BF_A_COLUMNS ? M - m0 : BK_BF_A_COLUMNS;
            bk_amx_columns_as_rows(a + k0 * lda + m0, lda, kc, mc, P, a_rows);
            for (ptrdiff_t n0 = 0; n0 < N; n0 += BK_NC) {
                const ptrdiff_t nc = N - n0 < BK_NC ? N - n0 : BK_NC;
                const int first = m0 == 0;
                bk_bf16_slices(b + k0 * ldb + n0, ldb, kc, nc, ws, b_pairs,
                               first && sums != NULL ? sums + n0 : NULL,
                               first && levels != NULL ? levels + k0 : NULL,
                               levels != NULL ? scattered + n0 : NULL, lds);
                for (ptrdiff_t s = 0; s < (nc + BK_SLICE - 1) / BK_SLICE; s++)
                    memset(b_pairs + s * ws + filled * BK_SLICE, 0,
                           (P - filled) * BK_SLICE * sizeof(uint32_t));
                bk_amx_blocks(P / BK_AMX_PAIRS, a_rows, P, b_pairs, ws, c + m0 * ldc + n0, ldc,
                              mc, nc, add || k0 > 0);
            }
        }
    }
    _tile_release();
}

#endif

#endif /* BLEKOTA_AMX_GEMM_H */
