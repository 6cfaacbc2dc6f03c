import json
import pickle
import re

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


def rewrite(path, out, meta_change=None, **arrays):
    """Copy the model file at path to out with meta edited by meta_change(meta) and arrays
    replaced or added (a checksum is recomputed unless meta_change sets one)."""
    with np.load(path, allow_pickle=False) as npz:
        contents = {name: npz[name] for name in npz.files}
    meta = json.loads(contents.pop("meta").tobytes())
    contents.update(arrays)
    meta["checksum"] = modelfile.checksum(contents)
    if meta_change:
        meta_change(meta)
    np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **contents)
    return out


@pytest.fixture
def good(tmp_path):
    model = blekota.Model(hidden=2, layers=1, seed=3, threads=1)
    model.info = {"iterations": 5, "training_files": ["a.wav"], "history": [[5, 5.5]]}
    return model.save(tmp_path / "good.npz")


def test_newer_version_says_so(tmp_path, good):
    newer = rewrite(good, tmp_path / "newer.npz", lambda meta: meta.update(version=modelfile.VERSION + 1))
    with pytest.raises(blekota.ModelFileError, match=(
        rf"newer.npz: written by a newer blekota \(file format {modelfile.VERSION + 1}; this version "
        rf"reads up to {modelfile.VERSION}\); upgrade blekota to load it"
    )):
        blekota.load(newer)
    bad = rewrite(good, tmp_path / "bad.npz", lambda meta: meta.update(version="1"))
    with pytest.raises(blekota.ModelFileError, match=r"bad.npz: corrupted \(bad format version '1'\)"):
        blekota.load(bad)


