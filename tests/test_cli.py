"""The command line end to end, in a temporary directory."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

import blekota
from blekota import _gru
from blekota.cli import build_parser, main
from blekota.demo import demo_sound, note_changes
from blekota.mulaw import quantize, unquantize

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

@pytest.fixture
def sine_file(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 330 * t), 0.4 * np.sin(2 * np.pi * 331 * t)], axis=1)
    import soundfile

    path = tmp_path / "sine.wav"
    soundfile.write(str(path), stereo, 44100)  # 44.1 kHz stereo, like a real recording
    return path


SMALL = ["--layers", "1", "--hidden", "16", "--seq-length", "20", "--batch-size", "4", "--threads", "1"]


def test_train_help_gives_the_readmes_speeds(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("--seconds SECONDS stop after this many seconds of training and save, if --iterations are not done sooner "
            "(the default model does about 6-8 iterations a second on two cores with bfloat16 products, where they are "
            "faster: AMD Zen 4, Intel Xeons with AMX; and 2.4-4.0 in float32)") in text
    readme = " ".join(README.split())
    assert "trains at about 6 iterations a second on two cores" in readme
    assert "at about 8 a second on two cores of an Intel Xeon with AMX" in readme
    assert "3.7 iterations a second in float32" in readme and "4.0 in float32" in readme
    assert "at 2.4-2.8 in float32 on a 2-core Intel Xeon" in readme


def test_a_usage_error_is_printed_by_the_first_process_of_an_mpi_job_only(capsys, monkeypatch):
    printed = {}
    for rank in ("0", "1"):
        monkeypatch.setenv("PMI_RANK", rank)
        with pytest.raises(SystemExit) as stop:
            main(["train", "x.wav", "--hidden", "0"])
        assert stop.value.code == 2
        printed[rank] = capsys.readouterr().err
    assert "blekota: error: argument --hidden: expected a positive integer, got '0'" in printed["0"]
    assert printed["1"] == ""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["--version"]])
def test_help_and_version_are_printed_by_the_first_process_of_an_mpi_job_only(capsys, monkeypatch, argv):
    printed = {}
    for rank in ("0", "1"):
        monkeypatch.setenv("PMI_RANK", rank)
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 0
        printed[rank] = capsys.readouterr().out
    assert printed["0"].startswith(("usage:", "blekota ")) and printed["1"] == ""


@pytest.mark.parametrize("rank, printed", [("0", True), ("1", False)])
def test_commands_but_train_refuse_to_run_in_several_mpi_processes(tmp_path, capsys, monkeypatch, make_model,
                                                                   rank, printed):
    model = make_model(4, 1, "float32").save(tmp_path / "m.npz")
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", rank)
    assert main(["sample", str(model), "-n", "10", "-o", str(tmp_path / "x.wav")]) == 2
    expected = ("blekota: error: sample runs in one process; only train runs over MPI (PMI_SIZE=2 here): start it "
                "without mpiexec or srun\n")
    assert capsys.readouterr().err == (expected if printed else "")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.npz"]


def test_train_sample_info(tmp_path, sine_file, capsys):
    out = tmp_path / "models"
    status = main(["train", str(sine_file), *SMALL, "--iterations", "60", "--checkpoint-every", "50",
                   "--checkpoint-sound", "0.01", "--out-dir", str(out), "--seed", "1"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "iteration      50  loss" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "sine.log.jsonl", "sine_50.npz", "sine_50.wav", "sine_60.npz", "sine_best.npz"]

    wav = tmp_path / "gen.wav"
    assert main(["sample", str(out / "sine_60.npz"), "-n", "400", "-o", str(wav), "--seed", "3"]) == 0
    y, fs = blekota.load_audio(wav, 8000)
    assert y.size == 400 and fs == 8000
    assert main(["sample", str(out / "sine_60.npz"), "-n", "400", "-o", str(wav), "--seed", "3", "--force",
                 "--hint", str(sine_file)]) == 0
    hinted, _ = blekota.load_audio(wav, 8000)
    assert not np.array_equal(hinted, y)

    assert main(["info", str(out / "sine_60.npz")]) == 0
    printed = capsys.readouterr().out
    assert "1 GRU layer x 16 units" in printed and "60 iterations" in printed
    assert str(sine_file) in printed and "8000 Hz" in printed
    assert "adam lr 0.004, seq_length 20, batch_size 4, random gain 4 dB, input noise 0 levels" in printed


def test_info_counts_one_in_the_singular(tmp_path, sine_file, capsys):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "1", "--checkpoint-sound", "0",
                 "--out-dir", str(tmp_path), "-q"]) == 0
    assert main(["info", str(tmp_path / "sine_1.npz")]) == 0
    printed = capsys.readouterr().out
    assert "network:     1 GRU layer x 16 units," in printed and "trained:     1 iteration, 0 epochs\n" in printed
    assert printed.count("(nats/sample, 1 report)\n") == 2


def test_resume_continues_counting(tmp_path, sine_file, capsys):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "5", "--checkpoint-every", "0",
                 "--out-dir", str(tmp_path)]) == 0
    assert main(["train", "--resume", str(tmp_path / "sine_5.npz"), "--iterations", "3",
                 "--out-dir", str(tmp_path), "--threads", "1"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert blekota.load(tmp_path / "sine_8.npz").info["iterations"] == 8


def test_resuming_an_older_checkpoint_is_refused_where_the_run_went_on_unless_forced(tmp_path, sine_file, capsys):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "60", "--checkpoint-every", "20", "--val-every", "10",
                 "--checkpoint-sound", "0.01", "--out-dir", str(tmp_path), "--seed", "1", "-q"]) == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    resume = ["train", "--resume", str(tmp_path / "sine_20.npz"), "--iterations", "20", "--val-every", "10", "-q"]
    assert main(resume) == 2
    assert capsys.readouterr().err == (
        f"blekota: error: {tmp_path}: holds this run's files from after iteration 20 (sine_40.npz, sine_60.npz, "
        "sine_best.npz and 2 more), which resuming there would write over; resume the newest checkpoint (train "
        f"--resume {tmp_path / 'sine_60.npz'}), give --model-name to branch off under another name, or --force to go "
        "on from iteration 20 and write over them\n")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert main([*resume, "--model-name", "branch"]) == 0  # branches off: the run's own files stay as they were
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.name in before} == before
    assert (tmp_path / "branch_40.npz").exists() and (tmp_path / "branch_best.npz").exists()
    capsys.readouterr()
    assert main([*resume, "--force"]) == 0
    assert "warning" not in capsys.readouterr().err  # --force said to write over them
    assert blekota.load(tmp_path / "sine_best.npz").info["iterations"] <= 40
    assert (tmp_path / "sine_40.npz").read_bytes() != before["sine_40.npz"]
    logged = [record["iteration"] for record in blekota.trainlog.read_log(tmp_path / "sine.log.jsonl")]
    assert logged == sorted(logged) and logged[-1] == 40  # the lines after 20 of the run trained over are gone


def test_resuming_where_only_a_later_best_model_is_left_is_refused(tmp_path, sine_file, capsys):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "20", "--checkpoint-every", "10", "--val-every", "10",
                 "--checkpoint-sound", "0", "--out-dir", str(tmp_path), "-q"]) == 0
    (tmp_path / "sine_20.npz").unlink()
    assert main(["train", "--resume", str(tmp_path / "sine_10.npz"), "--iterations", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert "after iteration 10 (sine_best.npz), which" in err and "newest checkpoint" not in err


def test_a_second_run_over_an_earlier_runs_files_is_refused(tmp_path, sine_file, capsys):
    train = ["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0", "--out-dir", str(tmp_path), "-q"]
    assert main(train) == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert main(train) == 2
    err = capsys.readouterr().err
    assert err == (f"blekota: error: {tmp_path}: an earlier run of sine left sine.log.jsonl, sine_best.npz, sine_2.npz "
                   f"here; go on with it (train --resume {tmp_path / 'sine_2.npz'}), give another --model-name, or "
                   "--force to train over it\n")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert main(["train", "--resume", str(tmp_path / "sine_2.npz"), "--iterations", "1", "-q", "--threads", "1"]) == 0
    assert main([*train, "--model-name", "other"]) == 0
    assert main([*train, "--iterations", "1", "--force"]) == 0  # a new model, and a log of its own
    assert [row["iteration"] for row in blekota.trainlog.read_log(tmp_path / "sine.log.jsonl")] == [1]
    assert blekota.load(tmp_path / "sine_1.npz").info["iterations"] == 1


def test_a_run_started_over_with_force_is_told_from_the_earlier_runs_files_it_leaves(tmp_path, sine_file, capsys):
    train = ["train", str(sine_file), *SMALL, "--checkpoint-every", "20", "--val-every", "10", "--checkpoint-sound",
             "0.01", "--out-dir", str(tmp_path), "-q"]
    assert main([*train, "--iterations", "60", "--seed", "1"]) == 0
    assert main([*train, "--iterations", "20", "--seed", "2", "--force"]) == 0  # leaves the first run's sine_40, sine_60
    assert {"sine_40.npz", "sine_60.npz", "sine_60.wav"} <= {path.name for path in tmp_path.iterdir()}
    assert main([*train, "--iterations", "20"]) == 2
    assert f"go on with it (train --resume {tmp_path / 'sine_20.npz'})" in capsys.readouterr().err  # the new run's
    earlier = (tmp_path / "sine_60.npz").read_bytes()
    assert main(["train", "--resume", str(tmp_path / "sine_20.npz"), "--iterations", "20", "-q"]) == 0
    assert capsys.readouterr().err == ""  # the files after 20 are the run started over's, not this one's
    assert blekota.load(tmp_path / "sine_40.npz").info["history"][:1] == blekota.load(tmp_path / "sine_20.npz").info["history"][:1]
    assert (tmp_path / "sine_60.npz").read_bytes() == earlier


def test_train_seconds_stops_in_time_and_saves(tmp_path, sine_file, capsys):
    started = time.perf_counter()
    assert main(["train", str(sine_file), *SMALL, "--iterations", "10000000", "--seconds", "0.5",
                 "--checkpoint-every", "0", "--out-dir", str(tmp_path)]) == 0
    assert time.perf_counter() - started < 30
    done = blekota.load(next(tmp_path.glob("sine_[0-9]*.npz"))).info["iterations"]
    assert 0 < done < 10000000 and f"done at iteration {done}; saved" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", str(sine_file), "--seconds", "0"])
    assert "expected a positive number, got '0'" in capsys.readouterr().err


def test_the_end_of_a_run_validates_then_saves_once(tmp_path, sine_file, capsys):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "60", "--checkpoint-every", "30", "--val-every", "25",
                 "--checkpoint-sound", "0.01", "--out-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    end = lines[[n for n, line in enumerate(lines) if line.startswith("iteration      60")][0] + 1:]
    assert [line.split(":")[0].split(";")[0] for line in end] == [
        "validation at 60", f"wrote {tmp_path / 'sine_60.wav'}", "done at iteration 60"]
    assert f"saved {tmp_path / 'sine_60.npz'}" in end[-1] and f"wrote {tmp_path / 'sine_30.npz'}" in lines
    assert blekota.load(tmp_path / "sine_60.npz").info["val_history"][-1][0] == 60  # saved after the validation


def test_train_says_what_it_leaves_out_and_why_validation_reads_lower(tmp_path, sine_file, capsys):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "1", "--checkpoint-sound", "0", "--out-dir",
                 str(tmp_path)]) == 0
    first, second = capsys.readouterr().out.splitlines()[:2]
    # 8000 samples at 8 kHz, 400 held out: 7599 of the 7600 left can be predicted, by 379 windows of 20;
    # 4 streams take 94 each, predicting 7520: 3 windows (60 levels) left out, another 3 in each epoch,
    # and the 19 after the last window never
    assert ("in 4 streams (the streams take whole windows: 0.0075 s left out in each epoch, a different part in "
            "the next; 0.0024 s at the ends never)") in first
    assert second.startswith("random gain 4 dB: the training loss is taken on louder and softer copies")
    assert main(["train", str(sine_file), *SMALL[:-4], "--batch-size", "7", "--threads", "1", "--iterations", "1",
                 "--checkpoint-sound", "0", "--out-dir", str(tmp_path), "--model-name", "b", "--random-gain", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # 7 streams of 54 windows predict 7560: one window left out in each epoch, and the last 19 levels
    assert ("in 7 streams (the streams take whole windows: 0.0025 s left out in each epoch, a different part in "
            "the next; 0.0024 s at the ends never)") in lines[0]
    assert not lines[1].startswith("random gain")


def test_resume_keeps_or_replaces_the_random_gain(tmp_path, sine_file):
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0",
                 "--random-gain", "3", "--out-dir", str(tmp_path), "--quiet"]) == 0
    assert main(["train", "--resume", str(tmp_path / "sine_2.npz"), "--iterations", "1", "--quiet",
                 "--threads", "1", "--checkpoint-sound", "0"]) == 0
    assert blekota.load(tmp_path / "sine_3.npz").info["trainer"]["random_gain_db"] == 3.0
    assert main(["train", "--resume", str(tmp_path / "sine_3.npz"), "--iterations", "1", "--quiet",
                 "--threads", "1", "--checkpoint-sound", "0", "--random-gain", "0"]) == 0
    assert blekota.load(tmp_path / "sine_4.npz").info["trainer"]["random_gain_db"] == 0.0


@pytest.mark.parametrize("option,value,shown,bad,refusal", [
    ("--input-noise", "1.5", "input noise 1.5 levels", "300", "--input-noise: expected a number of levels in [0, 255]"),
    ("--random-speed", "0.06", "random speed 0.06", "0.7", "--random-speed: expected a number in [0, 0.5]"),
])
def test_augmentation_is_saved_shown_and_kept_or_replaced_on_resume(tmp_path, sine_file, capsys, option, value,
                                                                    shown, bad, refusal):
    key = option[2:].replace("-", "_")
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0",
                 option, value, "--out-dir", str(tmp_path), "--quiet"]) == 0
    assert blekota.load(tmp_path / "sine_2.npz").info["trainer"][key] == float(value)
    assert main(["info", str(tmp_path / "sine_2.npz")]) == 0
    assert shown in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "sine_2.npz"), "--iterations", "1", "--quiet",
                 "--threads", "1", "--checkpoint-sound", "0"]) == 0
    assert blekota.load(tmp_path / "sine_3.npz").info["trainer"][key] == float(value)
    assert main(["train", "--resume", str(tmp_path / "sine_3.npz"), "--iterations", "1", "--quiet",
                 "--threads", "1", "--checkpoint-sound", "0", option, "0"]) == 0
    assert blekota.load(tmp_path / "sine_4.npz").info["trainer"][key] == 0.0
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(sine_file), option, bad])
    assert exit_info.value.code == 2
    assert refusal in capsys.readouterr().err


def test_sample_refuses_to_overwrite(tmp_path, capsys):
    model = blekota.Model(hidden=8, layers=1).save(tmp_path / "m.npz")
    existing = tmp_path / "keep.wav"
    existing.write_bytes(b"precious")
    assert main(["sample", str(model), "-n", "10", "-o", str(existing)]) == 2
    assert "keep.wav: already exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"precious"


@pytest.mark.parametrize("argv,link,target", [
    (["export", "{model}", "-o"], "out.onnx", "other.npz"),
    (["sample", "{model}", "-n", "10", "-o"], "out.wav", "other.npz"),
    (["sample", "{model}", "-n", "10", "-o"], "out.flac", "other.npz"),
    (["sample", "{model}", "-n", "10", "-o"], "out.wav", "song.flac"),
    (["sample", "{model}", "-n", "10", "-o"], "out.flac", "song.wav"),
    (["plot", "heatmap", "{model}", "-n", "10", "-o"], "out.png", "other.npz"),
])
def test_a_link_to_another_kind_of_file_is_refused_even_with_force(tmp_path, capsys, argv, link, target):
    model = blekota.Model(hidden=8, layers=1).save(tmp_path / "m.npz")
    (tmp_path / target).write_bytes(b"precious")
    (tmp_path / link).symlink_to(tmp_path / target)
    assert main([part.format(model=model) for part in argv] + [str(tmp_path / link), "--force"]) == 2
    error = capsys.readouterr().err
    assert f"{link} (a link to {tmp_path / target}): " in error and f"not {target.split('.')[1]}" in error
    assert (tmp_path / target).read_bytes() == b"precious"


def test_a_model_file_or_picture_is_not_saved_through_a_link_to_a_sound(tmp_path):
    (tmp_path / "song.wav").write_bytes(b"precious")
    for name in ("m.npz", "m.png"):
        (tmp_path / name).symlink_to(tmp_path / "song.wav")
    with pytest.raises(blekota.ConfigError, match="m.npz \\(a link to .*song.wav\\): a model file is written here, not wav"):
        blekota.Model(hidden=8, layers=1).save(tmp_path / "m.npz")
    with pytest.raises(blekota.ConfigError, match="m.png \\(a link to .*song.wav\\): pictures are written as PNG, not wav"):
        blekota.plot.show(np.zeros(100), 8000, out=tmp_path / "m.png")
    assert (tmp_path / "song.wav").read_bytes() == b"precious"


@pytest.mark.parametrize("argv,argument", [
    (["sample", ""], "MODEL"), (["info", ""], "MODEL"), (["train", ""], "FILE"), (["judge", "", "x.wav"], "SOURCE"),
    (["sample", "{model}", "-o", ""], "-o/--output"), (["sample", "{model}", "--hint", ""], "--hint"),
    (["sample", "{model}", "--heatmap", ""], "--heatmap"), (["export", "{model}", "-o", ""], "-o/--output"),
    (["train", "{sound}", "--resume", ""], "--resume"), (["train", "{sound}", "--tensorboard", ""], "--tensorboard"),
    (["train", "{sound}", "--out-dir", ""], "--out-dir"), (["play", "{model}", "--record", ""], "--record"),
    (["plot", "loss", "{model}", "-o", ""], "-o/--output"), (["demo", "--out-dir", ""], "--out-dir"),
])
def test_an_empty_name_is_refused_not_taken_for_none_or_the_current_folder(tmp_path, sine_file, capsys, monkeypatch,
                                                                            argv, argument):
    model = blekota.Model(hidden=8, layers=1).save(tmp_path / "m.npz")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([part.format(model=model, sound=sine_file) for part in argv])
    assert exit_info.value.code == 2
    assert f"argument {argument}: expected a f" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["m.npz", sine_file.name])


@pytest.mark.parametrize("command", [["sample", "{model}", "-n", "10"], ["export", "{model}"],
                                     ["plot", "heatmap", "{model}", "-n", "10"]])
def test_nothing_is_written_to_standard_output_that_is_a_terminal_unless_forced(tmp_path, capsys, monkeypatch, command):
    model = blekota.Model(hidden=8, layers=1).save(tmp_path / "m.npz")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main([part.format(model=model) for part in command] + ["-o", "-"]) == 2
    assert capsys.readouterr().err == ("blekota: error: -: standard output is a terminal, where the file's bytes would "
                                       "show as garbage; send it to a program (... -o - | aplay) or a file (> take.wav), "
                                       "or use --force\n")


def test_sample_without_a_seed_says_the_one_it_drew_which_draws_the_sound_again(tmp_path, capsys):
    model = blekota.Model(hidden=8, layers=1, seed=2).save(tmp_path / "m.npz")
    assert main(["sample", str(model), "-n", "300", "--threads", "1", "-o", str(tmp_path / "a.wav")]) == 0
    seed = re.search(r"generated with --seed (\d+), in ", capsys.readouterr().out)[1]
    assert main(["sample", str(model), "-n", "300", "--threads", "1", "-o", str(tmp_path / "b.wav"), "--seed", seed]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_sample_writes_the_sound_format_its_name_says(tmp_path, capsys):
    model = blekota.Model(hidden=8, layers=1).save(tmp_path / "m.npz")
    run = ["sample", str(model), "-n", "3000", "--seed", "5", "--threads", "1", "-o"]
    assert main([*run, str(tmp_path / "take.wav")]) == 0
    made = soundfile.read(tmp_path / "take.wav", dtype="int16")[0]
    for name, format_name in [("take.flac", "FLAC"), ("take.OGG", "OGG"), ("take.mp3", "MP3"), ("take.opus", "OGG"),
                              ("take.aiff", "AIFF")]:
        assert main([*run, str(tmp_path / name)]) == 0
        info = soundfile.info(tmp_path / name)
        assert (info.format, info.samplerate, info.channels) == (format_name, 8000, 1), name
        if format_name in ("FLAC", "AIFF"):  # the same 16-bit samples as the wav
            np.testing.assert_array_equal(soundfile.read(tmp_path / name, dtype="int16")[0], made)
    for name in ("new.m4a", "new.wma", "new.npz"):
        assert main([*run, str(tmp_path / name)]) == 2
        assert capsys.readouterr().err.startswith(f"blekota: error: {tmp_path / name}: blekota writes sounds as .wav, "
                                                  f".flac, .ogg, .oga, .opus, .mp3,")
        assert not (tmp_path / name).exists()
    assert main([*run, str(tmp_path / "take.flac")]) == 2  # kept without --force
    assert "take.flac: already exists (use --force to overwrite)" in capsys.readouterr().err
    blekota.Model(hidden=8, layers=1, fs=11025).save(tmp_path / "m11.npz")
    assert main(["sample", str(tmp_path / "m11.npz"), "-n", "10", "-o", str(tmp_path / "new.opus")]) == 2
    assert capsys.readouterr().err == (f"blekota: error: {tmp_path / 'new.opus'}: Opus takes 8000, 12000, 16000, 24000, "
                                       "48000 Hz, not 11025; write .ogg or .flac\n")
    assert main(["sample", str(model), "-n", "20", "--takes", "2", "-o", str(tmp_path / "t.flac")]) == 0
    assert [soundfile.info(tmp_path / f"t_{take}.flac").frames for take in (1, 2)] == [20, 20]
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix not in (".npz",)) == [
        "t_1.flac", "t_2.flac", "take.OGG", "take.aiff", "take.flac", "take.mp3", "take.opus", "take.wav"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "missing.wav"], "missing.wav: no such file"),
        (["sample", "missing.npz"], "missing.npz: no such file"),
        (["info", "missing.npz"], "missing.npz: no such file"),
        (["train", "--resume", "missing.npz"], "missing.npz: no such file"),
    ],
)
def test_errors_are_one_line_with_status_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_version_and_help_texts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    level = _gru.cpu_level()
    if _gru.bf16_by_default():
        extra = ", bfloat16 products in training" + " on AMX tiles" * _gru.amx_products()
    else:
        extra = ", bfloat16 products with --bf16" * _gru.bf16_products()
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"blekota {blekota.__version__} ({level} kernels{extra})\n"

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in dict.fromkeys(action.choices.values()):
                    yield from parsers(child)

    for parser in parsers(build_parser()):
        assert parser.description and parser.description[0].isupper(), parser.prog
        for action in parser._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog} {action.metavar}"


def test_bad_numbers_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "x.wav", "--hidden", "-3"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_not_audio_is_one_line(tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a sound")
    assert main(["train", str(junk), *SMALL, "--iterations", "1"]) == 2
    assert "notes.txt: not a sound file" in capsys.readouterr().err


def test_every_subcommand_has_help():
    for command in ("train", "sample", "info", "demo"):
        result = subprocess.run([sys.executable, "-m", "blekota", command, "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout
    train_help = subprocess.run([sys.executable, "-m", "blekota", "train", "--help"],
                                capture_output=True, text=True).stdout
    assert "--seq-length" in train_help and "truncated BPTT" in train_help


def installed_command() -> list[str]:
    """How the `blekota` command pyproject.toml installs starts: its entry point, called as pip's
    script calls it."""
    entry = re.search(r'^blekota = "([\w.]+):(\w+)"$', (Path(__file__).parents[1] / "pyproject.toml").read_text(), re.M)
    return [sys.executable, "-c", f"import sys; from {entry[1]} import {entry[2]}; sys.exit({entry[2]}())"]


@pytest.mark.parametrize("command", [[sys.executable, "-m", "blekota"], installed_command()])
def test_a_blekota_cpu_the_kernels_lack_is_one_line_not_a_traceback(command):
    result = subprocess.run([*command, "--version"], capture_output=True, text=True,
                            env={**os.environ, "BLEKOTA_CPU": "avx3"})
    assert result.returncode == 2
    assert result.stderr == ("blekota: error: BLEKOTA_CPU=avx3: CPU level must be one of ('portable', 'avx2', "
                             "'avx512'), got 'avx3'\n")
    other_process = subprocess.run([sys.executable, "-m", "blekota", "--version"], capture_output=True, text=True,
                                   env={**os.environ, "BLEKOTA_CPU": "avx3", "PMI_RANK": "1"})
    assert (other_process.returncode, other_process.stderr) == (2, "")  # in an MPI job, rank 0 alone says it


def test_note_changes_counts_notes_and_pauses():
    fs = 8000
    sound = demo_sound(fs)
    assert note_changes(sound, fs) == 19  # 10 notes, each followed by a pause
    assert note_changes(sound[: int(1.7 * fs)], fs) == 3  # note, pause, note, pause; 0.1 s of a third note is too short
    assert note_changes(np.zeros(fs), fs) == note_changes(0.5 * np.ones(fs), fs) == 0
    assert note_changes(sound[:100], fs) == 0
    clicks = sound[: int(0.8 * fs)].copy()
    clicks[int(0.65 * fs)] = 0.9  # a click in the pause is too short to be a note
    assert note_changes(clicks, fs) == 1


def test_demo_sound_fades_through_every_note_and_dies_away_in_its_pause():
    fs = 8000
    notes = demo_sound(fs)[: 8 * 6400].reshape(8, 16, 400)  # its 8 notes of 0.8 s in 50 ms frames
    rms = np.sqrt(np.mean(notes.astype(np.float64) ** 2, axis=2))
    assert (np.diff(rms[:, 1:], axis=1) < 0).all()  # after the attack, each frame softer than the last
    assert (rms[:, -1] < 0.01 * rms.max(axis=1)).all()  # more than 40 dB down before the next note


def test_demo_runs_briefly(tmp_path, capsys):
    assert main(["demo", "--iterations", "20", "--out-dir", str(tmp_path / "d"), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "for 20 iterations" in printed and "after 20 iterations" in printed
    assert "about a minute" not in printed  # the default 5000 iterations take that, not 20
    assert "the made-up part (temperature 1, top-k 12, smooth 0.3, wake 0.2 s, seed 0): spectral flatness of loud frames" in printed
    assert "changes between notes and pauses (the training sound goes on with 8)" in printed
    names = {p.name for p in (tmp_path / "d").iterdir()}
    assert {"demo_sound.wav", "demo_generated.wav", "demo_compare.png"} <= names
    quick_start = README[README.index("## Quick start"):README.index("With your own sound")]
    written = {re.sub(r"_[0-9]+\.", "_N.", name) for name in names}  # demo_20.npz is the README's demo_N.npz
    assert [name for name in sorted(written) if f"`{name}`" not in quick_start] == []  # each file it writes is told
    generated, _ = blekota.load_audio(tmp_path / "d" / "demo_generated.wav", 8000)
    hint = blekota.demo_sound(8000)[:4960]
    assert generated.size == 32000 and np.abs(generated[4960:]).max() > 0.01
    np.testing.assert_allclose(generated[:4960], unquantize(quantize(hint)), atol=1e-4)
    model = blekota.load(next((tmp_path / "d").glob("demo_[0-9]*.npz")))
    trainer = model.info["trainer"]
    assert (model.layers, model.hidden) == (2, 128)
    assert (trainer["optimizer"], trainer["lr"], trainer["seq_length"], trainer["batch_size"]) == ("adam", 4e-3, 200, 8)
    assert trainer["schedule"]["name"] == "constant"
    assert (trainer["random_gain_db"], trainer["input_noise"]) == (0.0, 1.5)


def test_a_demo_that_falls_silent_says_so_not_nan(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(blekota.Model, "sample", lambda self, n, **options: np.zeros(n, np.float32))
    assert main(["demo", "--iterations", "2", "--out-dir", str(tmp_path / "d"), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "spectral flatness of loud frames - (none loud) (training sound" in printed and "nan" not in printed


def test_a_demo_stopped_by_ctrl_c_keeps_its_model_and_draws_nothing(tmp_path):
    from blekota.demo import run_demo

    def stop_at_the_first_report(progress):
        if progress.kind not in ("done", "interrupted"):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C

    said = []
    run_demo(tmp_path, 10_000, 1, said.append, callback=stop_at_the_first_report)
    stopped = re.fullmatch(r"interrupted after (\d+) iterations: wrote (.*) \(the model\); nothing generated", said[-1])
    assert stopped and 0 < int(stopped[1]) < 10_000 and Path(stopped[2]).name == f"demo_{stopped[1]}.npz"
    assert {p.name for p in tmp_path.iterdir() if p.suffix != ".jsonl"} == {"demo_sound.wav", Path(stopped[2]).name}


def test_sample_n_counts_the_samples_generated_after_the_hint(tmp_path, capsys, monkeypatch):
    model = blekota.Model(hidden=8, layers=1, seed=3, threads=1).save(tmp_path / "m.npz")
    hint = blekota.save_wav(tmp_path / "hint.wav", 0.5 * np.sin(np.arange(3000) / 5), 8000)
    titles = []
    monkeypatch.setattr("blekota.cli.sample.plot.heatmap", lambda *args, title, **kwargs: titles.append(title))
    out = tmp_path / "cont.wav"
    assert main(["sample", str(model), "--hint", str(hint), "-n", "500", "-o", str(out), "--heatmap",
                 str(tmp_path / "h.png"), "--seed", "1"]) == 0
    assert blekota.load_audio(out, 8000)[0].size == 3500
    assert capsys.readouterr().out.startswith("wrote " + str(out) + ": the hint (0.38 s), then 500 samples (0.06 s) "
                                              "generated with --seed 1, in ")
    assert titles[-1] == "cont.wav: hearing the hint until 0.375 s, then drawing (temperature 1, smooth 0.3, wake 0.2 s)"
    assert main(["sample", str(model), "--hint", str(hint), "-n", "0", "-o", str(out), "--force", "--heatmap",
                 str(tmp_path / "h.png"), "--force"]) == 0
    assert blekota.load_audio(out, 8000)[0].size == 3000
    assert "wrote " + str(out) + ": the hint (0.38 s), then nothing generated (-n 0), in " in capsys.readouterr().out
    assert titles[-1] == "cont.wav: the model hearing the hint (nothing drawn)"
    assert main(["sample", str(model), "-n", "500", "-o", str(out), "--force", "--heatmap", str(tmp_path / "h.png"),
                 "--force", "--top-k", "3"]) == 0
    assert titles[-1] == "cont.wav: probability of each level (temperature 1, top-k 3, smooth 0.3, wake 0.2 s)"
    assert main(["sample", str(model), "-n", "0", "-o", str(tmp_path / "empty.wav"), "--heatmap",
                 str(tmp_path / "h0.png")]) == 2
    assert "--heatmap: -n 0 without --hint makes no sound to draw" in capsys.readouterr().err
    assert not (tmp_path / "empty.wav").exists() and not (tmp_path / "h0.png").exists()
    help_text = subprocess.run([sys.executable, "-m", "blekota", "sample", "--help"], capture_output=True, text=True).stdout
    assert "samples to generate, after the hint" in " ".join(help_text.split())


def test_sample_seconds_are_counted_at_the_models_rate(tmp_path, capsys):
    model = blekota.Model(hidden=8, layers=1, seed=3, threads=1, fs=16000).save(tmp_path / "m.npz")
    out = tmp_path / "s.wav"
    assert main(["sample", str(model), "--seconds", "0.25", "-o", str(out), "--seed", "2"]) == 0
    assert blekota.load_audio(out, 16000)[0].size == 4000
    assert "4000 samples (0.25 s) generated" in capsys.readouterr().out
    assert main(["sample", str(model), "-o", str(out), "--force"]) == 0
    assert blekota.load_audio(out, 16000)[0].size == 8000  # the default stays 8000 samples
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(model), "--seconds", "1", "-n", "10", "-o", str(out), "--force"])
    assert exit_info.value.code == 2
    assert "argument -n: not allowed with argument --seconds" in capsys.readouterr().err


def test_sample_streams_long_sounds_in_chunks(tmp_path, capsys):
    model = blekota.Model(hidden=8, layers=2, seed=3, threads=1)
    path = model.save(tmp_path / "m.npz")
    wav = tmp_path / "long.wav"
    assert main(["sample", str(path), "-n", "20001", "-o", str(wav), "--seed", "9", "--threads", "1"]) == 0
    written, fs = blekota.load_audio(wav, 8000)
    expected = model.sample(20001, seed=9)
    assert written.size == 20001
    np.testing.assert_allclose(written, expected, atol=1 / 32767)  # 16-bit PCM of the same sound
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_sample_play_without_sound_output_still_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    path = blekota.Model(hidden=8, layers=1, seed=3).save(tmp_path / "m.npz")
    wav = tmp_path / "played.wav"
    assert main(["sample", str(path), "-n", "100", "-o", str(wav), "--play", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "cannot play sound: sounddevice is not installed (pip install \"blekota[play]\", or in a clone" in err
    assert err.count("\n") == 1
    assert blekota.load_audio(wav, 8000)[0].size == 100


def test_a_model_name_with_a_folder(tmp_path, sine_file, monkeypatch):
    """The original README: --model-name foo/bar saves foo/bar_N."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--model-name", "foo/bar", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "foo").iterdir()) == ["bar.log.jsonl", "bar_2.npz", "bar_best.npz"]
    assert main(["train", str(sine_file), *SMALL, "--iterations", "1", "--model-name", "foo/bar", "--out-dir", "runs", "-q"]) == 0
    assert (tmp_path / "runs" / "foo" / "bar_1.npz").exists()
    trainer = blekota.Trainer(blekota.Model(hidden=4, layers=1), str(sine_file), seq_length=10, batch_size=2,
                              name="a/b/c", directory=tmp_path / "lib", checkpoint_every=0)
    assert trainer.checkpoint_path() == tmp_path / "lib" / "a" / "b" / "c_0.npz"
    assert trainer.train(1).path == tmp_path / "lib" / "a" / "b" / "c_1.npz"
    assert blekota.load(tmp_path / "lib" / "a" / "b" / "c_1.npz").info["trainer"]["name"] == "c"


