"""Import a model pickled by the original NumPy blekota, without running code from the file.

The original pickled a `gru.GRU` holding `layers` (a list of `gru_layer.GRULayer`, each with
`param.Param` attributes W, Wr, Wz of shape (h_n, x_n + h_n + 1), columns [x, h, 1]) and `Wy`
(256, h_n + 1) applied to [h_top, 1]: the canonical layout of blekota.reference. Each Param has
`a` (the weights), `d` (the last gradient, not needed) and `m` (the RMSprop mean square, decay
0.9), which comes along so that training continues where it stopped.

Loading uses a restricted unpickler: only those three classes (as attribute holders of our own)
and NumPy's array reconstruction are allowed; any other global is refused before it is looked up.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from .checkpoint import trainer_block, training_arrays
from .checks import is_integer, is_number, is_plain_name
from .errors import BlekotaError, ModelFileError
from .fileutil import input_problem, starts_with
from .layout import canonical_shapes, canonical_to_flat
from .model import Model
from .modelfile import EXTENSION, ModelFile, read, save

DEFAULT_FS = 8000  # the original's sample rate when the pickle does not say
PICKLE_SUFFIXES = (".pkl", ".pickle")
SOUND_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3", b".snd", b"caff")


class _Pickled:
    """The attributes of a pickled object and nothing else: no code of the original runs."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
            raise pickle.UnpicklingError(f"unexpected state for {type(self).__name__}")
        self.__dict__.update(state)


class LegacyGRU(_Pickled):
    """Stands in for the original gru.GRU."""


class LegacyLayer(_Pickled):
    """Stands in for the original gru_layer.GRULayer."""


class LegacyParam(_Pickled):
    """Stands in for the original param.Param."""


def _encode_latin1(text: str, encoding: str = "latin1") -> bytes:
    """_codecs.encode as protocol 0-2 pickles use it for bytes; only latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("only latin-1 byte strings are allowed")
    return text.encode("latin1")


def _reconstructor(cls, base, state):
    """copyreg._reconstructor as protocol 0-1 pickles use it; only for the stand-in classes."""
    if cls not in (LegacyGRU, LegacyLayer, LegacyParam) or base is not object or state is not None:
        raise pickle.UnpicklingError("unexpected object construction")
    return cls.__new__(cls)


def _numpy_globals() -> dict[tuple[str, str], object]:
    """NumPy's array and scalar reconstruction, under its NumPy 1.x and 2.x module names."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


