"""The options several commands share, and what they mean for the library: argument types
built on blekota.checks, the model, training and sampling options, the help text about them,
and turning them into Model, Trainer and resume arguments; model and output files as arguments.
"""

from __future__ import annotations

import argparse
import secrets
import textwrap
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkpoint, checks, device, legacy, modelfile
from .. import schedule as blekota_schedule
from ..audio import WAV_MAX_FRAMES
from ..augment import MAX_DB, MAX_SPEED_CHANGE, check_max_db, check_noise, check_speed
from ..averaging import check_decay
from ..console import NORMAL, QUIET, VERBOSE
from ..dataset import TooShortForWindows
from ..errors import AudioError, BlekotaError, BlekotaWarning, ConfigError, one_line
from ..emphasis import MAX_PREEMPHASIS, check_preemphasis
from ..frames import MAX_FRAME
from ..drawing import MAX_WAKE, SMOOTH, WAKE
from ..model import Model
from ..modelchecks import MAX_THREADS
from ..optim import OPTIMIZERS
from ..parallel import launcher_rank, usable_cpus
from ..presets import PRESETS
from ..runfiles import split_name
from ..sparsity import PRUNE_EVERY
from ..train import VAL_EVERY, VAL_FRACTION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO, NoReturn


def preset_text(options: dict) -> str:
    """A preset in words: "adam lr 0.004, plateau schedule, random gain 4 dB, weights averaged
    (ema 0.99)"."""
    schedule = options["schedule"] or "plateau (constant without validation)"
    gain = f"random gain {options['random_gain_db']:g} dB" if options["random_gain_db"] else "no random gain"
    average = f"weights averaged (ema {options['ema']:g})" if options["ema"] else "weights as trained"
    return f"{options['optimizer']} lr {options['lr']:g}, {schedule} schedule, {gain}, {average}"


def presets_help() -> str:
    """The presets, one to a paragraph, as the train and repl help lists them."""
    return "\n".join(
        textwrap.fill(preset_text(options), 96, initial_indent=f"{'':19}{name + ':':10}", subsequent_indent=" " * 29)
        for name, options in PRESETS.items()
    )


