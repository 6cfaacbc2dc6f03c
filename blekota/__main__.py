"""python -m blekota: see blekota.cli (started by blekota.launch)."""

import sys

from .launch import run

sys.exit(run())
