"""Data-parallel training over MPI (mpi4py): the processes that train one model together.

Every process holds the whole model and optimizer state. The B streams of each window are split
into contiguous ranges, one per process; each process runs the forward and backward pass over its
range, and in-place Allreduces on the flat gradient buffer, each process's part weighted by its
share of the streams, leave every process with the gradient of the whole batch, so that all apply
the same update. The gradient is summed block by block (a layer's weights) while the backward pass
goes on, as PyTorch's DistributedDataParallel does with its buckets: one nonblocking Allreduce per
block as soon as the pass has finished it (see BlockSum), all waited for before the update.
Rank 0 alone reads the input, writes files and reports: what it reads reaches the others by
broadcast. A failure in any process reaches all of them at the next collective call, so
that all stop together instead of waiting for each other forever.

mpi4py is imported only when a communicator is used: blekota runs without it.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .errors import BlekotaError, ConfigError, install_hint

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mpi4py import MPI

    from .model import Model

T = TypeVar("T")

CGROUP_ROOT = Path("/sys/fs/cgroup")  # where a container sees its own cgroup

# Failures a process reports to the others before all stop; anything else is a bug and crashes
# the process (and the MPI launcher then ends the job).
SHARED_FAILURES = (BlekotaError, OSError, MemoryError)
# How long a process waits at a gradient or validation sum before it decides that another process
# is gone: rank 0 waits for processes doing the same work as itself (at least PATIENCE_S, or three
# times its own share of the work since the previous sum); the others may also wait for rank 0's
# checkpoints and sounds.
PATIENCE_S = 30.0
OTHERS_PATIENCE_S = 600.0
# After an error, how long a process waits for all others to come to an error too (then none is
# left waiting in a collective call and all may simply exit).
STOP_TOGETHER_S = 10.0
# A process waiting for a sum polls without pausing for SPIN_S, as a blocking MPI call would (a
# sum usually completes within it), then pauses POLL_S between polls, leaving the cores free.
SPIN_S = 0.05
POLL_S = 0.001
# While the backward pass computes, a thread of each process tests the gradient blocks' pending
# Allreduces every PROGRESS_S: MPI libraries move a nonblocking call on only inside MPI calls (see
# Progress).
PROGRESS_S = 0.002
# Environment variables that MPI launchers (MPICH and Intel MPI mpiexec, Open MPI mpirun, Slurm srun
# with PMI or PMIx, MVAPICH) give the processes they start: how many they started (MPI_LOCALNRANKS:
# MPICH's on this machine; SLURM_STEP_NUM_TASKS: srun's, which a batch script alone does not have)
# and this process's number.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS",
                           "SLURM_STEP_NUM_TASKS")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")


class ProcessError(BlekotaError):
    """Another process of a data-parallel run failed; every process stops."""


class ProcessLost(ProcessError):
    """The other processes stopped answering (one has probably died). The job cannot go on: end it
    with Processes.abort (MPI_Abort)."""


class HeldFailure:
    """A failure caught in one process, to be shared with the others at the next collective call."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None


def describe(error: BaseException) -> str:
    """A failure as one line for the other processes."""
    if isinstance(error, BlekotaError):
        return str(error)
    if isinstance(error, MemoryError):
        return f"out of memory{f' ({error})' if str(error) else ''}"
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return f"{type(error).__name__}: {error}"


class GradientSum:
    """The sum over the processes of one iteration's gradient, started before the backward pass.

    ready: what to give Model.window as its ready (None: nothing to start early); finish(failure)
    completes the sum, sharing a failure like Processes.sum. This one is for a process alone:
    there is nothing to sum."""

    ready: Callable[[int, int], None] | None = None

    def finish(self, failure: BaseException | None = None) -> None:
        if failure is not None:
            raise failure