HYPERPARAMETERS = """\
hyperparameters:
  --layers       GRU layers stacked on each other. More layers model longer-range structure;
                 3 works well, 1-2 train faster.
  --hidden       units per layer (the size of the state the network carries from sample to
                 sample). Bigger learns more and is slower: time grows with hidden^2.
  --frame        samples per frame of a frame tier: a GRU over whole frames whose state
                 conditions the first layer at every sample of the next frame (SampleRNN's
                 frame tier), for structure longer than a window. 0 (default): none.
                 --seq-length must be a multiple of it.
  --preemphasis  the model hears y[t] = x[t] - a*x[t-1] and what it draws is filtered back
                 (LPCNet does this with 0.85): the error of each drawn sample is then heard
                 as low rumble, not as hiss over the whole band. 0 (default): none.
  --seq-length   samples per training window: how far back gradients flow (truncated BPTT).
                 100 samples is 12.5 ms at 8 kHz; the state itself is carried further.
  --batch-size   parallel streams trained at once. More is smoother and uses the cores
                 better; memory grows with batch-size * seq-length * hidden.
  --preset       a tested set of optimizer, learning rate, schedule, random gain and weight
                 averaging (the default is the fastest to a low held-out loss on speech and
                 music, see benchmarks/README.md; original is how the original blekota
                 trained); --alpha, --optimizer, --schedule, --random-gain and --ema replace
                 its parts:
{presets}
  --alpha        learning rate (step size); the plateau schedule lowers it for you.
  --optimizer    adam, rmsprop (decay 0.9, as the original) or adagrad; gradients are
                 clipped to [-5, 5] element-wise.
  --fs           sample rate in Hz the model hears and speaks; training audio is resampled.

data and schedule:
  FILE           sound files, directories (their sound files, sorted) or quoted globs. Each
                 sound is mixed to mono, resampled to --fs and quantized; windows never span
                 two sounds. The last --val-fraction of every sound is held out for validation.
  --schedule     plateau (the default when validating: lr times --lr-factor when more than
                 --patience validations in a row did not improve, down to --min-lr), halving the
                 learning rate by hand, done for you; constant (the default without
                 validation); step (lr times --lr-factor every --lr-every iterations, down
                 to --min-lr).
  --density      train block-sparse: keep this share (0-1] of every recurrent matrix's blocks
                 of 8 units x 4 inputs (the diagonal kept), the rest exactly zero, for fast
                 sampling. The share falls gradually from 1 between --prune-start and
                 --prune-end (default: a tenth and 3/4 of --iterations), the weakest blocks
                 (by energy) pruned every --prune-every iterations; the rest of the run
                 trains at the final density. With --seconds, the same shares of the time
                 if they pass first, so the saved model has its density on any machine.
                 0.1 keeps a tenth.
  --random-gain  each stream's window is trained at its own random gain within +-DB
                 decibels, so a short recording is not learned by heart: the held-out loss
                 keeps falling for longer. 0 trains on the sound as recorded. Validation is
                 on the sound as recorded, so its loss often reads below the training loss.
  --random-speed each epoch plays the training sound at its own speed, pitch and tempo
                 together, between 1/(1+X) and 1+X times (0.06: 6 % either way): more
                 different sequences from a short recording. Measured on unseen speech:
                 0.13-0.14 nats lower held-out loss after 10 minutes, its made-up speech
                 no nearer the real one; on music it cost loss (benchmarks/README.md,
                 "Random speed"). 0 (the default) plays it as recorded.
  --ema          the model files (checkpoints, NAME_best, the final one), validation and the
                 checkpoint sounds use the weights averaged over about the last 1/(1-DECAY)
                 iterations (an exponential moving average), not the weights as last updated,
                 which jitter with every step: the average predicts unseen sound better and
                 its made-up sound is nearer the source (benchmarks/README.md, "Weight
                 averaging"). 0 saves the weights as trained. A checkpoint keeps both, so a
                 resumed run goes on exactly.
files written (in --out-dir; --model-name foo/bar writes them in its folder foo there): NAME_N.npz
checkpoints, NAME_best.npz (lowest validation loss), NAME.log.jsonl (one JSON line per report:
iteration, time, train_loss, val_loss, lr). A resumed model writes beside its file by default.
""".format(presets=presets_help())


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where the help is. In an MPI job,
    where every process parses the same command, only the first prints it, --help or --version."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"blekota: error: {one_line(message)} (see: {self.prog} --help)\n")

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        if launcher_rank() == 0:
            super()._print_message(message, file)


