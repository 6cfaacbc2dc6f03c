"""Inputs people try and faults they meet (issue 12): each ends with one line and exit status 2,
or works; nothing a user has is lost. Devices are stood in for by FIFOs and links in tmp_path."""

import errno
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types

import numpy as np
import pytest
import soundfile
from legacy_pickles import GRU, write_pickle

import blekota
from blekota import fileformat, fileutil
from blekota.cli import main

SMALL = ["--layers", "1", "--hidden", "4", "--seq-length", "10", "--batch-size", "2", "--threads", "1",
         "--iterations", "1", "--checkpoint-every", "0", "--checkpoint-sound", "0"]


def tone(n: int = 4000, fs: int = 8000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / fs)).astype(np.float32)


def one_line(err: str, message: str) -> None:
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("blekota: error: ") and "Traceback" not in err, err


@pytest.fixture
def here(tmp_path, monkeypatch):
    """tmp_path as the current folder, with tone.wav and a tiny model m.npz in it."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("tone.wav", tone(), 8000)
    blekota.Model(hidden=4, layers=1, seed=0, threads=1).save("m.npz")
    return tmp_path


def read_fifo(path, into: list) -> threading.Thread:
    """A reader that keeps what comes through the FIFO at path."""
    reader = threading.Thread(target=lambda: into.append(open(path, "rb").read()), daemon=True)
    reader.start()
    return reader


# -- sounds -----------------------------------------------------------------------------------------


def nan_wav(path):
    samples = tone()
    samples[100] = np.nan
    soundfile.write(str(path), samples, 8000, subtype="FLOAT")


def lying_rate(path):
    """A wav whose header claims 2147483647 Hz: resampling it would need terabytes."""
    soundfile.write(str(path), tone(), 8000)
    data = bytearray(path.read_bytes())
    data[24:28] = (2**31 - 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def no_channels(path):
    soundfile.write(str(path), tone(), 8000)
    data = bytearray(path.read_bytes())
    data[22:24] = b"\0\0"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "make,argument,message",
    [
        (lambda d: (d / "empty").mkdir(), "empty", "empty: directory holds no sound files"),
        (lambda d: None, "nothing/*.wav", "nothing/*.wav: no files match"),
        (lambda d: nan_wav(d / "nan.wav"), "nan.wav", "nan.wav: contains NaN or infinite samples (the first at 0.013 s)"),
        (lambda d: os.mkfifo(d / "pipe.wav"), "pipe.wav", "pipe.wav: is a FIFO (named pipe), not a sound file"),
        (lambda d: (d / "zero.wav").write_bytes(b""), "zero.wav", "zero.wav: is empty (0 bytes)"),
        (lambda d: lying_rate(d / "lie.wav"), "lie.wav", "lie.wav: reading 0 s of sound at 2147483647 Hz needs about"),
        (lambda d: no_channels(d / "mono0.wav"), "mono0.wav", "mono0.wav: not a sound file blekota can read (Channel count is zero.)"),
        (lambda d: None, "m.npz", "m.npz: a model file (or another zip archive), not a sound; to go on training a model: python -m blekota train --resume m.npz"),
        (lambda d: write_pickle(d / "old.pkl", GRU(h_n=2, layer_n=1)), "old.pkl", "old.pkl: a Python pickle (a model of the original blekota?), not a sound"),
    ],
)
def test_sounds_that_cannot_be_learned(here, capsys, make, argument, message):
    make(here)
    assert main(["train", argument, *SMALL]) == 2
    one_line(capsys.readouterr().err, message)


def test_a_device_is_not_a_sound(capsys):
    if not os.path.exists(os.devnull):
        pytest.skip("no null device here")
    assert main(["train", os.devnull, *SMALL]) == 2  # only looked at (stat), never opened
    one_line(capsys.readouterr().err, f"{os.devnull}: is a device, not a sound file")


def test_unusual_sounds_train(here, capsys):
    """8 channels at 192 kHz, clipped, in FLAC; names in other scripts, and one that is not valid
    UTF-8; a directory with the ._ files macOS leaves beside sounds."""
    t = np.arange(48000) / 192000
    channels = np.stack([np.clip(1.6 * np.sin(2 * np.pi * (200 + 40 * c) * t), -1, 1) for c in range(8)], axis=1)
    soundfile.write("eight.flac", channels, 192000, subtype="PCM_24")
    assert main(["train", "eight.flac", *SMALL]) == 0
    assert blekota.load("eight_1.npz").info["training_files"] == ["eight.flac"]
    blekota.save_wav("zpěv ü.wav", tone(), 8000)
    assert main(["train", "zpěv ü.wav", *SMALL]) == 0
    assert main(["info", "zpěv ü_1.npz"]) == 0 and "trained on:  zpěv ü.wav" in capsys.readouterr().out
    undecodable = os.fsdecode(b"bad\xff.wav")
    blekota.save_wav(undecodable, tone(), 8000)
    assert main(["train", undecodable, *SMALL]) == 0
    assert main(["sample", os.fsdecode(b"bad\xff_1.npz"), "-n", "10", "--threads", "1"]) == 0
    assert os.path.exists(b"bad\xff_1_sample.wav")
    os.mkdir("takes")
    blekota.save_wav("takes/a.wav", tone(), 8000)
    (here / "takes" / "._a.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    assert main(["train", "takes", *SMALL]) == 0
    assert blekota.load("takes_1.npz").info["training_files"] == [os.path.join("takes", "a.wav")]


# -- options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "tone.wav", "--threads", "0"], "argument --threads: expected an integer in 1..1024, got '0' (see: python -m blekota train --help)"),
        (["train", "tone.wav", "--fs", "0"], "argument --fs: expected a sample rate in 1..2147483647 Hz, got '0'"),
        (["sample", "m.npz", "--temperature", "nan"], "argument --temperature: expected a number >= 0, got 'nan'"),
        (["repl", "--hidden", "x"], "argument --hidden: expected a positive integer, got 'x'"),
    ],
)
def test_bad_numbers_are_one_line(here, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    one_line(capsys.readouterr().err, message)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "tone.wav", "--layers", "100000000"], "a 100000000x256 float32 model needs about"),
        (["train", "tone.wav", "--hidden", "4", "--layers", "1", "--batch-size", "1000000000"],
         "training a 1x4 float32 model with seq_length 100 and batch_size 1000000000 needs about"),
        (["train", "--resume", "m.npz", "--hidden", "16"],
         "m.npz: a 1x4 float32 model at 8000 Hz; --hidden 16 does not fit it (a model keeps its architecture"),
        (["train", "--resume", "m.npz", "--dtype", "float64"], "--dtype float64 does not fit it"),
        (["train", "tone.wav", *SMALL, "--checkpoint-sound", "1e9"], "--checkpoint-sound: 1e+09 s at 8000 Hz do not fit a 16-bit wav"),
        (["sample", "m.npz", "-n", str(2**31)], "a 16-bit wav holds at most 2147483615 samples (4 GiB), got 2147483648"),
        (["sample", "m.npz", "--hint", "absent.wav"], "absent.wav: no such file"),
        (["sample", "tone.wav"], "tone.wav: a sound file, not a model file (to train a model on it: python -m blekota train tone.wav)"),
        (["info", "tone.wav"], "tone.wav: a sound file, not a model file"),
        (["import-legacy", "tone.wav"], "tone.wav: a sound file, not a pickled model"),
        (["import-legacy", "m.npz", "-o", "x.npz"], "m.npz: a blekota model file (or another zip archive), not a pickle: it needs no conversion"),
    ],
)
def test_refused_before_any_work(here, capsys, argv, message):
    before = sorted(os.listdir(here))
    assert main(argv) == 2
    one_line(capsys.readouterr().err, message)
    assert sorted(os.listdir(here)) == before


def test_resume_takes_the_options_given(here):
    blekota.Trainer(blekota.load("m.npz"), "tone.wav", seq_length=10, batch_size=2, name="m",
                    checkpoint_every=0).train(1)
    assert main(["train", "--resume", "m_1.npz", "--alpha", "0.01", "--seq-length", "12", "--hidden", "4",
                 "--iterations", "1", "--threads", "1", "-q"]) == 0
    trainer = blekota.load("m_2.npz").info["trainer"]
    assert (trainer["lr"], trainer["seq_length"], trainer["batch_size"]) == (0.01, 12, 2)


def test_model_files_and_pickles_that_are_not_regular_files(here, capsys):
    os.mkfifo("pipe.npz")
    os.mkfifo("pipe.pkl")
    for argv, message in (
        (["sample", "pipe.npz"], "pipe.npz: is a FIFO (named pipe), not a model file"),
        (["info", "pipe.npz"], "pipe.npz: is a FIFO (named pipe), not a model file"),
        (["sample", "pipe.pkl"], "pipe.pkl: is a FIFO (named pipe), not a pickle"),
        (["import-legacy", "pipe.pkl"], "pipe.pkl: is a FIFO (named pipe), not a pickle"),
        (["sample", "m.npz", "--hint", "pipe.npz"], "pipe.npz: is a FIFO (named pipe), not a sound file"),
        (["plot", "loss", "pipe.npz"], "pipe.npz: is a FIFO (named pipe), not a model file"),
    ):
        assert main(argv) == 2
        one_line(capsys.readouterr().err, message)
    (here / "zero.npz").write_bytes(b"")
    assert main(["info", "zero.npz"]) == 2
    one_line(capsys.readouterr().err, "zero.npz: is empty (0 bytes)")


# -- outputs ----------------------------------------------------------------------------------------


def test_output_onto_a_directory_or_into_a_missing_folder(here, capsys):
    os.mkdir("out")
    for argv, message in (
        (["sample", "m.npz", "-o", "out", "--force"], "out: is a directory (give a file name to write)"),
        (["sample", "m.npz", "-o", "gone/x.wav"], "gone/x.wav: the directory gone does not exist"),
        (["sample", "m.npz", "-o", "gone/"], "gone/: the directory gone does not exist"),
        (["sample", "m.npz", "-o", "tone.wav/", "--force"], "tone.wav/: tone.wav is not a directory"),
        (["sample", "m.npz", "--heatmap", "gone/"], "gone/: the directory gone does not exist"),
        (["import-legacy", "x.pkl", "-o", "out"], "out: is a directory"),
        (["plot", "waveform", "tone.wav", "-o", "gone/w.png"], "gone/w.png: the directory gone does not exist"),
        (["sample", "m.npz", "-o", "tone.wav/x.wav"], "tone.wav/x.wav: tone.wav is not a directory"),
        (["plot", "waveform", "tone.wav", "-o", "m.npz/w.png"], "m.npz/w.png: m.npz is not a directory"),
    ):
        assert main(argv) == 2
        one_line(capsys.readouterr().err, message)
    assert not os.path.lexists("gone")


def test_links_in_a_loop_are_refused_not_replaced(here, capsys):
    os.symlink("self.wav", "self.wav")
    os.symlink("b.flac", "a.flac")
    os.symlink("a.flac", "b.flac")
    for output in ("self.wav", "a.flac"):
        assert main(["sample", "m.npz", "-n", "300", "-o", output, "--force", "--threads", "1"]) == 2
        one_line(capsys.readouterr().err, f"{output}: Too many levels of symbolic links")
    with pytest.raises(OSError, match="Too many levels of symbolic links: 'b.flac'"):
        blekota.save_sound("b.flac", tone(100), 8000)
    assert [os.readlink(name) for name in ("self.wav", "a.flac", "b.flac")] == ["self.wav", "b.flac", "a.flac"]


def test_a_link_is_written_through_to_its_target(here):
    os.mkdir("store")
    (here / "store" / "kept.wav").write_bytes(b"old")
    os.symlink(os.path.join("store", "kept.wav"), "link.wav")
    assert main(["sample", "m.npz", "-n", "300", "-o", "link.wav", "--threads", "1"]) == 2  # exists: --force
    assert main(["sample", "m.npz", "-n", "300", "-o", "link.wav", "--force", "--threads", "1"]) == 0
    assert os.path.islink("link.wav") and os.readlink("link.wav") == os.path.join("store", "kept.wav")
    assert soundfile.info("store/kept.wav").frames == 300
    os.symlink(os.path.join("store", "new.wav"), "dangling.wav")
    assert main(["sample", "m.npz", "-n", "200", "-o", "dangling.wav", "--threads", "1"]) == 0
    assert os.path.islink("dangling.wav") and soundfile.info("store/new.wav").frames == 200
    os.symlink("m.npz", "model-link.npz")
    blekota.Model(hidden=4, layers=1, seed=5).save("model-link.npz")
    assert os.path.islink("model-link.npz") and blekota.load("m.npz").params[0] == blekota.Model(hidden=4, layers=1, seed=5).params[0]
    assert sorted(p for p in os.listdir(here) if p.startswith(".")) == []


def test_standard_output_closed_is_one_line(here, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)  # as python gets it with >&-
    assert main(["sample", "m.npz", "-n", "10", "-o", "-", "--threads", "1"]) == 2
    one_line(capsys.readouterr().err, "-: standard output is closed")


def test_a_fifo_is_written_as_a_stream_without_force(here):
    """The case of sample -o /dev/full or /dev/stdout: the node stays, the sound streams into it."""
    os.mkfifo("pipe.wav")
    received = []
    reader = read_fifo("pipe.wav", received)
    assert main(["sample", "m.npz", "-n", "20000", "-o", "pipe.wav", "--seed", "1", "--threads", "1"]) == 0
    reader.join(30)
    assert os.path.exists("pipe.wav") and not os.path.isfile("pipe.wav")  # still a FIFO
    expected = blekota.load("m.npz").sample(20000, seed=1)
    written = np.frombuffer(received[0][44:], "<i2") / 32768
    assert received[0][:4] == b"RIFF" and written.size == 20000
    np.testing.assert_allclose(written, expected, atol=1 / 32768)
    os.symlink("pipe.wav", "via-link.wav")
    received.clear()
    reader = read_fifo("pipe.wav", received)
    blekota.save_wav("via-link.wav", tone(100), 8000)
    reader.join(30)
    assert os.path.islink("via-link.wav") and len(received[0]) == 44 + 200


def test_a_full_disk_keeps_the_old_file(here, capsys, monkeypatch):
    (here / "out.wav").write_bytes(b"precious")
    real_pcm16 = blekota.audio.pcm16
    calls = []

    def fill_up(samples):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pcm16(samples)

    monkeypatch.setattr(blekota.audio, "pcm16", fill_up)
    assert main(["sample", "m.npz", "-n", "20000", "-o", "out.wav", "--force", "--threads", "1"]) == 2
    one_line(capsys.readouterr().err, "out.wav: No space left on device")
    assert (here / "out.wav").read_bytes() == b"precious"
    assert sorted(p for p in os.listdir(here) if p.startswith(".")) == []


@pytest.mark.parametrize("samples", ["100", "20000"])
def test_a_full_disk_under_the_samples_of_a_flac_names_the_flac(here, capsys, monkeypatch, samples):
    (here / "out.flac").write_bytes(b"precious")

    class Full(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def anonymous_on_a_full_disk(dir=None):
        raw = Full(os.path.join(dir, ".samples"), "w+")
        os.unlink(raw.name)
        return io.BufferedRandom(raw)

    monkeypatch.setattr(blekota.encoding, "tempfile", types.SimpleNamespace(TemporaryFile=anonymous_on_a_full_disk))
    assert main(["sample", "m.npz", "-n", samples, "-o", "out.flac", "--force", "--threads", "1"]) == 2
    one_line(capsys.readouterr().err, "out.flac: No space left on device")
    assert (here / "out.flac").read_bytes() == b"precious"
    assert sorted(os.listdir(here)) == ["m.npz", "out.flac", "tone.wav"]


def test_a_checkpoint_sound_on_a_full_disk_is_one_warning_naming_it(here, capsys, monkeypatch):
    def full_disk(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(blekota.runfiles, "save_wav", full_disk)
    assert main(["train", "tone.wav", *SMALL, "--checkpoint-every", "1", "--checkpoint-sound", "100", "-q"]) == 0
    assert capsys.readouterr().err == ("warning: tone_1.wav: could not write the checkpoint sound (No space left on "
                                       "device); training goes on\n")
    assert os.path.exists("tone_1.npz") and not os.path.exists("tone_1.wav")


def test_an_out_dir_that_cannot_be_written_is_refused_before_training(here, capsys, monkeypatch):
    (here / "file").write_bytes(b"")
    assert main(["train", "tone.wav", *SMALL, "--out-dir", "file"]) == 2
    one_line(capsys.readouterr().err, "file: is not a directory (files cannot be written in it)")
    assert main(["train", "tone.wav", *SMALL, "--model-name", "file/x"]) == 2
    one_line(capsys.readouterr().err, "file: is not a directory")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert main(["train", "tone.wav", *SMALL, "--out-dir", "ro"]) == 2
    one_line(capsys.readouterr().err, "ro: cannot write files in it (Read-only file system)")


def test_a_failed_final_save_is_rescued(here, capsys, monkeypatch):
    real_open_output = fileformat.open_output

    def full_here(path):
        if os.path.dirname(os.path.abspath(path)) == str(here):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open_output(path)

    monkeypatch.setattr(fileformat, "open_output", full_here)
    assert main(["train", "tone.wav", *SMALL, "--iterations", "2", "--checkpoint-every", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("warning: tone_1.npz: could not save (No space left on device); training goes on") == 1
    last = err.splitlines()[-1]
    assert last.startswith("blekota: error: tone_2.npz: could not save (No space left on device); saved it as ")
    rescued = last.split("saved it as ")[1].removesuffix(" instead")
    assert blekota.load(rescued).info["iterations"] == 2
    os.unlink(rescued)
    os.rmdir(os.path.dirname(rescued))


def test_a_rescue_that_fails_too_leaves_no_empty_folder(here, capsys, monkeypatch):
    def full_everywhere(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fileformat, "open_output", full_everywhere)
    (here / "system-tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here / "system-tmp"))
    assert main(["train", "tone.wav", *SMALL, "-q"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("blekota: error: tone_1.npz: could not save (No space left on device); saving it in the "
                           "temporary folder failed too (") and last.endswith("could not save (No space left on device))")
    assert os.listdir(here / "system-tmp") == []


def hear_ctrl_c() -> None:
    """In the child: SIGINT as a terminal delivers it, even when the tests run in a background
    job, which starts with SIGINT ignored (and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_blekota(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "blekota", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=hear_ctrl_c, **kwargs)


def test_standard_output_gets_the_sound_and_stderr_the_words(here):
    child = run_blekota("sample", "m.npz", "-n", "500", "-o", "-", "--seed", "2", "--threads", "1")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out[:4] == b"RIFF" and len(out) == 44 + 1000
    assert err.decode().startswith("wrote standard output: 500 samples")
    child = run_blekota("sample", "m.npz", "-n", "100000000", "-o", "-", "--threads", "1")
    assert len(child.stdout.read(1000)) == 1000
    child.stdout.close()  # the reader goes away, as `| head -c 1000` does: a quiet end
    assert child.stderr.read() == b"" and child.wait(timeout=120) == 141


def test_a_heatmap_on_standard_output_gets_it_alone(here):
    """sample --heatmap - writes just the PNG to standard output, the lines to stderr; -o - and
    --heatmap - at once would mix the wav and the PNG, and are refused before any work."""
    child = run_blekota("sample", "m.npz", "-n", "500", "-o", "s.wav", "--heatmap", "-", "--threads", "1")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.startswith(b"\x89PNG") and out.endswith(b"IEND\xaeB`\x82"), out[:100]
    assert err.decode().startswith("wrote s.wav: 500 samples")
    for heatmap in ("-", "/dev/stdout"):
        child = run_blekota("sample", "m.npz", "-n", "500", "-o", "-", "--heatmap", heatmap, "--threads", "1")
        out, err = child.communicate(timeout=120)
        assert (child.returncode, out) == (2, b"")
        one_line(err.decode(), "each needs its own")
    child = run_blekota("sample", "m.npz", "-n", "500", "-o", os.devnull, "--heatmap", os.devnull, "--threads", "1")
    assert child.wait(timeout=120) == 0, child.stderr.read()  # the null device takes both


INTERRUPTED_IMPORT = """
import runpy, signal, sys

class CtrlC:
    \"\"\"Ctrl+C inside NumPy's import, which turns what cuts it short into an ImportError.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt as error:
                raise ImportError("numpy: the import was cut short") from error

sys.meta_path.insert(0, CtrlC())
sys.argv = ["blekota", "--version"]
runpy.run_module("blekota", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_the_command_line_loads_is_one_line():
    light = subprocess.run([sys.executable, "-c", "import sys, blekota; print(sorted(sys.modules))"],
                           capture_output=True, text=True, timeout=120)
    assert "'numpy'" not in light.stdout and "'blekota.cli'" not in light.stdout, light.stderr  # loads on first use
    assert all(hasattr(blekota, name) for name in blekota.__all__) and set(blekota.__all__) <= set(dir(blekota))
    assert blekota.Model is blekota.model.Model and not hasattr(blekota, "no_such_name")
    child = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, timeout=120,
                           preexec_fn=hear_ctrl_c)
    assert (child.returncode, child.stdout, child.stderr) == (130, "", "blekota: interrupted\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_training_stopped_by_a_signal_saves_and_exits_with_status_0(here, sig):
    """So that a command chained after train (train ... && sample ...) goes on with the saved model."""
    child = run_blekota("train", "tone.wav", *SMALL, "--iterations", "100000000", "--checkpoint-sound", "0", "--verbose")
    while not child.stdout.readline().startswith(b"iteration"):  # training is under way
        assert child.poll() is None, child.stderr.read()
    child.send_signal(sig)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    saved = out.decode().strip().splitlines()[-1]
    assert re.fullmatch(r"stopped at iteration \d+; saved tone_\d+\.npz", saved), saved
    assert blekota.load(saved.split("saved ")[1]).info["iterations"] > 0


def test_training_whose_reader_went_away_stops_and_saves(here):
    """train ... | tee log, then Ctrl+C: tee goes first, and the next line train prints finds no
    reader. Training stops after that update and saves, as Ctrl+C stops it (status 141, quietly)."""
    child = run_blekota("train", "tone.wav", *SMALL, "--iterations", "100000000", "--checkpoint-sound", "0")
    while not child.stdout.readline().startswith(b"iteration"):  # training is under way
        assert child.poll() is None, child.stderr.read()
    child.stdout.close()
    assert child.wait(timeout=120) == 141
    assert child.stderr.read() == b""
    saved = [name for name in os.listdir(here) if re.fullmatch(r"tone_\d+\.npz", name)]
    assert len(saved) == 1 and blekota.load(saved[0]).info["iterations"] > 0, saved


def test_a_demo_whose_reader_went_away_stops_and_still_saves_and_draws(here):
    """demo | head -3: the demo stops training at the next line it cannot print, then saves,
    draws and pictures what it has, quietly, and ends with status 141."""
    child = run_blekota("demo", "--out-dir", "d", "--iterations", "100000000", "--threads", "1")
    while not child.stdout.readline().startswith(b"iteration"):
        assert child.poll() is None, child.stderr.read()
    child.stdout.close()
    assert child.wait(timeout=300) == 141
    assert child.stderr.read() == b""
    made = set(os.listdir(here / "d"))
    assert {"demo_sound.wav", "demo_generated.wav", "demo_compare.png"} <= made
    saved = [name for name in made if re.fullmatch(r"demo_\d+\.npz", name)]
    assert len(saved) == 1 and blekota.load(here / "d" / saved[0]).info["iterations"] > 0, saved


@pytest.mark.parametrize("sig,status,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_stopping_a_long_sample_leaves_no_half_file(here, sig, status, word):
    (here / "out.wav").write_bytes(b"precious")
    child = run_blekota("sample", "m.npz", "-n", "100000000", "-o", "out.wav", "--force", "--threads", "1")
    deadline = time.monotonic() + 60
    while not any(name.startswith(".out.wav.") for name in os.listdir(here)):
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
        time.sleep(0.05)
    child.send_signal(sig)
    _, err = child.communicate(timeout=120)
    assert child.returncode == status
    assert err.decode() == f"blekota: {word}\n"
    assert (here / "out.wav").read_bytes() == b"precious"
    assert sorted(p for p in os.listdir(here) if p.startswith(".")) == []


def test_a_folder_that_refuses_files_is_reported_under_the_destinations_name(here, capsys, monkeypatch):
    real_open = os.open

    def refused_open(name, *args, **kwargs):  # as in a folder this user cannot write to
        if str(name).endswith(".tmp") or os.path.basename(name).startswith("tmp") or os.path.isdir(name):
            raise PermissionError(errno.EACCES, "Permission denied", name)  # also tempfile's anonymous files
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused_open)
    for argv, path in ((["sample", "m.npz", "-n", "10", "-o", "new.wav", "--threads", "1"], "new.wav"),
                       (["sample", "m.npz", "-n", "10", "-o", "new.flac", "--threads", "1"], "new.flac"),
                       (["plot", "waveform", "tone.wav", "-o", "wave.png"], "wave.png")):
        assert main(argv) == 2
        assert capsys.readouterr().err == f"blekota: error: {path}: Permission denied\n"
    monkeypatch.setattr(os, "open", real_open)

    def refused_replace(source, destination):
        raise PermissionError(errno.EACCES, "Permission denied", source, destination)

    monkeypatch.setattr(os, "replace", refused_replace)
    with pytest.raises(PermissionError) as raised:
        with fileutil.open_output(here / "x.bin") as out:
            out.write(b"whole")
    assert (raised.value.filename, raised.value.filename2) == (str(here / "x.bin"), None)
    assert sorted(os.listdir(here)) == ["m.npz", "tone.wav"]


def test_a_read_only_file_system_is_reported_under_the_destinations_name(here, capsys, monkeypatch):
    """On a read-only mount even unlinking the temporary name that was never created fails."""
    real_open, real_unlink = os.open, os.unlink

    def read_only(real):
        def refused(name, *args, **kwargs):
            if str(name).endswith(".tmp"):
                raise OSError(errno.EROFS, "Read-only file system", name)
            return real(name, *args, **kwargs)
        return refused

    monkeypatch.setattr(os, "open", read_only(real_open))
    monkeypatch.setattr(os, "unlink", read_only(real_unlink))
    for argv, path in ((["sample", "m.npz", "-n", "10", "-o", "new.wav", "--threads", "1"], "new.wav"),
                       (["plot", "waveform", "tone.wav", "-o", "wave.png"], "wave.png")):
        assert main(argv) == 2
        assert capsys.readouterr().err == f"blekota: error: {path}: Read-only file system\n"


def test_open_output_refuses_a_directory_and_names_the_file_in_errors(tmp_path):
    with pytest.raises(IsADirectoryError):
        with fileutil.open_output(tmp_path):
            pass
    with pytest.raises(OSError) as raised:
        with fileutil.open_output(tmp_path / "x.bin") as out:
            out.write(b"half")
            raise OSError(errno.EIO, "Input/output error")
    assert raised.value.filename == str(tmp_path / "x.bin") and not list(tmp_path.iterdir())


def test_models_and_pictures_stream_into_a_fifo(here, capsys):
    """Zip and PNG writers never seek on a stream (a device may claim to seek and stay at 0)."""
    os.mkfifo("pipe")
    received = []
    reader = read_fifo("pipe", received)
    write_pickle(here / "old.pkl", GRU(h_n=3, layer_n=1, iterations=5))
    assert main(["import-legacy", "old.pkl", "-o", "pipe"]) == 0
    reader.join(30)
    assert capsys.readouterr().err.startswith("wrote pipe: 1 GRU layer x 3 units, 8000 Hz, 5 iterations")  # words on stderr
    (here / "copy.npz").write_bytes(received[0])
    assert blekota.load("copy.npz").info["iterations"] == 5
    assert main(["info", "copy.npz"]) == 0 and "copy.npz (converted from old.pkl)" in capsys.readouterr().out
    received.clear()
    reader = read_fifo("pipe", received)
    assert main(["plot", "waveform", "tone.wav", "-o", "pipe"]) == 0
    reader.join(30)
    assert received[0][:8] == b"\x89PNG\r\n\x1a\n" and os.path.exists("pipe") and not os.path.isfile("pipe")


def test_a_sound_is_not_a_training_log(here, capsys):
    assert main(["plot", "loss", "tone.wav"]) == 2
    one_line(capsys.readouterr().err, "tone.wav: not a training log (not text; a log is NAME.log.jsonl)")


def test_a_loss_curve_with_nothing_to_draw_names_the_file(here, capsys):
    (here / "empty.log.jsonl").write_text("")
    (here / "list.log.jsonl").write_text("[1, 2]\n")
    for argv, line in ((["plot", "loss", "m.npz"], "m.npz: no loss values yet (no training reported)"),
                       (["plot", "loss", "empty.log.jsonl"], "empty.log.jsonl: no loss values yet (no training reported)"),
                       (["plot", "loss", "list.log.jsonl"], "list.log.jsonl: training log entry 1 is not a dict with an iteration")):
        assert main(argv) == 2
        one_line(capsys.readouterr().err, line)


def test_unreadable_files_say_so(here, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) in ("tone.wav", "m.npz") else real_access(path, mode, **kw))
    for argv, message in ((["train", "tone.wav", *SMALL], "tone.wav: cannot read (permission denied)"),
                          (["info", "m.npz"], "m.npz: cannot read (permission denied)")):
        assert main(argv) == 2
        one_line(capsys.readouterr().err, message)


def test_a_replaced_file_keeps_its_permissions(here):
    os.chmod("m.npz", 0o640)
    blekota.Model(hidden=4, layers=1, seed=3).save("m.npz")
    assert os.stat("m.npz").st_mode & 0o777 == 0o640


def test_a_save_removes_what_a_killed_save_left_and_nothing_else(tmp_path):
    model = blekota.Model(hidden=8, layers=1, seed=0)
    old = time.time() - 2 * fileutil.STALE_S
    stale = tmp_path / ".voice.npz.k3j_9x0q.tmp"  # a temporary file's name for a write of voice.npz
    fresh = tmp_path / ".voice.npz.ab12cd34.tmp"  # another process writing voice.npz now
    others = [tmp_path / ".other.npz.k3j_9x0q.tmp", tmp_path / ".voice.npz.notours.tmp", tmp_path / "voice.npz.tmp"]
    for path in [stale, fresh, *others]:
        path.write_bytes(b"partial")
    for path in [stale, *others]:
        os.utime(path, (old, old))
    model.save(tmp_path / "voice.npz")
    assert not stale.exists()
    assert fresh.exists() and all(path.exists() for path in others)
    assert blekota.load(tmp_path / "voice.npz").n_params == model.n_params


@pytest.mark.parametrize("name", ["a" * 251 + ".npz", "é" * 125 + ".npz"])
def test_a_name_as_long_as_a_file_name_can_be_is_written(tmp_path, monkeypatch, name):
    """model.save and sample -o of a 250-255-byte name failed with 'File name too long': the
    temporary file beside it is named after it, 14 bytes longer."""
    model, made, opened = blekota.Model(hidden=8, layers=1, seed=0), [], os.open

    def recording(path, *args, **kwargs):
        made.append(os.path.basename(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording)
    model.save(tmp_path / name)
    temporary = [made_name for made_name in made if made_name.endswith(".tmp")][0]
    assert len(os.fsencode(temporary)) <= 255 and os.listdir(tmp_path) == [name]
    stale = tmp_path / (temporary[:-len("12345678.tmp")] + "k3j_9x0q.tmp")  # what a killed save left
    stale.write_bytes(b"partial")
    old = time.time() - 2 * fileutil.STALE_S
    os.utime(stale, (old, old))
    model.save(tmp_path / name)
    assert os.listdir(tmp_path) == [name] and blekota.load(tmp_path / name).n_params == model.n_params


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_just_after_the_temporary_file_is_made_leaves_no_file(tmp_path, monkeypatch, sig):
    made = os.open

    def made_then_signalled(path, *args, **kwargs):
        result = made(path, *args, **kwargs)
        if str(path).endswith(".tmp"):
            os.kill(os.getpid(), sig)
        return result

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open", made_then_signalled)
    # SIGINT as Python handles it even in a background job, which starts with SIGINT ignored
    previous = {number: signal.signal(number, handler)
                for number, handler in ((signal.SIGTERM, interrupt), (signal.SIGINT, signal.default_int_handler))}
    try:
        with pytest.raises(KeyboardInterrupt):
            with fileutil.open_output(tmp_path / "out.wav") as out:
                out.write(b"never")
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert os.listdir(tmp_path) == []


def test_sound_that_would_not_fit_on_the_disk_is_refused_before_any_work(here, monkeypatch, capsys):
    free = 10_000
    monkeypatch.setattr(fileutil.shutil, "disk_usage", lambda folder: type("Usage", (), {"free": free})())
    # 3 takes of 44 + 2 x 2000 bytes: 12,132 bytes in one folder, 10,000 free
    assert main(["sample", "m.npz", "-n", "2000", "--takes", "3", "-o", "t.wav", "--threads", "1"]) == 2
    one_line(capsys.readouterr().err, f"{os.path.realpath(here)}: 11.8 KiB to write, 9.8 KiB free there")
    assert not list(here.glob("t_*.wav"))
    assert main(["sample", "m.npz", "-n", "2000", "--takes", "2", "-o", "t.wav", "--threads", "1"]) == 0
    fileutil.check_room(["-", os.devnull], 10**15)  # streams take what they are given
