/* Register tiles of the float32 matrix products, training's (gemm_twin.h) and sampling's
 * (sample_twin.h): a twins.h template with code for float at the AVX2 and AVX-512 levels only.
 *
 * BK_NAME(bk_tile_R_S)(K, x, rs, ks, w, ldw, ws, c, ldc, add), for R rows and S slices:
 * C[r, 0:16 S] = sum over k < K of X[r, k] W[k, 0:16 S]
 * (+ C[r, 0:16 S] if add) for rows r < R, where X[r, k] = x[r * rs + k * ks]; W is stored in
 * slices of 16 columns, slice s at w + s * ws, its rows ldw apart; rows of C are ldc apart.
 * The accumulators stay in registers (named variables: GCC keeps an array of them on the stack
 * when there are only 16 vector registers); per k one broadcast per row and one weight load per
 * vector, used by every row. Every element of C receives its K terms in order, one FMA each, so
 * every tile shape and both levels give bit-identical results. BK_NAME(bk_tiles)[S][R] holds the
 * instances: up to BK_NAME(bk_tile_rows) rows by 1 or BK_NAME(bk_tile_slices) slices, one row
 * by 4 slices (a 64-column panel of the sampler), and at AVX-512 up to 6 rows by 4 slices (the
 * wide tile of the weight gradients). The unrolled code comes from the macros below.
 */
#ifndef BLEKOTA_TILES_HEIGHT
#define BLEKOTA_TILES_HEIGHT
/* Rows of the next tile when `left` rows remain: tiles of near-equal height, at most `rows`. */
static inline ptrdiff_t bk_tile_height(ptrdiff_t left, int rows)
{
    ptrdiff_t tiles = (left + rows - 1) / rows;
    return (left + tiles - 1) / tiles;
}
#endif

#if BK_IS_FLOAT && BK_LEVEL != BK_PORTABLE && !defined(BK_DISPATCH)

#if BK_LEVEL == BK_AVX512
#define BK_VEC __m512
#define BK_VW 16
#define BK_VLOAD _mm512_loadu_ps
#define BK_VSTORE _mm512_storeu_ps
#define BK_VFMA _mm512_fmadd_ps
#define BK_VSET1(p) _mm512_set1_ps(*(p))
#define BK_VZERO _mm512_setzero_ps
#else
#define BK_VEC __m256
#define BK_VW 8
#define BK_VLOAD _mm256_loadu_ps
#define BK_VSTORE _mm256_storeu_ps
#define BK_VFMA _mm256_fmadd_ps
#define BK_VSET1 _mm256_broadcast_ss
#define BK_VZERO _mm256_setzero_ps
#endif

/* Up to 10 rows by 8 vectors: M(r, v) for each, and the name of each accumulator. */
#define BK_EACH_V(M, r) M(r, 0) M(r, 1) M(r, 2) M(r, 3) M(r, 4) M(r, 5) M(r, 6) M(r, 7)
#define BK_EACH(M)                                                                               \
    BK_EACH_V(M, 0) BK_EACH_V(M, 1) BK_EACH_V(M, 2) BK_EACH_V(M, 3) BK_EACH_V(M, 4)            \
    BK_EACH_V(M, 5) BK_EACH_V(M, 6) BK_EACH_V(M, 7) BK_EACH_V(M, 8) BK_EACH_V(M, 9)
#define BK_EACH_W(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define BK_ACC(r, v) acc_##r##_##v
/* column offset of vector v of a row in W (slices ws apart) and in C (contiguous) */
#define BK_WOFF(v) ((v) * BK_VW / 16 * ws + (v) * BK_VW % 16)
#define BK_DECLARE(r, v) BK_VEC BK_ACC(r, v) = BK_VZERO();
#define BK_LOAD(r, v)                                                                            \
    if ((r) < R && (v) < V && add)                                                               \
        BK_ACC(r, v) = BK_VLOAD(c + (r) * ldc + (v) * BK_VW);
