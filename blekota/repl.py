"""The interactive session: a Python console with a model, its trainer and the pictures at hand.

    python -m blekota repl [MODEL_OR_SOUND] [hyperparameters]

Binds clf (a Session), play, live, show, heatmap, spectrogram, compare, loss_curve, save_file,
load_file and np, as the original blekota did at its Python prompt (live: as the play command). Nothing here
breaks the session for lack of a display or a sound card: pictures go to PNG files and playback to
last_played.wav instead (live says in one line that it cannot play).
"""

from __future__ import annotations

import code
import os
import signal
import sys
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import checkpoint, checks, legacy, modelfile, plot
from .live import LivePlayer
from ._version import __version__
from .audio import WAV_MAX_FRAMES, PlaybackError, load_audio, save_wav
from .audio import play as play_sound
from .demo import demo_sound
from .device import step_words
from .emphasis import deemphasize
from .encoding import save_sound, sound_recorder
from .errors import BlekotaError, OverwriteWarning
from .fileutil import same_file
from .drawing import SMOOTH, WAKE
from .model import Model
from .mulaw import unquantize
from .progress import Progress
from .runfiles import RunFiles, default_name, file_names
from .train import Trainer

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell
    from numpy.typing import ArrayLike

    from .dataset import Sounds

BANNER = """\
blekota {version}: {description}
  clf.train(it)                 train it iterations (Ctrl+C stops early and saves)
  y = clf.sample(n, hint=None, temperature=1.0, seed=None)   generate n samples
                                (also top_k=0, top_p=1.0, min_p=0.0, smooth=0.3, wake=0.2: see help(clf.sample))
  clf.checkpoint(n)             save the model, and n generated samples as a wav
  play(y)  show(y)  spectrogram(y)  compare()   (the last sample vs the training sound)
  live(seconds=None, block=256, ahead=2)   play the model as it generates (Ctrl+C stops)
                                (also temperature, top_k, top_p, min_p, smooth, wake, seed, hint: as clf.sample;
                                record="take.wav" keeps what it plays, device= picks the output)
  heatmap(start=0, length=1000) what the model expected during the last sample
  loss_curve()                  training (and validation) loss so far
  save_file("name.wav", y)      y = load_file("name.wav")   clf.model, clf.trainer, np are here too"""


class Session:
    """A model, the trainer that teaches it (None when its training sound is gone), and the
    last sound sampled with the probabilities it was drawn from.

    model_path: the model file it came from, if any, for set_audio; callback: the trainer's
    progress reports; overrides: Trainer.from_checkpoint options set_audio uses with model_path.
    """

    def __init__(
        self,
        model: Model,
        trainer: Trainer | None = None,
        model_path: str | os.PathLike | None = None,
        callback: Callable[[Progress], None] | None = None,
        overrides: dict | None = None,
    ):
        self.model = model
        self.trainer = trainer
        self.model_path = None if model_path is None else Path(model_path)
        self.callback = callback
        self.overrides = dict(overrides or {})
        self.last_sound: np.ndarray | None = None
        self.last_probs: np.ndarray | None = None

    def __repr__(self) -> str:
        if self.trainer is None:
            where = "nothing"
        else:
            where = ", ".join(self.trainer.files) or "a sound in memory"
        return f"<Session: {self.model!r} training on {where}>"

    @property
    def fs(self) -> int:
        """The model's sample rate in Hz."""
        return self.model.fs

    @property
    def training_sound(self) -> np.ndarray:
        """The sound being learned, (n,) floats at fs (as quantized for training, and filtered
        back when the model hears it pre-emphasized)."""
        data = self._need_trainer().data
        sound = unquantize(data.levels)
        if self.model.preemphasis:
            for start, stop in zip(data.offsets[:-1].tolist(), data.offsets[1:].tolist()):
                sound[start:stop] = deemphasize(sound[start:stop], self.model.preemphasis)
        return sound

    def _need_trainer(self) -> Trainer:
        if self.trainer is None:
            raise BlekotaError(
                "this model has no training sound here; give one with clf.set_audio('sound.wav')"
            )
        return self.trainer

    def set_audio(self, audio: Sounds) -> None:
        """Train on these sounds from now on: what Trainer takes (a file, a list of files, a
        directory, a glob, or (n,) floats at fs)."""
        if self.trainer is not None:
            self.trainer.set_audio(audio)
        elif self.model_path is not None:
            self.trainer = Trainer.from_checkpoint(
                self.model_path, audio=audio, callback=self.callback, threads=self.model.threads,
                **self.overrides,
            )
            self.model = self.trainer.model
        else:
            self.trainer = Trainer(self.model, audio, name="session", callback=self.callback)

    def train(self, iterations: int) -> None:
        """Train for `iterations` iterations; Ctrl+C stops after the current one. Either way
        the model is saved as NAME_N.npz (N: iterations so far). Progress goes to the callback.
        SIGTERM or a hang-up stops it too, and once the model is saved SIGTERM ends the process."""
        if self._need_trainer().train(iterations).terminated:
            signal.raise_signal(signal.SIGTERM)

    def sample(
        self,
        n: int = 8000,
        hint: str | os.PathLike | ArrayLike | None = None,
        temperature: float = 1.0,
        seed: int | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        smooth: float = SMOOTH,
        wake: float = WAKE,
    ) -> np.ndarray:
        """Generate n samples, (n,) float32 in [-1, 1] at fs. hint: a sound (floats at fs or a
        file path) the output starts with. temperature, top_k, top_p, min_p, smooth, wake: as
        Model.sample (lower temperature, top_k, top_p or higher min_p: safer, less varied;
        smooth: how far each sample is written towards the step's mean; wake: seconds of silence
        before the model hears it as faint noise). Keeps the sound
        and the probabilities it was drawn from (last_sound, last_probs (n, 256)) for heatmap()."""
        if isinstance(hint, (str, os.PathLike)):
            hint = load_audio(hint, self.fs)[0]
        sound, probs = self.model.sample(
            n, temperature=temperature, hint=hint, seed=seed, return_probs=True, top_k=top_k,
            top_p=top_p, min_p=min_p, smooth=smooth, wake=wake,
        )
        self.last_sound, self.last_probs = sound, probs
        return sound

    def checkpoint(self, n: int = 0) -> list[Path]:
        """Save the model as NAME_N.npz and, when n > 0, n generated samples as NAME_N.wav.
        Returns the paths written. Raises BlekotaError, writing nothing, when a file blekota did
        not write is under either name."""
        n = checks.integer("n", n, 0, WAV_MAX_FRAMES)
        if self.trainer is not None:
            return self.trainer.checkpoint(n)
        files = RunFiles(".", self.model_path.stem if self.model_path else "session")
        iterations = self.model.info.get("iterations", 0)
        model_path, sound_path = files.checkpoint_path(iterations), files.sound_path(iterations)
        for path in [model_path] + [sound_path] * (n > 0):
            files.claim(path)
        paths = [self.model.save(model_path)]
        if n > 0:
            paths.append(save_wav(sound_path, self.model.sample(n), self.fs, mark=True))
        return paths


