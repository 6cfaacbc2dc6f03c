"""Sparse, int8 and bf16 sampling (issue 18): one stream on one thread, against the dense float
kernel of the same model in the same run.

Models: the default 3x256 and a 3x512, float32, pruned to density 0.1 (or each of --density) in
one shot by blekota.sparsity.prune (blocks of 8 units by 4 inputs; the speed does not depend on which blocks
are kept, only on how many). Rows: the dense float kernel on 1 and 2 threads (the dense model),
the dense model with bfloat16 products (Model.bf16_sampling) at each CPU level this machine has
(vdpbf16ps at the AVX-512 level when the CPU has AVX512_BF16, float instructions elsewhere), the
sparse float kernel, int8 on the dense and on the sparse model, and the sparse float and int8
kernels at each CPU level (portable, AVX2, AVX-512; int8 runs VNNI at the AVX-512 level when the
CPU has it). Each note gives the rate over the dense kernel's on one thread
in the same run. The command rows time the whole command a user runs, process start included:
`python -m blekota sample MODEL --threads 1 -n 441000` (10 s of sound at 44.1 kHz), for the dense
model with bf16 products and the sparse model in float and int8.

Run alone: python benchmarks/sparse.py [--repeats R] [--quick] [--density D [D ...]]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import positive_int, time_runs  # before blekota: it picks this checkout's
import blekota
from blekota import _sample, sampler, sparsity

SECTION = "sparse"
DENSITY = 0.1
SHAPES = ((256, 3), (512, 3))
LEVELS = ("portable", "avx2", "avx512")
COMMAND_SAMPLES = 441000


def _row(config: str, shape: str, threads: int, steps: int, times: list[float], note: str) -> dict:
    median = float(np.median(times))
    return {
        "section": SECTION, "config": config, "shape": shape, "impl": "blekota", "dtype": "float32",
        "threads": threads, "unit": "generation", "samples": steps, "repeats": len(times),
        "median_s": median, "min_s": float(min(times)), "max_s": float(max(times)),
        "samples_per_s": steps / median, "times_s": list(times), "peak_mib": None,
        "base_mib": None, "note": note,
    }


def _speed_note(what: str, base: float, times: list[float]) -> str:
    """A row's note: what ran and its rate over the dense float kernel's on one thread (base:
    that kernel's median seconds for the same steps)."""
    return f"{what}, {float(base / np.median(times)):.2f}x dense 1 thread"


def _at_level(level: str, work):
    """work() with every compiled module at CPU level `level`; None when the CPU lacks it."""
    modules = [blekota.model._gru, _sample]
    previous = _sample.cpu_level()
    try:
        for module in modules:
            module.cpu_level(level)
    except ValueError:
        return None
    try:
        return work()
    finally:
        for module in modules:
            module.cpu_level(previous)


def _command_seconds(model: blekota.Model, repeats: int) -> list[float]:
    """Wall seconds of `python -m blekota sample MODEL --threads 1 -n 441000`, process start
    included."""
    with tempfile.TemporaryDirectory() as folder:
        path = model.save(Path(folder) / "sparse.npz")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "blekota", "sample", str(path), "--threads", "1",
                            "-n", str(COMMAND_SAMPLES), "-o", str(Path(folder) / "out.wav"), "--force",
                            "--seed", "1"], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


