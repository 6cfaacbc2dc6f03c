"""The training state a model file carries beside the weights: written, checked and restored here.

info (JSON): iterations, epochs, training_files, history and val_history ([iteration, loss]
rows), best_val_loss, and the trainer block: the optimizer's name, clip and step count t, the
trainer's settings (seq_length, batch_size, lr, schedule state, name, checkpoint_every,
checkpoint_sound, keep, val_fraction, val_every, stop_after, stale_validations (validations since the best),
random_gain_db, input_noise, random_speed, ema and, once averaging,
ema_total; bf16, the choice of products: true, false or "auto", and products, what the last run's
steps used: "bfloat16" or "float32"), the data position with the signature of the data it
belongs to, and the random generator state; for block-sparse training (blekota.sparsity) sparsity: the target density, the
block shape and the pruning schedule's state; and the model's sampling choices (int8,
bf16_sampling) kept as they were, bf16_sampling on after a run with bf16 products unless set.
Training arrays: h (the carried hidden state), the optimizer's moments, each under OPTIM + its
slot name, the pruning masks under SPARSITY + "kept", and with weight averaging (blekota.averaging:
then the file's weights are the average) the weights as trained and the average's uncorrected
sum under AVERAGE + "trained" and "sum".

Trainer and the import of the original's pickles write it, every read of a model file checks
it, and Trainer.from_checkpoint restores it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .audio import WAV_MAX_FRAMES
from .augment import MAX_DB, MAX_SPEED_CHANGE, check_max_db, check_noise, check_speed
from .averaging import check_decay
from .checks import is_integer, is_number, is_plain_name
from .device import AUTO
from .errors import BlekotaError, ConfigError, ModelFileError
from .model import SAMPLING_CHOICES
from .schedule import make_schedule
from .sparsity import BLOCK_INPUTS, BLOCK_UNITS, PRUNE_EVERY, check_settings, kept_blocks

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .model import Model
    from .train import Trainer

OPTIM = "optim."  # the prefix of the optimizer's arrays among the training arrays
SPARSITY = "sparsity."  # ... and of the pruning's
AVERAGE = "ema."  # ... and of the weight averaging's
PRODUCTS = {True: "bfloat16", False: "float32"}  # the products' precision by Trainer.bf16
SETTINGS = ("seq_length", "batch_size", "optimizer", "lr", "name", "checkpoint_every", "checkpoint_sound",
            "keep", "val_fraction", "val_every", "stop_after", "input_noise", "random_speed")  # saved Trainer arguments that resuming passes on


def trainer_block(optimizer: str, clip: float, t: int, **settings) -> dict:
    """The trainer block of info: the optimizer's name, clip and step count, then the trainer's
    settings and state (those known)."""
    return {"optimizer": optimizer, "clip": clip, "t": t, **settings}


def training_arrays(h: np.ndarray | None, optimizer_state: dict, pruning: dict[str, np.ndarray] | None = None,
                    averaged: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The training arrays of a model file: the carried state h (None: none), the arrays of
    an optimizer's state_dict(), those of blekota.sparsity.Pruning.arrays() and the weight
    averaging's ("trained", "sum")."""
    arrays = {} if h is None else {"h": h}
    for key, value in optimizer_state.items():
        if isinstance(value, np.ndarray):
            arrays[OPTIM + key] = value
    arrays.update({SPARSITY + key: value for key, value in (pruning or {}).items()})
    arrays.update({AVERAGE + key: value for key, value in (averaged or {}).items()})
    return arrays


def data_signature(trainer: Trainer) -> dict:
    """What must match for a resumed run to continue at the saved data position."""
    return {
        "sha256": trainer.data_sha256, "seq_length": trainer.seq_length, "batch_size": trainer.batch_size,
        "val_fraction": trainer.val_fraction, "windows": "dealt anew every epoch",
        **({"random_speed": trainer.random_speed} if trainer.random_speed else {}),
    }