def argument_type(convert: Callable[[str], object], check: Callable[[str, object], object],
                  expected: str) -> Callable[[str], object]:
    """An argparse type: convert the text, then check(name, value) (as blekota.checks does) or
    fail with "expected ..., got ..."."""

    def parse(text: str):
        try:
            return check("argument", convert(text))
        except (ValueError, ConfigError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    parse.__name__ = expected
    return parse


positive_int = argument_type(int, checks.positive_int, "a positive integer")
non_negative_int = argument_type(int, checks.non_negative_int, "an integer >= 0")
fraction = argument_type(float, checks.fraction, "a number in [0, 1)")
positive_float = argument_type(float, checks.positive_float, "a positive number")
non_negative_float = argument_type(float, checks.non_negative_float, "a number >= 0")
share = argument_type(float, lambda name, value: checks.number(name, value, 0, 1, low_open=True), "a number in (0, 1]")
unit_interval = argument_type(float, lambda name, value: checks.number(name, value, 0, 1), "a number in [0, 1]")
wake_seconds = argument_type(float, lambda name, value: checks.number(name, value, 0, MAX_WAKE), f"a number of seconds in [0, {MAX_WAKE:g}]")
rate = argument_type(int, checks.sample_rate, f"a sample rate in 1..{checks.MAX_FS} Hz")
seed = argument_type(int, checks.non_negative_int, "an integer >= 0")
SEEDS = 10**9  # the seeds drawn where none is given: nine digits at most, to be read and typed again


def drawn_seed(given: int | None) -> int:
    """The seed given, or a new one from the system's randomness: said, it draws the sound again."""
    return secrets.randbelow(SEEDS) if given is None else given
factor = argument_type(float, lambda name, value: checks.number(name, value, 0, 1, low_open=True, high_open=True),
                       "a number in (0, 1)")
density = argument_type(float, checks.density, "a number in (0, 1]")
frame_length = argument_type(int, lambda name, value: checks.integer(name, value, 0, MAX_FRAME),
                             f"an integer in 0..{MAX_FRAME}")
preemphasis = argument_type(float, lambda name, value: check_preemphasis(value), f"a number in [0, {MAX_PREEMPHASIS:g}]")
decibels = argument_type(float, lambda name, value: check_max_db(value), f"a number of decibels in [0, {MAX_DB:g}]")
noise_levels = argument_type(float, lambda name, value: check_noise(value), "a number of levels in [0, 255]")
speed_change = argument_type(float, lambda name, value: check_speed(value), f"a number in [0, {MAX_SPEED_CHANGE:g}]")
ema_decay = argument_type(float, lambda name, value: check_decay(value), "a decay in [0, 1)")
device_name = argument_type(str, checks.device, checks.DEVICES)
thread_count = argument_type(int, lambda name, value: checks.integer(name, value, 1, MAX_THREADS),
                             f"an integer in 1..{MAX_THREADS}")


def _run_name(name: str, value: str) -> str:
    """value, when split_name takes it as a run name (else ConfigError)."""
    split_name(value)
    return value


def _given_name(name: str, value: str) -> str:
    """value, when it is not empty (an empty --hint or -o would otherwise mean none, or the default)."""
    if not value:
        raise ConfigError(f"{name}: empty")
    return value


file_name = argument_type(str, _given_name, "a file name")
folder_name = argument_type(str, _given_name, "a folder name")
model_name = argument_type(str, _run_name, f"a file name prefix of at most {checks.MAX_NAME_BYTES} bytes, "
                           "optionally after a relative folder without '..' (foo/bar)")


class Given(argparse.Action):
    """Store the value and remember that the option was given: given(args) holds its dest."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*given(namespace), self.dest}


def given(args: argparse.Namespace) -> set[str]:
    """The options (by dest) given on the command line with a Given action."""
    return getattr(args, "given", set())


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The hyperparameters of a new model and its training (shared by train and repl)."""
    group = parser.add_argument_group("model and training hyperparameters")
    group.add_argument("--layers", action=Given, type=positive_int, default=3, help="GRU layers (default 3)")
    group.add_argument("--hidden", action=Given, type=positive_int, default=256, help="units per layer (default 256)")
    group.add_argument(
        "--frame", action=Given, type=frame_length, default=0,
        help="samples per frame of a frame tier conditioning the first layer (default 0: none)",
    )
    group.add_argument(
        "--preemphasis", action=Given, type=preemphasis, default=0.0,
        help="the model hears x[t] - A*x[t-1], its draws are filtered back (default 0: none; LPCNet: 0.85)",
    )
    group.add_argument("--seq-length", action=Given, type=positive_int, default=100, help="samples per window (default 100)")
    group.add_argument("--batch-size", action=Given, type=positive_int, default=80, help="parallel streams (default 80)")
    group.add_argument(
        "--preset", action=Given, choices=tuple(PRESETS), default="default",
        help="optimizer, learning rate, schedule and random gain to start from: " + "; ".join(
            f"{name}: {preset_text(options)}" for name, options in PRESETS.items()
        ) + " (default: default)",
    )
    group.add_argument("--alpha", action=Given, type=positive_float, default=None, help="learning rate (default: the preset's)")
    group.add_argument(
        "--optimizer", action=Given, choices=tuple(OPTIMIZERS), default=None, help="update rule (default: the preset's)",
    )
    group.add_argument("--fs", action=Given, type=rate, default=8000, help="sample rate in Hz (default 8000)")
    group.add_argument(
        "--dtype", action=Given, choices=("float32", "float64"), default="float32",
        help="precision of weights and arithmetic (default float32)",
    )
    group.add_argument("--seed", type=seed, default=None, help="seed for the initial weights")


def add_training_arguments(parser: argparse.ArgumentParser, iterations: int, iterations_help: str) -> None:
    """How training runs and what it writes (shared by train and repl)."""
    parser.add_argument("--model-name", action=Given, type=model_name, default=None, help="prefix of the files written; foo/bar writes foo/bar_N.npz, creating the folder foo (default: the sound's name)")
    parser.add_argument("--iterations", type=non_negative_int, default=iterations, help=iterations_help)
    parser.add_argument("--checkpoint-every", action=Given, type=non_negative_int, default=1000, help="save NAME_N.npz every N iterations (0: only at the end; default 1000)")
    parser.add_argument("--checkpoint-sound", action=Given, type=non_negative_float, default=1.0, help="seconds of sound generated as NAME_N.wav at each checkpoint (0: none; default 1)")
    parser.add_argument("--out-dir", action=Given, type=folder_name, default=None, help="where models and sounds are written, created if missing (default: here; a resumed model's own folder)")
    parser.add_argument("--keep", action=Given, type=non_negative_int, default=0, help="keep only the newest K NAME_N.npz checkpoints (default 0: all; NAME_best is always kept)")
    parser.add_argument("--val-fraction", action=Given, type=fraction, default=VAL_FRACTION, help=f"tail of every sound held out for validation (0: none; default {VAL_FRACTION})")
    parser.add_argument("--val-every", action=Given, type=non_negative_int, default=VAL_EVERY, help=f"validate every N iterations and at the end (0: only at the end; default {VAL_EVERY})")
    parser.add_argument("--stop-after", action=Given, type=non_negative_int, default=0, metavar="N", help="stop early, saving as at the end, when N validations in a row have not bettered the lowest held-out loss (NAME_best.npz holds the model that had it; default 0: never)")
    parser.add_argument("--random-gain", action=Given, type=decibels, default=None, metavar="DB", help="train each stream's window at a random gain within +-DB decibels (0: as recorded; default: the preset's)")
    parser.add_argument("--random-speed", action=Given, type=speed_change, default=0.0, metavar="X", help="play each epoch's training sound at its own speed between 1/(1+X) and 1+X times, pitch and tempo together (0: as recorded, the default; 0.06 helps speech)")
    parser.add_argument("--ema", action=Given, type=ema_decay, default=None, metavar="DECAY", help="the model files hold the weights' moving average with this decay per iteration, over about 1/(1-DECAY) iterations (0: the weights as last updated; default: the preset's)")
    parser.add_argument("--input-noise", action=Given, type=noise_levels, default=0.0, metavar="LEVELS", help="read training inputs moved by this many mu-law levels (std) and learn to predict the clean next level, so generation recovers from its own draws (0: off, the default; the demo uses 1.5)")
    parser.add_argument("--density", action=Given, type=density, default=1.0, metavar="D", help="keep this share of the recurrent weights' 8x4 blocks, pruned gradually (default 1: dense)")
    parser.add_argument("--prune-start", action=Given, type=non_negative_int, default=None, metavar="N", help="--density: the iteration the pruning starts (default: a tenth of --iterations in, at most 2000)")
    parser.add_argument("--prune-end", action=Given, type=non_negative_int, default=None, metavar="N", help="--density: the iteration it reaches D (default: three quarters of --iterations in, at most 20000)")
    parser.add_argument("--prune-every", action=Given, type=positive_int, default=PRUNE_EVERY, metavar="N", help=f"--density: iterations between choices of the blocks kept (default {PRUNE_EVERY}; a planned schedule chooses at least ten times on the way down)")
    parser.add_argument("--schedule", action=Given, choices=("constant", "step", "plateau"), default=None, help="learning-rate schedule (default: the preset's; plateau when validating, else constant)")
    parser.add_argument("--lr-factor", action=Given, type=factor, default=0.5, help="step and plateau: multiply the lr by this (default 0.5)")
    parser.add_argument("--lr-every", action=Given, type=positive_int, default=1000, help="step: iterations between reductions (default 1000)")
    parser.add_argument("--patience", action=Given, type=non_negative_int, default=1, help="plateau: validations without improvement tolerated (default 1)")
    parser.add_argument("--min-lr", action=Given, type=positive_float, default=blekota_schedule.MIN_LR, help=f"step and plateau: lowest learning rate (default {blekota_schedule.MIN_LR:g})")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    shown.add_argument("-v", "--verbose", action="store_true", help="print every report as a line, with the learning rate")


def add_sampling_arguments(parser: argparse.ArgumentParser, when: str = "") -> None:
    """--temperature, --top-k, --top-p, --min-p, --smooth and --wake: how each level is drawn and written."""
    group = parser.add_argument_group(
        "how each level is drawn" + (f" ({when})" if when else ""),
        "The temperature reshapes the model's distribution, then top-k, top-p and min-p cut its "
        "unlikely tail (in that order) and the rest is renormalized. A cut tail keeps generation "
        "from wandering into hiss; cut too much and it repeats or falls silent. --smooth takes "
        "hiss out of what is written without changing what the model hears; --wake keeps it from "
        "staying silent for good.",
    )
    group.add_argument("--temperature", type=non_negative_float, default=1.0, help="higher: more varied, lower: safer; 0 always takes the likeliest level (default 1)")
    group.add_argument("--top-k", type=non_negative_int, default=0, metavar="K", help="draw only from the K likeliest levels; lower: safer, less varied (default 0: all 256)")
    group.add_argument("--top-p", type=share, default=1.0, metavar="P", help="draw only from the fewest likeliest levels whose probabilities sum to P; lower: safer, less varied (default 1: all)")
    group.add_argument("--min-p", type=unit_interval, default=0.0, metavar="M", help="drop levels less likely than M times the likeliest one; higher: safer, less varied (default 0: none)")
    group.add_argument("--smooth", type=unit_interval, default=SMOOTH, metavar="S", help=f"write each sample S of the way from the level drawn to the mean of the distribution it was drawn from; the model still hears the drawn level (0: the drawn levels; default {SMOOTH:g})")
    group.add_argument("--wake", type=wake_seconds, default=WAKE, metavar="SECONDS", help=f"after this long drawing silence, the model hears its silence as faint noise until it has drawn sound for as long again in a row; what is written stays silent (0: never; default {WAKE:g})")


def sampling_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of Model.sample that add_sampling_arguments parsed."""
    return dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                smooth=args.smooth, wake=args.wake)


def add_kernel_arguments(parser: argparse.ArgumentParser) -> None:
    """--int8 (one stream) and --bf16/--no-bf16 (any number of streams): how the model is sampled (blekota.sampler)."""
    kernel = parser.add_mutually_exclusive_group()
    kernel.add_argument("--int8", action="store_true", help="int8 weights (about 4x less memory than float32, faster on one thread; the probabilities move by about 1 %%); a model saved with int8 on uses them without this option")
    kernel.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bfloat16 products (half the bytes a step reads: one stream 1.4-3.7x as fast on one thread with AVX2 or AVX-512, many streams 1.6-1.9x with AVX512_BF16 on AMD, 1.0-1.5x on Intel; the probabilities move by about 0.3 %%); the default for a model trained with them or saved with them on; --no-bf16: float32 products")


def use_kernel_arguments(model: Model, args: argparse.Namespace) -> None:
    """Turn on what add_kernel_arguments parsed (for this run: the model file is not changed)."""
    if args.int8:
        model.int8 = True
    if args.bf16 is not None:
        model.bf16_sampling = args.bf16


def add_threads_argument(parser: argparse.ArgumentParser, default: str = "OMP_NUM_THREADS, else the CPUs this process may use, within a container's CPU quota") -> None:
    """--threads: CPU threads for the kernels."""
    parser.add_argument(
        "--threads", type=thread_count, default=None,
        help=f"CPU threads for the kernels (default: {default}); more than the CPUs this process may use is slower, "
             "and warned about",
    )


def warn_threads(args: argparse.Namespace) -> None:
    """Warn (once, from the first process of an MPI job) when --threads asks for more threads than
    the CPUs this process may use: they take turns on the cores, slower than one thread a core."""
    threads, cpus = getattr(args, "threads", None), usable_cpus()
    if threads is not None and threads > cpus and launcher_rank() == 0:
        warnings.warn(f"--threads {threads} is more than the {cpus} CPU{'s' if cpus > 1 else ''} this process may use: "
                      f"the threads take turns on them, slower than --threads {cpus}", BlekotaWarning)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device: where each training step runs, and --bf16: how on the CPU (blekota.device)."""
    parser.add_argument(
        "--device", type=device_name, default=device.CPU,
        help="where each step's forward, backward and update run: cpu (the compiled core, the default) or cuda, "
             "cuda:N (a GPU, through PyTorch: pip install torch); data, validation, files and sampling stay on the CPU",
    )
    parser.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="on the CPU, the matrix products' operands rounded to bfloat16 (float32 sums): the default for a float32 "
             "model where they beat float32: AMD Zen 4 and later (AVX512_BF16; 1.7x the iterations and a lower loss in "
             "the same time) and Intel Xeons with AMX tiles (2.2x on a Sapphire Rapids core), float32 elsewhere (python -m blekota --version says which); --bf16 "
             "insists (refused where it cannot run), --no-bf16 trains in float32 on any CPU; a resumed run keeps the "
             "choice",
    )


