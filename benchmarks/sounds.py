"""Test sounds for the quality benchmark, made on the spot so that nothing large is committed.

speech: espeak-ng reading SPEECH_TEXT (about a minute), resampled to 8 kHz; needs the espeak-ng
        program (Debian: apt-get install espeak-ng).
music:  a minute of plucked-string chords under a melody, with rests, synthesized in NumPy
        (Karplus-Strong strings), so it needs nothing but NumPy.

The defaults were chosen on those two. UNSEEN holds two more made only after the defaults were
fixed, to check them on sounds they were not tuned on:

speech2: another text (SPEECH2_TEXT) in another voice (espeak-ng en-gb-x-rp, a little faster).
music2:  a minute of organ-like melody (additive partials, legato, vibrato) over a bass line in
         a minor key, with noise-burst percussion on the beats and rests: nothing plucked.

LONG holds one longer sound, to tell what more data does (the others are about a minute each):

speech_long: speech2's voice and pace reading SPEECH2_TEXT, SPEECH_TEXT and LONG_TEXT: about 3.5
             minutes, its held-out last 10 % from LONG_TEXT.

    python benchmarks/sounds.py OUT_DIR            # writes the five to OUT_DIR
    python benchmarks/sounds.py OUT_DIR music     # only music.wav
"""

from __future__ import annotations

import argparse
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
SPEECH2_TEXT = (
    "My grandfather kept bees behind the railway cutting, in a row of white hives that leaned "
    "a little further every year. On summer evenings he would lift the lids without gloves and "
    "talk to the swarm in a low voice, as if reporting the news of the village. He told them "
    "about weddings, about the price of coal, about the new schoolteacher who rode a motorcycle. "
    "When he died, my mother walked down the garden in her good coat and knocked three times on "
    "every hive, because that was the custom, and the bees had to be told. For a week the garden "
    "was strangely quiet. Then one warm morning the humming came back, louder than before, and "
    "the jars on the kitchen shelf filled up again with honey the colour of old brass. We still "
    "have one of his notebooks. It lists the weather, the flowers in bloom, and the weight of "
    "each hive, in a careful hand, with a small drawing of a bee at the top of every page, "
    "including the last one, which is otherwise empty."
)
LONG_TEXT = (
    "The night train to the north leaves at ten, from the last platform, where the roof ends and "
    "the rain comes in sideways. Most of the passengers are asleep before the suburbs are behind "
    "them. A conductor in a faded blue jacket walks the corridor with a torch, checking tickets "
    "by its light and humming a tune nobody else seems to know. In the dining car two engineers "
    "argue about a bridge they built twenty years ago, drawing its arches on a paper napkin, "
    "crossing them out, drawing them again. Outside, the lights of small stations flash past: a "
    "water tower, a closed kiosk, a dog asleep under a bench. Around two in the morning the train "
    "stops in the middle of a forest for no reason anyone explains. The engine ticks as it cools. "
    "Somebody opens a window and the smell of pine and wet earth fills the carriage. An owl calls, "
    "and from far away another answers. After twenty minutes the brakes sigh, the couplings clank "
    "one after another down the whole length of the train, and the forest begins to move again. "
    "By dawn the fields are white with frost and the rivers run fast and brown with melted snow. "
    "A woman in the third carriage unpacks a loaf of dark bread, a jar of pickled mushrooms and "
    "a thermos of sweet tea, and offers them to everyone in the compartment without a word. The "
    "students by the door accept, then the soldier, then at last the old man who has been reading "
    "the same page of his newspaper since midnight. They eat in silence, watching the mountains "
    "rise at the edge of the plain, blue at first, then grey, then white at the top. When the "
    "train finally arrives, late by three hours, nobody complains. They step down onto the "
    "platform into air so cold it makes them laugh, and for a moment, before they scatter into "
    "the town, they stand together as if they had travelled much further than they have."
)
CHORDS = ((48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50), (50, 53, 57), (52, 55, 59))
MELODY = (60, 62, 64, 65, 67, 69, 71, 72, 74, 76)


class Unavailable(Exception):
    """A sound that cannot be made on this machine (a missing program)."""


