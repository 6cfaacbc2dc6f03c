"""The frame tier (blekota.frames): the compiled core's conditioning input against the NumPy
reference, gradients by finite differences, files, training, sampling and the CLI."""

import numpy as np
import pytest

import blekota
from blekota import reference
from blekota.cli import main
from blekota.errors import ConfigError
from blekota.frames import frame_size
from blekota.mulaw import quantize
from blekota.layout import canonical_shapes
from blekota.model import Model

from conftest import cpu_level


def frame_model(frame=4, hidden=8, layers=2, dtype="float64", seed=1, threads=1, scale=0.5):
    """A frame model whose weights are large enough to exercise every gate."""
    model = Model(hidden=hidden, layers=layers, dtype=dtype, seed=seed, threads=threads, frame=frame)
    rng = np.random.default_rng(seed)
    model.load_state_dict({key: rng.uniform(-scale, scale, value.shape) for key, value in model.state_dict().items()})
    return model


def window_and_state(model, T, B=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (T + 1, B))
    h0 = rng.normal(size=(model.state_rows, B, model.hidden)) * 0.3
    return x, h0


@pytest.mark.parametrize("T", [12, 10, 3, 4])
@pytest.mark.parametrize("level", ["portable", "avx512"])
@pytest.mark.parametrize("threads", [1, 2])
def test_forward_matches_the_reference(T, level, threads):
    model = frame_model(threads=threads)
    x, h0 = window_and_state(model, T)
    with cpu_level(level):
        probs = model.probabilities(x[:-1], h0)
        _, h_last = model.window(x, h0)
    expected, expected_h, _ = reference.forward(model.state_dict(), x[:-1], h0)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(h_last, expected_h, rtol=0, atol=1e-13)


def test_float32_forward_is_close_to_the_reference():
    model = frame_model(dtype="float32", threads=2)
    x, h0 = window_and_state(model, 12)
    probs = model.probabilities(x[:-1], h0.astype(np.float32))
    expected = reference.probabilities(model.state_dict(), x[:-1], h0)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=2e-5)


def test_a_new_frame_model_computes_what_the_stack_alone_does():
    x, _ = window_and_state(frame_model(), 12)
    plain = Model(hidden=8, layers=2, dtype="float64", seed=3)
    framed = Model(hidden=8, layers=2, dtype="float64", seed=3, frame=4)
    np.testing.assert_array_equal(framed.core_params, plain.core_params)
    np.testing.assert_array_equal(framed.probabilities(x[:-1]), plain.probabilities(x[:-1]))
    grads = np.zeros_like(framed.params)
    framed.window(x, None, grads)
    assert np.abs(grads[framed.core_params.size :]).max() > 0  # the conditioning starts learning at once


