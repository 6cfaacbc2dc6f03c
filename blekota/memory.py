"""Memory estimates: refuse a configuration before allocating what the machine does not have.

The estimates count the arrays blekota itself allocates (weights, gradients, optimizer moments,
the kernels' scratch in model._Workspace); NumPy's and Python's own overhead is not counted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .mulaw import LEVELS

if TYPE_CHECKING:
    from .model import Model

MEMINFO = Path("/proc/meminfo")


def parameter_count(layers: int, hidden: int) -> int:
    """Length of the flat parameter vector (exact; Python ints, so it never overflows)."""
    H, G = hidden, 3 * hidden
    return (LEVELS + H + 1) * G + (layers - 1) * (2 * H + 1) * G + (H + 1) * LEVELS


def model_bytes(layers: int, hidden: int, itemsize: int) -> int:
    """A new Model: its parameters plus the float64 weights it is initialized from."""
    return parameter_count(layers, hidden) * (itemsize + 8)


def window_bytes(layers: int, hidden: int, T: int, B: int, itemsize: int, backward: bool) -> int:
    """The scratch of one (T, B) window (model._Workspace), the states and the window itself."""
    H = hidden
    elements = layers * (T + 1) * B * H + layers * T * B * 3 * H + layers * T * B * H
    elements += T * B * LEVELS + 2 * layers * B * H
    if backward:
        elements += T * B * 3 * H + T * B * H + 2 * B * H
    return elements * itemsize + (T + 1) * B


def training_bytes(layers: int, hidden: int, T: int, B: int, itemsize: int, slots: int) -> int:
    """What a Trainer adds to its model: gradients, optimizer moments and scratch, the window."""
    vectors = 2 + slots  # gradients, optimizer scratch, moments
    return vectors * parameter_count(layers, hidden) * itemsize + window_bytes(
        layers, hidden, T, B, itemsize, backward=True
    )


def ensure_training(model: Model, T: int, batch_size: int, streams: int, slots: int) -> None:
    """Raise ConfigError when training model (a blekota Model) with windows of T steps does not
    fit: `streams` of the run's batch_size streams in this process (0 when the windows live on
    another device), an optimizer with `slots` moment vectors."""
    ensure(
        training_bytes(model.layers, model.hidden, T, streams, model.dtype.itemsize, slots),
        f"training a {model.layers}x{model.hidden} {model.dtype.name} model with seq_length {T} and "
        f"batch_size {batch_size}",
        "use a smaller batch_size, seq_length or hidden",
    )


def available_bytes() -> int | None:
    """Memory this process can still get: MemAvailable of /proc/meminfo, else the free physical
    pages (os.sysconf); None when the system does not say."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    if n < 1024:
        return f"{n:.0f} bytes"
    unit = 0
    n /= 1024
    while n >= 1024 and unit < len(units) - 1:
        n /= 1024
        unit += 1
    return f"{n:.1f} {units[unit]}"


def ensure(needed: int, what: str, advice: str = "") -> None:
    """Raise ConfigError when `what` needs more than the available memory.

    what: a noun phrase ("a 3x256 float32 model"); advice: how to need less.
    """
    available = available_bytes()
    if available is not None and needed > available:
        hint = f"; {advice}" if advice else ""
        raise ConfigError(
            f"{what} needs about {format_bytes(needed)} of memory, but only "
            f"{format_bytes(available)} is available{hint}"
        )
