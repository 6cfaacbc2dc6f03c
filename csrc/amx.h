/* AMX (Intel Sapphire Rapids and later): whether the bf16 products run on its tiles, the target
 * attribute that compiles for them, and a thread's tile configuration. Linux hands a process the
 * tile state only when asked (arch_prctl ARCH_REQ_XCOMP_PERM), once, from bk_cpu_amx. Included
 * from amx_gemm.h (the products) and fmapeak.h (their peak).
 */
#ifndef BLEKOTA_AMX_H
#define BLEKOTA_AMX_H

#include <stdint.h>
#include <string.h>

#include "cpu.h"

#if defined(BK_HAVE_BF16) && (defined(__clang__) || __GNUC__ >= 11)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define BK_HAVE_AMX 1
#define BK_TARGET_AMX                                                                            \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma,amx-tile,"  \
                          "amx-bf16")))

/* -1 until asked, then whether the CPU has AMX-TILE and AMX-BF16 and Linux granted this
 * process the tile data. */
static int bk_amx_granted = -1;
static int bk_amx_chosen = 1;  /* bk_amx_use(0) sends the products back to VDPBF16PS */

static inline int bk_amx_grant(void)
{
    if (bk_amx_granted >= 0)
        return bk_amx_granted;
    bk_amx_granted = 0;
#if defined(__linux__) && defined(SYS_arch_prctl)
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx >> 22 & 1) && (edx >> 24 & 1))
        bk_amx_granted = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                                 18 /* XFEATURE_XTILEDATA */) == 0;
#endif
    return bk_amx_granted;
}

/* Whether the bf16 products run on AMX tiles: they run here at all (bk_cpu_bf16), the CPU and
 * Linux allow the tiles, and bk_amx_use did not turn them off. */
static inline int bk_cpu_amx(void) { return bk_cpu_bf16() && bk_amx_chosen && bk_amx_grant(); }

/* Use the tiles where they can run if use is 1, not if 0; -1 keeps the choice. Returns
 * bk_cpu_amx(). */
static inline int bk_amx_use(int use)
{
    if (use >= 0)
        bk_amx_chosen = use != 0;
    return bk_cpu_amx();
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} bk_amx_config;

/* This thread's tiles 0-7 as 16 rows of 64 bytes (release them with _tile_release). */
BK_TARGET_AMX static inline void bk_amx_configure(void)
{
    bk_amx_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.bytes_per_row[t] = 64;
    }
    _tile_loadconfig(&config);
}

#else /* no compiler support: the bf16 products stay on VDPBF16PS */

static inline int bk_cpu_amx(void) { return 0; }
static inline int bk_amx_use(int use) { return 0; }

#endif

#endif /* BLEKOTA_AMX_H */
