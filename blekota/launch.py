"""The command line's start, for python -m blekota and the installed `blekota` command: Ctrl+C
while NumPy, SciPy and the compiled core load (about half a second) is held until they have (an
import cut short fails with a traceback of its own, NumPy's ImportError), and a BLEKOTA_CPU the
kernels cannot run at is one line; then blekota.cli.main."""

import signal
import sys

from .errors import BlekotaError


def run() -> int:
    """Load the command line and run it on sys.argv; returns the exit status (see blekota.cli.main;
    2 for a bad BLEKOTA_CPU, 130 for Ctrl+C while loading)."""
    heard_ctrl_c = []
    holding = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not where SIGINT is ignored
    if holding:
        signal.signal(signal.SIGINT, lambda signum, frame: heard_ctrl_c.append(signum))
    try:
        from .cli import main
    except BlekotaError as error:  # BLEKOTA_CPU names a level the kernels cannot run at
        from .parallel import launcher_rank

        if launcher_rank() == 0:  # one line, not one from each process of an MPI job
            print(f"blekota: error: {error}", file=sys.stderr)
        return 2
    finally:
        if holding:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if heard_ctrl_c:
        print("blekota: interrupted", file=sys.stderr)
        return 130
    return main()
