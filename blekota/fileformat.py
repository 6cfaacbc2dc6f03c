"""The model file format: a .npz of plain arrays plus JSON metadata; reading never executes code.

Layout of a file (format "blekota-model", version 1):
  meta            uint8 array holding UTF-8 JSON: format, version, architecture (hidden, layers,
                  fs, dtype; frame and preemphasis when the model has them), "info" (training file(s), iterations, hyperparameters, loss
                  history) and "checksum", the SHA-256 of every other array (name, dtype, shape,
                  bytes, in name order).
  model/<key>     the weights in the canonical layout of Model.state_dict().
  train/<key>     optional training state (optimizer moments, carried hidden state, ...).
Files are written to a temporary file and renamed into place, so a failed save leaves the
previous file intact (see blekota.fileutil: a link is written through to its target).

This module writes and verifies the container and knows nothing of the Model: Model.save writes
through it, and blekota.modelfile, above the model, builds a Model from what it reads.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .checks import file_name
from .errors import ConfigError, ModelFileError, command_word
from .fileutil import existing_file, input_problem, open_output, starts_with

FORMAT = "blekota-model"
VERSION = 1
EXTENSION = ".npz"
ZIP = b"PK\x03\x04"  # how a zip archive, and so a .npz, starts
# What zipfile raises for an archive it cannot list (broken, foreign, from a newer zip)
ZIP_ERRORS = (OSError, EOFError, ValueError, KeyError, NotImplementedError, OverflowError, RuntimeError,
              zipfile.BadZipFile, zipfile.LargeZipFile)


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write(
    path: str | os.PathLike,
    architecture: dict,
    weights: dict[str, np.ndarray],
    info: dict,
    train_arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a model file atomically: architecture (hidden, layers, fs, dtype), canonical
    weights, JSON-serializable info and optional training arrays. Raises ModelFileError when it
    cannot (the previous file at path is then intact), and writes nothing when the weights hold
    NaN or infinite values (read refuses them); ConfigError, writing nothing, when info is not JSON."""
    path = Path(file_name("path", path))
    if not all(np.isfinite(value).all() for value in weights.values()):
        raise ModelFileError(f"{path}: not saved: the model's weights hold NaN or infinite values")
    arrays = {f"model/{key}": value for key, value in weights.items()}
    for key, value in (train_arrays or {}).items():
        arrays[f"train/{key}"] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "info": info,
        "checksum": checksum(arrays),
    }
    try:
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    except (TypeError, ValueError, RecursionError) as error:
        raise ConfigError(f"{path}: not saved: info must hold only JSON values ({error})") from None
    try:
        with open_output(path) as out:
            np.savez(out, **arrays)
    except OSError as error:
        kept = "; the previous file is intact" if existing_file(path) else ""
        raise ModelFileError(f"{path}: could not save ({error.strerror or error}){kept}") from None
    return path


def read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model file: (meta, arrays without "meta"), the checksum checked.
    Raises ModelFileError naming the file on any problem."""
    path = Path(file_name("path", path))
    problem = input_problem(path, "a model file")
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    if starts_with(path, ZIP) and not _holds_arrays(path):
        raise ModelFileError(f"{path}: {seems(path)}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path}: not a blekota model file (a single array, no metadata)")
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error) as error:
        raise ModelFileError(f"{path}: not a blekota model file or corrupted ({error})") from None
    except ValueError as error:
        if "pickle" not in str(error):
            raise ModelFileError(f"{path}: not a blekota model file or corrupted ({error})") from None
        if starts_with(path, ZIP):  # NumPy found an object array, which would be unpickled
            raise ModelFileError(
                f"{path}: not a blekota model file (it holds Python objects, which blekota never loads)"
            ) from None
        raise ModelFileError(f"{path}: {seems(path)}") from None
    except EOFError as error:  # zipfile's says nothing: EOFError()
        reason = str(error) or "it ends too soon: cut short, or still being written"
        raise ModelFileError(f"{path}: not a blekota model file or corrupted ({reason})") from None
    except (KeyError, NotImplementedError, OverflowError, RuntimeError) as error:
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
    return meta, arrays


def _holds_arrays(path: Path) -> bool:
    """Whether the zip archive at path has a NumPy array member (True when it cannot be listed:
    then reading it says what is wrong)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".npy") for name in archive.namelist())
    except ZIP_ERRORS:
        return True


def seems(path: Path) -> str:
    """What a file that is not a model file seems to be, in a few words for an error line."""
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    if head.startswith(b"\x80"):
        return (f"a Python pickle, not a blekota model file (a model of the original NumPy blekota "
                f"converts with: python -m blekota import-legacy {command_word(path)})")
    if head.startswith(ZIP):
        try:
            with zipfile.ZipFile(path) as archive:
                torch = any(name.endswith("data.pkl") for name in archive.namelist())
        except ZIP_ERRORS:
            return "a zip archive that cannot be read, not a blekota model file"
        return ("a PyTorch file (torch.save), not a blekota model file (a blekota.torch GRUModel converts "
                "with .to_blekota().save(path))" if torch else "a zip archive, not a blekota model file")
    if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and head[2:3] == b"\x12"):  # ir_version, producer
        return "an ONNX file, not a blekota model file (blekota writes ONNX but reads only its own .npz files)"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 file (as Keras and h5py write), not a blekota model file"
    if _is_sound(path):
        return f"a sound file, not a model file (to train a model on it: python -m blekota train {command_word(path)})"
    try:  # a character cut at the end of the head is no sign of binary data
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < 4096)
        text = b"\0" not in head
    except UnicodeDecodeError:
        text = False
    if text:
        return "a text file, not a blekota model file"
    return "not a blekota model file (nor any format blekota knows)"


def _is_sound(path: Path) -> bool:
    """Whether libsndfile reads the file as sound."""
    import soundfile

    try:
        info = soundfile.info(os.fsencode(path))
    except Exception:  # anything libsndfile cannot open is not a sound here
        return False
    return info.frames > 0 and info.channels > 0


def peek_meta(path: str | os.PathLike) -> dict | None:
    """The metadata of the blekota model file at path, read alone (the arrays are not read or
    checked); None when path holds no such file."""
    if not os.path.isfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive, archive.open("meta.npy") as member:
            raw = np.lib.format.read_array(member, allow_pickle=False)
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (OSError, EOFError, KeyError, ValueError, RecursionError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile, zlib.error):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def written_by_blekota(path: str | os.PathLike) -> bool:
    """Whether the file at path is a blekota model file, by its metadata (the arrays are not
    read or checked): one that blekota may replace."""
    return peek_meta(path) is not None


def is_model_file(path: str | os.PathLike) -> bool:
    """Whether path names a model file: by its suffix, or by starting like a .npz (a zip)."""
    return Path(path).suffix.lower() == EXTENSION or starts_with(path, ZIP)


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
