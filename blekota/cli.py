"""The command line: python -m blekota train | sample | info | plot | repl | demo | import-legacy | export.

Thin: parse, call the library, report. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import legacy, modelfile, parallel, plot
from . import schedule as blekota_schedule
from .audio import WAV_MAX_FRAMES, PlaybackError, SoundStream, WavWriter, load_audio, save_wav
from .console import NORMAL, QUIET, VERBOSE, TrainingDisplay, print_progress
from .demo import (
    DEMO_CANDIDATES, DEMO_HINT_SECONDS, DEMO_MODEL, DEMO_SAMPLING, DEMO_SECONDS, DEMO_TRAINING,
    demo_sound, note_changes,
)
from .errors import BlekotaError, ModelFileError
from .fileutil import STDOUT, existing_file, is_stream
from .model import Model
from .mulaw import SILENCE, quantize
from .optim import OPTIMIZERS
from .repl import interact, open_session, training_sounds
from .train import PRESETS, VAL_EVERY, VAL_FRACTION, Trainer, split_name

HYPERPARAMETERS = """\
hyperparameters:
  --layers       GRU layers stacked on each other. More layers model longer-range structure;
                 3 works well, 1-2 train faster.
  --hidden       units per layer (the size of the state the network carries from sample to
                 sample). Bigger learns more and is slower: time grows with hidden^2.
  --seq-length   samples per training window: how far back gradients flow (truncated BPTT).
                 100 samples is 12.5 ms at 8 kHz; the state itself is carried further.
  --batch-size   parallel streams trained at once. More is smoother and uses the cores
                 better; memory grows with batch-size * seq-length * hidden.
  --preset       a tested set of optimizer, learning rate, schedule and random gain: default
                 (Adam at 0.004, the plateau schedule, random gain 4 dB: the fastest to a low
                 held-out loss on speech and music, see benchmarks/README.md), original
                 (RMSprop at 0.002, constant, no random gain: how the original blekota
                 trained) or pytorch (Adam at 0.002, constant, no random gain). --alpha,
                 --optimizer, --schedule and --random-gain replace its parts.
  --alpha        learning rate (step size); the plateau schedule lowers it for you.
  --optimizer    adam, rmsprop (decay 0.9, as the original) or adagrad; gradients are
                 clipped to [-5, 5] element-wise.
  --fs           sample rate in Hz the model hears and speaks; training audio is resampled.

data and schedule:
  FILE           sound files, directories (their sound files, sorted) or quoted globs. Each
                 sound is mixed to mono, resampled to --fs and quantized; windows never span
                 two sounds. The last --val-fraction of every sound is held out for validation.
  --schedule     plateau (the default when validating: lr times --lr-factor after --patience
                 validations without improvement, down to --min-lr), which is halving the
                 learning rate by hand, done for you; constant (the default without
                 validation); step (lr times --lr-factor every --lr-every iterations).
  --random-gain  each stream's window is trained at its own random gain within +-DB
                 decibels, so a short recording is not learned by heart: the held-out loss
                 keeps falling for longer. 0 trains on the sound as recorded.
files written (in --out-dir; --model-name foo/bar writes them in its folder foo there): NAME_N.npz
checkpoints, NAME_best.npz (lowest validation loss), NAME.log.jsonl (one JSON line per report:
iteration, time, train_loss, val_loss, lr). A resumed model writes beside its file by default.
"""
HEATMAP_SAMPLES = 400  # drawn by sample --heatmap: 50 ms at 8 kHz, each sample visible
SAMPLE_CHUNK = 8000  # sample writes (and plays) the sound in chunks of this many samples


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where the help is."""

    def error(self, message: str):
        self.exit(2, f"blekota: error: {message} (see: {self.prog} --help)\n")


