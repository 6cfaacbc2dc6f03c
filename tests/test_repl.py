"""The interactive session, driven through stdin in a subprocess, headless and without sound."""

import io
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile
from matplotlib.image import imread

import blekota
from blekota.cli import build_parser, main
from blekota.repl import Console, Session, interact, open_session, session_namespace

SMALL = ["--layers", "1", "--hidden", "12", "--seq-length", "20", "--batch-size", "4", "--threads", "1"]


def repl(cwd, args, commands: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-m", "blekota", "repl", *args], input=commands,
                            capture_output=True, text=True, cwd=cwd, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_session_on_the_demo_sound(tmp_path):
    commands = "\n".join([
        "clf.train(3)",
        "y = clf.sample(400, seed=1, temperature=0.9)",
        "print('samples', y.shape, clf.last_probs.shape)",
        "heatmap(0, 200)",
        "heatmap(100, 200)",
        "save_file('new.wav', y)",
        "show(y)",
        "play(y)",
        "live(0.2, seed=1)",
        "loss_curve()",
        "compare()",
        "clf.checkpoint(100)",
        "heatmap(5000)",
        "",
    ])
    result = repl(tmp_path, SMALL, commands)
    out, err = result.stdout, result.stderr
    assert "clf.train(it)" in err and "heatmap(start=0, length=1000)" in err and "live(seconds=None" in err  # the banner
    assert "on the built-in demo sound" in err
    assert "done at iteration 3; saved demo_3.npz" in out
    assert "samples (400,) (400, 256)" in out
    assert "wrote heatmap.png" in out and "wrote heatmap-2.png" in out and "wrote new.wav" in out
    assert out.count("cannot play sound") == 2 and (tmp_path / "last_played.wav").exists()  # play(y), live()
    assert "error: start must be an integer in 0..399, got 5000" in err  # one line, session goes on
    sizes = {"heatmap.png": (500, 1000), "heatmap-2.png": (500, 1000), "waveform.png": (350, 1000),
             "loss.png": (450, 800), "compare.png": (650, 1200)}
    for name, size in sizes.items():
        assert imread(tmp_path / name).shape[:2] == size
    saved, fs = blekota.load_audio(tmp_path / "new.wav", None)
    assert saved.size == 400 and fs == 8000
    assert {"demo_3.npz", "demo_3.wav"} <= {p.name for p in tmp_path.iterdir()}
    assert blekota.load(tmp_path / "demo_3.npz").info["iterations"] == 3


def test_session_on_a_sound_then_on_its_model_when_the_sound_is_gone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    t = np.arange(6000) / 8000
    wav = blekota.save_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 300 * t), 8000)
    model_options = dict(hidden=12, layers=1, fs=8000, dtype="float32", seed=0, threads=1)
    trainer_options = dict(seq_length=20, batch_size=4, optimizer="adam", lr=3e-3, seed=0)
    session, note = open_session("tone.wav", model_options, trainer_options)
    assert note.startswith("new 1x12 GRU") and "on tone.wav" in note
    session.train(2)
    session, note = open_session("tone_2.npz", {"threads": 1}, {})
    assert "at iteration 2, training on tone.wav" in note
    session.train(1)
    assert blekota.load("tone_3.npz").info["iterations"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, in the note
        assert open_session("tone_2.npz", {"threads": 1}, {})[1].endswith(
            "; clf.train writes over this run's later files here (tone_3.npz, tone_best.npz)")  # said before it does
    again, note = open_session("tone.wav", model_options, trainer_options)  # a new session
    assert note.endswith("an earlier run of tone left its files here, so this one is tone-2")
    again.train(2)
    assert blekota.load("tone_3.npz").info["iterations"] == 3  # untouched
    assert blekota.load("tone-2_2.npz").info["iterations"] == 2
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "tone.wav" as recorded is not here, but beside the model
    assert "training on ../tone.wav" in open_session("../tone_3.npz", {"threads": 1}, {})[1]
    monkeypatch.chdir(tmp_path)

    wav.unlink()
    session, note = open_session("tone_3.npz", {"threads": 1}, {})
    assert "it samples, but cannot train here: tone.wav: no such file" in note
    assert note.endswith("(clf.set_audio('sound.wav') gives it a sound to train on)")
    console = Console(session_namespace(session))
    for line in ("y = clf.sample(50, seed=2)", "save_file('after.wav')", "clf.train(1)", "show()"):
        console.push(line)
    printed = capsys.readouterr()
    assert "wrote after.wav" in printed.out and "wrote waveform.png" in printed.out
    assert printed.err.strip() == "error: this model has no training sound here; give one with clf.set_audio('sound.wav')"
    session.set_audio(blekota.demo_sound(8000, seconds=1.0))
    session.train(1)
    assert (tmp_path / "tone_4.npz").exists()


def test_repl_refuses_a_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["repl", "missing.wav"]) == 2
    assert "missing.wav: no such file" in capsys.readouterr().err


