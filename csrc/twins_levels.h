/* Part of twins.h: BK_TEMPLATE for the dtype set there, once per CPU level, then dispatchers. */
#define BK_LEVEL BK_PORTABLE
#define BK_ISA _portable
#define BK_FN static
#include BK_TEMPLATE
#undef BK_LEVEL
#undef BK_ISA
#undef BK_FN

#ifdef BK_X86
#define BK_LEVEL BK_AVX2
#define BK_ISA _avx2
#define BK_FN static BK_TARGET_AVX2
#include BK_TEMPLATE
#undef BK_LEVEL
#undef BK_ISA
#undef BK_FN

#define BK_LEVEL BK_AVX512
#define BK_ISA _avx512
#define BK_FN static BK_TARGET_AVX512
#include BK_TEMPLATE
#undef BK_LEVEL
#undef BK_ISA
#undef BK_FN
#endif

#define BK_DISPATCH 1
#include BK_TEMPLATE
#undef BK_DISPATCH
