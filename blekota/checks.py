"""Checks of argument values: one rule per kind of value, for the library and the command line.

Integers are Python or NumPy integers, numbers are Python or NumPy integers and floats; a bool is
neither. Each check returns the value as a plain int or float, or raises ConfigError
"NAME must be EXPECTED, got VALUE" (`expected` words it differently where the caller says more).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from .errors import ConfigError


def is_integer(value: object) -> bool:
    """Whether value is a Python or NumPy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: object) -> bool:
    """Whether value is a Python or NumPy integer or float (not a bool)."""
    return is_integer(value) or isinstance(value, (float, np.floating))


MAX_NAME_BYTES = 200  # a run name: room left in a 255-byte file name for _N.npz, _best.npz, .log.jsonl


def is_plain_name(value: object) -> bool:
    """Whether value is a file name prefix that stays in its folder: a str with no folder part
    (no separator, not "." or ".."), no NUL and at most MAX_NAME_BYTES bytes encoded."""
    if not isinstance(value, str) or value in ("", ".", "..") or "\0" in value:
        return False
    if any(sep and sep in value for sep in ("/", os.sep, os.altsep)):
        return False
    return len(os.fsencode(value)) <= MAX_NAME_BYTES


def _refuse(name: str, expected: str, value) -> ConfigError:
    return ConfigError(f"{name} must be {expected}, got {value!r}")


def integer(name: str, value: object, minimum: int | None = None, maximum: int | None = None,
            expected: str | None = None) -> int:
    """value as an int, when it is an integer in [minimum, maximum] (None: unbounded)."""
    if (
        not is_integer(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        if expected is None:
            expected = "an integer"
            if minimum is not None and maximum is not None:
                expected += f" in {minimum}..{maximum}"
            elif minimum is not None:
                expected += f" >= {minimum}"
            elif maximum is not None:
                expected += f" <= {maximum}"
        raise _refuse(name, expected, value)
    return int(value)


def positive_int(name: str, value: object, expected: str = "a positive integer") -> int:
    """value as an int, when it is an integer > 0."""
    return integer(name, value, 1, expected=expected)


def non_negative_int(name: str, value: object, expected: str = "an integer >= 0") -> int:
    """value as an int, when it is an integer >= 0."""
    return integer(name, value, 0, expected=expected)


MAX_FS = 2**31 - 1  # the highest sample rate: a wav stores it in 32 bits


def sample_rate(name: str, value: object) -> int:
    """value as an int, when it is a sample rate in Hz: an integer in 1..MAX_FS."""
    return integer(name, value, 1, MAX_FS, expected=f"a sample rate in 1..{MAX_FS} Hz")


def file_name(name: str, value: object) -> str | os.PathLike:
    """value, when it is a file name: a str or a path object, not empty (which the system would
    take for the current folder)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise _refuse(name, "a file name (a str or a path)", value)
    return value


def flag(name: str, value: object) -> bool:
    """value as a bool, when it is one (Python's or NumPy's) or the integer 0 or 1: a string such as
    "no" is refused rather than read as true."""
    if isinstance(value, (bool, np.bool_)) or (is_integer(value) and value in (0, 1)):
        return bool(value)
    raise _refuse(name, "True or False", value)


def optional_callable(name: str, value: object) -> Callable | None:
    """value, when it is None or something to call."""
    if value is not None and not callable(value):
        raise _refuse(name, "None or a function", value)
    return value


def seed(value: object, name: str = "seed") -> int | None:
    """A random seed: None, or value as an int when it is an integer >= 0."""
    return None if value is None else non_negative_int(name, value, "None or an integer >= 0")


def number(name: str, value: object, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
           high_open: bool = False, expected: str | None = None) -> float:
    """value as a float, when it is a number between low and high (each end included unless
    open; NaN never is)."""
    inside = is_number(value) and (low < value if low_open else low <= value) and (
        value < high if high_open else value <= high
    )
    if not inside:
        if expected is None:
            if high == math.inf and high_open:
                expected = "a finite number" + (f" {'>' if low_open else '>='} {low:g}" if low > -math.inf else "")
            else:
                expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _refuse(name, expected, value)
    return float(value)


def positive_float(name: str, value: object, expected: str | None = None) -> float:
    """value as a float, when it is a finite number > 0."""
    return number(name, value, 0, math.inf, low_open=True, high_open=True, expected=expected)


def non_negative_float(name: str, value: object, expected: str | None = None) -> float:
    """value as a float, when it is a finite number >= 0."""
    return number(name, value, 0, math.inf, high_open=True, expected=expected)


def fraction(name: str, value: object, expected: str | None = None) -> float:
    """value as a float, when it is a number in [0, 1)."""
    return number(name, value, 0, 1, high_open=True, expected=expected)


DEVICES = "cpu, cuda or cuda:N"  # where training steps run (blekota.device)


def device(name: str, value: object) -> str:
    """value, when it names where training steps run: "cpu", "cuda" or "cuda:N" (N an index)."""
    if isinstance(value, str) and (value in ("cpu", "cuda") or (
        value.startswith("cuda:") and value[5:].isascii() and value[5:].isdigit()
    )):
        return value
    raise _refuse(name, DEVICES, value)


def density(name: str, value: object) -> float:
    """value as a float, when it is a share of weights kept: a number in (0, 1] (1: dense)."""
    return number(name, value, 0, 1, low_open=True, expected="a number in (0, 1] (1: dense)")
