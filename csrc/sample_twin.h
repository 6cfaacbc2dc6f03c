/* The sampling kernels: a twins.h template (see sample_kernel.h for the packed layout). Float at
 * the AVX2 and AVX-512 levels runs its products on the register tiles of tiles_twin.h; the rest
 * is plain C that the compiler vectorizes for the level. */
#ifndef BK_DISPATCH

#include "tiles_twin.h"

#if BK_IS_FLOAT
#define BK_UINT uint32_t
#define BK_EXP bk_expf
#define BK_TANH bk_tanhf
#define BK_SIGMOID bk_sigmoidf
#else
#define BK_UINT uint64_t
#define BK_EXP bk_exp
#define BK_TANH bk_tanh
#define BK_SIGMOID bk_sigmoid
#endif

#if BK_IS_FLOAT && BK_LEVEL != BK_PORTABLE
#define BK_TILES 1 /* products on the register tiles */
#else
#define BK_TILES 0
#endif

BK_FN void BK_NAME(bk_panel)(const BK_REAL *w, ptrdiff_t K1, const BK_REAL *v1, ptrdiff_t K2,
                               const BK_REAL *v2, BK_REAL *acc)
{
#if BK_TILES
    BK_NAME(bk_tile_fn) run = BK_NAME(bk_tiles)[BK_PANEL / 16][1];
    if (K1 > 0)
        run(K1, v1, 0, 1, w, BK_PANEL, 16, acc, 0, 1);
    run(K2, v2, 0, 1, w + K1 * BK_PANEL, BK_PANEL, 16, acc, 0, 1);
#else
    for (ptrdiff_t i = 0; i < K1; i++, w += BK_PANEL) {
        BK_REAL x = v1[i];
        for (int c = 0; c < BK_PANEL; c++)
            acc[c] += x * w[c];
    }
    for (ptrdiff_t i = 0; i < K2; i++, w += BK_PANEL) {
        BK_REAL x = v2[i];
        for (int c = 0; c < BK_PANEL; c++)
            acc[c] += x * w[c];
    }
#endif
}

#if BK_IS_FLOAT
/* acc (P,) += the K rows of half panel w times v (K,) in float instructions (sample_kernel.h): a
 * pair's 32-bit lane gives row k's weight shifted up 16 bits and row k + 1's masked, each product
 * exact, so an FMA adds it as vdpbf16ps does. */
BK_FN void BK_NAME(bk_half_rows)(const uint16_t *w, ptrdiff_t K, const float *v, float *acc)
{
#if BK_LEVEL == BK_AVX512
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 a0 = _mm512_loadu_ps(acc), a1 = _mm512_loadu_ps(acc + 16);
    __m512 a2 = _mm512_loadu_ps(acc + 32), a3 = _mm512_loadu_ps(acc + 48);
    for (ptrdiff_t k = 0; k < K; k += 2, w += 2 * BK_PANEL) {
        __m512 even = _mm512_set1_ps(bk_bf16_value(bk_bf16_bits(v[k])));
        __m512 odd = _mm512_set1_ps(bk_bf16_value(bk_bf16_bits(v[k + 1])));
#define BK_HALF_PAIR(a, at)                                                                      \
    {                                                                                            \
        __m512i pairs = _mm512_loadu_si512((const void *)(w + (at)));                           \
        a = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(pairs, high)), odd, a);        \
        a = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16)), even, a);        \
    }
        BK_HALF_PAIR(a0, 0)
        BK_HALF_PAIR(a1, 32)
        BK_HALF_PAIR(a2, 64)
        BK_HALF_PAIR(a3, 96)
#undef BK_HALF_PAIR
    }
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
    _mm512_storeu_ps(acc + 32, a2);
    _mm512_storeu_ps(acc + 48, a3);
#elif BK_LEVEL == BK_AVX2
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8);
    __m256 a2 = _mm256_loadu_ps(acc + 16), a3 = _mm256_loadu_ps(acc + 24);
    __m256 a4 = _mm256_loadu_ps(acc + 32), a5 = _mm256_loadu_ps(acc + 40);
    __m256 a6 = _mm256_loadu_ps(acc + 48), a7 = _mm256_loadu_ps(acc + 56);
    for (ptrdiff_t k = 0; k < K; k += 2, w += 2 * BK_PANEL) {
        __m256 even = _mm256_set1_ps(bk_bf16_value(bk_bf16_bits(v[k])));
        __m256 odd = _mm256_set1_ps(bk_bf16_value(bk_bf16_bits(v[k + 1])));
#define BK_HALF_PAIR(a, at)                                                                      \
    {                                                                                            \
        __m256i pairs = _mm256_loadu_si256((const __m256i *)(w + (at)));                        \
        a = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(pairs, high)), odd, a);        \
        a = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16)), even, a);        \
    }
        BK_HALF_PAIR(a0, 0)
        BK_HALF_PAIR(a1, 16)
        BK_HALF_PAIR(a2, 32)
        BK_HALF_PAIR(a3, 48)
        BK_HALF_PAIR(a4, 64)
        BK_HALF_PAIR(a5, 80)
        BK_HALF_PAIR(a6, 96)
        BK_HALF_PAIR(a7, 112)
#undef BK_HALF_PAIR
    }
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2);
    _mm256_storeu_ps(acc + 24, a3);
    _mm256_storeu_ps(acc + 32, a4);
    _mm256_storeu_ps(acc + 40, a5);
    _mm256_storeu_ps(acc + 48, a6);
    _mm256_storeu_ps(acc + 56, a7);
#else
    for (ptrdiff_t k = 0; k < K; k += 2, w += 2 * BK_PANEL) {
        float even = bk_bf16_value(bk_bf16_bits(v[k])), odd = bk_bf16_value(bk_bf16_bits(v[k + 1]));
        for (int c = 0; c < BK_PANEL; c++) {
            uint32_t pair, low, high; /* a column's weights of rows k (low half) and k + 1 */
            float w_even, w_odd;
            memcpy(&pair, w + 2 * c, sizeof pair);
            low = pair << 16;
            high = pair & 0xFFFF0000u;
            memcpy(&w_even, &low, sizeof w_even);
            memcpy(&w_odd, &high, sizeof w_odd);
            float sum = acc[c] + w_odd * odd;
            acc[c] = sum + w_even * even;
        }
    }
