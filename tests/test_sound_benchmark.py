"""benchmarks/sound.py's draws fed the real past (--real-past) against the model's own
teacher-forced distributions, and its judgement of several streams."""

import sys
from pathlib import Path

import numpy as np
import pytest

import blekota
from blekota.mulaw import SILENCE, quantize, unquantize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import sound  # noqa: E402


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(5)
    t = np.arange(3000) / 8000
    real = (0.4 * np.sin(2 * np.pi * 150 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    model = blekota.Model(layers=2, hidden=24, dtype="float64", seed=3, threads=1)
    fed = sound.places(real, 2, 500, seed=7)
    inputs = np.concatenate([np.full((1, 2), SILENCE, np.uint8), quantize(fed).T[:-1]])
    return model, real, model.probabilities(inputs).transpose(1, 0, 2)  # (S, n, 256): step t given the real past


def test_places_are_the_real_sound_where_the_seed_says(setting):
    _, real, _ = setting
    fed = sound.places(real, 3, 400, seed=11)
    assert fed.shape == (3, 400)
    for row in fed:
        start = int(np.flatnonzero(np.isclose(real, row[0]))[0])
        assert np.array_equal(row, real[start:start + 400])
    assert np.array_equal(fed, sound.places(real, 3, 400, seed=11))


def test_the_likeliest_level_given_the_real_past(setting):
    model, real, probs = setting
    got = sound.real_past_draws(model, real, {"temperature": 0}, 2, 500, seed=7)  # written as drawn
    assert got.dtype == np.float32 and got.shape == (2, 500)
    np.testing.assert_array_equal(got, unquantize(probs.argmax(axis=-1)).astype(np.float32))


def test_the_mean_given_the_real_past(setting):
    model, real, probs = setting
    got = sound.real_past_draws(model, real, {"smooth": 1}, 2, 500, seed=7)
    means = probs @ unquantize(np.arange(256)).astype(np.float64)
    np.testing.assert_allclose(got, means, rtol=0, atol=1e-6)


def test_draws_follow_the_distributions(setting):
    model, real, probs = setting
    drawn = quantize(sound.real_past_draws(model, real, {"smooth": 0}, 2, 500, seed=7))
    chosen = np.take_along_axis(probs, drawn[..., None].astype(np.intp), axis=-1)[..., 0]
    assert (chosen > 0).all()
    # where each drawn level sits in its distribution: uniform over [0, 1) when drawn from p
    above = np.take_along_axis(np.cumsum(probs, axis=-1), drawn[..., None].astype(np.intp), axis=-1)[..., 0]
    assert abs((above - chosen / 2).mean() - 0.5) < 0.05
    assert not np.array_equal(drawn, quantize(sound.real_past_draws(model, real, {"smooth": 0}, 2, 500, seed=8)))
