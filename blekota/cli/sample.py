"""python -m blekota sample: generate sound with a trained model, written (and played) as it
is generated."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from .. import modelfile, plot, sampler
from ..audio import ChunkPlayer, load_audio, wav_header
from ..encoding import SUFFIXES, encoding_for, sound_writer
from ..errors import BlekotaError
from ..fileutil import STDOUT, check_room, is_stream
from ..drawing import describe_sampling
from .options import (
    add_kernel_arguments, add_sampling_arguments, add_sound_device_argument, add_threads_argument, drawn_seed,
    file_name, model_path, non_negative_int, positive_float, positive_int, sampling_options, seed,
    use_kernel_arguments,
)
from .outputs import check_distinct, check_output, output_png

if TYPE_CHECKING:
    import argparse

HEATMAP_SAMPLES = 400  # drawn by sample --heatmap: 50 ms at 8 kHz, each sample visible
SAMPLE_CHUNK = 8000  # sample writes (and plays) the sound in chunks of this many samples
MAX_TAKES = 256  # sample --takes: files written at once
DEFAULT_SAMPLES = 8000  # sample without -n or --seconds


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The sample command's options."""
    sample_parser = commands.add_parser(
        "sample", help="generate sound with a trained model",
        description="Generate new sound sample by sample with a trained model.",
    )
    sample_parser.add_argument("model", metavar="MODEL", type=file_name, help="a model file (.npz) written by train, or a .pkl of the original blekota (converted once, beside it)")
    length = sample_parser.add_mutually_exclusive_group()
    length.add_argument("-n", type=non_negative_int, default=None, help=f"samples to generate, after the hint when there is one (default {DEFAULT_SAMPLES}: 1 s at 8 kHz)")
    length.add_argument("--seconds", type=positive_float, default=None, help="or seconds to generate, at the model's rate")
    sample_parser.add_argument("-o", "--output", type=file_name, default=None, help=f"the sound file to write, in the format its name ends with ({SUFFIXES}; 16-bit where the format has samples; default: MODEL_sample.wav); - writes a wav to standard output; a device or FIFO is written a wav as a stream")
    sample_parser.add_argument("--hint", metavar="FILE", type=file_name, default=None, help="a sound to start from: it is played into the model first, and the output is the hint (as the model hears it, mu-law quantized at its rate) followed by the -n samples that continue it")
    sample_parser.add_argument("--seed", type=seed, default=None, help="same seed, same sound")
    sample_parser.add_argument("--takes", type=positive_int, default=1, metavar="K", help=f"draw K different sounds at once, written as OUTPUT with _1 .. _K before its suffix (at most {MAX_TAKES}; from the same --hint; the same seed gives the same K takes, not the one sound of K = 1). Several streams share each read of the weights, and hear the hint once, so K takes come faster than K runs")
    sample_parser.add_argument("--play", action="store_true", help="also play the sound")
    add_sound_device_argument(sample_parser, "with --play: ")
    sample_parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    sample_parser.add_argument("--heatmap", metavar="PNG", type=file_name, default=None, help=f"also draw the probabilities {HEATMAP_SAMPLES} samples were drawn from into this PNG (from just before the hint ends)")
    add_kernel_arguments(sample_parser)
    add_sampling_arguments(sample_parser)
    add_threads_argument(sample_parser)


def cannot_play(message: str) -> None:
    """Playback is not possible: one line on stderr, and the sound is still written."""
    print(f"blekota: {message}", file=sys.stderr)


def take_paths(output: str, takes: int) -> list[str]:
    """The files `sample --takes` writes: output itself for one take, else output with _1 .. _K
    before its suffix (a.wav -> a_1.wav, a_2.wav, ...)."""
    if takes == 1:
        return [output]
    path = Path(output)
    return [str(path.with_name(f"{path.stem}_{take}{path.suffix}")) for take in range(1, takes + 1)]