#endif
}
#endif

#if BK_IS_FLOAT && BK_LEVEL != BK_PORTABLE
/* Many streams in float instructions: c (R <= 4 rows, ldc apart; from column `at`, 64 columns at
 * AVX-512, 16 at AVX2) += v (R rows of 2 n inputs rounded to bfloat16 values, ldv apart) times
 * the n row pairs of half panel w. Each sum is what bk_half_rows computes for one stream. */
#if BK_LEVEL == BK_AVX512
#define BK_HALF_COLUMNS 64
#define BK_HALF_VW 16
#define BK_HALF_VEC __m512
#define BK_HALF_ZERO _mm512_setzero_ps
#define BK_HALF_LOADF _mm512_loadu_ps
#define BK_HALF_STOREF _mm512_storeu_ps
#define BK_HALF_FMA _mm512_fmadd_ps
#define BK_HALF_SET1 _mm512_set1_ps
#define BK_HALF_SPLIT(v)                                                                         \
    __m512i p##v = _mm512_loadu_si512((const void *)(w + 2 * at + 32 * (v)));                    \
    __m512 o##v = _mm512_castsi512_ps(_mm512_and_si512(p##v, high));                            \
    __m512 e##v = _mm512_castsi512_ps(_mm512_slli_epi32(p##v, 16));
#define BK_HALF_ALL_V(M, r) M(r, 0) M(r, 1) M(r, 2) M(r, 3)
#define BK_HALF_SPLITS BK_HALF_SPLIT(0) BK_HALF_SPLIT(1) BK_HALF_SPLIT(2) BK_HALF_SPLIT(3)
#define BK_HALF_HIGH const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
#else
#define BK_HALF_COLUMNS 16
#define BK_HALF_VW 8
#define BK_HALF_VEC __m256
#define BK_HALF_ZERO _mm256_setzero_ps
#define BK_HALF_LOADF _mm256_loadu_ps
#define BK_HALF_STOREF _mm256_storeu_ps
#define BK_HALF_FMA _mm256_fmadd_ps
#define BK_HALF_SET1 _mm256_set1_ps
#define BK_HALF_SPLIT(v)                                                                         \
    __m256i p##v = _mm256_loadu_si256((const __m256i *)(w + 2 * at + 16 * (v)));                 \
    __m256 o##v = _mm256_castsi256_ps(_mm256_and_si256(p##v, high));                             \
    __m256 e##v = _mm256_castsi256_ps(_mm256_slli_epi32(p##v, 16));
#define BK_HALF_ALL_V(M, r) M(r, 0) M(r, 1)
#define BK_HALF_SPLITS BK_HALF_SPLIT(0) BK_HALF_SPLIT(1)
#define BK_HALF_HIGH const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
#endif
#define BK_HALF_EACH4(M) M(0) M(1) M(2) M(3)
#define BK_HALF_ACC_DECLARE(r, v)                                                                \
    BK_HALF_VEC a##r##v = (r) < R ? BK_HALF_LOADF(c + (r) * ldc + at + (v) * BK_HALF_VW) : BK_HALF_ZERO();
#define BK_HALF_ACC_FMA(r, v)                                                                    \
    a##r##v = BK_HALF_FMA(o##v, odd, a##r##v);                                                   \
    a##r##v = BK_HALF_FMA(e##v, even, a##r##v);
#define BK_HALF_ACC_STORE(r, v) BK_HALF_STOREF(c + (r) * ldc + at + (v) * BK_HALF_VW, a##r##v);
#define BK_HALF_ROW_DECLARE(r) BK_HALF_ALL_V(BK_HALF_ACC_DECLARE, r)
#define BK_HALF_ROW_FMA(r)                                                                       \
    if ((r) < R) {                                                                               \
        BK_HALF_VEC odd = BK_HALF_SET1(v[(r) * ldv + 2 * j + 1]);                                \
        BK_HALF_VEC even = BK_HALF_SET1(v[(r) * ldv + 2 * j]);                                   \
        BK_HALF_ALL_V(BK_HALF_ACC_FMA, r)                                                        \
    }
#define BK_HALF_ROW_STORE(r)                                                                     \
    if ((r) < R) {                                                                               \
        BK_HALF_ALL_V(BK_HALF_ACC_STORE, r)                                                      \
    }

BK_FN inline __attribute__((always_inline)) void
BK_NAME(bk_half_tile)(const int R, const uint16_t *w, ptrdiff_t at, ptrdiff_t n, const float *v,
                      ptrdiff_t ldv, float *c, ptrdiff_t ldc)
{
    BK_HALF_HIGH
    BK_HALF_EACH4(BK_HALF_ROW_DECLARE)
    for (ptrdiff_t j = 0; j < n; j++, w += 2 * BK_PANEL) {
        BK_HALF_SPLITS
        BK_HALF_EACH4(BK_HALF_ROW_FMA)
    }
    BK_HALF_EACH4(BK_HALF_ROW_STORE)
}

#undef BK_HALF_VW
#undef BK_HALF_VEC
#undef BK_HALF_ZERO
#undef BK_HALF_LOADF
#undef BK_HALF_STOREF
#undef BK_HALF_FMA
#undef BK_HALF_SET1
#undef BK_HALF_SPLIT
#undef BK_HALF_ALL_V
#undef BK_HALF_SPLITS
#undef BK_HALF_HIGH
#undef BK_HALF_EACH4
#undef BK_HALF_ACC_DECLARE
#undef BK_HALF_ACC_FMA
#undef BK_HALF_ACC_STORE
#undef BK_HALF_ROW_DECLARE
#undef BK_HALF_ROW_FMA
#undef BK_HALF_ROW_STORE
#endif

#if BK_IS_FLOAT
/* Many streams with bfloat16 products: c (M rows, ldc apart) += [X1, X2] (M rows of K1 and K2
 * inputs, ldx1 and ldx2 apart) times `panels` consecutive half panels of K1 + K2 rows starting at
 * w; scratch: M rows of K1 + K2 words. The inputs are rounded once per row (to pairs of bfloat16
 * for vdpbf16ps, else to floats that a broadcast reads from memory), then multiplied in tiles of
 * several streams; every stream gets the sums bk_half_rows gives one stream. */
