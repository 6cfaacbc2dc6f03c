"""Top-k, top-p and min-p truncation: the reference by hand, the compiled loop against it."""

import numpy as np
import pytest

from blekota import reference
from blekota.mulaw import SILENCE, quantize, unquantize

# (temperature, top_k, top_p, min_p): each filter alone, together, and with temperature
SETTINGS = [
    (1.0, 5, 1.0, 0.0),
    (1.0, 0, 0.6, 0.0),
    (1.0, 0, 1.0, 0.2),
    (0.8, 40, 0.9, 0.05),
    (1.3, 3, 0.99, 0.0),
]


def dyadic() -> np.ndarray:
    """A distribution with exact sums: levels 10, 3, 7, 200 hold 1/2, 1/4, 1/8, 1/8."""
    p = np.zeros(256)
    p[[10, 3, 7, 200]] = [0.5, 0.25, 0.125, 0.125]
    return p


def kept(p: np.ndarray) -> list[int]:
    return np.flatnonzero(p).tolist()


@pytest.mark.parametrize(
    "options,levels",
    [
        (dict(top_k=1), [10]),
        (dict(top_k=3), [3, 7, 10]),  # of the tied 1/8s, the lower level ranks first
        (dict(top_k=256), [3, 7, 10, 200]),
        (dict(top_p=0.5), [10]),  # 1/2 reaches 0.5
        (dict(top_p=0.75), [3, 10]),
        (dict(top_p=0.76), [3, 7, 10]),
        (dict(top_p=1e-9), [10]),
        (dict(min_p=0.25), [3, 7, 10, 200]),  # 1/8 is exactly 0.25 of 1/2: kept
        (dict(min_p=0.26), [3, 10]),
        (dict(min_p=1.0), [10]),
        (dict(top_k=3, top_p=0.9), [3, 7, 10]),  # top_p of what top_k left: 0.9 of 7/8 needs 3
        (dict(top_k=3, top_p=0.8), [3, 10]),  # 0.8 of 7/8 = 0.7 needs 2
        (dict(top_k=2, min_p=0.6), [10]),
    ],
)
def test_reference_truncation_by_hand(options, levels):
    p = reference.sampling_distribution(dyadic(), **options)
    assert kept(p) == levels
    np.testing.assert_allclose(p[levels], dyadic()[levels] / dyadic()[levels].sum(), rtol=1e-15)


def test_reference_temperature_then_truncation():
    p = reference.sampling_distribution(dyadic(), temperature=0.5, top_p=0.9)
    # squared: 16, 4, 1, 1 (/22); 16/22 + 4/22 = 0.909 reaches 0.9
    assert kept(p) == [3, 10]
    np.testing.assert_allclose(p[[10, 3]], [0.8, 0.2], rtol=1e-15)
    np.testing.assert_array_equal(reference.sampling_distribution(dyadic()), dyadic())


def test_reference_draw_level():
    p = dyadic()
    assert reference.draw_level(p, 0.0) == 3  # levels in order: 3 holds [0, 1/4)
    assert reference.draw_level(p, 0.3) == 7
    assert reference.draw_level(p, 0.4) == 10
    assert reference.draw_level(p, 0.99) == 200


def fed_inputs(levels: np.ndarray) -> np.ndarray:
    """Levels (S, n) a stream produced -> the (n, S) inputs that produced them (silence first)."""
    return np.concatenate([np.full((levels.shape[0], 1), SILENCE), levels[:, :-1]], axis=1).T


def expected_distributions(model, levels, setting) -> np.ndarray:
    """(S, n, 256): what the reference draws each level of levels (S, n) from."""
    temperature, top_k, top_p, min_p = setting
    p = reference.forward(model.state_dict(), fed_inputs(levels))[0].transpose(1, 0, 2)
    return reference.sampling_distribution(p, temperature, top_k, top_p, min_p)


