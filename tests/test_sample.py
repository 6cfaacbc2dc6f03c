"""Generation: the compiled sampling loop against the reference, seeds, hints, streams, chunks."""

import hashlib
import tracemalloc

import numpy as np
import pytest
from conftest import cpu_level

import blekota
from blekota import ConfigError, reference, sampler
from blekota.mulaw import SILENCE, quantize, unquantize

SHAPES = [(5, 1), (33, 2), (70, 3)]  # (hidden, layers): odd sizes exercise the padded panels
SCALE = 0.3  # weights N(0, 0.3^2): at 0.5 the 3-layer net is chaotic enough over 40 steps that
# float32 rounding alone (in the training kernel too) grows past 1e-4


def fed_inputs(levels: np.ndarray) -> np.ndarray:
    """Levels (S, n) a stream produced -> the (n, S) inputs that produced them (silence first)."""
    return np.concatenate([np.full((levels.shape[0], 1), SILENCE), levels[:, :-1]], axis=1).T


def as_streams(x, streams: int, n: int) -> np.ndarray:
    return np.asarray(x).reshape(streams, n, *np.shape(x)[1 + (streams > 1) :])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("streams", [1, 3, 7])
@pytest.mark.parametrize("hidden,layers", SHAPES)
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_hinted_probabilities_match_reference(dtype, tol, hidden, layers, streams, threads, rng,
                                              make_model):
    model = make_model(hidden, layers, dtype, scale=SCALE)
    model.threads = threads
    n = 40
    hints = [unquantize(rng.integers(0, 256, n)) for _ in range(streams)]
    sound, probs = model.sample(n, hint=hints if streams > 1 else hints[0], return_probs=True,
                                streams=streams, seed=3)
    assert probs.dtype == np.dtype(dtype)
    levels = quantize(np.stack(hints))
    np.testing.assert_array_equal(quantize(as_streams(sound, streams, n)), levels)
    expected = reference.forward(model.state_dict(), fed_inputs(levels))[0].transpose(1, 0, 2)
    np.testing.assert_allclose(as_streams(probs, streams, n), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("streams", [1, 5])
@pytest.mark.parametrize("hidden,layers", [(5, 1), (70, 3)])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_every_cpu_level_matches_reference(every_cpu_level, dtype, tol, hidden, layers, streams,
                                           rng, make_model):
    """The portable, AVX2 and AVX-512 sampling code (csrc/cpu.h): one stream runs the panel
    product, several the register tiles."""
    model = make_model(hidden, layers, dtype, scale=SCALE)
    n = 30
    hint = quantize(unquantize(rng.integers(0, 256, (streams, n))))
    sounds = list(unquantize(hint)) if streams > 1 else unquantize(hint[0])
    _, probs = model.sample(n, hint=sounds, return_probs=True, streams=streams, seed=3)
    expected = reference.forward(model.state_dict(), fed_inputs(hint))[0].transpose(1, 0, 2)
    np.testing.assert_allclose(as_streams(probs, streams, n), expected, rtol=tol, atol=tol)
    free = as_streams(model.sample(n, streams=streams, seed=3, top_p=0.9), streams, n)
    assert free.shape[-1] == n and np.isfinite(free).all()


# sha256 (first 16 hex digits) of the levels drawn below, as the sampler drew them before it
# shared fastmath.h and the tiles with training: with FMA (AVX2, AVX-512) float32 draws the same
GOLDEN = {(1, 1.0, 1.0): "63ba0e5082a327b0", (3, 1.0, 1.0): "c14ec8d7b490bf8a",
          (1, 0.7, 0.9): "80ece63a4e855271", (3, 0.7, 0.9): "f5395ced1691b902"}


@pytest.mark.parametrize("level", ["avx2", "avx512"])
@pytest.mark.parametrize("streams,temperature,top_p", list(GOLDEN))
def test_seed_draws_the_recorded_levels(level, streams, temperature, top_p):
    model = blekota.Model(hidden=48, layers=2, seed=0)
    model.params *= 4
    with cpu_level(level):
        sound = model.sample(400, seed=5, streams=streams, temperature=temperature, top_p=top_p, smooth=0)
    levels = quantize(np.asarray(sound)).astype(np.uint8)
    digest = hashlib.sha256(levels.tobytes()).hexdigest()[:16]
    assert digest == GOLDEN[streams, temperature, top_p]


@pytest.mark.parametrize("streams", [1, 4])
def test_hinted_probabilities_carry_the_temperature(streams, rng, make_model):
    model = make_model(16, 2)
    n = 12
    hint = unquantize(rng.integers(0, 256, n))
    _, probs = model.sample(n, temperature=0.5, hint=hint, return_probs=True, streams=streams)
    p = reference.forward(model.state_dict(), fed_inputs(quantize(hint)[None]))[0][:, 0]
    tempered = p**2 / (p**2).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(as_streams(probs, streams, n), np.broadcast_to(tempered, (streams, n, 256)),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("streams", [1, 5])
def test_seed_reproduces_sound_for_any_thread_count(dtype, streams, make_model):
    model = make_model(24, 2, dtype, scale=0.3)
    first = model.sample(300, seed=11, streams=streams)
    model.threads = 2
    again = model.sample(300, seed=11, streams=streams)
    other = model.sample(300, seed=12, streams=streams)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    if streams > 1:
        assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("threads", [2, 3])
def test_one_stream_split_over_unit_panels_draws_what_one_thread_draws(threads, make_model):
    # hidden 130: three panels of 64 units, split unevenly over 2 threads and one each over 3
    # (the model above has a single panel); 200 steps run past the tuner's probes of both choices
    model = make_model(130, 3, "float32", scale=0.3)
    model.threads = 1
    sound, probs = model.sample(200, seed=5, return_probs=True, top_k=40)
    model.threads = threads
    again, probs_again = model.sample(200, seed=5, return_probs=True, top_k=40)
    np.testing.assert_array_equal(sound, again)
    np.testing.assert_array_equal(probs, probs_again)


@pytest.mark.parametrize("streams", [1, 3])
def test_temperature_zero_is_the_argmax_of_the_teacher_forced_pass(streams, make_model):
    model = make_model(20, 2)
    n = 60
    sound = model.sample(n, temperature=0, seed=1, streams=streams)
    np.testing.assert_array_equal(sound, model.sample(n, temperature=0, seed=2, streams=streams))
    levels = quantize(as_streams(sound, streams, n))
    probs = model.probabilities(fed_inputs(levels))
    np.testing.assert_array_equal(probs.argmax(axis=-1).T, levels)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_recorded_probabilities_are_what_was_drawn_from(dtype, make_model):
    model = make_model(12, 2, dtype, scale=0.3)
    sound, probs = model.sample(200, temperature=0.8, seed=5, return_probs=True, streams=2, smooth=0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1, rtol=1e-5)
    levels = quantize(sound)
    drawn = np.take_along_axis(probs, levels[..., None].astype(np.intp), axis=-1)
    assert (drawn > 0).all()
    p = model.probabilities(fed_inputs(levels)).transpose(1, 0, 2)
    tempered = p ** (1 / 0.8)
    np.testing.assert_allclose(probs, tempered / tempered.sum(axis=-1, keepdims=True), rtol=1e-3,
                               atol=1e-6)


def test_hint_longer_than_n_is_cut(rng, make_model):
    model = make_model(8, 1)
    hint = unquantize(rng.integers(0, 256, 50))
    np.testing.assert_array_equal(model.sample(10, hint=hint), hint[:10])
    np.testing.assert_array_equal(model.sample(10, hint=hint, streams=2), np.stack([hint[:10]] * 2))


def test_list_of_hints_primes_each_stream_for_its_own_length(rng, make_model):
    model = make_model(8, 2)
    hints = [unquantize(rng.integers(0, 256, size)) for size in (5, 30, 0)]
    sound = model.sample(20, hint=hints, streams=3, seed=4)
    np.testing.assert_array_equal(sound[0, :5], hints[0])
    np.testing.assert_array_equal(sound[1], hints[1][:20])
    assert sound.shape == (3, 20)


@pytest.mark.parametrize("frame", [0, 4])
@pytest.mark.parametrize("chunk", [7, 40, 1000])
def test_streams_sharing_a_hint_hear_it_once_and_go_on_as_if_each_had(frame, chunk, rng, make_model, monkeypatch):
    model = make_model(10, 2, "float32", scale=0.3)
    if frame:
        model = blekota.Model(hidden=10, layers=2, frame=frame, seed=2, dtype="float32")
    hint = unquantize(rng.integers(0, 256, 40))
    wide = sampler.Sampler(model, 3, 6)
    expected = np.empty((3, 90), np.uint8), np.empty((3, 90, 256), np.float32), np.empty((3, 90), np.float32)
    hint_levels = np.ascontiguousarray(np.tile(quantize(hint), (3, 1)))
    wide.run(expected[0], hint_levels, np.full(3, 40, np.intp), expected[1], 0.9, (0, 1.0, 0.0), expected[2])
    widths = []
    run = sampler.Sampler.run
    monkeypatch.setattr(sampler.Sampler, "run", lambda self, levels, *rest: widths.append(
        (levels.shape[0], levels.shape[1])) or run(self, levels, *rest))
    chunks = list(model.generate(90, chunk, temperature=0.9, hint=hint, seed=6, streams=3, return_probs=True, smooth=0))
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks], axis=-1), unquantize(expected[0]))
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks], axis=-2), expected[1])
    assert sum(n for rows, n in widths if rows == 1) == 40 and sum(n for rows, n in widths if rows == 3) == 50


