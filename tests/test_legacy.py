"""Importing models pickled by the original NumPy blekota (pickles made here with stand-ins)."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from legacy_pickles import GRU, original_modules, write_pickle

import blekota
from blekota import reference
from blekota.cli import main
from blekota.layout import canonical_to_flat
from blekota.repl import open_session
from blekota.train import Trainer


def bety(**attributes) -> GRU:
    """A small original model with the attributes its training left behind."""
    fields = dict(fs=8000, name="bety", file="bety.wav", iterations=1200, epochs=3, seq_length=20, batches=4, alpha=1e-3)
    fields.update(attributes)
    return GRU(h_n=6, layer_n=2, seed=1, **fields)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_imported_model_gives_the_original_probabilities(tmp_path, protocol):
    original = bety()
    model = blekota.import_legacy(write_pickle(tmp_path / "bety.pkl", original, protocol))
    assert (model.layers, model.hidden, model.fs, model.dtype) == (2, 6, 8000, np.float64)
    levels = np.random.default_rng(0).integers(0, 256, (9, 3))
    expected = original.forward(levels)
    np.testing.assert_allclose(model.probabilities(levels), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(reference.probabilities(model.state_dict(), levels), expected, rtol=1e-12, atol=1e-15)


def test_info_and_rmsprop_state_come_along(tmp_path):
    original = bety(fs=16000)
    legacy = blekota.legacy.read_legacy(write_pickle(tmp_path / "bety.pkl", original))
    assert legacy.model.fs == 16000
    assert legacy.info == {
        "iterations": 1200, "epochs": 3, "training_files": ["bety.wav"], "history": [],
        "trainer": {"optimizer": "rmsprop", "clip": 5.0, "t": 1200, "seq_length": 20, "batch_size": 4,
                    "lr": 1e-3, "name": "bety"},
        "imported_from": str(tmp_path / "bety.pkl"),
    }
    moments = {f"gru{l}.{n}": getattr(layer, n).m for l, layer in enumerate(original.layers) for n in ("W", "Wr", "Wz")}
    moments["out.Wy"] = original.Wy.m
    flat = np.empty(legacy.model.n_params)
    canonical_to_flat(moments, 2, 6, flat)
    np.testing.assert_array_equal(legacy.train_arrays["optim.m"], flat)


def test_converted_file_resumes_training_with_the_rmsprop_state(tmp_path):
    original = bety()
    converted = blekota.convert_legacy(write_pickle(tmp_path / "bety.pkl", original), tmp_path / "bety.npz")
    sound = (0.5 * np.sin(np.arange(2000) * 0.05)).astype(np.float32)
    trainer = Trainer.from_checkpoint(converted, audio=sound, threads=1, directory=tmp_path)
    assert trainer.optimizer.name == "rmsprop" and trainer.optimizer.lr == 1e-3
    assert (trainer.seq_length, trainer.batch_size, trainer.name, trainer.iteration, trainer.epoch) == (20, 4, "bety", 1200, 3)
    expected_m = blekota.legacy.read_legacy(tmp_path / "bety.pkl").train_arrays["optim.m"]
    np.testing.assert_array_equal(trainer.optimizer.m, expected_m)
    # one step continues the original's RMSprop (decay 0.9, clip 5, eps 1e-8) from that state
    x = trainer._next_window()
    _, grads, _ = trainer.model.loss_and_grad(x, trainer.h)
    before = trainer.model.state_dict()
    trainer.step()
    after = trainer.model.state_dict()
    for key, g in grads.items():
        g = np.clip(g, -5, 5)
        m = 0.9 * getattr(original.Wy if key == "out.Wy" else getattr(original.layers[int(key[3])], key.split(".")[1]), "m") + 0.1 * g**2
        np.testing.assert_allclose(after[key], before[key] - 1e-3 * g / np.sqrt(m + 1e-8), rtol=1e-9, atol=1e-12)
    assert trainer.iteration == 1201


def test_cli_import_legacy(tmp_path, capsys):
    pkl = write_pickle(tmp_path / "bety.pkl", bety())
    assert main(["import-legacy", str(pkl)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'bety.npz'}: 2 GRU layers x 6 units, 8000 Hz, 1200 iterations" in out
    assert main(["import-legacy", str(pkl), "-o", str(tmp_path / "bety.npz")]) == 2
    assert "bety.npz: already exists (use --force to overwrite)" in capsys.readouterr().err
    assert main(["import-legacy", str(pkl), "-o", str(tmp_path / "b32.npz"), "--dtype", "float32"]) == 0
    assert blekota.load(tmp_path / "b32.npz").dtype == np.float32
    assert main(["info", str(tmp_path / "bety.npz")]) == 0
    assert "rmsprop lr 0.001, seq_length 20, batch_size 4" in capsys.readouterr().out
    for name in ("bety.onnx", "copy.pkl", "b.WAV"):  # another kind of file's name: refused, even with --force
        assert main(["import-legacy", str(pkl), "-o", str(tmp_path / name), "--force"]) == 2
        assert capsys.readouterr().err == (f"blekota: error: {tmp_path / name}: -o writes a npz file, not "
                                           f"{name.rsplit('.', 1)[1].lower()}; give it a name ending in .npz\n")
    assert not any((tmp_path / name).exists() for name in ("bety.onnx", "copy.pkl", "b.WAV"))


def test_missing_attributes_get_defaults(tmp_path):
    original = bety()
    for name in ("fs", "name", "file", "iterations", "epochs", "seq_length", "batches", "alpha"):
        delattr(original, name)
    model = blekota.import_legacy(write_pickle(tmp_path / "old.pkl", original))
    assert model.fs == 8000
    assert model.info["trainer"] == {"optimizer": "rmsprop", "clip": 5.0, "t": 0, "name": "old"}  # the pickle's stem
    assert model.info["training_files"] == [] and model.info["iterations"] == 0


def test_pickles_without_a_name_resumed_in_one_folder_write_files_of_their_own(tmp_path):
    sound = tmp_path / "tone.wav"
    blekota.save_wav(sound, 0.5 * np.sin(np.arange(4000) * 0.05), 8000)
    for seed, stem in enumerate(("anna", "bety")):
        pkl = write_pickle(tmp_path / f"{stem}.pkl", bety(name="", alpha=1e-3 * (seed + 1), iterations=10, seq_length=10))
        assert main(["train", "--resume", str(pkl), str(sound), "--iterations", "2", "--checkpoint-sound", "0",
                     "--threads", "1", "-q"]) == 0
    anna, bety_model = blekota.load(tmp_path / "anna_12.npz"), blekota.load(tmp_path / "bety_12.npz")
    assert not np.array_equal(anna.params, bety_model.params)
    assert (tmp_path / "anna_best.npz").exists() and (tmp_path / "bety_best.npz").exists()
    assert not list(tmp_path.glob("unnamed_model*"))


def test_models_converted_without_a_name_by_an_earlier_version_train_under_their_file_stems(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sound = tmp_path / "tone.wav"
    blekota.save_wav(sound, 0.5 * np.sin(np.arange(4000) * 0.05), 8000)
    for seed, stem in enumerate(("anna", "bety")):  # .npz files as import-legacy wrote them before 2026-12-06
        pkl = write_pickle(tmp_path / f"{stem}.pkl", bety(name="", alpha=1e-3 * (seed + 1), iterations=10, seq_length=10))
        legacy = blekota.legacy.read_legacy(pkl)
        del legacy.info["trainer"]["name"]
        blekota.modelfile.save(tmp_path / f"{stem}.npz", legacy.model, legacy.info, legacy.train_arrays)
        pkl.unlink()
    assert main(["train", "--resume", "anna.npz", "tone.wav", "--iterations", "2", "--checkpoint-sound", "0",
                 "--threads", "1", "-q"]) == 0
    assert blekota.load("anna_12.npz").info["trainer"]["name"] == "anna"
    session, note = open_session("bety.npz", {"threads": 1}, {})
    assert "cannot train here: bety.wav: no such file" in note  # the original's training sound is not here
    session.set_audio(str(sound))
    assert session.trainer.name == "bety"
    session.train(2)
    anna, bety_model = blekota.load("anna_12.npz"), blekota.load("bety_12.npz")
    assert not np.array_equal(anna.params, bety_model.params)
    assert not list(tmp_path.glob("unnamed_model*"))
    assert main(["train", "--resume", "bety.npz", "tone.wav", "--model-name", "other", "--iterations", "1",
                 "--checkpoint-sound", "0", "--threads", "1", "-q"]) == 0  # a name given still wins
    assert (tmp_path / "other_11.npz").exists()


class Exploit:
    """Runs a shell command when unpickled by an unrestricted unpickler."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(blekota.ModelFileError, match=(
        r"evil.pkl: refused: the pickle asks for (posix|os).system, which is not part of a blekota model "
        r"\(loading it could run code\)"
    )):
        blekota.import_legacy(path)
    original = bety()
    original.layers[1].W.name = Exploit(marker)  # hidden deep inside a valid model
    with original_modules():
        path.write_bytes(pickle.dumps(original))
    with pytest.raises(blekota.ModelFileError, match="refused: the pickle asks for (posix|os).system"):
        blekota.import_legacy(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda g: setattr(g, "h_n", 7), r"layers\[0\].W.a is float64 \(6, 263\), expected float \(7, 264\)"),
        (lambda g: g.layers.pop(), "h_n, layer_n and the list of layers do not agree"),
        (lambda g: setattr(g.Wy, "a", g.Wy.a[:, :-1]), r"Wy.a is float64 \(256, 6\), expected float \(256, 7\)"),
        (lambda g: setattr(g.layers[0].Wz, "m", None), "layers\\[0\\].Wz.m is NoneType"),
        (lambda g: setattr(g.layers[1].W, "m", -g.layers[1].W.m - 1), "layers\\[1\\].W.m holds invalid values"),
        (lambda g: g.layers[0].Wr.a.__setitem__((0, 0), np.nan), "layers\\[0\\].Wr.a holds invalid values"),
        (lambda g: delattr(g, "Wy"), "GRU.Wy is missing"),
    ],
)
def test_inconsistent_pickles_say_what_is_wrong(tmp_path, change, message):
    original = bety()
    change(original)
    with pytest.raises(blekota.ModelFileError, match=f"bad.pkl: .*{message}"):
        blekota.import_legacy(write_pickle(tmp_path / "bad.pkl", original))