def test_repl_takes_the_training_flags(capsys):
    parser = build_parser()
    train = parser.parse_args(["train", "x.wav"])
    session = parser.parse_args(["repl"])
    for key in ("layers", "hidden", "seq_length", "batch_size", "alpha", "optimizer", "fs", "dtype", "seed"):
        assert getattr(train, key) == getattr(session, key)
    with pytest.raises(SystemExit):
        main(["repl", "--help"])
    assert "--seq-length" in capsys.readouterr().out


def signal_while_training(tmp_path, signum: int, then: str) -> tuple[subprocess.Popen, str, str]:
    """Start `repl` in tmp_path, have it train, send signum once training reports, then type `then`;
    returns the ended process and what it wrote on stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    process = subprocess.Popen([sys.executable, "-m", "blekota", "repl", *SMALL], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        process.stdin.write("clf.train(10**9)\n")
        process.stdin.flush()
        while "iteration" not in (line := process.stdout.readline()):
            assert line, process.stderr.read()
        process.send_signal(signum)
        out, err = process.communicate(then + "\n", timeout=120)
    finally:
        process.kill()
    return process, out, err


def test_ctrl_c_stops_training_and_the_session_goes_on(tmp_path):
    process, out, err = signal_while_training(tmp_path, signal.SIGINT, "print('still here', clf.trainer.iteration > 0)")
    assert process.returncode == 0, err
    assert "stopped at iteration" in out and "still here True" in out and "Traceback" not in err


def test_sigterm_while_training_saves_then_ends_the_session(tmp_path):
    """SIGTERM (kill, a shutdown) stopped the training and was forgotten: the session read on."""
    process, out, err = signal_while_training(tmp_path, signal.SIGTERM, "print('still here')")
    assert process.returncode == -signal.SIGTERM, err
    assert "stopped at iteration" in out and "still here" not in out and "Traceback" not in err
    saved = [path.name for path in tmp_path.glob("demo_*.npz")]
    assert saved and blekota.load(tmp_path / saved[0]).info["iterations"] > 0


def session(monkeypatch, argv, commands: str) -> int:
    """Run `python -m blekota repl ...` in this process with commands on stdin."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(commands))
    return main(["repl", *argv])


