"""Where the Trainer's steps run: "cpu", the compiled core, or a CUDA GPU through PyTorch.

On "cuda" (or "cuda:N") each step's forward pass, backward pass and optimizer update run on the
GPU (blekota.torchstep, one captured CUDA graph per window shape); everything else (the data,
random gain, input noise, the schedule, validation, checkpoints, sampling) stays on the CPU, and
model files are the same. PyTorch is optional: this module imports it only when a GPU is asked
for, and refuses in one line when it is missing or sees no GPU.

TORCH_CPU ("torch-cpu") runs that same torch step on torch's CPU device, eagerly (no graph):
slow, and not offered on the command line; it is how the step is checked where there is no GPU.

bf16 (check_bf16) runs the compiled core's matrix products with bfloat16 operands and float32
sums on CPUs with AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids and
later): faster training, rounded products. AMD does twice the multiply-adds per instruction;
Intel Sapphire Rapids and later run them on AMX tiles, where Linux grants them (4-5x the
products' rate). By default (AUTO) a float32 model trains with them wherever they beat float32
(blekota._gru.bf16_by_default: not on VDPBF16PS of an Intel CPU without AMX, half its FMA rate),
and in float32 elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .errors import ConfigError

if TYPE_CHECKING:
    from types import ModuleType

    from .averaging import WeightAverage
    from .model import Model
    from .optim import Optimizer
    from .torchstep import TorchStep
    from .train import Trainer

CPU = "cpu"
TORCH_CPU = "torch-cpu"
TORCH_HINT = "pip install torch (blekota itself does not need it)"
AUTO = "auto"  # bf16: the bfloat16 products wherever they can run


def check(name: str, device: str, processes: int = 1) -> str:
    """device when training can run there, else ConfigError in one line: a bad name, PyTorch
    missing or without a GPU, a GPU index that is not there, or several processes (MPI). name:
    what the caller calls the option ("device", "--device")."""
    if device != TORCH_CPU and checks.device(name, device) == CPU:
        return device
    if processes > 1:
        raise ConfigError(
            f"{name} {device} trains in one process with one GPU; it cannot be combined with MPI "
            f"({processes} processes here): start it without mpiexec or srun"
        )
    torch = import_torch(name, device)
    if device == TORCH_CPU:
        return device
    if not torch.cuda.is_available():
        build = " (a CPU-only build)" if torch.version.cuda is None else ""
        raise ConfigError(f"{name} {device}: PyTorch {torch.__version__}{build} sees no CUDA GPU here")
    index = int(device[5:]) if ":" in device else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"{name} {device}: there {'is' if count == 1 else 'are'} {count} CUDA GPU{'s' * (count != 1)} "
                          f"here (cuda:0..cuda:{count - 1})")
    return device


def check_bf16(name: str, bf16: bool | str, device: str, model: Model) -> bool:
    """Whether training runs the bf16 products. bf16: AUTO (the default: where they can run and
    beat float32, blekota._gru.bf16_by_default), True (ConfigError in one line where they cannot
    run) or False (float32 products)."""
    from . import _gru

    asked = bf16 != AUTO
    if asked and bf16 not in (True, False):
        raise ConfigError(f"{name} is true, false or {AUTO!r}, not {bf16!r}")
    if asked and not bf16:
        return False
    reason = bf16_obstacle(device, model)
    if reason is not None and asked:
        raise ConfigError(f"{name}: {reason}")
    return reason is None and (asked or _gru.bf16_by_default())


def bf16_obstacle(device: str, model: Model) -> str | None:
    """Why the bf16 products cannot train this model on this device, or None where they can:
    another device than the CPU, a float64 model, a CPU without AVX512_BF16, or too many units."""
    from . import _gru

    if device != CPU:
        return f"bfloat16 products are the CPU core's; {device} trains in float32"
    if model.dtype != np.float32:
        return f"bfloat16 products need a float32 model, this one is {model.dtype.name}"
    if not _gru.bf16_products():
        return "this CPU has no AVX512_BF16 (or BLEKOTA_CPU chose a lower level)"
    if model.hidden > _gru.BF16_MAX_HIDDEN:
        return f"bfloat16 products need hidden <= {_gru.BF16_MAX_HIDDEN}"
    return None


def step_words(trainer: Trainer) -> str:
    """Where and how a Trainer's steps run, as the end of a sentence: "" on the CPU in float32,
    else ", each step on DEVICE" or ", products in bfloat16"."""
    if trainer.device_step is not None:
        return f", each step on {trainer.device_step}"
    return ", products in bfloat16" if trainer.bf16 else ""


def import_torch(name: str, device: str) -> ModuleType:
    """The torch module, or ConfigError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ConfigError(f"{name} {device} trains through PyTorch, which is not installed: {TORCH_HINT}") from None
    return torch


def training_step(device: str, model: Model, optimizer: Optimizer, processes: int = 1,
                  average: WeightAverage | None = None) -> TorchStep | None:
    """The step that runs forward, backward and update on `device` for a Trainer (a
    blekota.torchstep.TorchStep, which also keeps the weights' moving average when average, a
    blekota.averaging.WeightAverage, is given), or None for "cpu" (the Trainer's own compiled step)."""
    if check("device", device, processes) == CPU:
        return None
    from .torchstep import TorchStep

    return TorchStep(model, optimizer, CPU if device == TORCH_CPU else device, average=average)