def info(trainer: Trainer) -> dict:
    """The info a Trainer saves with the model: its history, everything needed to resume, and
    the model's sampling choices (blekota.model.SAMPLING_CHOICES) as they are, bf16_sampling
    turned on by a run with bf16 products unless the model already says either way."""
    optimizer = trainer.optimizer
    sparsity = trainer.pruning.settings()
    choices = {key: trainer.model.info[key] for key in SAMPLING_CHOICES if key in trainer.model.info}
    if trainer.bf16:
        choices.setdefault("bf16_sampling", True)
    return {
        **choices,
        **({"sparsity": sparsity} if sparsity else {}),
        "iterations": trainer.iteration,
        "epochs": trainer.epoch,
        "training_files": trainer.files,
        "history": trainer.history,
        "val_history": trainer.val_history,
        "best_val_loss": trainer.best_val_loss,
        "trainer": trainer_block(
            optimizer.name, optimizer.clip, optimizer.t,
            seq_length=trainer.seq_length, batch_size=trainer.batch_size, lr=optimizer.lr,
            schedule=trainer.schedule.state_dict(), name=trainer.name,
            checkpoint_every=trainer.checkpoint_every, checkpoint_sound=trainer.checkpoint_sound,
            keep=trainer.keep, val_fraction=trainer.val_fraction, val_every=trainer.val_every,
            stop_after=trainer.stop_after, stale_validations=trainer.stale_validations,
            random_gain_db=trainer.random_gain_db, input_noise=trainer.input_noise,
            random_speed=trainer.random_speed, ema=trainer.ema,
            bf16=trainer.bf16_choice, products=PRODUCTS[trainer.bf16],
            **({"ema_total": trainer.averaging.average.total} if trainer.averaging and trainer.averaging.average.total
               else {}),
            position=trainer.position,
            data=data_signature(trainer), rng=trainer.rng.bit_generator.state,
        ),
    }


def _passes(check) -> Callable[[object], bool]:
    """A test of a value by a blekota.checks function: whether it accepts it."""

    def test(value) -> bool:
        try:
            check("value", value)
        except ConfigError:
            return False
        return True

    return test


def _is_count(value) -> bool:
    return is_integer(value) and value >= 0


def _is_pairs(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(row, list) and len(row) == 2 and all(is_number(v) for v in row) for row in value
    )


def _is_file_names(value) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) and "\0" not in name for name in value)


INFO_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {  # what each info field must be
    "iterations": (_is_count, "a count"),
    "epochs": (_is_count, "a count"),
    "training_files": (_is_file_names, "a list of file names"),
    "history": (_is_pairs, "a list of [iteration, loss] pairs"),
    "val_history": (_is_pairs, "a list of [iteration, loss] pairs"),
    "best_val_loss": (lambda value: value is None or is_number(value), "a number"),
    "trainer": (lambda value: isinstance(value, dict), "a mapping"),
    "sparsity": (lambda value: isinstance(value, dict), "a mapping"),
}
TRAINER_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {  # ... and each of its trainer block
    "optimizer": (lambda value: isinstance(value, str), "a name"),
    "clip": (_passes(checks.positive_float), "a positive number"),
    "t": (_is_count, "a count"),
    "position": (_is_count, "a count"),
    "lr": (_passes(checks.positive_float), "a positive number"),
    "seq_length": (_passes(checks.positive_int), "a positive integer"),
    "batch_size": (_passes(checks.positive_int), "a positive integer"),
    "checkpoint_every": (_is_count, "a count"),
    "checkpoint_sound": (lambda value: _is_count(value) and value <= WAV_MAX_FRAMES, "a count of samples a wav holds"),
    "keep": (_is_count, "a count"),
    "val_every": (_is_count, "a count"),
    "stop_after": (_is_count, "a count"),
    "stale_validations": (_is_count, "a count"),
    "val_fraction": (_passes(checks.fraction), "a number in [0, 1)"),
    "random_gain_db": (_passes(lambda name, value: check_max_db(value)), f"a number of decibels in [0, {MAX_DB:g}]"),
    "input_noise": (_passes(lambda name, value: check_noise(value)), "a number of levels in [0, 255]"),
    "random_speed": (_passes(lambda name, value: check_speed(value)), f"a number in [0, {MAX_SPEED_CHANGE:g}]"),
    "ema": (_passes(lambda name, value: check_decay(value)), "a decay in [0, 1)"),
    "ema_total": (lambda value: is_number(value) and 0 < value <= 1, "a number in (0, 1]"),
    "bf16": (lambda value: value in (True, False, AUTO) and not is_number(value), f"true, false or {AUTO!r}"),
    "products": (lambda value: value in PRODUCTS.values(), " or ".join(map(repr, PRODUCTS.values()))),
    "name": (checks.is_plain_name, "a plain file name (no folder)"),
    "schedule": (lambda value: isinstance(value, dict), "a mapping"),
    "data": (lambda value: isinstance(value, dict), "a mapping"),
    "rng": (lambda value: isinstance(value, dict), "a mapping"),
}


