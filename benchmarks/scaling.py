"""Data-parallel scaling over MPI: training samples/s of the default model on 1 and N processes.

Rows (section "scaling"), each measured in its own run (N: --threads):
- 1 process x 1 thread, and 1 process x N threads, B=80;
- strong scaling: N processes x 1 thread under `mpiexec -n N`, B=80 in all (80/N streams each);
- weak scaling: N processes x 1 thread, 80 streams per process (B=80 N), against N times the
  1 x 1 row;
- the work of one process at fewer streams (1 process x 1 thread, B=5..80 in alternating rounds of
  one process, wall and CPU time), which is what each process of a strong-scaling run has to do
  (B=5: 16 processes, batch 80).
One iteration = Trainer.step() with the Trainer's default optimizer: forward + backward over this
process's streams of a (T, B) window, the gradient summed over the processes, the optimizer step.
The N-process jobs time iterations with the gradient summed during the backward pass (one
Allreduce per layer, the default) and after it (one Allreduce), in alternating rounds of the same
job; the row is the overlapped one and its note gives the other, each process's compute
(Model.window, the hand-over of the gradient blocks included) and wait (from the end of the
backward pass to the end of the sum: what is left of the Allreduce and the wait for slower
processes), and the Allreduce of the whole gradient (5.0 MB in float32 for the default model)
alone after a barrier: through blekota (a polled Iallreduce) and as one blocking MPI_Allreduce.
The N-process rows are skipped, with a note, when mpi4py or mpiexec is missing.
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

from common import make_row, rss_mib, thread_env

SECTION = "scaling"
CONFIG = {"layers": 3, "hidden": 256, "T": 100, "B": 80}
DTYPE = "float32"
ALONE_REPEATS = 20
ROUNDS = 3  # alternating rounds of overlapped and not overlapped iterations in an N-process job
FEW_STREAMS = (5, 10, 20, 40, 80)


def shape_name(batch: int) -> str:
    return f"{CONFIG['layers']}x{CONFIG['hidden']} T={CONFIG['T']} B={batch}"


def synthetic_sound(samples: int, seed: int = 0) -> np.ndarray:
    """A noisy two-tone sound at 8 kHz, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 8000
    sound = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 97 * t)
    return np.clip(sound + 0.05 * rng.standard_normal(samples), -1, 1).astype(np.float32)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def spread(values: list[float]) -> str:
    """'median (min-max)' in ms of per-process medians."""
    return f"{ms(statistics.median(values))} ({ms(min(values))}-{ms(max(values))})"


