"""The compiled core against blekota.reference (float64 oracle)."""

import numpy as np
import pytest

from conftest import cpu_level

import blekota
from blekota import _gru, reference

SHAPES = [  # (T, B, H, layers)
    (1, 1, 1, 1),
    (1, 1, 4, 1),
    (5, 3, 7, 2),
    (7, 1, 9, 3),
    (13, 5, 16, 3),
    (4, 17, 33, 2),
]


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest error relative to the reference's largest magnitude."""
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("T,B,H,layers", SHAPES)
def test_loss_grads_and_state_match_reference(dtype, tol, T, B, H, layers, rng, make_model):
    model = make_model(H, layers, dtype)
    state = model.state_dict()
    x = rng.integers(0, 256, (T + 1, B))
    h0 = rng.standard_normal((layers, B, H)) * 0.5

    loss, grads, h_last = model.loss_and_grad(x, h0)
    ref_loss, ref_grads, ref_h_last = reference.loss_and_grad(state, x, h0)

    assert abs(loss - ref_loss) / ref_loss <= tol
    assert set(grads) == set(ref_grads)
    for key in ref_grads:
        assert grads[key].shape == ref_grads[key].shape
        assert max_rel(grads[key], ref_grads[key]) <= tol, key
    assert max_rel(h_last, ref_h_last) <= tol


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_zero_initial_state_is_default(dtype, tol, rng, make_model):
    model = make_model(8, 2, dtype)
    x = rng.integers(0, 256, (6, 3))
    loss, _, h_last = model.loss_and_grad(x)
    ref_loss, _, ref_h_last = reference.loss_and_grad(model.state_dict(), x)
    assert abs(loss - ref_loss) / ref_loss <= tol
    assert max_rel(h_last, ref_h_last) <= tol


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_teacher_forced_probabilities_match_reference(dtype, tol, rng, make_model):
    model = make_model(12, 2, dtype)
    inputs = rng.integers(0, 256, (9, 4))
    h0 = rng.standard_normal((2, 4, 12)) * 0.5
    probs = model.probabilities(inputs, h0)
    ref = reference.probabilities(model.state_dict(), inputs, h0)
    assert probs.shape == (9, 4, 256)
    assert max_rel(probs, ref) <= tol


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_carried_state_equals_one_long_window(dtype, rng, make_model):
    """Two windows with h_last -> h0 give the same forward pass as one window twice as long."""
    model = make_model(10, 3, dtype)
    x = rng.integers(0, 256, (21, 4))
    loss_long, h_long = model.window(x)
    loss_a, h_mid = model.window(x[:11])
    loss_b, h_end = model.window(x[10:], h_mid)
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert abs((loss_a + loss_b) / 2 - loss_long) <= tol * loss_long
    np.testing.assert_allclose(h_end, h_long, rtol=0, atol=tol)


