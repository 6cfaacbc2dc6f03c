"""The command line: python -m blekota train | sample | info | demo | import-legacy.

Thin: parse, call the library, report. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import modelfile
from .audio import PlaybackError, load_audio, play, save_wav
from .demo import demo_sound
from .errors import BlekotaError
from .legacy import convert_legacy
from .model import Model
from .train import Progress, Trainer

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
  --alpha        learning rate (step size). 0.002 is a good start; lower it when the loss
                 stops falling.
  --optimizer    rmsprop (decay 0.9, as the original), adagrad or adam; gradients are
                 clipped to [-5, 5] element-wise.
  --fs           sample rate in Hz the model hears and speaks; training audio is resampled.
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The hyperparameters of a new model and its training (shared by train and repl)."""
    group = parser.add_argument_group("model and training hyperparameters")
    group.add_argument("--layers", type=positive_int, default=3, help="GRU layers (default 3)")
    group.add_argument("--hidden", type=positive_int, default=256, help="units per layer (default 256)")
    group.add_argument("--seq-length", type=positive_int, default=100, help="samples per window (default 100)")
    group.add_argument("--batch-size", type=positive_int, default=80, help="parallel streams (default 80)")
    group.add_argument("--alpha", type=positive_float, default=2e-3, help="learning rate (default 0.002)")
    group.add_argument(
        "--optimizer", choices=("rmsprop", "adagrad", "adam"), default="rmsprop",
        help="update rule (default rmsprop)",
    )
    group.add_argument("--fs", type=positive_int, default=8000, help="sample rate in Hz (default 8000)")
    group.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32",
        help="precision of weights and arithmetic (default float32)",
    )
    group.add_argument("--seed", type=int, default=None, help="seed for the initial weights")


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=positive_int, default=None,
        help="CPU threads for the kernels (default: OMP_NUM_THREADS or all cores)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m blekota",
        description="Learn how a sound continues and generate new sound from it, sample by sample.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model on a sound",
        description="Train a model on a sound file (any format libsndfile reads, any rate).",
        epilog=HYPERPARAMETERS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("files", nargs="*", metavar="FILE", help="the sound to learn")
    train.add_argument("--model-name", default=None, help="prefix of the files written (default: the sound's name)")
    train.add_argument("--iterations", type=non_negative_int, default=10000, help="iterations to run (default 10000)")
    train.add_argument("--resume", metavar="MODEL", default=None, help="continue training this model file exactly where it stopped")
    train.add_argument("--checkpoint-every", type=non_negative_int, default=1000, help="save NAME_N.npz every N iterations (0: only at the end; default 1000)")
    train.add_argument("--checkpoint-sound", type=non_negative_float, default=1.0, help="seconds of sound generated as NAME_N.wav at each checkpoint (0: none; default 1)")
    train.add_argument("--out-dir", default=".", help="where models and sounds are written (default: here)")
    add_model_arguments(train)
    add_threads_argument(train)

    sample = commands.add_parser(
        "sample", help="generate sound with a trained model",
        description="Generate new sound sample by sample with a trained model.",
    )
    sample.add_argument("model", metavar="MODEL", help="a model file (.npz) written by train")
    sample.add_argument("-n", type=non_negative_int, default=8000, help="samples to generate (default 8000)")
    sample.add_argument("-o", "--output", default=None, help="wav file to write (default: MODEL_sample.wav)")
    sample.add_argument("--temperature", type=non_negative_float, default=1.0, help="higher: more varied, lower: safer; 0 always takes the likeliest level (default 1)")
    sample.add_argument("--hint", metavar="FILE", default=None, help="a sound to start from: it is played into the model first and the output continues it")
    sample.add_argument("--seed", type=int, default=None, help="same seed, same sound")
    sample.add_argument("--play", action="store_true", help="also play the sound")
    sample.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    add_threads_argument(sample)

    info = commands.add_parser("info", help="describe a model file", description="Describe a model file.")
    info.add_argument("model", metavar="MODEL")

    demo = commands.add_parser(
        "demo", help="train a small model on the built-in sound",
        description="Synthesize the built-in sound (a sung vowel with vibrato and pauses), train a "
        "small model on it for about a minute, save the model and a generated sound.",
    )
    demo.add_argument("--seconds", type=positive_float, default=60.0, help="training time in seconds (default 60)")
    demo.add_argument("--out-dir", default="blekota-demo", help="where files are written (default: blekota-demo)")
    add_threads_argument(demo)

    legacy = commands.add_parser(
        "import-legacy", help="convert a model pickled by the original NumPy blekota",
        description="Convert a .pkl model of the original NumPy blekota into a model file. Only "
        "its weights and training state are read: nothing in the pickle is run.",
    )
    legacy.add_argument("pickle", metavar="OLD.pkl", help="the original's pickled model")
    legacy.add_argument("-o", "--output", default=None, help="model file to write (default: OLD.npz)")
    legacy.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64",
        help="precision of the converted model (default float64, as the original)",
    )
    legacy.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    return parser


