"""Pre-emphasis (blekota.emphasis): the filter and its inverse, the levels a model trains on, the
sound it draws (sample, generate, hints, Stream), its files and the command line."""

import subprocess
import sys

import numpy as np
import pytest

import blekota
from blekota import emphasis
from blekota.cli import main
from blekota.dataset import Dataset
from blekota.emphasis import Deemphasis, deemphasize, emphasize
from blekota.errors import ConfigError, ModelFileError
from blekota.mulaw import level_log_widths, quantize, unquantize
from blekota.model import Model

A = 0.85


def voice(n=4000, seed=0):
    """A sound with harmonics and noise, within [-0.5, 0.5]."""
    t = np.arange(n) / 8000
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 540 * t)
            + 0.05 * rng.normal(size=n)).clip(-0.5, 0.5)


def test_the_inverse_filter_undoes_the_filter():
    x = voice()
    y = emphasize(x, A)
    np.testing.assert_allclose(y[1:], x[1:] - A * x[:-1], rtol=0, atol=1e-7)
    assert y[0] == np.float32(x[0])
    np.testing.assert_allclose(deemphasize(y, A), x, rtol=0, atol=1e-6)


def test_the_filter_in_chunks_is_the_filter_at_once(monkeypatch):
    x = voice(1000)
    whole = emphasize(x, A, previous=0.25)
    monkeypatch.setattr(emphasis, "CHUNK", 64)
    np.testing.assert_array_equal(emphasize(x, A, previous=0.25), whole)
    assert whole[0] == np.float32(x[0] - A * 0.25)


def test_the_inverse_filter_carries_its_state_and_clips_only_what_it_returns():
    y = np.random.default_rng(1).uniform(-1, 1, (3, 500))
    whole = Deemphasis(A, 3)(y)
    carried = Deemphasis(A, 3)
    parts = np.concatenate([carried(y[:, :7]), carried(y[:, 7:7]), carried(y[:, 7:])], axis=1)
    np.testing.assert_array_equal(parts, whole)
    assert np.abs(whole).max() == 1.0  # a loud y integrates past full scale and is clipped
    unclipped = np.zeros_like(y)
    for t in range(y.shape[1]):
        unclipped[:, t] = y[:, t] + A * (unclipped[:, t - 1] if t else 0.0)
    np.testing.assert_allclose(whole, unclipped.clip(-1, 1).astype(np.float32), rtol=0, atol=1e-6)
    carried.reset()
    np.testing.assert_array_equal(carried(y), whole)


@pytest.mark.parametrize("value", [-0.1, 0.96, 1.0, float("nan"), True, "0.8"])
def test_a_model_refuses_a_preemphasis_out_of_range(value):
    with pytest.raises(ConfigError, match="preemphasis must be"):
        Model(hidden=8, layers=1, preemphasis=value)


def test_level_widths_cover_the_range_of_samples():
    widths = np.exp(level_log_widths())
    assert widths.sum() == pytest.approx(2.0, abs=1e-12)
    np.testing.assert_allclose(widths, widths[::-1], rtol=1e-9)
    assert widths[128] < 2e-4 < 0.02 < widths[0]
    # each level's range holds exactly the samples that quantize to it
    edges = np.concatenate([[-1.0], -1.0 + np.cumsum(widths)])
    inside = (edges[:-1] + edges[1:]) / 2
    np.testing.assert_array_equal(quantize(inside), np.arange(256))


def test_a_model_with_preemphasis_trains_on_the_filtered_sound(tmp_path):
    x = voice(6000)
    model = Model(hidden=8, layers=1, seed=0, preemphasis=A)
    trainer = blekota.Trainer(model, x, seq_length=10, batch_size=4, directory=tmp_path, log=False)
    np.testing.assert_array_equal(trainer.data.levels, quantize(emphasize(x, A)))
    plain = blekota.Trainer(Model(hidden=8, layers=1, seed=0), x, seq_length=10, batch_size=4,
                            directory=tmp_path, log=False)
    np.testing.assert_array_equal(plain.data.levels, quantize(x))


def test_each_sound_of_a_dataset_is_filtered_from_silence(tmp_path):
    first, second = voice(3000, 1), voice(2000, 2)
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path, sound in zip(paths, (first, second)):
        blekota.save_wav(path, sound, 8000)
    heard = [blekota.load_audio(path, 8000)[0] for path in paths]
    data = Dataset.load(paths, 8000, A)
    expected = np.concatenate([quantize(emphasize(sound, A)) for sound in heard])
    np.testing.assert_array_equal(data.levels, expected)


def test_drawn_sound_is_the_plain_model_draws_filtered_back():
    plain = Model(hidden=16, layers=2, seed=4)
    emphasized = Model(hidden=16, layers=2, seed=4, preemphasis=A)
    for streams in (1, 3):
        drawn = plain.sample(700, seed=5, streams=streams)
        expected = Deemphasis(A, streams)(np.atleast_2d(drawn))
        np.testing.assert_array_equal(np.atleast_2d(emphasized.sample(700, seed=5, streams=streams)), expected)
        chunks = np.concatenate(list(emphasized.generate(700, 123, seed=5, streams=streams)), axis=-1)
        np.testing.assert_array_equal(np.atleast_2d(chunks), expected)


def test_a_hint_is_heard_filtered_and_comes_back_as_it_was():
    hint = voice(500, 3)
    plain = Model(hidden=16, layers=2, seed=4)
    emphasized = Model(hidden=16, layers=2, seed=4, preemphasis=A)
    sound = emphasized.sample(900, seed=6, hint=hint)
    np.testing.assert_array_equal(
        sound, deemphasize(plain.sample(900, seed=6, hint=emphasize(hint, A)), A))
    assert np.abs(sound[:500] - hint).max() < 0.01  # the hint, as 256 levels of its filtered self carry it
    np.testing.assert_array_equal(emphasized.hint_levels(hint, 1, 900)[0][0], quantize(emphasize(hint, A)))


