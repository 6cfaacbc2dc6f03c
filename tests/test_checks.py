"""blekota.checks: one rule per kind of value, NumPy numbers accepted, bools refused."""

import math
import re

import numpy as np
import pytest

import blekota
from blekota import checks


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2), np.int32(10**6)])
def test_positive_int_accepts_python_and_numpy_integers(value):
    checked = checks.positive_int("n", value)
    assert checked == value and type(checked) is int


@pytest.mark.parametrize("value", [0, -1, True, np.bool_(True), 1.0, np.float64(2), "3", None, [1]])
def test_positive_int_refuses(value):
    with pytest.raises(blekota.ConfigError, match=re.escape(f"n must be a positive integer, got {value!r}")):
        checks.positive_int("n", value)


@pytest.mark.parametrize("value", [0, 5, np.int16(0), np.uint64(9)])
def test_non_negative_int_accepts(value):
    assert checks.non_negative_int("keep", value) == value


@pytest.mark.parametrize("value", [-1, False, 0.0, np.int8(-2)])
def test_non_negative_int_refuses(value):
    with pytest.raises(blekota.ConfigError, match="keep must be an integer >= 0"):
        checks.non_negative_int("keep", value)


def test_integer_bounds_and_own_words():
    assert checks.integer("start", np.int64(4), 0, 4) == 4
    with pytest.raises(blekota.ConfigError, match=r"start must be an integer in 0\.\.4, got 5"):
        checks.integer("start", 5, 0, 4)
    with pytest.raises(blekota.ConfigError, match="n must be a non-negative integer, got -1"):
        checks.non_negative_int("n", -1, "a non-negative integer")


def test_seed():
    assert checks.seed(None) is None and checks.seed(np.int64(5)) == 5
    with pytest.raises(blekota.ConfigError, match="seed must be None or an integer >= 0, got True"):
        checks.seed(True)


@pytest.mark.parametrize("value", [0.5, 3, np.float32(0.25), np.int64(2), 1e308])
def test_positive_float_accepts_numbers(value):
    checked = checks.positive_float("lr", value)
    assert checked == float(value) and type(checked) is float


@pytest.mark.parametrize("value", [0, -0.1, math.inf, math.nan, np.float64(np.nan), True, "1", None])
def test_positive_float_refuses(value):
    with pytest.raises(blekota.ConfigError, match="lr must be a finite number > 0"):
        checks.positive_float("lr", value)


def test_non_negative_float_and_fraction():
    assert checks.non_negative_float("db", 0) == 0.0 and checks.non_negative_float("db", np.float32(4)) == 4.0
    with pytest.raises(blekota.ConfigError, match="db must be a finite number >= 0, got inf"):
        checks.non_negative_float("db", math.inf)
    assert checks.fraction("f", 0) == 0.0 and checks.fraction("f", np.float64(0.5)) == 0.5
    for bad in (1, 1.0, -0.01, math.nan, False):
        with pytest.raises(blekota.ConfigError, match=r"f must be a number in \[0, 1\)"):
            checks.fraction("f", bad)


def test_number_intervals():
    assert checks.number("p", 1, 0, 1, low_open=True) == 1.0
    with pytest.raises(blekota.ConfigError, match=r"p must be a number in \(0, 1\], got 0"):
        checks.number("p", 0, 0, 1, low_open=True)
    assert checks.number("t", math.inf, 0, low_open=True) == math.inf  # an unbounded end is closed
    with pytest.raises(blekota.ConfigError, match="t must be > 0, got 'soon'"):
        checks.number("t", "soon", 0, low_open=True, expected="> 0")


def test_the_library_agrees_on_numpy_integers_and_bools(tmp_path):
    """A NumPy integer is accepted and a bool refused alike, whichever argument takes it."""
    model = blekota.Model(hidden=4, layers=1, seed=np.int64(0))
    sound = np.sin(np.arange(4000) / 5).astype(np.float32)
    trainer = blekota.Trainer(model, sound, seq_length=np.int64(10), batch_size=np.int32(4),
                              checkpoint_every=np.int64(0), checkpoint_sound=np.int64(0), keep=np.uint8(1),
                              val_every=np.int64(5), directory=tmp_path)
    assert type(trainer.checkpoint_every) is int and type(trainer.keep) is int
    for option in ("checkpoint_every", "checkpoint_sound", "keep", "val_every", "seq_length"):
        with pytest.raises(blekota.ConfigError, match=f"{option} must be"):
            blekota.Trainer(model, sound, **{option: True}, directory=tmp_path)
    assert blekota.Step(every=np.int64(3)).state_dict()["every"] == 3
    assert blekota.Plateau(patience=np.int64(2)).patience == 2


