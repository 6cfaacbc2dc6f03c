"""Smoothing the written sound (Model.sample's smooth): each sample written part of the way from
the drawn level to the mean of the distribution it was drawn from, while the model hears the drawn
level. Checked against the recorded distributions on every dense path, with hints, chunks, streams
and frame tiers."""

import numpy as np
import pytest

import blekota
from blekota import ConfigError, reference, sampler
from blekota.drawing import SMOOTH
from blekota.mulaw import unquantize

SAMPLE_OF_LEVEL = unquantize(np.arange(256)).astype(np.float64)
SETTINGS = [dict(temperature=1.0), dict(temperature=0.7, top_k=20), dict(temperature=1.3, top_p=0.9, min_p=0.01)]


def expected(model, n, smooth, **options):
    """What sample(n, smooth=smooth, **options) writes, from the drawn levels and the recorded
    distributions of the same draws (smooth 0, return_probs)."""
    drawn, probs = model.sample(n, smooth=0, return_probs=True, **options)
    means = probs.astype(np.float64) @ SAMPLE_OF_LEVEL
    return drawn + smooth * (means - drawn)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_sample_goes_towards_its_steps_mean(dtype, streams, threads, setting, make_model):
    model = make_model(24, 2, dtype, scale=0.6)
    model.threads = threads
    for smooth in (0.5, 0.2, 1.0):
        sound = model.sample(300, seed=7, streams=streams, smooth=smooth, **setting)
        assert sound.dtype == np.float32
        np.testing.assert_allclose(sound, expected(model, 300, smooth, seed=7, streams=streams, **setting),
                                   rtol=0, atol=1e-6)


def test_the_model_hears_the_drawn_levels_whatever_the_smoothing(make_model):
    """The same seed draws the same levels, so the smoothed sound stays within a step's spread
    of the drawn one, and smooth 0 writes the drawn levels exactly."""
    model = make_model(16, 2, "float32", scale=0.6)
    drawn = model.sample(500, seed=3, smooth=0)
    assert np.isin(drawn, unquantize(np.arange(256))).all()
    smoothed = model.sample(500, seed=3)
    assert not np.array_equal(smoothed, drawn)
    np.testing.assert_allclose(smoothed, expected(model, 500, SMOOTH, seed=3), atol=1e-6)


def test_hinted_steps_and_temperature_0_write_the_levels(rng, make_model):
    model = make_model(12, 2, "float64", scale=0.6)
    hint = unquantize(rng.integers(0, 256, 40))
    sound = model.sample(100, hint=hint, seed=2, smooth=1.0)
    np.testing.assert_array_equal(sound[:40], hint)
    np.testing.assert_allclose(sound[40:], expected(model, 100, 1.0, hint=hint, seed=2)[40:], atol=1e-6)
    np.testing.assert_array_equal(model.sample(200, temperature=0, smooth=1.0), model.sample(200, temperature=0, smooth=0))


def test_chunks_streams_and_frames_agree_with_one_call(make_model):
    model = make_model(20, 2, "float32", scale=0.6)
    whole = model.sample(900, seed=4, streams=2)
    chunks = np.concatenate(list(model.generate(900, 250, seed=4, streams=2)), axis=-1)
    np.testing.assert_array_equal(chunks, whole)
    framed = blekota.Model(hidden=8, layers=2, frame=5, seed=1)
    framed.params *= 6
    np.testing.assert_allclose(framed.sample(120, seed=5, smooth=0.5), expected(framed, 120, 0.5, seed=5), atol=1e-6)


def test_a_stream_smooths_as_sample_does_and_set_changes_it(make_model):
    model = make_model(16, 2, "float32", scale=0.6)
    stream = model.stream(seed=9)
    first = stream.process(300)
    stream.set(smooth=0.0)
    second = stream.process(200)
    assert stream.settings["smooth"] == 0.0
    np.testing.assert_array_equal(first, model.sample(300, seed=9))
    drawn = model.sample(500, seed=9, smooth=0)
    np.testing.assert_array_equal(second, drawn[300:])
    assert "smooth 0.3" in repr(model.stream()) and "smooth" not in repr(stream)


def test_preemphasis_smooths_before_turning_the_sound_back(make_model):
    """With preemphasis the model's levels stand for the emphasized sound: that is smoothed, then
    turned back."""
    model = make_model(16, 2, "float64", scale=0.6)
    model.preemphasis = 0.5
    stepper = sampler.Sampler(model, 1, 1)
    levels, means = np.empty((1, 300), np.uint8), np.empty((1, 300))
    stepper.run(levels, np.empty((1, 0), np.uint8), np.zeros(1, np.intp), np.empty((1, 0, 256)), 1.0, (0, 1.0, 0.0),
                means)
    heard = SAMPLE_OF_LEVEL[levels[0]]
    np.testing.assert_allclose(model.sample(300, seed=1, smooth=0.5),
                               blekota.emphasis.deemphasize(heard + 0.5 * (means[0] - heard), 0.5), atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "half"])
def test_bad_smooth_is_refused(bad, make_model):
    model = make_model(8, 1, "float32")
    with pytest.raises(ConfigError, match=r"smooth must be a number in \[0, 1\] \(0: the drawn levels\)"):
        model.sample(10, smooth=bad)
    with pytest.raises(ConfigError, match="smooth must be"):
        model.stream(smooth=bad)


def test_means_match_the_reference_distribution(make_model):
    """The kernel's mean is that of the tempered, truncated distribution the reference spells out."""
    model = make_model(10, 2, "float64", scale=0.6)
    sound, probs = model.sample(60, seed=8, smooth=0, return_probs=True, temperature=0.8, top_k=30)
    p = model.probabilities(np.concatenate([[128], blekota.mulaw.quantize(sound)[:-1]])[:, None])[:, 0]
    distribution = reference.sampling_distribution(p, temperature=0.8, top_k=30)
    smoothed = model.sample(60, seed=8, smooth=1.0, temperature=0.8, top_k=30)
    np.testing.assert_allclose(smoothed, distribution @ SAMPLE_OF_LEVEL, atol=1e-6)
