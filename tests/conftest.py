"""Shared fixtures: small random models whose weights are large enough to exercise every gate."""

import numpy as np
import pytest

import blekota


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
