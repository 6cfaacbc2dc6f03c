"""The interactive session, driven through stdin in a subprocess, headless and without sound."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

import blekota
from blekota.cli import build_parser, main
from blekota.repl import Console, Session, open_session, session_namespace

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
        "loss_curve()",
        "compare()",
        "clf.checkpoint(100)",
        "heatmap(5000)",
        "",
    ])
    result = repl(tmp_path, SMALL, commands)
    out, err = result.stdout, result.stderr
    assert "clf.train(it)" in err and "heatmap(start=0, length=1000)" in err  # the banner
    assert "on the built-in demo sound" in err
    assert "done at iteration 3; saved demo_3.npz" in out
    assert "samples (400,) (400, 256)" in out
    assert "wrote heatmap.png" in out and "wrote heatmap-2.png" in out and "wrote new.wav" in out
    assert "cannot play sound" in out and (tmp_path / "last_played.wav").exists()
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
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "tone.wav" as recorded is not here, but beside the model
    assert "training on ../tone.wav" in open_session("../tone_3.npz", {"threads": 1}, {})[1]
    monkeypatch.chdir(tmp_path)

    wav.unlink()
    session, note = open_session("tone_3.npz", {"threads": 1}, {})
    assert "it samples, but cannot train here: tone.wav: no such file" in note
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


def test_ctrl_c_stops_training_and_the_session_goes_on(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    process = subprocess.Popen([sys.executable, "-m", "blekota", "repl", *SMALL], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        process.stdin.write("clf.train(10**9)\n")
        process.stdin.flush()
        while "iteration" not in (line := process.stdout.readline()):
            assert line, process.stderr.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate("print('still here', clf.trainer.iteration > 0)\n", timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "stopped at iteration" in out and "still here True" in out and "Traceback" not in err


def test_session_sample_takes_the_truncation(make_model):
    model = make_model(12, 1, "float32", scale=0.4)
    session = Session(model)
    sound = session.sample(200, seed=3, temperature=0.9, top_k=5, top_p=0.8, min_p=0.1)
    np.testing.assert_array_equal(sound, model.sample(200, seed=3, temperature=0.9, top_k=5, top_p=0.8, min_p=0.1))
    assert ((session.last_probs > 0).sum(axis=1) <= 5).all()