def test_not_a_legacy_model(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(blekota.ModelFileError, match=r"list.pkl: not a blekota model \(it holds a list, not a gru.GRU\)"):
        blekota.import_legacy(path)
    path.write_bytes(b"")
    with pytest.raises(blekota.ModelFileError, match=r"list.pkl: is empty \(0 bytes\)"):
        blekota.import_legacy(path)
    path.write_bytes(b"\x80\x04 not really")
    with pytest.raises(blekota.ModelFileError, match="list.pkl: not a model pickled by the original blekota"):
        blekota.import_legacy(path)
    with pytest.raises(blekota.ModelFileError, match="absent.pkl: no such file"):
        blekota.import_legacy(tmp_path / "absent.pkl")


def test_loading_a_pickle_as_a_model_file_points_to_import_legacy(tmp_path):
    pkl = write_pickle(tmp_path / "bety.pkl", bety())
    with pytest.raises(blekota.ModelFileError, match=(
        "bety.pkl: a Python pickle, not a blekota model file .a model of the original NumPy blekota "
        "converts with: python -m blekota import-legacy"
    )):
        blekota.load(pkl)


def test_sample_opens_a_pickle_converting_it_once(tmp_path, capsys):
    original = bety()
    pkl = write_pickle(tmp_path / "bety.pkl", original)
    assert main(["sample", str(pkl), "-n", "50", "--seed", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    converted = tmp_path / "bety.npz"
    assert out.count("converted") == 1 and f"converted {pkl} (a model of the original blekota; nothing in it was run) to {converted}" in out
    assert f"wrote {tmp_path / 'bety_sample.wav'}: 50 samples" in out
    levels = np.random.default_rng(0).integers(0, 256, (9, 3))
    np.testing.assert_allclose(blekota.load(converted).probabilities(levels), original.forward(levels), rtol=1e-10, atol=1e-14)
    before = converted.stat().st_mtime_ns
    assert main(["sample", str(pkl), "-n", "50", "--seed", "1", "--force", "--threads", "1"]) == 0
    assert "converted" not in capsys.readouterr().out  # the earlier conversion is used
    assert converted.stat().st_mtime_ns == before
    assert main(["info", str(pkl)]) == 0
    assert "a pickle of the original blekota" in capsys.readouterr().out


def test_info_reads_a_pickle_without_converting_it_as_the_readme_says(tmp_path, capsys):
    pkl = write_pickle(tmp_path / "bety.pkl", bety())
    assert main(["info", str(pkl)]) == 0
    assert "read without running it" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bety.pkl"]
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    assert "`sample`, `repl` and `train --resume` open a pickle directly" in readme
    assert "`info` reads a pickle without converting it." in readme


def test_a_conversion_never_replaces_another_file(tmp_path, capsys):
    pkl = write_pickle(tmp_path / "bety.pkl", bety())
    other = tmp_path / "bety.npz"
    blekota.Model(hidden=4, layers=1, seed=0).save(other)
    kept = other.read_bytes()
    path, written = blekota.legacy.converted(pkl)
    assert (path, written) == (tmp_path / "bety-2.npz", True)
    assert blekota.legacy.converted(pkl) == (tmp_path / "bety-2.npz", False)
    assert other.read_bytes() == kept


def test_a_conversion_goes_to_the_current_folder_when_the_pickle_folder_is_read_only(tmp_path, monkeypatch):
    folder = tmp_path / "samples"
    folder.mkdir()
    pkl = write_pickle(folder / "bety.pkl", bety())
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    real_save = blekota.legacy.save

    def read_only_beside(path, *args):
        if Path(path).parent == folder:
            raise blekota.ModelFileError(f"{path}: could not save (Read-only file system)")
        return real_save(path, *args)

    monkeypatch.setattr(blekota.legacy, "save", read_only_beside)
    assert blekota.legacy.converted(pkl) == (Path("bety.npz"), True)
    assert blekota.load(here / "bety.npz").info["iterations"] == 1200


def test_import_legacy_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["import-legacy", "--help"])
    assert exit_info.value.code == 0 and "nothing in the pickle is run" in capsys.readouterr().out