def test_resume_writes_beside_the_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("voice.wav", 0.5 * np.sin(np.arange(8000) * 0.3), 8000)
    assert main(["train", "voice.wav", *SMALL, "--iterations", "2", "--out-dir", "dir", "-q"]) == 0
    assert main(["train", "--resume", "dir/voice_2.npz", "--iterations", "1", "--threads", "1", "-q"]) == 0
    assert (tmp_path / "dir" / "voice_3.npz").exists() and not (tmp_path / "voice_3.npz").exists()
    assert main(["train", "--resume", "dir/voice_3.npz", "--iterations", "1", "--threads", "1", "-q", "--out-dir", "."]) == 0
    assert (tmp_path / "voice_4.npz").exists()
    # from elsewhere: the sound, recorded relative to where training ran, is found beside the model
    (tmp_path / "dir" / "voice.wav").write_bytes((tmp_path / "voice.wav").read_bytes())
    monkeypatch.chdir(tmp_path / "dir")
    assert main(["train", "--resume", "voice_3.npz", "--iterations", "1", "--threads", "1", "-q", "--model-name", "v"]) == 0
    assert blekota.load("v_4.npz").info["training_files"] == ["voice.wav"]
    (tmp_path / "dir" / "voice.wav").unlink()
    monkeypatch.chdir(tmp_path / "dir" / "..")
    (tmp_path / "voice.wav").rename(tmp_path / "moved.wav")
    assert main(["train", "--resume", "dir/voice_3.npz", "--iterations", "1"]) == 2
    assert ("dir/voice_3.npz: was trained on voice.wav, which is not here (nor beside the model); give the sound: "
            "python -m blekota train --resume dir/voice_3.npz SOUND") in capsys.readouterr().err


