"""Sets of groups by kept-block count (the sparse kernels' packing, blekota.sampler._sets) against
another build's packing and kernels: one stream on one thread, 3x256 and 3x512 float32 models
pruned at once to density 0.1 (blekota.sparsity.prune), sparse float and int8, samples per
second of each build timed alternately run by run in one process; medians. Also the blocks
each packing walks per step, zero padding included.

--before-so: the other build's compiled _sample module; --before-sampler: its blekota/sampler.py
(loaded inside this blekota package, so it packs with this tree's _sample.pack and sparsity).

Run from the tree to time (PYTHONPATH=. when another tree is installed):
  python benchmarks/sets.py --before-so SO --before-sampler PY [--repeats R] [--steps N] [--hidden 256,512]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np

from common import positive_int, use_this_checkout

use_this_checkout()  # before blekota: time this checkout's
import blekota  # noqa: E402
from blekota import _sample, sampler, sparsity  # noqa: E402

SILENCE = 128


def _load(name: str, path: str, register: bool = False):
    """The module at `path`, as `name` (registered in sys.modules when `register`: a dataclass
    needs its module there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cache_aligned(packed):
    """The packed weights with each array on a 64-byte boundary (blekota.sampler._aligned), for
    both builds alike: where numpy puts them moves int8 rates by 10-25 % on this machine."""
    return type(packed)(packed.kernel, sampler._aligned(packed.dense),
                        tuple(sampler._aligned(part) for part in packed.sparse))


def _rate(module, packed, layers: int, hidden: int, steps: int) -> float:
    """Samples/s of one call of `steps` steps of `module`'s generate on one thread."""
    h, previous = np.zeros((layers, 1, hidden), np.float32), np.full(1, SILENCE, np.uint8)
    levels, probs = np.empty((1, steps), np.uint8), np.empty((1, 0, 256), np.float32)
    start = time.perf_counter()
    module.generate(packed.dense, h, levels, np.empty((1, 0), np.uint8), np.zeros(1, np.intp), previous,
                    probs, 1.0, np.random.PCG64(0), 1, tuning=module.new_tuning(), sparse=packed.sparse)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-so", required=True)
    parser.add_argument("--before-sampler", required=True)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=positive_int, default=20000)
    parser.add_argument("--hidden", default="256,512")
    args = parser.parse_args()
    before_sample = _load("blekota._sample", args.before_so)
    before_sampler = _load("blekota.sampler_before", args.before_sampler, register=True)
    for hidden in map(int, args.hidden.split(",")):
        for kernel in ("sparse", "int8"):
            model = blekota.Model(hidden=hidden, layers=3, dtype="float32", seed=0)
            sparsity.prune(model, 0.1)
            model.int8 = kernel == "int8"
            builds = {"before": (before_sample, _cache_aligned(before_sampler.pack(model, 1))),
                      "after": (_sample, _cache_aligned(sampler.pack(model, 1)))}
            indexed = _sample.walk_blocks(builds["after"][1].sparse[0], 3, hidden, model.int8)
            rates = {name: [] for name in builds}
            for _ in range(args.repeats):
                for name, (module, packed) in builds.items():
                    rates[name].append(_rate(module, packed, 3, hidden, args.steps))
            before, after = (float(np.median(rates[name])) for name in builds)
            blocks = {name: len(packed.sparse[1] if kernel == "sparse" else packed.sparse[2]) // 32
                      for name, (_, packed) in builds.items()}
            print(f"3x{hidden} d=0.10 {kernel}: blocks walked before {blocks['before']}, after {blocks['after']}"
                  f" (index {indexed}); samples/s before {before:,.0f}, after {after:,.0f} ({after / before:.2f}x)"
                  f"; all before {[round(r) for r in rates['before']]}, after {[round(r) for r in rates['after']]}",
                  flush=True)


if __name__ == "__main__":
    main()
