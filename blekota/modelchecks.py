"""Checks of what Model is given: its dtype and threads, arrays of levels, hidden states,
gradients and hints, and model.params, which may have been replaced since. Each returns the value
as the compiled core takes it (params only checks), or raises a one-line ConfigError that names
what is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .errors import ConfigError
from .mulaw import LEVELS, real_array, sound_array, warn_beyond_full_scale

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from .model import Model

DTYPES = {"float32": np.float32, "float64": np.float64}
MAX_THREADS = 1024
MAX_WINDOW = 2**31 - 1  # levels in a window: the BLAS calls in the compiled core take 32-bit sizes


def threads(value: object) -> int:
    """value as an int, when it is a thread count in 1..MAX_THREADS."""
    count = checks.positive_int("threads", value)
    if count > MAX_THREADS:
        raise ConfigError(f"threads must be at most {MAX_THREADS}, got {value!r}")
    return count


def dtype(value: object) -> np.dtype:
    """The NumPy dtype of value, when it names float32 or float64 (a name, a type or a dtype)."""
    name = value
    if isinstance(value, (type, np.dtype)):
        try:
            name = np.dtype(value).name
        except TypeError:
            pass
    if not isinstance(name, str) or name not in DTYPES:
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {value!r}")
    return np.dtype(DTYPES[name])


def levels(name: str, value: object, ndim: int, max_size: int = MAX_WINDOW) -> np.ndarray:
    """An array of at most max_size integer levels 0..255 with ndim dimensions, as contiguous uint8."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{name} must be an array of integer levels 0..255 ({error})") from None
    if array.ndim != ndim:
        raise ConfigError(f"{name} must be a {ndim}-D array of levels, got shape {array.shape}")
    if array.size > max_size:
        raise ConfigError(f"{name} of shape {array.shape} is too large: at most {max_size} levels at a time")
    if not np.issubdtype(array.dtype, np.integer):
        raise ConfigError(f"{name} must hold integer levels 0..255, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= LEVELS):
        raise ConfigError(f"{name} must hold integer levels 0..255")
    return np.ascontiguousarray(array, dtype=np.uint8)


def params(model: Model, finite: bool = False) -> None:
    """model.params may have been replaced: it must still fit the architecture and dtype (and,
    when finite, hold no NaN or infinity: sampling from them gives sound that looks plausible)."""
    weights, size = model.params, model._size
    if not (
        isinstance(weights, np.ndarray)
        and weights.shape == (size,)
        and weights.dtype == model.dtype
        and weights.flags.c_contiguous
    ):
        raise ConfigError(
            f"model.params must be a contiguous {model.dtype.name} array of {size} values; "
            "use load_state_dict to change weights"
        )
    if finite and not np.isfinite(weights).all():
        raise ConfigError("model.params hold NaN or infinite weights: nothing to sample from")


def window(model: Model, x: ArrayLike, h0: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """A window's levels x (T+1, B) as uint8 and its starting state h0 (state_rows, B, H) in the
    model's dtype (None: zeros), after checking model.params."""
    params(model)
    x = levels("x", x, 2)
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ConfigError(f"x must be a (T+1, B) array of levels with T >= 1, got shape {x.shape}")
    B = x.shape[1]
    if h0 is None:
        return x, model.zero_state(B)
    if np.shape(h0) != (model.state_rows, B, model.hidden):
        raise ConfigError(f"h0 must have shape {(model.state_rows, B, model.hidden)}, got {np.shape(h0)}")
    h0 = real_array(h0, "h0 must be an array of numbers")
    if not np.isfinite(h0).all():
        raise ConfigError("h0 contains NaN or infinite values")
    return x, in_dtype("h0", h0, model.dtype)


def in_dtype(name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Finite values as a contiguous array of the model's dtype, when none is too large for it."""
    with np.errstate(over="ignore"):
        cast = np.ascontiguousarray(values, dtype=dtype)
    if not np.isfinite(cast).all():
        largest = values.flat[np.abs(values).argmax()]
        raise ConfigError(f"{name} holds values too large for the model's {dtype.name} "
                          f"(magnitudes up to {np.finfo(dtype).max:.2g}), got {largest:g}")
    return cast


def targets(value: ArrayLike, T: int, B: int) -> np.ndarray:
    """A window's targets (T, B) as uint8 levels."""
    value = levels("targets", value, 2)
    if value.shape != (T, B):
        raise ConfigError(f"targets must be shaped (T, B) = {(T, B)}, got {value.shape}")
    return value


def grads(model: Model, value: object) -> np.ndarray:
    """value, when it can take the gradients: a writable contiguous array like model.params."""
    if (
        not isinstance(value, np.ndarray)
        or value.shape != model.params.shape
        or value.dtype != model.dtype
        or not value.flags.c_contiguous
        or not value.flags.writeable
    ):
        raise ConfigError("grads must be a writable contiguous array shaped and typed like model.params")
    return value


def hints(hint: ArrayLike | Sequence[ArrayLike], streams: int) -> list[np.ndarray]:
    """The hint's sounds as Model.hint_levels reads them, one per stream: 1-D float64, finite."""
    if isinstance(hint, (list, tuple)) and hint and all(np.ndim(h) >= 1 for h in hint):
        sounds = [_sound(h) for h in hint]
        if len(sounds) != streams:
            raise ConfigError(f"got {len(sounds)} hints for {streams} streams")
    else:
        sounds = [_sound(hint)] * streams
    for sound in sounds:
        if sound.ndim != 1:
            raise ConfigError(f"hint must be a 1-D sound, got shape {sound.shape}")
    if not all(np.isfinite(sound).all() for sound in sounds):
        raise ConfigError("hint contains NaN or infinite samples")
    for sound in {id(sound): sound for sound in sounds}.values():  # one hint for every stream: one warning
        warn_beyond_full_scale(sound, "hint")
    return sounds


def _sound(value: object) -> np.ndarray:
    """A hint as float64 samples; what is not real numbers is a ConfigError."""
    return sound_array(value, "hint must be a sound: an array of float samples").astype(np.float64)