def test_resume_opens_an_original_pickle(tmp_path, sine_file, capsys):
    from legacy_pickles import GRU, write_pickle

    pkl = write_pickle(tmp_path / "old.pkl", GRU(h_n=4, layer_n=1, seq_length=10, batches=2, name="foo/old", iterations=7))
    assert main(["train", "--resume", str(pkl), str(sine_file), "--iterations", "1", "--threads", "1", "--checkpoint-sound", "0"]) == 0
    out = capsys.readouterr().out
    assert f"converted {pkl} (a model of the original blekota; nothing in it was run) to {tmp_path / 'old.npz'}" in out
    assert blekota.load(tmp_path / "old_8.npz").info["iterations"] == 8  # the original's name, beside it


@pytest.mark.parametrize(
    "flags, expected",
    [
        ([], ("adam", 4e-3, "plateau", 4.0)),
        (["--preset", "original"], ("rmsprop", 2e-3, "constant", 0.0)),
        (["--preset", "original", "--alpha", "0.001", "--schedule", "step"], ("rmsprop", 1e-3, "step", 0.0)),
        (["--preset", "original", "--random-gain", "2.5"], ("rmsprop", 2e-3, "constant", 2.5)),
        (["--optimizer", "adagrad", "--val-fraction", "0"], ("adagrad", 4e-3, "constant", 4.0)),
        (["--random-gain", "0"], ("adam", 4e-3, "plateau", 0.0)),
    ],
)
def test_presets_and_the_flags_that_replace_their_parts(tmp_path, sine_file, flags, expected):
    out = tmp_path / "m"
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0",
                 "--out-dir", str(out), "--quiet", *flags]) == 0
    saved = blekota.load(out / "sine_2.npz").info["trainer"]
    assert (saved["optimizer"], saved["lr"], saved["schedule"]["name"], saved["random_gain_db"]) == expected


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr-every", "5"], "--lr-every applies to --schedule step, and this run's is plateau"),
        (["--schedule", "step", "--patience", "2"], "--patience applies to --schedule plateau, and this run's is step"),
        (["--preset", "original", "--lr-factor", "0.1"],
         "--lr-factor applies to --schedule step or plateau, and this run's is constant"),
    ],
)
def test_schedule_options_for_another_schedule_are_refused(tmp_path, sine_file, capsys, flags, message):
    out = tmp_path / "m"
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--out-dir", str(out), *flags]) == 2
    assert capsys.readouterr().err == f"blekota: error: {message}\n"
    assert not out.exists()


