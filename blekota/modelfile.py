"""Model files above the model: saving a Model (with training state) and reading one back.

The format itself (a .npz of plain arrays plus JSON metadata, checksummed, written atomically;
reading never executes code) is blekota.fileformat, which knows nothing of the Model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint, checks, fileformat
from .audio import OTHER_SOUND_SUFFIXES
from .errors import BlekotaError, ConfigError, ModelFileError
from .fileformat import EXTENSION, FORMAT, VERSION, checksum, is_model_file
from .fileutil import refused_suffix
from .frames import MAX_FRAME
from .layout import canonical_shapes
from .model import Model
from .modelchecks import DTYPES, MAX_THREADS

__all__ = [
    "EXTENSION", "FORMAT", "VERSION", "ModelFile", "build", "checksum", "is_model_file", "load", "read", "save",
]


OTHER_SUFFIXES = frozenset({".onnx", ".pkl", ".wav"} | OTHER_SOUND_SUFFIXES)  # names of other kinds of file


def save(
    path: str | os.PathLike,
    model: Model,
    info: dict | None = None,
    train_arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write model (+ JSON-serializable info, default model.info, + training arrays) to path
    atomically. Raises ModelFileError when it cannot (the previous file is then intact), and
    ConfigError, writing nothing, when info holds what read() would refuse or path is named as a
    sound, an ONNX file or a pickle (OTHER_SUFFIXES: a model file there would replace one by surprise)."""
    refused = refused_suffix(checks.file_name("path", path), OTHER_SUFFIXES)
    if refused:
        suffix, named = refused
        raise ConfigError(f"{named}: a model file is written here, not {suffix[1:]}; give it a name ending in {EXTENSION}")
    info = info if info is not None else model.info
    problem = checkpoint.problem(info)
    if problem:
        raise ConfigError(f"{path}: not saved: {problem} (blekota.load would refuse the file)")
    return fileformat.write(path, model.architecture, model.state_dict(), info, train_arrays)


@dataclass
class ModelFile:
    """What a model file holds: the model (with .info) and any training arrays."""

    model: Model
    info: dict
    train_arrays: dict[str, np.ndarray] = field(default_factory=dict)


def read(path: str | os.PathLike, threads: int | None = None) -> ModelFile:
    """Read and verify a model file. Raises ModelFileError naming the file on any problem."""
    meta, arrays = fileformat.read(path)
    return build(Path(path), meta, arrays, threads)


def build(path: Path, meta: dict, arrays: dict[str, np.ndarray], threads: int | None = None) -> ModelFile:
    """A ModelFile from the verified contents of the file at path (see blekota.fileformat.read)."""
    if threads is not None:
        checks.integer("threads", threads, 1, MAX_THREADS)  # the caller's mistake, not the file's
    try:
        arch = meta["architecture"]
        hidden, layers, fs, dtype = arch["hidden"], arch["layers"], arch["fs"], arch["dtype"]
        frame, preemphasis = arch.get("frame", 0), arch.get("preemphasis", 0.0)
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}")
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame <= MAX_FRAME:
            raise ValueError(f"frame {frame!r}")
        n_weights = sum(1 for key in arrays if key.startswith("model/"))
        if (not all(isinstance(n, int) and n > 0 for n in (hidden, layers))
                or 3 * layers + 1 + (6 if frame else 0) != n_weights):
            raise ValueError(f"{layers!r} layers of {hidden!r} units do not fit its {n_weights} weight arrays")
        state = {}
        for key, shape in canonical_shapes(layers, hidden, frame).items():
            value = arrays[f"model/{key}"]
            if value.shape != shape or value.dtype.kind != "f":
                raise ValueError(f"{key} is {value.dtype} {value.shape}, expected float {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{key} holds NaN or infinite weights")
            state[key] = value
        model = Model.from_state_dict(state, fs=fs, dtype=dtype, threads=threads, preemphasis=preemphasis)
    except (KeyError, TypeError, ValueError, BlekotaError) as error:
        raise ModelFileError(f"{path}: corrupted or inconsistent model ({error})") from None
    info = meta.get("info") or {}
    problem = checkpoint.problem(info)
    if problem:
        raise ModelFileError(f"{path}: corrupted ({problem})")
    model.info = info
    train = {key[len("train/"):]: value for key, value in arrays.items() if key.startswith("train/")}
    return ModelFile(model, info, train)


def load(path: str | os.PathLike, threads: int | None = None) -> Model:
    """Load a model saved by Model.save or a training checkpoint; model.info holds its history.
    threads: the model's OpenMP threads (None: as Model chooses). Raises ModelFileError naming the
    file when it is missing, corrupted or not a model file."""
    return read(path, threads).model