def bf16_option(args: argparse.Namespace) -> dict:
    """Trainer's bf16 argument when --bf16 or --no-bf16 was given, else nothing: the default, or on
    resuming the model file's choice."""
    return {} if args.bf16 is None else {"bf16": args.bf16}


SCHEDULE_OPTIONS = {  # option dest -> (the option, the schedules it applies to)
    "lr_factor": ("--lr-factor", ("step", "plateau")), "lr_every": ("--lr-every", ("step",)),
    "patience": ("--patience", ("plateau",)), "min_lr": ("--min-lr", ("step", "plateau")),
}


def schedule_option(args: argparse.Namespace, name: str | None = None) -> blekota_schedule.Schedule | str | None:
    """The schedule `name` (default --schedule) with its options, or None when there is none; an
    option given for another schedule is refused (it would do nothing)."""
    name = name or args.schedule
    for dest, (option, schedules) in SCHEDULE_OPTIONS.items():
        if dest in given(args) and name not in schedules:
            raise BlekotaError(f"{option} applies to --schedule {' or '.join(schedules)}, and this run's is {name}")
    if name == "step":
        return blekota_schedule.Step(every=args.lr_every, factor=args.lr_factor, min_lr=args.min_lr)
    if name == "plateau":
        return blekota_schedule.Plateau(factor=args.lr_factor, patience=args.patience, min_lr=args.min_lr)
    return name


