"""The model file: a .npz of plain arrays plus JSON metadata; loading never executes code.

Layout of a file (format "blekota-model", version 1):
  meta            uint8 array holding UTF-8 JSON: format, version, architecture (hidden, layers,
                  fs, dtype), "info" (training file(s), iterations, hyperparameters, loss
                  history) and "checksum", the SHA-256 of every other array (name, dtype, shape,
                  bytes, in name order).
  model/<key>     the weights in the canonical layout of Model.state_dict().
  train/<key>     optional training state (optimizer moments, carried hidden state, ...).
Files are written to a temporary file and renamed into place, so a failed save leaves the
previous file intact (see blekota.fileutil: a link is written through to its target).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BlekotaError, ModelFileError
from .fileutil import existing_file, input_problem, open_output, starts_with
from .model import DTYPES, Model, canonical_shapes

FORMAT = "blekota-model"
VERSION = 1
EXTENSION = ".npz"


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save(
    path: str | os.PathLike,
    model: Model,
    info: dict | None = None,
    train_arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write model (+ JSON-serializable info, + training arrays) to path atomically."""
    path = Path(path)
    arrays = {f"model/{key}": value for key, value in model.state_dict().items()}
    for key, value in (train_arrays or {}).items():
        arrays[f"train/{key}"] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": {
            "hidden": model.hidden,
            "layers": model.layers,
            "fs": model.fs,
            "dtype": model.dtype.name,
        },
        "info": info if info is not None else model.info,
        "checksum": checksum(arrays),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    try:
        with open_output(path) as out:
            np.savez(out, **arrays)
    except OSError as error:
        kept = "; the previous file is intact" if existing_file(path) else ""
        raise ModelFileError(f"{path}: could not save ({error.strerror or error}){kept}") from None
    return path


@dataclass
class ModelFile:
    """What a model file holds: the model (with .info) and any training arrays."""

    model: Model
    info: dict
    train_arrays: dict[str, np.ndarray] = field(default_factory=dict)


def read(path: str | os.PathLike, threads: int | None = None) -> ModelFile:
    """Read and verify a model file. Raises ModelFileError naming the file on any problem."""
    path = Path(path)
    problem = input_problem(path, "a model file")
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path}: not a blekota model file (a single array, no metadata)")
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error) as error:
        raise ModelFileError(f"{path}: not a blekota model file or corrupted ({error})") from None
    except ValueError as error:
        if "pickled" in str(error) and starts_with(path, b"\x80"):
            raise ModelFileError(
                f"{path}: a Python pickle, not a blekota model file (a model of the original NumPy "
                f"blekota converts with: python -m blekota import-legacy {path})"
            ) from None
        if _is_sound(path):
            raise ModelFileError(
                f"{path}: a sound file, not a model file (to train a model on it: python -m blekota "
                f"train {path})"
            ) from None
        raise ModelFileError(f"{path}: not a blekota model file or corrupted ({error})") from None
    except (EOFError, KeyError, NotImplementedError, OverflowError, RuntimeError) as error:
        raise ModelFileError(f"{path}: not a blekota model file or corrupted ({error})") from None
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({error.strerror or error})") from None
    except MemoryError:
        raise ModelFileError(f"{path}: corrupted (it claims an array too large for memory)") from None
    if "meta" not in arrays:
        raise ModelFileError(f"{path}: not a blekota model file (no blekota metadata)")
    if not all(isinstance(value, np.ndarray) for value in arrays.values()):
        raise ModelFileError(f"{path}: not a blekota model file (it holds members that are not arrays)")
    meta = _parse_meta(path, arrays.pop("meta"))
    if checksum(arrays) != meta.get("checksum"):
        raise ModelFileError(f"{path}: corrupted (the checksum of its arrays does not match)")
    return _build(path, meta, arrays, threads)


def _is_sound(path: Path) -> bool:
    """Whether libsndfile reads the file as sound."""
    import soundfile

    try:
        info = soundfile.info(os.fsencode(path))
    except Exception:  # anything libsndfile cannot open is not a sound here
        return False
    return info.frames > 0 and info.channels > 0


def _parse_meta(path: Path, raw: np.ndarray) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: corrupted (its metadata is not a byte string)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ModelFileError(f"{path}: corrupted (its metadata is not valid JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a blekota model file (unknown format)")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: corrupted (bad format version {version!r})")
    if version > VERSION:
        raise ModelFileError(
            f"{path}: written by a newer blekota (file format {version}; this version reads "
            f"up to {VERSION}); upgrade blekota to load it"
        )
    return meta


def _build(path: Path, meta: dict, arrays: dict[str, np.ndarray], threads) -> ModelFile:
    try:
        arch = meta["architecture"]
        hidden, layers, fs, dtype = arch["hidden"], arch["layers"], arch["fs"], arch["dtype"]
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}")
        n_weights = sum(1 for key in arrays if key.startswith("model/"))
        if not all(isinstance(n, int) and n > 0 for n in (hidden, layers)) or 3 * layers + 1 != n_weights:
            raise ValueError(f"{layers!r} layers of {hidden!r} units do not fit its {n_weights} weight arrays")
        state = {}
        for key, shape in canonical_shapes(layers, hidden).items():
            value = arrays[f"model/{key}"]
            if value.shape != shape or value.dtype.kind != "f":
                raise ValueError(f"{key} is {value.dtype} {value.shape}, expected float {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{key} holds NaN or infinite weights")
            state[key] = value
        model = Model.from_state_dict(state, fs=fs, dtype=dtype, threads=threads)
    except (KeyError, TypeError, ValueError, BlekotaError) as error:
        raise ModelFileError(f"{path}: corrupted or inconsistent model ({error})") from None
    info = meta.get("info") or {}
    problem = _info_problem(info)
    if problem:
        raise ModelFileError(f"{path}: corrupted ({problem})")
    model.info = info
    train = {key[len("train/"):]: value for key, value in arrays.items() if key.startswith("train/")}
    return ModelFile(model, info, train)


def _info_problem(info) -> str | None:
    """What is wrong with the types of the info fields blekota reads back, or None."""
    if not isinstance(info, dict):
        return "info is not a mapping"

    def count(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for key in ("iterations", "epochs"):
        if key in info and not count(info[key]):
            return f"info.{key} is not a count"
    files = info.get("training_files", [])
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        return "info.training_files is not a list of file names"
    history = info.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(row, list) and len(row) == 2 and all(number(v) for v in row) for row in history
    ):
        return "info.history is not a list of [iteration, loss] pairs"
    trainer = info.get("trainer", {})
    if not isinstance(trainer, dict):
        return "info.trainer is not a mapping"
    for key in ("t", "position", "stream_length"):
        if key in trainer and not count(trainer[key]):
            return f"info.trainer.{key} is not a count"
    for key in ("lr", "clip"):
        if key in trainer and not number(trainer[key]):
            return f"info.trainer.{key} is not a number"
    if "rng" in trainer and not isinstance(trainer["rng"], dict):
        return "info.trainer.rng is not a mapping"
    return None


def is_model_file(path: str | os.PathLike) -> bool:
    """Whether path names a model file: by its suffix, or by starting like a .npz (a zip)."""
    return Path(path).suffix.lower() == EXTENSION or starts_with(path, b"PK\x03\x04")


def load(path: str | os.PathLike, threads: int | None = None) -> Model:
    """Load a model saved by Model.save or a training checkpoint; model.info holds its history."""
    return read(path, threads).model
