"""Every bad input gets a one-line BlekotaError that names the file or parameter (issue 8)."""

import errno
import warnings

import numpy as np
import pytest
import soundfile

import blekota
from blekota import memory, modelchecks
from blekota.cli import main
from blekota.train import Trainer


def tone(n: int = 4000, fs: int = 8000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / fs)).astype(np.float32)


def tiny_model(**kwargs) -> blekota.Model:
    return blekota.Model(hidden=kwargs.pop("hidden", 4), layers=1, seed=0, threads=1, **kwargs)


def one_line(err: str, message: str) -> None:
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("blekota: error: ") and "Traceback" not in err


# -- audio files --------------------------------------------------------------------------------


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.wav"
    soundfile.write(str(path), tone(), 8000)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(soundfile, "info", denied)
    with pytest.raises(blekota.AudioError, match=r"locked.wav: cannot read \(Permission denied\)"):
        blekota.load_audio(path)


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(blekota.AudioError, match="is a directory, not a sound file"):
        blekota.load_audio(tmp_path)


def test_empty_audio_file(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, np.float32), 8000)
    with pytest.raises(blekota.AudioError, match=r"empty.wav: contains no sound \(0 samples\)"):
        blekota.load_audio(path)


def test_nan_and_inf_in_a_float_wav(tmp_path):
    samples = tone(800)
    samples[400] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), samples, 8000, subtype="FLOAT")
    with pytest.raises(blekota.AudioError, match=r"nan.wav: contains NaN or infinite samples \(the first at 0.050 s\)"):
        blekota.load_audio(path)
    samples[400] = np.inf
    soundfile.write(str(path), samples, 8000, subtype="FLOAT")
    with pytest.raises(blekota.AudioError, match="NaN or infinite"):
        blekota.load_audio(path)


def test_bad_target_rate(tmp_path):
    path = tmp_path / "t.wav"
    soundfile.write(str(path), tone(), 8000)
    with pytest.raises(blekota.ConfigError, match="fs must be a sample rate in 1..2147483647 Hz, got 0"):
        blekota.load_audio(path, fs=0)


def test_reading_more_than_memory_says_how_much(tmp_path, monkeypatch):
    path = tmp_path / "t.wav"
    soundfile.write(str(path), tone(), 8000)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(blekota.ConfigError, match=r"t.wav: reading 0 s of sound at 8000 Hz needs about .* KiB of memory, but only 1000 bytes"):
        blekota.load_audio(path)


# -- training audio -----------------------------------------------------------------------------