PRUNING_OPTIONS = {"prune_start": "--prune-start", "prune_end": "--prune-end", "prune_every": "--prune-every"}


def check_pruning_options(args: argparse.Namespace, sparse: bool) -> None:
    """Refuse --prune-start, --prune-end and --prune-every for a run that is not block-sparse
    (they would do nothing)."""
    if unused := [option for dest, option in PRUNING_OPTIONS.items() if dest in given(args)]:
        if not sparse:
            raise BlekotaError(f"{', '.join(unused)}: {'apply' if len(unused) > 1 else 'applies'} to block-sparse "
                               "training, and this run is dense: give --density below 1 with them")


def check_val_every(args: argparse.Namespace, val_fraction: float) -> None:
    """Refuse --val-every for a run that does not validate (it would do nothing)."""
    if "val_every" in given(args) and not val_fraction:
        raise BlekotaError("--val-every: this run holds nothing out to validate on (--val-fraction 0); give "
                           "--val-fraction above 0 with it")


def update_rule(args: argparse.Namespace, val_fraction: float | None = None) -> dict:
    """optimizer, lr, schedule, random_gain_db and ema: the --preset's, each replaced by
    --optimizer, --alpha, --schedule, --random-gain or --ema when given (a preset's schedule None:
    plateau when validating, else constant; val_fraction: the run's, default --val-fraction)."""
    preset = PRESETS[args.preset]
    val_fraction = args.val_fraction if val_fraction is None else val_fraction
    schedule = args.schedule or preset["schedule"] or ("plateau" if val_fraction > 0 else "constant")
    gain = preset["random_gain_db"] if args.random_gain is None else args.random_gain
    return {"optimizer": args.optimizer or preset["optimizer"], "lr": args.alpha or preset["lr"],
            "schedule": schedule_option(args, schedule), "random_gain_db": gain,
            "ema": preset["ema"] if args.ema is None else args.ema}