def problem(info: object) -> str | None:
    """What is wrong with the info fields blekota reads back (their types and ranges), or None."""
    if not isinstance(info, dict):
        return "info is not a mapping"
    for fields, where, block in ((INFO_FIELDS, "info", info), (TRAINER_FIELDS, "info.trainer", info.get("trainer", {}))):
        for key, (test, what) in fields.items():
            if key in block and not test(block[key]):
                return f"{where}.{key} is not {what}"
    return None


def check_architecture(path: str | os.PathLike, model: Model, wanted: dict) -> None:
    """Refuse to resume the model read from path with another architecture: wanted maps the
    names the caller gave (say "--hidden") of layers, hidden, fs and dtype to the values asked."""
    have = {"layers": model.layers, "hidden": model.hidden, "fs": model.fs, "dtype": model.dtype.name,
            "frame": model.frame, "preemphasis": model.preemphasis}
    for given, value in wanted.items():
        if value != have[given.lstrip("-").replace("-", "_")]:
            raise BlekotaError(
                f"{path}: a {model.layers}x{model.hidden} {model.dtype.name} model at {model.fs} Hz; "
                f"{given} {value} does not fit it (a model keeps its architecture when it goes on training)"
            )


def training_sounds(path: str | os.PathLike, info: dict) -> list[Path] | None:
    """The sounds the model file at path was trained on when they are not where its info says
    (paths relative to where training ran) but beside the model; None: as the info says."""
    files = info.get("training_files") or []
    if not files or all(Path(name).exists() for name in files):
        return None
    beside = [Path(path).parent / name for name in files]
    return beside if all(beside_path.exists() for beside_path in beside) else None


def resume_sounds(path: str | os.PathLike, info: dict, files: Iterable[str | os.PathLike] = (),
                  advice: str = "give the sounds") -> list | None:
    """The sounds to go on training on: files when given, else those the model file at path
    was trained on, found as training_sounds() finds them (None: as its info says). Raises
    BlekotaError, ending with advice, when they are in neither place."""
    audio = list(files) or training_sounds(path, info)
    if not audio:
        missing = [name for name in info.get("training_files") or [] if not Path(name).exists()]
        if missing:
            raise BlekotaError(
                f"{path}: was trained on {', '.join(missing)}, which is not here (nor beside the model); {advice}"
            )
    return audio


def recorded_sounds(path: str | os.PathLike, info: dict) -> list[str]:
    """The sounds the model file at path says it was trained on; ModelFileError when it says none."""
    files = list(info.get("training_files") or [])
    if not files:
        raise ModelFileError(f"{path}: does not say which sound it was trained on; give one")
    return files