def test_schedule_options_on_resuming_come_with_the_schedule(tmp_path, sine_file, capsys):
    out = tmp_path / "m"
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0",
                 "--out-dir", str(out), "--quiet"]) == 0
    resume = ["train", "--resume", str(out / "sine_2.npz"), str(sine_file), "--iterations", "1", "--quiet"]
    assert main([*resume, "--patience", "3"]) == 2
    assert "--patience: a resumed run keeps its schedule as it was; give --schedule with them" in capsys.readouterr().err
    assert main([*resume, "--patience", "3", "--schedule", "plateau"]) == 0
    assert blekota.load(out / "sine_3.npz").info["trainer"]["schedule"]["patience"] == 3


def test_a_preset_on_resuming_takes_the_schedule_of_the_runs_validation(tmp_path, sine_file):
    """The default preset's schedule is plateau when the run validates, else constant: the resumed
    run's validation, not --val-fraction's default."""
    out = tmp_path / "m"
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0",
                 "--out-dir", str(out), "--quiet", "--val-fraction", "0"]) == 0
    resume = ["train", "--resume", str(out / "sine_2.npz"), "--iterations", "1", "--quiet", "--preset", "default"]
    assert main(resume) == 0
    assert blekota.load(out / "sine_3.npz").info["trainer"]["schedule"]["name"] == "constant"
    assert main([*resume[:2], str(out / "sine_3.npz"), *resume[3:], "--val-fraction", "0.1"]) == 0
    assert blekota.load(out / "sine_4.npz").info["trainer"]["schedule"]["name"] == "plateau"