BK_FN void BK_NAME(bk_half_streams)(const uint16_t *w, ptrdiff_t panels, ptrdiff_t M, ptrdiff_t K1,
                                     const float *x1, ptrdiff_t ldx1, ptrdiff_t K2, const float *x2,
                                     ptrdiff_t ldx2, float *c, ptrdiff_t ldc, uint32_t *scratch)
{
    ptrdiff_t stride = (K1 + K2) * BK_PANEL;
#if BK_LEVEL == BK_PORTABLE
    (void)scratch;
    for (ptrdiff_t p = 0; p < panels; p++, w += stride)
        for (ptrdiff_t r = 0; r < M; r++) {
            float *cr = c + r * ldc + p * BK_PANEL;
            if (K1 > 0)
                BK_NAME(bk_half_rows)(w, K1, x1 + r * ldx1, cr);
            BK_NAME(bk_half_rows)(w + K1 * BK_PANEL, K2, x2 + r * ldx2, cr);
        }
#else
    ptrdiff_t n = (K1 + K2) / 2, K = K1 + K2;
#if defined(BK_HAVE_BF16) && BK_LEVEL == BK_AVX512
    if (bk_bf16_streams_run()) {
        for (ptrdiff_t r = 0; r < M; r++) {
            bk_round_pairs(x1 + r * ldx1, K1, scratch + r * n);
            bk_round_pairs(x2 + r * ldx2, K2, scratch + r * n + K1 / 2);
        }
        bk_half_product_bf16(w, panels, stride, M, n, scratch, n, c, ldc);
        return;
    }
#endif
    float *rounded = (float *)scratch;
    for (ptrdiff_t r = 0; r < M; r++) {
        for (ptrdiff_t k = 0; k < K1; k++)
            rounded[r * K + k] = bk_bf16_value(bk_bf16_bits(x1[r * ldx1 + k]));
        for (ptrdiff_t k = 0; k < K2; k++)
            rounded[r * K + K1 + k] = bk_bf16_value(bk_bf16_bits(x2[r * ldx2 + k]));
    }
    for (ptrdiff_t p = 0; p < panels; p++, w += stride)
        for (ptrdiff_t r = 0; r < M; r += 4) {
            const float *x = rounded + r * K;
            float *cr = c + r * ldc + p * BK_PANEL;
            for (ptrdiff_t at = 0; at < BK_PANEL; at += BK_HALF_COLUMNS)
                switch (M - r < 4 ? M - r : 4) {
                case 1: BK_NAME(bk_half_tile)(1, w, at, n, x, K, cr, ldc); break;
                case 2: BK_NAME(bk_half_tile)(2, w, at, n, x, K, cr, ldc); break;
                case 3: BK_NAME(bk_half_tile)(3, w, at, n, x, K, cr, ldc); break;
                default: BK_NAME(bk_half_tile)(4, w, at, n, x, K, cr, ldc); break;
                }
        }
#endif
}
#endif
#undef BK_HALF_COLUMNS

/* bk_panel's product, from the half panels at the same offset as w when half is not NULL (float
 * only; packed: the float panels w lies in). */
BK_FN void BK_NAME(bk_weights)(const BK_REAL *packed, const uint16_t *half, const BK_REAL *w,
                                ptrdiff_t K1, const BK_REAL *v1, ptrdiff_t K2, const BK_REAL *v2,
                                BK_REAL *acc)
{
#if BK_IS_FLOAT
    if (half) {
        const uint16_t *rows = half + (w - packed);
#if defined(BK_HAVE_BF16) && BK_LEVEL == BK_AVX512
        if (bk_bf16_runs()) {
            if (K1 > 0)
                bk_half_rows_bf16(rows, K1, v1, acc);
            bk_half_rows_bf16(rows + K1 * BK_PANEL, K2, v2, acc);
            return;
        }
#endif
        if (K1 > 0)
            BK_NAME(bk_half_rows)(rows, K1, v1, acc);
        BK_NAME(bk_half_rows)(rows + K1 * BK_PANEL, K2, v2, acc);
        return;
    }
#else
    (void)packed;
    (void)half;
#endif
    BK_NAME(bk_panel)(w, K1, v1, K2, v2, acc);
}

BK_FN void BK_NAME(bk_sigmoid)(BK_REAL *a, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        a[j] = BK_SIGMOID(a[j]);
}

BK_FN void BK_NAME(bk_tanh)(BK_REAL *a, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        a[j] = BK_TANH(a[j]);
}

/* a += b, n elements: layer 0's pre-activations plus a stream's conditioning vector. */
BK_FN void BK_NAME(bk_add)(BK_REAL *restrict a, const BK_REAL *restrict b, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        a[j] += b[j];
}

/* h = (1 - z) h + z c with both products rounded: the sampler's arithmetic, and so the levels
 * it draws for a seed, stay what they were before it shared its math with training. */
BK_FN BK_UNFUSED_FN void BK_NAME(bk_update)(BK_REAL *restrict h, const BK_REAL *restrict z,
                                           const BK_REAL *restrict c, ptrdiff_t n)
{
    BK_UNFUSED
    for (ptrdiff_t j = 0; j < n; j++)
        h[j] = ((BK_REAL)1 - z[j]) * h[j] + z[j] * c[j];
}

/* The number and the total of the elements of y (256,) that are >= t, both summed in 8 lanes
 * of BK_REAL (counts are exact) in one pass. */
BK_FN void BK_NAME(bk_weigh)(const BK_REAL *y, BK_REAL t, double *count, double *mass)
{
    BK_REAL number[8] = {0}, total[8] = {0};
    for (int k = 0; k < BK_LEVELS; k += 8)
        for (int j = 0; j < 8; j++) {
            int in = y[k + j] >= t;
            number[j] += in ? (BK_REAL)1 : (BK_REAL)0;
            total[j] += in ? y[k + j] : (BK_REAL)0;
        }
    *count = *mass = 0;
    for (int j = 0; j < 8; j++) {
        *count += number[j];
        *mass += total[j];
    }
}