def test_silent_audio_warns(tmp_path):
    with pytest.warns(blekota.BlekotaWarning, match="silent.*the model will learn silence"):
        Trainer(tiny_model(), np.zeros(2000, np.float32), seq_length=10, batch_size=2, directory=tmp_path)
    path = blekota.save_wav(tmp_path / "quiet.wav", np.full(2000, 1e-5, np.float32), 8000)
    with pytest.warns(blekota.BlekotaWarning, match="quiet.wav: the training sound is silent"):
        Trainer(tiny_model(), str(path), seq_length=10, batch_size=2, directory=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(tiny_model(), tone(), seq_length=10, batch_size=2, directory=tmp_path)


def test_training_audio_arrays(tmp_path):
    with pytest.raises(blekota.AudioError, match="NaN or infinite"):
        Trainer(tiny_model(), np.array([0.0, np.inf] * 500), directory=tmp_path)
    with pytest.raises(blekota.AudioError, match=r"too short: 0 samples, need at least \d+ \(1.0\d s at 8000 Hz\)"):
        Trainer(tiny_model(), np.zeros(0), directory=tmp_path)
    with pytest.raises(blekota.AudioError, match="1-D float array"):
        Trainer(tiny_model(), np.zeros((100, 2)), directory=tmp_path)
    pcm = np.rint(32767 * tone()).astype(np.float32)  # int16 samples turned float, not divided by 32768
    with pytest.warns(blekota.BlekotaWarning, match=r"training audio: \d+ samples beyond full scale \(peak 1.64e\+04\)"):
        Trainer(tiny_model(), pcm, seq_length=10, batch_size=2, directory=tmp_path)


def test_training_audio_as_a_list_of_samples_or_nothing(tmp_path):
    samples = [float(v) for v in tone()]  # a list of numbers is samples, not names of files
    trainer = Trainer(tiny_model(), samples, seq_length=10, batch_size=2, directory=tmp_path)
    np.testing.assert_array_equal(trainer.data.levels, Trainer(tiny_model(), tone(), seq_length=10, batch_size=2,
                                                               directory=tmp_path / "b").data.levels)
    for audio, got in [(None, "None"), (5, "int")]:
        with pytest.raises(blekota.AudioError, match=f"training audio must be a path, directory, glob, list of those "
                                                      f"or a 1-D float array, got {got}$"):
            Trainer(tiny_model(), audio, directory=tmp_path)


def test_too_short_file_names_it_and_the_seconds(tmp_path):
    path = blekota.save_wav(tmp_path / "short.wav", tone(1000), 8000)
    with pytest.raises(blekota.AudioError, match=r"short.wav: the sound is too short: 1000 samples, need at least \d+ \(1.0\d s at 8000 Hz\)"):
        Trainer(tiny_model(), str(path), directory=tmp_path)


# -- hyperparameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden": 0}, "hidden must be a positive integer, got 0"),
        ({"hidden": -3}, "hidden must be a positive integer, got -3"),
        ({"hidden": 2.5}, "hidden must be a positive integer, got 2.5"),
        ({"hidden": "8"}, "hidden must be a positive integer, got '8'"),
        ({"hidden": True}, "hidden must be a positive integer, got True"),
        ({"layers": 0}, "layers must be a positive integer, got 0"),
        ({"fs": -8000}, "fs must be a sample rate in 1..2147483647 Hz, got -8000"),
        ({"dtype": "float16"}, "dtype must be 'float32' or 'float64', got 'float16'"),
        ({"dtype": 123}, "dtype must be 'float32' or 'float64', got 123"),
        ({"dtype": None}, "dtype must be 'float32' or 'float64', got None"),
        ({"seed": -1}, "seed must be None or an integer >= 0, got -1"),
        ({"seed": "x"}, "seed must be None or an integer >= 0, got 'x'"),
        ({"threads": 0}, "threads must be a positive integer, got 0"),
        ({"threads": 10**9}, "threads must be at most 1024"),
        ({"hidden": 2**40}, "needs about"),
        ({"hidden": 10**6, "layers": 3}, "a 3x1000000 float32 model needs about 163.7 TiB of memory"),
    ],
)
def test_model_hyperparameters(kwargs, message):
    options = {"hidden": 4, "layers": 1, **kwargs}
    with pytest.raises(blekota.ConfigError) as raised:
        blekota.Model(**options)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seq_length": 0}, "seq_length must be a positive integer, got 0"),
        ({"batch_size": -1}, "batch_size must be a positive integer, got -1"),
        ({"batch_size": 1.5}, "batch_size must be a positive integer, got 1.5"),
        ({"lr": 0}, "learning rate must be a finite number > 0, got 0"),
        ({"lr": -0.1}, "learning rate must be a finite number > 0, got -0.1"),
        ({"lr": float("inf")}, "learning rate must be a finite number > 0, got inf"),
        ({"lr": "fast"}, "learning rate must be a finite number > 0, got 'fast'"),
        ({"optimizer": "sgd"}, "optimizer must be one of rmsprop, adagrad, adam, got 'sgd'"),
        ({"checkpoint_every": -1}, "checkpoint_every must be an integer >= 0, got -1"),
        ({"checkpoint_sound": "1s"}, "checkpoint_sound must be an integer in 0..2147483615, got '1s'"),
        ({"name": ""}, "name must be a file name prefix of at most 200 bytes, optionally after a folder (foo/bar), got ''"),
        ({"name": "a/"}, "name must be a file name prefix of at most 200 bytes, optionally after a folder (foo/bar), got 'a/'"),
        ({"name": "x" * 201}, "name must be a file name prefix of at most 200 bytes"),
        ({"name": "a/.."}, "got 'a/..'"),
        ({"name": "../x"}, "name must stay inside directory: a relative folder without '..' parts, got '../x'"),
        ({"name": "a/../../x"}, "name must stay inside directory: a relative folder without '..' parts, got 'a/../../x'"),
        ({"name": "/tmp/x"}, "name must stay inside directory: a relative folder without '..' parts, got '/tmp/x'"),
        ({"name": 7}, "got 7"),
    ],
)
def test_trainer_hyperparameters(tmp_path, kwargs, message):
    with pytest.raises(blekota.ConfigError) as raised:
        Trainer(tiny_model(), tone(), directory=tmp_path, **{"seq_length": 10, "batch_size": 2, **kwargs})
    assert message in str(raised.value)