def test_val_every_without_validation_is_refused(tmp_path, sine_file, capsys):
    out = tmp_path / "m"
    new = ["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0", "--out-dir", str(out),
           "--quiet", "--val-fraction", "0"]
    assert main([*new, "--val-every", "1"]) == 2
    assert capsys.readouterr().err == ("blekota: error: --val-every: this run holds nothing out to validate on "
                                       "(--val-fraction 0); give --val-fraction above 0 with it\n")
    assert not out.exists()
    assert main(new) == 0
    resume = ["train", "--resume", str(out / "sine_2.npz"), "--iterations", "1", "--quiet", "--val-every", "1"]
    assert main(resume) == 2
    assert "--val-every: this run holds nothing out" in capsys.readouterr().err
    assert main([*resume, "--val-fraction", "0.1"]) == 0
    assert blekota.load(out / "sine_3.npz").info["trainer"]["val_every"] == 1


def test_ctrl_c_before_training_leaves_no_empty_folder(tmp_path, sine_file, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl+C while the sounds are read

    monkeypatch.setattr("blekota.train.Dataset.load", interrupted)
    out = tmp_path / "new" / "run"
    assert main(["train", str(sine_file), *SMALL, "--out-dir", str(out), "--model-name", "a/b"]) == 130
    assert capsys.readouterr().err == "blekota: interrupted\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sine.wav"]


