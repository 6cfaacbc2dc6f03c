"""Timing and memory helpers shared by the benchmark sections, and the row format they return.

A section module (training.py, sampling.py, ...) exposes

    run(threads: int, repeats: int, quick: bool) -> list[dict]

and returns one row per (config, impl, dtype) measurement. Rows are plain JSON-able dicts:

    section       str    "training", "sampling", ...
    config        str    short name of the model/shape, e.g. "default" or "small"
    shape         str    human-readable shape, e.g. "3x256 T=100 B=80"
    impl          str    "blekota", "reference" or "pytorch"
    dtype         str    "float32" or "float64"
    threads       int    threads the implementation was allowed to use
    unit          str    what one timed run is, e.g. "iteration" (forward + backward + Adam step)
    samples       int    audio samples processed by one timed run (T * B for training)
    repeats       int    number of timed runs after warm-up
    median_s      float  median seconds per run
    min_s, max_s  float  fastest and slowest run
    samples_per_s float  samples / median_s
    times_s       list   seconds of every timed run
    peak_mib      float  peak resident memory of the measuring process (VmHWM on Linux), MiB;
                         None (JSON null) where not measured
    base_mib      float  resident memory after imports and before the model was built, MiB (None
                         with peak_mib)
    note          str    anything a reader must know (smaller T for the slow reference, ...)

Each measurement runs in a fresh subprocess (measure_in_subprocess), so peak memory belongs to one
implementation alone and thread pools of different libraries never share a process.
Ratios between implementations are computed by run.py from samples_per_s.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent


def use_this_checkout() -> None:
    """Make this process and the processes it starts import the blekota of the checkout these
    benchmarks sit in when its compiled core is built there (pip install -e ., or setup.py
    build_ext --inplace), so that they time this code and not another installed copy."""
    if not any((CHECKOUT / "blekota").glob("_gru.*")):
        return
    path = str(CHECKOUT)
    if path not in sys.path[:1]:
        sys.path.insert(0, path)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != path]
    os.environ["PYTHONPATH"] = os.pathsep.join([path, *paths])


use_this_checkout()

ROW_KEYS = (
    "section", "config", "shape", "impl", "dtype", "threads", "unit", "samples", "repeats",
    "median_s", "min_s", "max_s", "samples_per_s", "times_s", "peak_mib", "base_mib", "note",
)


def rss_mib() -> float:
    """Current resident memory of this process in MiB (Linux /proc; peak as a fallback)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this program's own address space
    (ru_maxrss would also count the parent's resident size at fork, which exec keeps).
    Elsewhere: ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def time_runs(run: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    """Seconds of each of `repeats` calls of run(), after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def make_row(*, section: str, config: str, shape: str, impl: str, dtype: str, threads: int,
             unit: str, samples: int, times: list[float], base_mib: float, note: str = "") -> dict:
    """A result row (see the module docstring) from per-run times in seconds."""
    row = {
        "section": section, "config": config, "shape": shape, "impl": impl, "dtype": dtype,
        "threads": threads, "unit": unit, "samples": samples, "times_s": list(times),
        "peak_mib": peak_rss_mib(), "base_mib": base_mib, "note": note,
    }
    return _with_statistics(row)


def _with_statistics(row: dict) -> dict:
    times = row["times_s"]
    median = statistics.median(times)
    row.update(repeats=len(times), median_s=median, min_s=min(times), max_s=max(times),
               samples_per_s=row["samples"] / median)
    return {key: row[key] for key in ROW_KEYS}


def merge_rows(rows: list[dict]) -> dict:
    """One row from several measurements of the same thing: all times, the largest peak."""
    merged = dict(rows[0])
    merged["times_s"] = [t for row in rows for t in row["times_s"]]
    merged["peak_mib"] = max(row["peak_mib"] for row in rows)
    merged["base_mib"] = min(row["base_mib"] for row in rows)
    return _with_statistics(merged)


def thread_env(threads: int) -> dict[str, str]:
    """Environment for a child process limited to `threads` threads in every runtime we know."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def measure_in_subprocess(module: str, function: str, threads: int, **kwargs) -> dict | list | None:
    """Call benchmarks/<module>.py's function(threads=threads, **kwargs) in a fresh Python.

    The function must return its row (a dict) or rows (a list of them) as JSON values. Returns
    them, or None when the implementation is not available there (the child exits with status 3,
    e.g. torch is not installed)."""
    args = json.dumps({"threads": threads, **kwargs})
    result = subprocess.run(
        [sys.executable, str(HERE / "common.py"), module, function, args],
        env=thread_env(threads), capture_output=True, text=True,
    )
    if result.returncode == 3:
        return None
    if result.returncode != 0:
        raise RuntimeError(f"benchmark {module}.{function}({args}) failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def positive_int(text: str) -> int:
    """argparse type of a count (threads, repeats, ...): an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type of a duration (minutes, seconds): a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def json_output(text: str) -> Path:
    """argparse type of --json: a file in a folder that exists, checked before the run and not
    at its end, when the results would be lost."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{path.parent}: no such folder")
    return path


def sound_files(parser: argparse.ArgumentParser, paths: list[str] | None) -> None:
    """parser.error naming the first of --sound's files that is not there, before any training."""
    for path in paths or []:
        if not Path(path).is_file():
            parser.error(f"--sound {path}: no such file")


class Unavailable(Exception):
    """Raised by a measurement whose implementation cannot run here (missing optional package)."""


def _child(module: str, function: str, args: str) -> int:
    """Entry point of a measuring subprocess: print the row as JSON, or exit 3 if unavailable."""
    sys.path.insert(0, str(HERE))
    unavailable = importlib.import_module("common").Unavailable  # the class sections raise
    try:
        row = getattr(importlib.import_module(module), function)(**json.loads(args))
    except unavailable as reason:
        print(reason, file=sys.stderr)
        return 3
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