def argument_type(convert, accept, expected: str):
    """An argparse type: convert the text, then accept(value) or fail with "expected ..., got ..."."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    return parse


positive_int = argument_type(int, lambda value: value > 0, "a positive integer")
non_negative_int = argument_type(int, lambda value: value >= 0, "an integer >= 0")
fraction = argument_type(float, lambda value: 0 <= value < 1, "a number in [0, 1)")
positive_float = argument_type(float, lambda value: 0 < value < float("inf"), "a positive number")
non_negative_float = argument_type(float, lambda value: 0 <= value < float("inf"), "a number >= 0")
share = argument_type(float, lambda value: 0 < value <= 1, "a number in (0, 1]")
unit_interval = argument_type(float, lambda value: 0 <= value <= 1, "a number in [0, 1]")


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
    group.add_argument("--fs", action=Given, type=positive_int, default=8000, help="sample rate in Hz (default 8000)")
    group.add_argument(
        "--dtype", action=Given, choices=("float32", "float64"), default="float32",
        help="precision of weights and arithmetic (default float32)",
    )
    group.add_argument("--seed", type=int, default=None, help="seed for the initial weights")


def add_training_arguments(parser: argparse.ArgumentParser, iterations: int, iterations_help: str) -> None:
    """How training runs and what it writes (shared by train and repl)."""
    parser.add_argument("--model-name", action=Given, default=None, help="prefix of the files written; foo/bar writes foo/bar_N.npz, creating the folder foo (default: the sound's name)")
    parser.add_argument("--iterations", type=non_negative_int, default=iterations, help=iterations_help)
    parser.add_argument("--checkpoint-every", action=Given, type=non_negative_int, default=1000, help="save NAME_N.npz every N iterations (0: only at the end; default 1000)")
    parser.add_argument("--checkpoint-sound", action=Given, type=non_negative_float, default=1.0, help="seconds of sound generated as NAME_N.wav at each checkpoint (0: none; default 1)")
    parser.add_argument("--out-dir", action=Given, default=None, help="where models and sounds are written, created if missing (default: here; a resumed model's own folder)")
    parser.add_argument("--keep", action=Given, type=non_negative_int, default=0, help="keep only the newest K NAME_N.npz checkpoints (default 0: all; NAME_best is always kept)")
    parser.add_argument("--val-fraction", action=Given, type=fraction, default=VAL_FRACTION, help=f"tail of every sound held out for validation (0: none; default {VAL_FRACTION})")
    parser.add_argument("--val-every", action=Given, type=non_negative_int, default=VAL_EVERY, help=f"validate every N iterations and at the end (0: only at the end; default {VAL_EVERY})")
    parser.add_argument("--random-gain", action=Given, type=non_negative_float, default=None, metavar="DB", help="train each stream's window at a random gain within +-DB decibels (0: as recorded; default: the preset's)")
    parser.add_argument("--schedule", action=Given, choices=("constant", "step", "plateau"), default=None, help="learning-rate schedule (default: the preset's; plateau when validating, else constant)")
    parser.add_argument("--lr-factor", action=Given, type=fraction, default=0.5, help="step and plateau: multiply the lr by this (default 0.5)")
    parser.add_argument("--lr-every", action=Given, type=positive_int, default=1000, help="step: iterations between reductions (default 1000)")
    parser.add_argument("--patience", action=Given, type=non_negative_int, default=1, help="plateau: validations without improvement tolerated (default 1)")
    parser.add_argument("--min-lr", action=Given, type=positive_float, default=1e-5, help="plateau: lowest learning rate (default 1e-5)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    shown.add_argument("-v", "--verbose", action="store_true", help="print every report as a line, with the learning rate")


def add_sampling_arguments(parser: argparse.ArgumentParser, when: str = "") -> None:
    """--temperature, --top-k, --top-p and --min-p: how each level is drawn."""
    group = parser.add_argument_group(
        "how each level is drawn" + (f" ({when})" if when else ""),
        "The temperature reshapes the model's distribution, then top-k, top-p and min-p cut its "
        "unlikely tail (in that order) and the rest is renormalized. A cut tail keeps generation "
        "from wandering into hiss; cut too much and it repeats or falls silent.",
    )
    group.add_argument("--temperature", type=non_negative_float, default=1.0, help="higher: more varied, lower: safer; 0 always takes the likeliest level (default 1)")
    group.add_argument("--top-k", type=non_negative_int, default=0, metavar="K", help="draw only from the K likeliest levels; lower: safer, less varied (default 0: all 256)")
    group.add_argument("--top-p", type=share, default=1.0, metavar="P", help="draw only from the fewest likeliest levels whose probabilities sum to P; lower: safer, less varied (default 1: all)")
    group.add_argument("--min-p", type=unit_interval, default=0.0, metavar="M", help="drop levels less likely than M times the likeliest one; higher: safer, less varied (default 0: none)")


def sampling_options(args) -> dict:
    """The keyword arguments of Model.sample that add_sampling_arguments parsed."""
    return dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p)


def describe_sampling(temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> str:
    """'temperature 0.9, top-p 0.95': the settings a sound was drawn with, the truncation when on."""
    words = [f"temperature {temperature:g}"]
    if 0 < top_k < 256:
        words.append(f"top-k {top_k}")
    if top_p < 1:
        words.append(f"top-p {top_p:g}")
    if min_p > 0:
        words.append(f"min-p {min_p:g}")
    return ", ".join(words)


def add_threads_argument(parser: argparse.ArgumentParser, default: str = "OMP_NUM_THREADS or all cores") -> None:
    parser.add_argument(
        "--threads", type=positive_int, default=None, help=f"CPU threads for the kernels (default: {default})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m blekota",
        description="Learn how a sound continues and generate new sound from it, sample by sample.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model on a sound",
        description="Train a model on a sound file (any format libsndfile reads, any rate).",
        epilog=HYPERPARAMETERS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("files", nargs="*", metavar="FILE", help="the sounds to learn: files, directories or globs")
    train.add_argument("--resume", metavar="MODEL", default=None, help="continue training this model file (or a .pkl of the original blekota) exactly where it stopped")
    add_training_arguments(train, 10000, "iterations to run (default 10000)")
    add_model_arguments(train)
    add_threads_argument(
        train, "OMP_NUM_THREADS or all cores; started by mpiexec or srun, a machine's cores divided "
        "among its processes",
    )

    sample = commands.add_parser(
        "sample", help="generate sound with a trained model",
        description="Generate new sound sample by sample with a trained model.",
    )
    sample.add_argument("model", metavar="MODEL", help="a model file (.npz) written by train, or a .pkl of the original blekota (converted once, beside it)")
    sample.add_argument("-n", type=non_negative_int, default=8000, help="samples to generate (default 8000)")
    sample.add_argument("-o", "--output", default=None, help="wav file to write (default: MODEL_sample.wav); - writes to standard output; a device or FIFO is written as a stream")
    sample.add_argument("--hint", metavar="FILE", default=None, help="a sound to start from: it is played into the model first and the output continues it")
    sample.add_argument("--seed", type=int, default=None, help="same seed, same sound")
    sample.add_argument("--play", action="store_true", help="also play the sound")
    sample.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    sample.add_argument("--heatmap", metavar="PNG", default=None, help=f"also draw the probabilities {HEATMAP_SAMPLES} samples were drawn from into this PNG (from just before the hint ends)")
    add_sampling_arguments(sample)
    add_threads_argument(sample)

    info = commands.add_parser("info", help="describe a model file", description="Describe a model file (or a .pkl of the original blekota).")
    info.add_argument("model", metavar="MODEL")

    add_plot_parser(commands)

    repl = commands.add_parser(
        "repl", help="an interactive Python session with a model",
        description="Open a Python console with a model bound as clf: clf.train(it), "
        "y = clf.sample(n), play(y), show(y), heatmap(), save_file('a.wav', y), ... "
        "MODEL_OR_SOUND is a model file (.npz) to load (or a .pkl of the original blekota, "
        "converted once, beside it), or a sound file to learn with a new model built from the "
        "hyperparameters below; without it, a new model learns the built-in demo sound. "
        "The training options are those of train.",
        epilog=HYPERPARAMETERS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    repl.add_argument("source", nargs="?", metavar="MODEL_OR_SOUND", default=None)
    add_training_arguments(repl, 0, "iterations to train before the prompt (default 0)")
    add_model_arguments(repl)
    add_threads_argument(repl)

    demo = commands.add_parser(
        "demo", help="train a small model on the built-in sound",
        description="Synthesize the built-in sound (a sung vowel with vibrato and pauses), train a "
        "small model on it for about a minute, save the model and a generated sound, and draw "
        "the generated sound beside the training sound.",
    )
    demo.add_argument("--seconds", type=positive_float, default=60.0, help="training time in seconds (default 60)")
    demo.add_argument("--out-dir", default="blekota-demo", help="where files are written (default: blekota-demo)")
    add_threads_argument(demo)

    legacy_parser = commands.add_parser(
        "import-legacy", help="convert a model pickled by the original NumPy blekota",
        description="Convert a .pkl model of the original NumPy blekota into a model file. Only "
        "its weights and training state are read: nothing in the pickle is run. (sample, repl "
        "and train --resume also open a .pkl directly, converting it once.)",
    )
    legacy_parser.add_argument("pickle", metavar="OLD.pkl", help="the original's pickled model")
    legacy_parser.add_argument("-o", "--output", default=None, help="model file to write (default: OLD.npz)")
    legacy_parser.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64",
        help="precision of the converted model (default float64, as the original)",
    )
    legacy_parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    add_export_parser(commands)
    return parser


def add_export_parser(commands) -> None:
    """python -m blekota export MODEL -o MODEL.onnx."""
    export = commands.add_parser(
        "export", help="write a model as ONNX, for any ONNX runtime",
        description="Write a model as a float32 ONNX file (standard GRU operators) that any ONNX "
        "runtime runs: inputs the levels of a window (T, B) and the hidden state h0 "
        "(layers, B, H); outputs probs and logits (T, B, 256) and the new state h. Needs the "
        'onnx package (pip install "blekota[onnx]").',
    )
    export.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    export.add_argument("-o", "--output", default=None, help="the ONNX file to write (default: MODEL.onnx)")
    export.add_argument(
        "--input", choices=("level", "onehot"), default="level",
        help="level: int64 levels (T, B) (default); onehot: float32 one-hot rows (T, B, 256)",
    )
    export.add_argument("--force", action="store_true", help="overwrite the output file if it exists")


def default_name(files: list[str]) -> str:
    """The model name for these FILE arguments: the sound's or the directory's name."""
    first = Path(files[0])
    if any(char in files[0] for char in "*?[") and not first.exists():
        first = first.parent
    if first.is_dir() or first != Path(files[0]):
        return first.resolve().name or "model"
    return first.stem


def preset_text(options: dict) -> str:
    """A preset in words: "adam lr 0.004, plateau schedule, random gain 4 dB"."""
    schedule = options["schedule"] or "plateau (constant without validation)"
    gain = f"random gain {options['random_gain_db']:g} dB" if options["random_gain_db"] else "no random gain"
    return f"{options['optimizer']} lr {options['lr']:g}, {schedule} schedule, {gain}"


def schedule_option(args, name: str | None = None):
    """The schedule `name` (default --schedule) with its options, or None when there is none."""
    name = name or args.schedule
    if name == "step":
        return blekota_schedule.Step(every=args.lr_every, factor=args.lr_factor)
    if name == "plateau":
        return blekota_schedule.Plateau(factor=args.lr_factor, patience=args.patience, min_lr=args.min_lr)
    return name


def update_rule(args) -> dict:
    """optimizer, lr, schedule and random_gain_db: the --preset's, each replaced by --optimizer,
    --alpha, --schedule or --random-gain when given (a preset's schedule None: plateau when
    validating, else constant)."""
    preset = PRESETS[args.preset]
    schedule = args.schedule or preset["schedule"] or ("plateau" if args.val_fraction > 0 else "constant")
    gain = preset["random_gain_db"] if args.random_gain is None else args.random_gain
    return {"optimizer": args.optimizer or preset["optimizer"], "lr": args.alpha or preset["lr"],
            "schedule": schedule_option(args, schedule), "random_gain_db": gain}


def add_plot_parser(commands) -> None:
    """python -m blekota plot waveform | spectrogram | heatmap | loss | compare."""
    plot_parser = commands.add_parser(
        "plot", help="draw a sound, a model's expectations or a loss curve",
        description="Draw a picture: in a window when there is a display and no -o, else into "
        "a PNG file (-o, or NAME.png, NAME-2.png, ... here, never overwriting).",
    )
    kinds = plot_parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    def kind(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = kinds.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("-o", "--output", default=None, metavar="PNG", help="the PNG file to write")
        parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
        return parser

    for name, help_text in (("waveform", "the waveform of a sound file against time"),
                            ("spectrogram", "the spectrogram of a sound file")):
        parser = kind(name, help_text)
        parser.add_argument("sound", metavar="SOUND")
        parser.add_argument("--fs", type=positive_int, default=None, help="resample to this rate in Hz first (default: the file's own)")
    heatmap = kind(
        "heatmap", "the probabilities a model gives each of the 256 levels, sample by sample: "
        "while it listens to SOUND, or while it generates when no SOUND is given",
    )
    heatmap.add_argument("model", metavar="MODEL")
    heatmap.add_argument("sound", metavar="SOUND", nargs="?", default=None)
    heatmap.add_argument("-n", type=positive_int, default=1000, help="samples to draw (default 1000)")
    heatmap.add_argument("--start", type=non_negative_int, default=0, help="first sample drawn; the model hears or makes all before it (default 0)")
    heatmap.add_argument("--seed", type=int, default=None, help="when generating: same seed, same sound")
    add_sampling_arguments(heatmap, "when generating")
    add_threads_argument(heatmap)
    loss = kind("loss", "training and validation loss against iterations")
    loss.add_argument("log", metavar="MODEL_OR_LOG", help="a model file (.npz) or a training log (NAME.log.jsonl)")
    compare = kind("compare", "two sounds side by side: waveforms and spectrograms")
    compare.add_argument("training", metavar="TRAINING_SOUND")
    compare.add_argument("generated", metavar="GENERATED_SOUND")
    compare.add_argument("--fs", type=positive_int, default=8000, help="rate both are resampled to, in Hz (default 8000)")



def verbosity(args) -> int:
    return QUIET if args.quiet else VERBOSE if args.verbose else NORMAL


def model_path(path: str, say) -> Path:
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


ARCHITECTURE = ("layers", "hidden", "fs", "dtype")
RESUME_OPTIONS = {  # option dest -> Trainer argument, for options given on resuming
    "seq_length": "seq_length", "batch_size": "batch_size", "alpha": "lr", "optimizer": "optimizer",
    "checkpoint_every": "checkpoint_every", "keep": "keep", "val_fraction": "val_fraction",
    "val_every": "val_every", "out_dir": "directory", "model_name": "name", "random_gain": "random_gain_db",
}


def resume_overrides(args, path: Path, model: Model) -> dict:
    """Trainer.from_checkpoint overrides from the options given for the model read from path;
    the architecture options, when given, must agree with it."""
    have = {"layers": model.layers, "hidden": model.hidden, "fs": model.fs, "dtype": model.dtype.name}
    for option in ARCHITECTURE:
        if option in given(args) and getattr(args, option) != have[option]:
            raise BlekotaError(
                f"{path}: a {model.layers}x{model.hidden} {model.dtype.name} model at {model.fs} Hz; "
                f"--{option.replace('_', '-')} {getattr(args, option)} does not fit it (a model keeps "
                "its architecture when it goes on training)"
            )
    overrides = {key: getattr(args, dest) for dest, key in RESUME_OPTIONS.items() if dest in given(args)}
    if "preset" in given(args):
        overrides = {**update_rule(args), **overrides}
    if "schedule" in given(args):
        overrides["schedule"] = schedule_option(args)
    if "checkpoint_sound" in given(args):
        overrides["checkpoint_sound"] = int(args.checkpoint_sound * model.fs)
    return overrides


def prepare_directory(directory: Path) -> None:
    """Create the folder files will be written in, and refuse before any work when it cannot be
    written (so that a long run never ends unable to save)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BlekotaError(f"{directory}: is not a directory (files cannot be written in it)") from None
    except OSError as error:
        raise BlekotaError(f"{directory}: cannot create the folder ({error.strerror or error})") from None
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise BlekotaError(f"{directory}: cannot write files in it ({error.strerror or error})") from None