#define BK_WEIGHT(v) BK_VEC w##v = (v) < V ? BK_VLOAD(w + BK_WOFF(v)) : BK_VZERO();
#define BK_FMA(r, v)                                                                             \
    if ((r) < R && (v) < V)                                                                      \
        BK_ACC(r, v) = BK_VFMA(BK_VSET1(x + (r) * rs), w##v, BK_ACC(r, v));
#define BK_STORE(r, v)                                                                           \
    if ((r) < R && (v) < V)                                                                      \
        BK_VSTORE(c + (r) * ldc + (v) * BK_VW, BK_ACC(r, v));

BK_FN inline __attribute__((always_inline)) void
BK_NAME(bk_tile_body)(const int R, const int S, ptrdiff_t K, const float *x, ptrdiff_t rs,
                      ptrdiff_t ks, const float *w, ptrdiff_t ldw, ptrdiff_t ws, float *c,
                      ptrdiff_t ldc, int add)
{
    const int V = S * 16 / BK_VW;
    BK_EACH(BK_DECLARE)
    BK_EACH(BK_LOAD)
    for (ptrdiff_t k = 0; k < K; k++, x += ks, w += ldw) {
        BK_EACH_W(BK_WEIGHT)
        BK_EACH(BK_FMA)
    }
    BK_EACH(BK_STORE)
}

typedef void (*BK_NAME(bk_tile_fn))(ptrdiff_t K, const float *x, ptrdiff_t rs, ptrdiff_t ks,
                                    const float *w, ptrdiff_t ldw, ptrdiff_t ws, float *c,
                                    ptrdiff_t ldc, int add);

#define BK_TILE(R, S)                                                                            \
    BK_FN void BK_NAME(bk_tile_##R##_##S)(ptrdiff_t K, const float *x, ptrdiff_t rs,             \
                                          ptrdiff_t ks, const float *w, ptrdiff_t ldw,           \
                                          ptrdiff_t ws, float *c, ptrdiff_t ldc, int add)        \
    {                                                                                            \
        BK_NAME(bk_tile_body)(R, S, K, x, rs, ks, w, ldw, ws, c, ldc, add);                      \
    }
#define BK_TILE_ROWS(M, S) M(1, S) M(2, S) M(3, S) M(4, S) M(5, S) M(6, S)
#define BK_TILE_REF(R, S) BK_NAME(bk_tile_##R##_##S),

BK_TILE_ROWS(BK_TILE, 1)
BK_TILE(1, 4)
#if BK_LEVEL == BK_AVX512
BK_TILE(7, 1) BK_TILE(8, 1) BK_TILE(9, 1) BK_TILE(10, 1)
BK_TILE_ROWS(BK_TILE, 2) BK_TILE(7, 2) BK_TILE(8, 2) BK_TILE(9, 2) BK_TILE(10, 2)
BK_TILE(2, 4) BK_TILE(3, 4) BK_TILE(4, 4) BK_TILE(5, 4) BK_TILE(6, 4)
#define BK_TILE_MAX_ROWS 10
#define BK_TILE_MAX_SLICES 2
#define BK_TILE_WIDE_ROWS 6
#define BK_TILE_WIDE_SLICES 4
#else
#define BK_TILE_MAX_ROWS 6
#define BK_TILE_MAX_SLICES 1
#define BK_TILE_WIDE_ROWS 6
#define BK_TILE_WIDE_SLICES 1
#endif

/* Largest tile of the level: rows, and slices side by side. */
static const int BK_NAME(bk_tile_rows) = BK_TILE_MAX_ROWS;
static const int BK_NAME(bk_tile_slices) = BK_TILE_MAX_SLICES;
/* The wide tile of the weight gradients (bk_gemm_tn, on Intel CPUs: bk_gemm_tn_wide): at
 * AVX-512 6 rows by 4 slices, 24 accumulators fed by 6 broadcasts and 4 loads per k (10 rows by 2
 * slices need 12 loads for 20); on the Intel Xeon of benchmarks/README.md it runs those products
 * about 14 % faster. */
static const int BK_NAME(bk_tile_wide_rows) = BK_TILE_WIDE_ROWS;
static const int BK_NAME(bk_tile_wide_slices) = BK_TILE_WIDE_SLICES;

static const BK_NAME(bk_tile_fn) BK_NAME(bk_tiles)[5][11] = {
    [1] = {NULL, BK_TILE_ROWS(BK_TILE_REF, 1)
#if BK_LEVEL == BK_AVX512
           BK_NAME(bk_tile_7_1), BK_NAME(bk_tile_8_1), BK_NAME(bk_tile_9_1), BK_NAME(bk_tile_10_1)
#endif
    },
#if BK_LEVEL == BK_AVX512
    [2] = {NULL, BK_TILE_ROWS(BK_TILE_REF, 2) BK_NAME(bk_tile_7_2), BK_NAME(bk_tile_8_2),
           BK_NAME(bk_tile_9_2), BK_NAME(bk_tile_10_2)},
#endif
#if BK_LEVEL == BK_AVX512
    [4] = {NULL, BK_NAME(bk_tile_1_4), BK_NAME(bk_tile_2_4), BK_NAME(bk_tile_3_4),
           BK_NAME(bk_tile_4_4), BK_NAME(bk_tile_5_4), BK_NAME(bk_tile_6_4)},
#else
    [4] = {NULL, BK_NAME(bk_tile_1_4)},
#endif
};

#undef BK_VEC
#undef BK_VW
#undef BK_VLOAD
#undef BK_VSTORE
#undef BK_VFMA
#undef BK_VSET1
#undef BK_VZERO
#undef BK_EACH_V
#undef BK_EACH
#undef BK_EACH_W
#undef BK_ACC
#undef BK_WOFF
#undef BK_DECLARE
#undef BK_LOAD
#undef BK_WEIGHT
#undef BK_FMA
#undef BK_STORE
#undef BK_TILE
#undef BK_TILE_ROWS
#undef BK_TILE_REF
#undef BK_TILE_MAX_ROWS
#undef BK_TILE_MAX_SLICES
#undef BK_TILE_WIDE_ROWS
#undef BK_TILE_WIDE_SLICES

#endif
