"""blekota: learn how a sound continues and generate new sound from it, sample by sample."""

from . import averaging, emphasis, mulaw, parallel, plot, reference, soundstats, sparsity, trainlog
from ._version import __version__
from .audio import PlaybackError, load_audio, play, save_wav
from .averaging import WeightAverage
from .dataset import Dataset
from .demo import demo_sound
from .errors import (
    AudioError, BlekotaError, BlekotaWarning, ConfigError, ModelFileError, OverwriteWarning, TrainingDiverged,
)
from .legacy import convert_legacy, import_legacy
from .model import Model
from .modelfile import load
from .onnx import export_onnx, to_onnx
from .optim import Adagrad, Adam, RMSprop, make_optimizer
from .presets import PRESETS
from .repl import Session, open_session
from .schedule import Constant, Plateau, Schedule, Step, make_schedule
from .stream import Stream
from .tensorboard import TensorBoard
from .train import Progress, Trainer, TrainResult

__all__ = [
    "__version__",
    "Adagrad",
    "Adam",
    "AudioError",
    "BlekotaError",
    "BlekotaWarning",
    "ConfigError",
    "Constant",
    "Dataset",
    "Model",
    "ModelFileError",
    "OverwriteWarning",
    "PRESETS",
    "PlaybackError",
    "Plateau",
    "Progress",
    "RMSprop",
    "Schedule",
    "Session",
    "Step",
    "Stream",
    "TensorBoard",
    "TrainResult",
    "TrainingDiverged",
    "Trainer",
    "WeightAverage",
    "averaging",
    "convert_legacy",
    "demo_sound",
    "emphasis",
    "export_onnx",
    "import_legacy",
    "load",
    "load_audio",
    "make_optimizer",
    "make_schedule",
    "mulaw",
    "open_session",
    "parallel",
    "play",
    "plot",
    "reference",
    "save_wav",
    "soundstats",
    "sparsity",
    "to_onnx",
    "trainlog",
]
