import os
import subprocess
import sys

import numpy as np
import pytest

import blekota
from blekota import reference


def test_state_dict_layout():
    model = blekota.Model(hidden=5, layers=3, seed=0)
    state = model.state_dict()
    assert sorted(state) == sorted(
        [f"gru{l}.{n}" for l in range(3) for n in ("W", "Wr", "Wz")] + ["out.Wy"]
    )
    assert state["gru0.W"].shape == (5, 256 + 5 + 1)
    assert state["gru1.Wr"].shape == (5, 5 + 5 + 1)
    assert state["out.Wy"].shape == (256, 6)
    assert model.n_params == sum(v.size for v in state.values())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_dict_round_trip(dtype, make_model):
    model = make_model(7, 2, dtype)
    state = model.state_dict()
    again = blekota.Model.from_state_dict(state, dtype=dtype)
    assert (again.hidden, again.layers) == (7, 2)
    np.testing.assert_array_equal(again.params, model.params)
    for key, value in again.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_seed_gives_same_weights_in_both_dtypes():
    a = blekota.Model(hidden=8, layers=2, seed=5, dtype="float64")
    b = blekota.Model(hidden=8, layers=2, seed=5, dtype="float64")
    c = blekota.Model(hidden=8, layers=2, seed=5, dtype="float32")
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_allclose(c.params, a.params, rtol=1e-6)
    assert not np.array_equal(a.params, blekota.Model(hidden=8, layers=2, seed=6).params)


def test_initialization_is_uniform_within_one_over_root_hidden():
    state = blekota.Model(hidden=64, layers=2, seed=0, dtype="float64").state_dict()
    for matrix in state.values():
        assert np.abs(matrix).max() <= 1 / 8
        assert abs(matrix.std() - 1 / 8 / np.sqrt(3)) < 0.005  # the std of U(-1/8, 1/8)
    assert np.abs(state["gru0.W"][:, -1]).max() > 0.1  # biases start random too


def test_untrained_loss_is_near_uniform():
    model = blekota.Model(hidden=16, layers=2, seed=0)
    x = np.random.default_rng(0).integers(0, 256, (11, 4))
    loss, _, _ = model.loss_and_grad(x)
    assert loss == pytest.approx(np.log(256), rel=1e-2)


@pytest.mark.parametrize(
    "kwargs", [{"hidden": 0}, {"layers": -1}, {"hidden": 2.5}, {"dtype": "float16"}, {"fs": 0}]
)
def test_bad_hyperparameters_are_refused(kwargs):
    with pytest.raises(blekota.ConfigError):
        blekota.Model(**kwargs)


def test_bad_windows_are_refused():
    model = blekota.Model(hidden=4, layers=1)
    with pytest.raises(blekota.ConfigError):
        model.loss_and_grad(np.zeros((1, 3), int))  # no target
    with pytest.raises(blekota.ConfigError):
        model.loss_and_grad(np.full((3, 2), 256))
    with pytest.raises(blekota.ConfigError):
        model.loss_and_grad(np.zeros((3, 2)))  # floats
    with pytest.raises(blekota.ConfigError):
        model.loss_and_grad(np.zeros((3, 2), int), h0=np.zeros((1, 3, 4)))


def test_grads_keys_match_reference_function_shape(rng, make_model):
    model = make_model(4, 2, "float64")
    x = rng.integers(0, 256, (4, 2))
    ours = model.loss_and_grad(x)
    theirs = reference.loss_and_grad(model.state_dict(), x)
    assert len(ours) == len(theirs) == 3
    assert ours[2].shape == theirs[2].shape == (2, 2, 4)


def test_imports_without_display_or_sound_card(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code = (
        "import blekota, blekota.model, blekota.mulaw, blekota.reference;"
        "m = blekota.Model(hidden=8, layers=2, seed=0);"
        "print(m.loss_and_grad(__import__('numpy').zeros((3, 2), int))[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) > 0


def test_sampling_is_seeded_and_honours_the_hint(make_model, rng):
    model = make_model(12, 2, "float64")
    a = model.sample(300, seed=4)
    assert a.shape == (300,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, model.sample(300, seed=4))
    assert not np.array_equal(a, model.sample(300, seed=5))
    hint = rng.uniform(-1, 1, 40)
    sound, probs = model.sample(40, hint=hint, return_probs=True)
    levels = blekota.mulaw.quantize(hint)
    np.testing.assert_array_equal(blekota.mulaw.quantize(sound), levels)
    inputs = np.concatenate([[blekota.mulaw.SILENCE], levels[:-1]])[:, None]
    teacher_forced = model.probabilities(inputs)[:, 0]
    np.testing.assert_allclose(probs, teacher_forced, rtol=1e-9, atol=1e-12)


def test_state_dicts_of_what_is_not_finite_weights_are_refused():
    model = blekota.Model(hidden=4, layers=1, seed=0, threads=1)
    before = model.params.copy()
    good = model.state_dict()
    bad = {
        "NaN": (dict(good, **{"gru0.W": np.full_like(good["gru0.W"], np.nan)}), "gru0.W holds NaN or infinite weights"),
        "text": (dict(good, **{"out.Wy": good["out.Wy"].astype(str)}), "out.Wy must be an array of weights, got dtype <U"),
        "complex": (dict(good, **{"gru0.Wr": good["gru0.Wr"] + 1j}), "gru0.Wr must be an array of weights, got dtype complex"),
        "not a dict": (list(good.items()), "state must be a dict of weight arrays by name, got list"),
        "too large": (dict(good, **{"out.Wy": np.full(good["out.Wy"].shape, 1e300)}),
                      r"^out.Wy holds values too large for the model's float32 \(magnitudes up to 3.4e\+38\), got 1e\+300$"),
    }
    for state, message in bad.values():
        with pytest.raises(blekota.ConfigError, match=message):
            model.load_state_dict(state)
        np.testing.assert_array_equal(model.params, before)
    with pytest.raises(blekota.ConfigError, match="state dict needs at least gru0.W and out.Wy"):
        blekota.Model.from_state_dict(5)
    model.load_state_dict({key: value.tolist() for key, value in good.items()})  # nested lists are arrays too
    np.testing.assert_array_equal(model.params, before)


@pytest.mark.parametrize("h0, dtype", [(np.full((1, 2, 4), 0.5j), "complex128"), (np.full((1, 2, 4), "0.5"), "<U3")])
def test_a_hidden_state_of_complex_numbers_or_text_is_refused_not_cast(h0, dtype):
    model = blekota.Model(hidden=4, layers=1, seed=0, threads=1)
    with pytest.raises(blekota.ConfigError, match=f"^h0 must be an array of numbers, got dtype {dtype}$"):
        model.loss_and_grad(np.zeros((3, 2), int), h0=h0)


def test_a_window_run_meanwhile_on_the_same_model_gets_its_own_scratch(rng):
    # as from another thread: a window started while one runs (here from its ready callback)
    model = blekota.Model(hidden=8, layers=2, seed=0, threads=1)
    x, other = rng.integers(0, 256, (11, 3)), rng.integers(0, 256, (11, 3))
    alone = np.empty_like(model.params)
    model.window(x, grads=alone)
    grads = np.empty_like(model.params)
    model.window(x, grads=grads, ready=lambda start, stop: model.window(other, grads=np.empty_like(model.params)))
    np.testing.assert_array_equal(grads, alone)
    probs = model.probabilities(x[:-1])
    model.window(x, grads=grads, ready=lambda start, stop: np.testing.assert_array_equal(
        model.probabilities(x[:-1]), probs))
