"""blekota: learn how a sound continues and generate new sound from it, sample by sample.

The names below are imported on first use (`blekota.Model`, `from blekota import Model`), so
that `python -m blekota` starts, and hears Ctrl+C, before NumPy, SciPy and the compiled core load.
"""

from __future__ import annotations

import importlib

from ._version import __version__

_EXPORTS = {  # module: the public names it gives
    "audio": ("PlaybackError", "load_audio", "play", "save_wav"),
    "averaging": ("WeightAverage",),
    "dataset": ("Dataset",),
    "demo": ("demo_sound",),
    "encoding": ("save_sound",),
    "errors": ("AudioError", "BlekotaError", "BlekotaWarning", "ConfigError", "ModelFileError", "OverwriteWarning",
               "TrainingDiverged"),
    "legacy": ("convert_legacy", "import_legacy"),
    "model": ("Model",),
    "modelfile": ("load",),
    "onnx": ("export_onnx", "to_onnx"),
    "optim": ("Adagrad", "Adam", "RMSprop", "make_optimizer"),
    "presets": ("PRESETS",),
    "repl": ("Session", "open_session"),
    "schedule": ("Constant", "Plateau", "Schedule", "Step", "make_schedule"),
    "stream": ("Stream",),
    "tensorboard": ("TensorBoard",),
    "train": ("Progress", "Trainer", "TrainResult"),
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}

_SUBMODULES = ("averaging", "emphasis", "mulaw", "parallel", "plot", "reference", "soundstats", "sparsity",
               "trainlog")  # public modules, reached as blekota.NAME

__all__ = sorted([*_HOMES, *_SUBMODULES]) + ["__version__"]


def __getattr__(name: str):
    """A public name, imported from its module on first use; or a submodule (blekota.audio)."""
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value
        return value
    if name.isidentifier():
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The package's names, those not imported yet included."""
    return sorted(set(globals()) | set(__all__))