def test_the_original_readme_session_starts(tmp_path, monkeypatch, capsys):
    """python -i blekota.py --model-name my_model my_training_file.wav, as `repl`."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    commands = "clf.train(2)\nprint('name', clf.trainer.name)\n"
    assert session(monkeypatch, ["voice.wav", "--model-name", "my_model", *SMALL, "--checkpoint-sound", "0"], commands) == 0
    out = capsys.readouterr().out
    assert "saved my_model_2.npz" in out and "name my_model" in out
    assert session(monkeypatch, ["voice.wav", "--model-name", "foo/bar", "--out-dir", "runs", "--iterations", "1",
                                 "--checkpoint-every", "1", "--val-fraction", "0", *SMALL], "") == 0
    assert sorted(os.listdir(tmp_path / "runs" / "foo")) == ["bar.log.jsonl", "bar_1.npz", "bar_1.wav"]
    assert blekota.load(tmp_path / "runs" / "foo" / "bar_1.npz").info["trainer"]["val_fraction"] == 0


def test_a_model_goes_on_beside_itself_with_the_options_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    assert main(["train", "voice.wav", "--out-dir", "models", *SMALL, "--iterations", "1", "-q"]) == 0
    assert session(monkeypatch, ["models/voice_1.npz", "--alpha", "0.01", "--threads", "1"], "clf.train(1)\n") == 0
    assert blekota.load("models/voice_2.npz").info["trainer"]["lr"] == 0.01
    assert session(monkeypatch, ["models/voice_2.npz", "--layers", "2"], "") == 2
    assert "--layers 2 does not fit it" in capsys.readouterr().err


def test_an_original_pickle_opens_in_the_session(tmp_path, monkeypatch, capsys):
    """python -i blekota.py samples/bety.pkl: the pickle is converted once, beside it."""
    from legacy_pickles import GRU, write_pickle

    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples").mkdir()
    original = GRU(h_n=6, layer_n=2, seed=1, file="bety.wav", name="bety", iterations=1000, seq_length=20, batches=4)
    write_pickle(tmp_path / "samples" / "bety.pkl", original)
    blekota.save_wav("bety.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    commands = "y2 = clf.sample(800)\nsave_file('foo.wav', y2)\nclf.train(1)\n"
    assert session(monkeypatch, ["samples/bety.pkl", "--threads", "1"], commands) == 0
    captured = capsys.readouterr()
    assert captured.err.count("converted") == 1
    assert "converted samples/bety.pkl (a model of the original blekota; nothing in it was run) to samples/bety.npz" in captured.err
    assert "loaded samples/bety.npz at iteration 1000, training on bety.wav" in captured.err
    assert "wrote foo.wav" in captured.out and "saved samples/bety_1001.npz" in captured.out
    levels = np.random.default_rng(0).integers(0, 256, (9, 3))
    np.testing.assert_allclose(blekota.load("samples/bety.npz").probabilities(levels), original.forward(levels), rtol=1e-10)
    assert session(monkeypatch, ["samples/bety.pkl", "--threads", "1"], "") == 0
    assert "converted" not in capsys.readouterr().err  # once


def test_a_failed_file_operation_is_one_line_in_the_session(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    console = Console(session_namespace(open_session(None, dict(hidden=4, layers=1, threads=1), dict(seq_length=10, batch_size=2))[0]))
    console.push("save_file('missing/x.wav', np.zeros(10))")
    assert capsys.readouterr().err == "error: missing: no such directory\n"
    console.push("show(np.zeros(100), out='wave.jpg')")
    assert capsys.readouterr().err == "error: wave.jpg: pictures are written as PNG, not jpg; give out a name ending in .png\n"
    assert list(tmp_path.iterdir()) == []


def test_session_sample_takes_the_truncation(make_model):
    model = make_model(12, 1, "float32", scale=0.4)
    clf = Session(model)
    sound = clf.sample(200, seed=3, temperature=0.9, top_k=5, top_p=0.8, min_p=0.1)
    np.testing.assert_array_equal(sound, model.sample(200, seed=3, temperature=0.9, top_k=5, top_p=0.8, min_p=0.1))
    assert ((clf.last_probs > 0).sum(axis=1) <= 5).all()


@pytest.mark.parametrize("torch_here", [False, True], ids=["without torch", "torch without a GPU"])
def test_repl_device_cuda_is_refused_as_train_refuses_it(tmp_path, monkeypatch, capsys, torch_here):
    if torch_here:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is here")
    else:
        monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    assert main(["train", "voice.wav", "--device", "cuda", "--iterations", "1"]) == 2
    refusal = capsys.readouterr().err
    assert refusal.startswith("blekota: error: --device cuda") and refusal.count("\n") == 1
    for source in ([], ["voice.wav"]):
        assert session(monkeypatch, [*source, "--device", "cuda"], "print('opened')\n") == 2
        captured = capsys.readouterr()
        assert captured.err == refusal and "opened" not in captured.out
    assert os.listdir(tmp_path) == ["voice.wav"]
    with pytest.raises(SystemExit) as exit_:
        main(["repl", "--device", "gpu"])
    assert exit_.value.code == 2
    assert "argument --device: expected cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


def test_repl_device_cpu_trains_in_the_compiled_core(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    commands = "clf.train(1)\nprint('steps on', clf.trainer.device_step)\n"
    for source in ("voice.wav", "voice_1.npz"):  # a new session, then a resumed one
        assert session(monkeypatch, [source, "--device", "cpu", *SMALL, "--checkpoint-sound", "0"], commands) == 0
        captured = capsys.readouterr()
        assert "steps on None" in captured.out and "each step on" not in captured.err
    assert blekota.load("voice_2.npz").info["iterations"] == 2


def test_repl_device_reaches_the_trainer_of_new_and_resumed_sessions(tmp_path, monkeypatch, capsys):
    """A GPU stood in for by torch's CPU, as in test_device.py."""
    pytest.importorskip("torch")
    from blekota import device, torchstep

    monkeypatch.setattr(device, "check", lambda name, value, processes=1: value)
    made = []

    def on_torch_cpu(device_name, model, optimizer, processes=1, average=None):
        if device_name == "cpu":
            return None
        made.append(device_name)
        return torchstep.TorchStep(model, optimizer, "cpu", average=average)

    monkeypatch.setattr("blekota.train.training_step", on_torch_cpu)
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    assert session(monkeypatch, ["voice.wav", "--device", "cuda", *SMALL, "--checkpoint-sound", "0"], "clf.train(2)\n") == 0
    assert "on voice.wav: 0.8 s of sound, each step on torch's cpu device" in capsys.readouterr().err
    assert session(monkeypatch, ["voice_2.npz", "--device", "cuda:0", "--threads", "1"], "clf.train(1)\n") == 0
    assert "at iteration 2, training on voice.wav, each step on torch's cpu device" in capsys.readouterr().err
    assert made == ["cuda", "cuda:0"] and blekota.load("voice_3.npz").info["iterations"] == 3


