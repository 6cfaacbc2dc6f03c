/* The one way kernels are twinned: the template header named by BK_TEMPLATE is included once
 * per dtype (float, double) and CPU level (cpu.h), with
 *   BK_REAL          float or double; BK_IS_FLOAT 1 or 0
 *   BK_LEVEL         BK_PORTABLE, BK_AVX2 or BK_AVX512 (for #if)
 *   BK_FN            "static" plus the level's target attribute: starts every function
 *   BK_NAME(name)    name_f_avx2 and so on: the version of this dtype and level
 *   BK_TWIN(name)    name_f or name_d: the dtype's dispatcher, defined by the template after
 *                    the levels (BK_DISPATCH set), which calls BK_PICK(BK_TWIN(name)).
 * On other platforms than x86 only the portable level exists.
 */
#include "cpu.h"

#define BK_NAME(name) BK_PASTE(BK_TWIN(name), BK_ISA)
#define BK_TWIN(name) BK_PASTE(name, BK_SUFFIX)

#define BK_REAL float
#define BK_IS_FLOAT 1
#define BK_SUFFIX _f
#include "twins_levels.h"
#undef BK_REAL
#undef BK_IS_FLOAT
#undef BK_SUFFIX

#define BK_REAL double
#define BK_IS_FLOAT 0
#define BK_SUFFIX _d
#include "twins_levels.h"
#undef BK_REAL
#undef BK_IS_FLOAT
#undef BK_SUFFIX

#undef BK_TEMPLATE