@pytest.mark.parametrize("path", [5, None, b"m.npz", ["m.npz"]])
def test_paths_that_are_not_file_names_are_refused_by_name(tmp_path, path):
    """Every function that takes a file or folder refuses what is not a str or a path as the
    one-line ConfigError of checks.file_name, not NumPy's or pathlib's TypeError."""
    model = blekota.Model(hidden=2, layers=1, seed=0, threads=1)
    sound = np.sin(np.arange(4000) / 5).astype(np.float32)
    trainer = blekota.Trainer(model, sound, seq_length=10, batch_size=4, directory=tmp_path, log=False)
    calls = {
        "path": [lambda: model.save(path), lambda: blekota.load(path), lambda: trainer.save(path),
                 lambda: blekota.Trainer.from_checkpoint(path), lambda: blekota.load_audio(path),
                 lambda: blekota.trainlog.read_log(path)],
        "directory": [lambda: blekota.Trainer(model, sound, seq_length=10, batch_size=4, directory=path)],
    }
    for name, refused in calls.items():
        for call in refused:
            with pytest.raises(blekota.ConfigError, match=f"^{name} must be a file name \\(a str or a path\\), got"):
                call()


def test_a_callback_that_cannot_be_called_is_refused_before_any_work(tmp_path):
    model = blekota.Model(hidden=2, layers=1, seed=0, threads=1)
    sound = np.sin(np.arange(4000) / 5).astype(np.float32)
    with pytest.raises(blekota.ConfigError, match="^callback must be None or a function, got 'print'$"):
        blekota.Trainer(model, sound, seq_length=10, batch_size=4, directory=tmp_path, callback="print")
    grads = np.empty_like(model.params)
    with pytest.raises(blekota.ConfigError, match="^ready must be None or a function, got 5$"):
        model.window(np.zeros((3, 1), np.uint8), grads=grads, ready=5)


def test_flags_are_bools_and_words_are_refused(tmp_path):
    assert [checks.flag("f", value) for value in (True, False, np.bool_(True), 1, 0, np.int64(1))] == [
        True, False, True, True, False, True]
    for value in ("no", "False", None, 2, 0.0, [True]):
        with pytest.raises(blekota.ConfigError, match=f"^f must be True or False, got {re.escape(repr(value))}$"):
            checks.flag("f", value)
    model = blekota.Model(hidden=2, layers=1, seed=0, threads=1)
    sound = np.sin(np.arange(4000) / 5).astype(np.float32)
    refused = {
        "bf16": lambda: model.window(np.zeros((3, 1), np.uint8), bf16="no"),
        "return_probs": lambda: model.sample(10, return_probs="no"),
        "log": lambda: blekota.Trainer(model, sound, seq_length=10, batch_size=4, directory=tmp_path, log="no"),
        "report_steps": lambda: blekota.Trainer(model, sound, seq_length=10, batch_size=4, directory=tmp_path,
                                                report_steps="no"),
        "mark": lambda: blekota.save_wav(tmp_path / "s.wav", sound, mark="no"),
    }
    for name, call in refused.items():
        with pytest.raises(blekota.ConfigError, match=f"^{name} must be True or False, got 'no'$"):
            call()
    assert not (tmp_path / "s.wav").exists()


def test_what_is_not_a_model_and_weights_that_are_not_numbers_are_refused_before_sampling():
    with pytest.raises(blekota.ConfigError, match="^model must be a blekota Model, got int$"):
        blekota.Stream(5)
    with pytest.raises(blekota.ConfigError, match="^model must be a blekota Model, got str$"):
        blekota.sparsity.prune("m.npz", 0.5)
    model = blekota.Model(hidden=2, layers=1, seed=0, threads=1)
    model.params[3] = np.nan  # written by hand, past load_state_dict's checks
    for call in (lambda: model.sample(10), lambda: model.stream(), lambda: next(model.generate(10))):
        with pytest.raises(blekota.ConfigError, match="NaN or infinite weights: nothing to sample from"):
            call()
