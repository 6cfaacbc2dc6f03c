"""One process of the data-parallel tests in test_parallel.py, started by mpiexec:

    mpiexec -n N python tests/mpi_worker.py SCENARIO DIRECTORY

exact: train a tiny float64 model 20 iterations through the Python API; rank 0 saves the weights
of every process (DIRECTORY/params_N.npy, one row per process) and the model (DIRECTORY/t_20.npz).
overlap: the same three times, summing the gradient during the backward pass (kept moving by the
progress thread, then without it) and after it; rank 0 saves the weights (DIRECTORY/overlap.npy:
[overlapped, overlapped without the thread, after]) and every process the threads its model,
built without threads, was given (DIRECTORY/threads_RANK.txt).
sparse: the same with block-sparse training (density 0.25), into DIRECTORY/sparse_N.npy.
frame: the same with a frame tier of 5 samples, into DIRECTORY/frame_N.npy.
clock: block-sparse with no schedule, stopped by time on clocks that tick 0.1 s a reading in
rank 0 and 0.37 s in the others: rank 0 saves every process's weights (DIRECTORY/clock.npy) and
schedule ([start, end, iterations] per process, DIRECTORY/clock_schedule.npy).
fail: process 1 runs out of memory in its 6th update; every process writes how it ended to
DIRECTORY/outcome_RANK.txt.
fail-midway: the same, but in its backward pass, after it has handed over two gradient blocks.
bf16: a float32 model with the default bf16 ("auto"), where process 1 runs at the avx2 level
(no bfloat16 products): every process writes whether it trains with them to DIRECTORY/bf16_RANK.txt.
hang: process 1 stops answering in its 6th update (SIGSTOP); rank 0 gives up after a few seconds,
writes how it ended and aborts the job.
ctrl-c-starting: `train DIRECTORY/sine.wav` on the command line, where Ctrl+C reaches rank 0 while
it creates the run's folder and the other process waits for it there (the process gets its SIGINT
but is inside MPI, where Python cannot raise it).
ctrl-c-final-save: 4 iterations, after which Ctrl+C reaches process 1 while rank 0 still reports
the end (as it writes its last files and TensorBoard pictures); every process writes how it ended.
"""

import os
import signal
import sys
import time
from types import SimpleNamespace

import numpy as np
from mpi4py import MPI

import blekota
from blekota import agreement, parallel
from conftest import CPU_MODULES

FS = 8000


