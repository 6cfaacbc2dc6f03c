import json

import numpy as np
import pytest

import blekota
from blekota import modelfile


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_gives_identical_probabilities(tmp_path, dtype, make_model, rng):
    model = make_model(9, 2, dtype)
    model.fs = 16000
    model.info = {"iterations": 12, "training_files": ["x.wav"]}
    path = model.save(tmp_path / "m.npz")
    loaded = blekota.load(path)
    assert (loaded.hidden, loaded.layers, loaded.fs, loaded.dtype) == (9, 2, 16000, model.dtype)
    assert loaded.info == model.info
    np.testing.assert_array_equal(loaded.params, model.params)
    inputs = rng.integers(0, 256, (7, 3))
    np.testing.assert_array_equal(loaded.probabilities(inputs), model.probabilities(inputs))


def test_file_holds_no_pickles(tmp_path):
    path = blekota.Model(hidden=4, layers=1).save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        names = npz.files
        meta = json.loads(npz["meta"].tobytes())
    assert "meta" in names and "model/out.Wy" in names
    assert meta["format"] == "blekota-model" and meta["version"] == modelfile.VERSION


def test_foreign_truncated_and_missing_files_are_rejected(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.arange(3))
    with pytest.raises(blekota.ModelFileError, match="foreign.npz: not a blekota model"):
        blekota.load(foreign)
    good = blekota.Model(hidden=4, layers=1).save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(blekota.ModelFileError, match="truncated.npz"):
        blekota.load(truncated)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(blekota.ModelFileError, match="text.npz"):
        blekota.load(text)
    with pytest.raises(blekota.ModelFileError, match="absent.npz: no such file"):
        blekota.load(tmp_path / "absent.npz")


def test_saving_over_a_file_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    blekota.Model(hidden=4, layers=1, seed=1).save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(blekota.ModelFileError, match="previous file is intact"):
        blekota.Model(hidden=4, layers=1, seed=2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
