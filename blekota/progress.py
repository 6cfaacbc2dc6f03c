"""What training tells its caller: a Progress at every report (see Trainer's callback) and a
TrainResult when train() returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Progress:
    """One report from the trainer to its callback.

    kind: "step" (after every iteration, only with report_steps; loss is that window's),
    "progress" (every report_every iterations), "validation" (val_loss was just measured),
    "checkpoint" (path was written; also NAME_best.npz), "note" (message: the learning rate
    changed, or the pruning schedule moved with the clock), "warning" (message: a save or the
    log failed; training goes on), "done" or "interrupted" (train() is returning; path is the
    final model file).
    loss: mean nats per sample over the iterations before the latest progress report.
    val_loss, best_val_loss: the latest and the lowest validation loss, nats per sample.
    lr: the learning rate in use. samples_per_s: samples trained on per second of wall time since
    train() started, all processes' streams. elapsed_s: seconds since train() started.
    iterations_left: of the train() call.
    """

    kind: str
    iteration: int
    epoch: int
    loss: float | None
    samples_per_s: float
    elapsed_s: float
    iterations_left: int
    path: Path | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    lr: float = 0.0
    message: str = ""

    @property
    def val_bits(self) -> float | None:
        """The validation loss in bits per sample."""
        return None if self.val_loss is None else self.val_loss / math.log(2)


@dataclass
class TrainResult:
    """What train() did: iterations run, the last reported loss, the last validation loss, the
    final file, interruption (terminated: by SIGTERM or a hang-up, which asked this process to end)."""

    iterations: int
    loss: float | None
    path: Path | None
    interrupted: bool
    val_loss: float | None = None
    terminated: bool = False
