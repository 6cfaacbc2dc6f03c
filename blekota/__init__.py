"""blekota: learn how a sound continues and generate new sound from it, sample by sample."""

from . import mulaw, reference
from .audio import PlaybackError, load_audio, play, save_wav
from .demo import demo_sound
from .errors import AudioError, BlekotaError, BlekotaWarning, ConfigError, ModelFileError
from .legacy import convert_legacy, import_legacy
from .model import Model
from .modelfile import load
from .optim import Adagrad, Adam, RMSprop, make_optimizer
from .train import Progress, Trainer, TrainResult

__all__ = [
    "Adagrad",
    "Adam",
    "AudioError",
    "BlekotaError",
    "BlekotaWarning",
    "ConfigError",
    "Model",
    "ModelFileError",
    "PlaybackError",
    "Progress",
    "RMSprop",
    "TrainResult",
    "Trainer",
    "convert_legacy",
    "demo_sound",
    "import_legacy",
    "load",
    "load_audio",
    "make_optimizer",
    "mulaw",
    "play",
    "reference",
    "save_wav",
]
__version__ = "0.1.0"