def test_seed_on_resuming_is_refused(tmp_path, sine_file, capsys):
    out = tmp_path / "m"
    assert main(["train", str(sine_file), *SMALL, "--iterations", "2", "--checkpoint-sound", "0",
                 "--out-dir", str(out), "--quiet"]) == 0
    assert main(["train", "--resume", str(out / "sine_2.npz"), "--iterations", "1", "--seed", "3", "--quiet"]) == 2
    assert capsys.readouterr().err == ("blekota: error: --seed 3: it seeds a new model's weights; a resumed model goes "
                                       "on with its own weights and random state (leave --seed out)\n")
    assert sorted(path.name for path in out.iterdir()) == ["sine.log.jsonl", "sine_2.npz", "sine_best.npz"]


def test_sample_and_heatmap_take_the_truncation(tmp_path, capsys, make_model):
    model = make_model(16, 2, "float32", scale=0.4)
    model.threads = 1
    path = model.save(tmp_path / "m.npz")
    wav = tmp_path / "cut.wav"
    assert main(["sample", str(path), "-n", "500", "-o", str(wav), "--seed", "4", "--threads", "1",
                 "--top-k", "30", "--top-p", "0.9", "--min-p", "0.02"]) == 0
    written, _ = blekota.load_audio(wav, 8000)
    expected = model.sample(500, seed=4, top_k=30, top_p=0.9, min_p=0.02)
    np.testing.assert_allclose(written, expected, atol=1 / 32767)
    assert np.abs(expected - model.sample(500, seed=4)).max() > 0.1
    heat = tmp_path / "heat.png"
    assert main(["plot", "heatmap", str(path), "-n", "100", "--seed", "1", "--top-p", "0.5",
                 "--temperature", "0.8", "-o", str(heat), "--threads", "1"]) == 0
    assert heat.stat().st_size > 0


def test_sample_takes_the_smoothing(tmp_path, make_model):
    model = make_model(16, 2, "float32", scale=0.4)
    model.threads = 1
    path = model.save(tmp_path / "m.npz")
    for smooth in ("0", "0.8"):
        wav = tmp_path / f"s{smooth}.wav"
        assert main(["sample", str(path), "-n", "400", "-o", str(wav), "--seed", "4", "--threads", "1",
                     "--smooth", smooth]) == 0
        written, _ = blekota.load_audio(wav, 8000)
        np.testing.assert_allclose(written, model.sample(400, seed=4, smooth=float(smooth)), atol=1 / 32767)
    assert main(["sample", str(path), "-n", "400", "-o", str(tmp_path / "d.wav"), "--seed", "4", "--threads", "1"]) == 0
    np.testing.assert_allclose(blekota.load_audio(tmp_path / "d.wav", 8000)[0], model.sample(400, seed=4, smooth=0.3),
                               atol=1 / 32767)


