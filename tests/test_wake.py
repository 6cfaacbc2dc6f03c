"""Waking from silence (Model.sample's wake): once a stream has drawn silence (levels 126..129) for
more than wake_after steps in a row, the model hears each further silent level moved by -2..2,
from its step's own uniform, until it has drawn sound for wake_after steps in a row; what is written
stays the draw. Checked on every path against the rule spelled out here and the distributions the
model gives for what it heard."""

import numpy as np
import pytest

import blekota
from blekota import ConfigError, reference, sparsity
from blekota.drawing import WAKE, wake_steps
from blekota.mulaw import SILENCE, quantize

QUIET = reference.QUIET_LEVELS


def heard_levels(drawn: np.ndarray, uniforms: np.ndarray, wake_after: int) -> np.ndarray:
    """What the model heard for drawn levels (S, n) and their uniforms (S, n), by the reference."""
    heard = drawn.astype(np.int64)
    for s in range(drawn.shape[0]):
        run = 0
        for t in range(drawn.shape[1]):
            heard[s, t], run = reference.heard_level(int(drawn[s, t]), uniforms[s, t], run, wake_after)
    return heard


def uniforms(seed: int, streams: int, n: int) -> np.ndarray:
    """The draws' uniforms: one per stream per step, steps in order, streams within a step."""
    return np.random.Generator(np.random.PCG64(seed)).random(n * streams).reshape(n, streams).T


def silent_model(make_model, dtype="float64", hidden=24, frame=0):
    """A random model that draws silence often, and runs of it."""
    if frame:
        model = blekota.Model(hidden=hidden, layers=2, frame=frame, seed=3, dtype=dtype)
        model.params *= 3
    else:
        model = make_model(hidden, 2, dtype, scale=0.6)
    state = model.state_dict()
    state["out.Wy"][QUIET[0] : QUIET[1] + 1, -1] += 4.0
    model.load_state_dict(state)
    return model


def check_heard(model, sound, probs, seed, wake_after, atol):
    """The recorded distributions are the model's for the levels the rule says it heard."""
    streams = 1 if sound.ndim == 1 else sound.shape[0]
    drawn = quantize(sound).reshape(streams, -1)
    heard = heard_levels(drawn, uniforms(seed, streams, drawn.shape[1]), wake_after)
    assert (heard != drawn).any()  # the test reaches the rule
    inputs = np.concatenate([np.full((streams, 1), SILENCE), heard[:, :-1]], axis=1).T.astype(np.uint8)
    expected = model.probabilities(inputs).transpose(1, 0, 2)
    np.testing.assert_allclose(probs.reshape(expected.shape), expected, rtol=0, atol=atol)
    return drawn


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_model_hears_its_long_silences_dithered(dtype, streams, threads, make_model):
    model = silent_model(make_model, dtype)
    model.threads = threads
    wake = 3 / model.fs
    sound, probs = model.sample(600, seed=5, streams=streams, smooth=0, wake=wake, return_probs=True)
    drawn = check_heard(model, sound, probs, 5, 3, 1e-12 if dtype == "float64" else 2e-5)
    asleep = model.sample(600, seed=5, streams=streams, smooth=0, wake=0)
    woken = (drawn != quantize(asleep).reshape(drawn.shape)).argmax(axis=1)
    first_dither = np.array([np.flatnonzero(np.convolve(np.isin(row, range(126, 130)), np.ones(4), "valid") == 4)[0]
                             for row in drawn]) + 3
    assert (woken > first_dither).all()  # nothing changes before the first step heard dithered


def test_a_click_does_not_put_a_woken_stream_back_to_sleep(make_model):
    wake_after, u = 3, 0.0  # frac(4096 u) = 0: a dithered level moves by -2
    heard, run = [], 0
    for drawn in [128] * 4 + [140, 128, 128] + [140] * 3 + [128] * 4:
        level, run = reference.heard_level(drawn, u, run, wake_after)
        heard.append(level)
    # asleep for 3 silent levels, awake from the 4th; a click (140) leaves it awake, so the next
    # silence is heard dithered at once; 3 sound levels in a row put it to sleep until 3 more silent
    assert heard == [128, 128, 128, 126, 140, 126, 126, 140, 140, 140, 128, 128, 128, 126]
    model = silent_model(make_model, "float64")
    sound, probs = model.sample(1500, seed=7, streams=2, smooth=0, wake=3 / model.fs, return_probs=True)
    drawn = check_heard(model, sound, probs, 7, 3, 1e-12)
    moved = heard_levels(drawn, uniforms(7, 2, drawn.shape[1]), 3) != drawn
    after_sound = ~np.isin(drawn[:, :-1], range(QUIET[0], QUIET[1] + 1))
    assert (moved[:, 1:] & after_sound).any()  # the kernel heard a silence dithered right after a click