def test_shapes_and_dtypes(make_model):
    model = make_model(6, 2, "float32")
    assert model.sample(7).shape == (7,)
    assert model.sample(7).dtype == np.float32
    assert model.sample(7, streams=3).shape == (3, 7)
    sound, probs = model.sample(7, streams=3, return_probs=True)
    assert probs.shape == (3, 7, 256) and probs.dtype == np.float32
    sound, probs = model.sample(7, return_probs=True)
    assert sound.shape == (7,) and probs.shape == (7, 256)
    assert model.sample(0).shape == (0,)
    assert model.sample(0, streams=2, return_probs=True)[1].shape == (2, 0, 256)
    assert np.abs(model.sample(100)).max() <= 1


@pytest.mark.parametrize("streams", [1, 3])
def test_generate_chunks_equal_one_sample(streams, rng, make_model):
    model = make_model(10, 2, "float32", scale=0.3)
    hint = unquantize(rng.integers(0, 256, 9))
    kwargs = dict(temperature=0.9, hint=hint, seed=8, streams=streams)
    whole, whole_probs = model.sample(1100, return_probs=True, **kwargs)
    chunks = list(model.generate(1100, chunk=7, return_probs=True, **kwargs))
    assert len(chunks) == 158 and chunks[-1][0].shape[-1] == 1100 - 157 * 7
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks], axis=-1), whole)
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks], axis=-2), whole_probs)
    sounds = model.generate(1100, chunk=500, **kwargs)
    np.testing.assert_array_equal(np.concatenate(list(sounds), axis=-1), whole)