def resume_options(path: str | os.PathLike, info: dict, overrides: dict) -> dict:
    """The Trainer arguments (all but model and audio) that go on with the training saved at
    path: the saved settings and schedule, files written beside it, overrides replacing them.
    A file that names no run (a legacy pickle converted before 2026-12-06, a Model.save) trains
    under its file's stem."""
    saved = info.get("trainer") or {}
    options = {key: saved[key] for key in SETTINGS if key in saved}
    if "name" not in options and is_plain_name(Path(path).stem):  # not Trainer's default, which such files would share
        options["name"] = Path(path).stem
    if saved:  # a file trained before random gain or weight averaging existed trained without them
        options["random_gain_db"] = saved.get("random_gain_db", 0.0)
        options["ema"] = saved.get("ema", 0.0)
    if "bf16" in saved:  # True goes on as AUTO: the run may go on on a CPU without bf16
        options["bf16"] = False if saved["bf16"] is False else AUTO
    options["directory"] = Path(path).parent
    sparsity = info.get("sparsity") or {}
    if sparsity:
        if sparsity.get("block", [BLOCK_UNITS, BLOCK_INPUTS]) != [BLOCK_UNITS, BLOCK_INPUTS]:
            raise ModelFileError(f"{path}: pruned in blocks of {sparsity['block']}; this version of blekota "
                                 f"prunes {BLOCK_UNITS}x{BLOCK_INPUTS} blocks")
        options.update(density=sparsity.get("density", 1.0), prune_start=sparsity.get("start"),
                       prune_end=sparsity.get("end"), prune_every=sparsity.get("every", PRUNE_EVERY))
        try:
            check_settings(options["density"], options["prune_start"], options["prune_end"], options["prune_every"])
        except ConfigError as error:
            raise ModelFileError(f"{path}: bad pruning settings ({error})") from None
        if overrides.get("density", options["density"]) != options["density"]:  # a new target: a new schedule
            options.update(prune_start=None, prune_end=None)
    if "schedule" in saved and "schedule" not in overrides:
        try:
            options["schedule"] = make_schedule(**saved["schedule"])
        except (ConfigError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: bad learning-rate schedule state ({error})") from None
    return {**options, **overrides}


def restore(trainer: Trainer, path: str | os.PathLike, info: dict, arrays: dict[str, np.ndarray]) -> None:
    """Give a Trainer built with resume_options() the saved state: the optimizer's (when it is
    the same optimizer), the data position and carried state (when the data and its layout are
    unchanged: then trainer.continues_data is True) and the random generator's. A file without
    training arrays (Model.save writes the weights and info alone) goes on with a fresh
    optimizer, its pruned blocks read from the weights."""
    saved = info.get("trainer") or {}
    optimizer = trainer.optimizer
    state = {"name": saved.get("optimizer"), "lr": optimizer.lr, "clip": saved.get("clip", optimizer.clip),
             "t": saved.get("t", 0)}
    state.update({key[len(OPTIM):]: value for key, value in arrays.items() if key.startswith(OPTIM)})
    weights_only = not arrays
    if weights_only and info.get("sparsity"):
        kept = kept_blocks(trainer.model).values()
        arrays = {SPARSITY + "kept": np.concatenate([blocks.ravel() for blocks in kept]).astype(np.uint8)}
    if saved.get("optimizer") == optimizer.name and not weights_only:
        try:
            optimizer.load_state_dict(state)
        except (KeyError, ConfigError) as error:
            raise ModelFileError(f"{path}: optimizer state does not fit the model ({error})") from None
    h = arrays.get("h")
    position = saved.get("position", 0)
    if (
        saved.get("data") == data_signature(trainer)
        and h is not None and h.shape == trainer.h.shape
        and isinstance(position, int) and 0 <= position <= trainer.layout.windows_per_stream
    ):
        trainer.h = np.ascontiguousarray(h, dtype=trainer.model.dtype)
        trainer.position = position
        trainer.continues_data = True
    sparsity = info.get("sparsity") or {}
    if sparsity:
        try:
            trainer.pruning.restore(sparsity, {key[len(SPARSITY):]: value for key, value in arrays.items()
                                               if key.startswith(SPARSITY)},
                                    renewed=trainer.pruning.density != sparsity.get("density", 1.0))
        except (ConfigError, ValueError) as error:
            raise ModelFileError(f"{path}: bad pruning state ({error})") from None
    _restore_average(trainer, path, saved, arrays)
    trainer.stale_validations = saved.get("stale_validations", 0)
    data = saved.get("data")
    if isinstance(data, dict) and (data.get("sha256"), data.get("val_fraction")) != (trainer.data_sha256,
                                                                                    trainer.val_fraction):
        trainer.forget_best()  # held out from other sound
    if "rng" in saved:
        try:
            trainer.rng.bit_generator.state = saved["rng"]
        except (TypeError, ValueError, KeyError, OverflowError):
            raise ModelFileError(f"{path}: corrupted (its random generator state)") from None


def _restore_average(trainer, path: str | os.PathLike, saved: dict, arrays: dict[str, np.ndarray]) -> None:
    """The weight averaging's state, when the file has one: its weights are then the average,
    and the weights as trained are among its arrays (blekota.averaging.TrainingAverage)."""
    trained, total_sum = arrays.get(AVERAGE + "trained"), arrays.get(AVERAGE + "sum")
    if trained is None and total_sum is None:
        return
    shape = trainer.model.params.shape
    if trained is None or total_sum is None or trained.shape != shape or total_sum.shape != shape \
            or "ema_total" not in saved:
        raise ModelFileError(f"{path}: corrupted (its weight averaging's state does not fit the model)")
    if trainer.averaging:
        trainer.averaging.restore(trained, total_sum, saved["ema_total"])
    else:  # without averaging now, training goes on from the trained weights alone
        trainer.model.params[:] = trained
