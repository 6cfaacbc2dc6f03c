/* Sampling kernels (C, included from csrc/_sample.pyx; the code is in sample_twin.h): the fused
 * one-stream step, the many-stream step and the softmax-and-draw they share.
 *
 * One stream is memory bound: each step reads every weight once (4 MiB for the default float32
 * model), so the weights are repacked once per generation into panels that a step streams through
 * front to back. A panel holds P = BK_PANEL consecutive output columns of one product for all its
 * K input rows, row-major (K, P): the product is K broadcast-multiply-adds into P accumulators
 * that stay in registers, with no horizontal sums and no strided reads.
 *
 * Packed layout (elements; Hp = H rounded up to a multiple of P, padding is zero; nu = Hp / P):
 *   layer 0:   emb (256, 3Hp)   input row of each level plus bias, gate blocks [r, z, candidate]
 *              rz  (2 nu panels of (Hp, P))        h -> [r, z] pre-activations
 *              c   (nu panels of (Hp, P))          r*h -> candidate pre-activation
 *   layer l>0: bias (3Hp)
 *              rz  (2 nu panels of (2Hp, P))       [x, h] -> [r, z]   (x: the layer below's h)
 *              c   (nu panels of (2Hp, P))         [x, r*h] -> candidate
 *   output:    Wy  (256 / P panels of (Hp, P)), by (256)
 * Zero padding keeps padded hidden units exactly 0 (z = 1/2, candidate = tanh 0 = 0).
 *
 * Conditioning: every kernel takes cond, NULL or per stream a vector (3Hp, gate blocks
 * [r, z, candidate], padding zero) added to the emb row of the level fed, before the products,
 * at every step: as if layer 0's bias were b + cond, up to rounding ((input row + b) + cond
 * instead of input row + (b + cond)). NULL adds nothing.
 *
 * With T threads, one OpenMP parallel region runs a whole block of steps; thread t owns a
 * contiguous range of unit panels (the same units in r, z and the candidate) and of output panels.
 * Per step and layer: [r, z] of own units, r*h; barrier; candidate and h of own units; barrier.
 * Then own logits; barrier; every thread applies softmax, temperature, truncation and the draw
 * to its own copy of the logits (2 L + 1 barriers per step).
 * bk_run_one_tuned picks 1 or all threads block by block (see bk_tuner).
 *
 * Many streams are compute bound: each thread steps its own group of streams through the same
 * panels in register tiles of several streams (tiles_twin.h), so every weight is read once per
 * tile instead of once per stream.
 *
 * bfloat16 products (one stream of a float32 model, bk_run_one's `half`): the products' weights
 * come from a second array of 16-bit elements at the same offsets as the float panels (bk_pack_half),
 * half the bytes a step reads; the table rows and biases still come from the float panels.
 *
 * Everything is compiled for each CPU level of cpu.h (sample_twin.h, twinned by twins.h); the
 * elementwise math is fastmath.h's, as in training.
 */
#ifndef BLEKOTA_SAMPLE_KERNEL_H
#define BLEKOTA_SAMPLE_KERNEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu.h"
#include "fastmath.h"

#define BK_PANEL 64
#define BK_LEVELS 256

static ptrdiff_t bk_padded(ptrdiff_t hidden)
{
    return (hidden + BK_PANEL - 1) / BK_PANEL * BK_PANEL;
}

/* How a level is drawn from the logits y: p ~ exp((y - max y) / temperature) (temperature 0:
 * argmax), then truncated (bk_truncate) and renormalized; and what the levels stand for, so that
 * every step also gives the mean of the distribution it drew from (the sample it expected). */
typedef struct {
    double temperature;
    int top_k;        /* keep the top_k likeliest levels; 0 or >= 256: all */
    double top_p;     /* keep the fewest likeliest levels whose probability reaches top_p; 1: all */
    double min_p;     /* drop levels below min_p times the likeliest one's probability; 0: none */
    int truncates;    /* any of the three is on */
    const double *values; /* (256,) the sample each level stands for, to take the mean */
    ptrdiff_t wake_after; /* steps of silence drawn before the model hears it dithered (bk_heard); 0: never */
    ptrdiff_t *quiet;     /* (S,) per stream, its waking state (bk_heard's *run; carried between calls) */
} bk_sampling;

#define BK_QUIET_LOW 126   /* the levels of silence: |sample| < 3e-4 */
#define BK_QUIET_HIGH 129
#define BK_WAKE_SPREAD 2   /* a dithered silent level moves by -2..2 */

