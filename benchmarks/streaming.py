"""What live play costs (issue 18, item 5): Stream.process(block) calls against one model.sample(n)
of the same total length, in the same process, alternating, on one thread.

Each timed stream run makes the stream (the weights are packed then, as sample packs them) and
calls process(block) until n samples are made; the sample run is one model.sample(n). Both draw
the same sound (checked). The per-block overhead is (stream - sample) / blocks. Random weights
(the step costs the same as a trained model's; no truncation).

A second table times what play adds for a device that does not take the model's 8 kHz: the
blekota.resampling.StreamResampler call on each block, against the block's duration and against
process(block) of the first model, in the same run.

Run: python benchmarks/streaming.py [--models 3x256 2x128] [--blocks 64 256 512] [-n 16384] [--repeats 5]
     [--device-rates 44100 48000]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from common import positive_int, use_this_checkout

use_this_checkout()  # before blekota: time this checkout's
import blekota  # noqa: E402
from blekota.resampling import StreamResampler  # noqa: E402


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


def shape(text: str) -> tuple[int, int]:
    """argparse type of --models: LAYERSxHIDDEN as (layers, hidden)."""
    layers, x, hidden = text.partition("x")
    if not (x and layers.isdigit() and hidden.isdigit() and int(layers) > 0 and int(hidden) > 0):
        raise argparse.ArgumentTypeError(f"expected LAYERSxHIDDEN such as 3x256, got {text!r}")
    return int(layers), int(hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=shape, default=[(3, 256), (2, 128)], help="LAYERSxHIDDEN, float32")
    parser.add_argument("--blocks", nargs="+", type=positive_int, default=[64, 256, 512])
    parser.add_argument("-n", type=positive_int, default=16384, help="samples per run (a multiple of every block)")
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--device-rates", nargs="*", type=int, default=[44100, 48000],
                        help="device rates (Hz) to time the resampling of 8 kHz blocks to (none: skip)")
    args = parser.parse_args()
    if any(args.n % block for block in args.blocks):
        parser.error(f"-n {args.n} is not a multiple of every block ({', '.join(map(str, args.blocks))})")
    print(f"# {cpu_name()}, threads {args.threads}, {args.n} samples per run, medians of {args.repeats}")
    costs = [call_cost_us(args.threads) for _ in range(args.repeats)]
    print(f"# process(1) of a 1x8 model (the fixed cost of a call): {np.median(costs):.1f} us")
    print("| model | block | sample(n) samples/s | process(block) samples/s | stream / sample | overhead per block |")
    print("|---|---|---|---|---|---|")
    for layers, hidden in args.models:
        model = blekota.Model(hidden=hidden, layers=layers, seed=0, threads=args.threads)
        model.sample(2000, seed=1)  # warm-up
        for block in args.blocks:
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
            print(f"| {layers}x{hidden} | {block} | {args.n / t_whole:,.0f} | {args.n / t_blocks:,.0f} | "
                  f"{t_whole / t_blocks:.3f} | {per_block_us:,.0f} us |", flush=True)
    if args.device_rates:
        resampling_table(args)


def resampling_table(args) -> None:
    """The resampler's cost per block for each device rate, against the block's duration and
    against making the block with the first model."""
    layers, hidden = args.models[0]
    model = blekota.Model(hidden=hidden, layers=layers, seed=0, threads=args.threads)
    fs = model.fs
    print(f"\n| device rate | block | resampling per block | of the block's duration | of process(block), {layers}x{hidden} |")
    print("|---|---|---|---|---|")
    for block in args.blocks:
        blocks = args.n // block
        made = by_stream(model, args.n, block).reshape(blocks, block)
        making = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            by_stream(model, args.n, block)
            making.append((time.perf_counter() - start) / blocks)
        for rate in args.device_rates:
            costs = []
            for _ in range(args.repeats):
                resampler = StreamResampler(fs, rate)
                start = time.perf_counter()
                for row in made:
                    resampler.process(row)
                costs.append((time.perf_counter() - start) / blocks)
            cost = float(np.median(costs))
            print(f"| {rate:,} | {block} | {1e6 * cost:,.0f} us | {cost / (block / fs):.2%} | "
                  f"{cost / float(np.median(making)):.2%} |", flush=True)


if __name__ == "__main__":
    main()