def print_progress(report: Progress) -> None:
    """The CLI's view of training: one line per report."""
    if report.kind == "progress":
        loss = f"{report.loss:.4f}" if report.loss is not None else "-"
        print(
            f"iteration {report.iteration:>7}  loss {loss} nats/sample  epoch {report.epoch}  "
            f"{report.samples_per_s:,.0f} samples/s  {report.elapsed_s:,.0f} s",
            flush=True,
        )
    elif report.kind == "checkpoint":
        print(f"wrote {report.path}", flush=True)
    else:
        state = "stopped" if report.kind == "interrupted" else "done"
        print(f"{state} after {report.iteration} iterations; saved {report.path}", flush=True)


def command_train(args) -> int:
    sound = args.files[0] if args.files else None
    if len(args.files) > 1:
        raise BlekotaError("train takes one sound file")
    options = dict(
        checkpoint_every=args.checkpoint_every,
        directory=args.out_dir,
        callback=print_progress,
    )
    if args.resume:
        if args.model_name:
            options["name"] = args.model_name
        trainer = Trainer.from_checkpoint(args.resume, audio=sound, threads=args.threads, **options)
        trainer.checkpoint_sound = int(args.checkpoint_sound * trainer.model.fs)
        print(f"resuming {args.resume} at iteration {trainer.iteration}", flush=True)
    else:
        if sound is None:
            raise BlekotaError("train needs a sound FILE (or --resume MODEL)")
        model = Model(
            hidden=args.hidden, layers=args.layers, fs=args.fs, dtype=args.dtype,
            seed=args.seed, threads=args.threads,
        )
        trainer = Trainer(
            model, sound, seq_length=args.seq_length, batch_size=args.batch_size,
            optimizer=args.optimizer, lr=args.alpha,
            name=args.model_name or Path(sound).stem,
            checkpoint_sound=int(args.checkpoint_sound * args.fs), seed=args.seed, **options,
        )
    model = trainer.model
    print(
        f"training {model.layers}x{model.hidden} GRU ({model.n_params:,} parameters, "
        f"{model.dtype.name}, {model.fs} Hz) on {', '.join(trainer.files) or 'audio'}: "
        f"{trainer.streams.size / model.fs:.1f} s of sound in {trainer.batch_size} streams",
        flush=True,
    )
    trainer.train(args.iterations)
    return 0


def command_sample(args) -> int:
    model = modelfile.load(args.model, threads=args.threads)
    output = Path(args.output) if args.output else Path(args.model).with_name(Path(args.model).stem + "_sample.wav")
    check_output(output, args.force)
    hint = load_audio(args.hint, model.fs)[0] if args.hint else None
    start = time.perf_counter()
    sound = model.sample(args.n, temperature=args.temperature, hint=hint, seed=args.seed)
    elapsed = time.perf_counter() - start
    save_wav(output, sound, model.fs)
    rate = args.n / elapsed if elapsed > 0 else float("inf")
    print(f"wrote {output}: {args.n} samples ({args.n / model.fs:.2f} s) in {elapsed:.2f} s, {rate:,.0f} samples/s")
    if args.play:
        try:
            play(sound, model.fs)
        except PlaybackError as error:
            print(error, file=sys.stderr)
    return 0