/* The level the model hears next after `drawn` (what is written stays `drawn`). A stream that has
 * drawn silence (levels BK_QUIET_LOW..HIGH) for more than how->wake_after steps in a row is awake:
 * it hears each silent level moved by a uniform -BK_WAKE_SPREAD..BK_WAKE_SPREAD, taken from the
 * fraction of 4096 u of the step's own uniform u, and stays awake until it has drawn sound for
 * wake_after steps in a row (a click does not put it back to sleep): faint noise where a model
 * would otherwise hear digital silence and stay there. Hinted steps and temperature 0 are heard as
 * they are (a hint's silence and sound still count). *run: the stream's state, >= 0 the silent
 * levels drawn in a row (awake above wake_after), < 0 awake with -*run sound levels in a row. */
static inline int bk_heard(const bk_sampling *how, int drawn, double u, int hinted, ptrdiff_t *run)
{
    if (how->wake_after <= 0)
        return drawn;
    if (drawn < BK_QUIET_LOW || drawn > BK_QUIET_HIGH) {
        if (*run > how->wake_after)
            *run = -1;
        else if (*run < 0)
            *run -= 1;
        else
            *run = 0;
        if (*run < 0 && -*run >= how->wake_after)
            *run = 0;
        return drawn;
    }
    *run = *run < 0 ? how->wake_after + 1 : *run + 1;
    if (hinted || how->temperature <= 0 || *run <= how->wake_after)
        return drawn;
    double f = u * 4096.0;
    f -= floor(f);
    int heard = drawn + (int)(f * (2 * BK_WAKE_SPREAD + 1)) - BK_WAKE_SPREAD;
    return heard < 0 ? 0 : heard > BK_LEVELS - 1 ? BK_LEVELS - 1 : heard;
}

/* Elements of the packed weights of a model with `layers` layers of `hidden` units. */
static ptrdiff_t bk_packed_size(int layers, ptrdiff_t hidden)
{
    ptrdiff_t Hp = bk_padded(hidden);
    ptrdiff_t size = 3 * Hp * (BK_LEVELS + Hp);
    if (layers > 1)
        size += (ptrdiff_t)(layers - 1) * 3 * Hp * (1 + 2 * Hp);
    return size + Hp * BK_LEVELS + BK_LEVELS;
}

/* Start of layer `layer` (or of the output weights when layer == layers) in the packed vector. */
static ptrdiff_t bk_packed_offset(int layer, ptrdiff_t Hp)
{
    if (layer == 0)
        return 0;
    return 3 * Hp * (BK_LEVELS + Hp) + (ptrdiff_t)(layer - 1) * 3 * Hp * (1 + 2 * Hp);
}

/* One stream with several threads synchronizes 2 L + 1 times per step, which is fast on idle
 * cores and very slow when another process holds one of them. The tuner times both choices on
 * short probes of BK_PROBE steps and runs each block with the faster one. The slower choice is
 * probed again after `interval` pieces; the interval doubles (up to BK_REPROBE_MAX) each time
 * the probe loses, so a busy machine pays little for probing. The sound does not depend on the
 * choice. */
#define BK_PROBE 16
#define BK_REPROBE 8
#define BK_REPROBE_MAX 512

typedef struct {
    double cost[2]; /* seconds per step with 1 thread, with all threads; < 0 before timing */
    long pieces;    /* pieces run since the last probe */
    long interval;  /* pieces between probes */
} bk_tuner;

static double bk_now(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return 0.0;
#endif
}

/* bfloat16 products. A half panel holds the float panel's (K, P) weights rounded to bfloat16 (to
 * nearest, ties to even), its rows taken in pairs: element (k / 2) 2P + 2c + k % 2 is row k, column
 * c, so that one 32-bit lane holds a column's two weights of a row pair. A product rounds the
 * inputs to bfloat16 the same way and adds, per row pair and column, the odd row's product and then
 * the even row's, each exact in float32 and each sum rounded: what AVX512_BF16's vdpbf16ps
 * computes (bk_half_rows_bf16), done in float instructions on the CPUs without it (sample_twin.h's
 * bk_half_rows). K is a multiple of 64 (Hp or 2 Hp). */
