/* One-stream sampling on block-sparse weights, in float (the model's dtype) or int8 (C, included
 * from csrc/_sample.pyx after sample_kernel.h; the code is in sparse_twin.h).
 *
 * A sparse model (blekota.sparsity: blocks of 8 units of one gate by 4 inputs, the pruned ones
 * exactly zero) is mostly zeros, so a step reads only the kept blocks: at density 0.1 the
 * default model's weights fit in the L2 cache of one core, and one thread runs faster than the
 * dense kernel on two. blekota.sampler packs the weights (in NumPy) into this format:
 *
 *   the products of a step, in order: for each layer, "rz" ([x, h] -> [r, z], 2 Hp columns) and
 *   "c" ([x, r*h] -> candidate, Hp columns); x, the layer below's state, is absent for layer 0
 *   (Kx = 0 rows), else Kx = Hp rows before the h rows. Hp = H rounded up to 64 (as the dense
 *   sampler's); padding units stay exactly 0.
 *   The output columns are taken in groups of 8, and the groups in sets of four (BK_GROUPS
 *   below): a product's groups ordered by their number of kept blocks (ties by column), and
 *   each four in that order a set, so that the lists of a set are near the same length. Each
 *   group's kept blocks are listed in increasing row order and padded with zero blocks at the
 *   end to the set's longest list, n.
 *   index (int32): per product, per set: n, then the first output column of each of its 4
 *       groups (a multiple of 8, counted from the product's first column; each group of the
 *       product in exactly one set), then (n, 4) the first input row (a multiple of 4, rows of
 *       [x, h] counted from 0) of block b of each group.
 *   float weights: per block in index order, 4 rows of 8 columns (row-major).
 *   int8 weights: per block in index order, 8 columns of 4 rows (column-major: the 4 bytes of
 *       column j are one 32-bit lane, as VNNI's vpdpbusd reads them), and per output column, in
 *       the sets' column order (32 per set), a scale s and an offset o: the product is
 *       (sum of q(v) w8 - o) s, where q(v) = round(127 v) + 127
 *       in [0, 254] is the activation v in [-1, 1] as an unsigned byte (o = 127 times the sum
 *       of the column's w8, s = max |w| of the column / 127^2).
 *   Int8 adds a last product, the output layer (h of the top layer -> 256 logits), with all
 *   its blocks; float runs the output layer on the dense sampler's panels.
 *   Layer 0's table row (plus cond, when given, as in sample_kernel.h) and the biases are read
 *   from the dense sampler's packed weights.
 *
 * The float kernel adds each column's terms in the dense kernel's order (input rows ascending,
 * one multiply-add each), skipping zero blocks: it draws the same levels as the dense kernel
 * for the same seed. The int8 sums are exact integers; they run on AVX-512 VNNI, on AVX2 or SSE2
 * (the portable level on x86-64; bytes widened to 16 bits, exact) or in plain C, all with the
 * same result.
 */
#ifndef BLEKOTA_SPARSE_KERNEL_H
#define BLEKOTA_SPARSE_KERNEL_H

#include <stdint.h>

#include "sample_kernel.h"

#define BK_BLOCK_COLUMNS 8
#define BK_BLOCK_ROWS 4

/* The packed products and where a step's walk through them stands: index, then the float
 * weights, or (float only) the int8 bytes with each column's scale and offset (bytes NULL: float). */
#define BK_WALK(real)                                                                            \
    struct {                                                                                     \
        const int32_t *index;                                                                    \
        const real *weights;                                                                     \
        const int8_t *bytes;                                                                     \
        const float *scale;                                                                      \
        const int32_t *offset;                                                                   \
    }
typedef BK_WALK(float) bk_walk_f;
typedef BK_WALK(double) bk_walk_d;

/* q(v) = round(127 v) + 127, clamped to [0, 254], for the n elements of v. */
static inline void bk_quantize_u8(const float *v, uint8_t *q, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++) {
        float t = v[j] * 127.0f + 127.5f;
        t = t < 0.0f ? 0.0f : t > 254.0f ? 254.0f : t;
        q[j] = (uint8_t)(int)t;
    }
}

/* Four groups of 8 columns (32 columns) are stepped together, so that their four sums are four
 * independent chains of multiply-adds; each group's block list is padded with zero blocks to
 * the longest of the four (adding a zero term changes no sum). */
#define BK_GROUPS 4

/* sum[32] = the integer sums of one set of four groups over n padded blocks each: rows (n, 4)
 * the first row of block b of group k, w (n, 4, 8, 4) bytes. The baseline of x86-64 (SSE2): each
 * 8 x 4 block as four quarters of 2 columns widened to 16 bits, multiplied with the 4 input bytes
 * by pmaddwd (pairs summed exactly in 32 bits), the pairs of each column added at the end; about
 * 5x the plain C loop, which compilers leave scalar. Elsewhere: plain C. */
#ifdef __SSE2__
#include <emmintrin.h>

