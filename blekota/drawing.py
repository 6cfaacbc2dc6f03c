"""How each level is drawn and written: Model.sample's temperature, truncation (top_k, top_p,
min_p), smoothing and waking options, checked, described in words, and the written sound."""

from __future__ import annotations

import numpy as np

from . import checks
from .mulaw import LEVELS

SMOOTH = 0.3  # sample's default: each sample written 0.3 of the way from the drawn level to the step's mean
WAKE = 0.2  # sample's default: after 0.2 s of drawn silence the model hears it as faint noise
MAX_WAKE = 3600.0  # seconds


def _truncation(top_k, top_p, min_p) -> tuple[int, float, float]:
    """Checked (top_k, top_p, min_p) for the compiled sampling loop."""
    top_k = checks.non_negative_int("top_k", top_k, "an integer >= 0 (0: all levels)")
    top_p = checks.number("top_p", top_p, 0, 1, low_open=True, expected="a number in (0, 1] (1: all levels)")
    min_p = checks.number("min_p", min_p, 0, 1, expected="a number in [0, 1] (0: all levels)")
    return min(top_k, LEVELS), top_p, min_p


def _smooth(smooth) -> float:
    """Checked smooth (Model.sample's)."""
    return checks.number("smooth", smooth, 0, 1, expected="a number in [0, 1] (0: the drawn levels)")


def _wake(wake) -> float:
    """Checked wake (Model.sample's), in seconds."""
    return checks.number("wake", wake, 0, MAX_WAKE, expected=f"a number of seconds in [0, {MAX_WAKE:g}] (0: never)")


def wake_steps(wake: float, fs: int) -> int:
    """wake in seconds -> steps of silence at fs Hz before waking (0: never, else at least 1)."""
    return max(1, round(wake * fs)) if wake > 0 else 0


def smoothed(drawn: np.ndarray, means: np.ndarray, smooth: float) -> np.ndarray:
    """The sound written for drawn samples and their steps' means (same shapes): each sample
    `smooth` of the way from the drawn one to the mean, float32 (smooth 0: drawn, exactly)."""
    if smooth == 0:
        return drawn
    return (drawn + smooth * (means - drawn)).astype(np.float32)


def describe_sampling(temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                      smooth: float = SMOOTH, wake: float = WAKE) -> str:
    """'temperature 0.9, top-p 0.95, smooth 0.3, wake 0.2 s': the settings a sound was drawn with,
    the truncation, the smoothing and the waking when on."""
    words = [f"temperature {temperature:g}"]
    if 0 < top_k < 256:
        words.append(f"top-k {top_k}")
    if top_p < 1:
        words.append(f"top-p {top_p:g}")
    if min_p > 0:
        words.append(f"min-p {min_p:g}")
    if smooth > 0:
        words.append(f"smooth {smooth:g}")
    if wake > 0 and temperature > 0:
        words.append(f"wake {wake:g} s")
    return ", ".join(words)