class Timed:
    """Times each process's compute (Model.window: wall and CPU time), its optimizer update and its
    sum (GradientSum.finish: when it arrives and when the sum ends, on the machine's monotonic
    clock, which all processes of one machine share) in Trainer.step."""

    def __init__(self, trainer) -> None:
        self.compute: list[float] = []
        self.compute_cpu: list[float] = []
        self.update: list[float] = []
        self.arrive_end: list[tuple[float, float]] = []
        window, gradient_sum, update = trainer.model.window, trainer.processes.gradient_sum, trainer.optimizer.step

        def timed_update(*args, **kwargs):
            start = time.perf_counter()
            try:
                return update(*args, **kwargs)
            finally:
                self.update.append(time.perf_counter() - start)

        def timed_window(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return window(*args, **kwargs)
            finally:
                self.compute.append(time.perf_counter() - start)
                self.compute_cpu.append(time.process_time() - cpu)

        def timed_sum(*args, **kwargs):
            summing = gradient_sum(*args, **kwargs)
            finish = summing.finish

            def timed_finish(failure=None):
                start = time.perf_counter()
                try:
                    finish(failure)
                finally:
                    self.arrive_end.append((start, time.perf_counter()))

            summing.finish = timed_finish
            return summing

        trainer.model.window, trainer.processes.gradient_sum = timed_window, timed_sum
        trainer.optimizer.step = timed_update

    def clear(self) -> None:
        for values in (self.compute, self.compute_cpu, self.update, self.arrive_end):
            values.clear()


def measure(threads: int, repeats: int, warmup: int, batch: int | list[int] = CONFIG["B"]) -> dict | list[dict] | None:
    """Time Trainer.step() in this process (one of an MPI job when started by mpiexec); the row,
    in rank 0 (None in the others). A list of batch sizes: one row each, measured in alternating
    rounds in this process alone."""
    import blekota

    if isinstance(batch, list):
        return measure_streams(threads, repeats, warmup, batch)

    processes = blekota.parallel.from_launcher()
    T = CONFIG["T"]
    multi = processes.size > 1
    steps = (ROUNDS * 2 if multi else 1) * repeats + warmup + 2
    sound = synthetic_sound(steps * T * batch + 1000)
    base = rss_mib()
    model = blekota.Model(hidden=CONFIG["hidden"], layers=CONFIG["layers"], dtype=DTYPE, seed=0, threads=threads)
    with tempfile.TemporaryDirectory() as directory:
        trainer = blekota.Trainer(model, sound, seq_length=T, batch_size=batch, val_fraction=0, checkpoint_every=0,
                                  log=False, directory=directory, comm=processes)
        group, timed = trainer.processes, Timed(trainer)
        for _ in range(warmup):
            trainer.step()
        times, seen = {True: [], False: []}, {True: {}, False: {}}
        for _ in range(ROUNDS if multi else 1):
            for overlap in (True, False) if multi else (True,):
                group.overlap = overlap
                timed.clear()
                for _ in range(repeats):
                    start = time.perf_counter()
                    trainer.step()
                    times[overlap].append(time.perf_counter() - start)
                for key in ("compute", "compute_cpu", "arrive_end"):
                    seen[overlap].setdefault(key, []).extend(getattr(timed, key))
        group.overlap = True
        note = (f"forward + backward {ms(statistics.median(timed.compute))} ms (CPU "
                f"{ms(statistics.median(timed.compute_cpu))}), optimizer update {ms(statistics.median(timed.update))} ms")
        if multi:
            note = allreduce_note(trainer, times, seen)
        if not group.is_root:
            return None
    impl = f"blekota, {group.size} process{'es' if multi else ''}"
    return make_row(section=SECTION, config="default", shape=shape_name(batch), impl=impl, dtype=DTYPE,
                    threads=threads, unit="iteration", samples=T * batch, times=times[True], base_mib=base, note=note)


def balance(every: list[dict]) -> str:
    """Compute and wait of every process in one setting: per-process medians (median, min-max
    over processes) of compute wall and CPU time; per iteration, how long after the first process
    the last one arrived at the sum (imbalance) and how long the sum then took (exposed sum: what
    the Allreduce adds once all are there)."""
    walls = [statistics.median(p["compute"]) for p in every]
    cpus = [statistics.median(p["compute_cpu"]) for p in every]
    iterations = len(every[0]["arrive_end"])
    imbalance, exposed = [], []
    for i in range(iterations):
        arrivals = [p["arrive_end"][i][0] for p in every]
        last = max(range(len(every)), key=lambda rank: arrivals[rank])
        imbalance.append(arrivals[last] - min(arrivals))
        exposed.append(every[last]["arrive_end"][i][1] - arrivals[last])
    return (f"compute {spread(walls)} ms (CPU {spread(cpus)}), imbalance {ms(statistics.median(imbalance))} ms, "
            f"exposed sum {ms(statistics.median(exposed))} ms")


def measure_streams(threads: int, repeats: int, warmup: int, batches: list[int]) -> list[dict]:
    """One process: Trainer.step() at each batch size, in ROUNDS alternating rounds, wall and CPU
    time; each row's note compares its time per stream with the largest batch's."""
    import blekota

    T, base = CONFIG["T"], rss_mib()
    trainers, timers, walls, cpus = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as directory:
        for batch in batches:
            model = blekota.Model(hidden=CONFIG["hidden"], layers=CONFIG["layers"], dtype=DTYPE, seed=0, threads=threads)
            sound = synthetic_sound((ROUNDS * repeats + warmup + 2) * T * batch + 1000)
            trainers[batch] = blekota.Trainer(model, sound, seq_length=T, batch_size=batch, val_fraction=0,
                                              checkpoint_every=0, log=False, directory=directory)
            timers[batch], walls[batch], cpus[batch] = Timed(trainers[batch]), [], []
            for _ in range(warmup):
                trainers[batch].step()
            timers[batch].clear()
        for _ in range(ROUNDS):
            for batch in batches:
                for _ in range(repeats):
                    start, cpu = time.perf_counter(), time.process_time()
                    trainers[batch].step()
                    walls[batch].append(time.perf_counter() - start)
                    cpus[batch].append(time.process_time() - cpu)
    largest = max(batches)
    per_stream = {batch: statistics.median(cpus[batch]) / batch for batch in batches}
    rows = []
    for batch in batches:
        timed = timers[batch]
        note = (f"one process's share at {batch} streams (alternating rounds with the other batch sizes): CPU "
                f"{ms(statistics.median(cpus[batch]))} ms per iteration, {per_stream[batch] / per_stream[largest]:.2f}x "
                f"B={largest}'s CPU time per stream; forward + backward {ms(statistics.median(timed.compute))} ms "
                f"(CPU {ms(statistics.median(timed.compute_cpu))}), optimizer update "
                f"{ms(statistics.median(timed.update))} ms")
        rows.append(make_row(section=SECTION, config="default", shape=shape_name(batch), impl="blekota, 1 process",
                             dtype=DTYPE, threads=threads, unit="iteration", samples=T * batch, times=walls[batch],
                             base_mib=base, note=note))
    return rows


def allreduce_note(trainer, times: dict, seen: dict) -> str:
    """The N-process row's note: per-process compute and wait with the gradient summed during and
    after the backward pass, and the Allreduce alone."""
    from mpi4py import MPI

    group = trainer.processes
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
    every = comm.gather(seen, root=0)
    if not group.is_root:
        return ""
    on, off = statistics.median(times[True]), statistics.median(times[False])
    share = trainer.streams.stop - trainer.streams.start
    return (
        f"mpiexec -n {group.size}, {share} streams in rank 0; per process (median, min-max over processes) "
        f"with the gradient summed during the backward pass: {balance([p[True] for p in every])}; after it: "
        f"{ms(off)} ms per iteration (with it {on / off:.3f}x that), {balance([p[False] for p in every])}; "
        f"Allreduce of the {trainer.grads.nbytes / 1e6:.1f} MB gradient alone {ms(statistics.median(alone))} ms "
        f"(blocking MPI_Allreduce {ms(statistics.median(blocking))} ms)"
    )


def find_mpiexec() -> str | None:
    """mpiexec of this environment (the mpich wheel's), else the one on the PATH, if mpi4py imports."""
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True)
    return found if found and probe.returncode == 0 else None