def check_output(output: Path, force: bool) -> None:
    """Refuse before any work: an existing output without force, or a missing directory."""
    if output.exists() and not force:
        raise BlekotaError(f"{output}: already exists (use --force to overwrite)")
    if not output.parent.is_dir():
        raise BlekotaError(f"{output}: the directory {output.parent} does not exist")


def command_import_legacy(args) -> int:
    output = Path(args.output) if args.output else Path(args.pickle).with_suffix(modelfile.EXTENSION)
    check_output(output, args.force)
    convert_legacy(args.pickle, output, dtype=args.dtype)
    model = modelfile.load(output)
    print(
        f"wrote {output}: {model.layers} GRU layers x {model.hidden} units, {model.fs} Hz, "
        f"{model.info.get('iterations', 0)} iterations; continue with: python -m blekota train "
        f"--resume {output} SOUND"
    )
    return 0


def command_info(args) -> int:
    loaded = modelfile.read(args.model)
    model, info = loaded.model, loaded.info
    trainer = info.get("trainer") or {}
    print(f"model file:  {args.model}")
    print(f"network:     {model.layers} GRU layers x {model.hidden} units, {model.n_params:,} parameters, {model.dtype.name}")
    print(f"sample rate: {model.fs} Hz")
    print(f"trained:     {info.get('iterations', 0)} iterations, {info.get('epochs', 0)} epochs")
    files = info.get("training_files") or []
    print(f"trained on:  {', '.join(files) if files else 'unknown'}")
    if trainer:
        print(
            f"training:    {trainer.get('optimizer')} lr {trainer.get('lr')}, seq_length "
            f"{trainer.get('seq_length')}, batch_size {trainer.get('batch_size')}"
        )
    history = info.get("history") or []
    if history:
        losses = np.array([row[1] for row in history])
        print(
            f"loss:        first {losses[0]:.4f}, last {losses[-1]:.4f}, best {losses.min():.4f} "
            f"nats/sample ({len(history)} reports)"
        )
    return 0


def command_demo(args) -> int:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fs = 8000
    sound = demo_sound(fs)
    sound_path = save_wav(out / "demo_sound.wav", sound, fs)
    print(f"wrote {sound_path}: the built-in training sound ({sound.size / fs:.0f} s sung vowel at {fs} Hz)")
    model = Model(hidden=128, layers=2, fs=fs, seed=0, threads=args.threads)
    trainer = Trainer(
        model, sound, seq_length=100, batch_size=32, optimizer="adam", lr=3e-3, name="demo",
        checkpoint_every=0, directory=out, callback=print_progress, seed=0,
    )
    probe = np.ascontiguousarray(trainer.streams[:, : 8 * trainer.seq_length + 1].T)
    before = model.window(probe)[0]
    print(f"training a {model.layers}x{model.hidden} GRU for {args.seconds:.0f} s; loss before: {before:.4f} nats/sample", flush=True)
    result = trainer.train(10**9, max_seconds=args.seconds)
    after = model.window(probe)[0]
    generated = model.sample(3 * fs, seed=0, hint=sound[: fs // 2])
    generated_path = save_wav(out / "demo_generated.wav", generated, fs)
    rms = float(np.sqrt(np.mean(generated[fs // 2 :] ** 2)))
    print(f"loss before: {before:.4f}, after {result.iterations} iterations: {after:.4f} nats/sample")
    print(f"wrote {result.path} (the model) and {generated_path}: 3 s, the first 0.5 s from the "
          f"training sound, the rest generated (RMS {rms:.3f})")
    return 0


COMMANDS = {
    "train": command_train,
    "sample": command_sample,
    "info": command_info,
    "demo": command_demo,
    "import-legacy": command_import_legacy,
}


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr."""
    print(f"blekota: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return COMMANDS[args.command](args)
    except BlekotaError as error:
        print(f"blekota: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"blekota: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("blekota: interrupted", file=sys.stderr)
        return 130
