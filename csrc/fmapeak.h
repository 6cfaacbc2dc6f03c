/* The float32 FMA peak of one core at the CPU level in use (cpu.h), for the benchmarks' floors:
 * independent chains of fused multiply-adds, enough of them to cover the latency of two FMA
 * units (12 chains of 4 cycles), timed with the process's CPU clock. */
#ifndef BLEKOTA_FMAPEAK_H
#define BLEKOTA_FMAPEAK_H

#include <time.h>

#include "amx.h"
#include "cpu.h"

#define BK_PEAK_CHAINS(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define BK_PEAK_DECLARE(i) BK_PEAK_VEC a##i = BK_PEAK_SET1((float)(i));
#define BK_PEAK_FMA(i) a##i = BK_PEAK_FMADD(a##i, b, c);
#define BK_PEAK_SUM(i) sum = BK_PEAK_ADD(sum, a##i);
#define BK_PEAK_LOOP                                                                             \
    BK_PEAK_VEC b = BK_PEAK_SET1(1.0000001f), c = BK_PEAK_SET1(1e-7f), sum = BK_PEAK_SET1(0.0f); \
    BK_PEAK_CHAINS(BK_PEAK_DECLARE)                                                              \
    for (long k = 0; k < n; k++) {                                                               \
        BK_PEAK_CHAINS(BK_PEAK_FMA)                                                              \
    }                                                                                            \
    BK_PEAK_CHAINS(BK_PEAK_SUM)

/* Each runs n rounds of 12 vector FMAs and returns a value that depends on all of them. */
#ifdef BK_X86
#define BK_PEAK_VEC __m512
#define BK_PEAK_SET1 _mm512_set1_ps
#define BK_PEAK_FMADD _mm512_fmadd_ps
#define BK_PEAK_ADD _mm512_add_ps
BK_TARGET_AVX512 static float bk_peak_avx512(long n)
{
    BK_PEAK_LOOP
    return _mm512_reduce_add_ps(sum);
}
#undef BK_PEAK_VEC
#undef BK_PEAK_SET1
#undef BK_PEAK_FMADD
#undef BK_PEAK_ADD

#define BK_PEAK_VEC __m256
#define BK_PEAK_SET1 _mm256_set1_ps
#define BK_PEAK_FMADD _mm256_fmadd_ps
#define BK_PEAK_ADD _mm256_add_ps
BK_TARGET_AVX2 static float bk_peak_avx2(long n)
{
    BK_PEAK_LOOP
    return _mm256_cvtss_f32(sum);
}
#undef BK_PEAK_VEC
#undef BK_PEAK_SET1
#undef BK_PEAK_FMADD
#undef BK_PEAK_ADD
#endif

static double bk_cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Float32 GFLOP/s (2 per FMA lane) of n rounds at the level in use; 0 at the portable level,
 * whose products are BLAS's. The chains' sum goes to a volatile, so that the loop is neither
 * left out nor moved past the clock. */
static double bk_fma_peak(long n)
{
    volatile float sink;
    double start = bk_cpu_seconds(), lanes;
#ifdef BK_X86
    if (bk_cpu_level() == BK_AVX512) {
        sink = bk_peak_avx512(n);
        lanes = 16;
    } else if (bk_cpu_level() == BK_AVX2) {
        sink = bk_peak_avx2(n);
        lanes = 8;
    } else
#endif
        return 0.0;
    (void)sink;
    return 12.0 * 2 * lanes * n / (bk_cpu_seconds() - start) / 1e9;
}

/* The same for bfloat16 pairs (vdpbf16ps: 2 multiply-adds per float32 lane, 4 FLOP), the rate
 * of the bf16 training products (bf16_gemm.h); 0 where bk_cpu_bf16() is not. */
#ifdef BK_HAVE_BF16
#define BK_PEAK_VEC __m512
#define BK_PEAK_SET1 _mm512_set1_ps
#define BK_PEAK_FMADD(a, b, c) _mm512_dpbf16_ps(a, (__m512bh)_mm512_castps_si512(b), (__m512bh)_mm512_castps_si512(c))
#define BK_PEAK_ADD _mm512_add_ps
BK_TARGET_BF16 static float bk_peak_bf16(long n)
{
    BK_PEAK_LOOP
    return _mm512_reduce_add_ps(sum);
}
#undef BK_PEAK_VEC
#undef BK_PEAK_SET1
#undef BK_PEAK_FMADD
#undef BK_PEAK_ADD
#endif

static double bk_bf16_peak(long n)
{
    volatile float sink;
    double start = bk_cpu_seconds();
#ifdef BK_HAVE_BF16
    if (bk_cpu_bf16()) {
        sink = bk_peak_bf16(n);
        (void)sink;
        return 12.0 * 4 * 16 * n / (bk_cpu_seconds() - start) / 1e9;
    }
#endif
    (void)sink;
    (void)start;
    return 0.0;
}

/* The same for AMX tiles (amx.h): n rounds of 4 independent TDPBF16PS on 16 by 16 floats, 16
 * pairs each (16384 FLOP); 0 where bk_cpu_amx() is not. */
#ifdef BK_HAVE_AMX
BK_TARGET_AMX static void bk_peak_amx(long n)
{
    static const uint16_t ones[512] __attribute__((aligned(64))) = {0};
    float sums[256] __attribute__((aligned(64)));
    bk_amx_configure();
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long k = 0; k < n; k++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, sums, 64);
    _tile_release();
    volatile float sink = sums[0];
    (void)sink;
}
#endif

static double bk_amx_peak(long n)
{
#ifdef BK_HAVE_AMX
    if (bk_cpu_amx()) {
        double start = bk_cpu_seconds();
        bk_peak_amx(n);
        return 4.0 * 16384 * n / (bk_cpu_seconds() - start) / 1e9;
    }
#endif
    (void)n;
    return 0.0;
}

#undef BK_PEAK_CHAINS
#undef BK_PEAK_DECLARE
#undef BK_PEAK_FMA
#undef BK_PEAK_SUM
#undef BK_PEAK_LOOP

#endif /* BLEKOTA_FMAPEAK_H */