def command_train(args) -> int:
    """Train in this process, or, started by an MPI launcher (mpiexec, srun) with others, train
    one model together with them: rank 0 alone prints; an error found by any process is printed
    once, by rank 0, and ends every process."""
    try:
        processes = parallel.from_launcher()
    except BlekotaError:
        if parallel.launcher_rank() != 0:
            return 2
        raise
    if processes.size == 1:
        return train(args, processes)
    try:
        return train(args, processes)
    except (BlekotaError, OSError, MemoryError) as error:
        lost = isinstance(error, parallel.ProcessLost)
        if processes.is_root or lost:
            print(f"blekota: error: {parallel.describe(error)}", file=sys.stderr, flush=True)
        if lost or not processes.stopped_together():
            processes.abort(2)  # other processes are waiting for this one: end them all
        return 2
    except KeyboardInterrupt:
        if processes.is_root:
            raise
        return 130


def prepare_resume(args, say) -> tuple[Path, dict, list]:
    """(model file, Trainer.from_checkpoint overrides, sounds) for train --resume; converts a
    pickle of the original once and creates the folder files will be written in."""
    resume = model_path(args.resume, say)
    loaded = modelfile.read(resume)
    overrides = resume_overrides(args, resume, loaded.model)
    audio = args.files or training_sounds(resume)
    if not audio:
        missing = [name for name in loaded.info.get("training_files") or [] if not Path(name).exists()]
        if missing:
            raise BlekotaError(
                f"{resume}: was trained on {', '.join(missing)}, which is not here (nor beside the model); "
                f"give the sound: python -m blekota train --resume {args.resume} SOUND"
            )
    folder, _ = split_name(overrides.get("name", "model"))
    prepare_directory(Path(overrides.get("directory", resume.parent)) / folder)
    return resume, overrides, audio


