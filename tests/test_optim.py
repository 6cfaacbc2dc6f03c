"""The optimizers' compiled steps (blekota._optim): the bits of their NumPy formulas, on any
number of threads, and a word on weights that stop being finite."""

import math

import numpy as np
import pytest

from blekota import _optim
from blekota.averaging import WeightAverage
from blekota.errors import ConfigError
from blekota.optim import make_optimizer

SIZES = [1, 37, 70_001]  # 70,001 crosses two of the pieces the threads take (32,768 elements)


def numpy_step(name: str, state: dict, params, grads, t: int, lr: float, clip: float = 5.0) -> None:
    """The update as NumPy would write it, one array operation at a time."""
    np.clip(grads, -clip, clip, out=grads)
    scratch = np.empty_like(params)
    if name == "adam":
        m, v = state["m"], state["v"]
        m *= 0.9
        np.multiply(grads, 1.0 - 0.9, out=scratch)
        m += scratch
        v *= 0.999
        np.multiply(grads, grads, out=scratch)
        scratch *= 1.0 - 0.999
        v += scratch
        correction = math.sqrt(1.0 - 0.999**t)
        step_size, eps = lr * correction / (1.0 - 0.9**t), 1e-8 * correction
        np.sqrt(v, out=scratch)
        scratch += eps
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
    else:
        m = state["m"]
        np.multiply(grads, grads, out=scratch)
        if name == "rmsprop":
            m *= 0.9
            scratch *= 1.0 - 0.9
        m += scratch
        np.add(m, 1e-8, out=scratch)
        np.sqrt(scratch, out=scratch)
        np.divide(grads, scratch, out=scratch)
        scratch *= lr
    params -= scratch


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_step_gives_the_bits_of_the_numpy_formula(rng, name, dtype, size, threads):
    optimizer = make_optimizer(name, size, dtype, 2e-3)
    params = rng.standard_normal(size).astype(dtype)
    expected, state = params.copy(), {slot: np.zeros(size, dtype) for slot in optimizer.slots}
    for t in range(1, 5):
        grads = (rng.standard_normal(size) * 4).astype(dtype)  # some beyond the clip at 5
        grads_copy = grads.copy()
        assert optimizer.step(params, grads, threads) is True
        numpy_step(name, state, expected, grads_copy, t, 2e-3)
        np.testing.assert_array_equal(grads, grads_copy)  # clipped in place alike
        np.testing.assert_array_equal(params, expected)
        for slot in optimizer.slots:
            np.testing.assert_array_equal(getattr(optimizer, slot), state[slot])


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad"])
def test_a_step_says_when_a_weight_stops_being_finite(rng, name):
    size = 70_001
    optimizer = make_optimizer(name, size, np.float32, 1e-3)
    params = rng.standard_normal(size).astype(np.float32)
    grads = rng.standard_normal(size).astype(np.float32)
    grads[50_000] = np.nan  # clipping keeps NaN
    assert optimizer.step(params, grads, 2) is False
    assert np.isnan(grads[50_000]) and np.isnan(params[50_000]) and np.isfinite(np.delete(params, 50_000)).all()
    params, grads = np.ones(size, np.float32), np.zeros(size, np.float32)
    params[-1] = np.inf
    assert make_optimizer(name, size, np.float32, 1e-3).step(params, grads) is False
    params[-1] = 1
    assert make_optimizer(name, size, np.float32, 1e-3).step(params, grads) is True


def test_rmsprop_with_decay_one_is_not_adagrad(rng):
    """decay 1 keeps RMSprop's m where it is (the formula, however odd); Adagrad's grows."""
    params, grads = np.ones(5), rng.standard_normal(5)
    rmsprop = make_optimizer("rmsprop", 5, np.float64, 1e-3, decay=1.0)
    rmsprop.step(params.copy(), grads.copy())
    adagrad = make_optimizer("adagrad", 5, np.float64, 1e-3)
    adagrad.step(params.copy(), grads.copy())
    assert (rmsprop.m == 0).all() and (adagrad.m == grads**2).all()


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValueError, match="same length"):
        make_optimizer("adam", 4, np.float32, 1e-3).step(np.zeros(4, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="same length"):
        _optim.moving_average(np.zeros(4), np.zeros(5), 0.9)


def test_an_option_the_optimizer_does_not_take_is_named():
    with pytest.raises(ConfigError, match=r"^adam takes no option decay \(its options: clip, beta1, beta2, eps\)$"):
        make_optimizer("adam", 4, np.float32, 1e-3, decay=0.9)
    assert make_optimizer("rmsprop", 4, np.float32, 1e-3, decay=0.5).decay == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_moving_average_gives_the_bits_of_the_numpy_formula(rng, dtype, threads):
    size = 70_001
    average, expected = WeightAverage(0.99, size, dtype), np.zeros(size, dtype)
    for _ in range(3):
        weights = rng.standard_normal(size).astype(dtype)
        average.update(weights, threads)
        expected *= 0.99
        expected += (1.0 - 0.99) * weights
        np.testing.assert_array_equal(average.total_sum, expected)