@pytest.mark.parametrize(
    "meta_bytes,message",
    [
        (b'{"format": "blekota-model", "version": 1', "its metadata is not valid JSON"),
        (b"\xff\xfe not utf-8", "its metadata is not valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "its metadata is not valid JSON"),
        (b'["blekota-model", 1]', "not a blekota model file (unknown format)"),
    ],
)
def test_malformed_meta_is_rejected(tmp_path, good, meta_bytes, message):
    with np.load(good, allow_pickle=False) as npz:
        contents = {name: npz[name] for name in npz.files if name != "meta"}
    path = tmp_path / "meta.npz"
    np.savez(path, meta=np.frombuffer(meta_bytes, np.uint8), **contents)
    with pytest.raises(blekota.ModelFileError, match=f"meta.npz: .*{re.escape(message)}"):
        blekota.load(path)


@pytest.mark.parametrize(
    "info,message",
    [
        ({"iterations": "many"}, "info.iterations is not a count"),
        ({"training_files": "a.wav"}, "info.training_files is not a list of file names"),
        ({"history": [[1, "x"]]}, r"info.history is not a list of \[iteration, loss\] pairs"),
        ({"trainer": {"position": -3}}, "info.trainer.position is not a count"),
        ({"trainer": {"lr": "fast"}}, "info.trainer.lr is not a positive number"),
        ({"val_history": None}, r"info.val_history is not a list of \[iteration, loss\] pairs"),
        ({"best_val_loss": "low"}, "info.best_val_loss is not a number"),
        ({"training_files": ["a\0.wav"]}, "info.training_files is not a list of file names"),
        ([1, 2], "info is not a mapping"),
    ],
)
def test_malformed_info_is_rejected(tmp_path, good, info, message):
    path = rewrite(good, tmp_path / "info.npz", lambda meta: meta.update(info=info))
    with pytest.raises(blekota.ModelFileError, match=f"info.npz: corrupted \\({message}\\)"):
        blekota.load(path)


def test_inconsistent_files_are_rejected(tmp_path, good):
    cases = {
        "nan.npz": ({"model/out.Wy": np.full((256, 3), np.nan, np.float32)}, None, "holds NaN or infinite weights"),
        "shape.npz": ({"model/out.Wy": np.zeros((256, 4), np.float32)}, None, r"out.Wy is float32 \(256, 4\), expected float \(256, 3\)"),
        "ints.npz": ({"model/out.Wy": np.zeros((256, 3), np.int32)}, None, "out.Wy is int32"),
        "layers.npz": ({}, lambda m: m["architecture"].update(layers=10**9), "1000000000 layers of 2 units do not fit its 4 weight arrays"),
        "dtype.npz": ({}, lambda m: m["architecture"].update(dtype="float16"), "dtype 'float16'"),
        "fs.npz": ({}, lambda m: m["architecture"].update(fs=-1), "fs must be a sample rate in 1..2147483647 Hz"),
    }
    for name, (arrays, change, message) in cases.items():
        path = rewrite(good, tmp_path / name, change, **arrays)
        with pytest.raises(blekota.ModelFileError, match=f"{name}: corrupted or inconsistent model .*{message}"):
            blekota.load(path)
    checksum = rewrite(good, tmp_path / "sum.npz", lambda m: m.update(checksum="0" * 64))
    with pytest.raises(blekota.ModelFileError, match=r"sum.npz: corrupted \(the checksum of its arrays does not match\)"):
        blekota.load(checksum)


class Exploit:
    """Writes a marker file when unpickled: loading a model must never get this far."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_object_arrays_are_refused_without_running_them(tmp_path, good):
    Exploit.marker = tmp_path / "pwned"
    path = tmp_path / "exploit.npz"
    with np.load(good, allow_pickle=False) as npz:
        contents = {name: npz[name] for name in npz.files}
    np.savez(path, payload=np.array([Exploit()], dtype=object), **contents)
    with pytest.raises(blekota.ModelFileError, match=r"exploit.npz: not a blekota model file \(it holds Python objects, which blekota never loads\)"):
        blekota.load(path)
    assert not Exploit.marker.exists()


def test_other_numpy_files_are_rejected(tmp_path):
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as out:
        np.save(out, np.arange(4))
    with pytest.raises(blekota.ModelFileError, match=r"single.npz: not a blekota model file \(a single array, no metadata\)"):
        blekota.load(npy)
    import zipfile

    raw = tmp_path / "raw.npz"
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("meta.npy", b"not an npy member")
    with pytest.raises(blekota.ModelFileError, match="raw.npz: not a blekota model file"):
        blekota.load(raw)


def _flip_positions(size: int) -> list[int]:
    """Every byte of the first and last 400 (zip headers, npy headers, central directory), every
    29th byte between."""
    return sorted(set(range(min(400, size))) | set(range(max(0, size - 400), size)) | set(range(0, size, 29)))


def test_bit_flips_are_caught(tmp_path, good):
    """A flipped bit anywhere gives a ModelFileError, or (in fields nothing reads, such as zip
    timestamps) the very same model: never another exception and never different weights."""
    data = bytearray(good.read_bytes())
    original = blekota.load(good)
    path = tmp_path / "flipped.npz"
    loaded_anyway = 0
    for position in _flip_positions(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 1 << (position % 8)
        path.write_bytes(flipped)
        try:
            model = blekota.load(path)
        except blekota.ModelFileError:
            continue
        loaded_anyway += 1
        np.testing.assert_array_equal(model.params, original.params)
        assert model.info == original.info and model.fs == original.fs
    assert loaded_anyway < len(_flip_positions(len(data))) // 4  # most bytes matter


def test_truncation_at_every_length_is_caught(tmp_path, good):
    data = good.read_bytes()
    path = tmp_path / "cut.npz"
    for length in list(range(0, 300)) + list(range(300, len(data), 61)):
        path.write_bytes(data[:length])
        with pytest.raises(blekota.ModelFileError, match="cut.npz"):
            blekota.load(path)


def test_a_file_cut_short_while_it_is_read_says_so(tmp_path, good, monkeypatch):
    real_load = np.load

    def load_then_cut(path, **kwargs):  # another program writes the file over in place (cp) meanwhile
        npz = real_load(path, **kwargs)
        with open(path, "r+b") as file:
            file.truncate(1000)
        return npz

    monkeypatch.setattr(np, "load", load_then_cut)
    with pytest.raises(blekota.ModelFileError) as raised:
        blekota.load(good)
    assert str(raised.value) == (f"{good}: not a blekota model file or corrupted (it ends too soon: cut short, or "
                                 "still being written)")


def test_a_save_failing_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    blekota.Model(hidden=4, layers=1, seed=1).save(path)
    before = path.read_bytes()
    real_savez = np.savez

    def half_then_fail(file, **arrays):
        real_savez(file, **arrays)
        file.truncate(file.tell() // 2)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(blekota.ModelFileError, match=r"m.npz: could not save \(Input/output error\); the previous file is intact"):
        blekota.Model(hidden=4, layers=1, seed=2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    monkeypatch.setattr(np, "savez", real_savez)
    with pytest.raises(blekota.ModelFileError, match=r"m.npz: could not save \(no such directory\)"):
        blekota.Model(hidden=4, layers=1).save(tmp_path / "missing" / "m.npz")


def test_text_is_not_called_a_pickle(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("some notes")
    with pytest.raises(blekota.ModelFileError, match="notes.npz: a text file, not a blekota model file"):
        blekota.load(text)


def _onnx_export(path):
    pytest.importorskip("onnx")
    path.write_bytes(blekota.to_onnx(blekota.Model(hidden=4, layers=1)).SerializeToString())  # export_onnx refuses .npz


def _zip(path, member):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, b"x")


@pytest.mark.parametrize("name,write,seems", [
    ("voice.onnx", _onnx_export, "an ONNX file"),
    ("voice.npz", _onnx_export, "an ONNX file"),  # known by its content too
    ("model.npz", lambda path: path.write_bytes(pickle.dumps({"weights": 1})), "a Python pickle"),
    ("model.pt", lambda path: _zip(path, "archive/data.pkl"), "a PyTorch file"),
    ("songs.npz", lambda path: _zip(path, "a.txt"), "a zip archive"),
    ("model.h5", lambda path: path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100)), "an HDF5 file"),
    ("notes.npz", lambda path: path.write_text("\u00e9" * 3000), "a text file"),
    ("noise.npz", lambda path: path.write_bytes(bytes(range(256)) * 4), "not a blekota model file \\(nor any format blekota knows\\)"),
])
def test_a_file_that_is_not_a_model_is_named_in_our_words(tmp_path, capsys, name, write, seems):
    from blekota.cli import main

    path = tmp_path / name
    write(path)
    with pytest.raises(blekota.ModelFileError, match=f"{name}: {seems}") as error:
        blekota.load(path)
    assert "allow_pickle" not in str(error.value)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}: " in err and "allow_pickle" not in err  # a pickle: read as the original's


@pytest.mark.parametrize("threads", [0, 1.5, "2", 10**6])
def test_bad_threads_are_the_callers_mistake_not_the_files(tmp_path, threads):
    path = blekota.Model(hidden=2, layers=1, seed=0, threads=1).save(tmp_path / "m.npz")
    with pytest.raises(blekota.ConfigError, match="^threads must be an integer in 1..1024, got"):
        blekota.load(path, threads=threads)
    with pytest.raises(blekota.ConfigError, match="^threads must be"):
        blekota.Trainer.from_checkpoint(path, audio=np.zeros(100), threads=threads)


@pytest.mark.parametrize(
    "info, message",
    [
        ({"gain": np.float32(0.5)}, "info must hold only JSON values"),
        ({"tags": {"speech"}}, "info must hold only JSON values"),
        ({"iterations": "many"}, "info.iterations is not a count"),
        ("speech", "info is not a mapping"),
    ],
)
def test_info_that_could_not_be_read_back_is_not_saved(tmp_path, info, message):
    model = blekota.Model(hidden=2, layers=1, seed=0, threads=1)
    model.info = info
    for save in (model.save, lambda path: modelfile.save(path, model)):
        with pytest.raises(blekota.ConfigError, match=f"m.npz: not saved: {message}"):
            save(tmp_path / "m.npz")
        assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["take.wav", "take.FLAC", "voice.onnx", "bety.pkl"])
def test_a_model_is_not_saved_under_the_name_of_another_kind_of_file(tmp_path, make_model, name):
    """model.save("take.wav") wrote a model file over the sound there."""
    kept = tmp_path / name
    kept.write_bytes(b"the user's own file")
    with pytest.raises(blekota.ConfigError, match=rf"{name}: a model file is written here, not "
                                                  rf"{name.split('.')[1].lower()}; give it a name ending in \.npz$"):
        make_model(4, 1).save(kept)
    assert kept.read_bytes() == b"the user's own file" and sorted(tmp_path.iterdir()) == [kept]
    assert make_model(4, 1).save(tmp_path / "take.npz").exists()