def verbosity(args: argparse.Namespace) -> int:
    """QUIET, NORMAL or VERBOSE, from --quiet and --verbose."""
    return QUIET if args.quiet else VERBOSE if args.verbose else NORMAL


def model_path(path: str, say: Callable[[str], object]) -> Path:
    """The model file for a MODEL argument: the file itself, or for a pickle of the original
    blekota its conversion beside it (written once; say() tells where)."""
    if not legacy.is_pickle(path):
        return Path(path)
    converted, written = legacy.converted(path)
    if written:
        say(f"converted {path} (a model of the original blekota; nothing in it was run) to {converted}")
    return converted


def read_model(path: str, threads: int | None = None) -> modelfile.ModelFile:
    """A model file, or a pickle of the original blekota read in memory (nothing written)."""
    if legacy.is_pickle(path):
        return legacy.read_legacy(path, threads=threads)
    return modelfile.read(path, threads)


ARCHITECTURE = ("layers", "hidden", "fs", "dtype", "frame", "preemphasis")
RESUME_OPTIONS = {  # option dest -> Trainer argument, for options given on resuming
    "seq_length": "seq_length", "batch_size": "batch_size", "alpha": "lr", "optimizer": "optimizer",
    "checkpoint_every": "checkpoint_every", "keep": "keep", "val_fraction": "val_fraction",
    "val_every": "val_every", "stop_after": "stop_after", "out_dir": "directory", "model_name": "name", "random_gain": "random_gain_db",
    "input_noise": "input_noise", "random_speed": "random_speed", "ema": "ema", "density": "density", "prune_start": "prune_start", "prune_end": "prune_end",
    "prune_every": "prune_every",
}