def truncated(setting) -> dict:
    return dict(zip(("temperature", "top_k", "top_p", "min_p"), setting))


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_hinted_distributions_match_reference(dtype, tol, streams, threads, setting, rng, make_model):
    model = make_model(33, 2, dtype, scale=0.3)
    model.threads = threads
    n = 40
    hints = [unquantize(rng.integers(0, 256, n)) for _ in range(streams)]
    _, probs = model.sample(n, hint=hints, streams=streams, return_probs=True, **truncated(setting))
    probs = probs.reshape(streams, n, 256)
    expected = expected_distributions(model, quantize(np.stack(hints)), setting)
    assert (probs > 0).sum() == (expected > 0).sum()
    np.testing.assert_allclose(probs, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("streams", [1, 4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_drawn_levels_match_reference(dtype, streams, setting, make_model):
    model = make_model(24, 2, dtype, scale=0.6)
    n, seed = 150, 21
    sound, probs = model.sample(n, seed=seed, streams=streams, return_probs=True, smooth=0, **truncated(setting))
    levels = quantize(sound).reshape(streams, n)
    probs = probs.reshape(streams, n, 256)
    uniforms = np.random.Generator(np.random.PCG64(seed)).random(n * streams).reshape(n, streams)
    drawn = [[reference.draw_level(probs[s, t], uniforms[t, s]) for t in range(n)] for s in range(streams)]
    np.testing.assert_array_equal(levels, drawn)
    expected = expected_distributions(model, levels, setting)
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
    if dtype == "float64":
        drawn = [[reference.draw_level(expected[s, t], uniforms[t, s]) for t in range(n)]
                 for s in range(streams)]
        np.testing.assert_array_equal(levels, drawn)
    model.threads = 2
    np.testing.assert_array_equal(model.sample(n, seed=seed, streams=streams, smooth=0, **truncated(setting)), sound)


@pytest.mark.parametrize("streams", [1, 3])
def test_top_k_1_and_min_p_1_are_the_argmax(streams, make_model):
    model = make_model(20, 2, scale=0.4)
    argmax = model.sample(200, temperature=0, streams=streams)
    for options in (dict(top_k=1), dict(min_p=1.0), dict(top_p=1e-6), dict(temperature=3.0, top_k=1)):
        np.testing.assert_array_equal(model.sample(200, seed=5, streams=streams, **options), argmax)


@pytest.mark.parametrize("streams", [1, 3])
def test_off_values_change_nothing(streams, make_model):
    model = make_model(20, 2, "float32", scale=0.4)
    plain, plain_probs = model.sample(300, seed=9, streams=streams, return_probs=True)
    for options in (dict(top_k=0, top_p=1.0, min_p=0.0), dict(top_k=256), dict(top_k=10**6)):
        sound, probs = model.sample(300, seed=9, streams=streams, return_probs=True, **options)
        np.testing.assert_array_equal(sound, plain)
        np.testing.assert_array_equal(probs, plain_probs)


def test_truncation_narrows_what_is_drawn(make_model):
    model = make_model(20, 2, scale=0.4)
    _, wide = model.sample(300, seed=2, streams=4, return_probs=True)
    _, narrow = model.sample(300, seed=2, streams=4, return_probs=True, top_p=0.5, min_p=0.1)
    assert (narrow > 0).sum(axis=-1).mean() < 0.2 * (wide > 0).sum(axis=-1).mean()
    np.testing.assert_allclose(narrow.sum(axis=-1), 1, rtol=1e-12)


def test_generate_chunks_equal_one_sample_with_truncation(make_model):
    model = make_model(10, 2, "float32", scale=0.3)
    options = dict(temperature=0.9, seed=8, streams=2, top_k=30, top_p=0.95, min_p=0.01)
    whole = model.sample(1000, **options)
    np.testing.assert_array_equal(np.concatenate(list(model.generate(1000, chunk=77, **options)), axis=-1),
                                  whole)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("streams", [1, 3])
def test_equal_probabilities_keep_the_lowest_levels(dtype, streams, make_model):
    model = make_model(8, 1, dtype)
    model.load_state_dict({key: np.zeros_like(value) for key, value in model.state_dict().items()})
    for options, count in ((dict(top_k=5), 5), (dict(top_p=0.1), 26), (dict(top_k=200, top_p=0.5), 100)):
        sound, probs = model.sample(50, seed=1, streams=streams, return_probs=True, **options)
        expected = np.zeros(256)
        expected[:count] = 1 / count
        np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), rtol=1e-6)
        assert quantize(sound).max() < count