def test_repeated_windows_reuse_scratch_and_agree(rng, make_model):
    model = make_model(6, 2, "float64")
    x = rng.integers(0, 256, (8, 3))
    first = model.loss_and_grad(x)
    other = rng.integers(0, 256, (4, 5))
    model.loss_and_grad(other)
    again = model.loss_and_grad(x)
    assert first[0] == again[0]
    for key in first[1]:
        np.testing.assert_array_equal(first[1][key], again[1][key])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_does_not_change_results(threads, rng, make_model):
    model = make_model(16, 2, "float64")
    x = rng.integers(0, 256, (10, 7))
    model.threads = 1
    loss1, grads1, _ = model.loss_and_grad(x)
    model.threads = threads
    loss2, grads2, _ = model.loss_and_grad(x)
    assert abs(loss1 - loss2) <= 1e-12 * loss1
    for key in grads1:
        np.testing.assert_allclose(grads2[key], grads1[key], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("T,B,H,layers", [(6, 1, 5, 2), (5, 2, 33, 3), (9, 7, 17, 2), (3, 11, 40, 1)])
def test_every_thread_count_matches_reference(threads, dtype, tol, T, B, H, layers, rng, make_model):
    """Batches smaller than, equal to and not divisible by the thread count."""
    model = make_model(H, layers, dtype)
    model.threads = threads
    x = rng.integers(0, 256, (T + 1, B))
    h0 = rng.standard_normal((layers, B, H)) * 0.5
    loss, grads, h_last = model.loss_and_grad(x, h0)
    ref_loss, ref_grads, ref_h_last = reference.loss_and_grad(model.state_dict(), x, h0)
    assert abs(loss - ref_loss) / ref_loss <= tol
    for key in ref_grads:
        assert max_rel(grads[key], ref_grads[key]) <= tol, key
    assert max_rel(h_last, ref_h_last) <= tol


def test_nan_weights_give_nan_loss_not_a_crash(rng, make_model):
    model = make_model(8, 2, "float32")
    model.params[(256 + 8) * 24] = np.nan  # the first bias of layer 0's r gate
    loss, grads, _ = model.loss_and_grad(rng.integers(0, 256, (5, 3)))
    assert np.isnan(loss)


# windows whose products cover every blocking case of csrc/packed_gemm.h: more rows per thread
# than one packed block of rows (256) and one row block (96), hidden sizes that leave partial
# tiles of rows and of 16-column slices, and 3H above one column block (256)
BLOCKING_SHAPES = [(12, 50, 37, 2, 2), (6, 60, 90, 2, 1), (3, 41, 16, 1, 3), (20, 40, 8, 3, 2)]


@pytest.mark.parametrize("T,B,H,layers,threads", BLOCKING_SHAPES)
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-4), ("float64", 1e-9)])
def test_every_cpu_level_matches_reference(every_cpu_level, dtype, tol, T, B, H, layers, threads,
                                           rng, make_model):
    model = make_model(H, layers, dtype, scale=0.2)
    model.threads = threads
    x = rng.integers(0, 256, (T + 1, B))
    h0 = rng.standard_normal((layers, B, H)) * 0.5
    loss, grads, h_last = model.loss_and_grad(x, h0)
    ref_loss, ref_grads, ref_h_last = reference.loss_and_grad(model.state_dict(), x, h0)
    assert abs(loss - ref_loss) / ref_loss <= tol / 10
    for key in ref_grads:
        assert max_rel(grads[key], ref_grads[key]) <= tol, key
    assert max_rel(h_last, ref_h_last) <= tol / 10


def test_avx2_and_avx512_agree_bit_for_bit(rng, make_model):
    """Both run every element's sum in the same order with one FMA per term, and the same
    elementwise math."""
    model = make_model(37, 2, "float32", scale=0.2)
    x = rng.integers(0, 256, (13, 50))
    results = []
    for name in ("avx512", "avx2"):
        with cpu_level(name):
            results.append(model.loss_and_grad(x))
    assert results[0][0] == results[1][0]
    for key in results[0][1]:
        np.testing.assert_array_equal(results[0][1][key], results[1][1][key])
    np.testing.assert_array_equal(results[0][2], results[1][2])


@pytest.mark.parametrize("H,threads", [(37, 1), (37, 2), (90, 3), (8, 1)])
def test_wide_gradient_tiles_change_no_result(H, threads, rng, make_model):
    """The weight gradients on the wide AVX-512 tiles (Intel) and on the 10 by 32 ones (the
    others) sum every element's terms in the same order: bit for bit the same, with column counts
    that leave 1, 2 and 3 slices of 16 after the groups of 4."""
    model = make_model(H, 2, "float32", scale=0.2)
    model.threads = threads
    x = rng.integers(0, 256, (13, 50))
    chosen = _gru.wide_gradient_tiles()
    results = []
    try:
        for wide in (True, False):
            _gru.wide_gradient_tiles(wide)
            results.append(model.loss_and_grad(x))
    finally:
        _gru.wide_gradient_tiles(chosen)
    assert results[0][0] == results[1][0]
    for key in results[0][1]:
        np.testing.assert_array_equal(results[0][1][key], results[1][1][key])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_do_not_depend_on_which_thread_runs_which_chunk(dtype, rng, make_model):
    """The time loops hand out batch chunks dynamically; every sum must still come out the same."""
    model = make_model(37, 2, dtype, scale=0.2)
    model.threads = 2
    x = rng.integers(0, 256, (7, 80))
    first = model.loss_and_grad(x)
    for _ in range(3):
        again = model.loss_and_grad(x)
        assert again[0] == first[0]
        for key in first[1]:
            np.testing.assert_array_equal(again[1][key], first[1][key])
        np.testing.assert_array_equal(again[2], first[2])


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("threads", [1, 2])
def test_separate_targets_match_reference(dtype, tol, threads, rng, make_model):
    model = make_model(12, 2, dtype)
    model.threads = threads
    x = rng.integers(0, 256, (9, 5))
    targets = rng.integers(0, 256, (8, 5))
    loss, grads, h_last = model.loss_and_grad(x, None, targets)
    ref_loss, ref_grads, ref_h_last = reference.loss_and_grad(model.state_dict(), x, None, targets)
    assert abs(loss - ref_loss) / ref_loss <= tol
    for key in ref_grads:
        assert max_rel(grads[key], ref_grads[key]) <= tol, key
    assert max_rel(h_last, ref_h_last) <= tol
    same, _, _ = model.loss_and_grad(x, None, x[1:])
    assert same == model.loss_and_grad(x)[0]
    with pytest.raises(blekota.ConfigError, match="targets must be shaped"):
        model.loss_and_grad(x, None, targets[:-1])


