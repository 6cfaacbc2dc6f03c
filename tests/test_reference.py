"""The reference itself: central finite differences of its loss against its gradients."""

import numpy as np
import pytest

from blekota import reference


@pytest.mark.parametrize("layers,hidden", [(1, 5), (2, 4), (3, 3)])
def test_gradients_match_finite_differences(layers, hidden, rng, make_model):
    state = make_model(hidden, layers, "float64", seed=layers).state_dict()
    x = rng.integers(0, 256, (6, 3))
    x[0, 0] = x[1, 1]  # a level used twice: the one-hot gather's gradient must accumulate
    h0 = rng.standard_normal((layers, 3, hidden)) * 0.5
    _, grads, _ = reference.loss_and_grad(state, x, h0)
    for key, matrix in state.items():
        rows, cols = matrix.shape
        picks = [(rng.integers(rows), rng.integers(cols)) for _ in range(6)]
        if key == "gru0.W":
            picks += [(0, x[0, 0]), (1, x[2, 2])]  # columns of levels actually fed
        picks.append((0, cols - 1))  # a bias
        for i, j in picks:
            numeric = central_difference(state, key, i, j, x, h0)
            analytic = grads[key][i, j]
            scale = max(abs(numeric), abs(analytic))
            if scale < 1e-7:
                assert abs(numeric - analytic) < 1e-13, (key, i, j)
            else:
                assert abs(numeric - analytic) / scale <= 1e-6, (key, i, j, numeric, analytic)


def central_difference(state, key, i, j, x, h0, step=1e-3):
    """dLoss/dstate[key][i, j] by central differences with one Richardson extrapolation:
    truncation error O(step^4), rounding error about 1e-15 / step."""

    def loss_at(delta):
        shifted = dict(state)
        shifted[key] = state[key].copy()
        shifted[key][i, j] += delta
        return reference.loss_and_grad(shifted, x, h0)[0]

    def difference(h):
        return (loss_at(h) - loss_at(-h)) / (2 * h)

    return (4 * difference(step / 2) - difference(step)) / 3


def test_probabilities_are_distributions(rng, make_model):
    state = make_model(6, 2, "float64").state_dict()
    probs = reference.probabilities(state, rng.integers(0, 256, (5, 2)))
    assert probs.shape == (5, 2, 256)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
    assert (probs > 0).all()


def test_loss_is_mean_negative_log_likelihood(rng, make_model):
    state = make_model(6, 2, "float64").state_dict()
    x = rng.integers(0, 256, (5, 3))
    loss, _, _ = reference.loss_and_grad(state, x)
    probs = reference.probabilities(state, x[:-1])
    picked = np.take_along_axis(probs, x[1:, :, None], axis=2)[..., 0]
    assert loss == pytest.approx(-np.log(picked).mean(), rel=1e-12)
