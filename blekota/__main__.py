"""python -m blekota: see blekota.cli."""

import sys

from .cli import main

sys.exit(main())
