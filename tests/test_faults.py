"""A third round of bad input and faults (issue 19, item 11): names read from files, paths that
collide, numbers at the edges, metadata of every wrong type, diverging runs, faults mid-write.
Each ends in one line and exit status 2, or works; nothing blekota did not write is replaced."""

import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from test_modelfile import rewrite
from test_robustness import SMALL, one_line, tone

import blekota
from blekota.cli import main


@pytest.fixture
def here(tmp_path, monkeypatch):
    """tmp_path as the current folder, with tone.wav and t_1.npz, a tiny model trained on it."""
    monkeypatch.chdir(tmp_path)
    blekota.save_wav("tone.wav", tone(), 8000)
    assert main(["train", "tone.wav", *SMALL, "--model-name", "t", "-q"]) == 0
    return tmp_path


def status(argv: list[str]) -> int:
    """main's exit status, also when argparse refuses the arguments."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def with_info(path, out, **changes):
    """Copy the model file at path to out with info.trainer's fields changed."""
    return rewrite(path, out, lambda meta: meta["info"]["trainer"].update(changes))


# -- names read from files --------------------------------------------------------------------------


def test_a_stored_name_never_leads_out_of_the_folder(here, capsys):
    os.mkdir("run")
    with_info("t_1.npz", "run/evil.npz", name="../escaped/evil")
    assert main(["train", "--resume", "run/evil.npz", "tone.wav", "--iterations", "1", "-q"]) == 2
    one_line(capsys.readouterr().err, "run/evil.npz: corrupted (info.trainer.name is not a plain file name (no folder))")
    assert not os.path.exists("escaped") and sorted(os.listdir("run")) == ["evil.npz"]


@pytest.mark.parametrize("name", ["../escaped/x", "run/../../escaped/x", "{here}/escaped/x"])
def test_a_model_name_never_leads_out_of_the_folder(here, capsys, name):
    os.mkdir("run")
    name = name.format(here=here)
    for resume in ([], ["--resume", "t_1.npz"]):
        argv = ["train", *resume, "tone.wav", *SMALL, "--out-dir", "run", "--model-name", name, "-q"]
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        one_line(capsys.readouterr().err, f"argument --model-name: expected a file name prefix of at most 200 bytes, "
                                          f"optionally after a relative folder without '..' (foo/bar), got {name!r}")
    assert not os.path.exists("escaped") and os.listdir("run") == []


# -- paths that collide -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["sample", "t_1.npz", "-o", "x.wav", "--heatmap", "x.wav"], "x.wav: given as both -o and --heatmap; each needs its own file"),
        (["sample", "t_1.npz", "-o", "x.wav", "--heatmap", "./x.wav"], "x.wav: given as both -o and --heatmap"),
        (["sample", "t_1.npz", "-o", "link.wav", "--heatmap", "x.wav"], "link.wav (-o) and x.wav (--heatmap) are one file; each needs its own"),
        (["sample", "t_1.npz", "-o", "t_1.npz", "--force"], "t_1.npz: is the MODEL this reads; give -o another file"),
        (["sample", "t_1.npz", "--hint", "tone.wav", "-o", "tone.wav", "--force"], "tone.wav: is the --hint this reads"),
        (["plot", "loss", "t_1.npz", "-o", "t_1.npz", "--force"], "t_1.npz: is the MODEL_OR_LOG this reads"),
        (["plot", "compare", "tone.wav", "tone.wav", "-o", "hard.wav", "--force"], "hard.wav: is the TRAINING_SOUND this reads"),
        (["export", "t_1.npz", "-o", "t_1.npz", "--force"], "t_1.npz: is the MODEL this reads"),
    ],
)
def test_two_uses_of_one_file_are_refused(here, capsys, argv, message):
    os.symlink("x.wav", "link.wav")
    os.link("tone.wav", "hard.wav")
    before = {name: os.lstat(name).st_mtime_ns for name in os.listdir(here)}
    assert main(argv) == 2
    one_line(capsys.readouterr().err, message)
    assert {name: os.lstat(name).st_mtime_ns for name in os.listdir(here)} == before


def test_a_command_suggested_for_a_name_starting_with_a_dash_runs_as_given(here, capsys):
    os.rename("tone.wav", "-tone.wav")
    assert main(["train", "./-tone.wav", *SMALL, "-q"]) == 0
    assert main(["train", "./-tone.wav", *SMALL, "-q"]) == 2
    one_line(capsys.readouterr().err, "go on with it (train --resume ./-tone_1.npz)")  # not read as an option
    assert main(["sample", "./-tone.wav"]) == 2
    one_line(capsys.readouterr().err, "(to train a model on it: python -m blekota train ./-tone.wav)")


