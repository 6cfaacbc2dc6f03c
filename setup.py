"""Build the compiled core: every csrc/*.pyx becomes an extension module blekota._<name>.

Environment switches:
  BLEKOTA_NATIVE=1  compile with -march=native (off by default: wheels must run on any x86-64).
  BLEKOTA_DEBUG=1   bounds checking and wraparound on, -O0 -g: for chasing a crash.
  BLEKOTA_NO_OPENMP=1  build serially even when the compiler supports OpenMP.
"""

import os
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
DEBUG = os.environ.get("BLEKOTA_DEBUG") == "1"
NATIVE = os.environ.get("BLEKOTA_NATIVE") == "1"

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def compiler_supports(compiler, compile_args, link_args) -> bool:
    """Whether a tiny OpenMP program compiles and links with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text(OPENMP_PROBE)
        try:
            objects = compiler.compile([str(source)], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_args)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Adds OpenMP flags when the compiler takes them; otherwise warns and builds serially."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            omp_compile, omp_link = ["/openmp"], []
        else:
            omp_compile, omp_link = ["-fopenmp"], ["-fopenmp"]
        use_openmp = os.environ.get("BLEKOTA_NO_OPENMP") != "1" and compiler_supports(
            self.compiler, omp_compile, omp_link
        )
        if not use_openmp:
            message = (
                "blekota: building WITHOUT OpenMP (the compiler does not support it or "
                "BLEKOTA_NO_OPENMP=1): the kernels will run on one core."
            )
            warnings.warn(message)
            print("WARNING: " + message, file=sys.stderr)
        for ext in self.extensions:
            if use_openmp:
                ext.extra_compile_args += omp_compile
                ext.extra_link_args += omp_link
        super().build_extensions()


# The optimizers' updates must give the bits of their NumPy formulas: no fused multiply-adds
# (which -march=native would otherwise allow).
MODULE_FLAGS = {"_optim": ["-ffp-contract=off"]}
HEADERS = sorted(str(p.relative_to(HERE)) for pattern in ("*.pxi", "*.h") for p in (HERE / "csrc").glob(pattern))


def extensions():
    if DEBUG:
        cflags = ["-O0", "-g"]
    else:
        # no -ffast-math: NaN and infinity must keep their meaning. -fno-trapping-math lets
        # the compiler turn the selects of csrc/fastmath.h into vector blends (we never read FP
        # exception flags), so the gate loops vectorize at the baseline x86-64 level.
        cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    if NATIVE:
        cflags.append("-march=native")
    exts = [
        Extension(
            f"blekota.{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            include_dirs=[np.get_include(), "csrc"],
            depends=HEADERS,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=cflags + MODULE_FLAGS.get(pyx.stem, []),
            extra_link_args=[],
        )
        for pyx in sorted((HERE / "csrc").glob("*.pyx"))
    ]
    return cythonize(
        exts,
        include_path=["csrc"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
            "initializedcheck": DEBUG,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
