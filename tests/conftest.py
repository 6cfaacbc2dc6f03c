"""Shared fixtures: small random models whose weights are large enough to exercise every gate;
subprocesses import the blekota under test."""

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

import blekota
from blekota import _gru, _sample, _vmath

# Subprocesses (python -m blekota, the mpiexec workers) import the blekota under test, not another
# checkout that an editable install in the environment points to
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(Path(blekota.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
)

CPU_MODULES = (_gru, _sample, _vmath)  # each compiled module holds its own CPU level


@contextlib.contextmanager
def cpu_level(name: str):
    """Run every compiled kernel at CPU level `name` (csrc/cpu.h) inside the block; pytest.skip
    when this CPU lacks it."""
    previous = _gru.cpu_level()
    try:
        for module in CPU_MODULES:
            module.cpu_level(name)
    except ValueError as error:
        pytest.skip(str(error))
    try:
        yield name
    finally:
        for module in CPU_MODULES:
            module.cpu_level(previous)


@pytest.fixture(params=_gru.CPU_LEVELS)
def every_cpu_level(request):
    """Each CPU level of the kernels that this CPU has (the others are skipped)."""
    with cpu_level(request.param) as name:
        yield name


def random_model(hidden: int, layers: int, dtype: str = "float64", seed: int = 0, scale: float = 0.5):
    """A model with N(0, scale^2) weights (the default init is too small to test gradients well)."""
    model = blekota.Model(hidden=hidden, layers=layers, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    state = {key: rng.standard_normal(value.shape) * scale for key, value in model.state_dict().items()}
    model.load_state_dict(state)
    return model


@pytest.fixture
def make_model():
    """random_model(hidden, layers, dtype="float64", seed=0, scale=0.5) as a fixture."""
    return random_model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