def test_a_session_on_a_directory_or_a_glob_is_named_as_train_names_it(tmp_path, monkeypatch, capsys):
    """Not '*' (files *_1.npz) for a quoted glob, nor a refused '' for '.'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sounds").mkdir()
    blekota.save_wav("sounds/voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    commands = "print('name', clf.trainer.name)\n"
    assert session(monkeypatch, ["sounds/*.wav", *SMALL], commands) == 0
    assert "name sounds" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path / "sounds")
    assert session(monkeypatch, [".", *SMALL], commands) == 0
    assert "name sounds" in capsys.readouterr().out


def test_a_rate_of_zero_is_refused_not_taken_for_the_sessions(tmp_path, monkeypatch, make_model):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(blekota.audio, "sounddevice_module", lambda: (_ for _ in ()).throw(blekota.audio.PlaybackError("no device")))
    names = session_namespace(Session(make_model(4, 1, "float32")))
    sound = np.zeros(100, np.float32)
    for call in (lambda: names["play"](sound, fs=0), lambda: names["show"](sound, fs=0, out="a.png"),
                 lambda: names["spectrogram"](sound, fs=0, out="b.png"),
                 lambda: names["compare"](sound, sound, fs=0, out="c.png"),
                 lambda: names["save_file"]("d.wav", sound, fs=0)):
        with pytest.raises(blekota.BlekotaError, match="fs must be|sample rate must be"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_save_file_and_live_write_the_format_the_name_says(tmp_path, monkeypatch, capsys, make_model):
    """As sample -o and play --record: a wav, flac, mp3, ... by the name, and a format not written is refused."""
    monkeypatch.chdir(tmp_path)
    console = Console(session_namespace(Session(make_model(4, 1, "float32"))))
    console.push("save_file('take.m4a', np.zeros(10))")
    assert capsys.readouterr().err.startswith("error: take.m4a: blekota writes sounds as .wav, .flac, ")
    console.push("live(seconds=0.1, record='take.wma')")
    assert capsys.readouterr().err.startswith("error: take.wma: blekota writes sounds as .wav, .flac, ")
    assert list(tmp_path.iterdir()) == []
    console.push("save_file('take.flac', np.full(10, 0.5))")
    console.push("save_file('take.wav', np.zeros(10))")
    assert soundfile.info(tmp_path / "take.flac").format == "FLAC" and (tmp_path / "take.wav").exists()
    np.testing.assert_array_equal(soundfile.read(tmp_path / "take.flac", dtype="float32")[0], np.full(10, 0.5))


def test_a_file_name_where_a_sound_goes_points_to_load_file(tmp_path, monkeypatch, capsys, make_model):
    """play('s.wav') says that it takes samples and how to read them; load_file reads at the model's rate."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("s.wav", np.full(1600, 0.25), 16000)
    console = Console(session_namespace(Session(make_model(4, 1, "float32"))))
    console.push("play('s.wav')")
    assert capsys.readouterr().err == ("error: play takes a sound (an array of samples), not a file name: "
                                       "read the file first, y = load_file('s.wav')\n")
    console.push("y = load_file('s.wav')")
    console.push("print(y.shape, round(float(y[400]), 3))")
    assert capsys.readouterr().out == "(800,) 0.25\n"


