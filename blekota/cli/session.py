"""python -m blekota repl | demo: an interactive session with a model, and the demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import device, legacy, modelfile
from .._version import __version__
from ..console import NORMAL, ReaderWatch, TrainingDisplay, print_progress
from ..demo import DEMO_ITERATIONS, run_demo
from ..fileutil import prepare_directory
from ..repl import interact, open_session
from ..runfiles import split_name
from .options import (
    HYPERPARAMETERS, add_device_argument, add_model_arguments, add_threads_argument, add_training_arguments,
    bf16_option, checkpoint_sound, file_name, folder_name, model_path, new_trainer_options, non_negative_int, positive_int, resume_overrides,
    trainer_options_named, verbosity,
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The repl and demo commands' options."""
    repl_parser = commands.add_parser(
        "repl", help="an interactive Python session with a model",
        description="Open a Python console with a model bound as clf: clf.train(it), "
        "y = clf.sample(n), play(y), live() (the model played as it generates, as the play command), "
        "show(y), heatmap(), save_file('a.wav', y), ... "
        "MODEL_OR_SOUND is a model file (.npz) to load (or a .pkl of the original blekota, "
        "converted once, beside it), or a sound file to learn with a new model built from the "
        "hyperparameters below; without it, a new model learns the built-in demo sound. "
        "The training options are those of train.",
        epilog=HYPERPARAMETERS + (
            "A new model whose name an earlier run's files use there trains as NAME-2 (NAME-3, ...); clf.train of\n"
            "an older checkpoint of a run writes over the run's later files (the opening line names them).\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    repl_parser.add_argument("source", nargs="?", metavar="MODEL_OR_SOUND", type=file_name, default=None, help="a model file to go on with, or a sound for a new model to learn (default: the built-in demo sound)")
    add_training_arguments(repl_parser, 0, "iterations to train before the prompt (default 0); --density plans its "
                                          "pruning over them, or when 0 over the first clf.train(n)")
    add_device_argument(repl_parser)
    add_model_arguments(repl_parser)
    add_threads_argument(repl_parser)

    demo_parser = commands.add_parser(
        "demo", help="train a small model on the built-in sound",
        description="Synthesize the built-in sound (a sung vowel with vibrato and pauses), train a "
        "small model on it for about a minute, save the model and a generated sound, and draw "
        "the generated sound beside the training sound.",
    )
    demo_parser.add_argument("--iterations", type=positive_int, default=DEMO_ITERATIONS, help=f"training iterations (default {DEMO_ITERATIONS}: about a minute on two cores; the same model on a busy machine, only later)")
    demo_parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the generated continuation (default 0)")
    demo_parser.add_argument("--out-dir", type=folder_name, default="blekota-demo", help="where files are written (default: blekota-demo)")
    add_threads_argument(demo_parser)
    demo_parser.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="the training products' operands rounded to bfloat16, as train does by default where they beat float32 "
             "(AMD Zen 4 and later, Intel Xeons with AMX); --no-bf16 trains in float32 (the same model on every CPU)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the command args.command names."""
    return {"repl": repl, "demo": demo}[args.command](args)


def repl(args: argparse.Namespace) -> int:
    """repl: the interactive session; returns the exit status (0)."""
    device.check("--device", args.device)
    model_options = dict(hidden=args.hidden, layers=args.layers, fs=args.fs, dtype=args.dtype,
                         seed=args.seed, threads=args.threads, frame=args.frame,
                         preemphasis=args.preemphasis)
    trainer_options = dict(new_trainer_options(args), seed=args.seed, directory=args.out_dir or ".",
                           checkpoint_sound=checkpoint_sound(args, args.fs), device=args.device,
                           **bf16_option(args))
    overrides = {}
    source = args.source
    if source is not None and (legacy.is_pickle(source) or modelfile.is_model_file(source)):
        source = model_path(source, lambda line: print(line, file=sys.stderr))
        loaded = modelfile.load(source)
        # refused as train refuses it, not opened for sampling only
        device.check_bf16("--bf16", bool(args.bf16), args.device, loaded)
        overrides = dict(resume_overrides(args, source, loaded), device=args.device, **bf16_option(args))
        directory = Path(overrides.get("directory", source.parent))
    else:
        if args.model_name:
            trainer_options["name"] = args.model_name
        directory = Path(trainer_options["directory"])
    prepare_directory(directory / split_name(args.model_name or "model")[0])
    callback = print_progress if verbosity(args) == NORMAL else TrainingDisplay(0, bar=False, verbosity=verbosity(args))
    with trainer_options_named():
        session, note = open_session(source, model_options, trainer_options, callback, overrides)
    if args.iterations:  # what was opened (and whose files training writes over) is said before it trains
        print(f"blekota {__version__}: {note}", file=sys.stderr, flush=True)
        session.train(args.iterations)
        trainer = session.trainer
        where = ", ".join(trainer.files) or "the built-in demo sound"
        note = f"{trainer.name} at iteration {trainer.iteration}, training on {where}"
    interact(session, note)
    return 0


def demo(args: argparse.Namespace) -> int:
    """demo: train a small model on the built-in sound, sample it and draw both (blekota.demo.run_demo);
    returns the exit status (0)."""
    display = ReaderWatch(print_progress)
    run_demo(Path(args.out_dir), args.iterations, args.threads, lambda line: print(line, flush=True), display,
             args.seed, **bf16_option(args))
    if display.gone and not display.hung_up:
        raise BrokenPipeError  # trained as far as it got, saved and drawn; end as main ends when the reader went away
    return 0