def test_a_name_with_a_newline_or_an_escape_sequence_is_told_in_one_line(here, capsys):
    with open("g\nh.npz", "w") as text:
        text.write("not a model")
    assert main(["info", "g\nh.npz"]) == 2
    one_line(capsys.readouterr().err, "g\\nh.npz: a text file, not a blekota model file")
    assert status(["info", "t_1.npz", "x\x1b[31my"]) == 2
    one_line(capsys.readouterr().err, "unrecognized arguments: x\\x1b[31my")
    warning = blekota.progress.Progress("warning", 1, 1, None, 0.0, 0.0, 0, message="g\nh.npz: could not save")
    assert blekota.console.describe(warning) == "warning: g\\nh.npz: could not save"  # training's warnings


@contextmanager
def held_by_another_process(lock: Path) -> Iterator[None]:
    """The run lock at `lock` held, as a train of that run in another process holds it."""
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; "
                               f"descriptor = os.open({str(lock)!r}, os.O_RDONLY | os.O_CREAT); "
                               "fcntl.flock(descriptor, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.kill()
        holder.wait()
        lock.unlink(missing_ok=True)  # a killed train leaves its lock file (unlocked)


def test_a_second_train_of_a_run_being_trained_in_the_folder_is_refused(here, capsys):
    before = {name: os.lstat(name).st_mtime_ns for name in os.listdir(here)}
    with held_by_another_process(here / ".t.lock"):
        for argv in (["train", "tone.wav", *SMALL, "--model-name", "t", "--force"],
                     ["train", "--resume", "t_1.npz", "--iterations", "1", "--force"]):
            assert main(argv) == 2
            one_line(capsys.readouterr().err, ".: another train of t is writing its files here now; let it "
                                             "end first, or give another --model-name")
        assert {name: os.lstat(name).st_mtime_ns for name in os.listdir(here) if name != ".t.lock"} == before
        assert main(["train", "tone.wav", *SMALL, "--model-name", "u", "-q"]) == 0  # another run beside it
        with pytest.warns(blekota.OverwriteWarning):  # the earlier run's files
            trainer = blekota.Trainer(blekota.Model(hidden=8, layers=1, seed=0), "tone.wav", name="t",
                                      directory=here, seq_length=20, batch_size=4, log=False)
        with pytest.raises(blekota.BlekotaError, match="another train of t is writing its files here now"):
            trainer.train(1)  # a Trainer, in the REPL or a program, too
    assert main(["train", "--resume", "t_1.npz", "--iterations", "1", "-q"]) == 0
    assert not os.path.exists(".t.lock") and not os.path.exists(".u.lock")


# -- numbers at the edges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--checkpoint-sound", "1e308"], "--checkpoint-sound: 1e+308 s at 8000 Hz do not fit a 16-bit wav"),
        (["--random-gain", "1e308"], "argument --random-gain: expected a number of decibels in [0, 96], got '1e308'"),
        (["--random-gain", "inf"], "argument --random-gain: expected a number of decibels in [0, 96]"),
        (["--fs", str(2**63)], "argument --fs: expected a sample rate in 1..2147483647 Hz, got '9223372036854775808'"),
        (["--lr-factor", "0"], "argument --lr-factor: expected a number in (0, 1), got '0'"),
        (["--seed", "1e308"], "argument --seed: expected an integer >= 0, got '1e308'"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    ],
)
def test_options_at_the_edge_of_the_float_range(here, capsys, argv, message):
    assert status(["train", "tone.wav", *SMALL, *argv]) == 2
    one_line(capsys.readouterr().err, message)


def test_a_step_schedule_that_underflows_stays_resumable(here):
    argv = ["--schedule", "step", "--lr-every", "1", "--lr-factor", "1e-300", "--iterations", "3", "-q"]
    assert main(["train", "tone.wav", *SMALL, "--model-name", "s", "--val-fraction", "0", *argv]) == 0
    assert blekota.load("s_3.npz").info["trainer"]["lr"] == 1e-5
    assert main(["train", "--resume", "s_3.npz", "--iterations", "1", "-q"]) == 0
    assert blekota.load("s_4.npz").info["iterations"] == 4