def open_session(
    source: str | os.PathLike | None,
    model_options: dict,
    trainer_options: dict,
    callback: Callable[[Progress], None] | None = None,
    overrides: dict | None = None,
) -> tuple[Session, str]:
    """A Session from a model file (.npz), a model pickled by the original blekota (converted
    once to a model file beside it, see blekota.legacy.converted), a sound file (a new model),
    or None (a new model on the built-in demo sound), and one line saying what was opened.

    model_options: Model arguments (hidden, layers, fs, dtype, seed, threads); only threads is
    used for a model file. trainer_options: Trainer arguments for a new model (seq_length,
    batch_size, optimizer, lr, seed, name, directory, checkpoint_every, device, ...); the name
    defaults to the sound's, or for a directory or a glob the directory's, as train names it.
    overrides: Trainer.from_checkpoint options for a model file (device, lr, ...; a model file
    goes on writing beside itself unless they give a directory).
    """
    threads = model_options.get("threads")
    overrides = dict(overrides or {})
    converted = ""
    if source is not None and legacy.is_pickle(source):
        path, written = legacy.converted(source)
        converted = (f"converted {source} (a model of the original blekota; nothing in it was run) to {path}; "
                     if written else f"{source} was converted earlier to {path}; ")
        source = path
    if source is not None and modelfile.is_model_file(source):
        try:
            audio = checkpoint.training_sounds(source, modelfile.read(source).info)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OverwriteWarning)  # the note below says it
                trainer = Trainer.from_checkpoint(source, audio=audio, callback=callback, threads=threads, **overrides)
        except BlekotaError as error:
            model = modelfile.load(source, threads=threads)
            note = (f"{converted}loaded {source}; it samples, but cannot train here: {error} "
                    "(clf.set_audio('sound.wav') gives it a sound to train on)")
            return Session(model, None, source, callback, overrides), note
        where = ", ".join(trainer.files)
        note = f"{converted}loaded {source} at iteration {trainer.iteration}, training on {where}{step_words(trainer)}"
        later = RunFiles(trainer.directory, trainer.name).later_than(trainer.iteration, trainer.lineage())
        if later:
            note += f"; clf.train writes over this run's later files here ({file_names(later)})"
        return Session(trainer.model, trainer, source, callback, overrides), note
    model = Model(**model_options)
    if source is None:
        audio, name, what = demo_sound(model.fs), "demo", "the built-in demo sound"
    else:
        audio, name, what = source, default_name([str(source)]), source
    options = {"name": name, **trainer_options}
    wanted = options["name"]
    options["name"] = fresh_name(Path(options.get("directory", ".")), wanted)
    trainer = Trainer(model, audio, callback=callback, **options)
    note = (
        f"new {model.layers}x{model.hidden} GRU ({model.n_params:,} parameters, {model.fs} Hz) "
        f"on {what}: {trainer.data.levels.size / model.fs:.1f} s of sound{step_words(trainer)}"
    )
    if options["name"] != wanted:
        note += f"; an earlier run of {wanted} left its files here, so this one is {options['name']}"
    return Session(model, trainer, None, callback), note