def sine(n: int = 12000) -> np.ndarray:
    t = np.arange(n) / FS
    return (0.6 * np.sin(2 * np.pi * 300 * t + 3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def trainer(directory: str, comm, model: blekota.Model | None = None, **options) -> blekota.Trainer:
    model = model or blekota.Model(hidden=16, layers=2, dtype="float64", seed=0, threads=1)
    settings = dict(seq_length=20, batch_size=8, optimizer="adam", lr=3e-3, name="t", checkpoint_every=0,
                    val_every=10, directory=directory, comm=comm)
    settings.update(options)
    return blekota.Trainer(model, sine(), **settings)


def fail_in_update(model: blekota.Model, at: int, action) -> None:
    """Make model.window call action() on its `at`-th training call (one with gradients)."""
    window, calls = model.window, [0]

    def failing(x, h0=None, grads=None, targets=None, ready=None, bf16=False):
        if grads is not None:
            calls[0] += 1
            if calls[0] == at:
                action()
        return window(x, h0, grads, targets, ready, bf16)

    model.window = failing


def fail_in_backward(model: blekota.Model, at: int, action) -> None:
    """Make model.window call action() in its `at`-th training call, after its backward pass has
    handed over two gradient blocks."""
    window, calls = model.window, [0]

    def failing(x, h0=None, grads=None, targets=None, ready=None, bf16=False):
        if grads is None:
            return window(x, h0, grads, targets, ready, bf16)
        calls[0] += 1
        handed = [0]

        def handing(start, stop):
            ready(start, stop)
            handed[0] += 1
            if calls[0] == at and handed[0] == 2:
                action()

        return window(x, h0, grads, targets, handing, bf16)

    model.window = failing


def outcome(directory: str, rank: int, text: str) -> None:
    with open(os.path.join(directory, f"outcome_{rank}.txt"), "w") as file:
        file.write(text)


def main(scenario: str, directory: str) -> int:
    comm = MPI.COMM_WORLD
    if scenario in ("exact", "sparse", "frame"):
        sparse = dict(density=0.25, prune_start=2, prune_end=12, prune_every=3) if scenario == "sparse" else {}
        model = blekota.Model(hidden=16, layers=2, dtype="float64", seed=0, threads=1, frame=5) if scenario == "frame" else None
        run = trainer(directory, comm, model=model, **sparse)
        run.train(20)
        params = comm.gather(run.model.params, root=0)
        if comm.rank == 0:
            name = "params" if scenario == "exact" else scenario
            np.save(os.path.join(directory, f"{name}_{comm.size}.npy"), np.array(params))
        return 0
    if scenario == "clock":
        readings = iter(np.arange(0.0, 1e5, 0.1 if comm.rank == 0 else 0.37))
        agreement.time = SimpleNamespace(perf_counter=lambda: float(next(readings)))
        run = trainer(directory, comm, density=0.25, prune_every=3, val_every=0)
        run.train(10000, max_seconds=30.0)
        params = comm.gather(run.model.params, root=0)
        schedules = comm.gather([run.pruning.start, run.pruning.end, run.iteration], root=0)
        if comm.rank == 0:
            np.save(os.path.join(directory, "clock.npy"), np.array(params))
            np.save(os.path.join(directory, "clock_schedule.npy"), np.array(schedules))
        return 0
    if scenario == "bf16":
        if comm.rank == 1:
            for module in CPU_MODULES:
                module.cpu_level("avx2")
        run = trainer(directory, comm, model=blekota.Model(hidden=16, layers=2, seed=0, threads=1))
        run.train(2)
        with open(os.path.join(directory, f"bf16_{comm.rank}.txt"), "w") as file:
            file.write(str(run.bf16))
        return 0
    if scenario == "overlap":
        results = []
        for overlap, threaded in ((True, True), (True, False), (False, True)):
            group = parallel.processes(comm)
            group.overlap, group._progress.threaded = overlap, threaded
            run = trainer(directory, group, model=blekota.Model(hidden=16, layers=3, dtype="float64", seed=0))
            run.train(12)
            results.append(run.model.params)
        with open(os.path.join(directory, f"threads_{comm.rank}.txt"), "w") as file:
            file.write(str(run.model.threads))
        if comm.rank == 0:
            np.save(os.path.join(directory, "overlap.npy"), np.array(results))
        return 0
    if scenario == "ctrl-c-starting":
        from blekota.cli import main as command_line
        from blekota.cli import train as train_command

        parallel.STOP_TOGETHER_S = 2.0
        start_run = train_command.start_run

        def interrupted_start_run(*args):
            os.kill(os.getpid(), signal.SIGINT)
            return start_run(*args)

        if comm.rank == 0:
            train_command.start_run = interrupted_start_run
        sound = os.path.join(directory, "sine.wav")
        return command_line(["train", sound, "--hidden", "16", "--layers", "1", "--batch-size", "4",
                             "--out-dir", os.path.join(directory, "run")])
    if scenario == "ctrl-c-final-save":
        pids = comm.allgather(os.getpid())

        def interrupt_process_1(report):
            if report.kind == "done":  # while it writes the loss curve for TensorBoard, say
                time.sleep(0.5)
                os.kill(pids[1], signal.SIGINT)
                time.sleep(0.5)

        run = trainer(directory, comm, callback=interrupt_process_1 if comm.rank == 0 else None)
        result = run.train(4)
        outcome(directory, comm.rank, "interrupted" if result.interrupted else "finished")
        return 0
    parallel.PATIENCE_S = 3.0
    run = trainer(directory, comm, checkpoint_every=2)

    def out_of_memory():
        raise MemoryError("cannot allocate the window")

    def stop_answering():
        os.kill(os.getpid(), signal.SIGSTOP)

    if comm.rank == 1 and scenario == "fail-midway":
        fail_in_backward(run.model, 6, out_of_memory)
    elif comm.rank == 1:
        fail_in_update(run.model, 6, out_of_memory if scenario == "fail" else stop_answering)
    try:
        run.train(20)
    except (blekota.BlekotaError, MemoryError) as error:
        outcome(directory, comm.rank, f"{type(error).__name__}: {error}")
        if isinstance(error, parallel.ProcessLost):
            comm.Abort(3)
        return 2
    outcome(directory, comm.rank, "finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