static inline void bk_int8_set_portable(const int32_t *rows, ptrdiff_t n, const uint8_t *q,
                                        const int8_t *w, int32_t *sum)
{
    const __m128i zero = _mm_setzero_si128();
    for (int k = 0; k < BK_GROUPS; k++) {
        __m128i acc[4] = {zero, zero, zero, zero};
        int32_t pairs[16];
        const int8_t *block = w + 32 * k;
        for (ptrdiff_t b = 0; b < n; b++, block += 32 * BK_GROUPS) {
            int32_t four;
            memcpy(&four, q + rows[BK_GROUPS * b + k], 4);
            __m128i x = _mm_unpacklo_epi8(_mm_set1_epi32(four), zero); /* q0..q3 twice, 16 bits */
            __m128i low = _mm_loadu_si128((const __m128i *)block);
            __m128i high = _mm_loadu_si128((const __m128i *)(block + 16));
            __m128i quarters[4] = {_mm_unpacklo_epi8(low, low), _mm_unpackhi_epi8(low, low),
                                   _mm_unpacklo_epi8(high, high), _mm_unpackhi_epi8(high, high)};
            for (int h = 0; h < 4; h++) /* each byte doubled, shifted down: sign-extended */
                acc[h] = _mm_add_epi32(acc[h], _mm_madd_epi16(x, _mm_srai_epi16(quarters[h], 8)));
        }
        for (int h = 0; h < 4; h++)
            _mm_storeu_si128((__m128i *)(pairs + 4 * h), acc[h]);
        for (int j = 0; j < BK_BLOCK_COLUMNS; j++)
            sum[8 * k + j] = pairs[2 * j] + pairs[2 * j + 1];
    }
}
#else
static inline void bk_int8_set_portable(const int32_t *rows, ptrdiff_t n, const uint8_t *q,
                                        const int8_t *w, int32_t *sum)
{
    for (int j = 0; j < BK_GROUPS * BK_BLOCK_COLUMNS; j++)
        sum[j] = 0;
    for (ptrdiff_t b = 0; b < n; b++)
        for (int k = 0; k < BK_GROUPS; k++, w += 32) {
            const uint8_t *qb = q + rows[BK_GROUPS * b + k];
            for (int j = 0; j < BK_BLOCK_COLUMNS; j++)
                sum[8 * k + j] += qb[0] * w[4 * j] + qb[1] * w[4 * j + 1]
                                  + qb[2] * w[4 * j + 2] + qb[3] * w[4 * j + 3];
        }
}
#endif

#ifdef BK_X86
/* The same with AVX2: each 8 x 4 block as two halves of 4 columns widened to 16 bits, multiplied
 * with the 4 input bytes by vpmaddwd (pairs summed exactly in 32 bits); the pairs of each column
 * are added once at the end. */
BK_TARGET_AVX2 static void bk_int8_set_avx2(const int32_t *rows, ptrdiff_t n, const uint8_t *q,
                                            const int8_t *w, int32_t *sum)
{
    __m256i lo[BK_GROUPS], hi[BK_GROUPS];
    for (int k = 0; k < BK_GROUPS; k++)
        lo[k] = hi[k] = _mm256_setzero_si256();
    for (ptrdiff_t b = 0; b < n; b++)
        for (int k = 0; k < BK_GROUPS; k++, w += 32) {
            int32_t four;
            memcpy(&four, q + rows[BK_GROUPS * b + k], 4);
            __m256i x = _mm256_cvtepu8_epi16(_mm_set1_epi32(four));
            __m256i w_lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
            __m256i w_hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16)));
            lo[k] = _mm256_add_epi32(lo[k], _mm256_madd_epi16(x, w_lo));
            hi[k] = _mm256_add_epi32(hi[k], _mm256_madd_epi16(x, w_hi));
        }
    for (int k = 0; k < BK_GROUPS; k++) {
        /* lo: columns 0-3 as pairs (0, 0, 1, 1 | 2, 2, 3, 3); hi: columns 4-7 */
        __m256i pairs = _mm256_hadd_epi32(lo[k], hi[k]); /* 0, 1, 4, 5 | 2, 3, 6, 7 */
        _mm256_storeu_si256((__m256i *)(sum + 8 * k),
                            _mm256_permute4x64_epi64(pairs, _MM_SHUFFLE(3, 1, 2, 0)));
    }
}

/* The same with AVX-512 VNNI (vpdpbusd on 256-bit vectors): one instruction per block. */
__attribute__((target("avx512f,avx512vl,avx512vnni,avx2,fma"))) static void
bk_int8_set_vnni(const int32_t *rows, ptrdiff_t n, const uint8_t *q, const int8_t *w,
                 int32_t *sum)
{
    __m256i acc[BK_GROUPS];
    for (int k = 0; k < BK_GROUPS; k++)
        acc[k] = _mm256_setzero_si256();
    for (ptrdiff_t b = 0; b < n; b++)
        for (int k = 0; k < BK_GROUPS; k++, w += 32) {
            int32_t four;
            memcpy(&four, q + rows[BK_GROUPS * b + k], 4);
            acc[k] = _mm256_dpbusd_epi32(acc[k], _mm256_set1_epi32(four),
                                         _mm256_loadu_si256((const __m256i *)w));
        }
    for (int k = 0; k < BK_GROUPS; k++)
        _mm256_storeu_si256((__m256i *)(sum + 8 * k), acc[k]);
}

static inline int bk_cpu_has_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
}
#endif

/* The int8 path in use: "vnni", "avx2" or "portable", from the CPU level (cpu.h). */
static inline const char *bk_int8_path(void)
{
#ifdef BK_X86
    if (bk_cpu_level() == BK_AVX512 && bk_cpu_has_vnni())
        return "vnni";
    if (bk_cpu_level() >= BK_AVX2)
        return "avx2";
#endif
    return "portable";
}

typedef void (*bk_int8_set_fn)(const int32_t *rows, ptrdiff_t n, const uint8_t *q,
                               const int8_t *w, int32_t *sum);

static inline bk_int8_set_fn bk_int8_set(void)
{
#ifdef BK_X86
    if (bk_cpu_level() == BK_AVX512 && bk_cpu_has_vnni())
        return bk_int8_set_vnni;
    if (bk_cpu_level() >= BK_AVX2)
        return bk_int8_set_avx2;
#endif
    return bk_int8_set_portable;
}

#define BK_TEMPLATE "sparse_twin.h"
#include "twins.h"

#endif /* BLEKOTA_SPARSE_KERNEL_H */