def train(args, processes: parallel.Processes) -> int:
    """command_train's work in one process (of one or several training together)."""
    root = processes.is_root
    shown = QUIET if not root else verbosity(args)
    bar = root and sys.stdout.isatty() and not args.verbose
    display = TrainingDisplay(args.iterations, bar=bar, verbosity=shown)
    say = print if shown > QUIET else (lambda *_, **__: None)
    options = dict(callback=display if root else None, report_steps=bar, comm=processes)
    if not args.resume and not args.files:
        raise BlekotaError("train needs a sound FILE (or --resume MODEL)")
    threads = args.threads or processes.default_threads()
    if args.resume:
        resume, overrides, audio = processes.from_root(lambda: prepare_resume(args, say))
        trainer = Trainer.from_checkpoint(resume, audio=audio, threads=threads, **overrides, **options)
        where = "" if trainer.continues_data else " (data or its layout changed: starting at the beginning of the data)"
        say(f"resuming {resume} at iteration {trainer.iteration}{where}", flush=True)
    else:
        name = args.model_name or default_name(args.files)
        directory = Path(args.out_dir or ".")
        processes.from_root(lambda: prepare_directory(directory / split_name(name)[0]))
        model = processes.together(lambda: Model(
            hidden=args.hidden, layers=args.layers, fs=args.fs, dtype=args.dtype,
            seed=args.seed, threads=threads,
        ))
        trainer = Trainer(model, args.files, name=name, directory=directory, seed=args.seed,
                          checkpoint_sound=int(args.checkpoint_sound * args.fs), **new_trainer_options(args),
                          **options)
    check_checkpoint_sound(trainer)
    model = trainer.model
    fs = model.fs
    files = trainer.files
    what = files[0] if len(files) == 1 else f"{len(files)} sounds" if files else "audio"
    threads = f"{model.threads} thread{'s' if model.threads > 1 else ''}"
    shared = f" shared by {processes.size} processes of {threads}" if processes.size > 1 else ""
    say(
        f"training {model.layers}x{model.hidden} GRU ({model.n_params:,} parameters, "
        f"{model.dtype.name}, {fs} Hz) on {what}: {trainer.layout.samples / fs:.1f} s of sound in "
        f"{trainer.batch_size} streams{shared}, {trainer.val_samples / fs:.1f} s held out; log {trainer.log_path()}",
        flush=True,
    )
    if shown >= VERBOSE:
        for name, size in zip(files, trainer.data.sizes):
            print(f"  {name}: {size / fs:.1f} s", flush=True)
    started = trainer.iteration
    try:
        trainer.train(args.iterations)
    except BlekotaError as error:
        if trainer.iteration == started:
            raise
        raise BlekotaError(f"{error}; {rescue(trainer)}") from None
    finally:
        display.close()
    return 0


