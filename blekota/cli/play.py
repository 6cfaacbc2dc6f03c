"""python -m blekota play: generate straight to the sound device in real time, with temperature,
top-k and smoothing on keys of the terminal, and record what it plays; python -m blekota sound-devices:
the sound output devices play can use."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING, TextIO

from .. import checks, devices, live, modelfile, sampler
from ..audio import load_audio
from ..encoding import SUFFIXES, encoding_for, sound_recorder
from ..errors import BlekotaError
from ..fileutil import is_stream
from ..keys import KEYS_HELP, MIN_VOLUME_DB, VOLUME_STEP_DB, Controls, KeyReader, apply_key
from ..stream import Stream
from .options import (
    add_kernel_arguments, add_sampling_arguments, add_sound_device_argument, add_threads_argument, argument_type,
    drawn_seed, file_name, model_path, positive_float, sampling_options, seed, use_kernel_arguments,
)
from .outputs import check_distinct, check_output

if TYPE_CHECKING:
    import argparse

    from ..model import Model

TICK_S = 0.05  # how often keys are read and the status line is redrawn
block_size = argument_type(int, lambda name, value: live.block_size(value, name),
                           f"an integer in {live.MIN_BLOCK}..{live.MAX_BLOCK}")
blocks_ahead = argument_type(int, lambda name, value: live.blocks_ahead(value, name), f"an integer in 1..{live.MAX_AHEAD}")
volume_db = argument_type(float, lambda name, value: checks.number(name, value, MIN_VOLUME_DB, 0.0),
                          f"a number of dB in {MIN_VOLUME_DB:g}..0")
device_rate = argument_type(int, lambda name, value: devices.device_rate(value, name),
                            f"a sample rate in {devices.MIN_RATE}..{devices.MAX_RATE} Hz")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The play command's options."""
    parser = commands.add_parser(
        "play", help="play a model live through the sound device",
        description="Generate sound with a trained model straight to the sound device, in real time, until q, Ctrl+C or "
                    f"--seconds. Keys change it while it plays ({KEYS_HELP.removeprefix('keys: ')}).",
    )
    parser.add_argument("model", metavar="MODEL", type=file_name, help="a model file (.npz) written by train, or a .pkl of the original blekota (converted once, beside it)")
    parser.add_argument("--block", type=block_size, default=256, help=f"samples per block the device takes, {live.MIN_BLOCK}..{live.MAX_BLOCK} (default 256: 32 ms at 8 kHz); smaller: keys are heard sooner, gaps are likelier")
    parser.add_argument("--ahead", type=blocks_ahead, default=2, help="blocks kept ready before the device needs them (default 2); more: fewer gaps on a busy machine, keys heard later")
    parser.add_argument("--seconds", type=positive_float, default=None, help="stop after this many seconds of sound (default: until q or Ctrl+C)")
    parser.add_argument("--hint", metavar="FILE", type=file_name, default=None, help="a sound the model hears first, without playing it: the sound starts where the hint leaves off, and r goes back there")
    parser.add_argument("--seed", type=seed, default=None, help="same seed, same sound (until a key changes it)")
    parser.add_argument("--record", metavar="FILE", type=file_name, default=None, help=f"also write what is played to this sound file ({SUFFIXES}, by its name), at the model's rate, as it plays (the model's sound: gaps where the machine fell behind are left out); it is complete when play stops, by q, Ctrl+C or --seconds")
    parser.add_argument("--force", action="store_true", help="overwrite the --record file if it exists")
    parser.add_argument("--volume", type=volume_db, default=0.0, metavar="DB", help=f"the volume to start at, in dB of the model's sound, {MIN_VOLUME_DB:g}..0 (default 0; the keys 0 and 9 change it by {VOLUME_STEP_DB:g} dB); --record keeps the model's own sound")
    add_sound_device_argument(parser)
    parser.add_argument("--sound-rate", type=device_rate, default=None, metavar="HZ", help="the rate the device runs at; the sound is resampled to it (default: the model's rate where the device takes it, else the device's own rate)")
    add_sampling_arguments(parser, "at the start: the keys change temperature, top-k and smoothing")
    add_kernel_arguments(parser)
    add_threads_argument(parser)

    commands.add_parser("sound-devices", help="list the sound output devices play can use",
                        description="List the sound output devices play --sound-device can use: number, name, host API, "
                                    "channels and default rate; * marks the default.")


class StatusLine:
    """The settings and progress on one line that is redrawn, on a terminal; elsewhere a line
    each time the settings change."""

    def __init__(self, out: TextIO):
        self.out = out
        self.terminal = out.isatty()
        self.settings: str | None = None
        self.drawn = False

    def show(self, settings: str, progress: str) -> None:
        if self.terminal:
            self.out.write(f"\r{settings}  {progress}\x1b[K")
            self.out.flush()
            self.drawn = True
        elif settings != self.settings:
            print(settings, file=self.out, flush=True)
        self.settings = settings

    def say(self, line: str) -> None:
        """A line of its own, above the status line."""
        self.close()
        print(line, file=self.out, flush=True)

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False


def run(args: argparse.Namespace) -> int:
    """Run the command args.command names."""
    return list_devices(args) if args.command == "sound-devices" else play(args)


def list_devices(args: argparse.Namespace) -> int:
    """sound-devices: list the sound output devices; returns the exit status (0)."""
    found = devices.output_devices()
    if not found:
        print("no sound output device here")
        return 0
    print("sound output devices (* the default; play --sound-device takes the number or a part of the name):")
    for device in found:
        mark = "*" if device["default"] else " "
        print(f"{mark} {device['index']:>3}  {device['name']} ({device['host']}), {device['max_output_channels']} "
              f"channels, {device['default_samplerate']:,.0f} Hz")
    return 0