# -- a diverging run --------------------------------------------------------------------------------


def test_a_diverging_run_stops_in_one_line_and_keeps_the_last_good_file(here, capsys, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(here / "tmp"))  # where a rescue save would go: it must not happen
    os.mkdir("tmp")
    argv = ["train", "tone.wav", *SMALL, "--model-name", "d", "--val-fraction", "0", "--checkpoint-every", "1"]
    assert main([*argv, "--iterations", "5", "--alpha", "1e30", "-q"]) == 2
    one_line(capsys.readouterr().err, "training diverged at iteration 2: the loss became NaN or infinite at "
             "learning rate 1e+30; d_1.npz, the last file saved, is kept; a lower --alpha may help")
    assert sorted(name for name in os.listdir(here) if name.startswith("d")) == ["d_1.npz"]
    assert main(["info", "d_1.npz"]) == 0 and os.listdir("tmp") == []
    assert main([*argv, "--iterations", "3", "--alpha", "1e38", "--model-name", "e", "--checkpoint-every", "0", "-q"]) == 2
    assert "nothing was saved in this run" in capsys.readouterr().err


def test_weights_that_are_not_finite_are_never_saved(here):
    model = blekota.load("t_1.npz")
    model.params[0] = np.inf
    with pytest.raises(blekota.ModelFileError, match="bad.npz: not saved: the model's weights hold NaN or infinite values"):
        model.save("bad.npz")
    trainer = blekota.Trainer.from_checkpoint("t_1.npz", lr=1e38, checkpoint_every=0)
    with pytest.raises(blekota.TrainingDiverged, match="training diverged at iteration"):
        trainer.train(20)
    assert not os.path.exists("bad.npz") and not os.path.exists("t_2.npz")


# -- lost user data ---------------------------------------------------------------------------------


def user_sound(path, seconds: float = 2.0) -> bytes:
    blekota.save_wav(path, tone(int(8000 * seconds)), 8000)
    return open(path, "rb").read()


@pytest.mark.parametrize(
    "name,content",
    [("take_1.wav", None), ("take_2.npz", b"my notes"), ("take_best.npz", b"PK\x03\x04 some zip"),
     ("take.log.jsonl", b"my own lines\n")],
)
def test_a_run_never_replaces_what_blekota_did_not_write(here, capsys, name, content):
    """The case of train takes --model-name take --out-dir takes --checkpoint-every 1, which
    replaced a user's takes/take_1.wav with a checkpoint sound."""
    os.mkdir("takes")
    user_sound("takes/a.wav")
    path = os.path.join("takes", name)
    kept = user_sound(path) if content is None else content
    if content is not None:
        open(path, "wb").write(content)
    before = sorted(os.listdir("takes"))
    argv = ["train", "takes", *SMALL, "--model-name", "take", "--out-dir", "takes", "--iterations", "2"]
    assert main([*argv, "--checkpoint-every", "1", "--checkpoint-sound", "0.01"]) == 2
    one_line(capsys.readouterr().err, f"{path}: not a file blekota wrote, and this run would write there")
    assert sorted(os.listdir("takes")) == before and open(path, "rb").read() == kept


def test_a_run_that_saves_only_at_the_end_refuses_a_users_sound_where_its_last_sound_goes(here, capsys):
    os.mkdir("takes")
    user_sound("takes/a.wav")
    kept = user_sound("takes/take_2.wav")
    argv = ["train", "takes/a.wav", *SMALL, "--model-name", "take", "--out-dir", "takes", "--iterations", "2",
            "--checkpoint-every", "0", "--checkpoint-sound", "0.01"]
    assert main(argv) == 2
    one_line(capsys.readouterr().err, "takes/take_2.wav: not a file blekota wrote, and this run would write there")
    assert open("takes/take_2.wav", "rb").read() == kept and sorted(os.listdir("takes")) == ["a.wav", "take_2.wav"]