def test_every_cpu_level_matches_finite_differences(every_cpu_level, rng, make_model):
    """The compiled float64 gradients against central differences of the compiled loss."""
    model = make_model(5, 2, "float64")
    state = model.state_dict()
    x = rng.integers(0, 256, (6, 3))
    _, grads, _ = model.loss_and_grad(x)

    def loss_at(key, i, j, delta):
        shifted = {name: value.copy() for name, value in state.items()}
        shifted[key][i, j] += delta
        model.load_state_dict(shifted)
        return model.loss_and_grad(x)[0]

    step = 1e-4
    for key, matrix in state.items():
        rows, cols = matrix.shape
        picks = [(rng.integers(rows), rng.integers(cols)) for _ in range(3)] + [(0, cols - 1)]
        for i, j in picks:
            numeric = (loss_at(key, i, j, step) - loss_at(key, i, j, -step)) / (2 * step)
            assert numeric == pytest.approx(grads[key][i, j], rel=1e-5, abs=1e-9), (key, i, j)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_gradient_blocks_are_handed_over_final_in_order(every_cpu_level, dtype, tol, threads, rng, make_model):
    """Model.window(ready=...) calls ready(start, stop) once per block of gradient_blocks(), in
    that order, when the block holds its final values; the results equal a pass without it and
    the reference."""
    model = make_model(37, 3, dtype, scale=0.2)
    model.threads = threads
    x = rng.integers(0, 256, (9, 50))
    h0 = rng.standard_normal((3, 50, 37)) * 0.5
    blocks = model.gradient_blocks()
    assert blocks[0] == (blocks[1][1], model.n_params) and blocks[-1][0] == 0
    assert all(upper[0] == lower[1] for upper, lower in zip(blocks[1:], blocks[2:]))
    plain = np.empty_like(model.params)
    loss_plain, h_plain = model.window(x, h0, plain)
    grads, handed = np.full_like(model.params, np.nan), []

    def ready(start, stop):
        handed.append((start, stop, grads[start:stop].copy()))

    loss, h_last = model.window(x, h0, grads, ready=ready)
    assert [(start, stop) for start, stop, _ in handed] == blocks
    for start, stop, values in handed:
        np.testing.assert_array_equal(values, grads[start:stop])
    assert loss == loss_plain
    np.testing.assert_array_equal(grads, plain)
    np.testing.assert_array_equal(h_last, h_plain)
    ref_loss, ref_grads, _ = reference.loss_and_grad(model.state_dict(), x, h0)
    assert abs(loss - ref_loss) / ref_loss <= tol / 10
    canonical = blekota.layout.flat_to_canonical(grads, 3, 37)
    for key in ref_grads:
        assert max_rel(canonical[key], ref_grads[key]) <= tol, key


@pytest.mark.parametrize("threads", [1, 2])
def test_a_failing_ready_ends_the_pass(threads, rng, make_model):
    model = make_model(8, 2, "float64")
    model.threads = threads
    x = rng.integers(0, 256, (5, 4))
    calls = []

    def ready(start, stop):
        calls.append(start)
        if len(calls) == 2:
            raise MemoryError("no room to send")

    with pytest.raises(MemoryError, match="no room to send"):
        model.window(x, None, np.empty_like(model.params), ready=ready)
    assert len(calls) == 2
    loss, _ = model.window(x)  # the model still works
    assert np.isfinite(loss)
    assert model.window(x, None, None, ready=lambda start, stop: calls.append(start))[0] == loss
    assert len(calls) == 2  # no backward pass, nothing handed over
