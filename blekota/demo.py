"""The demo: its built-in training sound (a sung vowel with vibrato, a little melody with pauses,
made in code, so nothing is downloaded and nothing large is committed), and how the demo learns and
continues it (run_demo).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import device, plot
from .audio import save_wav
from .errors import BlekotaError, OverwriteWarning
from .fileutil import prepare_directory
from .drawing import describe_sampling
from .model import Model
from .progress import Progress
from .runfiles import RunFiles
from .soundstats import describe, loud_level
from .train import Trainer

# The demo's model and training, given to Model and Trainer explicitly (not their defaults).
# Eight streams of 200-sample windows: training deals the sound into batch_size streams that each
# carry their hidden state through consecutive windows, so 8 streams of the 8 s sound are ~0.95 s
# each and every stream hears whole notes with the pauses around them. With the usual 32+
# streams a stream never hears a whole 0.6 s note, and the model does not learn that notes end.
# No random gain: the demo's sound loops, so learning it by heart is the point. Input noise 1.5
# levels: a model taught only on the exact sound drifts into hiss once it hears its own draws
# (loud-frame flatness 0.021-0.024 in 20 of 20 draws on a version of this sound; 0.1-0.27 on the
# earlier one of steady notes); read with noise, it learns to come back (0.011-0.018 in 20 of 20:
# benchmarks/README.md, "The demo's sound").
DEMO_MODEL = {"hidden": 128, "layers": 2}
DEMO_TRAINING = {"seq_length": 200, "batch_size": 8, "optimizer": "adam", "lr": 4e-3,
                 "schedule": "constant", "random_gain_db": 0.0, "input_noise": 1.5}
# A number of iterations, not a time, so a busy machine gives the same model as a quiet one
# (about a minute on two cores). Fewer left more to the float sums' order: at 3500, 2 trainings
# of 9 missed the bar in 3-4 draws of 20 (benchmarks/README.md, "The demo's sound").
DEMO_ITERATIONS = 5000
# How the demo continues the sound: primed with its first note and the start of the pause after
# it (the model carries on the pause and sings on from there), each level drawn from the 12
# likeliest. top-k, unlike top-p and min-p, keeps the unlikely-but-second-best levels that start
# a note after a pause, while it cuts the tail of the distribution that is heard as hiss.
DEMO_HINT_SECONDS = 0.62
DEMO_SECONDS = 4.0
DEMO_SAMPLING = {"temperature": 1.0, "top_k": 12}

MELODY_HZ = (220.0, 247.0, 262.0, 294.0, 330.0, 294.0, 262.0, 247.0)
FORMANTS_HZ = ((700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0))  # an "ah": (center, width)


def demo_sound(fs: int = 8000, seconds: float = 8.0) -> np.ndarray:
    """A sung "ah" on a looping melody: (round(fs * seconds),) float32 in [-1, 1].

    Each note lasts 0.8 s: a 30 ms attack, then a voice with 5.5 Hz vibrato (2 % deep) that fades
    by 11 dB over 0.55 s and dies away in the next 0.25 s (another 43 dB, the last 5 ms to silence).
    Harmonics are weighted by three vowel formants. The loudness falling through every note and
    pause is what tells a model, which hears 25 ms at a time, how far into a note or a pause it
    is: with a steady note and a silent pause the model's notes and pauses ended by chance. The
    peak is at 0.9: at 0.6 some trainings took hundreds of iterations to start learning.
    """
    note_samples = int(0.8 * fs)
    t = np.arange(note_samples) / fs
    sung = t < 0.55
    envelope = np.minimum(1.0, t / 0.03) * np.exp(-np.minimum(t, 0.55) / 0.45)
    envelope[~sung] *= np.exp(-(t[~sung] - 0.55) / 0.05) * np.minimum(1.0, (t[-1] - t[~sung]) / 0.005)
    notes = []
    for index, f0 in enumerate(MELODY_HZ):
        frequency = f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 5.5 * t + index))
        phase = 2 * np.pi * np.cumsum(frequency) / fs
        voice = np.zeros(note_samples)
        for k in range(1, int(fs / 2 / (f0 * 1.03))):
            weight = 0.15 / k + sum(np.exp(-(((k * f0 - centre) / width) ** 2)) for centre, width in FORMANTS_HZ)
            voice += weight * np.sin(k * phase)
        notes.append(voice * envelope)
    melody = np.concatenate(notes)
    total = int(round(fs * seconds))
    sound = np.resize(melody, total)
    return (0.9 * sound / np.abs(sound).max()).astype(np.float32)


def note_changes(sound: np.ndarray, fs: int) -> int:
    """How often sound (n,) at fs Hz changes between a note and a pause: in 50 ms frames, a pause
    is at least 0.1 s of RMS below 0.02 and a note at least 0.2 s above it (shorter runs do not
    count)."""
    frame = round(0.05 * fs)
    frames = np.asarray(sound, np.float64)[: len(sound) // frame * frame].reshape(-1, frame)
    quiet = np.sqrt(np.mean(frames**2, axis=1)) < 0.02
    if quiet.size == 0:
        return 0
    starts = np.concatenate([[0], np.flatnonzero(quiet[1:] != quiet[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, [quiet.size]]))
    kinds = quiet[starts]
    kept = kinds[np.where(kinds, lengths >= 2, lengths >= 4)]
    return int(np.count_nonzero(kept[1:] != kept[:-1]))


def run_demo(directory: Path, iterations: int, threads: int | None, say: Callable[[str], None],
             callback: Callable[[Progress], None] | None = None, seed: int = 0,
             bf16: bool | str = device.AUTO) -> None:
    """Write the built-in sound into directory, train a small model on it for `iterations`, save
    the model and a generated continuation (drawn with `seed`), and draw the two side by side;
    after Ctrl+C (or SIGTERM) during training, only the model; a stop the callback asks for (by
    raising KeyboardInterrupt) still draws what was learned.
    say() is told each step in a line; callback gets the trainer's progress; bf16 is Trainer's
    (the products' precision: "auto", True or False)."""
    prepare_directory(directory)
    files = RunFiles(directory, "demo")
    outputs = [directory / name for name in ("demo_sound.wav", "demo_generated.wav", "demo_compare.png")]
    for path in outputs + [files.checkpoint_path(iterations), files.best_path(), files.log_path()]:
        if files.in_the_way(path):
            raise BlekotaError(f"{path}: not a file blekota wrote, and the demo would write there; "
                               "give the demo another --out-dir")
    files.log_path().unlink(missing_ok=True)  # an earlier demo's log: this run's starts afresh, as train --force's
    fs = 8000
    sound = demo_sound(fs)
    model = Model(**DEMO_MODEL, fs=fs, seed=0, threads=threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverwriteWarning)  # an earlier demo's files: each demo writes over them
        trainer = Trainer(
            model, sound, **DEMO_TRAINING, name="demo", checkpoint_every=0, directory=directory,
            callback=callback, seed=0, bf16=bf16,
        )
    sound_path = save_wav(outputs[0], sound, fs, mark=True)
    say(f"wrote {sound_path}: the built-in training sound ({sound.size / fs:.0f} s sung vowel at {fs} Hz)")
    before = trainer.validation_loss()
    how_long = " (about a minute on two cores)" if iterations == DEMO_ITERATIONS else ""
    say(f"training a {model.layers}x{model.hidden} GRU for {iterations} iterations{how_long}"
        f"{device.step_words(trainer)}; loss before: {before:.4f} nats/sample")
    result = trainer.train(iterations)
    if trainer.agreement.signalled():  # Ctrl+C: stop here, as train does, without drawing over an earlier demo's sound
        say(f"interrupted after {result.iterations} iterations: wrote {result.path} (the model); nothing generated")
        return
    after = trainer.validation_loss()
    hint = sound[: round(DEMO_HINT_SECONDS * fs)]
    generated = model.sample(round(DEMO_SECONDS * fs), seed=seed, hint=hint, **DEMO_SAMPLING)
    generated_path = save_wav(outputs[1], generated, fs, mark=True)
    made_up = describe(generated[hint.size :], fs, loud_level(sound, fs))
    source = describe(sound, fs)
    say(f"held-out loss before: {before:.4f}, after {result.iterations} iterations: {after:.4f} nats/sample")
    flatness = "- (none loud)" if np.isnan(made_up.flatness) else f"{made_up.flatness:.3f}"
    say(f"the made-up part ({describe_sampling(**DEMO_SAMPLING)}, seed {seed}): spectral flatness of loud "
        f"frames {flatness} (training sound {source.flatness:.3f}; white noise 1), quiet "
        f"frames {made_up.quiet_share:.0%} (training sound {source.quiet_share:.0%}), "
        f"{note_changes(generated[hint.size :], fs)} changes between notes and pauses (the training sound "
        f"goes on with {note_changes(sound[hint.size : generated.size], fs)})")
    say(f"wrote {result.path} (the model) and {generated_path}: {DEMO_SECONDS:g} s, the first "
        f"{DEMO_HINT_SECONDS:g} s from the training sound (a note and the start of a pause), the "
        f"rest generated (RMS {made_up.rms:.3f})")
    picture = plot.compare(sound, generated, fs, out=outputs[2])
    say(f"wrote {picture}: the generated sound beside the training sound (waveforms, spectrograms)")
