"""blekota: learn how a sound continues and generate new sound from it, sample by sample."""

from . import mulaw, reference
from .errors import AudioError, BlekotaError, ConfigError, ModelFileError
from .model import Model
from .optim import Adagrad, Adam, RMSprop, make_optimizer

__all__ = [
    "Adagrad",
    "Adam",
    "RMSprop",
    "make_optimizer",
    "AudioError",
    "BlekotaError",
    "ConfigError",
    "Model",
    "ModelFileError",
    "mulaw",
    "reference",
]
__version__ = "0.1.0"
