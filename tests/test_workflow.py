"""Training people can leave running: exact resume, validation, logs, --keep, failed saves,
SIGTERM, and the command line over several sounds."""

import errno
import json
import math
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

import blekota
from blekota import modelfile, trainlog
from blekota.cli import main
from blekota.schedule import Plateau
from blekota.train import Trainer


def write_sounds(folder):
    """Two short sounds: 8 kHz mono and 22.05 kHz stereo."""
    folder.mkdir(exist_ok=True)
    t8 = np.arange(4000) / 8000
    soundfile.write(str(folder / "a.wav"), 0.5 * np.sin(2 * np.pi * 300 * t8 + 2 * np.sin(2 * np.pi * 3 * t8)), 8000)
    t22 = np.arange(11025) / 22050
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 440 * t22), 0.3 * np.sin(2 * np.pi * 441 * t22)], axis=1)
    soundfile.write(str(folder / "b.wav"), stereo, 22050)
    return folder


def trainer_for(directory, sounds, **kwargs):
    model = blekota.Model(hidden=12, layers=2, seed=0, dtype="float64", threads=1)
    options = dict(seq_length=16, batch_size=6, optimizer="adam", lr=5e-3, name="t", checkpoint_every=0,
                   directory=directory, val_fraction=0.1, val_every=3, report_every=4, seed=0,
                   schedule=Plateau(patience=0, threshold=0.5, min_lr=1e-9))
    options.update(kwargs)
    return Trainer(model, sounds, **options)


def test_resume_is_exact_in_a_later_epoch(tmp_path):
    """Each epoch deals the windows another way (blekota.dataset): a run resumed in epoch 1
    deals them as the run that went straight through."""
    sounds = write_sounds(tmp_path / "sounds")
    straight = trainer_for(tmp_path / "straight", sounds, batch_size=40)
    assert straight.layout.windows_per_stream == 11 and straight.layout.left_over > 0
    straight.train(26)
    assert straight.epoch == 2
    first = trainer_for(tmp_path / "parts", sounds, batch_size=40)
    first.train(14)
    resumed = Trainer.from_checkpoint(tmp_path / "parts" / "t_14.npz", threads=1, directory=tmp_path / "parts")
    assert resumed.continues_data and resumed.epoch == 1 and resumed.position == 3
    np.testing.assert_array_equal(resumed.layout.starts, first.layout.starts)
    resumed.train(12)
    np.testing.assert_array_equal(resumed.layout.starts, straight.layout.starts)
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)
    np.testing.assert_array_equal(resumed.h, straight.h)


def test_resume_is_exact(tmp_path):
    sounds = write_sounds(tmp_path / "sounds")
    straight = trainer_for(tmp_path / "straight", sounds)
    straight.train(13)

    first = trainer_for(tmp_path / "parts", sounds)
    first.train(7)
    resumed = Trainer.from_checkpoint(tmp_path / "parts" / "t_7.npz", threads=1, directory=tmp_path / "parts")
    assert resumed.continues_data and resumed.iteration == 7 and resumed.position == first.position
    assert resumed.schedule.state_dict() == first.schedule.state_dict()
    assert resumed.val_history == first.val_history and resumed.best_val_loss == first.best_val_loss
    resumed.train(6)

    assert resumed.iteration == straight.iteration == 13 and resumed.epoch == straight.epoch
    assert resumed.optimizer.lr == straight.optimizer.lr < 5e-3  # the plateau schedule acted
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)
    np.testing.assert_array_equal(resumed.optimizer.v, straight.optimizer.v)
    np.testing.assert_array_equal(resumed.h, straight.h)


def test_resume_on_other_data_starts_at_its_beginning(tmp_path):
    sounds = write_sounds(tmp_path / "sounds")
    trainer_for(tmp_path, sounds).train(2)
    resumed = Trainer.from_checkpoint(tmp_path / "t_2.npz", audio=sounds / "a.wav", threads=1, directory=tmp_path)
    assert not resumed.continues_data and resumed.position == 0 and resumed.iteration == 2


def test_validation_history_best_model_and_log(tmp_path):
    sounds = write_sounds(tmp_path / "sounds")
    reports = []
    # as recorded: in 7 iterations random gain would not yet take the loss below uniform's
    trainer = trainer_for(tmp_path, sounds, callback=reports.append, schedule="constant", random_gain_db=0)
    result = trainer.train(7)
    info = blekota.load(result.path).info
    assert [row[0] for row in info["val_history"]] == [3, 6, 7]  # every 3 and at the end
    assert info["best_val_loss"] == min(row[1] for row in info["val_history"]) == trainer.best_val_loss
    assert result.val_loss == info["val_history"][-1][1] < math.log(256)
    validations = [r for r in reports if r.kind == "validation"]
    assert validations[-1].val_bits == pytest.approx(result.val_loss / math.log(2))
    best = blekota.load(tmp_path / "t_best.npz")
    assert best.info["best_val_loss"] == trainer.best_val_loss
    assert best.info["iterations"] == info["val_history"][int(np.argmin([r[1] for r in info["val_history"]]))][0]

    records = trainlog.read_log(tmp_path / "t.log.jsonl")
    assert all(list(record) == ["iteration", "time", "train_loss", "val_loss", "lr"] for record in records)
    assert [(r["iteration"], r["train_loss"] is None, r["val_loss"] is None) for r in records] == [
        (3, True, False), (4, False, True), (6, True, False), (7, False, False)]
    assert all(r["lr"] == 5e-3 and r["time"] >= 0 for r in records)
    assert records[1]["train_loss"] == info["history"][0][1]


