"""What live play costs (issue 18, item 5): Stream.process(block) calls against one model.sample(n)
of the same total length, in the same process, alternating, on one thread.

Each timed stream run makes the stream (the weights are packed then, as sample packs them) and
calls process(block) until n samples are made; the sample run is one model.sample(n). Both draw
the same sound (checked). The per-block overhead is (stream - sample) / blocks. Random weights
(the step costs the same as a trained model's; no truncation).

Run: python benchmarks/streaming.py [--models 3x256 2x128] [--blocks 64 256 512] [-n 16384] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import common  # noqa: F401  (before blekota: it picks this checkout's)
import blekota


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def by_stream(model: blekota.Model, n: int, block: int) -> np.ndarray:
    stream = model.stream(seed=1)
    return np.concatenate([stream.process(block) for _ in range(n // block)])


def call_cost_us(threads: int, calls: int = 2000) -> float:
    """Microseconds per process(1) call of a 1x8 model: the fixed cost of a call, one step aside."""
    stream = blekota.Model(hidden=8, layers=1, seed=0, threads=threads).stream(seed=1)
    start = time.perf_counter()
    for _ in range(calls):
        stream.process(1)
    return 1e6 * (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["3x256", "2x128"], help="LAYERSxHIDDEN, float32")
    parser.add_argument("--blocks", nargs="+", type=int, default=[64, 256, 512])
    parser.add_argument("-n", type=int, default=16384, help="samples per run (a multiple of every block)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"# {cpu_name()}, threads {args.threads}, {args.n} samples per run, medians of {args.repeats}")
    costs = [call_cost_us(args.threads) for _ in range(args.repeats)]
    print(f"# process(1) of a 1x8 model (the fixed cost of a call): {np.median(costs):.1f} us")
    print("| model | block | sample(n) samples/s | process(block) samples/s | stream / sample | overhead per block |")
    print("|---|---|---|---|---|---|")
    for shape in args.models:
        layers, hidden = (int(part) for part in shape.split("x"))
        model = blekota.Model(hidden=hidden, layers=layers, seed=0, threads=args.threads)
        model.sample(2000, seed=1)  # warm-up
        for block in args.blocks:
            assert args.n % block == 0, "n must be a multiple of every block"
            assert np.array_equal(by_stream(model, args.n, block), model.sample(args.n, seed=1))
            whole, blocks = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                model.sample(args.n, seed=1)
                whole.append(time.perf_counter() - start)
                start = time.perf_counter()
                by_stream(model, args.n, block)
                blocks.append(time.perf_counter() - start)
            t_whole, t_blocks = float(np.median(whole)), float(np.median(blocks))
            per_block_us = 1e6 * (t_blocks - t_whole) / (args.n // block)
            print(f"| {shape} | {block} | {args.n / t_whole:,.0f} | {args.n / t_blocks:,.0f} | "
                  f"{t_whole / t_blocks:.3f} | {per_block_us:,.0f} us |", flush=True)


if __name__ == "__main__":
    main()