static inline uint16_t bk_bf16_bits(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static inline float bk_bf16_value(uint16_t half)
{
    uint32_t bits = (uint32_t)half << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* Float panels (bk_pack of a float32 model) -> half panels (bk_packed_size elements; the table
 * and bias entries are left 0: a step reads them from the float panels). */
static void bk_pack_half(const float *packed, int layers, ptrdiff_t H, uint16_t *half)
{
    ptrdiff_t Hp = bk_padded(H), units = Hp / BK_PANEL;
    memset(half, 0, (size_t)bk_packed_size(layers, H) * sizeof(uint16_t));
    for (int layer = 0; layer <= layers; layer++) {
        ptrdiff_t K = layer == 0 || layer == layers ? Hp : 2 * Hp;
        ptrdiff_t panels = layer == layers ? BK_LEVELS / BK_PANEL : 3 * units;
        ptrdiff_t start = bk_packed_offset(layer, Hp) +
                          (layer == layers ? 0 : layer == 0 ? BK_LEVELS * 3 * Hp : 3 * Hp);
        for (ptrdiff_t p = 0; p < panels; p++) {
            const float *w = packed + start + p * K * BK_PANEL;
            uint16_t *out = half + start + p * K * BK_PANEL;
            for (ptrdiff_t k = 0; k < K; k++)
                for (int c = 0; c < BK_PANEL; c++)
                    out[(k / 2) * 2 * BK_PANEL + 2 * c + k % 2] = bk_bf16_bits(w[k * BK_PANEL + c]);
        }
    }
}

/* pairs (K / 2,) <- v (K,) rounded to bfloat16, a row pair per 32-bit word: row k in the low half,
 * row k + 1 in the high half, as the half panels hold their weights. */
static void bk_round_pairs(const float *v, ptrdiff_t K, uint32_t *pairs)
{
    for (ptrdiff_t k = 0; k < K; k += 2)
        pairs[k / 2] = (uint32_t)bk_bf16_bits(v[k]) | (uint32_t)bk_bf16_bits(v[k + 1]) << 16;
}

#define BK_HALF_ROWS 6 /* most streams of a many-stream bf16 tile */

#ifdef BK_HAVE_BF16
#include <immintrin.h>

/* cpu.h's bk_cpu_bf16, asked once: only the AVX-512 twin asks, so the level is AVX-512 then. */
static int bk_bf16_runs(void)
{
    static int runs = -1;
    if (runs < 0)
        runs = bk_cpu_bf16();
    return runs;
}

/* Whether the products of several streams take vdpbf16ps too: where it runs at the rate of the
 * float32 FMA (AMD Zen 4), not on Intel, which runs it at half that rate: there the same
 * arithmetic in float instructions is faster for several streams (8 streams of the default model,
 * one core of a Xeon: 52,000 samples/s against 36,000), while one stream, bound by reading the
 * weights, stays 10 % faster with it. Both give the same bits. */
static int bk_bf16_streams_run(void)
{
    static int runs = -1;
    if (runs < 0)
        runs = bk_bf16_runs() && !bk_cpu_intel();
    return runs;
}

/* acc (P,) += the K rows of half panel w times v (K,), with vdpbf16ps: 32 inputs rounded at a time,
 * then per row pair one broadcast and P / 16 dot products. */
BK_TARGET_BF16 static void bk_half_rows_bf16(const uint16_t *w, ptrdiff_t K, const float *v, float *acc)
{
    __m512 a0 = _mm512_loadu_ps(acc), a1 = _mm512_loadu_ps(acc + 16);
    __m512 a2 = _mm512_loadu_ps(acc + 32), a3 = _mm512_loadu_ps(acc + 48);
    uint32_t pairs[16];
    for (ptrdiff_t k = 0; k < K; k += 32) {
        __m512bh rounded = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(v + k + 16), _mm512_loadu_ps(v + k));
        _mm512_storeu_si512(pairs, (__m512i)rounded);
        for (int j = 0; j < 16; j++, w += 2 * BK_PANEL) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)pairs[j]);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w), x);
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(w + 32), x);
            a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_loadu_si512(w + 64), x);
            a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_loadu_si512(w + 96), x);
        }
    }
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
    _mm512_storeu_ps(acc + 32, a2);
    _mm512_storeu_ps(acc + 48, a3);
}

/* Many streams: c (R rows of a panel's 64 columns, ldc apart) += pairs (R rows of n row pairs of
 * rounded inputs, ldp apart) times the n row pairs of half panel w, with vdpbf16ps: the four loads
 * of a row pair feed R broadcasts. Each sum is what bk_half_rows_bf16 computes for one stream. */
