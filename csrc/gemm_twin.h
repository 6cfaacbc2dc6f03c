/* The float32 training products on packed operands (see packed_gemm.h): a twins.h template with
 * code for float at the AVX2 and AVX-512 levels only; the dispatchers need a level above
 * portable (callers use BLAS otherwise). */
#if BK_IS_FLOAT && BK_LEVEL != BK_PORTABLE && !defined(BK_DISPATCH)

#include "tiles_twin.h"

/* One tile of R rows by `cols` <= 16 S columns of C (see tiles_twin.h; W's rows 16 apart). A
 * tile narrower than its slices (the last one when N is not a multiple of 16) goes through a
 * zero-padded copy of C. */
BK_FN inline void BK_NAME(bk_tile_padded)(int R, int S, ptrdiff_t cols, ptrdiff_t K,
                                          const float *x, ptrdiff_t rs, ptrdiff_t ks,
                                          const float *w, ptrdiff_t ws, float *c, ptrdiff_t ldc,
                                          int add)
{
    BK_NAME(bk_tile_fn) run = BK_NAME(bk_tiles)[S][R];
    float tmp[24 * BK_SLICE];  /* the largest tiles: 10 rows by 2 slices, 6 by 4 */
    const ptrdiff_t width = (ptrdiff_t)S * BK_SLICE;
    if (cols == width) {
        run(K, x, rs, ks, w, BK_SLICE, ws, c, ldc, add);
        return;
    }
    if (add)
        for (int r = 0; r < R; r++)
            memcpy(tmp + r * width, c + r * ldc, cols * sizeof(float));
    run(K, x, rs, ks, w, BK_SLICE, ws, tmp, width, add);
    for (int r = 0; r < R; r++)
        memcpy(c + r * ldc, tmp + r * width, cols * sizeof(float));
}

/* C (M, N; rows ldc apart) = X (M, K; rows ldx apart) W (+ C if add), W packed by bk_pack_w_f.
 * Rows go in blocks of BK_ROW_BLOCK: a block of X stays in cache while the slices of W pass over
 * it, and a slice stays in L1 while the tiles of the block use it. */
BK_FN void BK_NAME(bk_gemm_xw)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x,
                               ptrdiff_t ldx, const float *w, float *c, ptrdiff_t ldc, int add)
{
    const int rows = BK_NAME(bk_tile_rows), most = BK_NAME(bk_tile_slices);
    const ptrdiff_t slices = (N + BK_SLICE - 1) / BK_SLICE, ws = K * BK_SLICE;
    for (ptrdiff_t m0 = 0; m0 < M; m0 += BK_ROW_BLOCK) {
        ptrdiff_t m1 = M - m0 < BK_ROW_BLOCK ? M : m0 + BK_ROW_BLOCK;
        for (ptrdiff_t s = 0, S; s < slices; s += S) {
            S = slices - s < most ? slices - s : most;
            ptrdiff_t cols = N - s * BK_SLICE < S * BK_SLICE ? N - s * BK_SLICE : S * BK_SLICE;
            for (ptrdiff_t r = m0, R; r < m1; r += R) {
                R = bk_tile_height(m1 - r, rows);
                BK_NAME(bk_tile_padded)((int)R, (int)S, cols, K, x + r * ldx, ldx, 1, w + s * ws,
                                        ws, c + r * ldc + s * BK_SLICE, ldc, add);
            }
        }
    }
}

/* C (M, N; rows ldc apart) = A^T B (+ C if add) for A (K, M) and B (K, N), row-major with rows
 * lda and ldb apart. Unless sums is NULL, also sums (N,) = the column sums of B (+ sums if add);
 * unless levels is NULL, rows of B are also added to rows of `scattered` ((256, N), rows lds
 * apart): scattered[levels[k]] += B[k] (the gradient of a row gather). scratch:
 * bk_gemm_tn_scratch() floats. Blocks of BK_KC rows by BK_NC columns of B are packed into slices
 * of 16 columns (the sums and the scatter read B there), and C is updated block by block by the
 * level's tiles (its wide ones if bk_gemm_tn_wide), which read A in place (a row of a tile's A is
 * contiguous). */
BK_FN void BK_NAME(bk_gemm_tn)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                               ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                               ptrdiff_t ldc, int add, float *sums, const unsigned char *levels,
                               float *scattered, ptrdiff_t lds, float *scratch)
{
    const int wide = bk_gemm_tn_wide(-1);
    const int rows = wide ? BK_NAME(bk_tile_wide_rows) : BK_NAME(bk_tile_rows);
    const int most = wide ? BK_NAME(bk_tile_wide_slices) : BK_NAME(bk_tile_slices);
    bk_gemm_tn_start(M, N, K, c, ldc, add, sums);
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
                bk_gemm_tn_row(row, nc, sums == NULL ? NULL : sums + n0,
                               levels == NULL ? NULL : scattered + levels[k0 + k] * lds + n0);
            }
            for (ptrdiff_t s = 0, S; s < slices; s += S) {
                S = slices - s >= most ? most : slices - s >= 2 ? 2 : 1;  /* tiles of 4, 2, 1 */
                ptrdiff_t cols = nc - s * BK_SLICE < S * BK_SLICE ? nc - s * BK_SLICE : S * BK_SLICE;
                for (ptrdiff_t i0 = 0, R; i0 < M; i0 += R) {
                    R = bk_tile_height(M - i0, rows);
                    BK_NAME(bk_tile_padded)((int)R, (int)S, cols, kc, a + k0 * lda + i0, 1,
                                            lda, scratch + s * ws, ws,
                                            c + i0 * ldc + n0 + s * BK_SLICE, ldc,
                                            add || k0 > 0);
                }
            }
        }
    }
}

#elif BK_IS_FLOAT && defined(BK_DISPATCH) && defined(BK_X86)

static inline void bk_gemm_xw_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x, ptrdiff_t ldx,
                         const float *w, float *c, ptrdiff_t ldc, int add)
{
    (bk_cpu_level() == BK_AVX512 ? bk_gemm_xw_f_avx512 : bk_gemm_xw_f_avx2)(M, N, K, x, ldx, w,
                                                                           c, ldc, add);
}

static inline void bk_gemm_tn_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                         const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int add,
                         float *sums, const unsigned char *levels, float *scattered,
                         ptrdiff_t lds, float *scratch)
{
    (bk_cpu_level() == BK_AVX512 ? bk_gemm_tn_f_avx512 : bk_gemm_tn_f_avx2)(
        M, N, K, a, lda, b, ldb, c, ldc, add, sums, levels, scattered, lds, scratch);
}

#elif BK_IS_FLOAT && defined(BK_DISPATCH) /* not x86: callers use BLAS */

static inline void bk_gemm_xw_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *x, ptrdiff_t ldx,
                         const float *w, float *c, ptrdiff_t ldc, int add) {}
static inline void bk_gemm_tn_f(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                         const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int add,
                         float *sums, const unsigned char *levels, float *scattered,
                         ptrdiff_t lds, float *scratch) {}

#endif
