/* The one CPU check of every kernel: the instruction-set level code runs at, and the target
 * attributes that compile a function for a level.
 *
 * Levels: portable (plain C for the baseline of the platform: SSE2 on x86-64), AVX2 with FMA,
 * AVX-512 (F, VL, BW, DQ), with AVX512_BF16 where the CPU has it (bk_cpu_bf16). Code for each
 * level is compiled from one source with target attributes (twins.h), so the default build
 * needs no -march flag; callers pick a version with BK_PICK, which reads the level: the best
 * the CPU has, or what bk_cpu_set_level chose (tests, the BLEKOTA_CPU environment variable read
 * by csrc/cpu.pxi).
 */
#ifndef BLEKOTA_CPU_H
#define BLEKOTA_CPU_H

#define BK_PORTABLE 0
#define BK_AVX2 1
#define BK_AVX512 2

#define BK_PASTE_(a, b) a##b
#define BK_PASTE(a, b) BK_PASTE_(a, b)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define BK_X86 1
#include <immintrin.h>
#define BK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define BK_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))

static inline int bk_cpu_best(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return BK_PORTABLE;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return BK_AVX512;
    return BK_AVX2;
}

/* Whether the CPU is Intel's (tile shapes tuned on one vendor's caches, see gemm_twin.h). */
static inline int bk_cpu_intel(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
}

/* The version of a function for the level in use: name##_avx512, _avx2 or _portable. */
#define BK_PICK(name)                                                                            \
    (bk_cpu_level() == BK_AVX512 ? BK_PASTE(name, _avx512)                                      \
     : bk_cpu_level() == BK_AVX2 ? BK_PASTE(name, _avx2)                                        \
                                 : BK_PASTE(name, _portable))
#else
static inline int bk_cpu_best(void) { return BK_PORTABLE; }
static inline int bk_cpu_intel(void) { return 0; }
#define BK_PICK(name) BK_PASTE(name, _portable)
#endif

/* BK_UNFUSED_FN marks a function whose products are each rounded (no fused multiply-add);
 * BK_UNFUSED opens its body. */
#if defined(__clang__)
#define BK_UNFUSED_FN __attribute__((noinline))
#define BK_UNFUSED _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define BK_UNFUSED_FN __attribute__((noinline, optimize("fp-contract=off")))
#define BK_UNFUSED
#else
#define BK_UNFUSED_FN
#define BK_UNFUSED
#endif

static int bk_cpu_chosen = -1;

static inline int bk_cpu_level(void)
{
    if (bk_cpu_chosen < 0)
        bk_cpu_chosen = bk_cpu_best();
    return bk_cpu_chosen;
}

/* Use `level`, at most what the CPU has. Returns the level now in use. */
static inline int bk_cpu_set_level(int level)
{
    int best = bk_cpu_best();
    bk_cpu_chosen = level < BK_PORTABLE ? BK_PORTABLE : level > best ? best : level;
    return bk_cpu_chosen;
}

/* AVX512_BF16 (the bf16 training products, bf16_gemm.h): BK_HAVE_BF16 where the compiler can
 * target it, and bk_cpu_bf16() whether they run here: the AVX-512 level in use and the CPU has it. */
#if defined(BK_X86) && (defined(__clang__) || __GNUC__ >= 10)
#define BK_HAVE_BF16 1
#define BK_TARGET_BF16                                                                           \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma")))

static inline int bk_cpu_bf16(void)
{
    __builtin_cpu_init();
    return bk_cpu_level() == BK_AVX512 && __builtin_cpu_supports("avx512bf16");
}
#else
static inline int bk_cpu_bf16(void) { return 0; }
#endif

#endif /* BLEKOTA_CPU_H */