def test_files_blekota_wrote_are_recognised(here):
    argv = ["train", "tone.wav", *SMALL, "--model-name", "t", "--checkpoint-every", "1", "--checkpoint-sound", "0.01"]
    assert main([*argv, "--iterations", "2", "--keep", "1", "-q"]) == 2  # an earlier run's files are here
    assert main([*argv, "--iterations", "2", "--keep", "1", "-q", "--force"]) == 0  # over t_1.npz, t_best, the log
    assert blekota.audio.is_marked("t_2.wav") and blekota.load("t_2.npz").info["iterations"] == 2
    assert not os.path.exists("t_1.npz")  # pruned: it was blekota's
    open("t_0.npz", "wb").write(b"not a model")
    assert main(["train", "--resume", "t_2.npz", "--iterations", "1", "--keep", "1", "-q"]) == 0
    assert open("t_0.npz", "rb").read() == b"not a model"  # never pruned


def test_a_file_that_appears_during_a_run_is_left_alone(here, capsys):
    user = user_sound("user.wav")

    def intrude(progress):
        for name in ("t_2.wav", "t_3.npz"):
            if not os.path.exists(name):
                open(name, "wb").write(user)

    trainer = blekota.Trainer.from_checkpoint("t_1.npz", callback=intrude, checkpoint_every=1, checkpoint_sound=80)
    with pytest.raises(blekota.BlekotaError, match=r"t_3.npz: not a file blekota wrote, so it is left as it is"):
        trainer.train(2)
    assert open("t_2.wav", "rb").read() == open("t_3.npz", "rb").read() == user
    with pytest.raises(blekota.BlekotaError, match="t_3.npz: not a file blekota wrote"):  # nor a sound written
        trainer.checkpoint(10)


@pytest.mark.parametrize("link", [None, "symlink", "hardlink"])
def test_a_run_never_writes_over_a_sound_it_trains_on(here, capsys, link):
    """train take_1.wav --model-name take --checkpoint-every 1, take_1.wav a checkpoint sound of an
    earlier run (blekota's mark): the run replaced the sound it was training on with its own."""
    os.mkdir("takes")
    blekota.save_wav("takes/source.wav", tone(), 8000, mark=True)
    sound = "takes/source.wav" if link else "takes/take_1.wav"
    if link == "symlink":
        os.symlink("source.wav", "takes/take_1.wav")
    elif link == "hardlink":
        os.link("takes/source.wav", "takes/take_1.wav")
    else:
        os.replace("takes/source.wav", sound)
    kept = open(sound, "rb").read()
    argv = ["train", sound, *SMALL, "--model-name", "take", "--out-dir", "takes", "--iterations", "2"]
    assert main([*argv, "--checkpoint-every", "1", "--checkpoint-sound", "0.01"]) == 2
    one_line(capsys.readouterr().err, f"{os.path.join('takes', 'take_1.wav')}: is a sound this run trains on")
    assert open(sound, "rb").read() == kept and not os.path.exists("takes/take_1.npz")


def test_a_sound_trained_on_is_left_as_it_is_when_a_run_comes_to_write_there(here):
    blekota.save_wav("take_3.wav", tone(), 8000, mark=True)
    kept, warnings = open("take_3.wav", "rb").read(), []
    files = blekota.runfiles.RunFiles(".", "take", report=lambda kind, **what: warnings.append(what["message"]),
                                      reads=["take_3.wav"])
    assert files.save_sound_quietly(3, tone(100), 8000) is None
    assert warnings == ["take_3.wav: a sound this run trains on, so it is left as it is; training goes on"]
    assert open("take_3.wav", "rb").read() == kept
    trainer = blekota.Trainer(blekota.Model(hidden=4, layers=1), "take_3.wav", name="take", seq_length=10, batch_size=2)
    trainer.iteration = 3
    with pytest.raises(blekota.BlekotaError, match="take_3.wav: is a sound this run trains on"):
        trainer.checkpoint(80)
    assert open("take_3.wav", "rb").read() == kept and not os.path.exists("take_3.npz")


def test_a_resumed_run_that_made_no_update_leaves_the_file_it_read_as_it_was(here, capsys):
    """train --resume t_1.npz other.wav --iterations 0 (or stopped before its first update)
    rewrote t_1.npz with the other sound's data signature, position 0 and the new options: the
    checkpoint no longer went on exactly with its own sound."""
    blekota.save_wav("other.wav", tone(6000), 8000)
    kept = open("t_1.npz", "rb").read()
    assert main(["train", "--resume", "t_1.npz", "other.wav", "--iterations", "0", "--alpha", "0.5", "-q"]) == 0
    assert open("t_1.npz", "rb").read() == kept
    result = blekota.Trainer.from_checkpoint("t_1.npz", "other.wav", lr=0.5).train(0)
    assert result.path.name == "t_1.npz" and open("t_1.npz", "rb").read() == kept
    assert main(["train", "--resume", "t_1.npz", "--iterations", "0", "--out-dir", "copy", "-q"]) == 0
    assert blekota.load("copy/t_1.npz").info["iterations"] == 1  # written elsewhere: a copy as usual