def test_a_stream_continues_the_sampled_sound_and_resets_to_its_start():
    hint = voice(300, 4)
    model = Model(hidden=16, layers=2, seed=7, preemphasis=A)
    for given in (None, hint):
        hinted = 0 if given is None else hint.size
        expected = model.sample(hinted + 600, seed=8, hint=given)[hinted:]
        stream = model.stream(seed=8, hint=given)
        first = np.concatenate([stream.process(250), stream.process(350)])
        np.testing.assert_array_equal(first, expected)
        stream.reset(8)
        np.testing.assert_array_equal(stream.process(600), expected)


def test_files_keep_the_preemphasis_and_old_files_have_none(tmp_path):
    model = Model(hidden=8, layers=1, seed=0, preemphasis=A)
    assert model.architecture["preemphasis"] == A
    assert "preemphasis" not in Model(hidden=8, layers=1).architecture
    assert "preemphasis=0.85" in repr(model)
    loaded = blekota.load(model.save(tmp_path / "m.npz"))
    assert loaded.preemphasis == A
    np.testing.assert_array_equal(loaded.sample(200, seed=1), model.sample(200, seed=1))
    assert blekota.load(Model(hidden=8, layers=1).save(tmp_path / "plain.npz")).preemphasis == 0.0


@pytest.mark.parametrize("value", [1.5, -0.2, "0.85", None])
def test_a_file_with_a_wrong_preemphasis_is_refused_in_one_line(tmp_path, value):
    from blekota import fileformat

    model = Model(hidden=8, layers=1, seed=0)
    path = fileformat.write(tmp_path / "bad.npz", {**model.architecture, "preemphasis": value},
                            model.state_dict(), {}, None)
    with pytest.raises(ModelFileError, match=r"bad\.npz: corrupted or inconsistent model \(preemphasis"):
        blekota.load(path)


def test_the_repl_session_gives_back_the_sound_it_learns(tmp_path):
    from blekota.repl import Session

    x = voice(6000)
    model = Model(hidden=8, layers=1, seed=0, preemphasis=A)
    session = Session(model, blekota.Trainer(model, x, seq_length=10, batch_size=4, directory=tmp_path, log=False))
    np.testing.assert_allclose(session.training_sound, deemphasize(unquantize(quantize(emphasize(x, A))), A),
                               rtol=0, atol=1e-6)
    assert np.abs(session.training_sound - x).max() < 0.01


def test_cli_trains_resumes_describes_and_refuses(tmp_path, capsys):
    sound = tmp_path / "voice.wav"
    blekota.save_wav(sound, voice(8000), 8000)
    out = tmp_path / "runs"
    common = ["--hidden", "16", "--layers", "1", "--seq-length", "20", "--batch-size", "4", "--out-dir", str(out)]
    assert main(["train", str(sound), *common, "--preemphasis", "0.85", "--iterations", "3", "--seed", "1"]) == 0
    assert "GRU hearing x[t] - 0.85 x[t-1]" in capsys.readouterr().out
    model_path = out / "voice_3.npz"
    assert blekota.load(model_path).preemphasis == A
    assert main(["info", str(model_path)]) == 0
    assert "emphasis:    hears x[t] - 0.85 x[t-1]; its draws are filtered back" in capsys.readouterr().out
    assert main(["train", "--resume", str(model_path), "--iterations", "5"]) == 0
    assert blekota.load(out / "voice_8.npz").preemphasis == A  # 5 more
    capsys.readouterr()
    assert main(["train", "--resume", str(model_path), "--preemphasis", "0.5", "--iterations", "6"]) != 0
    assert "--preemphasis 0.5 does not fit it" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["train", str(sound), *common, "--preemphasis", "0.99", "--iterations", "1"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--preemphasis" in err and "0.95" in err and "Traceback" not in err
    assert main(["plot", "heatmap", str(model_path), str(sound), "-n", "50", "-o", str(tmp_path / "h.png")]) == 0
    assert (tmp_path / "h.png").stat().st_size > 0


def test_onnx_metadata_names_the_preemphasis():
    pytest.importorskip("onnx")
    from blekota.onnx import to_onnx

    props = {p.key: p.value for p in to_onnx(Model(hidden=8, layers=1, seed=0, preemphasis=A)).metadata_props}
    assert float(props["preemphasis"]) == A
    props = {p.key: p.value for p in to_onnx(Model(hidden=8, layers=1, seed=0)).metadata_props}
    assert float(props["preemphasis"]) == 0.0


def test_the_pytorch_twin_carries_the_preemphasis_both_ways():
    pytest.importorskip("torch")
    from blekota.torch import GRUModel

    twin = GRUModel.from_blekota(Model(hidden=8, layers=1, seed=0, preemphasis=A))
    assert twin.preemphasis == A and twin.to_blekota().preemphasis == A
    assert twin.to_blekota(preemphasis=0.0).preemphasis == 0.0


def test_scipy_signal_loads_only_for_a_model_with_preemphasis():
    """It takes most of the command line's start (0.7 s of 1.3 here): a plain model does without it."""
    script = """
import sys
import blekota.cli
from blekota import Model
Model(layers=1, hidden=8, seed=0).sample(10, seed=0)
print("scipy.signal" in sys.modules)
Model(layers=1, hidden=8, seed=0, preemphasis=0.85).sample(10, seed=0)
print("scipy.signal" in sys.modules)
"""
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.stdout.split() == ["False", "True"], child.stderr
