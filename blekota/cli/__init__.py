"""The command line: python -m blekota train | sample | play | sound-devices | plot | judge | info | import-legacy |
export | repl | demo.

Thin: parse, call the library, report. COMMANDS maps each command to the module that holds its
options (add_parser) and its work (run); the options several share are in blekota.cli.options.
Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
import warnings
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from .. import _gru, parallel
from .._version import __version__
from ..errors import BlekotaError, one_line
from ..fileutil import folders_undone_on_error, write_nowhere
from ..interrupts import SIGHUP, heeded, leave_terminal, restore, terminal_gone
from . import judge, modelfiles, play, plot, sample, session, train
from .options import Parser, warn_threads

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO

BAD_INPUT = 2
INTERRUPTED, TERMINATED, HUNG_UP, READER_GONE = 130, 143, 129, 141  # 128 + the signal, as a shell reports it
COMMANDS = {
    "train": train,
    "sample": sample,
    "play": play,
    "sound-devices": play,
    "plot": plot,
    "judge": judge,
    "info": modelfiles,
    "import-legacy": modelfiles,
    "export": modelfiles,
    "repl": session,
    "demo": session,
}


def version_line() -> str:
    """The version and what the compiled core runs here: its CPU level and whether training takes
    the bfloat16 products by default (on AMX tiles where they run there; `train --no-bf16`:
    float32), or only when asked (`--bf16`, where they are no faster than float32)."""
    if _gru.bf16_by_default():
        extra = ", bfloat16 products in training" + (" on AMX tiles" if _gru.amx_products() else "")
    else:
        extra = ", bfloat16 products with --bf16" if _gru.bf16_products() else ""
    return f"blekota {__version__} ({_gru.cpu_level()} kernels{extra})"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, in the order of COMMANDS."""
    parser = Parser(
        prog="python -m blekota",
        description="Learn how a sound continues and generate new sound from it, sample by sample.",
    )
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):
        module.add_parser(commands)
    return parser


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """Warnings as one line on stderr."""
    print(f"blekota: warning: {one_line(str(message))}", file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl+C so that every file being written is cleaned up."""


class HungUp(Terminated):
    """SIGHUP (the terminal closed), raised like SIGTERM; the terminal's output goes nowhere after it."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While a command runs in the main thread, SIGTERM raises Terminated and SIGHUP HungUp, unless
    ignored (nohup) (training defers them and Ctrl+C to the end of the current update instead). Not
    for the interactive session, whose console would take them for Ctrl+C at its prompt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        if signum == SIGHUP:
            leave_terminal()
            raise HungUp
        raise Terminated

    previous = {sig: signal.signal(sig, terminate) for sig in heeded((signal.SIGTERM, SIGHUP))}
    try:
        yield
    finally:
        restore(previous)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted, 143
    terminated, 129 hung up, 141 when the reader of standard output went away)."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # file names that are not valid text still print
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    size, variable = parallel.launcher_size()
    if args.command != "train" and size > 1:  # each process would do the same work and write the same files
        if parallel.launcher_rank() == 0:
            print(f"blekota: error: {args.command} runs in one process; only train runs over MPI ({variable}={size} "
                  "here): start it without mpiexec or srun", file=sys.stderr)
        return BAD_INPUT
    try:
        with warnings.catch_warnings(), terminate_as_interrupt() if args.command != "repl" else nullcontext():
            warnings.showwarning = show_warning
            warn_threads(args)
            with folders_undone_on_error():
                return COMMANDS[args.command].run(args)
    except BlekotaError as error:
        print(f"blekota: error: {one_line(str(error))}", file=sys.stderr)
        return BAD_INPUT
    except BrokenPipeError:  # the reader went away (| head): quietly, as command-line tools do
        write_nowhere([sys.stdout.fileno()])  # nothing more can reach the closed pipe
        return READER_GONE
    except OSError as error:
        if error.errno == errno.EIO and terminal_gone():  # the terminal hung up before its SIGHUP came
            leave_terminal()
            return HUNG_UP
        where = f"{error.filename}: " if error.filename else ""
        print(f"blekota: error: {one_line(f'{where}{error.strerror or error}')}", file=sys.stderr)
        return BAD_INPUT
    except MemoryError:
        print("blekota: error: not enough memory for this (a smaller model, batch or sound needs less)", file=sys.stderr)
        return BAD_INPUT
    except HungUp:  # no one to tell
        return HUNG_UP
    except Terminated:
        print("blekota: terminated", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        print("blekota: interrupted", file=sys.stderr)
        return INTERRUPTED