def test_frame_state_is_the_frame_tier_after_the_full_frames():
    model = frame_model(frame=4)
    x, h0 = window_and_state(model, 10)
    _, h_last = model.window(x, h0)
    state = model.state_dict()
    h = h0[-1]
    for start in (0, 4):  # the partial frame of steps 8, 9 is not consumed
        h = reference.frame_step(state, x[start : start + 4].T, h)
    np.testing.assert_allclose(h_last[-1], h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("T", [12, 9])
@pytest.mark.parametrize("threads", [1, 2])
def test_gradients_match_finite_differences(T, threads):
    model = frame_model(threads=threads)
    x, h0 = window_and_state(model, T, seed=T)
    grads = np.zeros_like(model.params)
    model.window(x, h0, grads)
    rng = np.random.default_rng(T)
    core = model.core_params.size
    picked = np.concatenate([rng.choice(core, 40, replace=False), core + np.arange(model.n_params - core)])
    eps = 1e-6
    for i in picked:
        keep = model.params[i]
        model.params[i] = keep + eps
        up, _ = model.window(x, h0)
        model.params[i] = keep - eps
        down, _ = model.window(x, h0)
        model.params[i] = keep
        assert abs((up - down) / (2 * eps) - grads[i]) <= 1e-8 + 1e-6 * abs(grads[i]), i
    assert np.abs(grads[core:]).max() > 1e-4  # the frame tier learns


def test_gradient_blocks_end_with_the_frame_tier_and_ready_hands_it_over():
    model = frame_model()
    blocks = model.gradient_blocks()
    assert blocks[-1] == (model.core_params.size, model.n_params)
    assert sorted(blocks)[0][0] == 0 and max(stop for _, stop in blocks) == model.n_params
    handed = []
    x, h0 = window_and_state(model, 8)
    model.window(x, h0, np.zeros_like(model.params), ready=lambda start, stop: handed.append((start, stop)))
    assert handed == blocks


def test_state_dict_layout_and_sizes():
    model = frame_model(frame=5, hidden=6, layers=1)
    state = model.state_dict()
    assert set(state) == set(canonical_shapes(1, 6, 5))
    assert state["frame.W"].shape == (6, 5 + 6 + 1) and state["frame.C"].shape == (6, 6)
    assert model.n_params == blekota.Model(hidden=6, layers=1).n_params + frame_size(5, 6)
    again = Model.from_state_dict(state, dtype="float64")
    assert again.frame == 5
    np.testing.assert_array_equal(again.params, model.params)
    assert model.zero_state(3).shape == (2, 3, 6)


def test_model_file_round_trip(tmp_path):
    model = frame_model(frame=4, dtype="float32")
    model.save(tmp_path / "m.npz")
    loaded = blekota.load(tmp_path / "m.npz")
    assert loaded.frame == 4 and loaded.architecture["frame"] == 4
    np.testing.assert_array_equal(loaded.params, model.params)
    assert "frame" not in blekota.Model(hidden=8, layers=1).architecture


@pytest.mark.parametrize("frame", [-1, 4097, 2.5, True])
def test_bad_frame_lengths_are_refused(frame):
    with pytest.raises(ConfigError, match="frame"):
        Model(hidden=8, layers=1, frame=frame)


def test_training_needs_whole_frames_and_the_cpu(tmp_path):
    sound = np.sin(np.arange(8000) * 0.05).astype(np.float32)
    model = frame_model(frame=8, dtype="float32")
    with pytest.raises(ConfigError, match="not a multiple of the model's frame of 8"):
        blekota.Trainer(model, sound, seq_length=20, batch_size=4, directory=tmp_path)
    with pytest.raises(ConfigError, match="CPU only"):
        blekota.Trainer(model, sound, seq_length=16, batch_size=4, directory=tmp_path, device="torch-cpu")


def test_no_onnx_or_torch_twin_for_a_frame_model():
    model = frame_model()
    with pytest.raises(ConfigError, match="frame tier"):
        blekota.to_onnx(model)
    pytest.importorskip("torch")
    from blekota import torch as torch_module
    with pytest.raises(ConfigError, match="frame tier"):
        torch_module.GRUModel.from_blekota(model)


def test_training_lowers_the_loss_and_resumes_exactly(tmp_path):
    t = np.arange(16000) / 8000
    sound = (0.6 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    model = Model(hidden=16, layers=1, seed=0, threads=1, frame=10)
    options = dict(seq_length=20, batch_size=8, name="f", checkpoint_every=0, directory=tmp_path, seed=0)
    trainer = blekota.Trainer(model, sound, **options)
    first = trainer.step()
    trainer.train(40)
    assert trainer.h.shape == (2, 8, 16)
    assert trainer.validation_loss() < first
    resumed = blekota.Trainer.from_checkpoint(tmp_path / "f_41.npz", audio=sound, threads=1)
    assert resumed.model.frame == 10
    np.testing.assert_array_equal(resumed.h, trainer.h)
    for _ in range(3):
        assert resumed.step() == trainer.step()
    np.testing.assert_array_equal(resumed.model.params, trainer.model.params)


def teacher_forced(model, levels):
    """The model's distributions along levels (n,) from silence, as training computes them."""
    inputs = np.concatenate([[128], levels[:-1]]).astype(np.uint8)[:, None]
    return model.probabilities(inputs)[:, 0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sampling_draws_from_the_distributions_training_computes(dtype):
    model = frame_model(frame=5, dtype=dtype, scale=0.3)
    sound, probs = model.sample(37, seed=3, return_probs=True, smooth=0)
    levels = quantize(sound)
    expected = teacher_forced(model, levels)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-12 if dtype == "float64" else 2e-5)


def test_chunks_streams_and_hints_cross_frames_alike():
    model = frame_model(frame=6, scale=0.3)
    whole = model.sample(50, seed=5)
    chunked = np.concatenate(list(model.generate(50, chunk=7, seed=5)))
    np.testing.assert_array_equal(chunked, whole)
    hint = np.sin(np.arange(9) * 0.7) * 0.5
    streams = model.sample(20, seed=2, streams=3, hint=hint)
    for s in range(3):
        assert np.array_equal(streams[s, :9], streams[0, :9])
    stream = model.stream(seed=4)
    first = np.concatenate([stream.process(5), stream.process(8)])
    stream.reset(seed=4)
    np.testing.assert_array_equal(stream.process(13), first)
    np.testing.assert_array_equal(first, model.sample(13, seed=4).astype(first.dtype))


def test_cli_trains_samples_and_describes_a_frame_model(tmp_path, capsys):
    sound = tmp_path / "tone.wav"
    t = np.arange(8000) / 8000
    blekota.save_wav(sound, 0.5 * np.sin(2 * np.pi * 220 * t), 8000)
    out = tmp_path / "runs"
    assert main(["train", str(sound), "--hidden", "16", "--layers", "1", "--seq-length", "20", "--batch-size", "4",
                 "--frame", "10", "--iterations", "3", "--out-dir", str(out), "--seed", "1"]) == 0
    assert "GRU with a frame tier of 10 samples" in capsys.readouterr().out
    model_path = out / "tone_3.npz"
    assert main(["info", str(model_path)]) == 0
    assert "frame tier:  a GRU of 16 units over frames of 10 samples (1.25 ms)" in capsys.readouterr().out
    assert main(["sample", str(model_path), "-n", "100", "-o", str(tmp_path / "s.wav"), "--seed", "1"]) == 0
    assert blekota.load_audio(tmp_path / "s.wav", 8000)[0].size == 100
    assert main(["train", str(sound), "--hidden", "16", "--layers", "1", "--seq-length", "25", "--frame", "10",
                 "--iterations", "1", "--out-dir", str(tmp_path / "other")]) != 0
    assert "not a multiple of the model's frame of 10 samples" in capsys.readouterr().err
    assert main(["train", "--resume", str(model_path), "--frame", "20", "--iterations", "4"]) != 0
    assert "--frame 20 does not fit it" in capsys.readouterr().err
