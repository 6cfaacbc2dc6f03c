"""Test sounds for the quality benchmark, made on the spot so that nothing large is committed.

speech: espeak-ng reading SPEECH_TEXT (about a minute), resampled to 8 kHz; needs the espeak-ng
        program (Debian: apt-get install espeak-ng).
music:  a minute of plucked-string chords under a melody, with rests, synthesized in NumPy
        (Karplus-Strong strings), so it needs nothing but NumPy.

    python benchmarks/sounds.py OUT_DIR      # writes OUT_DIR/speech.wav and OUT_DIR/music.wav
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FS = 8000
SPEECH_TEXT = (
    "The old harbour town wakes slowly in winter. Fishermen mend their nets by the grey stone "
    "wall while gulls argue over the morning catch. A baker opens his shutters and the smell of "
    "warm bread drifts down the narrow street toward the water. Children run past with their "
    "satchels, shouting to each other about a dog that chased a bicycle yesterday. At the end of "
    "the pier an old woman sells coffee from a small wooden cart, and the sailors line up in "
    "silence, holding their cups with both hands against the cold wind. By noon the fog has "
    "lifted and the islands appear one by one, dark shapes against a pale sky. Somebody starts "
    "an engine, then another, and soon the whole bay hums with boats heading out past the "
    "lighthouse. In the evening they return, heavy and slow, their decks covered with silver "
    "fish and tangled ropes. The lamps are lit along the quay, music comes from the tavern, and "
    "the town settles into the long quiet night that belongs to the sea."
)
CHORDS = ((48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50), (50, 53, 57), (52, 55, 59))
MELODY = (60, 62, 64, 65, 67, 69, 71, 72, 74, 76)


class Unavailable(Exception):
    """A sound that cannot be made on this machine (a missing program)."""


def speech(path: Path, voice: str = "en-us", words_per_minute: int = 150) -> Path:
    """espeak-ng reading SPEECH_TEXT, at 8 kHz mono: about 65 s."""
    if shutil.which("espeak-ng") is None:
        raise Unavailable("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    import blekota

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), SPEECH_TEXT],
                       check=True, capture_output=True)
        samples, _ = blekota.load_audio(raw, FS)
    return blekota.save_wav(path, samples, FS)


def pluck(midi_note: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One Karplus-Strong plucked string: (round(seconds * FS),) float64, peak about 1."""
    frequency = 440.0 * 2 ** ((midi_note - 69) / 12)
    period = max(2, int(round(FS / frequency)))
    n = int(round(seconds * FS))
    out = np.empty(n + period)
    out[:period] = rng.uniform(-1, 1, period)
    for start in range(period, n + period, period):
        previous = out[start - period : start]
        following = np.append(previous[1:], previous[0])
        stop = min(start + period, n + period)
        out[start:stop] = (0.996 * 0.5 * (previous + following))[: stop - start]
    return out[period:]


def music(path: Path, seconds: float = 60.0, seed: int = 1) -> Path:
    """Plucked chords (0.5-1.5 s each) under a melody note, with short rests: 8 kHz mono."""
    import blekota

    rng = np.random.default_rng(seed)
    parts, total = [], 0.0
    while total < seconds:
        duration = float(rng.choice([0.5, 1.0, 1.0, 1.5]))
        chord = CHORDS[rng.integers(len(CHORDS))] + (MELODY[rng.integers(len(MELODY))],)
        block = sum(pluck(note, duration, rng) for note in chord)
        fade = np.minimum(1.0, (duration - np.arange(block.size) / FS) / (0.4 * duration))
        parts.append(0.5 * block * fade / np.abs(block).max())
        total += duration
        if rng.random() < 0.2:
            parts.append(np.zeros(FS // 4))
            total += 0.25
    return blekota.save_wav(path, np.concatenate(parts).astype(np.float32), FS)


MAKERS = {"speech": speech, "music": music}


def make(name: str, directory: Path) -> Path:
    """directory/NAME.wav, made unless it is already there."""
    path = directory / f"{name}.wav"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        MAKERS[name](path)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for sound in MAKERS:
        print(make(sound, out))
