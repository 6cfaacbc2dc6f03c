"""Bounded fuzzing: whatever goes in, the result is a value or a BlekotaError, never a crash, a hang
or another exception type. Each test runs a fixed number of examples so CI stays fast; set
BLEKOTA_FUZZ_SCALE=50 (say) to run fifty times as many for a deeper search."""

import io
import os
import pickle
import warnings

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from legacy_pickles import GRU, original_modules

import blekota
from blekota import mulaw

SCALE = int(os.environ.get("BLEKOTA_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=60 * SCALE,
    derandomize=SCALE == 1,  # CI runs the same examples every time; deeper searches vary
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """Overwrite data[position % len] with each edit's byte value, then maybe truncate."""
    data = bytearray(data)
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)


edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)
header_edits = st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), min_size=1, max_size=6)
cuts = st.none() | st.integers(0, 4000)


def sound_bytes(fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    tone = 0.5 * np.sin(np.arange(400) * 0.2)
    soundfile.write(buffer, np.stack([tone, -tone], axis=1), 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


SOUNDS = {
    "wav": sound_bytes("WAV"),
    "float.wav": sound_bytes("WAV", "FLOAT"),
    "flac": sound_bytes("FLAC"),
    "aiff": sound_bytes("AIFF"),
}


def load_audio_ok(path) -> None:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            samples, fs = blekota.load_audio(path, 8000)
    except blekota.BlekotaError as error:
        assert "\n" not in str(error)
        return
    assert all("\n" not in str(warning.message) for warning in caught)  # a mutated float may be beyond full scale
    assert samples.dtype == np.float32 and samples.ndim == 1 and samples.size > 0
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0 and fs == 8000


@FUZZ
@given(data=st.binary(max_size=3000))
def test_audio_loader_random_bytes(tmp_path, data):
    path = tmp_path / "random.wav"
    path.write_bytes(data)
    load_audio_ok(path)


@FUZZ
@given(kind=st.sampled_from(sorted(SOUNDS)), changes=header_edits | edits, cut=cuts)
def test_audio_loader_mutated_files(tmp_path, kind, changes, cut):
    path = tmp_path / f"mutated.{kind.split('.')[-1]}"
    path.write_bytes(mutate(SOUNDS[kind], changes, cut))
    load_audio_ok(path)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = blekota.Model(hidden=2, layers=2, seed=0, threads=1)
    model.info = {"iterations": 3, "training_files": ["a.wav"], "history": [[3, 5.0]]}
    return model.save(tmp_path_factory.mktemp("fuzz") / "model.npz").read_bytes()


def load_model_ok(path) -> None:
    try:
        model = blekota.load(path)
    except blekota.ModelFileError as error:
        assert "\n" not in str(error)
        return
    assert np.isfinite(model.params).all()


@FUZZ
@given(data=st.binary(max_size=3000))
def test_model_loader_random_bytes(tmp_path, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    load_model_ok(path)


@FUZZ
@given(changes=edits, cut=st.none() | st.integers(0, 40000), at_end=st.booleans())
def test_model_loader_mutated_files(tmp_path, model_file, changes, cut, at_end):
    data = model_file
    if at_end:  # aim at the central directory and the last member's header
        changes = [(len(data) - 1 - position % 600, value) for position, value in changes]
    path = tmp_path / "mutated.npz"
    path.write_bytes(mutate(data, changes, cut))
    load_model_ok(path)


@pytest.fixture(scope="module")
def legacy_pickles():
    with original_modules():
        return [pickle.dumps(GRU(h_n=2, layer_n=2, seed=0, fs=8000), protocol=p) for p in (0, 2, 4, 5)]


@FUZZ
@given(which=st.integers(0, 3), changes=edits, cut=st.none() | st.integers(0, 30000))
def test_legacy_loader_mutated_pickles(tmp_path, legacy_pickles, which, changes, cut):
    path = tmp_path / "mutated.pkl"
    path.write_bytes(mutate(legacy_pickles[which], changes, cut))
    try:
        model = blekota.import_legacy(path)
    except blekota.ModelFileError as error:
        assert "\n" not in str(error)
        return
    assert model.layers >= 1 and np.isfinite(model.params).all()


real_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
)
floats_anything = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
)


@settings(FUZZ, max_examples=200 * SCALE)
@given(x=floats_anything | real_arrays | st.floats() | st.lists(st.floats(), max_size=5))
def test_quantize_any_number(x):
    try:
        levels = mulaw.quantize(x)
    except blekota.ConfigError as error:
        assert "NaN" in str(error)
        assert np.isnan(np.asarray(x, np.float64)).any()
        return
    assert levels.dtype == np.uint8 and levels.shape == np.shape(x)
    finite = np.clip(np.nan_to_num(np.asarray(x, np.float64)), -1, 1)
    back = mulaw.unquantize(levels)
    assert (np.abs(back - finite) <= 0.032 + 1e-6).all()  # the widest mu-law step is 0.0316


@settings(FUZZ, max_examples=200 * SCALE)
@given(levels=real_arrays | floats_anything | st.integers() | st.lists(st.integers(-300, 300), max_size=5))
def test_unquantize_any_number(levels):
    try:
        samples = mulaw.unquantize(levels)
    except blekota.ConfigError as error:
        assert error.args[0].startswith("mulaw.unquantize")
        return
    assert samples.dtype == np.float32 and samples.shape == np.shape(levels)
    assert np.isfinite(samples).all() and np.abs(samples).max(initial=0) <= 1.0


ANY_DTYPE = st.sampled_from(
    [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint64, np.float32, np.float64,
     np.bool_, np.complex64, "U1", object]
)


def any_array(max_dims: int = 4, max_side: int = 5):
    def build(args):
        dtype, shape, seed = args
        rng = np.random.default_rng(seed)
        values = rng.integers(-3, 260, shape)
        if np.dtype(dtype).kind == "U":
            return values.astype(str).astype("U1")
        if np.dtype(dtype).kind == "f" and seed % 3 == 0:
            return np.where(rng.random(shape) < 0.2, np.nan, values).astype(dtype)
        with np.errstate(all="ignore"):
            array = np.asarray(values).astype(dtype)
        return array.T if seed % 2 and array.ndim > 1 else array  # sometimes not C-contiguous

    return st.tuples(ANY_DTYPE, hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side),
                     st.integers(0, 2**32)).map(build)


