"""python -m blekota plot waveform | spectrogram | heatmap | loss | compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import legacy, modelfile, plot
from ..audio import load_audio
from ..errors import BlekotaError
from ..fileutil import is_stream
from ..drawing import describe_sampling
from ..model import Model
from ..mulaw import SILENCE, quantize
from .options import (
    add_sampling_arguments, add_threads_argument, file_name, non_negative_int, positive_int, rate, read_model,
    sampling_options, seed,
)
from .outputs import check_distinct, output_png

HEARD_WINDOW = 8000  # plot heatmap SOUND --start: the samples before it are heard this many at a time
INPUTS = {"sound": "SOUND", "model": "MODEL", "log": "MODEL_OR_LOG", "training": "TRAINING_SOUND",
          "generated": "GENERATED_SOUND"}  # the files the kinds of plot read, by dest


def add_parser(commands: argparse._SubParsersAction) -> None:
    """python -m blekota plot waveform | spectrogram | heatmap | loss | compare."""
    plot_parser = commands.add_parser(
        "plot", help="draw a sound, a model's expectations or a loss curve",
        description="Draw a picture: in a window when there is a display and no -o, else into "
        "a PNG file (-o, or NAME.png, NAME-2.png, ... here, never overwriting).",
    )
    kinds = plot_parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    def kind(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = kinds.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        parser.add_argument(
            "-o", "--output", type=file_name, default=None, metavar="PNG",
            help=f"the PNG file to write, or a folder to write {name}.png in ({name}-2.png, ... if taken)",
        )
        parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
        return parser

    for name, help_text in (("waveform", "the waveform of a sound file against time"),
                            ("spectrogram", "the spectrogram of a sound file")):
        parser = kind(name, help_text)
        parser.add_argument("sound", metavar="SOUND", type=file_name, help="a sound file (any format libsndfile reads)")
        parser.add_argument("--fs", type=rate, default=None, help="resample to this rate in Hz first (default: the file's own)")
    heatmap = kind(
        "heatmap", "the probabilities a model gives each of the 256 levels, sample by sample: "
        "while it listens to SOUND, or while it generates when no SOUND is given",
    )
    heatmap.add_argument("model", metavar="MODEL", type=file_name, help="a model file (.npz), or a .pkl of the original blekota")
    heatmap.add_argument("sound", metavar="SOUND", type=file_name, nargs="?", default=None, help="a sound file for the model to listen to (default: it generates)")
    heatmap.add_argument("-n", type=positive_int, default=1000, help="samples shown: of SOUND as the model listens, or generated (default 1000)")
    heatmap.add_argument("--start", type=non_negative_int, default=0, help="first sample shown; the model hears or makes all before it (default 0)")
    heatmap.add_argument("--seed", type=seed, default=None, help="when generating: same seed, same sound")
    add_sampling_arguments(heatmap, "when generating")
    add_threads_argument(heatmap)
    loss = kind("loss", "training and validation loss against iterations")
    loss.add_argument("log", metavar="MODEL_OR_LOG", type=file_name, help="a model file (.npz) or a training log (NAME.log.jsonl)")
    compare = kind("compare", "two sounds side by side: waveforms and spectrograms")
    compare.add_argument("training", metavar="TRAINING_SOUND", type=file_name, help="the sound a model learned from")
    compare.add_argument("generated", metavar="GENERATED_SOUND", type=file_name, help="a sound it generated")
    compare.add_argument("--fs", type=rate, default=8000, help="rate both are resampled to, in Hz (default 8000)")


def _heard(model: Model, sound: np.ndarray, start: int = 0) -> tuple[int, np.ndarray]:
    """(first, (n - first, 256) probabilities) the model gives samples first.. of sound (n,) while
    it listens: row t its distribution for sample first + t, having heard the samples before it
    (silence before 0). first is start, or up to a frame tier's frame before it; what comes
    before first is heard in windows of about HEARD_WINDOW samples, keeping no probabilities."""
    levels = quantize(model.heard(sound))
    inputs = np.concatenate([[SILENCE], levels[:-1]]).astype(np.uint8)
    step = model.frame or 1  # a frame tier's frames start with each window
    first, window = start // step * step, max(1, HEARD_WINDOW // step) * step
    h = None
    for at in range(0, first, window):
        part = inputs[at : min(first, at + window)]
        h = model.window(np.concatenate([part, [SILENCE]])[:, None], h)[1]  # the last row is only a target
    return first, model.probabilities(inputs[first:, None], h)[:, 0]


def run(args: argparse.Namespace) -> int:
    """plot: draw the picture args.kind names, in a window or a PNG; returns the exit status (0)."""
    inputs = {metavar: getattr(args, dest) for dest, metavar in INPUTS.items() if hasattr(args, dest)}
    check_distinct({"-o": None if args.output is None or Path(args.output).is_dir() else Path(args.output)}, inputs)
    out = output_png(args.output, args.force, "-o")
    if args.kind in ("waveform", "spectrogram"):
        sound, fs = load_audio(args.sound, args.fs)
        draw = plot.show if args.kind == "waveform" else plot.spectrogram
        path = draw(sound, fs, title=Path(args.sound).name, out=out)
    elif args.kind == "heatmap":
        model = read_model(args.model, threads=args.threads).model
        stop, begin = args.start + args.n, 0  # begin: probs[0]'s sample
        if args.sound:
            sound = load_audio(args.sound, model.fs)[0][:stop]
            if sound.size <= args.start:
                raise BlekotaError(f"{args.sound}: has {sound.size} samples at {model.fs} Hz, fewer than --start {args.start} + 1")
            begin, probs = _heard(model, sound, max(0, args.start - 1))  # from one sample before, as when generating
            sound, title = sound[begin:], f"{Path(args.model).name} listening to {Path(args.sound).name}"
        else:
            begin, at, kept = max(0, args.start - 1), 0, []  # from one sample before: a pre-emphasized dot needs it
            for chunk, chunk_probs in model.generate(stop, seed=args.seed, return_probs=True, **sampling_options(args)):
                if at + chunk.size > begin:  # only what is drawn is kept, not all that is made before it
                    kept.append((chunk[max(0, begin - at):], chunk_probs[max(0, begin - at):]))
                at += chunk.size
            sound, probs = (np.concatenate(parts) for parts in zip(*kept))
            title = f"{Path(args.model).name} generating ({describe_sampling(**sampling_options(args))})"
        path = plot.heatmap(probs, model.fs, sound, start=args.start - begin, length=args.n, title=title, out=out,
                            first=begin, preemphasis=model.preemphasis)
    elif args.kind == "loss":
        log = args.log
        if modelfile.is_model_file(log) or legacy.is_pickle(log):
            log = read_model(log).info
        try:
            path = plot.loss_curve(log, title=f"loss of {Path(args.log).name}", out=out)
        except BlekotaError as error:
            if log is args.log:  # a log file: the message names it
                raise
            raise type(error)(f"{args.log}: {error}") from None
    else:
        training, fs = load_audio(args.training, args.fs)
        generated, _ = load_audio(args.generated, args.fs)
        path = plot.compare(training, generated, fs, out=out)
    if path is not None:
        print(f"wrote {path}", file=sys.stderr if is_stream(path) else sys.stdout)
    return 0