def test_save_file_and_live_never_write_over_the_sound_the_session_trains_on(tmp_path, monkeypatch, capsys):
    """save_file('voice.wav', y) replaced the training sound (a later run then read 400 samples of noise)."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    before = (tmp_path / "voice.wav").read_bytes()
    session = open_session("voice.wav", dict(hidden=4, layers=1, threads=1), dict(seq_length=10, batch_size=2))[0]
    console = Console(session_namespace(session))
    for line in ("save_file('voice.wav', np.zeros(400))", "save_file('./voice.wav', np.zeros(400))",
                 "live(seconds=0.1, record='voice.wav')"):
        console.push(line)
    errors = capsys.readouterr().err.splitlines()
    assert errors == [f"error: {name}: is a sound this session trains on, so it is left as it is; give {what} another file"
                      for name, what in (("voice.wav", "save_file"), ("./voice.wav", "save_file"), ("voice.wav", "record"))]
    assert (tmp_path / "voice.wav").read_bytes() == before
    console.push("save_file('other.wav', np.zeros(400))")
    assert (tmp_path / "other.wav").exists()


def test_ipython_shows_bad_input_in_one_line_as_the_standard_console_does(tmp_path, monkeypatch, capsys, make_model):
    """With IPython installed, clf.train(-1) printed a 30-line traceback through checks.py."""
    pytest.importorskip("IPython")
    from IPython.terminal.ipapp import TerminalIPythonApp

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    cells = ["clf.train(-1)", "save_file('missing/x.wav', np.zeros(10))", "1 / 0", "print('still here')"]
    monkeypatch.setattr(TerminalIPythonApp, "start", lambda app: [app.shell.run_cell(cell) for cell in cells])
    try:
        interact(Session(make_model(4, 1, "float32")), "a model")
    finally:
        TerminalIPythonApp.clear_instance()
        from IPython.terminal.interactiveshell import TerminalInteractiveShell
        TerminalInteractiveShell.clear_instance()
    captured = capsys.readouterr()
    assert captured.err.splitlines()[:2] == [
        "error: this model has no training sound here; give one with clf.set_audio('sound.wav')",
        "error: missing: no such directory"]
    assert "ZeroDivisionError" in captured.out + captured.err and "still here" in captured.out


@pytest.mark.skipif(not hasattr(os, "openpty") or sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_standard_console_at_a_terminal_has_history_and_tab_completion(tmp_path):
    """Without IPython, the up arrow typed '^[[A' (a SyntaxError) and Tab a tab, where python -i,
    as the original blekota was used, recalls the last line and completes clf.mod to clf.model."""
    import select

    start = ("import sys; sys.modules['IPython'] = None; from blekota.cli import main; "
             f"sys.exit(main(['repl', *{SMALL!r}]))")
    # Not pty.fork(): Python 3.12 warns (DeprecationWarning) that forking this process, whose BLAS
    # threads run by now, may deadlock the child.
    fd, terminal = os.openpty()
    console = subprocess.Popen([sys.executable, "-c", start], stdin=terminal, stdout=terminal, stderr=terminal,
                               cwd=tmp_path, start_new_session=True)
    os.close(terminal)
    seen = b""

    def read_until(text: bytes) -> None:
        nonlocal seen
        while text not in seen:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, seen.decode(errors="replace")
            seen += os.read(fd, 4096)

    try:
        read_until(b">>> ")
        for keys in (b"x = 41\n", b"\x1b[A+1\n", b"print('x is', x, 'hidden', clf.mod\t.hidden)\n"):
            seen = b""
            os.write(fd, keys)
            read_until(b">>> ")
        assert b"x is 42 hidden 12" in seen, seen.decode(errors="replace")
    finally:
        console.kill()
        console.wait()
        os.close(fd)


def test_training_before_the_prompt_says_what_it_opened_first_and_where_it_stands_after(tmp_path, monkeypatch, capsys):
    """repl voice_1.npz --iterations 1 trained first and then opened with 'loaded voice_1.npz at
    iteration 1; clf.train writes over this run's later files here (voice_2.npz, ...)': the file it had
    just written, a warning after the fact."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(2 * np.pi * 300 * np.arange(6000) / 8000), 8000)
    assert main(["train", "voice.wav", *SMALL, "--iterations", "2", "--checkpoint-every", "1", "-q"]) == 0
    capsys.readouterr()
    assert session(monkeypatch, ["voice_1.npz", "--iterations", "1", "--threads", "1", "-q"], "") == 0
    lines = capsys.readouterr().err.splitlines()
    opened = [number for number, line in enumerate(lines) if "loaded voice_1.npz at iteration 1" in line]
    banner = [number for number, line in enumerate(lines)
              if line.startswith("blekota ") and "clf.train(it)" in lines[number + 1]]
    assert opened and "writes over this run's later files here (voice_2.npz" in lines[opened[0]]
    assert banner and opened[0] < banner[0]
    assert lines[banner[0]].endswith(": voice at iteration 2, training on voice.wav")