def test_sample_heatmap_with_many_takes_holds_no_more_probabilities_than_one_take(tmp_path, monkeypatch, make_model):
    """--heatmap draws the first take's 400 samples: the probabilities of K takes, kept chunk by
    chunk while they are made, stay near what one take's chunk holds, not K times that."""
    model = make_model(8, 1, "float32")
    model.threads = 1
    path = model.save(tmp_path / "m.npz")
    generate, held = blekota.Model.generate, []

    def watched(self, *args, **kwargs):
        for chunk in generate(self, *args, **kwargs):
            held.append(chunk[1].nbytes if isinstance(chunk, tuple) else 0)
            yield chunk

    monkeypatch.setattr(blekota.Model, "generate", watched)
    argv = ["sample", str(path), "-n", "8000", "--seed", "2", "--threads", "1", "--takes", "16"]
    assert main([*argv, "-o", str(tmp_path / "take.wav"), "--heatmap", str(tmp_path / "h.png")]) == 0
    assert 0 < max(held) <= 8000 * 256 * 4
    assert main([*argv, "-o", str(tmp_path / "plain.wav")]) == 0
    for take in (1, 16):
        assert (tmp_path / f"take_{take}.wav").read_bytes() == (tmp_path / f"plain_{take}.wav").read_bytes()


