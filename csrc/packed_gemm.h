/* Matrix products of the float32 training core on packed operands (C; AVX-512 or AVX2+FMA,
 * the CPU level of cpu.h), included from csrc/_gru.pyx; the drivers are in gemm_twin.h.
 *
 * Two drivers cover every matrix product of a training window:
 *   bk_gemm_xw_f  C (M, N) (+)= X (M, K) W, W packed once per window (bk_pack_w_f): the per-step
 *                 recurrent products and the whole-window products with a weight matrix (input
 *                 projections, logits, the gradients of a layer's input and of the top h).
 *   bk_gemm_tn_f  C (M, N) (+)= A^T B for activations A (K, M) and B (K, N), B packed block by
 *                 block into scratch: the weight gradients, sums over the rows of a window.
 * Packed W: ceil(N / 16) slices of 16 columns, each K rows of 16 contiguous floats, zero past
 * column N. Both drivers run the register tiles of tiles_twin.h over K: AVX-512 up to 10 rows by
 * 32 columns (bk_gemm_tn_f 6 rows by 64), AVX2 up to 6 rows by 16 columns; every tile shape and
 * both levels give bit-identical results. Callers keep a BLAS path for the portable level and
 * for double.
 */
#ifndef BLEKOTA_PACKED_GEMM_H
#define BLEKOTA_PACKED_GEMM_H

#include <stddef.h>
#include <string.h>

#include "cpu.h"

#define BK_SLICE 16      /* columns per packed slice */
#define BK_KC 256        /* rows of B that bk_gemm_tn_f packs at a time */
#define BK_NC 256        /* columns of B that bk_gemm_tn_f packs at a time */
#define BK_ROW_BLOCK 96  /* rows of X per block in bk_gemm_xw_f (a block stays in L2) */
#define BK_PREFETCH_ROWS 8  /* bk_gemm_tn_f asks for rows of B this far ahead while packing */
#define BK_AMX_KC 1024   /* rows of A and B that bk_gemm_tn_amx rounds at a time (amx_gemm.h) */

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

/* Whether bk_gemm_tn_f runs on the level's wide tiles (see tiles_twin.h): -1 until chosen, then
 * by default on Intel CPUs, where they are faster (benchmarks/README.md); elsewhere the products
 * keep the tiles they were tuned with on AMD Zen. Either way every result is the same. */
static int bk_tn_wide = -1;

/* Use the wide tiles if wide is 1, not if 0; -1 keeps the choice. Returns the choice in use. */
static inline int bk_gemm_tn_wide(int wide)
{
    if (wide >= 0)
        bk_tn_wide = wide != 0;
    else if (bk_tn_wide < 0)
        bk_tn_wide = bk_cpu_intel();
    return bk_tn_wide;
}

/* What bk_gemm_tn_f (and bk_gemm_tn_bf) do before the first block of rows: without add, zero
 * the sums, and C when there are no rows (K == 0) to write it. */
static inline void bk_gemm_tn_start(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float *c, ptrdiff_t ldc,
                                    int add, float *sums)
{
    if (add)
        return;
    if (sums != NULL)
        memset(sums, 0, N * sizeof(float));
    if (K == 0)
        for (ptrdiff_t i = 0; i < M; i++)
            memset(c + i * ldc, 0, N * sizeof(float));
}

/* What the weight-gradient products add for one row of B (nc floats): the row to sums (nc,)
 * unless NULL, and to `scattered` (the scatter row it goes to) unless NULL. */
static inline void bk_gemm_tn_row(const float *row, ptrdiff_t nc, float *sums, float *scattered)
{
    if (sums != NULL)
        for (ptrdiff_t j = 0; j < nc; j++)
            sums[j] += row[j];
    if (scattered != NULL)
        for (ptrdiff_t j = 0; j < nc; j++)
            scattered[j] += row[j];
}

/* Floats of scratch that bk_gemm_tn_f, bk_gemm_tn_bf and bk_gemm_tn_amx need: the last the most,
 * BK_AMX_KC rows of B (BK_NC columns) and of A (BK_NC = BK_BF_A_COLUMNS columns) in bf16 pairs. */
static inline ptrdiff_t bk_gemm_tn_scratch(void) { return BK_AMX_KC * BK_NC; }

#define BK_TEMPLATE "gemm_twin.h"
#include "twins.h"

#endif /* BLEKOTA_PACKED_GEMM_H */
