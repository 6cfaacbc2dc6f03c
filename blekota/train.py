"""Truncated backpropagation through time over sounds, with validation, a learning-rate
schedule, a log, checkpoints and exactly resumable state.

The training part of the sounds is laid into `batch_size` parallel streams of windows (see
blekota.dataset: no window spans two sounds; a stream's state is reset where it moves on to another
sound). Each iteration trains on the next window of `seq_length` steps of every stream, starting
from the hidden state the previous window ended with. When the streams are used up, an epoch ends:
the position and the hidden state go back to the start, and the windows are dealt from another one
on (blekota.dataset). Every `val_every` iterations and at the end, the loss on the held-out tails is
measured; the best model is kept as NAME_best.npz (in block-sparse training, the best at the density
asked: blekota.sparsity).

Given an MPI communicator, several processes train one model together, each on its share of the
streams (see blekota.parallel); the window dealing stays the same in every process. The model files
a Trainer writes, and going on from one, are blekota.trainfiles'.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import checks, frames, memory
from .agreement import TAIL, RunAgreement
from .audio import WAV_MAX_FRAMES
from .augment import check_max_db, check_noise, check_speed, input_noise, random_gain
from .averaging import TrainingAverage
from .dataset import Dataset, epoch_windows, training_layout, validation_pieces, validation_sums, warn_if_silent
from .device import AUTO, CPU, check_bf16, training_step
from .errors import BlekotaWarning, ConfigError, TrainingDiverged
from .fileutil import same_file
from .model import Model
from .optim import OPTIMIZERS, make_optimizer
from .parallel import Processes, processes
from .presets import DEFAULTS
from .progress import Progress, TrainResult
from .runfiles import RunFiles, run_lock, split_name, warn_of_later_files
from .schedule import Schedule, schedule_for
from .sparsity import PRUNE_EVERY, Pruning
from .trainfiles import TrainerFiles

if TYPE_CHECKING:
    from mpi4py import MPI

    from .dataset import Sounds

REPORT_EVERY = 50
VAL_EVERY = 200
VAL_FRACTION = 0.05
VAL_MIN_WINDOWS = 10


class Trainer(TrainerFiles):
    """Trains a Model on sounds with truncated BPTT.

    model: the Model to train (updated in place). audio: a sound file, a list of files, a directory
    (its sound files, sorted), a glob string, or a float array at model.fs. seq_length: steps per
    window (T). batch_size: parallel streams (B). optimizer: "adam", "rmsprop" (the original's) or
    "adagrad"; lr: its (initial) learning rate. schedule: "constant", "step", "plateau", a
    blekota.schedule.Schedule, or None: plateau when there is validation, else constant.
    random_gain_db: train each stream's window at its own random gain, uniform within
    +-random_gain_db decibels (blekota.augment; 0: as recorded), so that a short recording is not
    learned by heart. input_noise: inputs moved by a rounded normal draw of this many levels, the
    clean levels predicted (blekota.augment.input_noise; 0: off), so generation recovers from its
    own draws. random_speed: each epoch plays the training sounds at its own speed, within 1 / (1 +
    random_speed) .. 1 + random_speed (blekota.augment; 0: as recorded; for speech). ema: the model
    files, validation and checkpoint sounds use the weights' exponential moving average with this
    decay over iterations (blekota.averaging; 0: the weights as last updated); model.params holds
    that average whenever training is not in a step (after train(), use_average()). The defaults are
    blekota.presets.PRESETS["default"], which holds other sets (the original's RMSprop) to pass as
    **PRESETS[name]. val_fraction: the tail of every sound held out for validation (0: none);
    val_every: validate every that many iterations (0: only at the end). stop_after: end train()
    early, saving as at its end, when that many validations in a row (the ones every val_every) have
    not bettered the lowest held-out loss (0: never); the best model is then NAME_best.npz. density: train block-sparse,
    keeping this share of the recurrent matrices' blocks (1: dense); prune_start, prune_end: the
    iterations it falls between (None: from a tenth to three quarters of the first train() call's
    iterations, or of its max_seconds if those pass first, see blekota.sparsity); prune_every:
    iterations between mask updates. Validations while the density falls neither feed the schedule
    nor make a best model.
    name: prefix of the files written; "foo/bar" writes foo/bar_N.npz in `directory` (the folder is
    created; an absolute folder or one with ".." is refused). Where an earlier run of that name left
    files from after the model's iteration (NAME_N.npz, NAME_N.wav, NAME_best.npz), training writes
    over them: the Trainer warns (blekota.OverwriteWarning); another name or directory keeps them.
    checkpoint_every: save NAME_N.npz every that many iterations (0: only the final save);
    checkpoint_sound: also generate that many samples and save NAME_N.wav (with the final save too
    when it falls on a checkpoint, or when checkpoint_every is 0); keep: keep only the newest `keep`
    NAME_N.npz up to the current iteration (0: all; NAME_best and sounds are kept).
    directory: where files go. log: append to NAME.log.jsonl there (see blekota.trainlog). callback:
    called with a Progress at reports, validations and files written (and after every iteration when
    report_steps); report_every: iterations between "progress" reports. seed: seeds the sounds
    generated at checkpoints.

    A failed checkpoint or best-model save (disk full, no permission) leaves the previous file
    intact, is reported as a "warning" and training goes on; only the final save raises.

    comm: an mpi4py communicator (such as MPI.COMM_WORLD) whose processes train the model together
    (see blekota.parallel). Every process builds its Trainer with the same arguments and then calls
    the same methods (train, step, validation_loss, save, checkpoint, set_audio) together. Rank 0's
    weights are broadcast to the others; rank 0 alone reads the sounds, writes files and calls the
    callback (where a KeyboardInterrupt stops training after the next update). Each process carries
    the hidden state of its own streams (self.streams) only.

    device: where each step's forward, backward and update run: "cpu" (the compiled core), or
    "cuda"/"cuda:N" through PyTorch (blekota.device; the rest stays on the CPU, files are alike);
    model.params follows the device's weights at validations, sounds, saves and use_average().
    bf16: "auto" (the default) trains a float32 model with the CPU core's products in bfloat16 and
    float32 sums wherever they beat float32 (in every process; AMD Zen 4, Intel AMX), else float32; True
    insists (ConfigError where they cannot run), False keeps float32 products (blekota.device.
    check_bf16; validation stays float32). self.bf16 says whether they run. Resuming keeps the
    choice, True as "auto" (a run may go on on another machine). A model trained with them is
    sampled with them too (model.bf16_sampling, set in what it saves: checkpoint.info).
    """

    def __init__(
        self,
        model: Model,
        audio: Sounds,
        seq_length: int = 100,
        batch_size: int = 80,
        optimizer: str = DEFAULTS["optimizer"],
        lr: float = DEFAULTS["lr"],
        name: str = "unnamed_model",
        checkpoint_every: int = 1000,
        checkpoint_sound: int = 0,
        directory: str | os.PathLike = ".",
        callback: Callable[[Progress], None] | None = None,
        report_every: int = REPORT_EVERY,
        seed: int | None = None,
        val_fraction: float = VAL_FRACTION,
        val_every: int = VAL_EVERY,
        stop_after: int = 0,
        schedule: str | Schedule | None = None,
        keep: int = 0,
        log: bool = True,
        report_steps: bool = False,
        comm: MPI.Comm | Processes | None = None,
        random_gain_db: float = DEFAULTS["random_gain_db"],
        input_noise: float = 0.0,
        random_speed: float = 0.0,
        ema: float = DEFAULTS["ema"],
        device: str = CPU,
        density: float = 1.0,
        prune_start: int | None = None,
        prune_end: int | None = None,
        prune_every: int = PRUNE_EVERY,
        bf16: bool | str = AUTO,
    ):
        if not isinstance(model, Model):
            raise ConfigError(f"model must be a blekota Model, got {type(model).__name__}")
        self.processes: Processes = processes(comm)
        self.model = model
        self.seq_length = checks.positive_int("seq_length", seq_length)
        self.batch_size = checks.positive_int("batch_size", batch_size)
        self.streams = self.processes.streams(self.batch_size)
        frames.check_training(model, self.seq_length, device)
        self.processes.fit_threads(model)
        self.input_noise, self.random_speed = check_noise(input_noise), check_speed(random_speed)
        self.checkpoint_every = checks.non_negative_int("checkpoint_every", checkpoint_every)
        self.val_every = checks.non_negative_int("val_every", val_every)
        self.stop_after = checks.non_negative_int("stop_after", stop_after)
        self.keep = checks.non_negative_int("keep", keep)
        folder, self.name = split_name(name)
        self.checkpoint_sound = checks.integer("checkpoint_sound", checkpoint_sound, 0, WAV_MAX_FRAMES)
        self.directory = Path(checks.file_name("directory", directory)) / folder
        self.callback = checks.optional_callable("callback", callback)
        self.report_every = checks.positive_int("report_every", report_every)
        self.log = checks.flag("log", log)
        self.report_steps = checks.flag("report_steps", report_steps)
        self.random_gain_db = check_max_db(random_gain_db)
        self.schedule = schedule_for(schedule, bool(val_fraction))
        self.averaging = TrainingAverage(model, ema) if ema else None
        self.optimizer = self.processes.together(lambda: self._allocate(optimizer, lr, device))
        can_bf16 = self.processes.together(lambda: check_bf16("bf16", bf16, device, model))
        self.bf16_choice = bf16 if bf16 == AUTO else bool(bf16)
        self.bf16 = self.processes.everywhere(can_bf16)
        self.pruning = Pruning(model.layers, model.hidden, density, prune_start, prune_end, prune_every)
        if self.pruning.active and device != CPU:
            raise ConfigError(f"density {density:g} trains on the CPU only: the pruning is not on {device}")
        # One Allreduce per iteration carries the gradients, the loss, the run's agreement (TAIL
        # values) and the failure flag of blekota.parallel: see _sum_over_processes.
        self._sums = np.empty(model.n_params + 2 + TAIL, model.dtype)
        self.grads = self._sums[: model.n_params]
        self.rng = np.random.default_rng(checks.seed(seed))
        self.iteration = int(model.info.get("iterations", 0))
        self.epoch = int(model.info.get("epochs", 0))
        self.history: list[list[float]] = [list(row) for row in model.info.get("history", [])]
        self.val_history: list[list[float]] = [list(row) for row in model.info.get("val_history", [])]
        self.best_val_loss: float | None = model.info.get("best_val_loss")
        self.stale_validations = 0  # validations in a row since the best (those every val_every)
        self.val_loss: float | None = self.val_history[-1][1] if self.val_history else None
        self.continues_data = False
        self._saved_iteration = -1
        self.last_saved: Path | None = None  # the last model file written, by rank 0
        self.resumed_from: Path | None = None  # the model file from_checkpoint read
        self._done = self._iterations = 0
        self._finishing = False  # train() made its last update: a stop asked now changes nothing
        self._last_loss: float | None = None
        self.agreement = RunAgreement(self.processes)  # when to stop, and the run's clock
        self.val_fraction = val_fraction
        self.processes.check_same("model or trainer settings", self._settings())
        self.processes.broadcast(model.params)
        self.device_step = training_step(device, model, self.optimizer, self.processes.size,
                                         self.averaging and self.averaging.average)
        self.set_audio(audio)
        if self.schedule.name == "plateau" and not self.val_samples:
            raise ConfigError("the plateau schedule needs validation: val_fraction (train --val-fraction) must be > 0")
        if self.stop_after and not (self.val_samples and self.val_every):
            raise ConfigError(f"stop_after {self.stop_after} (train --stop-after) counts validations: val_fraction "
                              "and val_every (--val-fraction, --val-every) must be > 0")
        if self.processes.is_root:
            warn_of_later_files(self.directory, self.name, self.iteration, f"a model at iteration {self.iteration}",
                                self.lineage(), self.files)
            floor = getattr(self.schedule, "min_lr", None)
            if not self.iteration and floor is not None and floor >= self.optimizer.lr:
                warnings.warn(f"the {self.schedule.name} schedule's min_lr {floor:g} (train --min-lr) is not below the "
                              f"learning rate {self.optimizer.lr:g}: it never lowers it", BlekotaWarning, stacklevel=2)

    def _allocate(self, optimizer: str, lr: float, device: str = CPU):
        """The optimizer, after checking that training fits in memory (this process's streams;
        on another device than the CPU, the windows are there: only the weight vectors here)."""
        streams = self.streams.stop - self.streams.start if device == CPU else 0
        slots = len(OPTIMIZERS[optimizer].slots) if optimizer in OPTIMIZERS else 2
        slots += 2 if self.averaging else 0  # the average and the trained weights beside it
        memory.ensure_training(self.model, self.seq_length, self.batch_size, streams, slots)
        return make_optimizer(optimizer, self.model.n_params, self.model.dtype, lr)

    def _settings(self) -> dict:
        """What every process of a data-parallel run must have been given alike."""
        return {
            "model": self.model.architecture, "iterations": self.iteration, "seq_length": self.seq_length,
            "batch_size": self.batch_size, "optimizer": self.optimizer.name, "lr": self.optimizer.lr,
            "schedule": self.schedule.state_dict(), "val_fraction": self.val_fraction,
            "val_every": self.val_every, "stop_after": self.stop_after, "checkpoint_every": self.checkpoint_every,
            "random_gain_db": self.random_gain_db, "input_noise": self.input_noise, "random_speed": self.random_speed,
            "ema": self.ema, "sparsity": self.pruning.settings(), "bf16": self.bf16,
        }

    def set_audio(self, audio: Sounds) -> None:
        """Train on these sounds (see the class docstring); restarts at their start, and where
        their held-out part differs from the sounds before, forgets the best (forget_best). In a
        data-parallel run rank 0 reads them and sends them to the others."""
        data = self.processes.from_root(lambda: Dataset.load(audio, self.model.fs, self.model.preemphasis))
        held_out = getattr(self, "data_sha256", None), self.val_fraction
        T, B = self.seq_length, self.batch_size
        layout, val_ranges = training_layout(data, self.val_fraction, T, B, self.model.fs, self.epoch,
                                             self.random_speed)
        self.data, self.files, self.train_ranges = data, data.files, layout.ranges
        self._start_epoch(self.epoch)
        self._val = validation_pieces(val_ranges, B, VAL_MIN_WINDOWS * T, T if self.model.frame else 1)
        self.val_samples = sum(stop - start - 1 for start, stop in val_ranges)
        self.data_sha256 = data.sha256()
        if held_out[0] is not None and held_out != (self.data_sha256, self.val_fraction):
            self.forget_best()
        if self.processes.is_root:
            warn_if_silent(data.levels, data.files)
        self.h = self.model.zero_state(B)

    def forget_best(self) -> None:
        """The losses before are not comparable with those to come (the held-out sound changed, or
        block-sparse training reached its density): the best so far, the validations since it
        (stop_after) and the plateau schedule start afresh."""
        self.best_val_loss = None
        self.stale_validations = 0
        self.schedule.restart()

    @property
    def ema(self) -> float:
        """The decay of the weights' moving average (0: none)."""
        return self.averaging.average.decay if self.averaging else 0.0

    def use_average(self) -> None:
        """Put in model.params the weights the model files hold: with ema, the average (once
        there was an update), else the weights as trained; fetched from the device first. The
        next step takes the trained weights back."""
        if self.device_step is not None:
            self.device_step.download()
        if self.averaging:
            self.averaging.hold_average(self.pruning.zero_pruned)

    def trained_weights(self) -> np.ndarray:
        """(n_params,) the weights as the last update left them (model.params may hold their
        average: use_average)."""
        return self.averaging.trained_weights() if self.averaging else self.model.params

    @property
    def samples_per_iteration(self) -> int:
        """Samples trained on per iteration, all processes' streams: seq_length * batch_size."""
        return self.seq_length * self.batch_size

    def _next_window(self) -> np.ndarray:
        """The (T+1, B) levels of the next window, each stream's at its random gain; zeroes the
        state of streams that start a new sound; starts a new epoch (at its speed) when the streams end."""
        if self.position >= self.layout.windows_per_stream:
            self._start_epoch(self.epoch + 1)
        self.h[:, self.layout.reset[:, self.position], :] = 0
        window = self.layout.window(self.epoch_levels, self.position)
        return random_gain(window, self.random_gain_db, self.iteration)

    def _start_epoch(self, epoch: int) -> None:
        """Go to epoch `epoch`'s first window, its levels at its speed (dataset.epoch_windows)."""
        self.epoch, self.position = epoch, 0
        self.epoch_levels, self.layout = epoch_windows(self.data.levels, self.train_ranges, self.seq_length,
                                                       self.batch_size, self.epoch, self.random_speed)

    def step(self) -> float:
        """One training iteration: forward and backward over this process's streams of the next
        window, the gradients summed over the processes, optimizer update, schedule. Returns the
        loss (of the whole batch). Raises TrainingDiverged when the loss or the updated weights
        are NaN or infinite (then the weights in memory are unusable; no file is written)."""
        if self.averaging:
            self.averaging.hold_trained()
        x = self._next_window()
        inputs, targets = input_noise(x, self.input_noise, self.iteration), x[1:] if self.input_noise else None
        if self.device_step is not None:  # forward, backward and update in one (blekota.torchstep)
            loss, h_last, finite = self.device_step.run(inputs, targets, self.h)
        else:
            loss, h_last = self._loss_and_grads(inputs, targets)
        if not math.isfinite(loss):
            raise TrainingDiverged.at(self.iteration + 1, "the loss", self.optimizer.lr, self.last_saved)
        if self.device_step is None:
            self.pruning.before_update(self.grads)
            finite = self.optimizer.step(self.model.params, self.grads, self.model.threads)
        if not finite:
            raise TrainingDiverged.at(self.iteration + 1, "the weights", self.optimizer.lr, self.last_saved)
        self.h[:, self.streams] = h_last
        self.position += 1
        self.iteration += 1
        self.pruning.after_update(self.model.params, self.iteration, self.optimizer)
        if self.pruning.reached(self.iteration):  # the losses so far were of denser models
            self.forget_best()
        if self.averaging and self.device_step is None:  # a device averages there
            self.averaging.update()
        self.optimizer.lr = self.schedule.after_step(self.iteration, self.optimizer.lr)
        return loss

    def _loss_and_grads(self, x: np.ndarray, targets: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Loss and gradients (into self.grads) of the whole batch of window x (T+1, B): this
        process runs its streams, then the processes sum what they found. Returns (loss, the
        last hidden state of this process's streams)."""
        part, loss, h_last = self.streams, math.nan, None
        share = (part.stop - part.start) / self.batch_size
        summing = self.processes.gradient_sum(self._sums, self.model.gradient_blocks(), share)
        with self.processes.holding_failure() as held:
            loss, h_last = self.model.window(x[:, part], self.h[:, part], self.grads,
                                             None if targets is None else targets[:, part], summing.ready,
                                             self.bf16)
        return self._sum_over_processes(loss, held.failure, summing, share), h_last

    def _sum_over_processes(self, loss: float, failure: BaseException | None, summing, share: float) -> float:
        """With several processes: sum gradients (summing, started during the backward pass: see
        blekota.parallel) and loss, each process's weighted by its share of the streams (so the
        sums are those of the whole batch); the sum also carries the run's agreement (when to
        stop, rank 0's clock: blekota.agreement) and shares a failure. Returns the loss of the
        whole batch."""
        if self.processes.size == 1:
            return loss
        n = self.grads.size
        self._sums[n] = loss * share
        self._sums[n + 1 : n + 1 + TAIL] = self.agreement.tail()
        summing.finish(failure)
        self.agreement.take(self._sums[n + 1 : n + 1 + TAIL])
        return float(self._sums[n])

    def validation_loss(self) -> float | None:
        """Mean nats per held-out sample (None when nothing is held out), by forward passes only.

        The held-out tails are cut into about batch_size pieces of at least 10 windows that run
        side by side from a zero state, carrying their state from window to window. In a
        data-parallel run the processes share out the pieces (every process must call this).
        """
        return self._held_out_loss(lambda: False)

    def _held_out_loss(self, abandon: Callable[[], bool]) -> float | None:
        """validation_loss(), or None as soon as abandon() says (asked before each window; in one
        process only: the others of a data-parallel run would wait for it)."""
        starts, L, rest = self._val
        mine = self.processes.part(starts.size)
        rank, size = self.processes.rank, self.processes.size
        my_rest = [
            (start, stop, piece - mine.start if piece >= 0 else -1)
            for index, (start, stop, piece) in enumerate(rest)
            if (mine.start <= piece < mine.stop) or (piece < 0 and index % size == rank)
        ]
        self.use_average()
        sums = np.zeros(3)  # nats, predictions, failed processes
        with self.processes.holding_failure() as held:
            found = validation_sums(self.model, self.data.levels, self.seq_length, starts[mine], L, my_rest, abandon)
            if found is None:
                return None
            sums[:2] = found
        self.processes.sum(sums, held.failure)
        total, count = sums[0], sums[1]
        return float(total / count) if count else None

    def train(self, iterations: int, max_seconds: float | None = None) -> TrainResult:
        """Run `iterations` iterations (or until max_seconds of wall time have passed), validate,
        then save NAME_N.npz (N = total iterations so far).

        Ctrl+C (SIGINT) or SIGTERM ends training after the current update, or the validation under
        way (in a run of one process), and still saves (without the final validation or a
        checkpoint sound); so does a KeyboardInterrupt raised by the callback (one
        raised after the last update, at the final validation or save, is ignored). A run
        that made no update leaves the file it was resumed from as it is (it holds this model).
        Returns a TrainResult. Raises ModelFileError if the final save fails (the previous file
        of that name is intact and the trainer can save elsewhere).

        In a data-parallel run every process calls train with the same arguments. A stop asked
        of any process, and rank 0's max_seconds, stop all of them after the same update. A
        failure in one process (bad input, out of memory) raises in all of them (blekota.parallel.
        ProcessError in the others); when the others stop answering, ProcessLost is raised.
        Refused (BlekotaError) while another process trains a run of this name in its directory
        (blekota.runfiles.run_lock, held by rank 0 until train returns).
        """
        iterations = checks.non_negative_int("iterations", iterations)
        if max_seconds is not None:
            max_seconds = checks.number("max_seconds", max_seconds, 0, low_open=True, expected="> 0")
        with ExitStack() as held:
            self.processes.together(lambda: self._lock_run(held))
            return self._train(iterations, max_seconds)

    def _lock_run(self, held: ExitStack) -> None:
        """Rank 0: hold the run's lock until held closes (its directory created first)."""
        if self.processes.is_root:
            self.directory.mkdir(parents=True, exist_ok=True)
            held.enter_context(run_lock(self.directory, self.name))

    def _train(self, iterations: int, max_seconds: float | None) -> TrainResult:
        """train() under the run's lock, its arguments checked."""
        files = self._run_files(iterations)
        self.pruning.plan(self.iteration, iterations, max_seconds)
        self.agreement.start(max_seconds)
        self._done, self._iterations, self._finishing = 0, iterations, False
        window_losses: list[float] = []
        interrupted = sound_due = False
        pending_loss = None
        with self.agreement:
            try:
                stale = False
                while self._done < iterations and not stale and not self.agreement.interrupted():
                    if self.agreement.out_of_time():
                        break
                    lr = self.optimizer.lr
                    loss = self.step()
                    window_losses.append(loss)
                    self._done += 1
                    moved = self.pruning.follow_clock(self.iteration, self.agreement.elapsed())
                    if moved:
                        self._report("note", message=moved)
                    if self.report_steps:
                        self._report("step", loss=loss)
                    if self.optimizer.lr != lr:
                        self._report("note", message=f"learning rate {lr:.3g} -> {self.optimizer.lr:.3g}")
                    train_loss = None
                    if self._done % self.report_every == 0 or self._done == iterations:
                        train_loss = pending_loss = self._record_loss(window_losses)  # logged below, or at the end
                        self._report("progress")
                    val_loss = None
                    if self.val_every and self.val_samples and self.iteration % self.val_every == 0:
                        val_loss = self._validate(files, scheduled=True)
                        if val_loss is None:  # cut short by Ctrl+C: the losses are logged at the end
                            break
                        stale = self._stale()
                    if self._done < iterations or val_loss is not None:  # else with the final validation
                        self._log(files, train_loss, val_loss)
                        pending_loss = None
                    due = self.checkpoint_every and self.iteration % self.checkpoint_every == 0
                    if due and self._done < iterations:  # the last is the final save, after the final validation
                        self._save_checkpoint(files)
                    at_end = due or not self.checkpoint_every  # checkpoints only at the end: the final save is one
                    sound_due = at_end and self._done == iterations and self.checkpoint_sound > 0
            except KeyboardInterrupt:
                interrupted = True
            self._finishing = True
            interrupted = interrupted or self.agreement.interrupted()
            if self._done and not interrupted and not self.checkpoint_every:  # stopped by max_seconds too
                sound_due = self.checkpoint_sound > 0
            train_loss = self._record_loss(window_losses) if window_losses else pending_loss
            val_loss = None
            validated = self.val_history and self.val_history[-1][0] == self.iteration
            if self.val_samples and not interrupted and not validated:
                val_loss = self._validate(files, scheduled=False)
            self._log(files, train_loss, val_loss)
            path = self.checkpoint_path()
            saved = (self.last_saved, self._saved_iteration) == (path, self.iteration) and path.exists()
            read = not self._done and self.resumed_from is not None and same_file(path, self.resumed_from)
            if not self.processes.from_root(lambda: (saved and val_loss is None) or read):  # else it holds this model
                self.processes.together(lambda: files is None or files.claim(path))
                path = self.processes.together(lambda: self.save(path))
                if files is not None:
                    if sound_due and not self.agreement.signalled():
                        files.save_sound_quietly(self.iteration, self._sound(self.checkpoint_sound), self.model.fs)
                    files.prune(self.iteration)
            self.use_average()
            self._report("interrupted" if interrupted else "done", path=path)
            # the others wait for rank 0's last files and report with Ctrl+C still deferred: gone on
            # ahead, a Ctrl+C would kill them in MPI_Finalize, and the launcher rank 0 with them
            self.processes.together(lambda: None)
        return TrainResult(self._done, self._last_loss, path, interrupted, self.val_loss, self.agreement.stop.terminated)

    def _record_loss(self, window_losses: list[float]) -> float:
        """Average the losses since the last report into the history; clears the list."""
        self._last_loss = float(np.mean(window_losses))
        self.history.append([self.iteration, self._last_loss])
        window_losses.clear()
        return self._last_loss

    def _validate(self, files: RunFiles | None, scheduled: bool) -> float | None:
        """Measure, record and report the validation loss; scheduled ones feed the schedule.
        A new best is saved as NAME_best.npz. While block-sparse training's density is still
        falling, neither (see blekota.sparsity). Ctrl+C or SIGTERM cuts it short in a run of one
        process: then nothing is recorded, and it returns None."""
        loss = self._held_out_loss(self.agreement.signalled if self.processes.size == 1 else lambda: False)
        if loss is None:
            self._report("note", message=f"validation at {self.iteration} left unfinished: stopping")
            return None
        self.val_loss = loss
        self.val_history.append([self.iteration, loss])
        lr = self.optimizer.lr
        counts = not self.pruning.falling(self.iteration)
        if scheduled and counts:
            self.optimizer.lr = self.schedule.observe(loss, lr)
        improved = counts and (self.best_val_loss is None or loss < self.best_val_loss)
        if improved:
            self.best_val_loss = loss
        if scheduled and counts:
            self.stale_validations = 0 if improved else self.stale_validations + 1
        self._report("validation")
        if self.optimizer.lr != lr:
            self._report("note", message=f"validation loss stopped improving: learning rate {lr:.3g} -> {self.optimizer.lr:.3g}")
        if improved:
            self._save_quietly(files, self.best_path())
        return loss

    def _stale(self) -> bool:
        """Whether stop_after validations in a row have not bettered the best (then reported)."""
        if not self.stop_after or self.stale_validations < self.stop_after:
            return False
        best_at = next((f" at iteration {iteration:.0f}" for iteration, loss in reversed(self.val_history)
                        if loss == self.best_val_loss), "")
        self._report("note", message=f"the held-out loss has not bettered its best, {self.best_val_loss:.4f}{best_at}, "
                                     f"in {self.stale_validations} validations: stopping")
        return True

    def _log(self, files: RunFiles | None, train_loss: float | None, val_loss: float | None) -> None:
        if files is not None:
            elapsed = self.agreement.seconds()
            files.append_log(self.iteration, elapsed, train_loss, val_loss, self.optimizer.lr)

    def _report(self, kind: str, loss: float | None = None, path: Path | None = None, message: str = "") -> None:
        if self.callback is None or not self.processes.is_root:
            return
        elapsed = self.agreement.seconds()
        rate = self._done * self.samples_per_iteration / elapsed if elapsed > 0 else 0.0
        progress = Progress(
            kind, self.iteration, self.epoch, self._last_loss if loss is None else loss, rate, elapsed,
            self._iterations - self._done, path, self.val_loss, self.best_val_loss, self.optimizer.lr, message,
        )
        try:
            self.callback(progress)
        except KeyboardInterrupt:  # with others, they are already on their way to the next sum: stop there
            if self.processes.size == 1 and not self._finishing:
                raise
            self.agreement.callback_stopped = True

    def _run_files(self, iterations: int) -> RunFiles | None:
        """The files of a run of `iterations` with the current settings (its directory created;
        refused when a file blekota did not write is in its way); only rank 0 has them."""
        return self.processes.together(lambda: None if not self.processes.is_root else RunFiles.for_run(
            self.directory, self.name, self.keep, self.log, self._report, self.iteration, iterations,
            self.checkpoint_every, self.checkpoint_sound > 0, bool(self.val_samples), self.files))