def measure_in_job(processes: int, threads: int, repeats: int, warmup: int, mpiexec: str | None,
                   batch: int | list[int] = CONFIG["B"]) -> dict | list[dict]:
    """measure() in a fresh Python, or in `processes` of them under mpiexec."""
    arguments = {"threads": threads, "repeats": repeats, "warmup": warmup, "batch": batch}
    command = [sys.executable, __file__, json.dumps(arguments)]
    if processes > 1:
        command = [mpiexec, "-n", str(processes), *command]
    result = subprocess.run(command, env=thread_env(threads), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"scaling benchmark {command} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(threads: int, repeats: int, quick: bool) -> list[dict]:
    """1 x 1, 1 x `threads` threads, `threads` processes x 1 thread (strong and weak), and 1 x 1
    at fewer streams."""
    warmup = 1 if quick else 2
    mpiexec = find_mpiexec()
    single = measure_in_job(1, 1, repeats, warmup, mpiexec)
    rows = [single]
    if threads > 1:
        rows.append(measure_in_job(1, threads, repeats, warmup, mpiexec))
        if mpiexec is None:
            print("# mpi4py or mpiexec is missing: the scaling section has no multi-process row "
                  "(pip install -e '.[mpi]')")
        else:
            strong = measure_in_job(threads, 1, repeats, warmup, mpiexec)
            weak = measure_in_job(threads, 1, repeats, warmup, mpiexec, batch=CONFIG["B"] * threads)
            strong["note"] = f"strong scaling; {strong['note']}"
            efficiency = weak["samples_per_s"] / (threads * single["samples_per_s"])
            weak["note"] = f"weak scaling: {CONFIG['B']} streams per process, {efficiency:.0%} efficiency; {weak['note']}"
            rows += [strong, weak]
    for row in rows[1:]:
        ratio = f"{row['samples_per_s'] / single['samples_per_s']:.2f}x the 1 x 1 row"
        row["note"] = f"{ratio}; {row['note']}" if row["note"] else ratio
    if not quick:
        rows += measure_in_job(1, 1, repeats, warmup, mpiexec, batch=list(FEW_STREAMS))
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].startswith("{"):  # run alone, not as a job's process
        sys.exit("benchmarks/scaling.py is a section of the suite: python benchmarks/run.py --only scaling")
    row = measure(**json.loads(sys.argv[1]))
    if row is not None:
        print(json.dumps(row))