def test_playback_without_a_device_keeps_a_users_last_played(here, monkeypatch):
    def no_device():
        raise blekota.PlaybackError("cannot play sound: no sound output device (test)")

    monkeypatch.setattr(blekota.audio, "sounddevice_module", no_device)
    with pytest.raises(blekota.PlaybackError, match="wrote it to last_played.wav"):
        blekota.play(tone(100))
    with pytest.raises(blekota.PlaybackError, match="wrote it to last_played.wav"):
        blekota.play(tone(200))  # its own: replaced
    os.replace("tone.wav", "last_played.wav")
    with pytest.raises(blekota.PlaybackError, match="last_played.wav here is not blekota's, so the sound was not saved"):
        blekota.play(tone(300))
    assert blekota.load_audio("last_played.wav")[0].size == 4000


# -- faults mid-write -------------------------------------------------------------------------------


def test_the_log_never_holds_half_a_line_before_a_whole_one(here, monkeypatch):
    log = here / "t.log.jsonl"
    whole = log.read_bytes()
    log.write_bytes(whole + b'{"iteration": 7, "ti')  # a crash while writing a line
    blekota.trainlog.append(log, blekota.trainlog.format_line(8, 1.0, 5.0, None, 0.004))
    records = blekota.trainlog.read_log(log)
    assert [record["iteration"] for record in records][-1] == 8 and log.read_bytes().startswith(whole)

    class Full(io.FileIO):
        def write(self, data):
            super().write(data[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

    before = log.read_bytes()
    monkeypatch.setattr(blekota.trainlog, "open", lambda path, mode, buffering: Full(path, "a+"), raising=False)
    with pytest.raises(OSError):
        blekota.trainlog.append(log, blekota.trainlog.format_line(9, 1.0, 5.0, None, 0.004))
    assert log.read_bytes() == before


# -- the interactive session ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        ("clf.checkpoint('nope')", "n must be an integer in 0..2147483615, got 'nope'"),
        ("loaded.checkpoint('nope')", "n must be an integer in 0..2147483615, got 'nope'"),
        ("save_file(123, y)", "the sound's path must be a file name (a str or a path), got 123"),
        ("save_file('x.wav', 1j)", "the sound to write must be an array of float samples"),
        ("save_file('x.wav', y, fs='a')", "a wav's sample rate must be 1..2147483647 Hz, got 'a'"),
        ("show(out=123)", "out must be a file name (a str or a path), got 123"),
        ("show(b'abc')", "sound must be a sound: an array of float samples"),
        ("play(b'x')", "the sound to play must be an array of float samples"),
        ("play('s.wav')", "play takes a sound (an array of samples), not a file name: read the file first, "
                          "y = load_file('s.wav')"),
        ("show('abc')", "show takes a sound (an array of samples), not a file name"),
        ("compare('a.wav')", "compare takes a sound (an array of samples), not a file name"),
        ("save_file('x.wav', 'y')", "save_file takes a sound (an array of samples), not a file name"),
        ("play(fs='x')", "fs must be a positive integer, got 'x'"),
    ],
)
def test_the_session_answers_bad_calls_in_one_line(here, call, message):
    """What the console shows as one line (a BlekotaError), never a traceback."""
    session, _ = blekota.open_session("tone.wav", dict(hidden=4, layers=1, threads=1),
                                      dict(seq_length=10, batch_size=2, checkpoint_every=0))
    namespace = blekota.repl.session_namespace(session)
    namespace["y"] = session.sample(50)
    namespace["loaded"] = blekota.Session(blekota.load("t_1.npz"), model_path="t_1.npz")
    with pytest.raises(blekota.BlekotaError) as error:
        eval(call, namespace)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_session_checkpoint_without_a_trainer_leaves_a_users_file(here):
    user = user_sound("t_1_1.wav")  # where a session of t_1.npz at iteration 1 writes its sound
    session = blekota.Session(blekota.load("t_1.npz"), model_path="t_1.npz")
    with pytest.raises(blekota.BlekotaError, match="t_1_1.wav: not a file blekota wrote"):
        session.checkpoint(10)
    assert open("t_1_1.wav", "rb").read() == user and not os.path.exists("t_1_1.npz")