def check_checkpoint_sound(trainer: Trainer) -> None:
    """Refuse before training a checkpoint sound too long for a wav."""
    if trainer.checkpoint_sound > WAV_MAX_FRAMES:
        raise BlekotaError(
            f"--checkpoint-sound: {trainer.checkpoint_sound} samples do not fit a 16-bit wav "
            f"(at most {WAV_MAX_FRAMES}, {WAV_MAX_FRAMES / trainer.model.fs:,.0f} s at {trainer.model.fs} Hz)"
        )


def new_trainer_options(args) -> dict:
    """Trainer arguments for a new model from the training options (all but name and directory)."""
    return dict(
        seq_length=args.seq_length, batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
        keep=args.keep, val_fraction=args.val_fraction, val_every=args.val_every, **update_rule(args),
    )


def rescue(trainer: Trainer) -> str:
    """Save the trained model in a new folder of the system's temporary directory after training
    stopped with an error (the final save failed); says where (or that this failed too)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="blekota-"))
        path = trainer.save(folder / trainer.checkpoint_path().name)
    except (OSError, ModelFileError) as error:
        return f"saving it in the temporary folder failed too ({error})"
    return f"saved it as {path} instead"


def command_sample(args) -> int:
    output = args.output or str(Path(args.model).with_name(Path(args.model).stem + "_sample.wav"))
    check_output(output, args.force)
    heatmap = _output_png(args.heatmap, args.force)
    streaming = is_stream(output)  # perhaps into standard output: then messages go to stderr
    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if streaming else print
    model = modelfile.load(model_path(args.model, say), threads=args.threads)
    hint = load_audio(args.hint, model.fs)[0] if args.hint else None
    begins = 0
    if hint is not None:
        begins = min(max(0, hint.size - HEATMAP_SAMPLES // 10), max(0, args.n - HEATMAP_SAMPLES))
    window = slice(begins, begins + HEATMAP_SAMPLES)
    kept_sound, kept_probs = [], []
    start = time.perf_counter()
    with WavWriter(output, model.fs, args.n) as wav, SamplePlayer(model.fs, args.play) as player, tqdm(
        total=args.n, unit="sample", unit_scale=True, disable=not sys.stderr.isatty(), leave=False
    ) as bar:
        done = 0
        chunks = model.generate(args.n, chunk=SAMPLE_CHUNK, hint=hint, seed=args.seed,
                                return_probs=heatmap is not None, **sampling_options(args))
        for chunk in chunks:
            sound, probs = chunk if heatmap is not None else (chunk, None)
            if probs is not None and done < window.stop and done + sound.size > window.start:
                part = slice(max(window.start - done, 0), window.stop - done)
                kept_sound.append(sound[part])
                kept_probs.append(probs[part])
            done += sound.size
            wav.write(sound)
            player.add(sound, done / (time.perf_counter() - start))
            bar.update(sound.size)
    elapsed = time.perf_counter() - start
    rate = args.n / elapsed if elapsed > 0 else float("inf")
    where = "standard output" if output == STDOUT else output
    say(f"wrote {where}: {args.n} samples ({args.n / model.fs:.2f} s) in {elapsed:.2f} s, {rate:,.0f} samples/s")
    if heatmap is not None and kept_sound:
        title = f"{Path(output).name}: probability of each level ({describe_sampling(**sampling_options(args))})"
        sound, probs = np.concatenate(kept_sound), np.concatenate(kept_probs)
        path = plot.heatmap(probs, model.fs, sound, title=title, out=heatmap, first=begins)
        say(f"wrote {path}")
    return 0


class SamplePlayer:
    """sample --play: plays chunks as they are generated while generation keeps ahead of real
    time, else what is left once generation ends. Without sound output: one line on stderr."""

    def __init__(self, fs: int, wanted: bool):
        self.fs, self.wanted = fs, wanted
        self.stream: SoundStream | None = None
        self.pending: list[np.ndarray] = []

    def __enter__(self) -> SamplePlayer:
        if self.wanted:
            try:
                self.stream = SoundStream(self.fs).__enter__()
            except PlaybackError as error:
                print(f"blekota: {error}", file=sys.stderr)
        return self

    def add(self, sound: np.ndarray, samples_per_s: float) -> None:
        """Queue one generated chunk; samples_per_s is the generation speed so far."""
        if self.stream is None:
            return
        self.pending.append(sound)
        if samples_per_s >= 1.1 * self.fs:
            for chunk in self.pending:
                self.stream.write(chunk)
            self.pending.clear()

    def __exit__(self, *exc) -> None:
        if self.stream is None:
            return
        if exc[0] is None:
            for chunk in self.pending:
                self.stream.write(chunk)
        self.stream.__exit__(*exc)


def check_output(output: str | os.PathLike, force: bool) -> None:
    """Refuse before any work: a directory, an existing file without force, a missing folder.
    A device, a FIFO or "-" (standard output) is written as a stream and needs no force."""
    if is_stream(output):
        return
    target = Path(os.path.realpath(output))
    if target.is_dir():
        raise BlekotaError(f"{output}: is a directory (give a file name to write)")
    if existing_file(output) and not force:
        raise BlekotaError(f"{output}: already exists (use --force to overwrite)")
    if not target.parent.is_dir():
        folder = target.parent if Path(output).is_symlink() else Path(output).parent
        raise BlekotaError(f"{output}: the directory {folder} does not exist")


def command_import_legacy(args) -> int:
    output = Path(args.output) if args.output else Path(args.pickle).with_suffix(modelfile.EXTENSION)
    check_output(output, args.force)
    converted = legacy.read_legacy(args.pickle, dtype=args.dtype)
    model = converted.model
    modelfile.save(output, model, converted.info, converted.train_arrays)
    print(
        f"wrote {output}: {model.layers} GRU layers x {model.hidden} units, {model.fs} Hz, "
        f"{model.info.get('iterations', 0)} iterations; continue with: python -m blekota train "
        f"--resume {output} SOUND", file=sys.stderr if is_stream(output) else sys.stdout,
    )
    return 0


def command_export(args) -> int:
    from .onnx import export_onnx

    output = Path(args.output) if args.output else Path(args.model).with_suffix(".onnx")
    check_output(output, args.force)
    model = read_model(args.model).model
    export_onnx(model, output, input=args.input)
    state = f"({model.layers}, B, {model.hidden})"
    inputs = "level (T, B) int64" if args.input == "level" else "onehot (T, B, 256)"
    print(f"wrote {output}: {model.layers} GRU layers x {model.hidden} units at {model.fs} Hz, float32; "
          f"inputs {inputs} and h0 {state}; outputs probs and logits (T, B, 256) and h {state}")
    return 0


def command_info(args) -> int:
    loaded = read_model(args.model)
    model, info = loaded.model, loaded.info
    trainer = info.get("trainer") or {}
    if legacy.is_pickle(args.model):
        origin = " (a pickle of the original blekota, read without running it)"
    else:
        origin = f" (converted from {info['imported_from']})" if isinstance(info.get("imported_from"), str) else ""
    print(f"model file:  {args.model}{origin}")
    print(f"network:     {model.layers} GRU layers x {model.hidden} units, {model.n_params:,} parameters, {model.dtype.name}")
    print(f"sample rate: {model.fs} Hz")
    print(f"trained:     {info.get('iterations', 0)} iterations, {info.get('epochs', 0)} epochs")
    files = info.get("training_files") or []
    print(f"trained on:  {', '.join(files) if files else 'unknown'}")
    if trainer:
        print(
            f"training:    {trainer.get('optimizer')} lr {trainer.get('lr')}, seq_length "
            f"{trainer.get('seq_length')}, batch_size {trainer.get('batch_size')}, random gain "
            f"{trainer.get('random_gain_db', 0.0):g} dB"
        )
    train, val = plot.loss_points(info)
    for label, rows in (("loss:       ", train), ("val loss:   ", val)):
        if rows.size:
            best = int(rows[:, 1].argmin())
            print(
                f"{label} first {rows[0, 1]:.4f}, last {rows[-1, 1]:.4f}, best {rows[best, 1]:.4f} "
                f"at iteration {rows[best, 0]:.0f} (nats/sample, {len(rows)} reports)"
            )
    return 0


def _output_png(name: str | None, force: bool) -> Path | None:
    """The PNG path asked for on the command line, refusing to replace a file unless force (a
    directory is where plot names its own file)."""
    if name is None:
        return None
    if not Path(name).is_dir():
        check_output(name, force)
    return Path(name)


def _heard(model: Model, sound: np.ndarray) -> np.ndarray:
    """(n, 256) probabilities the model gives each sample of sound (n,) while it listens: row t
    is its distribution for sample t, having heard samples 0..t-1 (silence before)."""
    levels = quantize(sound)
    inputs = np.concatenate([[SILENCE], levels[:-1]]).astype(np.uint8)
    return model.probabilities(inputs[:, None])[:, 0]


def command_plot(args) -> int:
    out = _output_png(args.output, args.force)
    if args.kind in ("waveform", "spectrogram"):
        sound, fs = load_audio(args.sound, args.fs)
        draw = plot.show if args.kind == "waveform" else plot.spectrogram
        path = draw(sound, fs, title=Path(args.sound).name, out=out)
    elif args.kind == "heatmap":
        model = read_model(args.model, threads=args.threads).model
        stop = args.start + args.n
        if args.sound:
            sound = load_audio(args.sound, model.fs)[0][:stop]
            if sound.size <= args.start:
                raise BlekotaError(f"{args.sound}: has {sound.size} samples at {model.fs} Hz, fewer than --start {args.start} + 1")
            probs, title = _heard(model, sound), f"{Path(args.model).name} listening to {Path(args.sound).name}"
        else:
            sound, probs = model.sample(stop, seed=args.seed, return_probs=True, **sampling_options(args))
            title = f"{Path(args.model).name} generating ({describe_sampling(**sampling_options(args))})"
        path = plot.heatmap(probs, model.fs, sound, start=args.start, length=args.n, title=title, out=out)
    elif args.kind == "loss":
        log = args.log
        if modelfile.is_model_file(log) or legacy.is_pickle(log):
            log = read_model(log).info
        path = plot.loss_curve(log, title=f"loss of {Path(args.log).name}", out=out)
    else:
        training, fs = load_audio(args.training, args.fs)
        generated, _ = load_audio(args.generated, args.fs)
        path = plot.compare(training, generated, fs, out=out)
    if path is not None:
        print(f"wrote {path}", file=sys.stderr if is_stream(path) else sys.stdout)
    return 0


def command_repl(args) -> int:
    model_options = dict(hidden=args.hidden, layers=args.layers, fs=args.fs, dtype=args.dtype,
                         seed=args.seed, threads=args.threads)
    trainer_options = dict(new_trainer_options(args), seed=args.seed, directory=args.out_dir or ".",
                           checkpoint_sound=int(args.checkpoint_sound * args.fs))
    overrides = {}
    source = args.source
    if source is not None and (legacy.is_pickle(source) or modelfile.is_model_file(source)):
        source = model_path(source, lambda line: print(line, file=sys.stderr))
        overrides = resume_overrides(args, source, modelfile.load(source))
        directory = Path(overrides.get("directory", source.parent))
    else:
        if args.model_name:
            trainer_options["name"] = args.model_name
        directory = Path(trainer_options["directory"])
    prepare_directory(directory / split_name(args.model_name or "model")[0])
    callback = print_progress if verbosity(args) == NORMAL else TrainingDisplay(0, bar=False, verbosity=verbosity(args))
    session, note = open_session(source, model_options, trainer_options, callback, overrides)
    if session.trainer is not None:
        check_checkpoint_sound(session.trainer)
    if args.iterations:
        session.train(args.iterations)
    interact(session, note)
    return 0


def command_demo(args) -> int:
    out = Path(args.out_dir)
    prepare_directory(out)
    fs = 8000
    sound = demo_sound(fs)
    sound_path = save_wav(out / "demo_sound.wav", sound, fs)
    print(f"wrote {sound_path}: the built-in training sound ({sound.size / fs:.0f} s sung vowel at {fs} Hz)")
    model = Model(**DEMO_MODEL, fs=fs, seed=0, threads=args.threads)
    trainer = Trainer(
        model, sound, **DEMO_TRAINING, name="demo", checkpoint_every=0, directory=out,
        callback=print_progress, seed=0,
    )
    before = trainer.validation_loss()
    print(f"training a {model.layers}x{model.hidden} GRU for {args.seconds:.0f} s; loss before: {before:.4f} nats/sample", flush=True)
    result = trainer.train(10**9, max_seconds=args.seconds)
    after = trainer.validation_loss()
    hint = sound[: round(DEMO_HINT_SECONDS * fs)]
    candidates = model.sample(round(DEMO_SECONDS * fs), seed=0, hint=hint, streams=DEMO_CANDIDATES,
                              **DEMO_SAMPLING).reshape(DEMO_CANDIDATES, -1)
    changes = [note_changes(candidate[hint.size :], fs) for candidate in candidates]
    generated = candidates[int(np.argmax(changes))]
    generated_path = save_wav(out / "demo_generated.wav", generated, fs)
    rms = float(np.sqrt(np.mean(generated[hint.size :] ** 2)))
    print(f"held-out loss before: {before:.4f}, after {result.iterations} iterations: {after:.4f} nats/sample")
    print(f"drew {DEMO_CANDIDATES} continuations ({describe_sampling(**DEMO_SAMPLING)}) and kept the "
          f"one that changes most often between notes and pauses: {max(changes)} times (all: "
          f"{', '.join(map(str, changes))})")
    print(f"wrote {result.path} (the model) and {generated_path}: {DEMO_SECONDS:g} s, the first "
          f"{DEMO_HINT_SECONDS:g} s from the training sound (a note and the start of a pause), the "
          f"rest generated (RMS {rms:.3f})")
    picture = plot.compare(sound, generated, fs, out=out / "demo_compare.png")
    print(f"wrote {picture}: the generated sound beside the training sound (waveforms, spectrograms)")
    return 0


COMMANDS = {
    "train": command_train,
    "sample": command_sample,
    "info": command_info,
    "plot": command_plot,
    "repl": command_repl,
    "demo": command_demo,
    "import-legacy": command_import_legacy,
    "export": command_export,
}


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr."""
    print(f"blekota: warning: {message}", file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl+C so that every file being written is cleaned up."""


@contextmanager
def terminate_as_interrupt():
    """While a command runs in the main thread, SIGTERM raises Terminated (training defers both
    signals to the end of the current update instead). Not for the interactive session, whose
    console would take it for Ctrl+C at its prompt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted, 143
    terminated, 141 when the reader of standard output went away)."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # file names that are not valid text still print
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(), terminate_as_interrupt() if args.command != "repl" else nullcontext():
            warnings.showwarning = show_warning
            return COMMANDS[args.command](args)
    except BlekotaError as error:
        print(f"blekota: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): quietly, as command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more can reach the closed pipe
        return 141  # 128 + SIGPIPE, as a shell reports a reader gone
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"blekota: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except MemoryError:
        print("blekota: error: not enough memory for this (a smaller model, batch or sound needs less)", file=sys.stderr)
        return 2
    except Terminated:
        print("blekota: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("blekota: interrupted", file=sys.stderr)
        return 130