ALLOWED = {
    ("gru", "GRU"): LegacyGRU,
    ("gru_layer", "GRULayer"): LegacyLayer,
    ("param", "Param"): LegacyParam,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
    ("_codecs", "encode"): _encode_latin1,
    **_numpy_globals(),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ALLOWED; refuses every other one without importing it."""

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise ModelFileError(
            f"{self.path}: refused: the pickle asks for {module}.{name}, which is not part of a "
            "blekota model (loading it could run code)"
        )


def _unpickle(path: Path):
    try:
        with open(path, "rb") as file:
            return _RestrictedUnpickler(file, path).load()
    except BlekotaError:
        raise
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({error.strerror or error})") from None
    except MemoryError:
        raise ModelFileError(f"{path}: corrupted (it asks for more memory than there is)") from None
    except Exception as error:  # an untrusted pickle can make the unpickler raise almost any type
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"{path}: not a model pickled by the original blekota ({reason})") from None


def _count(gru: LegacyGRU, name: str, default=None) -> int | None:
    value = gru.__dict__.get(name, default)
    if not is_integer(value) or value < 0:
        return None
    return int(value)


def _matrix(path: Path, holder, attribute: str, where: str, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(weights a, RMSprop state m) of the Param holder.<attribute>, checked against shape."""
    param = holder.__dict__.get(attribute)
    if not isinstance(param, LegacyParam):
        raise ModelFileError(f"{path}: not a blekota model: {where}.{attribute} is missing")
    arrays = []
    for part in ("a", "m"):
        value = param.__dict__.get(part)
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != shape:
            found = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ModelFileError(
                f"{path}: corrupted: {where}.{attribute}.{part} is {found}, expected float {shape}"
            )
        if not np.isfinite(value).all() or (part == "m" and (value < 0).any()):
            raise ModelFileError(f"{path}: corrupted: {where}.{attribute}.{part} holds invalid values")
        arrays.append(value)
    return arrays[0], arrays[1]


def read_legacy(path: str | os.PathLike, dtype: str = "float64", threads: int | None = None) -> ModelFile:
    """Read an original blekota pickle into a ModelFile: the model (with model.info like a
    Trainer checkpoint's), and its RMSprop state as the flat train array "optim.m".

    dtype: the precision of the imported model (the original computed in float64).
    Raises ModelFileError naming the file when it is missing, refused or not such a model.
    """
    path = Path(path)
    problem = input_problem(path, "a pickle")
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    if starts_with(path, b"PK\x03\x04", b"PK\x05\x06"):
        raise ModelFileError(f"{path}: a blekota model file (or another zip archive), not a pickle: it needs no conversion")
    if starts_with(path, *SOUND_MAGIC):
        raise ModelFileError(f"{path}: a sound file, not a pickled model")
    gru = _unpickle(path)
    if not isinstance(gru, LegacyGRU):
        raise ModelFileError(f"{path}: not a blekota model (it holds a {type(gru).__name__}, not a gru.GRU)")
    hidden, layers = _count(gru, "h_n"), _count(gru, "layer_n")
    stack = gru.__dict__.get("layers")
    if not hidden or not layers or not isinstance(stack, list) or len(stack) != layers:
        raise ModelFileError(f"{path}: corrupted: h_n, layer_n and the list of layers do not agree")
    weights, moments = {}, {}
    for key, shape in canonical_shapes(layers, hidden).items():
        if key == "out.Wy":
            holder, where, attribute = gru, "GRU", "Wy"
        else:
            layer, attribute = key[len("gru"):].split(".")
            holder, where = stack[int(layer)], f"layers[{layer}]"
            if not isinstance(holder, LegacyLayer):
                raise ModelFileError(f"{path}: corrupted: {where} is not a gru_layer.GRULayer")
        weights[key], moments[key] = _matrix(path, holder, attribute, where, shape)
    fs = _count(gru, "fs", DEFAULT_FS) or DEFAULT_FS
    model = Model.from_state_dict(weights, fs=fs, dtype=dtype, threads=threads)
    m = np.empty_like(model.params)
    canonical_to_flat(moments, layers, hidden, m)
    model.info = _info(path, gru, model)
    return ModelFile(model, model.info, training_arrays(None, {"m": m}))


def _info(path: Path, gru: LegacyGRU, model: Model) -> dict:
    """model.info in the shape Trainer.info() writes, from what the original recorded."""
    fields = gru.__dict__
    iterations = _count(gru, "iterations", 0) or 0
    settings = {}
    for ours, theirs in (("seq_length", "seq_length"), ("batch_size", "batches")):
        if _count(gru, theirs):
            settings[ours] = _count(gru, theirs)
    alpha = fields.get("alpha")
    if is_number(alpha) and 0 < alpha < np.inf:
        settings["lr"] = float(alpha)
    name = fields.get("name")
    if isinstance(name, str) and "\0" not in name and Path(name).name not in ("", ".", ".."):
        settings["name"] = Path(name).name  # the original's "foo/bar" wrote foo/bar_N.pkl
    elif is_plain_name(path.stem):  # not Trainer's default name, which two such models in a folder would share
        settings["name"] = path.stem
    return {
        "iterations": iterations,
        "epochs": _count(gru, "epochs", 0) or 0,
        "training_files": [fields["file"]] if isinstance(fields.get("file"), str) else [],
        "history": [],
        "trainer": trainer_block("rmsprop", 5.0, iterations, **settings),
        "imported_from": str(path),
    }


def import_legacy(path: str | os.PathLike, dtype: str = "float64", threads: int | None = None) -> Model:
    """Load a model pickled by the original NumPy blekota (see read_legacy); model.info holds
    its training history and hyperparameters."""
    return read_legacy(path, dtype, threads).model


def convert_legacy(path: str | os.PathLike, output: str | os.PathLike, dtype: str = "float64") -> Path:
    """Write the original pickle at path as a blekota model file (weights, info, RMSprop state),
    so that Trainer.from_checkpoint(output) continues its training. Returns output."""
    legacy = read_legacy(path, dtype)
    return save(output, legacy.model, legacy.info, legacy.train_arrays)


def is_pickle(path: str | os.PathLike) -> bool:
    """Whether path names a pickle (by its suffix, or by the PROTO opcode that pickles of
    protocol 2 and later start with), as the original blekota saved its models."""
    return Path(path).suffix.lower() in PICKLE_SUFFIXES or starts_with(path, b"\x80")


def converted(path: str | os.PathLike, dtype: str = "float64") -> tuple[Path, bool]:
    """A blekota model file holding the original pickle at path, for opening it directly.

    Looks for OLD.npz, OLD-2.npz, ... beside the pickle (then in the current folder, when
    nothing can be written beside it): the first that already holds this pickle's conversion
    is used; else the pickle is converted into the first free name. Never overwrites a file.
    Returns (model file, whether it was written now). Raises ModelFileError naming the file
    when the pickle is refused or no conversion can be written.
    """
    path = Path(path)
    legacy = read_legacy(path, dtype)
    reasons = []
    folders = [path.parent] if path.parent.resolve() == Path.cwd() else [path.parent, Path(".")]
    for folder in folders:
        for number in range(1, 1000):
            candidate = folder / f"{path.stem}{'' if number == 1 else f'-{number}'}{EXTENSION}"
            if candidate.exists():
                if _holds(candidate, legacy):
                    return candidate, False
                continue
            try:
                save(candidate, legacy.model, legacy.info, legacy.train_arrays)
            except ModelFileError as error:
                reasons.append(str(error))
                break
            return candidate, True
    raise ModelFileError(f"{path}: could not write its conversion to a blekota model file ({'; '.join(reasons)})")


def _holds(candidate: Path, legacy: ModelFile) -> bool:
    """Whether the model file at candidate is the conversion of this legacy model."""
    try:
        existing = read(candidate)
    except ModelFileError:
        return False
    same_arrays = existing.train_arrays.keys() == legacy.train_arrays.keys() and all(
        np.array_equal(existing.train_arrays[key], value) for key, value in legacy.train_arrays.items()
    )
    return (
        existing.model.dtype == legacy.model.dtype
        and existing.model.params.shape == legacy.model.params.shape
        and np.array_equal(existing.model.params, legacy.model.params)
        and same_arrays
        and existing.info.get("iterations") == legacy.info.get("iterations")
        and existing.model.fs == legacy.model.fs
    )
