"""The built-in training sound: a sung vowel with vibrato, a little melody with pauses.

Made in code, so the demo needs no download and nothing large is committed.
"""

from __future__ import annotations

import numpy as np

MELODY_HZ = (220.0, 247.0, 262.0, 294.0, 330.0, 294.0, 262.0, 247.0)
FORMANTS_HZ = ((700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0))  # an "ah": (center, width)


def demo_sound(fs: int = 8000, seconds: float = 8.0) -> np.ndarray:
    """A sung "ah" on a looping melody: (round(fs * seconds),) float32 in [-1, 1].

    Each note lasts 0.8 s: 0.6 s of voice with 5.5 Hz vibrato (2 % deep), soft attack and
    release, then 0.2 s of silence. Harmonics are weighted by three vowel formants.
    """
    note_samples = int(0.8 * fs)
    voiced = int(0.6 * fs)
    t = np.arange(voiced) / fs
    envelope = np.minimum(1.0, np.minimum(t / 0.03, (t[-1] - t) / 0.06))
    notes = []
    for index, f0 in enumerate(MELODY_HZ):
        frequency = f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 5.5 * t + index))
        phase = 2 * np.pi * np.cumsum(frequency) / fs
        voice = np.zeros(voiced)
        for k in range(1, int(fs / 2 / (f0 * 1.03))):
            weight = 0.15 / k + sum(np.exp(-(((k * f0 - centre) / width) ** 2)) for centre, width in FORMANTS_HZ)
            voice += weight * np.sin(k * phase)
        note = np.zeros(note_samples)
        note[:voiced] = voice * envelope
        notes.append(note)
    melody = np.concatenate(notes)
    total = int(round(fs * seconds))
    sound = np.resize(melody, total)
    return (0.6 * sound / np.abs(sound).max()).astype(np.float32)
