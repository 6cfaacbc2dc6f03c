"""Data-parallel scaling over MPI: training samples/s of the default model on 1 and N processes.

Rows (section "scaling"), each measured in its own run: 1 process x 1 thread, 1 process x N
threads, and N processes x 1 thread started by `mpiexec -n N` (N: --threads), so that the last
two use the same cores. One iteration = Trainer.step() with the Trainer's default optimizer:
forward + backward over this process's streams of a (T, B) window, the Allreduce that sums the
flat gradient over the processes, the optimizer step. The note of the N-process row gives the
Allreduce of the gradient (5.0 MB in float32 for the default model): its time per iteration as
step() sees it (waiting for the slower process included), and after a barrier its time alone,
through blekota (a polled Iallreduce) and as one blocking MPI_Allreduce.
The N-process row is skipped, with a note, when mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import make_row, rss_mib, thread_env, time_runs

SECTION = "scaling"
CONFIG = {"layers": 3, "hidden": 256, "T": 100, "B": 80}
DTYPE = "float32"
ALONE_REPEATS = 20


def shape_name() -> str:
    return f"{CONFIG['layers']}x{CONFIG['hidden']} T={CONFIG['T']} B={CONFIG['B']}"


def synthetic_sound(samples: int, seed: int = 0) -> np.ndarray:
    """A noisy two-tone sound at 8 kHz, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 8000
    sound = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 97 * t)
    return np.clip(sound + 0.05 * rng.standard_normal(samples), -1, 1).astype(np.float32)


def measure(threads: int, repeats: int, warmup: int) -> dict | None:
    """Time Trainer.step() in this process (one of an MPI job when started by mpiexec); the row,
    in rank 0 (None in the others)."""
    import blekota

    processes = blekota.parallel.from_launcher()
    T, B = CONFIG["T"], CONFIG["B"]
    sound = synthetic_sound((repeats + warmup + 2) * T * B)
    base = rss_mib()
    model = blekota.Model(hidden=CONFIG["hidden"], layers=CONFIG["layers"], dtype=DTYPE, seed=0, threads=threads)
    with tempfile.TemporaryDirectory() as directory:
        trainer = blekota.Trainer(model, sound, seq_length=T, batch_size=B, val_fraction=0, checkpoint_every=0,
                                  log=False, directory=directory, comm=processes)
        group, sums = trainer.processes, []
        timed_sum = group.sum

        def sum_timed(buffer, failure=None):
            start = time.perf_counter()
            timed_sum(buffer, failure)
            sums.append(time.perf_counter() - start)

        group.sum = sum_timed
        times = time_runs(trainer.step, repeats, warmup)
        group.sum = timed_sum
        note = ""
        if group.size > 1:
            from mpi4py import MPI

            comm, alone, blocking = group.comm, [], []
            buffer = trainer._sums
            for _ in range(ALONE_REPEATS):
                comm.Barrier()
                start = time.perf_counter()
                group.sum(buffer)
                alone.append(time.perf_counter() - start)
                comm.Barrier()
                start = time.perf_counter()
                comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
                blocking.append(time.perf_counter() - start)
            in_step = statistics.median(sums[-repeats:])
            note = (
                f"mpiexec -n {group.size}; Allreduce of the {trainer.grads.nbytes / 1e6:.1f} MB gradient: "
                f"{in_step * 1e3:.1f} ms per iteration in step ({in_step / statistics.median(times):.1%}), "
                f"alone {statistics.median(alone) * 1e3:.2f} ms (blocking MPI_Allreduce "
                f"{statistics.median(blocking) * 1e3:.2f} ms)"
            )
        if not group.is_root:
            return None
    processes = group.size
    impl = f"blekota, {processes} process{'es' if processes > 1 else ''}"
    return make_row(section=SECTION, config="default", shape=shape_name(), impl=impl, dtype=DTYPE,
                    threads=threads, unit="iteration", samples=T * B, times=times, base_mib=base, note=note)


def find_mpiexec() -> str | None:
    """mpiexec of this environment (the mpich wheel's), else the one on the PATH, if mpi4py imports."""
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True)
    return found if found and probe.returncode == 0 else None


def measure_in_job(processes: int, threads: int, repeats: int, warmup: int, mpiexec: str | None) -> dict:
    """measure() in a fresh Python, or in `processes` of them under mpiexec."""
    command = [sys.executable, __file__, json.dumps({"threads": threads, "repeats": repeats, "warmup": warmup})]
    if processes > 1:
        command = [mpiexec, "-n", str(processes), *command]
    result = subprocess.run(command, env=thread_env(threads), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"scaling benchmark {command} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(threads: int, repeats: int, quick: bool) -> list[dict]:
    """1 process x 1 thread, 1 process x `threads` threads, `threads` processes x 1 thread."""
    warmup = 1 if quick else 2
    mpiexec = find_mpiexec()
    rows = [measure_in_job(1, 1, repeats, warmup, mpiexec)]
    if threads > 1:
        rows.append(measure_in_job(1, threads, repeats, warmup, mpiexec))
        if mpiexec is None:
            print("# mpi4py or mpiexec is missing: the scaling section has no multi-process row "
                  "(pip install -e '.[mpi]')")
        else:
            rows.append(measure_in_job(threads, 1, repeats, warmup, mpiexec))
    single = rows[0]["samples_per_s"]
    for row in rows[1:]:
        ratio = f"{row['samples_per_s'] / single:.2f}x the 1 x 1 row"
        row["note"] = f"{ratio}; {row['note']}" if row["note"] else ratio
    return rows


if __name__ == "__main__":
    row = measure(**json.loads(sys.argv[1]))
    if row is not None:
        print(json.dumps(row))
