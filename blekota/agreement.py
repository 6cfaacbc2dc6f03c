"""What the processes of a training run agree on at every gradient sum: whether to stop, and rank
0's clock.

A data-parallel run (blekota.parallel) stops all its processes after the same update: when Ctrl+C
or SIGTERM reached any of them, when rank 0's callback raised KeyboardInterrupt, or when rank 0's
time is up. Each process adds its own answers to the Allreduce that sums the gradients
(tail/take), so every process reads the same ones after it, and decisions taken from the clock
(blekota.sparsity's, from `elapsed`) are the same in all of them. With one process the answers are
the local ones.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .interrupts import StopRequests

if TYPE_CHECKING:
    import numpy as np

TAIL = 3  # values a process adds to the gradient sum: interrupted, out of time, rank 0's seconds


class RunAgreement:
    """The stop requests and the clock of one Trainer: `with agreement:` catches Ctrl+C and
    SIGTERM while training (blekota.interrupts.StopRequests); start() begins each train() call."""

    def __init__(self, processes):
        self.processes = processes
        self.stop = StopRequests()
        self.max_seconds: float | None = None
        self.callback_stopped = False  # rank 0's callback raised KeyboardInterrupt in a data-parallel run
        self._start = time.perf_counter()
        self._agreed = (False, False, 0.0)

    def __enter__(self) -> RunAgreement:
        self.stop.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.__exit__(*exc)

    def start(self, max_seconds: float | None) -> None:
        """A train() call begins: its clock starts, and it stops after max_seconds (None: never)."""
        self._start = time.perf_counter()
        self.max_seconds = max_seconds
        self.callback_stopped = False
        self._agreed = (False, False, 0.0)

    def seconds(self) -> float:
        """Seconds since start() in this process."""
        return time.perf_counter() - self._start

    def tail(self) -> tuple[float, float, float]:
        """This process's answers, to be summed over the processes: asked to stop, out of time
        (rank 0 only), rank 0's seconds (0 in the others)."""
        root = self.processes.is_root
        out_of_time = root and self.max_seconds is not None and self.seconds() >= self.max_seconds
        return float(self.callback_stopped or self.stop.requested), float(out_of_time), self.seconds() if root else 0.0

    def take(self, summed: np.ndarray) -> None:
        """The tail's values summed over the processes (TAIL numbers)."""
        self._agreed = (bool(summed[0]), bool(summed[1]), float(summed[2]))

    def interrupted(self) -> bool:
        """Ctrl+C or SIGTERM while training; in a data-parallel run, in any process (or a
        KeyboardInterrupt from rank 0's callback) as of the last gradient sum."""
        return self._agreed[0] if self.processes.size > 1 else self.stop.requested

    def signalled(self) -> bool:
        """Ctrl+C or SIGTERM reached this process while it trained (not a stop its callback asked for)."""
        return self.stop.requested

    def out_of_time(self) -> bool:
        """max_seconds have passed; in a data-parallel run, in rank 0 as of the last gradient sum."""
        if self.max_seconds is None:
            return False
        return self._agreed[1] if self.processes.size > 1 else self.seconds() >= self.max_seconds

    def elapsed(self) -> float:
        """Seconds since start(); in a data-parallel run, rank 0's as of the last gradient sum."""
        return self._agreed[2] if self.processes.size > 1 else self.seconds()