# -- metadata of every wrong type -------------------------------------------------------------------

WRONG = [None, "x", [], {}, 10**30, -1, float("nan"), 1e308, True, "../x", [[1, None]]]


def meta_keys(meta: dict, prefix: tuple = ()) -> list[tuple]:
    """The path of every field of a model file's metadata (but those the format itself checks)."""
    keys = []
    for key, value in meta.items():
        if key not in ("format", "version", "checksum"):
            keys.append(prefix + (key,))
            if isinstance(value, dict):
                keys += meta_keys(value, prefix + (key,))
    return keys


def set_key(meta: dict, key: tuple, value) -> None:
    for part in key[:-1]:
        meta = meta[part]
    meta[key[-1]] = value


def one_line_or_works(argv, capsys) -> int:
    status = main(argv)
    err = capsys.readouterr().err
    assert status in (0, 2) and "Traceback" not in err, (argv, err)
    if status == 2:
        assert err.count("\n") == 1 and err.startswith("blekota: error: "), (argv, err)
    return status


def test_every_metadata_field_of_every_wrong_type(here, capsys):
    """Each field of a trained model's metadata (architecture, info, the trainer block, schedule,
    data signature, random state) set to null, text, a list, a mapping, huge, negative, NaN, a
    bool or a path: info, sample and train --resume work or give one line (exit 2)."""
    assert main(["train", "tone.wav", *SMALL, "--model-name", "p", "--schedule", "plateau", "-q"]) == 0
    meta = json.loads(np.load("p_1.npz")["meta"].tobytes())
    keys = meta_keys(meta)
    assert len(keys) > 40 and ("info", "trainer", "rng", "state", "inc") in keys
    refused = 0
    for key in keys:
        for value in WRONG:
            rewrite("p_1.npz", "f.npz", lambda meta: set_key(meta, key, value))
            refused += one_line_or_works(["info", "f.npz"], capsys) == 2
            if set(key) & {"lr", "rng", "seq_length", "name", "history", "schedule", "fs"} or value is None:
                one_line_or_works(["sample", "f.npz", "-n", "10", "-o", "o.wav", "--force", "--threads", "1"], capsys)
                one_line_or_works(["train", "--resume", "f.npz", "--model-name", "r", "--iterations", "1",
                                   "--threads", "1", "-q"], capsys)
                for name in os.listdir(here):
                    if name.startswith(("r_", "r.")):
                        os.unlink(name)
    assert refused > len(keys) * 3


@pytest.mark.parametrize("name", ["demo_sound.wav", "demo_generated.wav", "demo_compare.png", "demo_3.npz",
                                  "demo.log.jsonl"])
def test_the_demo_never_replaces_what_blekota_did_not_write(tmp_path, capsys, name):
    folder = tmp_path / "d"
    assert main(["demo", "--iterations", "3", "--out-dir", str(folder), "--threads", "1"]) == 0
    assert main(["demo", "--iterations", "3", "--out-dir", str(folder), "--threads", "1"]) == 0  # its own files
    capsys.readouterr()
    (folder / name).write_bytes(b"the user's own\n")
    assert main(["demo", "--iterations", "3", "--out-dir", str(folder), "--threads", "1"]) == 2
    one_line(capsys.readouterr().err, f"{folder / name}: not a file blekota wrote, and the demo would write there")
    assert (folder / name).read_bytes() == b"the user's own\n"


def test_the_demo_run_again_starts_its_log_afresh(tmp_path, capsys):
    folder = tmp_path / "d"
    for _ in range(2):
        assert main(["demo", "--iterations", "3", "--out-dir", str(folder), "--threads", "1"]) == 0
    iterations = [line["iteration"] for line in blekota.trainlog.read_log(folder / "demo.log.jsonl")]
    assert iterations == [3]  # the second demo's alone, not the first's again before it


def test_pictures_carry_blekotas_mark(tmp_path):
    picture = blekota.plot.spectrogram(tone(), 8000, out=tmp_path / "s.png")
    assert blekota.plot.is_marked_png(picture)
    (tmp_path / "other.png").write_bytes(picture.read_bytes().replace(b"blekota", b"someone"))
    assert not blekota.plot.is_marked_png(tmp_path / "other.png")
    assert not blekota.plot.is_marked_png(tmp_path / "missing.png")