@pytest.mark.parametrize("keywords,unknown", [({"lrr": 1}, "unknown keyword 'lrr'"),
                                              ({"model": None, "lr": 0.1, "seed_": 1}, "unknown keywords 'model', 'seed_'")])
def test_from_checkpoint_refuses_unknown_keywords(tmp_path, keywords, unknown):
    trainer = Trainer(tiny_model(), tone(), seq_length=10, batch_size=2, name="t", directory=tmp_path, log=False)
    path = trainer.save(tmp_path / "t_0.npz")
    with pytest.raises(blekota.ConfigError) as raised:
        Trainer.from_checkpoint(path, tone(), **keywords)
    message = str(raised.value)
    assert message.startswith(f"from_checkpoint got {unknown}; it takes audio, callback, threads, comm and ")
    assert "\n" not in message and "seq_length, batch_size, optimizer, lr, name" in message and "bf16" in message


def test_train_arguments(tmp_path):
    trainer = Trainer(tiny_model(), tone(), seq_length=10, batch_size=2, directory=tmp_path)
    with pytest.raises(blekota.ConfigError, match="iterations must be an integer >= 0, got -1"):
        trainer.train(-1)
    with pytest.raises(blekota.ConfigError, match="max_seconds must be > 0, got 'soon'"):
        trainer.train(1, max_seconds="soon")


def test_training_memory_is_estimated_before_allocating(tmp_path, monkeypatch):
    model = tiny_model(hidden=8)
    need = memory.training_bytes(1, 8, 100, 80, 4, 3)  # rmsprop's moment, the weights' average and the trained weights
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    with pytest.raises(blekota.ConfigError, match=(
        r"training a 1x8 float32 model with seq_length 100 and batch_size 80 needs about "
        r"[\d.]+ MiB of memory, but only [\d.]+ MiB is available; use a smaller batch_size"
    )):
        Trainer(model, np.zeros(20000, np.float32), optimizer="rmsprop", directory=tmp_path)
    monkeypatch.setattr(memory, "available_bytes", lambda: need)
    with pytest.warns(blekota.BlekotaWarning):
        Trainer(model, np.zeros(20000, np.float32), optimizer="rmsprop", directory=tmp_path)


def test_window_memory_is_estimated_before_allocating(monkeypatch):
    model = tiny_model()
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000)
    with pytest.raises(blekota.ConfigError, match="a window of 50 steps x 20 streams for a 1x4 model needs about"):
        model.loss_and_grad(np.zeros((51, 20), int))
    with pytest.raises(blekota.ConfigError, match="1000000 samples x 1 streams with probabilities needs about"):
        model.sample(10**6, return_probs=True)


def test_estimates_match_what_is_allocated():
    for layers, hidden in ((1, 1), (2, 5), (3, 16)):
        model = blekota.Model(hidden=hidden, layers=layers, threads=1)
        assert memory.parameter_count(layers, hidden) == model.n_params
        model.loss_and_grad(np.zeros((6, 3), int))
        workspace = model._workspaces[(5, 3)]
        allocated = sum(a.nbytes for a in vars(workspace).values() if isinstance(a, np.ndarray))
        estimate = memory.window_bytes(layers, hidden, 5, 3, 4, backward=True)
        assert allocated <= estimate <= allocated + 2 * model.zero_state(3).nbytes + 6 * 3
    assert memory.format_bytes(1536) == "1.5 KiB" and memory.format_bytes(12) == "12 bytes"


