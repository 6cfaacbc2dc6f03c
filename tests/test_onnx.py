"""ONNX export: the file runs in onnxruntime and gives blekota's probabilities and states."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blekota
from blekota import onnx as blekota_onnx
from blekota import reference
from blekota.cli import main
from blekota.errors import BlekotaError, ConfigError

README = Path(__file__).resolve().parent.parent / "README.md"

try:
    import onnx
except ImportError:
    onnx = None
try:
    import onnxruntime
except ImportError:
    onnxruntime = None
needs_onnx = pytest.mark.skipif(onnx is None, reason="onnx is not installed")
needs_runtime = pytest.mark.skipif(onnx is None or onnxruntime is None, reason="onnx or onnxruntime is not installed")


def session(model, input="level"):
    proto = blekota.to_onnx(model, input)
    return onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(sess, levels, h0, input="level"):
    """probs, logits, h of the exported graph for levels (T, B) and h0 (layers, B, H)."""
    feed = {"level": levels.astype(np.int64)} if input == "level" else {"onehot": np.eye(256, dtype=np.float32)[levels]}
    return sess.run(["probs", "logits", "h"], {**feed, "h0": h0.astype(np.float32)})


@needs_runtime
@pytest.mark.parametrize("hidden, layers, T, B", [(16, 1, 1, 1), (24, 3, 40, 4), (7, 2, 13, 9)])
@pytest.mark.parametrize("input", ["level", "onehot"])
def test_probabilities_and_state_equal_blekota(make_model, rng, hidden, layers, T, B, input):
    model = make_model(hidden, layers, "float32", seed=hidden)
    levels = rng.integers(0, 256, (T, B))
    h0 = (rng.standard_normal((layers, B, hidden)) * 0.5).astype(np.float32)
    probs, logits, h = run(session(model, input), levels, h0, input)

    np.testing.assert_allclose(probs, model.probabilities(levels, h0), rtol=0, atol=1e-5)
    x = np.concatenate([levels, levels[-1:]])
    np.testing.assert_allclose(h, model.window(x, h0)[1], rtol=0, atol=1e-5)
    expected, expected_h, _ = reference.forward(model.state_dict(), levels, h0)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(h, expected_h, rtol=0, atol=1e-5)
    shifted = np.log(expected) - logits
    np.testing.assert_allclose(shifted, shifted[..., :1].repeat(256, axis=-1), rtol=0, atol=1e-4)


@needs_runtime
def test_a_float64_model_is_exported_in_float32(make_model, rng):
    model = make_model(12, 2, "float64")
    levels = rng.integers(0, 256, (25, 2))
    probs, _, _ = run(session(model), levels, np.zeros((2, 2, 12)))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, model.probabilities(levels), rtol=0, atol=1e-5)


@needs_runtime
def test_one_step_at_a_time_equals_the_window(make_model, rng):
    model = make_model(10, 2, "float32")
    sess = session(model)
    levels = rng.integers(0, 256, (30, 3))
    h0 = np.zeros((2, 3, 10), np.float32)
    whole, _, h_whole = run(sess, levels, h0)
    h = h0
    for t in range(levels.shape[0]):
        step, _, h = run(sess, levels[t : t + 1], h)
        np.testing.assert_allclose(step[0], whole[t], rtol=0, atol=1e-6)
    np.testing.assert_allclose(h, h_whole, rtol=0, atol=1e-6)


@needs_onnx
def test_the_graph_uses_standard_gru_operators_and_dynamic_shapes(make_model):
    model = make_model(8, 3, "float32")
    model.fs = 16000
    proto = blekota.to_onnx(model)
    grus = [node for node in proto.graph.node if node.op_type == "GRU"]
    assert len(grus) == 3
    for node in grus:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes == {"hidden_size": 8, "linear_before_reset": 0}
    dims = {value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            for value in [*proto.graph.input, *proto.graph.output]}
    assert dims == {"level": ["time", "batch"], "h0": [3, "batch", 8], "probs": ["time", "batch", 256],
                    "logits": ["time", "batch", 256], "h": [3, "batch", 8]}
    meta = {prop.key: prop.value for prop in proto.metadata_props}
    assert meta == {"fs": "16000", "layers": "3", "hidden": "8", "levels": "256", "mu": "255",
                    "silence": "128", "input": "level", "preemphasis": "0.0"}
    assert proto.opset_import[0].version == blekota_onnx.OPSET and proto.ir_version == blekota_onnx.IR_VERSION


@needs_onnx
def test_export_refuses_bad_arguments(make_model, tmp_path, monkeypatch):
    model = make_model(4, 1, "float32")
    with pytest.raises(ConfigError, match="input must be one of level, onehot"):
        blekota.to_onnx(model, "mulaw")
    with pytest.raises(ConfigError, match="needs a blekota Model"):
        blekota.to_onnx("model.npz")
    monkeypatch.setattr(blekota_onnx, "MAX_BYTES", 1000)
    with pytest.raises(ConfigError, match="more than one ONNX file holds"):
        blekota.to_onnx(model)
    monkeypatch.undo()
    with pytest.raises(BlekotaError, match="could not write"):
        blekota.export_onnx(model, tmp_path / "missing" / "model.onnx")


@needs_onnx
def test_cli_export_of_a_preemphasis_model_says_its_levels_need_filtering_back(tmp_path, capsys):
    model = blekota.Model(hidden=6, layers=1, seed=0, preemphasis=0.85)
    main(["export", str(model.save(tmp_path / "voice.npz"))])
    assert capsys.readouterr().out.endswith(
        "; its levels are of y[t] = x[t] - 0.85 x[t-1] (metadata preemphasis): filter the draws back\n")


@needs_onnx
def test_cli_export_writes_and_never_overwrites(make_model, tmp_path, capsys):
    model = make_model(6, 2, "float32")
    model_path = model.save(tmp_path / "voice.npz")
    assert main(["export", str(model_path)]) == 0
    written = tmp_path / "voice.onnx"
    assert f"wrote {written}: 2 GRU layers x 6 units at 8000 Hz" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(written)))
    before = written.read_bytes()

    assert main(["export", str(model_path), "-o", str(written)]) == 2
    assert "already exists (use --force to overwrite)" in capsys.readouterr().err
    assert written.read_bytes() == before
    other = tmp_path / "other.onnx"
    assert main(["export", str(model_path), "-o", str(other), "--input", "onehot"]) == 0
    assert [value.name for value in onnx.load(str(other)).graph.input] == ["onehot", "h0"]
    assert main(["export", str(model_path), "-o", str(written), "--force", "--input", "onehot"]) == 0
    assert written.read_bytes() == other.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.onnx", "voice.npz", "voice.onnx"]
    for name in ("other.npz", "copy.NPZ", "old.pkl"):  # a model file's name: refused, even with --force
        assert main(["export", str(model_path), "-o", str(tmp_path / name), "--force"]) == 2
        assert capsys.readouterr().err == (f"blekota: error: {tmp_path / name}: -o writes an ONNX file, not "
                                           f"{name.rpartition('.')[2].lower()}; give it a name ending in .onnx\n")
    assert blekota.load(model_path).hidden == 6
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.onnx", "voice.npz", "voice.onnx"]


@needs_onnx
def test_export_never_writes_onnx_under_a_model_files_or_a_sounds_name(make_model, tmp_path, capsys):
    """export_onnx('voice.npz') replaced the model file there with an ONNX file, and export -o
    take.wav --force a sound: such names are refused, as model.save refuses .onnx and .wav."""
    model = make_model(4, 1, "float32")
    model_path = model.save(tmp_path / "voice.npz")
    sound = blekota.save_wav(tmp_path / "take.wav", np.zeros(100), 8000)
    before = model_path.read_bytes(), sound.read_bytes()
    for path in (model_path, sound, tmp_path / "take.FLAC"):
        with pytest.raises(ConfigError, match=f"{path.name}: an ONNX file is written here, not "):
            blekota.export_onnx(model, path)
    assert main(["export", str(model_path), "-o", str(sound), "--force"]) == 2
    assert capsys.readouterr().err == (f"blekota: error: {sound}: -o writes an ONNX file, not wav; "
                                       "give it a name ending in .onnx\n")
    assert (model_path.read_bytes(), sound.read_bytes()) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["take.wav", "voice.npz"]


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


def test_cli_export_errors_are_one_line(make_model, tmp_path, capsys, monkeypatch):
    assert main(["export", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: no such file" in one_line_error(capsys)
    text = tmp_path / "notes.npz"
    text.write_text("not a model")
    assert main(["export", str(text)]) == 2
    assert "notes.npz: a text file, not a blekota model file" in one_line_error(capsys)
    assert main(["export", str(text), "-o", str(tmp_path / "no" / "such.onnx")]) == 2
    assert "the directory" in one_line_error(capsys)

    model_path = make_model(4, 1, "float32").save(tmp_path / "voice.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(model_path)]) == 2
    error = one_line_error(capsys)
    assert error.rstrip().endswith('exporting to ONNX needs the onnx package: pip install "blekota[onnx]", or in a clone of '
                          'blekota: pip install -e ".[onnx]"')
    assert not (tmp_path / "voice.onnx").exists()


@needs_onnx
def test_cli_export_of_a_model_it_cannot_export_names_the_file(make_model, tmp_path, capsys, monkeypatch):
    framed = blekota.Model(hidden=4, layers=1, frame=4, seed=0).save(tmp_path / "framed.npz")
    assert main(["export", str(framed)]) == 2
    assert one_line_error(capsys) == (f"blekota: error: {framed}: a model with a frame tier has no ONNX export yet: "
                                      "only the stack's graph is written\n")
    large = make_model(4, 1, "float32").save(tmp_path / "large.npz")
    monkeypatch.setattr(blekota_onnx, "MAX_BYTES", 1000)
    assert main(["export", str(large)]) == 2
    assert one_line_error(capsys).startswith(f"blekota: error: {large}: a 1x4 model has ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["framed.npz", "large.npz"]


def readme_sampling_loop() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    loops = [block for block in blocks if "onnxruntime" in block]
    assert len(loops) == 1
    return loops[0]


def test_readme_sampling_loop_is_short():
    assert len(readme_sampling_loop().strip().splitlines()) <= 15


@needs_runtime
def test_readme_sampling_loop_runs(make_model, tmp_path, monkeypatch):
    model = make_model(8, 2, "float32", scale=0.3)
    model.fs = 1000
    blekota.export_onnx(model, tmp_path / "voice.onnx")
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_sampling_loop(), "README.md", "exec"), {})
    sound, fs = blekota.load_audio(tmp_path / "voice_onnx.wav", None)
    assert fs == 1000 and sound.size == 2000
    assert np.abs(sound).max() <= 1 and np.unique(sound).size > 10


@needs_runtime
def test_readme_sampling_loop_undoes_the_pre_emphasis(make_model, tmp_path, monkeypatch):
    """A --preemphasis model draws levels of y[t] = x[t] - a x[t-1]: the loop writes the sound x."""
    model = make_model(8, 2, "float32", scale=0.3)
    model.fs, model.preemphasis = 1000, 0.85
    blekota.export_onnx(model, tmp_path / "voice.onnx")
    monkeypatch.chdir(tmp_path)
    names = {}
    exec(compile(readme_sampling_loop(), "README.md", "exec"), names)
    sound, _ = blekota.load_audio(tmp_path / "voice_onnx.wav", None)
    heard = blekota.mulaw.unquantize(np.array(names["levels"]))
    np.testing.assert_allclose(sound, blekota.emphasis.deemphasize(heard, 0.85), rtol=0, atol=1e-4)


@needs_onnx
def test_cli_export_to_standard_output_says_so_on_stderr(make_model, tmp_path):
    """export -o - writes the ONNX file alone to standard output, and its line to stderr."""
    model_path = make_model(4, 1, "float32").save(tmp_path / "voice.npz")
    child = subprocess.run([sys.executable, "-m", "blekota", "export", str(model_path), "-o", "-"],
                           capture_output=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stderr.decode().startswith("wrote -: 1 GRU layer x 4 units at 8000 Hz")
    onnx.checker.check_model(onnx.load_from_string(child.stdout))
