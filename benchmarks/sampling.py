"""Sampling speed (issue 5): blekota's compiled generation against PyTorch and the reference, a
plain NumPy float32 loop (row lookup for layer 0, one product per layer and step).

Default model: 3 GRU layers of 256 units, float32, 256 mu-law levels. Each implementation draws
one sample per stream per step and feeds it back; rates are samples per second summed over the
streams (so 64 streams at 1,000 steps/s is 64,000 samples/s). Rows use the suite's format
(common.py); peak_mib is the tracemalloc peak of one extra untimed run (null for PyTorch, whose
memory tracemalloc does not see). blekota is also timed with each truncation of the sampled
distribution (note column: min-p, top-k or top-p), so its cost reads against the plain row above it;
the untrained model's distributions are nearly flat, the most work for top-k and top-p. Both stream
counts are also timed with bfloat16 products (Model.bf16_sampling: note "bf16 products", with how
this CPU runs them: vdpbf16ps or float instructions). The plain
row writes each sample 0.3 of the way to its step's mean (sample's default smooth); "smooth 0" writes
the drawn levels, so the difference is what smoothing costs. The
"frame tier" rows are the same model with a frame tier of FRAME samples (blekota.frames): the
compiled loop runs a frame at a time, the frame tier steps in NumPy between frames.

Run alone: python benchmarks/sampling.py [--threads N] [--repeats R] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import tracemalloc
from collections.abc import Callable

import numpy as np

from common import positive_int, time_runs  # before blekota: it picks this checkout's
import blekota

SECTION = "sampling"
HIDDEN, LAYERS, LEVELS, SILENCE = 256, 3, 256, 128
STREAMS = (1, 64)
FRAME = 20  # the frame tier's frame length in the "frame tier" rows
VARIANTS = {"min-p 0.05": dict(min_p=0.05), "top-k 40": dict(top_k=40), "top-p 0.9": dict(top_p=0.9),
               "smooth 0": dict(smooth=0), "wake 0": dict(wake=0)}


def _steps(impl: str, streams: int, quick: bool) -> int:
    """Steps per timed run: enough for ~0.2-1 s per run at the issue's measured rates."""
    table = {
        ("blekota", 1): 16000, ("blekota", 64): 400,
        ("pytorch", 1): 2000, ("pytorch", 64): 200,
        ("reference", 1): 1000, ("reference", 64): 40,
    }
    steps = table[impl, streams]
    return max(steps // 4, 10) if quick else steps


def _peak_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _row(impl: str, streams: int, threads: int, steps: int, times: list[float],
         peak: float | None, note: str = "") -> dict:
    """A row in the format of common.py; peak_mib is what one run allocated (tracemalloc)."""
    median = float(np.median(times))
    return {
        "section": SECTION,
        "config": f"{streams} stream{'s' if streams > 1 else ''}",
        "shape": f"{LAYERS}x{HIDDEN}, {steps} steps",
        "impl": impl,
        "dtype": "float32",
        "threads": threads,
        "unit": "generation",
        "samples": streams * steps,
        "repeats": len(times),
        "median_s": median,
        "min_s": float(min(times)),
        "max_s": float(max(times)),
        "samples_per_s": streams * steps / median,
        "times_s": list(times),
        "peak_mib": peak,
        "base_mib": None if peak is None else 0.0,
        "note": note or ("" if peak is None else "peak: allocated during one run"),
    }


def _numpy_sampler(streams: int, steps: int) -> Callable[[], np.ndarray]:
    """The plain NumPy float32 baseline: per step and layer one row lookup or product for the
    input, one for h, the gates, then softmax and an inverse-CDF draw (cumsum + search)."""
    model = blekota.Model(HIDDEN, LAYERS, dtype="float32", seed=0)
    state = {key: value.astype(np.float32) for key, value in model.state_dict().items()}
    H = HIDDEN
    layers = []
    for layer in range(LAYERS):
        X = LEVELS if layer == 0 else H
        w = np.concatenate([state[f"gru{layer}.{name}"] for name in ("Wr", "Wz", "W")])
        layers.append((np.ascontiguousarray(w[:, :X].T), np.ascontiguousarray(w[:, X : X + H].T),
                       w[:, -1].copy()))
    wy, by = np.ascontiguousarray(state["out.Wy"][:, :H].T), state["out.Wy"][:, H].copy()
    rng = np.random.default_rng(0)

    def run() -> np.ndarray:
        h = [np.zeros((streams, H), np.float32) for _ in range(LAYERS)]
        level = np.full(streams, SILENCE)
        out = np.empty((streams, steps), np.uint8)
        for t in range(steps):
            x = None
            for layer, (wx, uh, b) in enumerate(layers):
                gx = (wx[level] if layer == 0 else x @ wx) + b
                gh = h[layer] @ uh[:, : 2 * H]
                r = 1 / (1 + np.exp(-(gx[:, :H] + gh[:, :H])))
                z = 1 / (1 + np.exp(-(gx[:, H : 2 * H] + gh[:, H:])))
                c = np.tanh(gx[:, 2 * H :] + (r * h[layer]) @ uh[:, 2 * H :])
                h[layer] = (1 - z) * h[layer] + z * c
                x = h[layer]
            y = x @ wy + by
            p = np.exp(y - y.max(axis=1, keepdims=True))
            cdf = np.cumsum(p, axis=1)
            u = rng.random(streams) * cdf[:, -1]
            level = np.minimum((cdf < u[:, None]).sum(axis=1), LEVELS - 1)
            out[:, t] = level
        return out

    return run


def _torch_sampler(streams: int, steps: int, threads: int) -> Callable[[], object] | None:
    """PyTorch peer: nn.Embedding (the one-hot input), nn.GRU(256, 256, 3), nn.Linear, softmax
    and torch.multinomial, one step at a time under inference_mode. None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    embedding = torch.nn.Embedding(LEVELS, HIDDEN)
    gru = torch.nn.GRU(HIDDEN, HIDDEN, LAYERS)
    linear = torch.nn.Linear(HIDDEN, LEVELS)

    def run() -> object:
        with torch.inference_mode():
            level = torch.full((streams,), SILENCE, dtype=torch.long)
            h = torch.zeros(LAYERS, streams, HIDDEN)
            out = torch.empty(streams, steps, dtype=torch.long)
            for t in range(steps):
                y, h = gru(embedding(level)[None], h)
                p = torch.softmax(linear(y[0]), dim=-1)
                level = torch.multinomial(p, 1)[:, 0]
                out[:, t] = level
            return out

    return run


def run(threads: int, repeats: int, quick: bool) -> list[dict]:
    """Benchmark rows for 1 and 64 streams: blekota at 1 and `threads` threads, PyTorch at the
    same thread counts (when importable) and the NumPy baseline (NumPy's own BLAS threads).
    blekota rows come plain and with each of VARIANTS."""
    rows = []
    thread_counts = sorted({1, max(threads, 1)})
    model = blekota.Model(HIDDEN, LAYERS, dtype="float32", seed=0)
    framed = blekota.Model(HIDDEN, LAYERS, dtype="float32", seed=0, frame=FRAME)
    for streams in STREAMS:
        steps = _steps("blekota", streams, quick)
        for count in thread_counts:
            model.threads = count

            def sample(**variant) -> np.ndarray:
                return model.sample(steps, seed=0, streams=streams, **variant)

            for note, variant in {"": {}, **VARIANTS}.items():
                draw = functools.partial(sample, **variant)
                rows.append(_row("blekota", streams, count, steps, time_runs(draw, repeats, warmup=1),
                                 _peak_mib(draw), note))
            model.bf16_sampling = True
            rows.append(_row("blekota", streams, count, steps, time_runs(sample, repeats, warmup=1),
                             _peak_mib(sample), f"bf16 products ({blekota.sampler.bf16_path(streams)})"))
            model.bf16_sampling = False
            framed.threads = count

            def sample_framed() -> np.ndarray:
                return framed.sample(steps, seed=0, streams=streams)

            rows.append(_row("blekota", streams, count, steps, time_runs(sample_framed, repeats, warmup=1),
                             _peak_mib(sample_framed), f"frame tier, F = {FRAME}"))
        steps = _steps("pytorch", streams, quick)
        for count in thread_counts:
            sampler = _torch_sampler(streams, steps, count)
            if sampler is not None:
                rows.append(_row("pytorch", streams, count, steps, time_runs(sampler, repeats, warmup=1), None))
        steps = _steps("reference", streams, quick)
        sampler = _numpy_sampler(streams, steps)
        rows.append(_row("reference", streams, threads, steps, time_runs(sampler, repeats, warmup=1),
                         _peak_mib(sampler)))
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table of the rows."""
    header = f"{'config':<24} {'impl':<8} {'thr':>3} {'median s':>9} {'min s':>8} {'max s':>8} " \
             f"{'samples/s':>10} {'peak MiB':>8}  note"
    lines = [header, "-" * len(header)]
    for row in rows:
        peak = "-" if row["peak_mib"] is None else f"{row['peak_mib']:.1f}"
        lines.append(
            f"{row['config']:<24} {row['impl']:<8} {row['threads']:>3} {row['median_s']:>9.4f} "
            f"{row['min_s']:>8.4f} {row['max_s']:>8.4f} {row['samples_per_s']:>10,.0f} {peak:>8}  "
            f"{row['note']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=positive_int, default=blekota.model.default_threads())
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer steps per run")
    args = parser.parse_args()
    print(f"blekota sampling benchmark, {os.cpu_count()} CPUs")
    rows = run(args.threads, args.repeats, args.quick)
    if not any(row["impl"] == "pytorch" for row in rows):
        print("# torch is not importable: the PyTorch rows were skipped (pip install -e '.[bench]' to include them)")
    print(format_table(rows))


if __name__ == "__main__":
    main()