class Processes:
    """One process training alone: every collective call is trivial.

    rank: this process's number, 0..size-1; size: the processes training together. Rank 0 is the
    root: it reads the input, writes the files and reports.
    """

    rank = 0
    size = 1

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the process that reads sounds and writes files."""
        return self.rank == 0

    def part(self, n: int) -> slice:
        """This process's contiguous share of n items (streams, validation pieces); shares differ
        by at most one item and are in rank order."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def streams(self, batch_size: int) -> slice:
        """This process's streams of batch_size (part); ConfigError when some process would get none."""
        if batch_size < self.size:
            raise ConfigError(f"batch_size {batch_size} (train --batch-size) is smaller than the {self.size} processes: "
                              "each needs at least one stream")
        return self.part(batch_size)

    @contextmanager
    def holding_failure(self) -> Iterator[HeldFailure]:
        """A context for work whose failure must reach the other processes at the next sum: there
        the failure (one of SHARED_FAILURES) is held instead of raised. One process raises at once."""
        yield HeldFailure()

    def sum(self, buffer: np.ndarray, failure: BaseException | None = None) -> None:
        """Sum a float buffer over the processes, in place. Its last element is reserved: it
        counts the processes that failed; when any did, every process raises (see agree)."""
        if failure is not None:
            raise failure

    def gradient_sum(self, buffer: np.ndarray, blocks: list[tuple[int, int]], weight: float) -> GradientSum:
        """Start summing buffer over the processes (see MPIProcesses.gradient_sum)."""
        return GradientSum()

    def from_root(self, work: Callable[[], T]) -> T:
        """Run work() in rank 0 only and give every process its result. When it fails, every
        process raises (rank 0 its own error, the others a ProcessError)."""
        return work()

    def together(self, work: Callable[[], T]) -> T:
        """Run work() in every process; when it fails in any, every process raises."""
        return work()

    def everywhere(self, flag: bool) -> bool:
        """Whether flag is true in every process."""
        return bool(flag)

    def broadcast(self, array: np.ndarray) -> None:
        """Overwrite the array in every process with rank 0's (in place)."""

    def check_same(self, what: str, value: object) -> None:
        """Raise a ConfigError in every process unless all were given the same value."""

    def gather_streams(self, h: np.ndarray, streams: slice) -> np.ndarray | None:
        """The carried state of all streams (layers, B, H) in rank 0, from each process's own
        streams (None in the other processes)."""
        return h

    def default_threads(self) -> int | None:
        """Threads for this process's kernels by default (None: the Model's own default)."""
        return None

    def fit_threads(self, model: Model) -> None:
        """A model whose threads were left to the default runs on this process's share of the
        machine's cores (default_threads), not on all of them. Called alike in every process."""

    def stopped_together(self) -> bool:
        """After an error: whether every process came to an error too (so that none is left
        waiting for this one and all may exit), waiting at most STOP_TOGETHER_S for them."""
        return True

    def abort(self, status: int) -> None:
        """End every process of the job at once (MPI_Abort)."""
        raise SystemExit(status)


