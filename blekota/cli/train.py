"""python -m blekota train: train a model on sounds, or go on training one (--resume), in this
process or in several that an MPI launcher started."""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from contextlib import ExitStack, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkpoint, device, modelfile, parallel, tensorboard
from ..checks import MAX_NAME_BYTES, is_plain_name
from ..console import QUIET, VERBOSE, ReaderWatch, TrainingDisplay
from ..errors import (
    BlekotaError, BlekotaWarning, ModelFileError, OverwriteWarning, TrainingDiverged, command_word, one_line,
)
from ..fileutil import folders_undone_on_error, prepare_directory
from ..emphasis import emphasis_words
from ..frames import frame_words
from ..model import Model
from ..runfiles import RunFiles, default_name, file_names, run_lock, split_name
from ..sparsity import BLOCK_INPUTS, BLOCK_UNITS, END_SHARE, START_SHARE, reached_at
from ..train import Trainer
from .options import (
    HYPERPARAMETERS, add_device_argument, add_model_arguments, add_threads_argument, add_training_arguments,
    bf16_option, checkpoint_sound, file_name, folder_name, model_path, new_trainer_options, positive_float, resume_overrides,
    trainer_options_named, verbosity,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The train command's options."""
    train_parser = commands.add_parser(
        "train", help="train a model on a sound",
        description="Train a model on a sound file (any format libsndfile reads, any rate).",
        epilog=HYPERPARAMETERS + (
            "train refuses to start a new model over an earlier run's files of the same name, and to resume an\n"
            "older checkpoint of a run whose later files are still there (unless --force); and always to train a\n"
            "run while another train of it writes in that folder.\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_parser.add_argument("files", nargs="*", metavar="FILE", type=file_name, help="the sounds to learn: files, directories or globs")
    train_parser.add_argument("--resume", metavar="MODEL", type=file_name, default=None, help="continue training this model file (or a .pkl of the original blekota) exactly where it stopped")
    train_parser.add_argument("--force", action="store_true", help="train a new model even where an earlier run of the same name left its files: they are written over and the log starts afresh; with --resume, go on from a checkpoint older than the run's later files (NAME_N.npz, NAME_N.wav, NAME_best.npz) and write over them")
    add_training_arguments(train_parser, 10000, "iterations to run (default 10000)")
    train_parser.add_argument("--seconds", type=positive_float, default=None, help="stop after this many seconds of training and save, if --iterations are not done sooner (the default model does about 6-8 iterations a second on two cores with bfloat16 products, where they are faster: AMD Zen 4, Intel Xeons with AMX; and 2.4-4.0 in float32)")
    add_device_argument(train_parser)
    train_parser.add_argument("--tensorboard", metavar="DIR", type=folder_name, default=None, help="also write the run for TensorBoard in this folder (created): losses, learning rate and samples/s, and at each checkpoint its sound, loss curve and spectrogram; a resumed run appends (needs blekota[tensorboard]; watch with: tensorboard --logdir DIR)")
    add_model_arguments(train_parser)
    add_threads_argument(
        train_parser, "OMP_NUM_THREADS, else the CPUs this process may use, within a container's CPU quota; started "
        "by mpiexec or srun, a machine's cores divided among its processes",
    )


def run(args: argparse.Namespace) -> int:
    """Train in this process, or, started by an MPI launcher (mpiexec, srun) with others, train
    one model together with them: rank 0 alone prints; an error found by any process is printed
    once, by rank 0, and ends every process."""
    try:
        processes = parallel.from_launcher()
    except BlekotaError:
        if parallel.launcher_rank() != 0:
            return 2
        raise
    if processes.size == 1:
        with ExitStack() as held:
            return train(args, processes, held)
    try:
        with folders_undone_on_error(), ExitStack() as held:  # as main() does for one process: not raised to it
            return train(args, processes, held)
    except (BlekotaError, OSError, MemoryError) as error:
        lost = isinstance(error, parallel.ProcessLost)
        if processes.is_root or lost:
            print(f"blekota: error: {one_line(parallel.describe(error))}", file=sys.stderr, flush=True)
        if lost or not processes.stopped_together():
            processes.abort(2)  # other processes are waiting for this one: end them all
        return 2
    except KeyboardInterrupt:  # outside an update (starting, or after the last save)
        if not processes.stopped_together():  # another waits inside MPI for this one, and would for good
            if processes.is_root:
                print("blekota: interrupted", file=sys.stderr, flush=True)
            processes.abort(130)
            return 130  # MPICH's MPI_Abort may return before the launcher ends this process
        if processes.is_root:
            raise
        return 130


def prepare_resume(args: argparse.Namespace, say: Callable[[str], object]) -> tuple[Path, dict, list]:
    """(model file, Trainer.from_checkpoint overrides, sounds) for train --resume; converts a
    pickle of the original once and creates the folder files will be written in."""
    resume = model_path(args.resume, say)
    loaded = modelfile.read(resume)
    overrides = resume_overrides(args, resume, loaded.model)
    check_bf16_option(args, loaded.model)
    audio = checkpoint.resume_sounds(
        resume, loaded.info, args.files, f"give the sound: python -m blekota train --resume {command_word(args.resume)} SOUND"
    )
    folder, _ = split_name(overrides.get("name", "model"))
    prepare_directory(Path(overrides.get("directory", resume.parent)) / folder)
    return resume, overrides, audio


def check_bf16_option(args: argparse.Namespace, model: Model) -> None:
    """Refuse --bf16, naming it, where the bfloat16 products cannot train model on --device."""
    if args.bf16:
        device.check_bf16("--bf16", True, args.device, model)


def start_run(directory: Path, name: str, force: bool, held: ExitStack) -> None:
    """Create the folder a new run named name writes in and take the run's lock there (held till
    held closes); refuse to train over the files an earlier run of that name left there unless
    force (then its log starts afresh)."""
    folder, prefix = split_name(name)
    prepare_directory(directory / folder)
    held.enter_context(run_lock(directory / folder, prefix))
    files = RunFiles(directory / folder, prefix)
    earlier = files.earlier_run()
    if earlier and not force:
        names = file_names(earlier)
        models = [path for _, path in files.checkpoints() if path in earlier] or [
            path for path in earlier if path.suffix == modelfile.EXTENSION]
        # the last written: a run started over with --force can leave an older run's higher N
        newest = max(reversed(models), key=lambda path: path.stat().st_mtime_ns, default=None)
        resume = f"go on with it (train --resume {command_word(newest)}), " if newest else ""
        raise BlekotaError(
            f"{files.directory}: an earlier run of {prefix} left {names} here; {resume}give another "
            "--model-name, or --force to train over it"
        )
    if earlier:
        files.log_path().unlink(missing_ok=True)


def check_resume_point(trainer: Trainer, force: bool) -> None:
    """Refuse, unless force, to resume where the run's folder holds its files from after the
    resumed iteration (a later checkpoint, sound or best model), which it would write over."""
    files = RunFiles(trainer.directory, trainer.name)
    later = files.later_than(trainer.iteration, trainer.lineage())
    if not later or force:
        return
    names = file_names(later)
    newest = [path for path in later if path.suffix == modelfile.EXTENSION and path != files.best_path()]
    resume = f"resume the newest checkpoint (train --resume {command_word(newest[-1])}), " if newest else ""
    raise BlekotaError(
        f"{files.directory}: holds this run's files from after iteration {trainer.iteration} ({names}), which "
        f"resuming there would write over; {resume}give --model-name to branch off under another name, or "
        f"--force to go on from iteration {trainer.iteration} and write over them"
    )


def train(args: argparse.Namespace, processes: parallel.Processes, held: ExitStack) -> int:
    """command_train's work in one process (of one or several training together); rank 0 holds
    the run's lock (runfiles.run_lock) until held closes."""
    root = processes.is_root
    shown = QUIET if not root else verbosity(args)
    bar = root and sys.stdout.isatty() and not args.verbose
    display = ReaderWatch(TrainingDisplay(args.iterations, bar=bar, verbosity=shown))
    say = print if shown > QUIET else (lambda *_, **__: None)
    options = dict(callback=display if root else None, report_steps=bar, comm=processes, device=args.device,
                   **bf16_option(args))
    if not args.resume and not args.files:
        raise BlekotaError("train needs a sound FILE (or --resume MODEL)")
    device.check("--device", args.device, processes.size)
    if args.tensorboard:
        processes.from_root(lambda: tensorboard.check_folder(args.tensorboard, new_run=not args.resume))
    threads = args.threads or processes.default_threads()
    if args.resume:
        resume, overrides, audio = processes.from_root(lambda: prepare_resume(args, say))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OverwriteWarning)  # check_resume_point refuses, or --force says go on
            with trainer_options_named():
                trainer = Trainer.from_checkpoint(resume, audio=audio, threads=threads, **overrides, **options)
        processes.from_root(lambda: held.enter_context(run_lock(trainer.directory, trainer.name)))
        processes.from_root(lambda: check_resume_point(trainer, args.force))
        where = "" if trainer.continues_data else " (data or its layout changed: starting at the beginning of the data)"
        say(f"resuming {resume} at iteration {trainer.iteration}{where}", flush=True)
    else:
        name = args.model_name or default_name(args.files)
        if not args.model_name and not is_plain_name(name):
            raise BlekotaError(f"{args.files[0]}: a name too long to name the run's files after (at most "
                               f"{MAX_NAME_BYTES} bytes); give --model-name")
        directory = Path(args.out_dir or ".")
        trainer_options = dict(checkpoint_sound=checkpoint_sound(args, args.fs), **new_trainer_options(args))
        processes.from_root(lambda: start_run(directory, name, args.force, held))
        model = processes.together(lambda: Model(
            hidden=args.hidden, layers=args.layers, fs=args.fs, dtype=args.dtype,
            seed=args.seed, threads=threads, frame=args.frame, preemphasis=args.preemphasis,
        ))
        check_bf16_option(args, model)
        with trainer_options_named(), warnings.catch_warnings():
            warnings.simplefilter("ignore", OverwriteWarning)  # start_run refused, or --force says go on
            trainer = Trainer(model, args.files, name=name, directory=directory, seed=args.seed, **trainer_options,
                              **options)
    model = trainer.model
    fs = model.fs
    files = trainer.files
    what = files[0] if len(files) == 1 else f"{len(files)} sounds" if files else "audio"
    threads = f"{model.threads} thread{'s' if model.threads > 1 else ''}"
    shared = f" shared by {processes.size} processes of {threads}" if processes.size > 1 else ""
    unused = trainer.layout.left_out_words(fs)
    say(
        f"training {model.layers}x{model.hidden} GRU{frame_words(model)}{emphasis_words(model)} ({model.n_params:,} parameters, "
        f"{model.dtype.name}, {fs} Hz) on {what}: {trainer.layout.samples / fs:.1f} s of sound in "
        f"{trainer.batch_size} streams{shared}{unused}, {trainer.val_samples / fs:.1f} s held out"
        f"{device.step_words(trainer)}; log {trainer.log_path()}",
        flush=True,
    )
    if trainer.random_gain_db and trainer.val_samples:
        say(f"random gain {trainer.random_gain_db:g} dB: the training loss is taken on louder and softer copies of the "
            "sound, the validation loss on the sound as recorded, so validation often reads lower", flush=True)
    if shown >= VERBOSE:
        for name, size in zip(files, trainer.data.sizes):
            print(f"  {name}: {size / fs:.1f} s", flush=True)
    pruning = trainer.pruning
    if pruning.active:
        pruning.plan(trainer.iteration, args.iterations, args.seconds)
        sooner = (f" (sooner if {START_SHARE:.0%} and {END_SHARE:.0%} of --seconds pass first)"
                  if pruning.clock else "")
        say(f"block-sparse: density {pruning.density:g} of the recurrent weights' {BLOCK_UNITS}x{BLOCK_INPUTS} "
            f"blocks, reached from iteration {pruning.start} to {pruning.end}{sooner}, blocks chosen every "
            f"{pruning.every}", flush=True)
        last = trainer.iteration + args.iterations
        if root and pruning.end > last and not pruning.clock:  # once, not in every process of an MPI run
            warnings.warn(f"this run ends at iteration {last} (--iterations {args.iterations}), before the density is "
                          f"reached at {pruning.end}: the model it saves is denser (train --resume goes on)",
                          BlekotaWarning)
    started = trainer.iteration
    timed = pruning.active and pruning.clock is not None  # the clock may bring the pruning forward
    board = tensorboard.TensorBoard(args.tensorboard, trainer) if args.tensorboard else nullcontext()
    if args.tensorboard:
        say(f"TensorBoard events in {args.tensorboard}: watch with tensorboard --logdir {args.tensorboard}", flush=True)
    try:
        with board:
            trainer.train(args.iterations, max_seconds=args.seconds)
    except TrainingDiverged as error:
        raise BlekotaError(f"{error}; a lower --alpha may help") from None
    except BlekotaError as error:
        if trainer.iteration == started:
            raise
        raise BlekotaError(f"{error}; {rescue(trainer)}") from None
    finally:
        display.close()
    if timed and root and reached_at(trainer.model.info) is None:
        warnings.warn(f"this run ended at iteration {trainer.iteration}, before the density {pruning.density:g} was "
                      f"reached (at iteration {pruning.end}): the model it saved is denser (train --resume goes on)",
                      BlekotaWarning)
    if display.gone and not display.hung_up:
        raise BrokenPipeError  # the model is saved; end as main ends when the reader went away (status 141)
    return 0


def rescue(trainer: Trainer) -> str:
    """Save the trained model in a new folder of the system's temporary directory after training
    stopped with an error (the final save failed); says where (or that this failed too)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="blekota-"))
    except OSError as error:
        return f"saving it in the temporary folder failed too ({error.strerror or error})"
    try:
        path = trainer.save(folder / trainer.checkpoint_path().name)
    except ModelFileError as error:
        with suppress(OSError):
            folder.rmdir()  # it holds nothing
        return f"saving it in the temporary folder failed too ({error})"
    return f"saved it as {path} instead"
