"""Pictures, headless: every plot writes a PNG of the planned size and never needs a display."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import blekota
from blekota import plot
from blekota.cli import main

FS = 8000


@pytest.fixture(autouse=True)
def headless(monkeypatch, tmp_path):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def headless_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env.update(extra)
    return env


def tone(n: int = 4000) -> np.ndarray:
    t = np.arange(n) / FS
    return (0.5 * np.sin(2 * np.pi * 440 * t) * np.minimum(1, t * 20)).astype(np.float32)


def assert_png(path, width, height):
    assert path.suffix == ".png" and path.stat().st_size > 1000
    assert imread(path).shape[:2] == (height, width)


def test_each_picture_has_its_size(tmp_path):
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    sound, probs = model.sample(600, seed=1, return_probs=True)
    log = [{"iteration": i, "time": i / 10, "train_loss": 5 - i / 100, "val_loss": None, "lr": 1e-3}
           for i in range(10, 200, 10)]
    assert_png(plot.show(tone(), FS, out=tmp_path), 1000, 350)
    assert_png(plot.heatmap(probs, FS, sound, start=100, length=300, out=tmp_path), 1000, 500)
    assert_png(plot.loss_curve(log, out=tmp_path), 800, 450)
    assert_png(plot.spectrogram(tone(), FS, out=tmp_path), 1000, 450)
    assert_png(plot.compare(tone(), sound, FS, out=tmp_path), 1200, 650)


def test_a_loss_curve_of_one_report_shows_it(tmp_path, monkeypatch):
    """A run of fewer iterations than a report's (or stopped before the second) logged one training
    loss: a line through one point draws nothing, so it is drawn as a dot."""
    drawn = []
    finish = plot._finish
    monkeypatch.setattr(plot, "_finish", lambda figure, *args: drawn.append(figure) or finish(figure, *args))
    assert_png(plot.loss_curve({"history": [[5, 5.5]]}, out=tmp_path), 800, 450)
    line = drawn[0].axes[0].lines[0]
    assert line.get_label() == "training" and line.get_marker() not in (None, "None", "")
    plot.loss_curve({"history": [[5, 5.5], [10, 5.0]]}, out=tmp_path)
    assert drawn[1].axes[0].lines[0].get_marker() in (None, "None", "")


def test_without_display_files_are_numbered_never_overwritten(tmp_path):
    assert not plot.display_available()
    (tmp_path / "waveform.png").write_bytes(b"keep me")
    first = plot.show(tone(), FS)
    second = plot.show(tone(), FS)
    assert first.name == "waveform-2.png" and second.name == "waveform-3.png"
    assert (tmp_path / "waveform.png").read_bytes() == b"keep me"
    named = plot.show(tone(), FS, out=tmp_path / "mine.png")
    assert named == tmp_path / "mine.png" and named.stat().st_size > 1000


def test_a_name_that_promises_another_image_format_is_refused_before_drawing(tmp_path):
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    sound, probs = model.sample(200, seed=1, return_probs=True)
    log = [{"iteration": 10, "time": 1.0, "train_loss": 5.0, "val_loss": None, "lr": 1e-3}]
    draw = {"show": lambda out: plot.show(tone(), FS, out=out),
            "heatmap": lambda out: plot.heatmap(probs, FS, sound, out=out),
            "loss_curve": lambda out: plot.loss_curve(log, out=out),
            "spectrogram": lambda out: plot.spectrogram(tone(), FS, out=out),
            "compare": lambda out: plot.compare(tone(), sound, FS, out=out)}
    for what, name in zip(draw, ("wave.jpg", "heat.JPEG", "loss.svg", "spec.pdf", "both.webp")):
        (tmp_path / "old.gif").write_bytes(b"keep me")
        for out in (name, tmp_path / "old.gif"):
            suffix = os.path.splitext(out)[1].lower()
            with pytest.raises(ValueError, match=rf"^{re.escape(str(out))}: pictures are written as PNG, not {suffix[1:]}; give out a name "
                                                 r"ending in \.png$"):
                draw[what](out)
        assert sorted(os.listdir(tmp_path)) == ["old.gif"] and (tmp_path / "old.gif").read_bytes() == b"keep me", what
    (tmp_path / "pictures.jpg").mkdir()  # a folder: the picture gets a name of its own in it
    assert plot.show(tone(), FS, out=tmp_path / "pictures.jpg") == tmp_path / "pictures.jpg" / "waveform.png"
    assert plot.show(tone(), FS, out="wave.plot") == Path("wave.plot")  # a name of no known format is written as asked


def test_a_picture_into_a_file_object_writes_no_file(tmp_path):
    png = io.BytesIO()
    assert plot.spectrogram(tone(), FS, out=png) is None
    assert list(tmp_path.iterdir()) == []
    assert imread(io.BytesIO(png.getvalue())).shape[:2] == (450, 1000)
    (tmp_path / "spectrogram.png").write_bytes(png.getvalue())
    assert plot.is_marked_png(tmp_path / "spectrogram.png")


@pytest.mark.parametrize("env,expected", [
    ({"DISPLAY": ":0"}, True), ({"WAYLAND_DISPLAY": "wayland-0"}, True), ({}, False),
    ({"DISPLAY": ":0", "MPLBACKEND": "Agg"}, False),
])
def test_display_detection(monkeypatch, env, expected):
    monkeypatch.setattr(sys, "platform", "linux")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert plot.display_available() is expected


def test_a_broken_display_falls_back_to_a_file_and_matplotlib_stays_unimported(tmp_path):
    script = ("import sys, blekota; assert 'matplotlib' not in sys.modules; "
              "from blekota import plot; print(plot.show([0.0, 0.5, -0.5], 8000))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, env=headless_env(DISPLAY=":987"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "waveform.png" and (tmp_path / "waveform.png").stat().st_size > 0


def test_loss_points_from_every_kind_of_log(tmp_path):
    rows = [{"iteration": 50, "time": 1.0, "train_loss": 5.0, "val_loss": None, "lr": 1e-3},
            {"iteration": 100, "time": 2.0, "train_loss": 4.0, "val_loss": 4.5, "lr": 1e-3},
            {"iteration": 150, "time": 3.0, "train_loss": None, "val_loss": 4.2, "lr": 5e-4}]
    path = tmp_path / "voice.log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"iteration": 2')  # being written
    for log in (path, str(path), rows):
        train, val = plot.loss_points(log)
        np.testing.assert_array_equal(train, [[50, 5.0], [100, 4.0]])
        np.testing.assert_array_equal(val, [[100, 4.5], [150, 4.2]])
    train, val = plot.loss_points({"history": [[50, 5.0]], "val_history": [[50, 5.1]]})
    assert train.tolist() == [[50, 5.0]] and val.tolist() == [[50, 5.1]]
    path.write_text("not json\n" + json.dumps(rows[0]) + "\n")
    with pytest.raises(blekota.BlekotaError, match="voice.log.jsonl:1: not a JSON line"):
        plot.loss_points(path)
    with pytest.raises(blekota.BlekotaError, match="no loss values"):
        plot.loss_curve({"history": []})


def test_bad_input_is_refused():
    with pytest.raises(blekota.ConfigError, match=r"\(n, 256\)"):
        plot.heatmap(np.zeros((10, 3)))
    with pytest.raises(blekota.ConfigError, match="start"):
        plot.heatmap(np.full((10, 256), 1 / 256), start=10)
    with pytest.raises(blekota.ConfigError, match="1-D"):
        plot.show(np.zeros((2, 2)))
    for bad in ("a", -5, 2.7):  # it said ValueError from int(), or drew from -5 or 2
        with pytest.raises(blekota.ConfigError, match="first must be an integer >= 0"):
            plot.heatmap(np.full((10, 256), 1 / 256), first=bad)
    with pytest.raises(blekota.ConfigError, match="preemphasis must be a number in"):
        plot.heatmap(np.full((10, 256), 1 / 256), samples=np.zeros(10), preemphasis=2)


@pytest.fixture
def trained(tmp_path):
    """A tiny model trained for a few iterations on a tone file, and that file."""
    wav = blekota.save_wav(tmp_path / "tone.wav", tone(8000), FS)
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    trainer = blekota.Trainer(model, wav, seq_length=20, batch_size=4, name="tone",
                              checkpoint_every=0, directory=tmp_path, report_every=2)
    return trainer.train(4).path, wav


def test_plot_command_draws_each_kind(tmp_path, trained, capsys):
    model, wav = trained
    log = tmp_path / "tone.log.jsonl"
    log.write_text(json.dumps({"iteration": 5, "time": 1, "train_loss": 5.0, "val_loss": 5.2, "lr": 0.002}) + "\n")
    commands = [
        (["waveform", str(wav)], 1000, 350),
        (["spectrogram", str(wav), "--fs", "4000"], 1000, 450),
        (["heatmap", str(model), str(wav), "-n", "300", "--start", "100"], 1000, 500),
        (["heatmap", str(model), "-n", "200", "--seed", "1"], 1000, 500),
        (["loss", str(model)], 800, 450),
        (["loss", str(log)], 800, 450),
        (["compare", str(wav), str(wav)], 1200, 650),
    ]
    for number, (argv, width, height) in enumerate(commands):
        out = tmp_path / f"picture{number}.png"
        assert main(["plot", *argv, "-o", str(out), "--threads", "1"] if argv[0] == "heatmap"
                    else ["plot", *argv, "-o", str(out)]) == 0, argv
        assert f"wrote {out}" in capsys.readouterr().out
        assert_png(out, width, height)
    assert main(["plot", "waveform", str(wav)]) == 0  # no display, no -o: numbered file here
    assert capsys.readouterr().out.strip() == "wrote waveform.png"
    assert main(["plot", "waveform", str(wav), "-o", str(tmp_path / "picture0.png")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_a_file_name_that_is_not_utf8_is_drawn_escaped(tmp_path, trained, capsys, monkeypatch):
    model, wav = trained
    name = os.fsdecode(b"v\xe9")  # v\udce9: a byte that is no UTF-8, as Linux lets a name hold
    os.rename(wav, f"{name}.wav")
    log = f"{name}.log.jsonl"
    Path(log).write_text(json.dumps({"iteration": 5, "time": 1, "train_loss": 5.0, "val_loss": 5.2, "lr": 0.002}) + "\n")
    for argv in (["waveform", f"{name}.wav"], ["spectrogram", f"{name}.wav"], ["loss", log],
                 ["heatmap", str(model), f"{name}.wav", "-n", "50", "--threads", "1"]):
        assert main(["plot", *argv, "-o", f"{argv[0]}.png"]) == 0, capsys.readouterr().err
    drawn = []
    finish = plot._finish
    monkeypatch.setattr(plot, "_finish", lambda figure, *args: drawn.append(figure) or finish(figure, *args))
    plot.loss_curve(log, title=f"loss of {log}", out=tmp_path)
    assert drawn[0].axes[0].get_title() == "loss of v\\udce9.log.jsonl"


def test_plot_heatmap_keeps_only_the_probabilities_it_draws(tmp_path, monkeypatch):
    """plot heatmap --start S -n N while generating: the model makes S + N samples, but only the
    N drawn (and the one before, for a pre-emphasized dot) keep their probabilities."""
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1, preemphasis=0.85)
    path = model.save(tmp_path / "m.npz")
    drawn = {}
    monkeypatch.setattr(plot, "heatmap", lambda probs, fs, sound, **kwargs: drawn.update(probs=probs, sound=sound,
                                                                                          **kwargs))
    assert main(["plot", "heatmap", str(path), "--start", "20000", "-n", "50", "--seed", "3", "--threads", "1",
                 "-o", str(tmp_path / "h.png")]) == 0
    sound, probs = model.sample(20050, seed=3, return_probs=True)
    assert drawn["probs"].shape == (51, 256) and (drawn["first"], drawn["start"], drawn["length"]) == (19999, 1, 50)
    np.testing.assert_array_equal(drawn["probs"], probs[19999:])
    np.testing.assert_array_equal(drawn["sound"], sound[19999:])


@pytest.mark.parametrize("frame", [0, 20])
def test_plot_heatmap_of_a_sound_keeps_only_the_probabilities_it_draws(tmp_path, monkeypatch, frame):
    """plot heatmap SOUND --start S -n N: the model hears the S samples before, but only the N
    drawn (and up to a frame before) keep their probabilities, the same as when all are kept."""
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1, frame=frame, preemphasis=0.85)
    path = model.save(tmp_path / "m.npz")
    sound = tone(20100)
    wav = blekota.save_wav(tmp_path / "tone.wav", sound, FS)
    drawn = {}
    monkeypatch.setattr(plot, "heatmap", lambda probs, fs, sound, **kwargs: drawn.update(probs=probs, sound=sound,
                                                                                          **kwargs))
    assert main(["plot", "heatmap", str(path), str(wav), "--start", "20005", "-n", "50", "--threads", "1",
                 "-o", str(tmp_path / "h.png")]) == 0
    first = 20004 // (frame or 1) * (frame or 1)
    assert drawn["probs"].shape == (20055 - first, 256)
    assert (drawn["first"], drawn["start"], drawn["length"]) == (first, 20005 - first, 50)
    heard = blekota.load_audio(wav, FS)[0][:20055]
    levels = np.concatenate([[128], blekota.mulaw.quantize(blekota.emphasis.emphasize(heard, 0.85))[:-1]])
    np.testing.assert_allclose(drawn["probs"], model.probabilities(levels[:, None].astype(np.uint8))[first:, 0],
                               atol=1e-5)
    np.testing.assert_array_equal(drawn["sound"], heard[first:])


def test_sample_heatmap_and_info(tmp_path, trained, capsys):
    model, wav = trained
    heat = tmp_path / "heat.png"
    assert main(["sample", str(model), "-n", "500", "-o", str(tmp_path / "s.wav"), "--heatmap", str(heat),
                 "--hint", str(wav), "--threads", "1"]) == 0
    assert_png(heat, 1000, 500)
    assert main(["info", str(model)]) == 0
    assert "best" in capsys.readouterr().out


def test_a_name_that_promises_another_image_format_is_refused(tmp_path, trained, capsys):
    model, wav = trained
    for name in ("wave.jpg", "wave.JPEG", "wave.svg", "wave.pdf", "wave.tiff", "wave.webp"):
        assert main(["plot", "waveform", str(wav), "-o", str(tmp_path / name)]) == 2
        suffix = name.split(".")[1].lower()
        assert capsys.readouterr().err == (f"blekota: error: {tmp_path / name}: -o writes a PNG file, not {suffix}; "
                                           "give it a name ending in .png\n")
        assert not (tmp_path / name).exists()
    assert main(["sample", str(model), "-n", "50", "-o", str(tmp_path / "s.wav"), "--heatmap", str(tmp_path / "h.gif"),
                 "--threads", "1"]) == 2
    assert capsys.readouterr().err == (f"blekota: error: {tmp_path / 'h.gif'}: --heatmap writes a PNG file, not gif; "
                                       "give it a name ending in .png\n")
    assert not (tmp_path / "s.wav").exists() and not (tmp_path / "h.gif").exists()
    assert main(["plot", "waveform", str(wav), "-o", str(tmp_path / "wave.plot")]) == 0  # a name of no known format


def test_a_picture_is_not_written_over_a_sound_or_a_model(tmp_path, trained, capsys):
    model, wav = trained
    take = tmp_path / "take.wav"
    take.write_bytes(wav.read_bytes())
    kept = {path: path.read_bytes() for path in (take, model)}
    for target in (take, model):  # plot -o TAKE.wav --force wrote a PNG over the sound
        assert main(["plot", "waveform", str(wav), "-o", str(target), "--force"]) == 2
        assert capsys.readouterr().err == (f"blekota: error: {target}: -o writes a PNG file, not {target.suffix[1:]}; "
                                           "give it a name ending in .png\n")
    for name in ("take.flac", "voice.onnx", "old.pkl"):
        with pytest.raises(ValueError, match=rf"pictures are written as PNG, not {name.split('.')[1]}"):
            plot.show(tone(), FS, out=tmp_path / name)
        assert not (tmp_path / name).exists()
    assert all(path.read_bytes() == content for path, content in kept.items())


def test_plot_has_help(capsys):
    for argv in (["plot", "--help"], ["plot", "heatmap", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
