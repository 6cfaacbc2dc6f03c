"""Where a training iteration's time goes, against the floor of each part (FMA, or bf16 with --bf16).

    python benchmarks/parts.py [--threads N] [--iterations N] [--config default|small] [--bf16]

Runs blekota's training iteration (training.py's, default model) in a child process; after
warm-up, `perf record` samples it (CPU clock, call stacks from DWARF) for the timed iterations, and every
sample is put in one part by its function and callers (PARTS). Each part's seconds per
iteration are its share of the samples times the iteration's median CPU time (all threads
together); its floor is its float32 multiply-adds at one core's FMA peak (blekota._vmath.fma_peak,
at the CPU level in use), so "of floor" is how close the part runs to the FMA rate. Needs Linux
`perf` (package linux-perf or linux-tools); without it the script says so and exits with status 3.
run.py prints this breakdown after the training table (blekota's threads as given there), with
the most a float32 FMA kernel could beat PyTorch by on the CPU. With --bf16 the iteration
uses the bfloat16 products (`train --bf16`) and the product parts' floors are at one core's
bf16 peak: its AMX tiles' where the products run on them (blekota._vmath.amx_peak), else its
VDPBF16PS rate (blekota._vmath.bf16_peak).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import thread_env  # noqa: E402
from run import machine  # noqa: E402
from training import CONFIGS, LEVELS, synthetic_levels  # noqa: E402

PRODUCTS = ("bk_tile_", "bk_bf_tile_", "bk_amx_block", "bk_gemm_xw", "bk_gemm_tn")  # the products' leaves
GATES = ("bk_gates_rz", "bk_candidate", "bk_backward_zc", "bk_backward_r")
ROW_COPIES = ("memcpy", "memmove", "memset")
PARTS = (
    "forward products",
    "backward products (time loop)",
    "weight-gradient products",
    "input-gradient products",
    "output layer (products, softmax)",
    "gate math",
    "packing",
    "OpenMP waits",
    "other compiled loops",
    "Python, Adam, NumPy, kernel",
)


def classify(stack: list[str]) -> str:
    """The part of one sample, from its stack of "function (library)" frames, leaf first."""
    leaf = stack[0] if stack else ""
    frames = " ".join(stack)
    if any(name in frames for name in GATES):
        return "gate math"
    if "window._omp_fn" in frames and "layer_" not in frames and (
            "bk_softmax" in frames or any(leaf.startswith(p) for p in PRODUCTS)):
        return "output layer (products, softmax)"
    if "bk_pack_w" in leaf or leaf.startswith(("bk_gemm_tn", "bk_amx_columns_as_rows")):
        return "packing"  # bk_gemm_tn's own code packs its operands (and takes the bias sums)
    if any(leaf.startswith(p) for p in PRODUCTS):
        if "layer_forward" in frames:
            return "forward products"
        if "layer_backward_steps" in frames:
            return "backward products (time loop)"
        if "bk_gemm_tn" in frames:
            return "weight-gradient products"
        if "layer_weight_gradients" in frames:
            return "input-gradient products"
    if "libgomp" in leaf:
        return "OpenMP waits"
    if "blekota/_" in leaf or "bk_" in leaf or any(name in leaf for name in ROW_COPIES):
        return "other compiled loops"
    return "Python, Adam, NumPy, kernel"


def floors(layers: int, hidden: int, samples: int, peak_gflops: float) -> dict[str, float]:
    """Seconds per iteration of each product part at the FMA peak (2 FLOP per multiply-add)."""
    square = 3 * hidden * hidden  # multiply-adds of one gate set's (3H, H) product per sample
    macs = {
        "forward products": square * layers + square * (layers - 1),
        "backward products (time loop)": square * layers,
        "weight-gradient products": square * layers + square * (layers - 1),
        "input-gradient products": square * (layers - 1),
        "output layer (products, softmax)": 3 * LEVELS * hidden,
    }
    return {part: 2 * mac * samples / (peak_gflops * 1e9) for part, mac in macs.items()}


def child(threads: int, config: str, warmup: int, iterations: int, bf16: bool) -> None:
    """The measured process: warm up, say so, wait for the go, then time `iterations`."""
    import numpy as np

    import blekota
    from blekota import _vmath
    from blekota.optim import Adam

    c = CONFIGS[config]
    x = synthetic_levels(c["T"], c["B"])
    model = blekota.Model(hidden=c["hidden"], layers=c["layers"], dtype="float32", seed=0,
                          threads=threads)
    grads = np.empty_like(model.params)
    optimizer = Adam(model.params.size, model.dtype, lr=1e-3)
    h = None
    for _ in range(warmup):
        _, h = model.window(x, h, grads, bf16=bf16)
        optimizer.step(model.params, grads, threads)
    peak = _vmath.fma_peak()  # before the go: perf records only the timed iterations
    amx = blekota._gru.amx_products()
    bf16_peak = _vmath.amx_peak() if amx else _vmath.bf16_peak()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu, wall = [], []
    for _ in range(iterations):
        start, start_wall = time.process_time(), time.perf_counter()
        _, h = model.window(x, h, grads, bf16=bf16)
        optimizer.step(model.params, grads, threads)
        cpu.append(time.process_time() - start)
        wall.append(time.perf_counter() - start_wall)
    print(json.dumps({"cpu": cpu, "wall": wall, "peak": peak, "bf16_peak": bf16_peak,
                      "bf16_kind": "AMX" if amx else "bf16", "level": _vmath.cpu_level()}),
          flush=True)
    sys.stdin.readline()  # perf stops before this process exits: its exit is not sampled


def stacks(perf_data: str) -> list[list[str]]:
    """Every sample's stack from `perf script`, leaf first: "function (library)" per frame,
    without the inlined intrinsics (_mm512_fmadd_ps and so on) that DWARF reports as frames."""
    text = subprocess.run(["perf", "script", "-i", perf_data, "-F", "ip,sym,dso"],
                          capture_output=True, text=True, check=True).stdout
    found: list[list[str]] = [[]]
    for line in text.splitlines():
        fields = line.split(None, 1)
        if len(fields) < 2:
            if found[-1]:
                found.append([])
            continue
        if not fields[1].startswith("_mm"):
            found[-1].append(fields[1])
    return [stack for stack in found if stack]


def profile(threads: int, config: str, warmup: int, iterations: int, bf16: bool = False) -> dict:
    """Run the child under perf for the timed iterations; parts, times and floors."""
    with tempfile.TemporaryDirectory() as tmp:
        perf_data = str(Path(tmp) / "perf.data")
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(threads), config, str(warmup),
             str(iterations), str(int(bf16))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=thread_env(threads))
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the measured process failed before its timed iterations")
        recorder = subprocess.Popen(
            ["perf", "record", "-q", "--call-graph", "dwarf,65528", "-F", "500", "-o", perf_data,
             "-p", str(proc.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attaches
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        recorder.send_signal(signal.SIGINT)
        recorder.wait()
        proc.stdin.write("done\n")
        proc.stdin.flush()
        proc.wait()
        counts = Counter(classify(stack) for stack in stacks(perf_data))
    c = CONFIGS[config]
    cpu = statistics.median(result["cpu"])
    total = sum(counts.values())
    if total == 0:
        raise RuntimeError("perf recorded no samples")
    seconds = {part: cpu * counts[part] / total for part in PARTS}
    peak = result["bf16_peak"] if bf16 else result["peak"]
    return {"cpu_s": cpu, "wall_s": statistics.median(result["wall"]), "peak": result["peak"],
            "bf16_peak": result["bf16_peak"], "bf16_kind": result["bf16_kind"], "bf16": bf16,
            "level": result["level"], "samples": total, "seconds": seconds,
            "floors": floors(c["layers"], c["hidden"], c["T"] * c["B"], peak)}


def report(found: dict, threads: int, config: str) -> str:
    """The parts as a Markdown table."""
    info = machine()
    floor_total = sum(found["floors"].values())
    kind, peak = (found["bf16_kind"], found["bf16_peak"]) if found["bf16"] else ("FMA", found["peak"])
    lines = [
        f"CPU: {info['cpu']}, {info['cores']} cores; {threads} thread(s); {config} model "
        f"({CONFIGS[config]['layers']}x{CONFIGS[config]['hidden']}, "
        f"T={CONFIGS[config]['T']}, B={CONFIGS[config]['B']}), "
        f"{'bfloat16 products' if found['bf16'] else 'float32'}, {found['level']} kernels",
        f"{kind} peak of one core: {peak:.0f} GFLOP/s; iteration under perf: {found['cpu_s']:.4f} s CPU "
        f"(all threads), {found['wall_s']:.4f} s wall (medians); whole floor "
        f"{floor_total:.4f} s CPU = {floor_total / found['cpu_s']:.0%} of the CPU time; "
        f"{found['samples']} perf samples",
        "",
        f"| part | s CPU per iteration | share | {kind} floor s | of floor |",
        "|---|---|---|---|---|",
    ]
    for part in PARTS:
        seconds = found["seconds"][part]
        floor = found["floors"].get(part)
        cells = [part, f"{seconds:.4f}", f"{seconds / found['cpu_s']:.1%}",
                 f"{floor:.4f}" if floor else "", f"{floor / seconds:.0%}" if floor and seconds
                 else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "packing: the weights, once a window, and the weight-gradient kernels' own packing "
              "(and bf16 rounding) of their operands, which reads d_acts and the states from memory"]
    return "\n".join(lines)


def breakdown(threads: int, config: str = "default", iterations: int = 10,
              pytorch_s: float | None = None, bf16: bool = False, blekota_s: float | None = None) -> str:
    """The parts report for run.py and main(), or one line saying why there is none. With
    pytorch_s (PyTorch's seconds per iteration, same threads), also the most any float32 FMA
    kernel could beat it by on this CPU: PyTorch's time over the floor spread on the threads, and
    where the CPU has AVX512_BF16 the same for the bf16 products (at the AMX or VDPBF16PS peak);
    with blekota_s (blekota's float32 seconds per iteration, timed without perf), how far blekota
    is from that. With bf16, the iteration measured is the one with bfloat16 products (and
    pytorch_s is not used)."""
    if shutil.which("perf") is None:
        return "# parts: no breakdown, Linux perf is not installed (apt-get install linux-perf)"
    try:
        found = profile(threads, config, 2, iterations, bf16)
    except (subprocess.CalledProcessError, RuntimeError, ValueError, ZeroDivisionError) as error:
        return f"# parts: no breakdown, perf could not sample the iteration ({error})"
    text = report(found, threads, config)
    if pytorch_s is not None and not bf16:
        floor = sum(found["floors"].values()) / threads
        text += (f"\n\nPyTorch {pytorch_s:.4f} s per iteration on {threads} thread(s): at the FMA "
                 f"floor ({floor:.4f} s on {threads} core(s)) a float32 kernel would be "
                 f"{pytorch_s / floor:.2f}x PyTorch"
                 + (f"; blekota is {pytorch_s / blekota_s:.2f}x (without perf)." if blekota_s else "."))
        if found["bf16_peak"]:
            bf16_floor = floor * found["peak"] / found["bf16_peak"]
            where = "AMX tiles" if found["bf16_kind"] == "AMX" else "VDPBF16PS"
            text += (f" With bfloat16 products (--bf16, on {where}: {found['bf16_peak']:.0f} GFLOP/s per core) "
                     f"the products' floor is {bf16_floor:.4f} s: {pytorch_s / bf16_floor:.2f}x "
                     "PyTorch's float32 step.")
    return text


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
              bool(int(sys.argv[6])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations (10)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--bf16", action="store_true",
                        help="measure the iteration with bfloat16 products (needs AVX512_BF16)")
    args = parser.parse_args()
    text = breakdown(args.threads, args.config, args.iterations, bf16=args.bf16)
    print(text)
    return 3 if text.startswith("# parts: no breakdown") else 0


if __name__ == "__main__":
    sys.exit(main())
