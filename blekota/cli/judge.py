"""python -m blekota judge: how near made-up sound is to the sound it learned from, in numbers."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import checks, soundstats
from ..audio import load_audio
from ..errors import AudioError, BlekotaError, BlekotaWarning
from ..fileutil import input_problem, same_file
from .options import argument_type, file_name

if TYPE_CHECKING:
    import argparse

MIN_SECONDS = 1.0  # below this a sound has too few frames for the 40 bands' covariance
STEADY_SECONDS = 15.0  # less made-up sound than this in all, and its distance is a lottery
COLUMNS = (  # (heading, key, format): one row per sound
    ("distance", "fd", "{:.0f}"),
    ("floor", "floor", "{:.0f}"),
    ("average part", "fd_average", "{:.0f}"),
    ("quiet", "quiet_share", "{:.2f}"),
    ("loudness", "loudness", "{:.2f}"),
    ("bursts ms", "burst_ms", "{:.0f}"),
    ("pauses ms", "pause_ms", "{:.0f}"),
    ("flatness", "flatness", "{:.3f}"),
    ("variety dB", "variety_db", "{:.1f}"),
    ("voiced", "voiced_share", "{:.2f}"),
    ("pitch Hz", "pitch_hz", "{:.0f}"),
    ("pitch motion", "pitch_motion", "{:.2f}"),
)
MEANING = """\
distance: log-mel Fréchet distance to the source (32 ms frames, 40 bands); floor: the source's own
excerpts of that length against the rest of it (as near as real sound comes); average part: the part
of the distance from the average spectrum (the rest is from how the spectra vary). quiet: share of
frames below a tenth of the source's loud level; loudness: median frame level over that loud level;
bursts, pauses: median length of the runs of loud and of quiet frames; flatness: spectral flatness of
the loud frames (0 harmonics, 1 white noise); variety: how much the loud frames' spectra change from
frame to frame (each band's standard deviation, averaged; a drone or a steady hiss has little);
voiced: share of frames with a clear pitch (60-500 Hz); pitch motion: semitones per 10 ms."""
rate = argument_type(int, lambda name, value: checks.integer(name, value, soundstats.MIN_FS, checks.MAX_FS),
                     f"a sample rate in {soundstats.MIN_FS}..{checks.MAX_FS} Hz")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The judge command's options."""
    parser = commands.add_parser(
        "judge", help="measure how near made-up sound is to its source",
        description="Measure made-up sounds against the sound the model learned from: the log-mel "
        "Fréchet distance beside the source's own floor (and the part of it that is the average spectrum's), "
        "the share of quiet frames, the length of bursts and pauses, loudness, hiss (spectral flatness), "
        "how much the spectra vary, and pitch. One row per sound, and "
        "one for all of them together when there are several (bursts and pauses counted in each "
        "file apart). The first row is the source measured against itself.",
    )
    parser.add_argument("source", metavar="SOURCE", type=file_name, help="the real sound (any format libsndfile reads)")
    parser.add_argument("made", metavar="MADE", type=file_name, nargs="+", help="made-up sounds, e.g. what sample wrote")
    parser.add_argument("--fs", type=rate, default=None,
                        help="compare at this rate in Hz (default: the first MADE file's own; the others are resampled)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """judge: print the table (or JSON) on standard output; returns the exit status (0)."""
    problem = input_problem(args.source, "a sound file")  # SOURCE is read at MADE's rate, but named first
    if problem:
        raise AudioError(f"{args.source}: {problem}")
    for index, name in enumerate(args.made):
        twice = next((other for other in args.made[:index] if same_file(other, name)), None)
        if twice is not None:
            raise BlekotaError(f"{name}: given twice among MADE ({twice}); the row of all of them would count it twice")
    first, fs = load_audio(args.made[0], args.fs)
    if fs < soundstats.MIN_FS:
        raise AudioError(f"{args.made[0]}: {fs} Hz is too low a rate to judge at (at least {soundstats.MIN_FS} Hz); "
                         "give --fs")
    made = [(args.made[0], first)] + [(name, load_audio(name, fs)[0]) for name in args.made[1:]]
    for name, sound in made:
        long_enough(name, sound, MIN_SECONDS, fs)
    source = long_enough(args.source, load_audio(args.source, fs)[0], 2 * MIN_SECONDS, fs)
    seconds = sum(sound.size for _, sound in made) / fs
    if seconds < STEADY_SECONDS:
        warnings.warn(f"{seconds:.1f} s of made-up sound: the distance of a few seconds depends on what they hold "
                      f"(see the floor column); {STEADY_SECONDS:g} s or more in all judge steadily", BlekotaWarning)
    rows = judgements(source, made, fs, Path(args.source).name)
    if args.json:
        print(json.dumps({"fs": fs, "rows": [{key: None if isinstance(value, float) and math.isnan(value) else value
                                              for key, value in row.items()} for row in rows]}, indent=1))
    else:
        print(f"at {fs} Hz; distance of noise shaped like the source {rows[0]['ceiling']:.0f}, "
              f"of the source written in 256 mu-law levels {rows[0]['levels_floor']:.0f}")
        print(table(rows))
        print(MEANING)
    return 0


def long_enough(name: str, sound: np.ndarray, seconds: float, fs: int) -> np.ndarray:
    """sound, or an AudioError naming the file when it is shorter than `seconds`."""
    if sound.size < seconds * fs:
        raise AudioError(f"{name}: {sound.size / fs:.2f} s of sound is too short to judge (at least {seconds:g} s)")
    return sound


def judgements(source: np.ndarray, made: list[tuple[str, np.ndarray]], fs: int, source_name: str) -> list[dict]:
    """The rows: the source against itself (its floor, levels floor and shaped-noise ceiling at the
    made sounds' total length), each (name, sound) made against the source with the floor at its
    own length, and with several, all of them together."""
    together = sum(sound.size for _, sound in made)
    floor, levels_floor, ceiling = soundstats.distance_scale(source, fs, together)
    rows = [{"sound": f"{source_name} (source)", "fd": floor, "floor": floor, "fd_average": float("nan"),
             "levels_floor": levels_floor,
             "ceiling": ceiling, **soundstats.describe(source, fs).as_dict()}]
    groups = [(name, [sound]) for name, sound in made]
    if len(made) > 1:
        groups.append((f"all {len(made)}", [sound for _, sound in made]))
    for name, sounds in groups:
        length = sum(sound.size for sound in sounds)
        own_floor = floor if length == together else soundstats.distance_scale(source, fs, length)[0]
        rows.append({"sound": name, "floor": own_floor, **soundstats.judge(sounds, source, fs)})
    return rows


def table(rows: list[dict]) -> str:
    """The rows as columns aligned under their headings; "-" where a measure is not defined."""
    cells = [["sound"] + [heading for heading, _, _ in COLUMNS]]
    for row in rows:
        cells.append([row["sound"]] + ["-" if math.isnan(row[key]) else form.format(row[key])
                                       for _, key, form in COLUMNS])
    widths = [max(len(line[column]) for line in cells) for column in range(len(cells[0]))]
    return "\n".join("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(line, widths)))
                     for line in cells)