#define BK_HALF_EACH_ROW(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define BK_HALF_DECLARE(r)                                                                       \
    __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = a##r##0, a##r##2 = a##r##0, a##r##3 = a##r##0; \
    if ((r) < R) {                                                                               \
        a##r##0 = _mm512_loadu_ps(c + (r) * ldc);                                                \
        a##r##1 = _mm512_loadu_ps(c + (r) * ldc + 16);                                           \
        a##r##2 = _mm512_loadu_ps(c + (r) * ldc + 32);                                           \
        a##r##3 = _mm512_loadu_ps(c + (r) * ldc + 48);                                           \
    }
#define BK_HALF_DOT(r)                                                                           \
    if ((r) < R) {                                                                               \
        __m512bh x = (__m512bh)_mm512_set1_epi32((int)pairs[(r) * ldp + j]);                     \
        a##r##0 = _mm512_dpbf16_ps(a##r##0, w0, x);                                              \
        a##r##1 = _mm512_dpbf16_ps(a##r##1, w1, x);                                              \
        a##r##2 = _mm512_dpbf16_ps(a##r##2, w2, x);                                              \
        a##r##3 = _mm512_dpbf16_ps(a##r##3, w3, x);                                              \
    }
#define BK_HALF_STORE(r)                                                                         \
    if ((r) < R) {                                                                               \
        _mm512_storeu_ps(c + (r) * ldc, a##r##0);                                                \
        _mm512_storeu_ps(c + (r) * ldc + 16, a##r##1);                                           \
        _mm512_storeu_ps(c + (r) * ldc + 32, a##r##2);                                           \
        _mm512_storeu_ps(c + (r) * ldc + 48, a##r##3);                                           \
    }

BK_TARGET_BF16 static inline __attribute__((always_inline)) void
bk_half_tile_bf16(const int R, const uint16_t *w, ptrdiff_t n, const uint32_t *pairs, ptrdiff_t ldp,
                  float *c, ptrdiff_t ldc)
{
    BK_HALF_EACH_ROW(BK_HALF_DECLARE)
    for (ptrdiff_t j = 0; j < n; j++, w += 2 * BK_PANEL) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(w), w1 = (__m512bh)_mm512_loadu_si512(w + 32);
        __m512bh w2 = (__m512bh)_mm512_loadu_si512(w + 64), w3 = (__m512bh)_mm512_loadu_si512(w + 96);
        BK_HALF_EACH_ROW(BK_HALF_DOT)
    }
    BK_HALF_EACH_ROW(BK_HALF_STORE)
}

#undef BK_HALF_DECLARE
#undef BK_HALF_DOT
#undef BK_HALF_STORE

/* M rows of c against `panels` half panels (`stride` elements apart, 64 columns each side by side
 * in c), in tiles of up to BK_HALF_ROWS rows. */
BK_TARGET_BF16 static void bk_half_product_bf16(const uint16_t *w, ptrdiff_t panels, ptrdiff_t stride,
                                                ptrdiff_t M, ptrdiff_t n, const uint32_t *pairs,
                                                ptrdiff_t ldp, float *c, ptrdiff_t ldc)
{
    for (ptrdiff_t p = 0; p < panels; p++, w += stride)
        for (ptrdiff_t r = 0; r < M; r += BK_HALF_ROWS) {
            const uint32_t *x = pairs + r * ldp;
            float *cr = c + r * ldc + p * BK_PANEL;
            switch (M - r < BK_HALF_ROWS ? M - r : BK_HALF_ROWS) {
            case 1: bk_half_tile_bf16(1, w, n, x, ldp, cr, ldc); break;
            case 2: bk_half_tile_bf16(2, w, n, x, ldp, cr, ldc); break;
            case 3: bk_half_tile_bf16(3, w, n, x, ldp, cr, ldc); break;
            case 4: bk_half_tile_bf16(4, w, n, x, ldp, cr, ldc); break;
            case 5: bk_half_tile_bf16(5, w, n, x, ldp, cr, ldc); break;
            default: bk_half_tile_bf16(6, w, n, x, ldp, cr, ldc); break;
            }
        }
}
#endif

#define BK_TEMPLATE "sample_twin.h"
#include "twins.h"

#endif /* BLEKOTA_SAMPLE_KERNEL_H */