def test_sample_takes_writes_one_file_per_stream(tmp_path, capsys, make_model, rng):
    """--takes K: the K streams of one Model.sample call, each in its own numbered file, from the
    same hint; a heatmap of the first take."""
    model = make_model(16, 2, "float32", scale=0.4)
    model.threads = 1
    path = model.save(tmp_path / "m.npz")
    hint = rng.uniform(-0.5, 0.5, 300)
    blekota.audio.save_wav(tmp_path / "hint.wav", hint, 8000)
    hint, _ = blekota.load_audio(tmp_path / "hint.wav", 8000)
    assert main(["sample", str(path), "-n", "400", "-o", str(tmp_path / "take.wav"), "--seed", "4", "--threads", "1",
                 "--takes", "3", "--hint", str(tmp_path / "hint.wav"), "--heatmap", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr().out
    assert "take_1.wav .. " in out and "3 takes of 400 samples" in out and (tmp_path / "h.png").stat().st_size > 0
    expected = model.sample(700, hint=hint, seed=4, streams=3)  # the hint, then the 400 drawn
    for take in range(3):
        written, _ = blekota.load_audio(tmp_path / f"take_{take + 1}.wav", 8000)
        np.testing.assert_allclose(written, expected[take], atol=1 / 32767)
    assert np.abs(expected[0, 300:] - expected[1, 300:]).max() > 0.1
    assert not (tmp_path / "take.wav").exists()
    (tmp_path / "other_2.wav").write_bytes(b"precious")
    for argv, message in [
        (["-o", str(tmp_path / "other.wav"), "--takes", "2"], "other_2.wav: already exists"),
        (["-o", "-", "--takes", "2"], "--takes writes one file per take"),
        (["-o", str(tmp_path / "p.wav"), "--takes", "2", "--play"], "--play plays one sound"),
        (["-o", str(tmp_path / "p.wav"), "--takes", "257"], "--takes: at most 256"),
    ]:
        assert main(["sample", str(path), "-n", "10", *argv]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "other_2.wav").read_bytes() == b"precious"
    assert not (tmp_path / "other_1.wav").exists() and not list(tmp_path.glob("p*.wav"))


def test_sample_help_gives_the_direction_of_each_truncation(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--top-k K draw only from the K likeliest levels; lower: safer, less varied (default 0: all 256)" in text
    assert "sum to P; lower: safer, less varied (default 1: all)" in text
    assert "--min-p M drop levels less likely than M times the likeliest one; higher: safer, less varied" in text


@pytest.mark.parametrize(
    "flag,value,expected",
    [
        ("--top-k", "-1", "an integer >= 0"),
        ("--top-k", "many", "an integer >= 0"),
        ("--top-p", "0", "a number in (0, 1]"),
        ("--top-p", "1.5", "a number in (0, 1]"),
        ("--min-p", "-0.1", "a number in [0, 1]"),
        ("--min-p", "nan", "a number in [0, 1]"),
        ("--smooth", "1.5", "a number in [0, 1]"),
        ("--smooth", "-1", "a number in [0, 1]"),
    ],
)
def test_bad_truncation_is_one_line_with_status_2(tmp_path, capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(tmp_path / "m.npz"), flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {flag}: expected {expected}, got '{value}'" in err


def test_the_last_line_points_to_the_best_model_when_the_last_is_worse(tmp_path):
    from blekota.console import describe

    def done(val_loss, best):
        return blekota.Progress("done", 400, 2, 2.5, 1000.0, 9.0, 0, tmp_path / "voice_400.npz", val_loss, best)

    assert describe(done(2.61, 2.61)) == f"done at iteration 400; saved {tmp_path / 'voice_400.npz'}"
    assert describe(done(2.75, 2.61)) == (
        f"done at iteration 400; saved {tmp_path / 'voice_400.npz'} (validation 2.7500; the best, 2.6100, "
        f"is {tmp_path / 'voice_best.npz'})"
    )


def test_help_says_plot_o_takes_a_folder_export_a_pkl_and_heatmap_n_what_it_shows(capsys):
    def help_text(*argv: str) -> str:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        return " ".join(capsys.readouterr().out.split())

    assert "or a folder to write waveform.png in" in help_text("plot", "waveform")
    assert "MODEL a model file (.npz), or a .pkl of the original blekota" in help_text("export")
    heatmap = help_text("plot", "heatmap")
    assert "samples shown: of SOUND as the model listens, or generated" in heatmap
    assert "samples to draw" not in heatmap


@pytest.mark.parametrize("name", ["", "..", "foo/", "g/../k", "/abs/m"])
def test_train_refuses_a_model_name_that_is_no_run_name_naming_the_option(tmp_path, sine_file, capsys, name):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(sine_file), "--model-name", name, "--out-dir", str(tmp_path / "out"), *SMALL])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "argument --model-name: expected a file name prefix" in err and f"got {name!r}" in err
    assert not (tmp_path / "out").exists()


def test_train_of_a_sound_too_long_to_name_a_run_after_asks_for_model_name(tmp_path, sine_file, capsys):
    """train with a 235-byte sound name said 'name must be a file name prefix of at most 200
    bytes ..., got ...': no name was given, and nothing said how to give one."""
    sound = tmp_path / ("b" * 231 + ".wav")
    sound.write_bytes(sine_file.read_bytes())
    assert main(["train", str(sound), *SMALL, "--out-dir", str(tmp_path / "out"), "-q"]) == 2
    assert capsys.readouterr().err == (f"blekota: error: {sound}: a name too long to name the run's files after (at "
                                       "most 200 bytes); give --model-name\n")
    assert not (tmp_path / "out").exists()
    assert main(["train", str(sound), *SMALL, "--out-dir", str(tmp_path / "out"), "--model-name", "b", "-q"]) == 0


def test_train_bf16_where_it_cannot_run_is_refused_naming_the_option(tmp_path, sine_file, capsys):
    small = [*SMALL, "--iterations", "1", "--checkpoint-sound", "0", "--out-dir", str(tmp_path), "-q"]
    assert main(["train", str(sine_file), *small, "--dtype", "float64"]) == 0
    for argv in (["train", str(sine_file), *small, "--model-name", "new", "--dtype", "float64", "--bf16"],
                 ["train", "--resume", str(tmp_path / "sine_1.npz"), *small, "--bf16"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == "blekota: error: --bf16: bfloat16 products need a float32 model, this one is float64\n"


def test_a_refused_run_leaves_no_folder_it_made(tmp_path, monkeypatch, capsys):
    """A sound too short for the windows was refused after the run's folders were made: they stayed, empty."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("short.wav", 0.5 * np.sin(np.arange(4000) / 5), 8000)
    (tmp_path / "kept").mkdir()  # the user's own folder, empty: it stays
    small = ["--layers", "1", "--hidden", "8", "--threads", "1", "-q", "--iterations", "1"]
    for where in (["--out-dir", "runs/deep"], ["--model-name", "zz/q"], ["--out-dir", "kept", "--model-name", "a/b"]):
        assert main(["train", "short.wav", *small, *where]) == 2
        assert "the sound is too short" in capsys.readouterr().err
        assert sorted(path.name for path in tmp_path.iterdir()) == ["kept", "short.wav"], where
    assert list((tmp_path / "kept").iterdir()) == []
    assert main(["train", "missing.wav", *small, "--out-dir", "runs"]) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept", "short.wav"]


def test_a_sound_too_short_for_the_windows_names_the_options(tmp_path, capsys):
    """train and repl name --batch-size, --seq-length and --random-speed, not Trainer's arguments."""
    short = tmp_path / "short.wav"
    blekota.save_wav(short, 0.5 * np.sin(np.arange(4000) / 5), 8000)
    small = ["--layers", "1", "--hidden", "8", "--threads", "1", "--out-dir", str(tmp_path), "-q"]
    assert main(["train", str(short), *small, "--batch-size", "8", "--seq-length", "800", "--iterations", "1"]) == 2
    assert capsys.readouterr().err == (
        f"blekota: error: {short}: the sound is too short: 4000 samples, need at least 6737 (0.84 s at 8000 Hz) for "
        "--batch-size 8 windows of --seq-length 800 plus the 5% held out for validation\n")
    assert main(["train", str(short), *small, "--batch-size", "4", "--seq-length", "800", "--random-speed", "0.5",
                 "--iterations", "1"]) == 2
    assert capsys.readouterr().err == (
        f"blekota: error: {short}: the sound is too short for --batch-size 4 windows of --seq-length 800 played 1.5 "
        "times as fast (--random-speed 0.5)\n")
    assert main(["repl", str(short), *small, "--batch-size", "8", "--seq-length", "800"]) == 2
    assert "for --batch-size 8 windows of --seq-length 800 plus" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["short.wav"]


@pytest.mark.parametrize("argv", [
    ["train", "missing.wav"], ["sample", "missing.npz"], ["play", "missing.npz"], ["plot", "heatmap", "missing.npz"],
    ["repl", "missing.wav"], ["demo", "--out-dir", "a-file"],
])
def test_threads_above_the_cpus_are_warned_about_in_one_line(tmp_path, monkeypatch, capsys, argv):
    """Every command with --threads says, once, that more threads than CPUs run slower; as many runs quietly."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(blekota.cli.options, "usable_cpus", lambda: 2)
    (tmp_path / "a-file").write_text("not a folder")  # so that each command stops at once
    assert main([*argv, "--threads", "2"]) == 2
    assert "warning" not in capsys.readouterr().err
    assert main([*argv, "--threads", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blekota: warning: --threads 5 is more than the 2 CPUs this process may use: the threads take "
                          "turns on them, slower than --threads 2\n") and err.count("warning") == 1
    with pytest.raises(SystemExit):  # beyond what a model takes: a usage error naming --threads
        main([*argv, "--threads", "2000"])
    assert "argument --threads: expected an integer in 1..1024, got '2000'" in capsys.readouterr().err


def test_stop_after_ends_a_run_early_is_shown_and_kept_on_resume(tmp_path, sine_file, capsys, monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9])
    monkeypatch.setattr(blekota.Trainer, "_held_out_loss", lambda self, abandon: next(losses))
    assert main(["train", str(sine_file), *SMALL, "--iterations", "100", "--val-every", "5", "--stop-after", "2",
                 "--checkpoint-sound", "0", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "the held-out loss has not bettered its best, 2.0000 at iteration 10, in 2 validations: stopping" in out
    assert (f"done at iteration 20; saved {tmp_path / 'sine_20.npz'} (validation 2.6000; the best, 2.0000, is "
            f"{tmp_path / 'sine_best.npz'})") in out
    assert main(["info", str(tmp_path / "sine_20.npz")]) == 0
    shown = capsys.readouterr().out
    assert "stops after 2 validations without a lower held-out loss" in shown
    assert "\nlr schedule: plateau (x0.5 when more than 1 validation in a row does not improve, down to 1e-05)\n" in shown
    assert main(["train", "--resume", str(tmp_path / "sine_20.npz"), "--iterations", "100", "--quiet",
                 "--threads", "1", "--checkpoint-sound", "0"]) == 0  # two stale already: the next stale one stops it
    assert blekota.load(tmp_path / "sine_25.npz").info["trainer"]["stop_after"] == 2
    assert main(["train", "--resume", str(tmp_path / "sine_25.npz"), "--iterations", "10", "--quiet",
                 "--threads", "1", "--checkpoint-sound", "0", "--stop-after", "0"]) == 0
    assert blekota.load(tmp_path / "sine_35.npz").info["trainer"]["stop_after"] == 0
    assert main(["train", str(sine_file), *SMALL, "--val-fraction", "0", "--stop-after", "2",
                 "--out-dir", str(tmp_path), "--model-name", "unvalidated"]) == 2
    assert "stop_after 2 (train --stop-after) counts validations" in capsys.readouterr().err


def run_on_a_terminal_that_hangs_up(argv: list[str], cwd: Path, signal_first: bool) -> int:
    """Run python -m blekota argv with a pseudo-terminal for its output, wait for its first output
    (at most 4 s), then hang the terminal up: close it and send SIGHUP (as the shell does), in
    either order. Returns the exit status."""
    import pty
    import select

    terminal, its_end = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "blekota", *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=its_end, stderr=its_end, start_new_session=True)
    os.close(its_end)
    if select.select([terminal], [], [], 4)[0]:
        os.read(terminal, 1)
    time.sleep(0.5)
    if signal_first:
        process.send_signal(signal.SIGHUP)
        time.sleep(0.2)
    os.close(terminal)
    if not signal_first:
        time.sleep(0.2)
        process.send_signal(signal.SIGHUP)
    return process.wait(timeout=60)


@pytest.mark.parametrize("signal_first", [True, False])
def test_a_hang_up_stops_training_and_saves_it(tmp_path, sine_file, signal_first):
    status = run_on_a_terminal_that_hangs_up(["train", str(sine_file), *SMALL, "--iterations", "1000000"], tmp_path,
                                             signal_first)
    assert status == 0
    last = max(int(path.stem.split("_")[1]) for path in tmp_path.glob("sine_*.npz") if path.stem != "sine_best")
    assert blekota.load(tmp_path / f"sine_{last}.npz").info["iterations"] == last
    assert json.loads((tmp_path / "sine.log.jsonl").read_text().splitlines()[-1])["iteration"] == last


@pytest.mark.parametrize("signal_first", [True, False])
def test_a_hang_up_stops_sample_and_leaves_no_part_of_a_file(tmp_path, signal_first):
    model = blekota.Model(hidden=64, layers=2, seed=1).save(tmp_path / "m.npz")
    status = run_on_a_terminal_that_hangs_up(["sample", str(model), "-n", "100000000", "-o", "take.flac"], tmp_path,
                                             signal_first)
    assert status == 129
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.npz"]


def test_a_hang_up_ignored_as_nohup_does_is_not_heeded(monkeypatch):
    from blekota import interrupts

    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_IGN if sig == signal.SIGHUP else signal.SIG_DFL)
    assert interrupts.heeded() == (signal.SIGINT, signal.SIGTERM)