def fresh_name(directory: Path, name: str) -> str:
    """name, or else name-2, name-3, ...: the first under which no earlier run left files in
    directory (see RunFiles.earlier_run), so a new session never trains over them."""
    folder, _, prefix = name.rpartition("/")
    candidate, number = prefix, 1
    while RunFiles(directory / folder, candidate).earlier_run():
        number += 1
        candidate = f"{prefix}-{number}"
    return f"{folder}/{candidate}" if folder else candidate


def _report(path: Path | None) -> None:
    if path is not None:
        print(f"wrote {path}")


def session_namespace(session: Session) -> dict:
    """The names the console binds: clf, the pictures (defaulting to the last sample), play,
    live, save_file, load_file and np."""

    def pick(sound, what: str):
        if isinstance(sound, (str, os.PathLike)):
            raise BlekotaError(f"{what} takes a sound (an array of samples), not a file name: "
                               f"read the file first, y = load_file({os.fspath(sound)!r})")
        if sound is not None:
            return sound
        if session.last_sound is None:
            raise BlekotaError("nothing sampled yet: y = clf.sample(8000)")
        return session.last_sound

    def not_trained_on(file: str | os.PathLike, what: str) -> str | os.PathLike:
        """file, unless it is a sound the session trains on (written over, the trainer's next run
        would read another sound)."""
        trained_on = session.trainer.files if session.trainer is not None else []
        if isinstance(file, (str, os.PathLike)) and any(same_file(file, sound) for sound in trained_on):
            raise BlekotaError(f"{os.fspath(file)}: is a sound this session trains on, so it is left as it is; "
                               f"give {what} another file")
        return file

    def play(sound=None, fs: int | None = None) -> None:
        """Play a sound (default: the last sample); without a sound card, save last_played.wav."""
        try:
            play_sound(pick(sound, "play"), session.fs if fs is None else fs, blocking=False)
        except PlaybackError as error:
            print(error)

    def live(
        seconds: float | None = None,
        block: int = 256,
        ahead: int = 2,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        seed: int | None = None,
        hint: str | os.PathLike | ArrayLike | None = None,
        smooth: float = SMOOTH,
        wake: float = WAKE,
        record: str | os.PathLike | None = None,
        device: int | str | None = None,
    ) -> None:
        """Play the model through the sound device as it generates, for `seconds` of sound or until
        Ctrl+C, then say how long it played, the underruns and the latency (as the play command,
        without keys). block: samples per block the device takes (64..512); ahead: blocks kept
        ready. temperature, top_k, top_p, min_p, smooth, wake, seed, hint: as clf.sample. record: also
        write what is played to this file, a wav or another format by its name (as play --record; a
        file there is replaced); device:
        the output device, its number or a part of its name (default: the system's). Without a
        sound device it says so in one line."""
        limit = None if seconds is None else max(1, round(checks.positive_float("seconds", seconds) * session.fs))
        if isinstance(hint, (str, os.PathLike)):
            hint = load_audio(hint, session.fs)[0]
        stream = session.model.stream(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                      seed=seed, hint=hint, smooth=smooth, wake=wake)
        recorder = None if record is None else sound_recorder(not_trained_on(record, "record"), session.fs)
        with recorder or nullcontext():
            player = LivePlayer(stream, block, ahead, limit, device=device, recorder=recorder)
            try:
                with player:
                    player.wait()
            except PlaybackError as error:
                print(error)
            except KeyboardInterrupt:
                pass
            if recorder is not None:
                recorder.keep(player.recorded_samples)
        if player.played:
            print(f"{player.summary()}; latency about {1000 * player.change_latency_s:.0f} ms ({player.ahead} blocks "
                  f"of {player.block} samples ready ahead, the one being made, the device's "
                  f"{1000 * player.device_latency_s:.1f} ms)")
        if recorder is not None and recorder.saved:
            print(f"recorded {recorder.frames / session.fs:.1f} s to {record}")

    def show(sound=None, fs: int | None = None, out=None) -> None:
        """The waveform of a sound (default: the last sample)."""
        _report(plot.show(pick(sound, "show"), session.fs if fs is None else fs, out=out, block=False))

    def spectrogram(sound=None, fs: int | None = None, out=None) -> None:
        """The spectrogram of a sound (default: the last sample)."""
        _report(plot.spectrogram(pick(sound, "spectrogram"), session.fs if fs is None else fs, out=out, block=False))

    def compare(training=None, generated=None, fs: int | None = None, out=None) -> None:
        """A training sound and a generated one side by side (default: the last sample, and as
        much of clf.training_sound, from its start)."""
        generated = pick(generated, "compare")
        if training is None:
            training = session.training_sound[: max(len(generated), session.fs // 10)]
        training = pick(training, "compare")
        _report(plot.compare(training, generated, session.fs if fs is None else fs, out=out, block=False))

    def heatmap(start: int = 0, length: int = 1000, out=None) -> None:
        """The probabilities the last sample was drawn from, samples start..start+length."""
        if session.last_probs is None:
            raise BlekotaError("nothing sampled yet: y = clf.sample(8000)")
        _report(plot.heatmap(session.last_probs, session.fs, session.last_sound,
                             start=start, length=length, out=out, block=False,
                             preemphasis=session.model.preemphasis))

    def loss_curve(log=None, out=None) -> None:
        """Loss against iterations: of this session's training, or of a log/model info given."""
        if log is None:
            log = session.trainer.info() if session.trainer else session.model.info
        _report(plot.loss_curve(log, out=out, block=False))

    def save_file(file: str | os.PathLike, sound=None, fs: int | None = None) -> None:
        """Save a sound (default: the last sample) as a 16-bit wav file, or in the format the file's
        name says (.flac, .ogg, .mp3, ...: blekota.save_sound); never over a sound the session trains on."""
        sound = pick(sound, "save_file")
        _report(save_sound(not_trained_on(file, "save_file"), sound, session.fs if fs is None else fs))

    def load_file(file: str | os.PathLike) -> np.ndarray:
        """A sound file (any format libsndfile reads) as samples at the model's rate, mixed to mono."""
        return load_audio(file, session.fs)[0]

    return {
        "clf": session, "play": play, "live": live, "show": show, "spectrogram": spectrogram,
        "compare": compare, "heatmap": heatmap, "loss_curve": loss_curve,
        "save_file": save_file, "load_file": load_file, "np": np,
    }


def error_line(error: BaseException | None) -> str | None:
    """The one line the session shows for blekota's own errors (bad input) and failed file
    operations (a missing folder, a full disk); None for any other error, shown with its traceback."""
    if isinstance(error, BlekotaError):
        return f"error: {error}"
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"error: {where}{error.strerror}"
    return None


class Console(code.InteractiveConsole):
    """The standard console, but the errors error_line knows are one line, no traceback."""

    def showtraceback(self) -> None:
        line = error_line(sys.exc_info()[1])
        if line is None:
            super().showtraceback()
        else:
            self.write(f"{line}\n")


def errors_in_one_line(shell: InteractiveShell) -> None:
    """Have an IPython shell show the errors error_line knows in one line, as Console does."""

    def show(shell: InteractiveShell, etype, value, tb, tb_offset=None) -> list[str] | None:
        line = error_line(value)
        if line is not None:
            print(line, file=sys.stderr)
            return None
        lines = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        shell._showtraceback(etype, value, lines)
        return lines

    shell.set_custom_exc((BlekotaError, OSError), show)


def interact(session: Session, note: str) -> None:
    """Run the console until end of input: IPython when installed and stdin is a terminal,
    else the standard library's console (at a terminal, with line editing: edit_lines)."""
    namespace = session_namespace(session)
    banner = BANNER.format(version=__version__, description=note)
    if sys.stdin.isatty():
        try:
            from IPython.terminal.ipapp import TerminalIPythonApp
        except ImportError:
            pass
        else:
            print(banner)
            app = TerminalIPythonApp.instance(user_ns=namespace, display_banner=False)
            app.initialize(argv=[])
            errors_in_one_line(app.shell)
            app.start()
            return
        edit_lines(namespace)
    Console(namespace).interact(banner=banner, exitmsg="")


def edit_lines(namespace: dict) -> None:
    """At a terminal, the standard console's lines as python's own prompt has them: editing,
    history (the arrow keys) and Tab completing the names of namespace (where readline exists)."""
    try:
        import readline
        import rlcompleter
    except ImportError:
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    libedit = "libedit" in (readline.__doc__ or "")
    readline.parse_and_bind("bind ^I rl_complete" if libedit else "tab: complete")
