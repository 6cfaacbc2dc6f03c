"""blekota.torch: the same cell in PyTorch, checked against the compiled core (skipped without torch)."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blekota
from blekota.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "torch_train.py"


def test_missing_torch_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "blekota.torch", raising=False)
    with pytest.raises(ImportError, match="blekota.torch needs PyTorch.*pip install torch"):
        importlib.import_module("blekota.torch")


try:
    import torch

    from blekota.torch import GRUModel
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def torch_grads(net) -> dict[str, np.ndarray]:
    """The gradients of net's parameters keyed like Model.state_dict()."""
    grads = {f"gru{index}.{name}": getattr(layer, name).grad.numpy()
             for index, layer in enumerate(net.gru) for name in ("W", "Wr", "Wz")}
    grads["out.Wy"] = net.Wy.grad.numpy()
    return grads


@needs_torch
@pytest.mark.parametrize("hidden, layers, T, B", [(8, 1, 1, 1), (12, 3, 17, 4), (33, 2, 9, 5)])
def test_loss_and_gradients_equal_the_compiled_core(make_model, rng, hidden, layers, T, B):
    model = make_model(hidden, layers, "float64", seed=hidden)
    x = rng.integers(0, 256, (T + 1, B))
    h0 = rng.standard_normal((layers, B, hidden)) * 0.5
    loss, grads, h_last = model.loss_and_grad(x, h0)

    net = GRUModel.from_blekota(model)
    assert net.Wy.dtype == torch.float64
    torch_loss, torch_h = net.loss(torch.from_numpy(x), torch.from_numpy(h0))
    torch_loss.backward()
    assert abs(torch_loss.item() - loss) <= 1e-9 * abs(loss)
    np.testing.assert_allclose(torch_h.detach().numpy(), h_last, rtol=0, atol=1e-9)
    for key, grad in torch_grads(net).items():
        scale = np.abs(grads[key]).max()
        assert np.abs(grad - grads[key]).max() <= 1e-9 * scale, key


@needs_torch
def test_logits_give_blekota_probabilities_in_float32(make_model, rng):
    model = make_model(16, 2, "float32")
    inputs = rng.integers(0, 256, (20, 3))
    net = GRUModel.from_blekota(model)
    assert net.Wy.dtype == torch.float32
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(inputs))
    probs = torch.softmax(logits, dim=-1).numpy()
    np.testing.assert_allclose(probs, model.probabilities(inputs), rtol=0, atol=1e-5)


@needs_torch
def test_round_trip_keeps_weights_fs_and_dtype(make_model):
    model = make_model(10, 2, "float64")
    model.fs = 16000
    back = GRUModel.from_blekota(model).to_blekota()
    assert (back.hidden, back.layers, back.fs, back.dtype) == (10, 2, 16000, np.float64)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value)
    assert GRUModel.from_blekota(model, dtype=torch.float32).to_blekota().dtype == np.float32
    assert GRUModel.from_blekota(model).to_blekota(fs=8000, dtype="float32").fs == 8000


@needs_torch
def test_a_new_module_starts_like_a_new_model():
    torch.manual_seed(0)
    net = GRUModel(hidden=6, layers=2, fs=11025)
    model = net.to_blekota()
    assert (model.hidden, model.layers, model.fs, model.dtype) == (6, 2, 11025, np.float32)
    bound = 1 / np.sqrt(6)
    state, new = model.state_dict(), blekota.Model(hidden=6, layers=2, seed=0).state_dict()
    assert state.keys() == new.keys()
    for key, value in state.items():  # uniform in +-1/sqrt(hidden), biases too, as a new Model's
        assert value.shape == new[key].shape
        assert np.abs(value).max() <= bound and np.abs(new[key]).max() <= bound
        assert np.std(value) == pytest.approx(bound / np.sqrt(3), rel=0.25)
        assert np.std(value[:, -1]) > 0.1 * bound
    logits, h = net(torch.zeros((3, 2), dtype=torch.long))
    assert logits.shape == (3, 2, 256) and h.shape == (2, 2, 6)


@needs_torch
def test_a_torch_training_step_lowers_the_loss_blekota_measures(make_model, rng):
    model = make_model(8, 1, "float64", scale=0.1)
    x = rng.integers(100, 140, (31, 2))
    net = GRUModel.from_blekota(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(5):
        loss, _ = net.loss(torch.from_numpy(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert net.to_blekota().loss_and_grad(x)[0] < model.loss_and_grad(x)[0] - 0.1


@needs_torch
def test_bad_input_is_refused(make_model):
    net = GRUModel(hidden=4, layers=2)
    with pytest.raises(ConfigError, match="integer tensor"):
        net(torch.zeros((3, 2)))
    with pytest.raises(ConfigError, match="0..255"):
        net(torch.full((3, 2), 256))
    with pytest.raises(ConfigError, match="h0 must have shape"):
        net(torch.zeros((3, 2), dtype=torch.long), torch.zeros((2, 3, 4)))
    with pytest.raises(ConfigError, match="hidden must be a positive integer"):
        GRUModel(hidden=0)
    with pytest.raises(ConfigError, match="needs a blekota Model"):
        GRUModel.from_blekota("voice.npz")
    with torch.no_grad():
        net.Wy[0, 0] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        net.to_blekota()


@needs_torch
def test_example_trains_converts_and_samples(tmp_path):
    output = tmp_path / "small.npz"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "2", "--hidden", "8", "--layers", "1",
         "--seq-length", "20", "--batch-size", "4", "--device", "cpu", "-o", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "step     2" in result.stdout
    torch_loss, blekota_loss = (float(word) for word in
                                result.stdout.split("torch ")[1].split(" nats")[0].split(", blekota "))
    assert abs(torch_loss - blekota_loss) < 1e-5
    model = blekota.load(output)
    assert (model.hidden, model.layers) == (8, 1)
    assert output.with_suffix(".wav").exists()
    again = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "1", "-o", str(output)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "already exists" in again.stderr