def play(args: argparse.Namespace) -> int:
    """play: play the model live until q, Ctrl+C or --seconds; returns the exit status (0)."""
    open_device = live.output_stream_class()  # before anything else: no sounddevice, no play
    device_name = None if args.sound_device is None else devices.device_info(args.sound_device)["name"]
    if args.record is not None:
        if is_stream(args.record):
            raise BlekotaError(f"{args.record}: --record writes a file, not a stream (a recording is complete only when play stops)")
        check_distinct({"--record": args.record}, {"MODEL": args.model, "--hint": args.hint})
        encoding_for(args.record, "--record")
        check_output(args.record, args.force)
    model = modelfile.load(model_path(args.model, print), threads=args.threads)
    use_kernel_arguments(model, args)
    hint = load_audio(args.hint, model.fs)[0] if args.hint else None
    args.seed = drawn_seed(args.seed)  # said as it starts, and again at each r: a take found can be played again
    stream = model.stream(seed=args.seed, hint=hint, **sampling_options(args))
    limit = None if args.seconds is None else max(1, round(args.seconds * model.fs))
    recorder = None if args.record is None else sound_recorder(args.record, model.fs)
    status = StatusLine(sys.stdout)
    try:
        with recorder or nullcontext():
            player = live.LivePlayer(stream, args.block, args.ahead, limit, output_stream=open_device,
                                     device=args.sound_device, rate=args.sound_rate, recorder=recorder)
            player.gain = Controls(volume_db=args.volume).gain  # from the first block the device takes
            play_with_keys(player, stream, status, args, model.fs, device_name, faster_options(model))
    finally:
        if recorder is not None and recorder.saved:
            print(f"recorded {recorder.frames / model.fs:.1f} s to {args.record}", flush=True)
    return 0


def faster_options(model: Model) -> str:
    """What to try when `model` cannot keep up with real time, for the kernel it samples with."""
    kernel = sampler.kernel_for(model, 1)
    if kernel in ("int8", "sparse"):  # one thread, already the fastest for this model
        return "a larger --ahead, or a smaller model"
    lighter = "--int8" if kernel == "bf16" else "--bf16 or --int8 (faster on one core)"
    return f"{lighter}, --threads, a larger --ahead, or a smaller model"


def play_with_keys(player: live.LivePlayer, stream: Stream, status: StatusLine, args: argparse.Namespace, fs: int,
                   device_name: str | None, faster: str) -> None:
    """Play until q, Ctrl+C or --seconds, saying how it is set up and, at the end, how it went;
    the recorder (if any) keeps what was played."""
    try:
        with player:
            on = "" if device_name is None else f" on {device_name}"
            resampled = f" (resampled to the device's {player.device_fs} Hz)" if player.resampled else ""
            print(f"playing {args.model} with --seed {args.seed} at {fs} Hz{on}{resampled}: blocks of {args.block} samples "
                  f"({1000 * player.block_latency_s:.1f} ms), {args.ahead} ready ahead, device latency "
                  f"{1000 * player.device_latency_s:.1f} ms; a key is heard after about "
                  f"{1000 * player.change_latency_s:.0f} ms", flush=True)
            with KeyReader() as keys:
                if keys.background:
                    print("in the background of its terminal: no keys (it stops at --seconds, kill, or Ctrl+C after fg)", flush=True)
                else:
                    print(KEYS_HELP if keys.interactive else f"{KEYS_HELP} (standard input is not a terminal: "
                          "type them and Enter)", flush=True)
                perform(player, stream, keys, status, faster, args.volume)
    finally:
        status.close()
        if player.played:
            print(player.summary())
        if player.recorder is not None:
            player.recorder.keep(player.recorded_samples)


def perform(player: live.LivePlayer, stream: Stream, keys: KeyReader, status: StatusLine, faster: str,
            volume_db: float = 0.0) -> None:
    """Play until q or the --seconds are over, starting at volume_db (dB): apply the keys, show the
    settings, and say once when the model cannot keep up with real time (and `faster`: what to try)."""
    fs = stream.fs
    controls = Controls(stream.settings["temperature"], stream.settings["top_k"], stream.settings["smooth"], volume_db)
    player.gain = controls.gain
    top_p, min_p = stream.settings["top_p"], stream.settings["min_p"]  # no key changes these
    cuts = (f", top-p {top_p:g}" if top_p < 1 else "") + (f", min-p {min_p:g}" if min_p > 0 else "")
    warned = False
    while True:
        player.check()
        rate = player.samples_per_s
        if not warned and rate is not None and player.generated >= fs // 2 and rate < fs:
            status.say(f"this machine makes {rate:,.0f} samples/s with this model, below the {fs:,} real time "
                       f"needs: expect gaps (try {faster})")
            warned = True
        status.show(f"{controls}{cuts}", f"{player.played_s:7.1f} s  underruns {player.underruns.total}")
        if player.finished.is_set():
            return
        for key in keys.read(TICK_S):
            controls, action = apply_key(key, controls)
            if action == "quit":
                return
            if action == "reset":
                seed = drawn_seed(None)
                stream.reset(seed)
                status.say(f"from the start again with --seed {seed}")
            if action == "help":
                status.say(KEYS_HELP)
            stream.set(temperature=controls.temperature, top_k=controls.top_k, smooth=controls.smooth)
            player.gain, player.paused = controls.gain, controls.paused

