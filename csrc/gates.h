/* The training core's elementwise kernels (gates_twin.h), for float (suffix _f) and double (_d),
 * compiled for every CPU level (twins.h); each public name calls the version of the level in use.
 */
#ifndef BLEKOTA_GATES_H
#define BLEKOTA_GATES_H

#include <math.h>
#include <stddef.h>

#include "fastmath.h"

#define BK_OUTPUTS 256 /* logits per row of the output layer */
#define BK_LANES 16    /* independent partial results in reductions, so that they vectorize */

/* Ask for `bytes` from p to be brought into L2: rows that a later step will need, fetched while
 * this step's products keep the core busy. */
static inline void bk_prefetch(const void *p, ptrdiff_t bytes)
{
#if defined(__GNUC__)
    for (ptrdiff_t i = 0; i < bytes; i += 64)
        __builtin_prefetch((const char *)p + i, 0, 2);
#else
    (void)p;
    (void)bytes;
#endif
}

#define BK_TEMPLATE "gates_twin.h"
#include "twins.h"

#endif
