"""Block-sparse training: which weights are pruned, the gradual schedule, and keeping them zero.

Blocks are 8 consecutive output units of one gate x 4 consecutive input columns, aligned (units
8i..8i+7 of gate g, inputs 4j..4j+3); where the sizes are not multiples of 8 or 4 the last blocks
are partial. In the flat parameter vector (csrc/gates.pxi: WxT (X, 3H), UhT (H, 3H), gates r, z,
candidate side by side) a block is 4 consecutive rows x 8 consecutive columns of one gate's column
range. Pruned, per gate: UhT of every layer and WxT of every layer but the first (the layer below's
state). Never pruned: layer 0's WxT (a row lookup per level), the biases and the output layer. In
UhT the blocks holding a diagonal weight (unit i from its own previous state i) are always kept and
count toward the density, so a density below their share (8 / H of the blocks, 3.1 % for H = 256)
keeps just them.

In a run that stops by time (Trainer.train's max_seconds) without a schedule given, the planned
schedule also follows the clock: the pruning starts when a tenth of the time has passed (if the
iterations do not get there first), with its end where the speed so far reaches three quarters
of the time, and reaches the density at the latest when three quarters have passed. So the
saved model has its density however fast the machine is.

The schedule (LPCNet's gradual magnitude pruning): the density falls from `initial` (1 for a new
run) to the target D as D + (initial - D) r^3, r = 1 - (iteration - start) / (end - start) clamped
to [0, 1]. Masks are chosen every `every` iterations from `start` on (in a planned schedule at
most a tenth of the way from start to end, so that the density falls in ten steps or more, not
one), and at `end`, by block energy (the sum of squares of its weights; ties go to the block
that comes first); in between and after `end` they stay. The gradients of pruned weights are
zeroed before every optimizer step, the optimizer's moments of newly pruned weights at each mask
update (so Adam, RMSprop and Adagrad never move them), and the pruned weights set to 0.0 after
every step. Masks follow from the
weights alone, which every process of a data-parallel run holds alike, so all apply the same.

While the density falls, each mask update raises the loss for a while, so the Trainer's
validations from the schedule's start until it reaches the density neither feed the learning-rate
schedule (a plateau schedule would take the rises for a plateau and lower the rate) nor make a
best model (NAME_best.npz would be a denser model than the one asked for); when the density is
reached, the schedule forgets the losses seen before (Schedule.restart) and the best starts afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .errors import ConfigError
from .mulaw import LEVELS

if TYPE_CHECKING:
    from .model import Model
    from .optim import Optimizer

BLOCK_UNITS = 8  # output units of one gate per block
BLOCK_INPUTS = 4  # input columns per block
PRUNE_EVERY = 200  # iterations between mask updates (default)
START_SHARE, START_MAX = 0.1, 2000  # default start: after a tenth of the iterations asked, at most 2000
END_SHARE, END_MAX = 0.75, 20000  # default end: after three quarters of them, at most 20000 after the run's start
PLANNED_UPDATES = 10  # a planned schedule chooses the blocks at least this often on the way down


@dataclass(frozen=True)
class Matrix:
    """One pruned matrix of one gate: rows (inputs) x hidden columns at column offset
    gate * hidden of the (rows, 3 * hidden) matrix that starts at `offset` in the flat vector."""

    name: str  # "gru1.UhT.z": layer, matrix, gate
    offset: int
    rows: int
    gate: int
    recurrent: bool  # UhT: its diagonal blocks are kept

    def view(self, flat: np.ndarray, hidden: int, base: int = 0) -> np.ndarray:
        """The (rows, hidden) view of this gate's weights in flat (a part of the flat vector
        that starts at `base`)."""
        start = self.offset - base
        whole = flat[start : start + self.rows * 3 * hidden].reshape(self.rows, 3 * hidden)
        return whole[:, self.gate * hidden : (self.gate + 1) * hidden]


def pruned_matrices(layers: int, hidden: int) -> list[Matrix]:
    """Every matrix pruning applies to, per gate, in flat-vector order (see the module docstring)."""
    H, G = hidden, 3 * hidden
    matrices = []
    offset = LEVELS * G  # layer 0's WxT
    for layer in range(layers):
        if layer > 0:
            matrices += [Matrix(f"gru{layer}.WxT.{gate}", offset, H, index, False) for index, gate in enumerate("rzc")]
            offset += H * G
        matrices += [Matrix(f"gru{layer}.UhT.{gate}", offset, H, index, True) for index, gate in enumerate("rzc")]
        offset += H * G + G  # UhT and the biases
    return matrices


def block_grid(rows: int, hidden: int) -> tuple[int, int]:
    """(row blocks, column blocks) of a rows x hidden matrix."""
    return -(-rows // BLOCK_INPUTS), -(-hidden // BLOCK_UNITS)


def diagonal_blocks(hidden: int) -> np.ndarray:
    """(row blocks, column blocks) bools: the blocks of a recurrent matrix holding a diagonal weight."""
    units = np.arange(hidden)
    diagonal = np.zeros(block_grid(hidden, hidden), bool)
    diagonal[units // BLOCK_INPUTS, units // BLOCK_UNITS] = True
    return diagonal


def block_energy(weights: np.ndarray) -> np.ndarray:
    """(row blocks, column blocks) float64: the sum of squares of each block of a (rows, hidden) matrix."""
    rows, hidden = weights.shape
    row_blocks, column_blocks = block_grid(rows, hidden)
    padded = np.zeros((row_blocks * BLOCK_INPUTS, column_blocks * BLOCK_UNITS))
    padded[:rows, :hidden] = np.square(weights, dtype=np.float64)
    return padded.reshape(row_blocks, BLOCK_INPUTS, column_blocks, BLOCK_UNITS).sum(axis=(1, 3))


def choose_blocks(energy: np.ndarray, density: float, keep: np.ndarray | None = None) -> np.ndarray:
    """Bools like energy: the blocks `keep` (always kept) plus the most energetic others, so that
    round(density * blocks) are kept in all (at least one; at least those of keep)."""
    keep = np.zeros(energy.shape, bool) if keep is None else keep
    wanted = max(1, int(density * energy.size + 0.5), int(keep.sum()))
    chosen = keep.ravel().copy()
    others = np.flatnonzero(~chosen)
    order = others[np.argsort(-energy.ravel()[others], kind="stable")]
    chosen[order[: wanted - int(keep.sum())]] = True
    return chosen.reshape(energy.shape)


def expand(blocks: np.ndarray, rows: int, hidden: int) -> np.ndarray:
    """A (rows, hidden) bool mask of the weights from a (row blocks, column blocks) one."""
    return np.repeat(np.repeat(blocks, BLOCK_INPUTS, axis=0), BLOCK_UNITS, axis=1)[:rows, :hidden]


def scheduled_density(iteration: int, density: float, start: int, end: int, initial: float = 1.0) -> float:
    """The density the schedule asks for at `iteration`: initial before start, density from end
    on, density + (initial - density) r^3 between (r = 1 - (iteration - start) / (end - start))."""
    r = 0.0 if end <= start else min(1.0, max(0.0, 1.0 - (iteration - start) / (end - start)))
    return density + (initial - density) * r**3


def kept_blocks(model: Model) -> dict[str, np.ndarray]:
    """Per pruned matrix (pruned_matrices' names), the (row blocks, column blocks) bools of its
    blocks that hold a non-zero weight: what a sparse kernel has to multiply."""
    return {
        matrix.name: block_energy(matrix.view(model.params, model.hidden)) > 0
        for matrix in pruned_matrices(model.layers, model.hidden)
    }


def block_density(model: Model) -> float:
    """The share of the pruned matrices' blocks (all of them together) that hold a non-zero
    weight, measured from the weights: about the target density for a model trained with one,
    1.0 for a dense model."""
    kept = kept_blocks(model)
    return sum(int(blocks.sum()) for blocks in kept.values()) / sum(blocks.size for blocks in kept.values())


def prune(model: Model, density: float) -> None:
    """Prune a model (a blekota Model) to `density` at once, in place: each pruned matrix keeps
    its most energetic blocks (and its diagonal ones), the rest become 0.0. What training with
    density reaches gradually; at once, the loss rises (train on to recover it)."""
    from .model import Model  # at call time: the model module imports the sampler, which imports this one

    if not isinstance(model, Model):
        raise ConfigError(f"model must be a blekota Model, got {type(model).__name__}")
    pruning = Pruning(model.layers, model.hidden, density)
    if pruning.active:
        pruning.start = pruning.end = 0
        pruning.update(model.params, 0)
        np.copyto(model.params[pruning._span], 0, where=pruning._pruned)


def describe(info: dict) -> str | None:
    """'density 0.10 (8x4 blocks)' for a model file's info that records a target density; None
    for a dense model."""
    sparsity = info.get("sparsity")
    if not isinstance(sparsity, dict) or "density" not in sparsity:
        return None
    units, inputs = sparsity.get("block", (BLOCK_UNITS, BLOCK_INPUTS))
    return f"density {sparsity['density']:.2f} ({units}x{inputs} blocks)"


def reached_at(info: dict) -> int | None:
    """The iteration whose step chose a model file's final masks (the first at or after its
    schedule's end): from there on it has its target density. None for a dense model or one
    still pruning."""
    sparsity = info.get("sparsity")
    if not isinstance(sparsity, dict):
        return None
    end, updated = sparsity.get("end"), sparsity.get("updated")
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (end, updated)):
        return None
    return updated if updated >= end else None


def _iteration_or_none(name: str, value) -> int | None:
    return None if value is None else checks.non_negative_int(name, value, "None or an integer >= 0")


def check_settings(density: object, start: object, end: object,
                   every: object) -> tuple[float, int | None, int | None, int]:
    """(density, start, end, every) checked: a density in (0, 1], start and end None or
    iterations with end not before start, every a positive integer. Raises ConfigError."""
    density = checks.density("density", density)
    start, end = _iteration_or_none("prune_start", start), _iteration_or_none("prune_end", end)
    if start is not None and end is not None and end < start:
        raise ConfigError(f"prune_end {end} (train --prune-end) must not come before prune_start {start} (--prune-start)")
    return density, start, end, checks.positive_int("prune_every", every)


class Pruning:
    """The pruning of one model's training (see the module docstring).

    density: target share of each pruned matrix's blocks kept (1: dense, nothing is done).
    start, end: the iterations the density starts falling and reaches its target (None: planned
    by plan() when training starts); every: iterations between mask updates.
    """

    def __init__(self, layers: int, hidden: int, density: float = 1.0, start: int | None = None,
                 end: int | None = None, every: int = PRUNE_EVERY):
        self.density, self.start, self.end, self.every = check_settings(density, start, end, every)
        self.given = start is not None or end is not None  # a schedule given: the clock never moves it
        self.clock: tuple[int, float] | None = None  # (first iteration, seconds) of a run that stops by time
        self.hidden = hidden
        self.initial = 1.0  # the density the schedule falls from
        self.updated: int | None = None  # the iteration of the last mask update (None: none yet)
        self.matrices = pruned_matrices(layers, hidden)
        self._diagonal = diagonal_blocks(hidden)
        self.kept: list[np.ndarray] | None = None  # per matrix, its kept blocks (None: all)
        # the part of the flat vector from the first pruned matrix to the end of the last
        self._span = slice(self.matrices[0].offset, self.matrices[-1].offset + hidden * 3 * hidden)
        self._pruned: np.ndarray | None = None  # bools over the span: the weights pruned

    @property
    def active(self) -> bool:
        """Whether training is block-sparse: a density below 1 asked, or blocks already pruned."""
        return self.density < 1 or self.kept is not None

    def settings(self) -> dict:
        """What a model file records (JSON): target density, block shape (units, inputs) and the
        schedule with its state; {} when dense."""
        if not self.active:
            return {}
        return {"density": self.density, "block": [BLOCK_UNITS, BLOCK_INPUTS], "start": self.start,
                "end": self.end, "every": self.every, "initial": self.initial, "updated": self.updated}

    def plan(self, iteration: int, iterations: int, seconds: float | None = None) -> None:
        """Fix start and end where not given, for a run of `iterations` from `iteration`: start a
        tenth of the way (at most 2000 iterations in), end three quarters of the way (at most 20000
        in), so the last quarter trains at the final density. The density falls from the current
        one. With seconds (the run also stops by time) and no schedule given, follow_clock may
        bring the schedule forward."""
        if not self.active:
            return
        if not self.given:
            self.clock = None if seconds is None else (iteration, float(seconds))
        if self.start is not None and self.end is not None:
            return
        if self.start is None:
            self.start = iteration + min(int(iterations * START_SHARE), START_MAX)
        if self.end is None:
            self.end = max(self.start, iteration + max(1, min(int(iterations * END_SHARE), END_MAX)))
        self.initial = self.kept_share()
        self._space_updates()

    def follow_clock(self, iteration: int, elapsed: float) -> str | None:
        """After the step that ends at `iteration`, `elapsed` seconds into a run planned with
        seconds: start the pruning once START_SHARE of the seconds have passed, its end where the
        speed so far reaches END_SHARE of them, and reach the density by the step after END_SHARE
        have passed. Returns what changed, in words (None: nothing)."""
        if self.clock is None or self.start is None or self.end is None:
            return None
        first, seconds = self.clock
        share = elapsed / seconds
        if self.updated is None and iteration < self.start and share >= START_SHARE:
            per_iteration = elapsed / max(1, iteration - first)
            self.start = iteration
            self.end = min(self.end, iteration + max(1, round((END_SHARE - START_SHARE) * seconds / per_iteration)))
            self._space_updates()
            return (f"pruning starts at iteration {self.start}, {START_SHARE:.0%} of the time in; density "
                    f"{self.density:g} by iteration {self.end} at this speed, blocks chosen every {self.every}")
        if iteration + 1 < self.end and share >= END_SHARE:
            self.end = iteration + 1
            self.clock = None
            return f"pruning reaches density {self.density:g} at iteration {self.end}, {END_SHARE:.0%} of the time in"
        if iteration >= self.end:
            self.clock = None
        return None

    def _space_updates(self) -> None:
        """In a planned schedule, choose the blocks at least PLANNED_UPDATES times from start to end."""
        self.every = min(self.every, max(1, (self.end - self.start) // PLANNED_UPDATES))

    def falling(self, iteration: int) -> bool:
        """Whether, after the step that ends at `iteration`, the density is still on its way down:
        from the schedule's start until the step that reaches the density."""
        return self.active and self.start is not None and self.end is not None and self.start <= iteration < self.end

    def reached(self, iteration: int) -> bool:
        """Whether the step that ends at `iteration` chose the final masks (the density reached)."""
        return self.updated == iteration and self.end is not None and iteration >= self.end

    def kept_share(self) -> float:
        """The share of blocks the current masks keep (1 before the first update)."""
        if self.kept is None:
            return 1.0
        return sum(int(blocks.sum()) for blocks in self.kept) / sum(blocks.size for blocks in self.kept)

    def due(self, iteration: int) -> bool:
        """Whether the masks are updated after the step that ends at `iteration`."""
        if not self.active or self.start is None or self.end is None or iteration < self.start:
            return False
        if self.updated is None or (iteration >= self.end and self.updated < self.end):
            return True
        return self.updated < self.end and iteration - self.updated >= self.every

    def before_update(self, grads: np.ndarray) -> None:
        """Zero the gradients of pruned weights (flat, in place). A schedule with no start or end
        (planned by Trainer.train) is a ConfigError: the training would never prune."""
        if self.density < 1 and (self.start is None or self.end is None):
            raise ConfigError(
                f"density {self.density:g}: the pruning has no schedule; call train(), or give prune_start and "
                "prune_end to step() the trainer yourself"
            )
        if self._pruned is not None:
            np.copyto(grads[self._span], 0, where=self._pruned)

    def after_update(self, params: np.ndarray, iteration: int, optimizer: Optimizer) -> None:
        """After the step that ends at `iteration`: update the masks when due (zeroing the
        optimizer's moments of the weights pruned), then zero the pruned weights."""
        if self.due(iteration):
            self.update(params, iteration)
            for slot in optimizer.slots:
                np.copyto(getattr(optimizer, slot)[self._span], 0, where=self._pruned)
        self.zero_pruned(params)

    def zero_pruned(self, params: np.ndarray) -> None:
        """Zero the weights the masks prune in params (n_params,) (nothing when dense)."""
        if self._pruned is not None:
            np.copyto(params[self._span], 0, where=self._pruned)

    def update(self, params: np.ndarray, iteration: int) -> None:
        """Choose every matrix's blocks by energy at the density scheduled for `iteration`."""
        target = scheduled_density(iteration, self.density, self.start, self.end, self.initial)
        self._set_kept([
            choose_blocks(block_energy(matrix.view(params, self.hidden)), target,
                          self._diagonal if matrix.recurrent else None)
            for matrix in self.matrices
        ])
        self.updated = iteration

    def _set_kept(self, kept: list[np.ndarray]) -> None:
        self.kept = kept
        pruned = np.zeros(self._span.stop - self._span.start, bool)
        for matrix, blocks in zip(self.matrices, kept):
            matrix.view(pruned, self.hidden, self._span.start)[...] = ~expand(blocks, matrix.rows, self.hidden)
        self._pruned = pruned  # the biases between the matrices stay False: no view reaches them

    def arrays(self) -> dict[str, np.ndarray]:
        """The training arrays a checkpoint holds: the kept blocks of every matrix, in order
        (uint8, 1 kept), once masks exist."""
        if self.kept is None:
            return {}
        return {"kept": np.concatenate([blocks.ravel() for blocks in self.kept]).astype(np.uint8)}

    def restore(self, saved: dict, arrays: dict[str, np.ndarray], renewed: bool = False) -> None:
        """Continue the schedule saved by settings() and arrays() (raises ValueError when they
        do not fit this model). renewed: this pruning has another density than the saved one, a
        new schedule that falls from the blocks kept now and has chosen none yet."""
        self.initial = checks.number("initial", saved.get("initial", 1.0), 0, 1, low_open=True)
        updated = saved.get("updated")
        self.updated = None if updated is None else checks.non_negative_int("updated", updated)
        kept = arrays.get("kept")
        if kept is None and self.updated is None:  # masks kept before a new schedule chose any are restored too
            return
        sizes = [block_grid(matrix.rows, self.hidden) for matrix in self.matrices]
        if kept is None or kept.shape != (sum(math.prod(size) for size in sizes),):
            raise ValueError("the kept blocks are missing or do not fit the model")
        pieces = np.split(kept.astype(bool), np.cumsum([math.prod(size) for size in sizes])[:-1])
        self._set_kept([piece.reshape(size) for piece, size in zip(pieces, sizes)])
        if renewed:
            self.initial, self.updated = self.kept_share(), None
