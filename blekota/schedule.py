"""Learning-rate schedules: they change the optimizer's lr, which is what every update uses.

A schedule sees two events: after_step (the iteration count just reached) and observe (a scheduled
validation loss, nats per sample). Each returns the lr to use from then on. restart() makes it
forget the losses observed so far (the Trainer calls it when block-sparse training reaches its
density: losses measured while the weights were being pruned say nothing about a plateau).
Schedules keep only small JSON-serializable state, so a resumed run makes exactly the decisions
the first would have.
"""

from __future__ import annotations

from . import checks
from .errors import ConfigError

MIN_LR = 1e-5  # the step and plateau schedules' lowest learning rate by default


def _factor(value) -> float:
    return checks.number("lr factor", value, 0, 1, low_open=True, high_open=True)


class Schedule:
    """The constant schedule (the base class): the lr never changes."""

    name = "constant"

    def after_step(self, iteration: int, lr: float) -> float:
        """The lr after the update that made `iteration` iterations."""
        return lr

    def observe(self, val_loss: float, lr: float) -> float:
        """The lr after a scheduled validation gave val_loss (nats per sample)."""
        return lr

    def restart(self) -> None:
        """Forget the validation losses observed so far (the lr stays as it is)."""

    def state_dict(self) -> dict:
        """Name, options and state as plain JSON values; make_schedule(**state) rebuilds it."""
        return {"name": self.name}


Constant = Schedule


def _lower(lr: float, factor: float, min_lr: float) -> float:
    """lr times factor, but not below min_lr (nor above lr, when lr was already below it)."""
    return max(lr * factor, min(lr, min_lr))


class Step(Schedule):
    """Multiply the lr by `factor` every `every` iterations, but not below min_lr (so that the
    lr never underflows to 0 and a long run stays resumable)."""

    name = "step"

    def __init__(self, every: int = 1000, factor: float = 0.5, min_lr: float = MIN_LR):
        self.every = checks.positive_int("step schedule: every", every, "an integer >= 1")
        self.factor = _factor(factor)
        self.min_lr = checks.positive_float("min_lr", min_lr)

    def after_step(self, iteration: int, lr: float) -> float:
        return _lower(lr, self.factor, self.min_lr) if iteration % self.every == 0 else lr

    def state_dict(self) -> dict:
        return {"name": self.name, "every": self.every, "factor": self.factor, "min_lr": self.min_lr}


class Plateau(Schedule):
    """Reduce on plateau: when more than `patience` validations in a row have not improved on the
    best loss by more than `threshold` (relative), multiply the lr by `factor`, but not below min_lr.

    After a reduction the count starts again, so the next one needs patience + 1 more
    validations without improvement.
    """

    name = "plateau"

    def __init__(
        self,
        factor: float = 0.5,
        patience: int = 1,
        min_lr: float = MIN_LR,
        threshold: float = 1e-4,
        best: float | None = None,
        bad: int = 0,
    ):
        self.patience = checks.non_negative_int("patience", patience)
        self.threshold = checks.fraction("threshold", threshold)
        self.factor = _factor(factor)
        self.min_lr = checks.positive_float("min_lr", min_lr)
        self.best = None if best is None else checks.number("best", best)
        self.bad = checks.non_negative_int("bad", bad)

    def observe(self, val_loss: float, lr: float) -> float:
        if self.best is None or val_loss < self.best * (1.0 - self.threshold):
            self.best = float(val_loss)
            self.bad = 0
            return lr
        self.bad += 1
        if self.bad > self.patience:
            self.bad = 0
            return _lower(lr, self.factor, self.min_lr)
        return lr

    def restart(self) -> None:
        self.best, self.bad = None, 0

    def state_dict(self) -> dict:
        return {
            "name": self.name, "factor": self.factor, "patience": self.patience,
            "min_lr": self.min_lr, "threshold": self.threshold, "best": self.best, "bad": self.bad,
        }


SCHEDULES = {cls.name: cls for cls in (Schedule, Step, Plateau)}


def describe(state: dict) -> str:
    """A schedule's saved state (state_dict) in words, for info: "plateau (x0.5 when more than 1
    validation in a row does not improve, down to 1e-05)"; its name alone where its numbers are
    not numbers."""
    name = str(state.get("name"))
    try:
        factor, min_lr = format(state["factor"], "g"), format(state["min_lr"], "g")
    except (KeyError, TypeError, ValueError):
        return name
    if name == "step":
        return f"step (x{factor} every {state.get('every')} iterations, down to {min_lr})"
    if name == "plateau":
        patience = state.get("patience")
        validations = "validation in a row does" if patience == 1 else "validations in a row do"
        return f"plateau (x{factor} when more than {patience} {validations} not improve, down to {min_lr})"
    return name


def schedule_for(schedule: Schedule | str | None, validating: bool) -> Schedule:
    """The Trainer's schedule: a Schedule as given, a name made with its defaults, or None:
    plateau when validating, else constant."""
    if schedule is None:
        schedule = "plateau" if validating else "constant"
    if isinstance(schedule, str):
        return make_schedule(schedule)
    if not isinstance(schedule, Schedule):
        raise ConfigError(f"schedule must be a name or a Schedule, got {schedule!r}")
    return schedule


def make_schedule(name: str = "constant", **options: float | int | None) -> Schedule:
    """A schedule by name ("constant", "step" or "plateau") with its options (see each class)."""
    if name not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    try:
        return SCHEDULES[name](**options)
    except TypeError as error:
        raise ConfigError(f"{name} schedule: {error}") from None
