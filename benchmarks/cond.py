"""What the sampling loop's conditioning input costs (_sample.generate's cond, for a frame tier):
one stream of the default 3x256 float32 model on one thread, samples per second with cond=None
and with a cond, timed alternately run by run in one process; medians.

Kernels: dense (the default model), sparse float and int8 (the model pruned to density 0.1 by
blekota.sparsity.prune, as benchmarks/sparse.py). --before PATH also times another build's
compiled _sample module (the .so of a tree from before cond, say) in the same process, with
cond=None, alternating with this one's. --frame N times calls of N steps each (a frame tier
calls generate once per frame, with that frame's cond) instead of one call of --steps.

Run alone: python benchmarks/cond.py [--repeats R] [--steps N] [--frame N] [--before SO]
           [--kernels dense,sparse,int8]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

import numpy as np

from common import positive_int, use_this_checkout

use_this_checkout()  # before blekota: time this checkout's
import blekota  # noqa: E402
from blekota import _sample, sampler, sparsity  # noqa: E402

HIDDEN, LAYERS, SILENCE = 256, 3, 128


def _model(kernel: str) -> blekota.Model:
    model = blekota.Model(hidden=HIDDEN, layers=LAYERS, dtype="float32", seed=0)
    if kernel != "dense":
        sparsity.prune(model, 0.1)
    model.int8 = kernel == "int8"
    return model


def _load(path: str):
    """A compiled _sample module from another build, beside this one."""
    spec = importlib.util.spec_from_file_location("blekota._sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timer(model: blekota.Model, steps: int, frame: int):
    """run(module, cond) -> samples/s of `steps` samples in calls of `frame` steps, state carried."""
    packed = sampler.pack(model, 1)
    hint, lengths = np.empty((1, 0), np.uint8), np.zeros(1, np.intp)
    levels, probs = np.empty((1, frame), np.uint8), np.empty((1, 0, 256), np.float32)

    def run(module, cond) -> float:
        h, previous = np.zeros((LAYERS, 1, HIDDEN), np.float32), np.full(1, SILENCE, np.uint8)
        bit_generator, tuning = np.random.PCG64(0), module.new_tuning()
        extra = {} if cond is None else {"cond": cond}
        start = time.perf_counter()
        for _ in range(steps // frame):
            module.generate(packed.dense, h, levels, hint, lengths, previous, probs, 1.0, bit_generator, 1,
                            tuning=tuning, sparse=packed.sparse, **extra)
        return steps // frame * frame / (time.perf_counter() - start)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=positive_int, default=20000)
    parser.add_argument("--frame", type=int, default=0, help="steps per call (0: all in one call)")
    parser.add_argument("--before", default=None, help="another build's _sample .so, timed with cond=None")
    parser.add_argument("--kernels", default="dense,sparse,int8")
    args = parser.parse_args()
    cond = (np.random.default_rng(0).standard_normal((1, 3 * HIDDEN)) * 0.5).astype(np.float32)
    variants = {"none": (_sample, None), "cond": (_sample, cond)}
    if args.before:
        variants = {"before": (_load(args.before), None), **variants}
    for kernel in args.kernels.split(","):
        model = _model(kernel)
        assert sampler.kernel_for(model, 1) == kernel
        run = _timer(model, args.steps, args.frame or args.steps)
        for module, value in variants.values():
            run(module, value)  # warm-up
        rates = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, (module, value) in variants.items():
                rates[name].append(run(module, value))
        medians = {name: round(float(np.median(found))) for name, found in rates.items()}
        print(json.dumps({"kernel": kernel, "steps": args.steps, "frame": args.frame or args.steps,
                          "repeats": args.repeats, "samples_per_s": medians,
                          "ratio_to_none": {name: round(value / medians["none"], 4)
                                            for name, value in medians.items()}}))


if __name__ == "__main__":
    main()