anything = st.none() | st.integers() | st.floats() | st.text(max_size=3) | st.booleans() | st.lists(st.integers(-2, 300), max_size=4)


@pytest.fixture(scope="module")
def model():
    return blekota.Model(hidden=3, layers=2, seed=0, threads=1, dtype="float64")


def call_ok(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except blekota.BlekotaError as error:
        assert "\n" not in str(error)
        return None


@settings(FUZZ, max_examples=150 * SCALE)
@given(x=any_array(3) | anything, h0=st.none() | any_array(3) | anything)
def test_kernel_boundary_windows(model, x, h0):
    result = call_ok(model.loss_and_grad, x, h0)
    if result is not None:
        loss, grads, h_last = result
        assert np.isfinite(loss) and h_last.shape == (2, np.shape(x)[1], 3)
    call_ok(model.probabilities, x, h0)


@settings(FUZZ, max_examples=60 * SCALE)
@given(x=any_array(2), grads=any_array(2) | anything)
def test_kernel_boundary_gradients(model, x, grads):
    call_ok(model.window, x, None, grads)


@settings(FUZZ, max_examples=100 * SCALE)
@given(
    n=st.integers(-5, 40) | anything.filter(lambda v: not isinstance(v, int) or v < 10**4),
    temperature=st.floats(allow_nan=True) | st.integers(-2, 5) | anything,
    hint=st.none() | any_array(2) | st.lists(any_array(1), max_size=3) | anything,
    seed=st.none() | st.integers(-5, 2**70) | anything,
    streams=st.integers(-1, 3) | anything.filter(lambda v: not isinstance(v, int) or v < 100),
    return_probs=st.booleans(),
    top_k=st.integers(-2, 300) | anything,
    top_p=st.floats(allow_nan=True) | st.integers(-1, 2) | anything,
    min_p=st.floats(allow_nan=True) | st.integers(-1, 2) | anything,
)
def test_kernel_boundary_sampling(model, n, temperature, hint, seed, streams, return_probs, top_k, top_p,
                                  min_p):
    result = call_ok(model.sample, n, temperature=temperature, hint=hint, seed=seed, streams=streams,
                     return_probs=return_probs, top_k=top_k, top_p=top_p, min_p=min_p)
    if result is not None:
        sound = result[0] if return_probs else result
        assert sound.shape[-1] == n and np.isfinite(sound).all()
        if return_probs and n > 0:
            np.testing.assert_allclose(result[1].sum(axis=-1), 1, rtol=1e-4)


@settings(FUZZ, max_examples=100 * SCALE)
@given(
    hidden=st.integers(-3, 6) | st.integers(10**7, 10**30) | anything,
    layers=st.integers(-1, 3) | st.integers(10**6, 10**20) | anything,
    fs=st.integers(-1, 10**6) | anything,
    dtype=st.sampled_from(["float32", "float64", "float16", "int", np.float32, np.dtype("f8"), int, None, 7]),
    seed=st.none() | st.integers(-3, 2**70) | anything,
    threads=st.none() | st.integers(-1, 4) | st.integers(2**31, 2**80) | anything,
)
def test_model_constructor_arguments(hidden, layers, fs, dtype, seed, threads):
    model = call_ok(blekota.Model, hidden=hidden, layers=layers, fs=fs, dtype=dtype, seed=seed, threads=threads)
    if model is not None:
        assert model.n_params == blekota.memory.parameter_count(model.layers, model.hidden)
        assert np.isfinite(model.loss_and_grad(np.zeros((2, 1), int))[0])