def speech(path: Path, voice: str = "en-us", words_per_minute: int = 150, text: str = SPEECH_TEXT) -> Path:
    """espeak-ng reading `text`, at 8 kHz mono: about 65 s for SPEECH_TEXT."""
    if shutil.which("espeak-ng") is None:
        raise Unavailable("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    import blekota

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
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


def speech2(path: Path) -> Path:
    """espeak-ng reading SPEECH2_TEXT in the en-gb-x-rp voice at 165 words per minute: about 60 s."""
    return speech(path, voice="en-gb-x-rp", words_per_minute=165, text=SPEECH2_TEXT)


def speech_long(path: Path) -> Path:
    """speech2's voice and pace reading SPEECH2_TEXT, SPEECH_TEXT and LONG_TEXT: about 3.5 minutes."""
    text = " ".join((SPEECH2_TEXT, SPEECH_TEXT, LONG_TEXT))
    return speech(path, voice="en-gb-x-rp", words_per_minute=165, text=text)


def organ_note(frequency: float, seconds: float) -> np.ndarray:
    """A sustained organ-like tone with slow vibrato, soft attack and release: float64, peak <= 1."""
    t = np.arange(int(round(seconds * FS))) / FS
    phase = 2 * np.pi * np.cumsum(frequency * (1 + 0.006 * np.sin(2 * np.pi * 4.8 * t))) / FS
    tone = sum(np.sin(k * phase) / k**1.3 for k in range(1, int(FS / 2 / frequency)))
    envelope = np.minimum(1.0, np.minimum(t / 0.04, (t[-1] - t) / 0.08 + 1e-9))
    return tone * envelope / 2.2


def music2(path: Path, seconds: float = 60.0, seed: int = 7) -> Path:
    """Organ-like melody over a bass line in A minor with noise-burst beats and rests: 8 kHz mono."""
    import blekota

    rng = np.random.default_rng(seed)
    scale = (57, 59, 60, 62, 64, 65, 67, 69, 71, 72)
    bass_notes = (45, 41, 48, 43)
    beat = 0.3
    out = np.zeros(int(seconds * FS) + FS)
    position, bar = 0.0, 0
    while position < seconds:
        bass = bass_notes[bar % len(bass_notes)]
        start = int(position * FS)
        bar_tone = organ_note(440.0 * 2 ** ((bass - 69) / 12), 4 * beat)
        out[start : start + bar_tone.size] += 0.35 * bar_tone
        step = 0.0
        while step < 4 * beat - 1e-9:
            length = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
            if rng.random() < 0.85:
                note = organ_note(440.0 * 2 ** ((scale[rng.integers(len(scale))] - 69) / 12), length)
                at = start + int(step * FS)
                out[at : at + note.size] += 0.5 * note
            step += length
        for k in range(4):
            at = start + int(k * beat * FS)
            burst = rng.standard_normal(int(0.05 * FS)) * np.exp(-np.arange(int(0.05 * FS)) / (0.008 * FS))
            out[at : at + burst.size] += 0.25 * burst
        position += 4 * beat
        bar += 1
        if rng.random() < 0.25:
            position += 2 * beat  # a rest
    sound = out[: int(seconds * FS)]
    return blekota.save_wav(path, (0.8 * sound / np.abs(sound).max()).astype(np.float32), FS)


MAKERS = {"speech": speech, "music": music}
UNSEEN = {"speech2": speech2, "music2": music2}
LONG = {"speech_long": speech_long}
ALL = {**MAKERS, **UNSEEN, **LONG}


def make(name: str, directory: Path) -> Path:
    """directory/NAME.wav (a name in ALL), made unless it is already there."""
    path = directory / f"{name}.wav"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ALL[name](path)
    return path


def pair(unseen: bool, directory: Path) -> list[str]:
    """The tuning pair (or with unseen the unseen pair) made in directory, as paths; a sound that
    cannot be made here is left out with a line saying why."""
    paths = []
    for name in UNSEEN if unseen else MAKERS:
        try:
            paths.append(str(make(name, directory)))
        except Unavailable as reason:
            print(f"# no {name} sound: {reason}")
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=".", help="where to write them (default: here)")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"which to make (default all: {', '.join(ALL)})")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in ALL]
    if unknown:
        parser.error(f"no sound named {', '.join(unknown)} (there are {', '.join(ALL)})")
    for sound in args.names or ALL:
        try:
            print(make(sound, Path(args.out_dir)))
        except Unavailable as error:
            sys.exit(f"sounds.py: {sound}: {error}")