# -- the kernel boundary ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: m.loss_and_grad(np.zeros((1, 3), int)), "x must be a (T+1, B) array of levels with T >= 1"),
        (lambda m: m.loss_and_grad(np.zeros((3, 0), int)), "x must be a (T+1, B) array of levels with T >= 1"),
        (lambda m: m.loss_and_grad(np.zeros(3, int)), "x must be a 2-D array of levels, got shape (3,)"),
        (lambda m: m.loss_and_grad(np.full((3, 2), 256)), "x must hold integer levels 0..255"),
        (lambda m: m.loss_and_grad(np.full((3, 2), -1)), "x must hold integer levels 0..255"),
        (lambda m: m.loss_and_grad(np.zeros((3, 2))), "x must hold integer levels 0..255, got dtype float64"),
        (lambda m: m.loss_and_grad([[1, 2], [3]]), "x must be an array of integer levels 0..255"),
        (lambda m: m.loss_and_grad(np.zeros((3, 2), int), h0=np.zeros((1, 3, 4))), "h0 must have shape (1, 2, 4), got (1, 3, 4)"),
        (lambda m: m.loss_and_grad(np.zeros((3, 2), int), h0=np.full((1, 2, 4), np.nan)), "h0 contains NaN or infinite values"),
        (lambda m: m.loss_and_grad(np.zeros((3, 2), int), h0=np.full((1, 2, 4), "a")), "h0 must be an array of numbers"),
        (lambda m: m.window(np.zeros((3, 2), int), grads=np.zeros(5)), "grads must be a writable contiguous array"),
        (lambda m: m.window(np.zeros((3, 2), int), grads=np.zeros(2 * m.n_params, np.float32)[::2]), "grads must be a writable contiguous array"),
        (lambda m: m.window(np.zeros((3, 2), int), grads=list(m.params)), "grads must be a writable contiguous array"),
        (lambda m: m.probabilities(np.zeros((3, 2), np.int8) - 1), "inputs must hold integer levels 0..255"),
        (lambda m: m.probabilities(np.zeros((0, 2), int)), "x must be a (T+1, B) array of levels with T >= 1"),
        (lambda m: m.sample(-1), "n must be a non-negative integer, got -1"),
        (lambda m: m.sample(2.5), "n must be a non-negative integer, got 2.5"),
        (lambda m: m.sample(10, temperature=-0.5), "temperature must be a finite number >= 0, got -0.5"),
        (lambda m: m.sample(10, temperature=float("nan")), "temperature must be a finite number >= 0, got nan"),
        (lambda m: m.sample(10, temperature="hot"), "temperature must be a finite number >= 0, got 'hot'"),
        (lambda m: m.sample(10, seed=-5), "seed must be None or an integer >= 0, got -5"),
        (lambda m: m.sample(10, top_k=-1), "top_k must be an integer >= 0 (0: all levels), got -1"),
        (lambda m: m.sample(10, top_k=2.5), "top_k must be an integer >= 0 (0: all levels), got 2.5"),
        (lambda m: m.sample(10, top_k=True), "top_k must be an integer >= 0 (0: all levels), got True"),
        (lambda m: m.sample(10, top_p=0), "top_p must be a number in (0, 1] (1: all levels), got 0"),
        (lambda m: m.sample(10, top_p=1.5), "top_p must be a number in (0, 1] (1: all levels), got 1.5"),
        (lambda m: m.sample(10, top_p=float("nan")), "top_p must be a number in (0, 1] (1: all levels), got nan"),
        (lambda m: m.sample(10, min_p=-0.1), "min_p must be a number in [0, 1] (0: all levels), got -0.1"),
        (lambda m: m.sample(10, min_p="0.1"), "min_p must be a number in [0, 1] (0: all levels), got '0.1'"),
        (lambda m: m.generate(10, min_p=2), "min_p must be a number in [0, 1] (0: all levels), got 2"),
        (lambda m: m.sample(10, streams=0), "streams must be a positive integer, got 0"),
        (lambda m: m.sample(10, hint=np.array([0.1, np.nan])), "hint contains NaN or infinite samples"),
        (lambda m: m.sample(10, hint="hello"), "hint must be a sound: an array of float samples, got dtype <U5"),
        (lambda m: m.sample(10, hint=[[0.1], [0.2, 0.3]]), "got 2 hints for 1 streams"),
        (lambda m: m.sample(10, hint=np.array([[0.1], [0.2, 0.3]], dtype=object)), "hint must be a sound"),
        (lambda m: m.sample(10, hint=np.zeros((2, 3))), "hint must be a 1-D sound, got shape (2, 3)"),
        (lambda m: m.sample(10, hint=[np.zeros(3)], streams=2), "got 1 hints for 2 streams"),
    ],
)
def test_kernel_boundary_inputs(call, message):
    with pytest.raises(blekota.ConfigError) as raised:
        call(tiny_model())
    assert message in str(raised.value)