def test_the_sparse_kernel_wakes_alike(make_model):
    model = silent_model(make_model, "float32", hidden=64)
    sparsity.prune(model, 0.3)
    sound, probs = model.sample(500, seed=2, smooth=0, wake=3 / model.fs, return_probs=True)
    check_heard(model, sound, probs, 2, 3, 2e-5)


def test_the_int8_kernel_hears_the_dithered_levels(make_model):
    """int8 is not exact, so: after each dithered step its distributions are nearer the float
    model's for what the rule says it heard than for what it drew."""
    model = silent_model(make_model, "float32", hidden=64)
    sparsity.prune(model, 0.3)
    model.int8 = True
    sound, probs = model.sample(2000, seed=2, smooth=0, wake=3 / model.fs, return_probs=True)
    model.int8 = False
    drawn = quantize(sound)
    heard = heard_levels(drawn[None], uniforms(2, 1, drawn.size), 3)[0]
    after = np.flatnonzero(heard[:-1] != drawn[:-1]) + 1
    assert after.size >= 20

    def distance(inputs):
        expected = model.probabilities(np.concatenate([[SILENCE], inputs[:-1]]).astype(np.uint8)[:, None])[:, 0]
        return 0.5 * np.abs(probs[after] - expected[after]).sum(axis=1)

    as_heard, as_drawn = distance(heard), distance(drawn)
    assert np.median(as_heard) < 0.05 and (as_heard < as_drawn).mean() > 0.9


def test_chunks_streams_and_hints_carry_the_silence_count(make_model):
    model = silent_model(make_model, "float32")
    wake = 4 / model.fs
    whole = model.sample(700, seed=4, streams=2, wake=wake)
    chunks = np.concatenate(list(model.generate(700, 97, seed=4, streams=2, wake=wake)), axis=-1)
    np.testing.assert_array_equal(chunks, whole)
    stream = model.stream(seed=4, wake=wake)
    one = model.sample(700, seed=4, wake=wake)
    np.testing.assert_array_equal(np.concatenate([stream.process(n) for n in (5, 300, 395)]), one)
    stream.reset(seed=4)
    np.testing.assert_array_equal(stream.process(700), one)
    hint = blekota.mulaw.unquantize(np.full(50, 128))  # a silent hint counts as silence drawn
    hinted, probs = model.sample(300, hint=hint, seed=4, smooth=0, wake=wake, return_probs=True)
    drawn = quantize(hinted)
    u = np.zeros(300)
    u[50:] = np.random.Generator(np.random.PCG64(4)).random(250)
    heard = heard_levels(drawn[None], u[None], 4)[0]
    heard[:50] = drawn[:50]  # hinted steps are heard as they are
    inputs = np.concatenate([[SILENCE], heard[:-1]]).astype(np.uint8)[:, None]
    np.testing.assert_allclose(probs, model.probabilities(inputs)[:, 0], rtol=0, atol=2e-6)


def test_a_frame_model_wakes_and_temperature_0_never_does(make_model):
    model = silent_model(make_model, "float32", hidden=8, frame=5)
    asleep = model.sample(400, seed=6, wake=0)
    woken = model.sample(400, seed=6, wake=2 / model.fs)
    assert not np.array_equal(woken, asleep)
    plain = silent_model(make_model, "float32")
    np.testing.assert_array_equal(plain.sample(300, temperature=0, wake=1 / plain.fs),
                                  plain.sample(300, temperature=0, wake=0))


def test_wake_is_in_seconds_and_checked(make_model):
    model = make_model(8, 1, "float32")
    assert WAKE == 0.2 and wake_steps(WAKE, 8000) == 1600 and wake_steps(1e-9, 8000) == 1 and wake_steps(0, 8000) == 0
    for bad in (-1, float("nan"), 4000, "soon"):
        with pytest.raises(ConfigError, match=r"wake must be a number of seconds in \[0, 3600\] \(0: never\)"):
            model.sample(10, wake=bad)
    stream = model.stream(wake=0.5)
    stream.set(wake=0)
    assert stream.settings["wake"] == 0 and "wake" not in repr(stream)
    assert "wake 0.5 s" in repr(model.stream(wake=0.5))