def run(args: argparse.Namespace) -> int:
    """sample: generate sound from a model into a sound file (or standard output), optionally playing it and drawing
    a heatmap; returns the exit status (0)."""
    output = args.output or str(Path(args.model).with_name(Path(args.model).stem + "_sample.wav"))
    if args.takes > 1:
        if is_stream(output):
            raise BlekotaError(f"{output}: --takes writes one file per take; give -o a file name")
        if args.play:
            raise BlekotaError("--play plays one sound; leave out --takes, or --play and listen to the files")
        if args.takes > MAX_TAKES:
            raise BlekotaError(f"--takes: at most {MAX_TAKES}, got {args.takes}")
    if args.heatmap is not None and args.n == 0 and args.hint is None:
        raise BlekotaError("--heatmap: -n 0 without --hint makes no sound to draw; give -n or --hint")
    outputs = take_paths(output, args.takes)
    written = {f"-o (take {take})" if args.takes > 1 else "-o": path for take, path in enumerate(outputs, 1)}
    heatmap_file = None if args.heatmap is None or Path(args.heatmap).is_dir() else Path(args.heatmap)
    check_distinct({**written, "--heatmap": heatmap_file}, {"MODEL": args.model, "--hint": args.hint})
    for path in outputs:
        encoding_for(path, "-o")
        check_output(path, args.force)
    heatmap = output_png(args.heatmap, args.force, "--heatmap")
    streaming = is_stream(output) or (heatmap is not None and is_stream(heatmap))  # messages then go to stderr
    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if streaming else print
    model = modelfile.load(model_path(args.model, say), threads=args.threads)
    use_kernel_arguments(model, args)
    hint = load_audio(args.hint, model.fs)[0] if args.hint else None
    hinted = 0 if hint is None else hint.size
    n = samples_to_generate(args, model.fs)
    seed = drawn_seed(args.seed)
    total = hinted + n
    check_room(outputs, len(wav_header(model.fs, 0)) + 2 * total * (1 if encoding_for(output) is None else 2))
    begins = min(max(0, hinted - HEATMAP_SAMPLES // 10), max(0, total - HEATMAP_SAMPLES))
    window = slice(begins, begins + HEATMAP_SAMPLES)
    kept_sound, kept_probs = [], []
    start = time.perf_counter()
    # the files are complete before the player waits for the sound left to play: Ctrl+C while listening keeps them
    with ChunkPlayer(model.fs, args.play, cannot_play, args.sound_device) as player, ExitStack() as files, tqdm(
        total=total * args.takes, unit="sample", unit_scale=True, disable=not sys.stderr.isatty(), leave=False
    ) as bar:
        writers = [files.enter_context(sound_writer(path, model.fs, total)) for path in outputs]
        done = 0
        # the probabilities come for every take: in shorter chunks, they hold about what one take's would
        chunk = SAMPLE_CHUNK if heatmap is None else max(HEATMAP_SAMPLES, SAMPLE_CHUNK // args.takes)
        chunks = model.generate(total, chunk=chunk, hint=hint, seed=seed, streams=args.takes,
                                return_probs=heatmap is not None, **sampling_options(args))
        for chunk in chunks:
            sounds, probs = chunk if heatmap is not None else (chunk, None)
            sounds = np.reshape(sounds, (args.takes, -1))
            first = sounds[0]
            if probs is not None and done < window.stop and done + first.size > window.start:
                part = slice(max(window.start - done, 0), window.stop - done)
                kept_sound.append(first[part])
                kept_probs.append(np.reshape(probs, (args.takes, first.size, -1))[0, part])
            done += first.size
            for writer, sound in zip(writers, sounds):
                writer.write(sound)
            player.add(first, done / (time.perf_counter() - start))
            bar.update(sounds.size)
    elapsed = time.perf_counter() - start
    rate = total * args.takes / elapsed if elapsed > 0 else float("inf")
    where = "standard output" if output == STDOUT else output if args.takes == 1 else f"{outputs[0]} .. {outputs[-1]}"
    made = f"{n} samples ({n / model.fs:.2f} s) generated with --seed {seed}" if n else "nothing generated (-n 0)"
    if args.takes > 1:
        made = f"{args.takes} takes of {made}"
    if hint is not None:
        made = f"the hint ({hinted / model.fs:.2f} s), then {made}"
    kernel = sampler.kernel_for(model, args.takes)
    threads = "1 thread" if kernel not in ("dense", "bf16") or model.threads == 1 else f"{model.threads} threads"
    say(f"wrote {where}: {made}, in {elapsed:.2f} s ({rate:,.0f} samples/s, {kernel} kernel, {threads})")
    if heatmap is not None and kept_sound:
        sound, probs = np.concatenate(kept_sound), np.concatenate(kept_probs)
        path = plot.heatmap(probs, model.fs, sound, title=heatmap_title(outputs[0], args, begins, hinted, n, model.fs),
                            out=heatmap, first=begins, preemphasis=model.preemphasis)
        say(f"wrote {path}")
    return 0


def samples_to_generate(args: argparse.Namespace, fs: int) -> int:
    """The samples sample draws after the hint: -n, or --seconds at the model's rate fs (Hz, at
    least one sample), else DEFAULT_SAMPLES."""
    if args.seconds is not None:
        return max(1, round(args.seconds * fs))
    return DEFAULT_SAMPLES if args.n is None else args.n


def heatmap_title(output: str, args: argparse.Namespace, begins: int, hinted: int, n: int, fs: int) -> str:
    """The title of sample's heatmap from sample `begins` on, n samples drawn after the hint: the
    levels drawn, the model hearing the hint, or both."""
    sampling = describe_sampling(**sampling_options(args))
    if begins >= hinted:
        what = f"probability of each level ({sampling})"
    elif begins + HEATMAP_SAMPLES <= hinted or not n:
        what = "the model hearing the hint (nothing drawn)"
    else:
        what = f"hearing the hint until {hinted / fs:.3f} s, then drawing ({sampling})"
    return f"{Path(output).name}: {what}"
