"""Model.stream(): a live source whose blocks continue one sound, equal to model.sample's."""

import threading

import numpy as np
import pytest

import blekota
from blekota.errors import ConfigError


@pytest.fixture(scope="module")
def model():
    return blekota.Model(hidden=24, layers=2, seed=3, threads=1)


@pytest.mark.parametrize("settings", [
    {}, {"temperature": 0.8, "top_k": 12}, {"top_p": 0.9}, {"min_p": 0.05, "temperature": 1.3}, {"temperature": 0},
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_blocks_continue_the_sound_sample_makes(settings, dtype):
    model = blekota.Model(hidden=20, layers=2, seed=1, dtype=dtype, threads=1)
    stream = model.stream(seed=9, **settings)
    blocks = [stream.process(n) for n in (256, 0, 1, 100, 999)]
    assert all(block.dtype == np.float32 and block.ndim == 1 for block in blocks)
    assert [block.size for block in blocks] == [256, 0, 1, 100, 999]
    assert np.array_equal(np.concatenate(blocks), model.sample(1356, seed=9, **settings))
    assert stream.position == 1356


def test_a_hint_is_heard_first_and_reset_goes_back_to_it(model):
    hint = 0.6 * np.sin(np.arange(500) / 7)
    expected = model.sample(800, hint=hint, seed=4, top_k=30)[500:]
    stream = model.stream(hint=hint, seed=4, top_k=30)
    assert stream.hinted == 500
    assert np.array_equal(np.concatenate([stream.process(64), stream.process(236)]), expected)
    stream.reset(4)
    assert stream.position == 0
    assert np.array_equal(stream.process(300), expected)
    stream.reset()  # fresh draws, from the same place: the first distribution is the same
    assert not np.array_equal(stream.process(300), expected)


def test_reset_starts_again_from_silence(model):
    stream = model.stream(seed=2)
    first = stream.process(400)
    stream.reset(2)
    assert np.array_equal(stream.process(400), first)
    stream.reset(5)
    assert np.array_equal(stream.process(400), model.sample(400, seed=5))


def test_set_applies_from_the_next_block(model):
    """Temperature 0 draws nothing, and neither does a hint: so the blocks after set() equal a
    stream that heard the first blocks as a hint and draws with the new settings."""
    stream = model.stream(seed=6, temperature=0)
    first = stream.process(300)
    assert np.array_equal(first, model.sample(300, temperature=0))
    stream.set(temperature=1.1, top_k=20)
    assert stream.settings == {"temperature": 1.1, "top_k": 20, "top_p": 1.0, "min_p": 0.0, "smooth": 0.3, "wake": 0.2}
    then = stream.process(200)
    assert np.array_equal(then, model.stream(seed=6, hint=first, temperature=1.1, top_k=20).process(200))
    stream.set(top_k=0)  # what is not given stays
    assert stream.settings["temperature"] == 1.1 and stream.settings["top_k"] == 0


def test_bad_settings_are_refused_and_change_nothing(model):
    stream = model.stream(temperature=0.9, top_k=5)
    for bad, message in [
        (dict(temperature=-1), "temperature must be a finite number >= 0, got -1"),
        (dict(top_k=1.5), "top_k must be an integer >= 0"),
        (dict(top_p=0), r"top_p must be a number in \(0, 1\]"),
        (dict(temperature=2.0, min_p=2), r"min_p must be a number in \[0, 1\]"),
        (dict(smooth=1.5), r"smooth must be a number in \[0, 1\] \(0: the drawn levels\), got 1.5"),
        (dict(wake=-1), r"wake must be a number of seconds in \[0, 3600\] \(0: never\), got -1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            stream.set(**bad)
        with pytest.raises(ConfigError, match=message):
            model.stream(**bad)
    assert stream.settings == {"temperature": 0.9, "top_k": 5, "top_p": 1.0, "min_p": 0.0, "smooth": 0.3,
                               "wake": 0.2}
    with pytest.raises(ConfigError, match="n must be an integer >= 0"):
        stream.process(-1)
    with pytest.raises(ConfigError, match="seed must be None or an integer >= 0"):
        stream.reset(-3)
    with pytest.raises(ConfigError, match="hint contains NaN"):
        model.stream(hint=[0.1, float("nan")])
    with pytest.raises(ConfigError, match="got 2 hints for 1 streams"):
        model.stream(hint=[np.zeros(3), np.zeros(4)])


def test_the_weights_are_the_models_when_the_stream_is_made():
    model = blekota.Model(hidden=16, layers=1, seed=0, threads=1)
    expected = model.sample(200, seed=1)
    stream = model.stream(seed=1)
    model.params[:] = 0.0
    assert np.array_equal(stream.process(200), expected)


def test_set_and_reset_from_another_thread_while_blocks_are_made(model):
    stream = model.stream(seed=0)
    done = threading.Event()

    def turn_knobs():
        for step in range(200):
            stream.set(temperature=0.5 + (step % 10) / 10, top_k=step % 7)
            if step % 50 == 0:
                stream.reset(step)
        done.set()

    knobs = threading.Thread(target=turn_knobs)
    knobs.start()
    while not done.is_set():
        block = stream.process(64)
        assert block.shape == (64,) and np.abs(block).max() <= 1
    knobs.join()


def test_what_the_kernel_learned_about_threads_is_kept_from_block_to_block():
    """One stream on several threads times 1 thread against all (sample_kernel.h's tuner); the
    stream keeps those timings between process() calls instead of timing both in every call."""
    model = blekota.Model(hidden=24, layers=2, seed=3, threads=2)
    stream = model.stream(seed=1)
    tuning = stream._sampler.tuning
    assert tuning.tolist() == [-1.0, -1.0, 0.0, 8.0]
    first = stream.process(100)
    timed = tuning.copy()
    assert timed[0] >= 0 and timed[2] >= 1  # one thread was timed (all threads too, with OpenMP)
    rest = np.concatenate([stream.process(100) for _ in range(4)])
    assert tuning[2] != timed[2] or tuning[3] != timed[3]  # carried on, not started again
    single = blekota.Model(hidden=24, layers=2, seed=3, threads=1)
    assert np.array_equal(np.concatenate([first, rest]), single.sample(500, seed=1))