@pytest.mark.parametrize("value", [1e300, -1e39])
def test_an_h0_too_large_for_the_dtype_says_so(value):
    h0 = np.zeros((1, 2, 4))
    h0[0, 1, 2] = value
    for call in (lambda m: m.loss_and_grad(np.zeros((3, 2), int), h0), lambda m: m.probabilities(np.zeros((2, 2), int), h0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nor NumPy's overflow warning
            with pytest.raises(blekota.ConfigError) as raised:
                call(tiny_model())
        assert str(raised.value) == f"h0 holds values too large for the model's float32 (magnitudes up to 3.4e+38), got {value:g}"


def test_oversized_window_is_refused_before_the_kernel():
    model = tiny_model()
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(2**16 + 1, 2**15 + 1), strides=(0, 0))
    with pytest.raises(blekota.ConfigError, match=r"x of shape \(65537, 32769\) is too large: at most 2147483647 levels"):
        modelchecks.window(model, huge, None)


# -- the command line ---------------------------------------------------------------------------


SMALL = ["--layers", "1", "--hidden", "4", "--seq-length", "10", "--batch-size", "2", "--threads", "1",
         "--iterations", "1", "--checkpoint-every", "0"]


def test_cli_silent_audio_warns_in_one_line(tmp_path, capsys):
    path = blekota.save_wav(tmp_path / "silence.wav", np.zeros(4000, np.float32), 8000)
    assert main(["train", str(path), *SMALL, "--out-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err == (f"blekota: warning: {path}: the training sound is silent (every sample quantizes to "
                   "silence); the model will learn silence\n")


@pytest.mark.parametrize(
    "make,argv,message",
    [
        (lambda d: d / "x", ["train", "{}"], "x: no such file"),
        (lambda d: soundfile.write(str(d / "e.wav"), np.zeros(0), 8000) or d / "e.wav", ["train", "{}"],
         "e.wav: contains no sound (0 samples)"),
        (lambda d: blekota.save_wav(d / "s.wav", tone(100), 8000), ["train", "{}", "--batch-size", "4", "--seq-length", "99"],
         "s.wav: the sound is too short: 100 samples, need at least 417 (0.05 s at 8000 Hz)"),
        (lambda d: blekota.Model(hidden=4, layers=1).save(d / "m.npz"), ["sample", "{}", "-o", "/nonexistent/dir/out.wav"],
         "/nonexistent/dir/out.wav: the directory /nonexistent/dir does not exist"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, make, argv, message):
    path = make(tmp_path)
    argv = [arg.format(path) for arg in argv]
    if argv[0] == "train":
        argv += ["--out-dir", str(tmp_path), "--threads", "1"]
    assert main(argv) == 2
    one_line(capsys.readouterr().err, message)


def test_cli_memory_refusal_is_one_line(tmp_path, capsys):
    path = blekota.save_wav(tmp_path / "t.wav", tone(), 8000)
    assert main(["train", str(path), "--hidden", "1000000", "--out-dir", str(tmp_path)]) == 2
    one_line(capsys.readouterr().err, "a 3x1000000 float32 model needs about 163.7 TiB of memory, but only")


def test_cli_hint_at_another_rate_is_resampled(tmp_path, capsys):
    """The CLI reads a hint at the model's rate: a 16 kHz hint primes an 8 kHz model correctly."""
    model_path = blekota.Model(hidden=4, layers=1, seed=0).save(tmp_path / "m.npz")
    hint_path = tmp_path / "hint16k.wav"
    soundfile.write(str(hint_path), tone(3200, fs=16000), 16000)
    out = tmp_path / "out.wav"
    assert main(["sample", str(model_path), "-n", "2000", "--hint", str(hint_path), "-o", str(out), "--threads", "1"]) == 0
    generated, _ = blekota.load_audio(out, 8000)
    expected = blekota.mulaw.unquantize(blekota.mulaw.quantize(blekota.audio.to_rate(tone(3200, 16000), 16000, 8000)))
    np.testing.assert_allclose(generated[100:1500], expected[100:1500], atol=0.02)


def test_replaced_params_are_refused_before_the_kernel():
    model = tiny_model()
    for bad in (np.zeros(5, np.float32), model.params.astype(np.float64), np.repeat(model.params, 2)[::2], list(model.params)):
        model.params = bad
        for call in (lambda: model.loss_and_grad(np.zeros((3, 2), int)), lambda: model.sample(5)):
            with pytest.raises(blekota.ConfigError, match=r"model.params must be a contiguous float32 array of 4412 values; use load_state_dict"):
                call()


PCM = np.array([0, 12000, -32768, 500], np.int16)  # as scipy.io.wavfile.read gives a 16-bit wav


def write_in_chunks(path, sound):
    with blekota.audio.WavWriter(path, 8000, len(sound)) as out:
        out.write(sound)


@pytest.mark.parametrize("call,what", [
    (lambda m, tmp: blekota.save_wav(tmp / "x.wav", PCM, 8000), "the sound to write must be"),
    (lambda m, tmp: write_in_chunks(tmp / "x.wav", PCM), "a chunk to write must be"),
    (lambda m, tmp: blekota.play(PCM, 8000), "the sound to play must be"),
    (lambda m, tmp: m.sample(10, hint=PCM), "hint must be a sound"),
    (lambda m, tmp: m.stream(hint=[PCM.astype(np.int64)]), "hint must be a sound"),
    (lambda m, tmp: blekota.plot.show(PCM, 8000, out=tmp / "x.png"), "sound must be a sound"),
    (lambda m, tmp: blekota.soundstats.mel_distance(np.tile(PCM, 999), tone(), 8000), "the sound must be"),
    (lambda m, tmp: Trainer(m, np.tile(PCM, 999), seq_length=10, batch_size=2, directory=tmp), "training audio must be"),
])
def test_integer_pcm_samples_are_refused_not_clipped_to_full_scale(tmp_path, monkeypatch, call, what):
    """Integer samples beyond [-1, 1] were clipped to +-1 (a 16-bit wav read as integers wrote a square wave)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(blekota.ConfigError) as raised:
        call(tiny_model(), tmp_path)
    message = str(raised.value)
    assert message.startswith(what) and "an array of float samples in [-1, 1], got int" in message
    assert message.endswith(" samples up to 32768 (integer PCM: divide 16-bit samples by 32768)")
    assert list(tmp_path.iterdir()) == []


STEREO = np.stack([tone(), tone() / 2], axis=1)  # (frames, 2), as soundfile.read gives a stereo file


@pytest.mark.parametrize("call,what", [
    (lambda m, tmp: blekota.save_wav(tmp / "x.wav", STEREO, 8000), "the sound to write must be"),
    (lambda m, tmp: write_in_chunks(tmp / "x.wav", STEREO), "a chunk to write must be"),
    (lambda m, tmp: blekota.play(STEREO, 8000), "the sound to play must be"),
    (lambda m, tmp: m.sample(10, hint=STEREO), "hint must be a sound"),
    (lambda m, tmp: blekota.soundstats.judge([STEREO], tone(), 8000), "the sound must be"),
])
def test_a_stereo_array_is_refused_not_written_with_its_channels_interleaved(tmp_path, monkeypatch, call, what):
    """An (n, 2) array's rows, read as streams, were written one after another: L R L R at twice the length."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(blekota.ConfigError) as raised:
        call(tiny_model(), tmp_path)
    message = str(raised.value)
    assert message.startswith(what) and f"of one channel, got 2 channels of {len(STEREO)} frames" in message
    assert message.endswith("mix them to one with y.mean(axis=1)")
    assert list(tmp_path.iterdir()) == []


def test_streams_as_rows_are_still_written_one_after_another(tmp_path):
    streams = np.stack([tone()[:4000], -tone()[:4000]])  # (2, n), as Model.sample(streams=2) gives
    blekota.save_wav(tmp_path / "two.wav", streams, 8000)
    assert np.allclose(blekota.load_audio(tmp_path / "two.wav")[0], streams.ravel(), atol=1e-4)


def test_integer_samples_within_full_scale_are_samples():
    model = tiny_model()
    assert np.array_equal(model.sample(6, hint=[0, 1, -1], seed=1), model.sample(6, hint=[0.0, 1.0, -1.0], seed=1))


def test_commands_suggested_for_a_path_with_spaces_can_be_pasted(tmp_path, monkeypatch, capsys):
    """The command an error line suggests quotes a file name the shell would split."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("my take.wav", tone(), 8000)
    tiny_model().save("my model.npz")
    (tmp_path / "old model.pkl").write_bytes(b"\x80\x04K\x01.")
    assert main(["info", "my take.wav"]) == 2
    assert "(to train a model on it: python -m blekota train 'my take.wav')" in capsys.readouterr().err
    assert main(["plot", "waveform", "my model.npz", "-o", "w.png"]) == 2
    assert "to go on training a model: python -m blekota train --resume 'my model.npz'\n" in capsys.readouterr().err
    with pytest.raises(blekota.ModelFileError, match=r"converts with: python -m blekota import-legacy 'old model.pkl'\)"):
        blekota.fileformat.read("old model.pkl")


def test_an_empty_file_name_is_refused_not_taken_for_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_model()
    for call in (lambda: blekota.save_wav("", tone(), 8000), lambda: blekota.save_sound("", tone(), 8000),
                 lambda: blekota.load(""), lambda: blekota.load_audio(""), lambda: model.save(""),
                 lambda: blekota.export_onnx(model, "")):
        with pytest.raises(blekota.ConfigError, match="path must be a file name \\(a str or a path\\), got ''"):
            call()