def test_keep_only_the_newest_checkpoints(tmp_path):
    sounds = write_sounds(tmp_path / "sounds")
    (tmp_path / "t_100.npz").write_bytes(b"from another run: left alone")
    trainer = trainer_for(tmp_path, sounds, checkpoint_every=2, keep=2, val_every=4)
    trainer.train(9)
    names = sorted(p.name for p in tmp_path.glob("t_*.npz"))
    assert names == ["t_100.npz", "t_8.npz", "t_9.npz", "t_best.npz"]


def failing_savez(*args, **kwargs):
    out = args[0]
    out.write(b"PK half a file")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_interrupted_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    sounds = write_sounds(tmp_path / "sounds")
    trainer = trainer_for(tmp_path, sounds, val_fraction=0, schedule="constant")
    trainer.train(2)
    path = tmp_path / "t.npz"
    trainer.save(path)
    before = path.read_bytes()
    trainer.step()
    monkeypatch.setattr(modelfile.np, "savez", failing_savez)
    with pytest.raises(blekota.ModelFileError, match="No space left on device.*previous file is intact"):
        trainer.save(path)
    assert path.read_bytes() == before
    assert blekota.load(path).info["iterations"] == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_checkpoints_are_warnings_and_training_goes_on(tmp_path, monkeypatch):
    sounds = write_sounds(tmp_path / "sounds")
    reports = []
    trainer = trainer_for(tmp_path, sounds, checkpoint_every=2, callback=reports.append, val_fraction=0,
                          schedule="constant")
    monkeypatch.setattr(modelfile.np, "savez", failing_savez)
    with pytest.raises(blekota.ModelFileError, match="t_5.npz: could not save"):
        trainer.train(5)  # periodic saves fail and are reported; the final one raises
    assert trainer.iteration == 5
    warnings = [r.message for r in reports if r.kind == "warning"]
    assert len(warnings) == 2 and "t_2.npz" in warnings[0] and "training goes on" in warnings[0]
    monkeypatch.undo()
    assert trainer.save(tmp_path / "rescued.npz").exists()


def test_sigterm_stops_after_an_update_and_saves(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import blekota

        t = np.arange(16000) / 8000
        model = blekota.Model(hidden=16, layers=1, seed=0, threads=1)
        def report(progress):
            if progress.kind == "progress":
                print("running", progress.iteration, flush=True)
        trainer = blekota.Trainer(model, (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32),
                                  seq_length=20, batch_size=4, name="s", checkpoint_every=0,
                                  directory=sys.argv[1], callback=report, report_every=5)
        result = trainer.train(10**7)
        print("result", result.iterations, result.interrupted, result.path, flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().startswith("running")
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    _, iterations, interrupted, path = out.strip().splitlines()[-1].split()
    assert interrupted == "True" and int(iterations) >= 5
    model = blekota.load(path)
    assert path.endswith(f"s_{iterations}.npz") and model.info["iterations"] == int(iterations)


def test_cli_trains_on_a_directory_quietly_and_resumes(tmp_path, capsys):
    sounds = write_sounds(tmp_path / "sounds")
    small = ["--layers", "1", "--hidden", "8", "--seq-length", "16", "--batch-size", "4", "--threads", "1",
             "--checkpoint-every", "0", "--out-dir", str(tmp_path), "--val-every", "2"]
    assert main(["train", str(sounds), *small, "--iterations", "4", "--quiet", "--schedule", "plateau",
                 "--patience", "0"]) == 0
    assert capsys.readouterr().out == ""
    info = blekota.load(tmp_path / "sounds_4.npz").info
    assert info["training_files"] == [str(sounds / "a.wav"), str(sounds / "b.wav")]
    assert info["trainer"]["schedule"]["name"] == "plateau"
    assert main(["train", "--resume", str(tmp_path / "sounds_4.npz"), "--iterations", "2", "--threads", "1",
                 "--out-dir", str(tmp_path), "--verbose"]) == 0
    printed = capsys.readouterr().out
    assert "resuming" in printed and "changed" not in printed and "validation at 6" in printed
    lines = (tmp_path / "sounds.log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [2, 4, 6]  # train and val losses share a line
    assert blekota.load(tmp_path / "sounds_6.npz").info["trainer"]["schedule"]["name"] == "plateau"
