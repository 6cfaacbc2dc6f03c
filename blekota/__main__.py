"""python -m blekota: see blekota.cli."""

import signal
import sys

from .errors import BlekotaError

heard_ctrl_c = []  # Ctrl+C while NumPy, SciPy and the compiled core load (about half a second) is held
# until they have: an import cut short fails with a traceback of its own (NumPy's ImportError)
holding = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not where SIGINT is ignored
if holding:
    signal.signal(signal.SIGINT, lambda signum, frame: heard_ctrl_c.append(signum))
try:
    from .cli import main
except BlekotaError as error:  # BLEKOTA_CPU names a level the kernels cannot run at
    from .parallel import launcher_rank

    if launcher_rank() == 0:  # one line, not one from each process of an MPI job
        print(f"blekota: error: {error}", file=sys.stderr)
    sys.exit(2)
finally:
    if holding:
        signal.signal(signal.SIGINT, signal.default_int_handler)
if heard_ctrl_c:
    print("blekota: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