def run(threads: int, repeats: int, quick: bool, densities: tuple[float, ...] = (DENSITY,)) -> list[dict]:
    """The rows described in the module docstring, for each of SHAPES; the sparse rows for each
    of `densities`."""
    rows = []
    for hidden, layers in SHAPES:
        shape = f"{layers}x{hidden}"
        dense = blekota.Model(hidden, layers, seed=0)
        steps = (4000 if quick else 20000) * 256 // hidden

        def rate_of(model: blekota.Model, count: int, int8: bool, bf16: bool = False) -> list[float]:
            model.threads, model.int8, model.bf16_sampling = count, int8, bf16
            return time_runs(lambda: model.sample(steps, seed=0), repeats, warmup=1)

        base = float(np.median(rate_of(dense, 1, False)))
        cases = [("dense", dense, 1, False), ("int8 dense", dense, 1, True)]
        if threads > 1:
            cases.insert(1, ("dense", dense, threads, False))
        for name, model, count, int8 in cases:
            times = rate_of(model, count, int8)
            note = _speed_note(f"{sampler.kernel_for(model, 1)} kernel", base, times)
            rows.append(_row(f"{shape} {name}", f"{shape}, {steps} steps", count, steps, times, note))
        for level in LEVELS:
            times = _at_level(level, lambda: rate_of(dense, 1, False, True))
            if times is not None:
                path = _at_level(level, sampler.bf16_path)
                rows.append(_row(f"{shape} bf16 dense {level}", f"{shape}, {steps} steps", 1, steps, times,
                                 _speed_note(f"bf16 kernel, {path} products", base, times)))
        if hidden == 256:
            dense.bf16_sampling = True
            rows.append(_row(f"{shape} bf16 dense command", f"sample -n {COMMAND_SAMPLES} --threads 1", 1,
                             COMMAND_SAMPLES, _command_seconds(dense, 1 if quick else 3),
                             "whole command, process start included"))
        dense.bf16_sampling = False
        for density in densities:
            rows += _sparse_rows(shape, hidden, layers, density, steps, base, rate_of, quick)
    return rows


def _sparse_rows(shape: str, hidden: int, layers: int, density: float, steps: int, base: float, rate_of,
                 quick: bool) -> list[dict]:
    """The rows of one model pruned to `density`: its float and int8 kernels, and for the 3x256
    each kernel at each CPU level and the whole command; base: the dense float kernel's median
    seconds for `steps` steps; rate_of(model, threads, int8): the seconds of each repeat."""
    rows = []
    sparse = blekota.Model(hidden, layers, seed=0)
    sparsity.prune(sparse, density)
    kept = f"d={sparsity.block_density(sparse):.2f}"

    for name, int8 in (("sparse", False), ("int8 sparse", True)):
        times = rate_of(sparse, 1, int8)
        note = _speed_note(f"{sampler.kernel_for(sparse, 1)} kernel", base, times)
        rows.append(_row(f"{shape} {name} {kept}", f"{shape}, {steps} steps", 1, steps, times, note))
    if hidden != 256:
        return rows
    for level in LEVELS:
        for name, int8 in (("sparse", False), ("int8 sparse", True)):
            times = _at_level(level, lambda: rate_of(sparse, 1, int8))
            if times is None:
                continue
            path = _at_level(level, _sample.int8_path) if int8 else level
            rows.append(_row(f"{shape} {name} {kept} {level}", f"{shape}, {steps} steps", 1, steps, times,
                             _speed_note(f"{path} path", base, times)))
    for int8 in (False, True):
        sparse.int8 = int8
        times = _command_seconds(sparse, 1 if quick else 3)
        rows.append(_row(f"{shape} {'int8 ' if int8 else ''}sparse {kept} command",
                         f"sample -n {COMMAND_SAMPLES} --threads 1", 1, COMMAND_SAMPLES, times,
                         "whole command, process start included"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=positive_int, default=2, help="threads of the dense two-thread row")
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer steps per run")
    parser.add_argument("--density", type=float, nargs="+", default=[DENSITY],
                        help=f"densities of the sparse models (default {DENSITY})")
    args = parser.parse_args()
    for row in run(args.threads, args.repeats, args.quick, tuple(args.density)):
        print(f"{row['config']:<40} {row['threads']:>3} thr {row['samples_per_s']:>10,.0f} samples/s  "
              f"{row['median_s']:8.3f} s  {row['note']}")


if __name__ == "__main__":
    main()
