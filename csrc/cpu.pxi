# The CPU level the kernels of this module run at (csrc/cpu.h), shared by every compiled module:
# each module holds its own copy of the level, so set them all together (tests do).

import os

cdef extern from "cpu.h" nogil:
    int bk_cpu_level()
    int bk_cpu_best()
    int bk_cpu_set_level(int level)

CPU_LEVELS = ("portable", "avx2", "avx512")  # index = the level of cpu.h


def cpu_level(name=None) -> str:
    """The instruction-set level of this module's kernels: "avx512", "avx2" or "portable" (plain
    C; the float32 training products use BLAS). With a name, switch to it first: at most what the
    CPU has (ValueError otherwise). The environment variable BLEKOTA_CPU sets it at import."""
    if name is not None:
        if name not in CPU_LEVELS:
            raise ValueError(f"CPU level must be one of {CPU_LEVELS}, got {name!r}")
        if CPU_LEVELS.index(name) > bk_cpu_best():
            raise ValueError(f"this CPU cannot run the {name} kernels")
        bk_cpu_set_level(CPU_LEVELS.index(name))
    return CPU_LEVELS[bk_cpu_level()]


if os.environ.get("BLEKOTA_CPU"):
    try:
        cpu_level(os.environ["BLEKOTA_CPU"])
    except ValueError as error:
        from .errors import ConfigError  # a ValueError that the command line reports in one line
        raise ConfigError(f"BLEKOTA_CPU={os.environ['BLEKOTA_CPU']}: {error}") from None