def test_ctrl_c_stops_a_long_sample_after_the_piece_being_drawn(monkeypatch, make_model):
    """The compiled loop takes no signal: one call drew all n steps (minutes for a big model, in the
    REPL's clf.sample or clf.checkpoint) before a Ctrl+C pressed at the start was seen."""
    from blekota import sampler

    model = make_model(6, 1, "float32")
    n = 20000
    whole = model.sample(n, seed=2)
    drawn = []
    run = sampler.Sampler.run

    def pressed_during_the_first(self, levels, *args, **kwargs):
        run(self, levels, *args, **kwargs)
        drawn.append(levels.shape[1])
        raise KeyboardInterrupt  # as the signal handler raises it once the kernel returns

    monkeypatch.setattr(sampler.Sampler, "run", pressed_during_the_first)
    with pytest.raises(KeyboardInterrupt):
        model.sample(n, seed=2)
    assert len(drawn) == 1 and drawn[0] <= n // 4
    monkeypatch.undo()
    np.testing.assert_array_equal(model.sample(n, seed=2), whole)  # drawn in pieces, the same


def test_generate_refuses_a_chunk_below_one_even_for_no_samples(make_model):
    model = make_model(4, 1)
    assert list(model.generate(0)) == []
    with pytest.raises(ConfigError, match="chunk must be a positive integer, got 0"):
        model.generate(0, chunk=0)


def test_generate_memory_does_not_grow_with_n(make_model):
    model = make_model(16, 2, "float32")
    peaks = []
    for n in (2_000, 20_000):
        tracemalloc.start()
        try:
            for _ in model.generate(n, chunk=500, seed=0, streams=2):
                pass
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] <= peaks[0] * 1.1


def test_bad_arguments_are_refused(make_model):
    model = make_model(4, 1)
    with pytest.raises(ConfigError):
        model.sample(10, temperature=-1)
    with pytest.raises(ConfigError):
        model.sample(10, streams=0)
    with pytest.raises(ConfigError):
        model.sample(-1)
    with pytest.raises(ConfigError):
        model.sample(10, hint=[np.zeros(3)], streams=2)
    with pytest.raises(ConfigError):
        model.sample(10, hint=np.array([0.0, np.nan]))
    with pytest.raises(ConfigError):
        model.generate(10, chunk=0)