def resume_overrides(args: argparse.Namespace, path: Path, model: Model) -> dict:
    """Trainer.from_checkpoint overrides from the options given for the model read from path;
    the architecture options, when given, must agree with it."""
    checkpoint.check_architecture(path, model, {f"--{option}": getattr(args, option) for option in ARCHITECTURE
                                               if option in given(args)})
    if args.seed is not None:
        raise BlekotaError(f"--seed {args.seed}: it seeds a new model's weights; a resumed model goes on with its own "
                           "weights and random state (leave --seed out)")
    overrides = {key: getattr(args, dest) for dest, key in RESUME_OPTIONS.items() if dest in given(args)}
    check_pruning_options(args, overrides.get("density", 1.0) < 1 or bool(model.info.get("sparsity")))
    saved = (model.info.get("trainer") or {}).get("val_fraction", VAL_FRACTION)
    val_fraction = args.val_fraction if "val_fraction" in given(args) else saved  # as the resumed run, unless given
    check_val_every(args, val_fraction)
    if "preset" in given(args):
        overrides = {**update_rule(args, val_fraction), **overrides}
    if "schedule" in given(args):
        overrides["schedule"] = schedule_option(args)
    elif unresumed := [SCHEDULE_OPTIONS[dest][0] for dest in SCHEDULE_OPTIONS if dest in given(args)]:
        raise BlekotaError(f"{', '.join(unresumed)}: a resumed run keeps its schedule as it was; give --schedule "
                           "with them to change it")
    if "checkpoint_sound" in given(args):
        overrides["checkpoint_sound"] = checkpoint_sound(args, model.fs)
    return overrides


def checkpoint_sound(args: argparse.Namespace, fs: int) -> int:
    """--checkpoint-sound in samples at fs; refused when they do not fit a 16-bit wav."""
    samples = args.checkpoint_sound * fs
    if samples > WAV_MAX_FRAMES:
        raise BlekotaError(
            f"--checkpoint-sound: {args.checkpoint_sound:g} s at {fs} Hz do not fit a 16-bit wav "
            f"(at most {WAV_MAX_FRAMES} samples, {WAV_MAX_FRAMES / fs:,.0f} s)"
        )
    return int(samples)


def new_trainer_options(args: argparse.Namespace) -> dict:
    """Trainer arguments for a new model from the training options (all but name and directory)."""
    check_pruning_options(args, args.density < 1)
    check_val_every(args, args.val_fraction)
    return dict(
        seq_length=args.seq_length, batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
        keep=args.keep, val_fraction=args.val_fraction, val_every=args.val_every, stop_after=args.stop_after,
        input_noise=args.input_noise, random_speed=args.random_speed, density=args.density, prune_start=args.prune_start,
        prune_end=args.prune_end, prune_every=args.prune_every, **update_rule(args),
    )


TRAINER_OPTIONS = {"batch_size": "--batch-size", "seq_length": "--seq-length", "random_speed": "--random-speed"}


@contextmanager
def trainer_options_named() -> Iterator[None]:
    """Within it, sounds too short for the training windows are told with the options' names
    (--batch-size 4), not Trainer's (batch_size 4)."""
    try:
        yield
    except TooShortForWindows as error:
        raise AudioError(error.naming(TRAINER_OPTIONS)) from None


def output_device(text: str) -> int | str:
    """A --device argument: an index (digits) or a part of the device's name."""
    return int(text) if text.strip().isdigit() else text


def add_sound_device_argument(parser: argparse.ArgumentParser, when: str = "") -> None:
    """--sound-device: the sound output device, by number or a part of its name (None: the default)."""
    parser.add_argument("--sound-device", type=output_device, default=None, metavar="DEVICE", help=f"{when}the sound output device: its number or a part of its name, as python -m blekota sound-devices lists them (default: the system's default output)")