BK_FN BK_REAL BK_NAME(bk_from_bits)(BK_UINT bits)
{
    BK_REAL value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

BK_FN BK_UINT BK_NAME(bk_to_bits)(BK_REAL value)
{
    BK_UINT bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* The cut of the largest elements of y (256,), all >= 0 and at most top: the kept elements are
 * those > *cut plus the first *ties of those == *cut (in level order). Going from the largest
 * down (equal values in level order), an element is kept while the weight of the elements before
 * it is below target; an element weighs 1 (by_mass 0) or its value. count: the number of positive
 * elements, which must weigh at least target. *equal: how many elements are == *cut.
 *
 * No sort of 256 values: the cut is the largest t whose elements >= t weigh at least target.
 * Bisection on the bits of t (for t >= 0 they order like the values), each step one vectorized
 * pass over y (bk_weigh), narrows [lo, hi) down to at most BK_FEW elements (about 6 steps for a
 * trained model's distribution); those few are then sorted and walked in order. */
#define BK_FEW 8
BK_FN void BK_NAME(bk_cut)(const BK_REAL *y, BK_REAL top, double target, int by_mass,
                            double count, BK_REAL *cut, int *ties, int *equal)
{
    BK_UINT lo = 1, hi = BK_NAME(bk_to_bits)(top) + 1, mid;
    double count_hi = 0, mass_hi = 0, count_mid, mass_mid, before;
    BK_REAL few[BK_LEVELS], low, high, value;
    int k, i, n = 0;
    while (hi - lo > 1 && count - count_hi > BK_FEW) {
        mid = lo + (hi - lo) / 2;
        BK_NAME(bk_weigh)(y, BK_NAME(bk_from_bits)(mid), &count_mid, &mass_mid);
        if ((by_mass ? mass_mid : count_mid) >= target) {
            lo = mid;
            count = count_mid;
        } else {
            hi = mid;
            count_hi = count_mid;
            mass_hi = mass_mid;
        }
    }
    low = BK_NAME(bk_from_bits)(lo);
    high = BK_NAME(bk_from_bits)(hi);
    for (k = 0; k < BK_LEVELS; k++) { /* the elements in [lo, hi), largest first */
        value = y[k];
        if (value >= low && value < high) {
            for (i = n++; i > 0 && few[i - 1] < value; i--)
                few[i] = few[i - 1];
            few[i] = value;
        }
    }
    *ties = *equal = 0;
    if (n == 0) { /* only when y holds NaN (weights gone bad): keep what compares */
        *cut = 0;
        return;
    }
    before = by_mass ? mass_hi : count_hi; /* the weight of the elements >= hi, all kept */
    *cut = few[0];
    for (i = 0; i < n && before < target; i++) {
        *ties = few[i] == *cut ? *ties + 1 : 1;
        *cut = few[i];
        before += by_mass ? (double)few[i] : 1.0;
    }
    for (*equal = *ties; i < n && few[i] == *cut; i++)
        (*equal)++;
}

/* Zero the levels of y that bk_cut's (cut, ties, equal) drops. */
BK_FN void BK_NAME(bk_keep)(BK_REAL *y, BK_REAL cut, int ties, int equal)
{
    int k;
    for (k = 0; k < BK_LEVELS; k++)
        y[k] = y[k] >= cut ? y[k] : 0;
    if (ties < equal)
        for (k = 0; k < BK_LEVELS; k++)
            if (y[k] == cut && ties-- <= 0)
                y[k] = 0;
}

/* Truncate the tempered weights y (256,) as `how` says: top_k, then top_p of what is left, then
 * min_p (relative to y[best], the largest). Dropped levels become 0; y[best] always stays. */
BK_FN void BK_NAME(bk_truncate)(BK_REAL *y, int best, const bk_sampling *how)
{
    BK_REAL cut, positive = BK_NAME(bk_from_bits)(1);
    double count, mass;
    int k, ties, equal;
    if (how->top_k > 0 && how->top_k < BK_LEVELS) {
        BK_NAME(bk_weigh)(y, positive, &count, &mass);
        if (count > how->top_k) {
            BK_NAME(bk_cut)(y, y[best], how->top_k, 0, count, &cut, &ties, &equal);
            BK_NAME(bk_keep)(y, cut, ties, equal);
        }
    }
    if (how->top_p < 1) {
        BK_NAME(bk_weigh)(y, positive, &count, &mass);
        BK_NAME(bk_cut)(y, y[best], how->top_p * mass, 1, count, &cut, &ties, &equal);
        BK_NAME(bk_keep)(y, cut, ties, equal);
    }
    if (how->min_p > 0) {
        BK_REAL floor = (BK_REAL)how->min_p * y[best];
        for (k = 0; k < BK_LEVELS; k++)
            y[k] = y[k] >= floor ? y[k] : 0;
    }
}

/* y (256,) logits -> the drawn level.
 *
 * Temperature 0 is argmax. Otherwise p ~ exp((y - max y) / temperature), truncated by
 * bk_truncate, and the level is the first k whose running sum of p (levels 0..255, accumulated
 * in double) exceeds u * sum(p), for a uniform u in [0, 1). When normalize, y receives the
 * normalized p the level is drawn from (at temperature 1 when the temperature is 0). *mean
 * receives sum(p how->values) / sum(p) (in double), the mean of what it draws from; at
 * temperature 0 the likeliest level's value. */
BK_FN int BK_NAME(bk_softmax_draw)(BK_REAL *y, const bk_sampling *how, double u, int normalize,
                                   double *mean)
{
    int k, best = 0;
    BK_REAL top, total = 0, inv_temp;
    double target, acc = 0, temperature = how->temperature;
    for (k = 0; k < BK_LEVELS; k++)
        if (y[k] > y[best])
            best = k;
    *mean = how->values[best];
    if (temperature == 0 && !normalize)
        return best;
    inv_temp = temperature > 0 ? (BK_REAL)(1.0 / temperature) : (BK_REAL)1;
    top = y[best];
    for (k = 0; k < BK_LEVELS; k++)
        y[k] = BK_EXP((y[k] - top) * inv_temp);
    if (how->truncates)
        BK_NAME(bk_truncate)(y, best, how);
    for (k = 0; k < BK_LEVELS; k++)
        total += y[k];
    if (temperature > 0) {
        double part[4] = {0, 0, 0, 0}; /* four sums, so that the adds need not wait on each other */
        for (k = 0; k < BK_LEVELS; k += 4)
            for (int j = 0; j < 4; j++)
                part[j] += (double)y[k + j] * how->values[k + j];
        *mean = ((part[0] + part[1]) + (part[2] + part[3])) / (double)total;
    }
    if (normalize) {
        for (k = 0; k < BK_LEVELS; k++)
            y[k] /= total;
        total = 1;
    }
    if (temperature == 0)
        return best;
    target = u * total;
    for (k = 0; k < BK_LEVELS; k++) {
        acc += y[k];
        if (acc > target && y[k] > 0)
            return k;
    }
    for (k = BK_LEVELS - 1; k >= 0; k--)
        if (y[k] > 0)
            return k;
    return best;
}

/* Flat core parameters (layout in gates.pxi) -> packed panels (bk_packed_size elements). */
BK_FN void BK_NAME(bk_pack)(const BK_REAL *params, int layers, ptrdiff_t H, BK_REAL *packed)
{
    ptrdiff_t Hp = bk_padded(H), G = 3 * H, i, j, g;
    const BK_REAL *src = params;
    memset(packed, 0, (size_t)bk_packed_size(layers, H) * sizeof(BK_REAL));
    for (int layer = 0; layer < layers; layer++) {
        ptrdiff_t X = layer == 0 ? BK_LEVELS : H, Kx = layer == 0 ? 0 : Hp, K = Kx + Hp;
        const BK_REAL *WxT = src, *UhT = src + X * G, *b = UhT + H * G;
        BK_REAL *dst = packed + bk_packed_offset(layer, Hp), *rz, *cand;
        if (layer == 0) {
            for (i = 0; i < BK_LEVELS; i++)
                for (g = 0; g < 3; g++)
                    for (j = 0; j < H; j++)
                        dst[i * 3 * Hp + g * Hp + j] = WxT[i * G + g * H + j] + b[g * H + j];
            rz = dst + BK_LEVELS * 3 * Hp;
        } else {
            for (g = 0; g < 3; g++)
                for (j = 0; j < H; j++)
                    dst[g * Hp + j] = b[g * H + j];
            rz = dst + 3 * Hp;
        }
        cand = rz + K * 2 * Hp;
        /* Column c of gate g, unit j lives in panel (g Hp + j) / P at row i, column j % P. */
        for (g = 0; g < 3; g++) {
            BK_REAL *base = g < 2 ? rz + (g * Hp / BK_PANEL) * K * BK_PANEL : cand;
            for (j = 0; j < H; j++) {
                BK_REAL *col = base + (j / BK_PANEL) * K * BK_PANEL + j % BK_PANEL;
                if (layer > 0)
                    for (i = 0; i < H; i++)
                        col[i * BK_PANEL] = WxT[i * G + g * H + j];
                for (i = 0; i < H; i++)
                    col[(Kx + i) * BK_PANEL] = UhT[i * G + g * H + j];
            }
        }
        src = b + G;
    }
    BK_REAL *wy = packed + bk_packed_offset(layers, Hp);
    for (j = 0; j < BK_LEVELS; j++)
        for (i = 0; i < H; i++)
            wy[(j / BK_PANEL) * Hp * BK_PANEL + i * BK_PANEL + j % BK_PANEL] = src[i * BK_LEVELS + j];
    memcpy(wy + Hp * BK_LEVELS, src + H * BK_LEVELS, BK_LEVELS * sizeof(BK_REAL));
}

/* The steps of one thread out of `nthreads` (see sample_kernel.h); barriers are no-ops when
 * there is no enclosing parallel region. */
BK_FN void BK_NAME(bk_one_worker)(const BK_REAL *packed, const uint16_t *half, int layers,
                                   ptrdiff_t H, const BK_REAL *cond, BK_REAL *h, BK_REAL *rh, BK_REAL *z,
                                   BK_REAL *logits, int *level,
                                   unsigned char *out, BK_REAL *means, ptrdiff_t n,
                                   const unsigned char *hint,
                                   ptrdiff_t n_hint, const double *uniform, BK_REAL *probs,
                                   ptrdiff_t n_probs, const bk_sampling *how, int tid, int nthreads)
{
    ptrdiff_t Hp = bk_padded(H), nu = Hp / BK_PANEL, no = BK_LEVELS / BK_PANEL;
    ptrdiff_t q0 = nu * tid / nthreads, q1 = nu * (tid + 1) / nthreads;
    ptrdiff_t o0 = no * tid / nthreads, o1 = no * (tid + 1) / nthreads;
    const BK_REAL *wy = packed + bk_packed_offset(layers, Hp), *by = wy + Hp * BK_LEVELS;
    int lvl = *level; /* the level the model hears at the next step */
    ptrdiff_t quiet = how->wake_after > 0 ? how->quiet[0] : 0; /* each thread its own copy */
    for (ptrdiff_t t = 0; t < n; t++) {
        for (int layer = 0; layer < layers; layer++) {
            const BK_REAL *base = packed + bk_packed_offset(layer, Hp), *init, *rz, *cand;
            const BK_REAL *x = layer == 0 ? NULL : h + (layer - 1) * Hp;
            ptrdiff_t Kx = layer == 0 ? 0 : Hp, K = Kx + Hp;
            BK_REAL *hl = h + layer * Hp;
            const BK_REAL *shift = layer == 0 ? cond : NULL;
            if (layer == 0) {
                init = base + (ptrdiff_t)lvl * 3 * Hp;
                rz = base + BK_LEVELS * 3 * Hp;
            } else {
                init = base;
                rz = base + 3 * Hp;
            }
            cand = rz + K * 2 * Hp;
            for (ptrdiff_t q = q0; q < q1; q++) {
                BK_REAL *r = rh + q * BK_PANEL, *zq = z + q * BK_PANEL;
                memcpy(r, init + q * BK_PANEL, BK_PANEL * sizeof(BK_REAL));
                memcpy(zq, init + Hp + q * BK_PANEL, BK_PANEL * sizeof(BK_REAL));
                if (shift) {
                    BK_NAME(bk_add)(r, shift + q * BK_PANEL, BK_PANEL);
                    BK_NAME(bk_add)(zq, shift + Hp + q * BK_PANEL, BK_PANEL);
                }
                BK_NAME(bk_weights)(packed, half, rz + q * K * BK_PANEL, Kx, x, Hp, hl, r);
                BK_NAME(bk_weights)(packed, half, rz + (nu + q) * K * BK_PANEL, Kx, x, Hp, hl, zq);
                BK_NAME(bk_sigmoid)(r, BK_PANEL);
                BK_NAME(bk_sigmoid)(zq, BK_PANEL);
                for (int j = 0; j < BK_PANEL; j++)
                    r[j] *= hl[q * BK_PANEL + j];
            }
#ifdef _OPENMP
#pragma omp barrier
#endif
            for (ptrdiff_t q = q0; q < q1; q++) {
                BK_REAL c[BK_PANEL];
                BK_REAL *hq = hl + q * BK_PANEL, *zq = z + q * BK_PANEL;
                memcpy(c, init + 2 * Hp + q * BK_PANEL, BK_PANEL * sizeof(BK_REAL));
                if (shift)
                    BK_NAME(bk_add)(c, shift + 2 * Hp + q * BK_PANEL, BK_PANEL);
                BK_NAME(bk_weights)(packed, half, cand + q * K * BK_PANEL, Kx, x, Hp, rh, c);
                BK_NAME(bk_tanh)(c, BK_PANEL);
                BK_NAME(bk_update)(hq, zq, c, BK_PANEL);
            }
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
        for (ptrdiff_t o = o0; o < o1; o++) {
            BK_REAL *y = logits + o * BK_PANEL;
            memcpy(y, by + o * BK_PANEL, BK_PANEL * sizeof(BK_REAL));
            BK_NAME(bk_weights)(packed, half, wy + o * Hp * BK_PANEL, 0, NULL, Hp, h + (layers - 1) * Hp, y);
        }
#ifdef _OPENMP
#pragma omp barrier
#endif
        /* Every thread draws from its own copy of the logits (same numbers, same level), so
         * no barrier is needed before the next step; logits is rewritten only after the next
         * step's first barrier. */
        {
            BK_REAL y[BK_LEVELS];
            double mean, unused;
            int drawn;
            memcpy(y, logits, BK_LEVELS * sizeof(BK_REAL));
            if (t < n_hint) {
                drawn = hint[t];
                mean = how->values[drawn];
                if (t < n_probs)
                    BK_NAME(bk_softmax_draw)(y, how, 0.0, 1, &unused);
            } else {
                drawn = BK_NAME(bk_softmax_draw)(y, how, uniform[t], t < n_probs, &mean);
            }
            lvl = bk_heard(how, drawn, t < n_hint ? 0.0 : uniform[t], t < n_hint, &quiet);
            if (tid == 0) {
                if (t < n_probs)
                    memcpy(probs + t * BK_LEVELS, y, BK_LEVELS * sizeof(BK_REAL));
                out[t] = (unsigned char)drawn;
                means[t] = (BK_REAL)mean;
            }
        }
    }
    if (tid == 0) {
        *level = lvl;
        if (how->wake_after > 0)
            how->quiet[0] = quiet;
    }
}

/* n steps of one stream. half: NULL, or the half panels of a float32 model (bk_pack_half): its
 * products in bfloat16 (sample_kernel.h). cond (3Hp) or NULL: added to layer 0's gate pre-activations at every
 * step (as if layer 0's bias were b + cond), padding zero. h (layers, Hp): hidden state, padding
 * zero; scratch: 2 Hp + 256 elements; level: the level fed before the first step, on return the
 * one to feed next (bk_heard: the last drawn, or with how->wake_after its dithered silence) and
 * how->quiet[0] the stream's silent levels in a row. out (n,) receives the levels, means (n,) the mean of each step's distribution
 * (bk_softmax_draw; a hinted step's: its level's value). uniform[t] is read for steps
 * t >= n_hint when how->temperature > 0; probs (n_probs, 256) is filled. */
BK_FN void BK_NAME(bk_run_one)(const BK_REAL *packed, const uint16_t *half, int layers, ptrdiff_t H,
                                const BK_REAL *cond, BK_REAL *h, BK_REAL *scratch, int *level,
                                unsigned char *out, BK_REAL *means, ptrdiff_t n,
                                const unsigned char *hint, ptrdiff_t n_hint, const double *uniform,
                                BK_REAL *probs, ptrdiff_t n_probs, const bk_sampling *how,
                                int threads)
{
    ptrdiff_t Hp = bk_padded(H);
    BK_REAL *rh = scratch, *z = scratch + Hp, *logits = scratch + 2 * Hp;
#ifdef _OPENMP
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        BK_NAME(bk_one_worker)(packed, half, layers, H, cond, h, rh, z, logits, level, out, means, n,
                               hint, n_hint, uniform, probs, n_probs, how, omp_get_thread_num(),
                               omp_get_num_threads());
        return;
    }
#endif
    (void)threads;
    BK_NAME(bk_one_worker)(packed, half, layers, H, cond, h, rh, z, logits, level, out, means, n, hint,
                           n_hint, uniform, probs, n_probs, how, 0, 1);
}

/* bk_run_one over n steps, choosing 1 or `threads` threads piece by piece with the tuner. */
BK_FN void BK_NAME(bk_run_one_tuned)(bk_tuner *tuner, const BK_REAL *packed,
                                      const uint16_t *half, int layers,
                                      ptrdiff_t H, const BK_REAL *cond, BK_REAL *h,
                                      BK_REAL *scratch, int *level,
                                      unsigned char *out, BK_REAL *means, ptrdiff_t n,
                                      const unsigned char *hint,
                                      ptrdiff_t n_hint, const double *uniform, BK_REAL *probs,
                                      ptrdiff_t n_probs, const bk_sampling *how, int threads)
{
    ptrdiff_t t = 0;
#ifndef _OPENMP
    threads = 1;
#endif
    while (t < n) {
        int probe = -1, use;
        ptrdiff_t len = n - t;
        if (threads > 1) {
            if (tuner->cost[0] < 0 || tuner->cost[1] < 0)
                probe = tuner->cost[0] < 0 ? 0 : 1;
            else if (tuner->pieces >= tuner->interval)
                probe = tuner->cost[1] <= tuner->cost[0] ? 0 : 1;
        }
        use = probe >= 0 ? probe : threads > 1 && tuner->cost[1] <= tuner->cost[0];
        if (probe >= 0 && len > BK_PROBE)
            len = BK_PROBE;
        ptrdiff_t hinted = n_hint <= t ? 0 : n_hint < t + len ? n_hint - t : len;
        ptrdiff_t recorded = n_probs <= t ? 0 : n_probs < t + len ? n_probs - t : len;
        double start = bk_now(), per_step;
        BK_NAME(bk_run_one)(packed, half, layers, H, cond, h, scratch, level, out + t, means + t, len,
                            hinted ? hint + t : NULL, hinted, uniform + t,
                            recorded ? probs + t * BK_LEVELS : NULL, recorded, how,
                            use ? threads : 1);
        per_step = (bk_now() - start) / (double)len;
        if (probe >= 0 && tuner->cost[0] >= 0 && tuner->cost[1] >= 0) {
            int lost = per_step > tuner->cost[1 - probe];
            tuner->interval = lost ? 2 * tuner->interval : BK_REPROBE;
            if (tuner->interval > BK_REPROBE_MAX)
                tuner->interval = BK_REPROBE_MAX;
            tuner->pieces = 0;
        }
        tuner->cost[use] = tuner->cost[use] < 0 ? per_step : 0.5 * (tuner->cost[use] + per_step);
        tuner->pieces++;
        t += len;
    }
}

/* C (M rows, stride ldc; 64 columns per panel) += [X1, X2] times `panels` consecutive packed
 * panels of K1 + K2 rows, in tiles of rows by 16 columns or more. */
BK_FN void BK_NAME(bk_product)(const BK_REAL *w, ptrdiff_t panels, ptrdiff_t M, ptrdiff_t K1,
                                const BK_REAL *x1, ptrdiff_t ldx1, ptrdiff_t K2,
                                const BK_REAL *x2, ptrdiff_t ldx2, BK_REAL *c, ptrdiff_t ldc)
{
#if BK_TILES
    const int rows = BK_NAME(bk_tile_rows), S = BK_NAME(bk_tile_slices);
    for (ptrdiff_t p = 0; p < panels; p++, w += (K1 + K2) * BK_PANEL)
        for (int j = 0; j < BK_PANEL; j += S * 16)
            for (ptrdiff_t r = 0, R; r < M; r += R) {
                R = bk_tile_height(M - r, rows);
                BK_NAME(bk_tile_fn) run = BK_NAME(bk_tiles)[S][R];
                float *cr = c + r * ldc + p * BK_PANEL + j;
                if (K1 > 0)
                    run(K1, x1 + r * ldx1, ldx1, 1, w + j, BK_PANEL, 16, cr, ldc, 1);
                run(K2, x2 + r * ldx2, ldx2, 1, w + K1 * BK_PANEL + j, BK_PANEL, 16, cr, ldc, 1);
            }
#else
    for (ptrdiff_t p = 0; p < panels; p++, w += (K1 + K2) * BK_PANEL)
        for (int j = 0; j < BK_PANEL; j += 16)
            for (ptrdiff_t r = 0; r < M; r++) {
                BK_REAL *cr = c + r * ldc + p * BK_PANEL + j;
                const BK_REAL *wi = w + j;
                for (ptrdiff_t i = 0; i < K1; i++, wi += BK_PANEL)
                    for (int jj = 0; jj < 16; jj++)
                        cr[jj] += x1[r * ldx1 + i] * wi[jj];
                for (ptrdiff_t i = 0; i < K2; i++, wi += BK_PANEL)
                    for (int jj = 0; jj < 16; jj++)
                        cr[jj] += x2[r * ldx2 + i] * wi[jj];
            }
#endif
}

/* bk_product, or from the half panels at the same offset as w when half is not NULL (float only;
 * packed: the float panels w lies in; scratch: bk_half_streams'). */
BK_FN void BK_NAME(bk_streams_product)(const BK_REAL *packed, const uint16_t *half, uint32_t *words,
                                        const BK_REAL *w, ptrdiff_t panels, ptrdiff_t M,
                                        ptrdiff_t K1, const BK_REAL *x1, ptrdiff_t ldx1,
                                        ptrdiff_t K2, const BK_REAL *x2, ptrdiff_t ldx2,
                                        BK_REAL *c, ptrdiff_t ldc)
{
#if BK_IS_FLOAT
    if (half) {
        BK_NAME(bk_half_streams)(half + (w - packed), panels, M, K1, x1, ldx1, K2, x2, ldx2, c, ldc,
                                 words);
        return;
    }
#else
    (void)packed;
    (void)half;
    (void)words;
#endif
    BK_NAME(bk_product)(w, panels, M, K1, x1, ldx1, K2, x2, ldx2, c, ldc);
}

/* Steps t0..t1-1 of streams s0..s1-1 out of S, on the packed panels. cond (S, 3Hp) or NULL:
 * stream s's layer 0 gate pre-activations get + cond[s] at every step (padding zero).
 * hs (S, layers * Hp): per stream the hidden states of all layers (padding zero); pre (S, 3Hp),
 * rh (S, Hp), logits (S, 256) scratch. levels (S, n) out, means (S, n) the mean of each step's
 * distribution (as bk_run_one's); hint (S, hint_stride): stream s takes
 * hint[s, t] for t < hint_length[s] instead of drawing; probs (S, n_probs, 256) or NULL;
 * previous (S,) the level fed into the next step (bk_heard: the drawn one, or with how->wake_after
 * its dithered silence). uniform[(t - t0) * S + s] is stream s's
 * draw at step t. The arithmetic of a stream does not depend on the grouping of streams. half:
 * NULL, or the half panels of a float32 model (bk_pack_half), its products in bfloat16 as one
 * stream's are, with words (S, 2 Hp) of scratch. */
BK_FN void BK_NAME(bk_run_streams)(const BK_REAL *packed, const uint16_t *half, uint32_t *words,
                                    int layers, ptrdiff_t H, ptrdiff_t S,
                                    const BK_REAL *cond, BK_REAL *hs, BK_REAL *pre, BK_REAL *rh,
                                    BK_REAL *logits,
                                    unsigned char *previous, unsigned char *levels,
                                    BK_REAL *means, ptrdiff_t n,
                                    const unsigned char *hint, ptrdiff_t hint_stride,
                                    const ptrdiff_t *hint_length, BK_REAL *probs,
                                    ptrdiff_t n_probs, const double *uniform, ptrdiff_t t0,
                                    ptrdiff_t t1, const bk_sampling *how, ptrdiff_t s0,
                                    ptrdiff_t s1)
{
    ptrdiff_t Hp = bk_padded(H), nu = Hp / BK_PANEL, LH = layers * Hp, M = s1 - s0, G = 3 * Hp;
    const BK_REAL *wy = packed + bk_packed_offset(layers, Hp), *by = wy + Hp * BK_LEVELS;
    uint32_t *own_words = words ? words + s0 * 2 * Hp : NULL;
    for (ptrdiff_t t = t0; t < t1; t++) {
        for (int layer = 0; layer < layers; layer++) {
            const BK_REAL *base = packed + bk_packed_offset(layer, Hp), *rz, *cand;
            ptrdiff_t Kx = layer == 0 ? 0 : Hp, K = Kx + Hp, s;
            BK_REAL *hl = hs + s0 * LH + layer * Hp;
            rz = base + (layer == 0 ? BK_LEVELS * 3 * Hp : 3 * Hp);
            cand = rz + K * 2 * Hp;
            for (s = s0; s < s1; s++)
                memcpy(pre + s * G, layer == 0 ? base + (ptrdiff_t)previous[s] * G : base,
                       G * sizeof(BK_REAL));
            if (layer == 0 && cond)
                for (s = s0; s < s1; s++)
                    BK_NAME(bk_add)(pre + s * G, cond + s * G, G);
            const BK_REAL *x = layer == 0 ? hl : hl - Hp;
            BK_NAME(bk_streams_product)(packed, half, own_words, rz, 2 * nu, M, Kx, x, LH, Hp, hl, LH,
                                        pre + s0 * G, G);
            for (s = s0; s < s1; s++) {
                BK_REAL *a = pre + s * G, *h = hs + s * LH + layer * Hp, *rs = rh + s * Hp;
                BK_NAME(bk_sigmoid)(a, 2 * Hp);
                for (ptrdiff_t j = 0; j < Hp; j++)
                    rs[j] = a[j] * h[j];
            }
            BK_NAME(bk_streams_product)(packed, half, own_words, cand, nu, M, Kx, x, LH, Hp, rh + s0 * Hp,
                                        Hp, pre + s0 * G + 2 * Hp, G);
            for (s = s0; s < s1; s++) {
                BK_REAL *a = pre + s * G, *h = hs + s * LH + layer * Hp;
                BK_NAME(bk_tanh)(a + 2 * Hp, Hp);
                BK_NAME(bk_update)(h, a + Hp, a + 2 * Hp, Hp);
            }
        }
        for (ptrdiff_t s = s0; s < s1; s++)
            memcpy(logits + s * BK_LEVELS, by, BK_LEVELS * sizeof(BK_REAL));
        BK_NAME(bk_streams_product)(packed, half, own_words, wy, BK_LEVELS / BK_PANEL, M, 0,
                                    hs + s0 * LH, LH, Hp, hs + s0 * LH + (layers - 1) * Hp, LH,
                                    logits + s0 * BK_LEVELS, BK_LEVELS);
        for (ptrdiff_t s = s0; s < s1; s++) {
            BK_REAL *y = logits + s * BK_LEVELS;
            int chosen;
            double mean, unused;
            if (t < hint_length[s]) {
                chosen = hint[s * hint_stride + t];
                mean = how->values[chosen];
                if (t < n_probs)
                    BK_NAME(bk_softmax_draw)(y, how, 0.0, 1, &unused);
            } else {
                chosen = BK_NAME(bk_softmax_draw)(y, how, uniform[(t - t0) * S + s],
                                                  t < n_probs, &mean);
            }
            if (t < n_probs)
                memcpy(probs + (s * n_probs + t) * BK_LEVELS, y, BK_LEVELS * sizeof(BK_REAL));
            levels[s * n + t] = (unsigned char)chosen;
            means[s * n + t] = (BK_REAL)mean;
            int hinted = t < hint_length[s];
            double u = hinted ? 0.0 : uniform[(t - t0) * S + s];
            previous[s] = (unsigned char)bk_heard(how, chosen, u, hinted,
                                                  how->wake_after > 0 ? how->quiet + s : NULL);
        }
    }
}

#undef BK_UINT
#undef BK_EXP
#undef BK_TANH
#undef BK_SIGMOID
#undef BK_TILES
#undef BK_FEW

#else /* the dispatchers: the version of the level in use */

static inline void BK_TWIN(bk_pack)(const BK_REAL *params, int layers, ptrdiff_t H, BK_REAL *packed)
{
    BK_PICK(BK_TWIN(bk_pack))(params, layers, H, packed);
}

static inline void BK_TWIN(bk_run_one_tuned)(bk_tuner *tuner, const BK_REAL *packed,
                                      const uint16_t *half, int layers,
                                      ptrdiff_t H, const BK_REAL *cond, BK_REAL *h,
                                      BK_REAL *scratch, int *level,
                                      unsigned char *out, BK_REAL *means, ptrdiff_t n,
                                      const unsigned char *hint,
                                      ptrdiff_t n_hint, const double *uniform, BK_REAL *probs,
                                      ptrdiff_t n_probs, const bk_sampling *how, int threads)
{
    BK_PICK(BK_TWIN(bk_run_one_tuned))(tuner, packed, half, layers, H, cond, h, scratch, level, out,
                                       means, n, hint, n_hint, uniform, probs, n_probs, how,
                                       threads);
}

static inline void BK_TWIN(bk_run_streams)(const BK_REAL *packed, const uint16_t *half,
                                           uint32_t *words, int layers, ptrdiff_t H,
                                           ptrdiff_t S, const BK_REAL *cond, BK_REAL *hs,
                                           BK_REAL *pre, BK_REAL *rh,
                                           BK_REAL *logits, unsigned char *previous,
                                           unsigned char *levels, BK_REAL *means, ptrdiff_t n,
                                           const unsigned char *hint, ptrdiff_t hint_stride,
                                           const ptrdiff_t *hint_length, BK_REAL *probs,
                                           ptrdiff_t n_probs, const double *uniform,
                                           ptrdiff_t t0, ptrdiff_t t1, const bk_sampling *how,
                                           ptrdiff_t s0, ptrdiff_t s1)
{
    BK_PICK(BK_TWIN(bk_run_streams))(packed, half, words, layers, H, S, cond, hs, pre, rh, logits, previous,
                                     levels, means, n, hint, hint_stride, hint_length, probs, n_probs,
                                     uniform, t0, t1, how, s0, s1);
}

#endif
