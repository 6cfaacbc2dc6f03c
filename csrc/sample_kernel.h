/* Sampling kernels (C, included from csrc/_sample.pyx): the fused one-stream step, the
 * many-stream step and the softmax-and-draw they share.
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
 * With T threads, one OpenMP parallel region runs a whole block of steps; thread t owns a
 * contiguous range of unit panels (the same units in r, z and the candidate) and of output panels.
 * Per step and layer: [r, z] of own units, r*h; barrier; candidate and h of own units; barrier.
 * Then own logits; barrier; every thread applies softmax, temperature, truncation and the draw
 * to its own copy of the logits (2 L + 1 barriers per step).
 * bk_run_one_tuned picks 1 or all threads block by block (see bk_tuner).
 *
 * Many streams are compute bound: each thread steps its own group of streams through the same
 * panels in tiles of up to 6 streams by 16 columns (12 accumulators in registers, each weight
 * load used 6 times), so every weight is read once per tile instead of once per stream.
 *
 * float uses AVX2+FMA code when the CPU has it (checked at run time, so the default build needs
 * no -march flag); everything else is portable C.
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

#include "tile_kernel.h"

#define BK_PANEL 64
#define BK_LEVELS 256

static ptrdiff_t bk_padded(ptrdiff_t hidden)
{
    return (hidden + BK_PANEL - 1) / BK_PANEL * BK_PANEL;
}

/* How a level is drawn from the logits y: p ~ exp((y - max y) / temperature) (temperature 0:
 * argmax), then truncated (bk_truncate) and renormalized. */
typedef struct {
    double temperature;
    int top_k;        /* keep the top_k likeliest levels; 0 or >= 256: all */
    double top_p;     /* keep the fewest likeliest levels whose probability reaches top_p; 1: all */
    double min_p;     /* drop levels below min_p times the likeliest one's probability; 0: none */
    int truncates;    /* any of the three is on */
} bk_sampling;

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

#ifdef BK_X86
/* acc[0:64] += sum_i v1[i] w[i, :] over K1 rows, then v2 over the next K2 rows. */
__attribute__((target("avx2,fma"))) static void
bk_panel_avx2(const float *w, ptrdiff_t K1, const float *v1, ptrdiff_t K2, const float *v2,
              float *acc)
{
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8);
    __m256 a2 = _mm256_loadu_ps(acc + 16), a3 = _mm256_loadu_ps(acc + 24);
    __m256 a4 = _mm256_loadu_ps(acc + 32), a5 = _mm256_loadu_ps(acc + 40);
    __m256 a6 = _mm256_loadu_ps(acc + 48), a7 = _mm256_loadu_ps(acc + 56);
    const float *v = v1;
    ptrdiff_t K = K1;
    for (int part = 0; part < 2; part++) {
        for (ptrdiff_t i = 0; i < K; i++, w += BK_PANEL) {
            __m256 x = _mm256_broadcast_ss(v + i);
            a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 8), a1);
            a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 16), a2);
            a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 24), a3);
            a4 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 32), a4);
            a5 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 40), a5);
            a6 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 48), a6);
            a7 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 56), a7);
        }
        v = v2;
        K = K2;
    }
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2);
    _mm256_storeu_ps(acc + 24, a3);
    _mm256_storeu_ps(acc + 32, a4);
    _mm256_storeu_ps(acc + 40, a5);
    _mm256_storeu_ps(acc + 48, a6);
    _mm256_storeu_ps(acc + 56, a7);
}

/* exp(x) for 8 floats (Cephes expf: range reduction by ln 2, degree-5 polynomial, ~1 ulp).
 * Inputs below -87.3 give 0, above 88.7 are clamped. */
__attribute__((target("avx2,fma"))) static inline __m256 bk_exp8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
    __m256 small = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(small, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

__attribute__((target("avx2,fma"))) static void bk_sigmoid_avx2(float *a, ptrdiff_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    for (ptrdiff_t j = 0; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(a + j);
        __m256 e = bk_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_storeu_ps(a + j, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    for (ptrdiff_t j = n - n % 8; j < n; j++)
        a[j] = 1.0f / (1.0f + expf(-a[j]));
}

/* tanh: Cephes tanhf: odd polynomial below |x| 0.625, else 1 - 2 / (exp(2|x|) + 1) with sign. */
__attribute__((target("avx2,fma"))) static void bk_tanh_avx2(float *a, ptrdiff_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    for (ptrdiff_t j = 0; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(a + j);
        __m256 ax = _mm256_andnot_ps(sign_mask, x);
        __m256 z = _mm256_mul_ps(x, x);
        __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
        __m256 near = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
        __m256 e = bk_exp8(_mm256_mul_ps(two, ax));
        __m256 far = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        far = _mm256_or_ps(far, _mm256_and_ps(sign_mask, x));
        __m256 use_near = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
        _mm256_storeu_ps(a + j, _mm256_blendv_ps(far, near, use_near));
    }
    for (ptrdiff_t j = n - n % 8; j < n; j++)
        a[j] = tanhf(a[j]);
}

/* a[j] = exp((a[j] - top) * scale), n a multiple of 8 */
__attribute__((target("avx2,fma"))) static void bk_exp_shifted_avx2(float *a, ptrdiff_t n,
                                                                    float top, float scale)
{
    const __m256 t = _mm256_set1_ps(top), s = _mm256_set1_ps(scale);
    for (ptrdiff_t j = 0; j < n; j += 8)
        _mm256_storeu_ps(a + j, bk_exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(a + j), t), s)));
}
/* The number and the total of the elements of y (256,) that are >= t, both summed in 8 lanes. */
__attribute__((target("avx2,fma"))) static void bk_weigh_avx2(const float *y, float t,
                                                              double *count, double *mass)
{
    const __m256 bound = _mm256_set1_ps(t), one = _mm256_set1_ps(1.0f);
    __m256 n = _mm256_setzero_ps(), m = _mm256_setzero_ps();
    float lanes_n[8], lanes_m[8];
    for (int k = 0; k < 256; k += 8) {
        __m256 x = _mm256_loadu_ps(y + k), in = _mm256_cmp_ps(x, bound, _CMP_GE_OQ);
        n = _mm256_add_ps(n, _mm256_and_ps(in, one));
        m = _mm256_add_ps(m, _mm256_and_ps(in, x));
    }
    _mm256_storeu_ps(lanes_n, n);
    _mm256_storeu_ps(lanes_m, m);
    *count = *mass = 0;
    for (int j = 0; j < 8; j++) {
        *count += lanes_n[j];
        *mass += lanes_m[j];
    }
}
#endif /* BK_X86 */

#define BK_REAL float
#define BK_UINT uint32_t
#define BK_NAME(name) name##_f
#define BK_EXP expf
#define BK_TANH tanhf
#define BK_IS_FLOAT 1
#include "sample_step.h"
#undef BK_REAL
#undef BK_UINT
#undef BK_NAME
#undef BK_EXP
#undef BK_TANH
#undef BK_IS_FLOAT

#define BK_REAL double
#define BK_UINT uint64_t
#define BK_NAME(name) name##_d
#define BK_EXP exp
#define BK_TANH tanh
#define BK_IS_FLOAT 0
#include "sample_step.h"
#undef BK_REAL
#undef BK_UINT
#undef BK_NAME
#undef BK_EXP
#undef BK_TANH
#undef BK_IS_FLOAT

#endif /* BLEKOTA_SAMPLE_KERNEL_H */
