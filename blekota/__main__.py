"""python -m blekota: see blekota.cli."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl+C while NumPy, SciPy and the compiled core load
    print("blekota: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