class MPIProcesses(Processes):
    """The processes of an MPI communicator (mpi4py), training one model together.

    overlap: sum the gradient block by block while the backward pass goes on (True), or in one
    Allreduce after it (False); it must be alike in every process."""

    def __init__(self, comm: MPI.Comm, overlap: bool = True) -> None:
        from mpi4py import MPI
        from mpi4py.util import pkl5

        self._MPI = MPI
        self.comm = comm
        self._objects = pkl5.Intracomm(comm)  # pickled objects of any size, arrays out of band
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._errors = comm.Dup()  # for stopped_together: never mixed up with a pending collective call
        self._since = time.perf_counter()  # the end of the last collective call
        self.overlap = overlap
        self._progress = Progress(MPI.Query_thread() >= MPI.THREAD_SERIALIZED)

    @contextmanager
    def holding_failure(self) -> Iterator[HeldFailure]:
        held = HeldFailure()
        try:
            yield held
        except SHARED_FAILURES as error:
            held.failure = error

    def sum(self, buffer: np.ndarray, failure: BaseException | None = None) -> None:
        buffer[-1] = failure is not None
        own_work = time.perf_counter() - self._since
        request = self.comm.Iallreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        self._wait([request], own_work)
        if buffer[-1] > 0:
            self.agree(failure)

    def gradient_sum(self, buffer: np.ndarray, blocks: list[tuple[int, int]], weight: float) -> GradientSum:
        """Start summing buffer over the processes, in place: buffer[:n] is the gradient (n: where
        the last of blocks ends), which every process weights by its `weight` (its share of the
        batch) before the sum; buffer[n:] is summed as it is when finish is called, its last
        element reserved as in sum(). blocks: [(start, stop), ...] covering buffer[:n], in the
        order Model.window finishes them (Model.gradient_blocks). With overlap, each block's
        Allreduce starts as soon as the backward pass hands it over (ready); finish starts those it
        did not hand over (after a failure), sums the tail and waits for all of them."""
        if self.overlap:
            return BlockSum(self, buffer, blocks, weight)
        return SumAfter(self, buffer, max(stop for _, stop in blocks), weight)

    def _wait(self, requests: list, own_work_s: float) -> None:
        """Wait for nonblocking collective calls, raising ProcessLost when they take too long.

        Polling (instead of a blocking call) lets this process take Ctrl+C and SIGTERM while it
        waits, and notice when a process that died leaves it waiting forever."""
        patience = max(PATIENCE_S if self.is_root else OTHERS_PATIENCE_S, 3 * own_work_s)
        start = time.perf_counter()
        while not self._MPI.Request.Testall(requests):
            waited = time.perf_counter() - start
            if waited > patience:
                where = "" if self.is_root else f"process {self.rank}: "
                raise ProcessLost(
                    f"{where}no word from the other processes for {waited:.0f} s (one has probably "
                    "died); ending the job"
                )
            if waited > SPIN_S:
                time.sleep(POLL_S)
        self._since = time.perf_counter()

    def agree(self, failure: BaseException | None) -> None:
        """Share each process's failure (or None) and, if any failed, raise in every process:
        a failed process its own error, the others a ProcessError naming the first that failed."""
        reports = self._objects.allgather(None if failure is None else describe(failure))
        self._since = time.perf_counter()
        failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
        if not failed:
            return
        if failure is not None:
            raise failure
        rank, report = failed[0]
        raise ProcessError(f"process {rank} of {self.size} failed: {report}")

    def from_root(self, work: Callable[[], T]) -> T:
        outcome = failure = None
        if self.is_root:
            try:
                outcome = work()
            except SHARED_FAILURES as error:
                failure = error
        report = None if failure is None else describe(failure)
        report, outcome = self._objects.bcast((report, outcome), root=0)
        self._since = time.perf_counter()
        if report is not None:
            if failure is not None:
                raise failure
            raise ProcessError(f"process 0 of {self.size} failed: {report}")
        return outcome

    def together(self, work: Callable[[], T]) -> T:
        with self.holding_failure() as held:
            result = work()
        self.agree(held.failure)
        return result

    def everywhere(self, flag: bool) -> bool:
        flags = self._objects.allgather(bool(flag))
        self._since = time.perf_counter()
        return all(flags)

    def broadcast(self, array: np.ndarray) -> None:
        self.comm.Bcast(array, root=0)
        self._since = time.perf_counter()

    def check_same(self, what: str, value: object) -> None:
        values = self._objects.allgather(value)
        self._since = time.perf_counter()
        for rank, other in enumerate(values):
            if other != values[0]:
                raise ConfigError(f"process {rank} was given another {what} than process 0: {other!r} instead of {values[0]!r}")

    def gather_streams(self, h: np.ndarray, streams: slice) -> np.ndarray | None:
        parts = self._objects.gather(np.ascontiguousarray(h[:, streams]), root=0)
        self._since = time.perf_counter()
        return np.concatenate(parts, axis=1) if self.is_root else None

    def fit_threads(self, model: Model) -> None:
        threads = self.default_threads()
        if model.threads_by_default:
            model.threads = threads

    def default_threads(self) -> int:
        """OMP_NUM_THREADS when set, else this process's CPUs divided among the processes on this
        machine that may use the same CPUs (all of them, unless the launcher bound each process to
        its own cores), so that N processes on a machine never run more threads than it has cores."""
        value = os.environ.get("OMP_NUM_THREADS", "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
        mine = usable_cpu_set()
        node = self.comm.Split_type(self._MPI.COMM_TYPE_SHARED)
        try:
            others = node.allgather(sorted(mine))
        finally:
            node.Free()
        self._since = time.perf_counter()
        sharing = sum(1 for cpus in others if mine & set(cpus))
        return max(1, usable_cpus() // max(sharing, 1))

    def stopped_together(self) -> bool:
        request = self._errors.Ibarrier()
        deadline = time.perf_counter() + STOP_TOGETHER_S
        while not request.Test():
            if time.perf_counter() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def abort(self, status: int) -> None:
        self.comm.Abort(status)


class Progress:
    """Keeps nonblocking collective calls moving while this process computes.

    MPI libraries without an asynchronous progress engine (MPICH's and Open MPI's defaults) move a
    nonblocking Allreduce on only inside MPI calls from its process, and the compiled kernels make
    none: a block handed over at the start of the backward pass would wait for its end. A thread
    that tests the pending calls every PROGRESS_S, sleeping in between, moves them on (the kernels
    run without the GIL). Every MPI call of it and of `start` runs under one lock, so MPI needs
    only MPI_THREAD_SERIALIZED; where the library gives less (threaded=False) the calls are tested
    only when a block is handed over."""

    def __init__(self, threaded: bool) -> None:
        self.threaded = threaded
        self._lock = threading.Condition()
        self._requests: list = []
        self._thread: threading.Thread | None = None

    def start(self, call: Callable[[], object]) -> object:
        """Make a nonblocking MPI call (call() returns its request) and keep it moving."""
        from mpi4py import MPI

        with self._lock:
            request = call()
            self._requests.append(request)
            if not self.threaded:
                MPI.Request.Testall(self._requests)
                return request
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="blekota-mpi-progress", daemon=True)
                self._thread.start()
            self._lock.notify()
        return request

    def release(self) -> None:
        """Stop testing the calls started so far: from now on the caller waits for them."""
        with self._lock:
            self._requests = []

    def _run(self) -> None:
        from mpi4py import MPI

        while True:
            with self._lock:
                while not self._requests:
                    self._lock.wait()
                if MPI.Request.Testall(self._requests):
                    self._requests = []
            time.sleep(PROGRESS_S)


class SumAfter(GradientSum):
    """The gradient summed in one Allreduce with the tail after the backward pass (no overlap)."""

    def __init__(self, processes: MPIProcesses, buffer: np.ndarray, n: int, weight: float) -> None:
        self._processes, self._buffer, self._n, self._weight = processes, buffer, n, weight

    def finish(self, failure: BaseException | None = None) -> None:
        self._buffer[: self._n] *= self._weight
        self._processes.sum(self._buffer, failure)


class BlockSum(GradientSum):
    """The gradient summed block by block while the backward pass goes on: one nonblocking
    Allreduce per block as soon as the pass hands it over (ready), moved on by a Progress thread;
    finish adds one for the tail and waits for all. Every process starts the same calls in the
    same order (those of blocks, then the tail), also one that failed before handing any over."""

    def __init__(self, processes: MPIProcesses, buffer: np.ndarray, blocks: list[tuple[int, int]], weight: float) -> None:
        self._processes, self._buffer, self._blocks, self._weight = processes, buffer, list(blocks), weight
        self._n = max(stop for _, stop in self._blocks)
        self._requests: list = []

    def ready(self, start: int, stop: int) -> None:
        """Weight block buffer[start:stop] and start its Allreduce (called by Model.window)."""
        expected = self._blocks[len(self._requests)] if len(self._requests) < len(self._blocks) else None
        if (start, stop) != expected:
            raise RuntimeError(f"gradient block {(start, stop)} handed over where {expected} was expected")
        self._start(self._buffer[start:stop], weighted=True)

    def _start(self, part: np.ndarray, weighted: bool) -> None:
        MPI = self._processes._MPI
        if weighted:
            part *= self._weight
        comm = self._processes.comm
        self._requests.append(self._processes._progress.start(lambda: comm.Iallreduce(MPI.IN_PLACE, part, op=MPI.SUM)))

    def finish(self, failure: BaseException | None = None) -> None:
        processes, buffer = self._processes, self._buffer
        own_work = time.perf_counter() - processes._since
        for start, stop in self._blocks[len(self._requests) :]:
            self._start(buffer[start:stop], weighted=True)
        buffer[-1] = failure is not None
        self._start(buffer[self._n :], weighted=False)
        processes._progress.release()
        processes._wait(self._requests, own_work)
        if buffer[-1] > 0:
            processes.agree(failure)


def usable_cpu_set() -> set[int]:
    """The CPUs this process may run on (their numbers)."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return set(range(os.cpu_count() or 1))


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs' worth of time a cgroup quota lets this process's group use (a container's
    --cpus, a Kubernetes CPU limit), or None where there is none: cgroup v2's cpu.max, else v1's
    cpu.cfs_quota_us over cpu.cfs_period_us."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = ((root / "cpu" / name).read_text().strip() for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
        except OSError:
            return None
    try:
        cpus = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None  # "max", or a quota of -1: no limit
    return cpus if cpus > 0 else None


def usable_cpus() -> int:
    """The number of CPUs this process may use: those it may run on, fewer where a cgroup quota
    allows less time than they give (a quota of 1.5 CPUs counts as 2)."""
    cpus = len(usable_cpu_set())
    quota = cpu_quota()
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


def processes(comm: MPI.Comm | Processes | None = None) -> Processes:
    """The processes of an mpi4py communicator (None, or one of size 1: this process alone)."""
    if comm is None:
        return Processes()
    if isinstance(comm, Processes):
        return comm
    if not hasattr(comm, "Get_size") or not hasattr(comm, "Iallreduce"):
        raise ConfigError(f"comm must be an mpi4py communicator (such as MPI.COMM_WORLD) or None, got {comm!r}")
    return MPIProcesses(comm) if comm.Get_size() > 1 else Processes()


def launcher_rank() -> int:
    """This process's rank as the MPI launcher's environment gives it (0 when not launched)."""
    for name in LAUNCHER_RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def launcher_size() -> tuple[int, str]:
    """(the number of processes the launcher's environment says it started, the variable that
    says so): (1, "") when not launched."""
    sizes = [(int(os.environ[name]), name) for name in LAUNCHER_SIZE_VARIABLES if os.environ.get(name, "").isdigit()]
    return max(sizes, default=(1, ""))


def from_launcher() -> Processes:
    """The processes this one was started with: MPI.COMM_WORLD when an MPI launcher (mpiexec,
    mpirun, srun) started several; else this process alone. Raises ConfigError when a launcher
    started several but mpi4py or its MPI library cannot be loaded, or MPI sees this process alone
    (then mpi4py loaded another MPI library than the launcher's, and each process would train
    its own copy over the same files)."""
    size, variable = launcher_size()
    if size == 1 and not any(name in os.environ for name in LAUNCHER_RANK_VARIABLES):
        return Processes()
    try:
        with warnings.catch_warnings(record=True) as caught:  # mpi4py's "suspicious MPI execution environment"
            warnings.simplefilter("always")
            from mpi4py import MPI

            world = MPI.COMM_WORLD.Get_size()
    except (ImportError, RuntimeError, OSError) as error:
        if size <= 1:
            return Processes()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"started as one of {size} MPI processes, but mpi4py cannot be used ({reason}); "
            f"install it with: {install_hint('mpi')}"
        ) from None
    if size > 1 and world == 1:
        raise ConfigError(
            f"started as one of {size} MPI processes ({variable}={size}), but MPI sees this process alone: "
            "mpi4py probably loaded another MPI library than the launcher's (python -m mpi4py "
            "--mpi-lib-version names it; start with that library's mpiexec, or see README.md, "
            '"Training on a cluster"); nothing was trained'
        )
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return processes(MPI.COMM_WORLD)
