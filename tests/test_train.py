import json
import os
import signal
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import blekota
from blekota import agreement, train
from blekota.cli import main
from blekota.train import Trainer


def wobbly_sine(n: int = 12000, fs: int = 8000) -> np.ndarray:
    t = np.arange(n) / fs
    return (0.6 * np.sin(2 * np.pi * 300 * t + 3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def small_trainer(tmp_path, **kwargs) -> Trainer:
    model = blekota.Model(hidden=32, layers=1, seed=0, dtype=kwargs.pop("dtype", "float32"), threads=1)
    audio = kwargs.pop("audio", None)
    options = dict(seq_length=20, batch_size=8, optimizer="adam", lr=3e-3, name="t",
                   checkpoint_every=0, directory=tmp_path)
    options.update(kwargs)
    return Trainer(model, wobbly_sine() if audio is None else audio, **options)


def test_training_lowers_the_loss(tmp_path):
    reports = []
    trainer = small_trainer(tmp_path, callback=reports.append, report_every=25)
    result = trainer.train(300)
    losses = [r.loss for r in reports if r.kind == "progress"]
    assert losses[0] > 4.5  # starts near log(256) = 5.55
    assert losses[-1] < losses[0] - 1.5, losses  # a clear drop
    assert result.iterations == 300 and not result.interrupted
    assert result.path == tmp_path / "t_300.npz" and result.path.exists()


@pytest.mark.parametrize("optimizer", ["rmsprop", "adagrad", "adam"])
def test_every_optimizer_learns(tmp_path, optimizer):
    trainer = small_trainer(tmp_path, optimizer=optimizer, lr=1e-2 if optimizer == "adagrad" else 3e-3)
    first = trainer.step()
    for _ in range(80):
        last = trainer.step()
    assert last < first - 0.5


def test_windows_continue_and_epochs_reset(tmp_path):
    audio = np.linspace(-0.9, 0.9, 8 * 61, dtype=np.float32)
    trainer = small_trainer(tmp_path, audio=audio, seq_length=20, val_fraction=0, random_gain_db=0)
    assert trainer.layout.starts.shape == (8, 3)  # (488 - 1) // 20 = 24 windows in 8 streams
    windows = [trainer._next_window()]
    trainer.step()
    windows.append(trainer._next_window())
    np.testing.assert_array_equal(windows[0][-1], windows[1][0])  # next window continues
    assert trainer.epoch == 0
    trainer.step()
    trainer.step()
    assert trainer.position == 3 and trainer.epoch == 0
    trainer.step()
    assert trainer.epoch == 1 and trainer.position == 1


def test_too_short_audio_says_the_minimum(tmp_path):
    with pytest.raises(blekota.AudioError, match=r"too short: 100 samples, need at least 169 \(0.02 s at 8000 Hz\)"):
        small_trainer(tmp_path, audio=np.zeros(100, np.float32))


def test_checkpoints_and_final_model(tmp_path):
    trainer = small_trainer(tmp_path, checkpoint_every=4, checkpoint_sound=100)
    trainer.train(10)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["t.log.jsonl", "t_10.npz", "t_4.npz", "t_4.wav", "t_8.npz", "t_8.wav", "t_best.npz"]
    assert blekota.load(tmp_path / "t_10.npz").info["iterations"] == 10


def test_checkpoints_only_at_the_end_have_their_sound(tmp_path):
    trainer = small_trainer(tmp_path, checkpoint_every=0, checkpoint_sound=100)
    trainer.train(5)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["t.log.jsonl", "t_5.npz", "t_5.wav", "t_best.npz"]
    assert blekota.load_audio(tmp_path / "t_5.wav")[0].size == 100


def test_a_run_stopped_by_time_with_checkpoints_only_at_the_end_has_its_sound(tmp_path, monkeypatch):
    readings = iter(np.arange(0.0, 1e4, 1.0))
    monkeypatch.setattr(agreement, "time", SimpleNamespace(perf_counter=lambda: float(next(readings))))
    trainer = small_trainer(tmp_path, checkpoint_every=0, checkpoint_sound=100)
    result = trainer.train(1000, max_seconds=5.0)
    assert not result.interrupted and 0 < result.iterations < 1000
    n = result.iterations
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.log.jsonl", f"t_{n}.npz", f"t_{n}.wav", "t_best.npz"]


def test_a_trainer_of_what_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(blekota.ConfigError, match="model must be a blekota Model, got str"):
        Trainer("voice.npz", wobbly_sine(), directory=tmp_path)


def test_interrupt_from_callback_after_the_last_update_still_saves(tmp_path):
    def stop_at_validation(report):  # the only validation is the final one, after the last update
        if report.kind in ("validation", "done"):
            raise KeyboardInterrupt

    trainer = small_trainer(tmp_path, callback=stop_at_validation, val_every=0)
    result = trainer.train(5)
    assert result.iterations == 5 and result.path == tmp_path / "t_5.npz"
    assert blekota.load(result.path).info["iterations"] == 5


@pytest.mark.parametrize("iterations,val_every", [(6, 3), (5, 0)])
def test_ctrl_c_cuts_a_validation_short_and_still_saves(tmp_path, monkeypatch, iterations, val_every):
    windows = []
    window, validation_sums = blekota.Model.window, train.validation_sums

    def validating(*args):
        windows.append(0)
        return validation_sums(*args)

    def ctrl_c_at_the_second_validation_window(self, *args, **kwargs):
        if windows:
            windows.append(1)
            if len(windows) == 3:
                os.kill(os.getpid(), signal.SIGINT)
        return window(self, *args, **kwargs)

    monkeypatch.setattr(train, "validation_sums", validating)
    monkeypatch.setattr(blekota.Model, "window", ctrl_c_at_the_second_validation_window)
    reports = []
    trainer = small_trainer(tmp_path, audio=wobbly_sine(80_000), val_every=val_every, checkpoint_sound=800,
                            callback=reports.append)
    result = trainer.train(iterations)
    assert windows == [0, 1, 1] and trainer.val_history == [] and result.iterations == (3 if val_every else 5)
    assert reports[-2].kind == "note" and reports[-2].message == f"validation at {result.iterations} left unfinished: stopping"
    assert blekota.load(result.path).info["iterations"] == result.iterations
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".wav"] == []  # no checkpoint sound either


def test_a_stop_asked_at_a_progress_report_still_logs_that_report(tmp_path):
    def stop_at_8(report):
        if report.kind == "progress" and report.iteration == 8:
            raise KeyboardInterrupt

    trainer = small_trainer(tmp_path, callback=stop_at_8, report_every=4, val_every=0)
    result = trainer.train(100)
    assert result.interrupted and result.iterations == 8
    logged = [json.loads(line) for line in (tmp_path / "t.log.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in logged] == [4, 8] and logged[-1]["train_loss"] == trainer.history[-1][1]


def test_interrupt_from_callback_leaves_consistent_model(tmp_path):
    def stop_at_7(report):
        if report.kind == "progress" and report.iteration == 7:
            raise KeyboardInterrupt

    trainer = small_trainer(tmp_path, callback=stop_at_7, report_every=1)
    result = trainer.train(100)
    assert result.interrupted and result.iterations == 7
    loaded = blekota.load(result.path)
    assert result.path.name == "t_7.npz"
    np.testing.assert_array_equal(loaded.params, trainer.model.params)
    # the saved model continues exactly like the in-memory one
    resumed = Trainer.from_checkpoint(result.path, audio=wobbly_sine(), threads=1)
    assert resumed.iteration == 7
    assert resumed.step() == pytest.approx(trainer.step(), rel=1e-6)


def test_resume_keeps_optimizer_state_and_position(tmp_path):
    trainer = small_trainer(tmp_path, dtype="float64", optimizer="rmsprop")
    trainer.train(5)
    resumed = Trainer.from_checkpoint(tmp_path / "t_5.npz", audio=wobbly_sine(), threads=1)
    np.testing.assert_array_equal(resumed.optimizer.m, trainer.optimizer.m)
    assert resumed.position == trainer.position and resumed.iteration == 5
    np.testing.assert_array_equal(resumed.h, trainer.h)
    for _ in range(3):
        assert resumed.step() == trainer.step()
    np.testing.assert_array_equal(resumed.model.params, trainer.model.params)


def test_resuming_an_older_checkpoint_warns_of_the_later_files_it_writes_over(tmp_path):
    small_trainer(tmp_path, checkpoint_every=4, checkpoint_sound=100).train(10)
    with pytest.warns(blekota.OverwriteWarning) as caught:
        resumed = Trainer.from_checkpoint(tmp_path / "t_4.npz", audio=wobbly_sine(), threads=1)
    assert [str(warning.message) for warning in caught] == [
        f"{tmp_path}: holds this run's files from after iteration 4 (t_8.npz, t_10.npz, t_best.npz and 1 more), "
        f"which training from {tmp_path / 't_4.npz'} writes over"]
    assert caught[0].filename == __file__  # the caller's line
    assert resumed.iteration == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer.from_checkpoint(tmp_path / "t_10.npz", audio=wobbly_sine(), threads=1)  # the newest: nothing later
        Trainer.from_checkpoint(tmp_path / "t_4.npz", audio=wobbly_sine(), threads=1, name="branch")  # branches off
        Trainer.from_checkpoint(tmp_path / "t_4.npz", audio=wobbly_sine(), threads=1, directory=tmp_path / "elsewhere")


def test_training_from_a_file_records_it(tmp_path):
    path = blekota.save_wav(tmp_path / "sine.wav", wobbly_sine(), 8000)
    trainer = small_trainer(tmp_path, audio=str(path))
    trainer.train(2)
    info = blekota.load(tmp_path / "t_2.npz").info
    assert info["training_files"] == [str(path)]
    assert info["trainer"]["seq_length"] == 20


def test_defaults_are_the_default_preset(tmp_path):
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    trainer = Trainer(model, wobbly_sine(), seq_length=20, batch_size=4, directory=tmp_path)
    assert (trainer.optimizer.name, trainer.optimizer.lr) == ("adam", blekota.PRESETS["default"]["lr"])
    assert trainer.schedule.name == "plateau"
    unvalidated = Trainer(model, wobbly_sine(), seq_length=20, batch_size=4, val_fraction=0, directory=tmp_path)
    assert unvalidated.schedule.name == "constant"  # plateau needs validation


def test_original_preset_trains_like_the_original(tmp_path):
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    trainer = Trainer(model, wobbly_sine(), seq_length=20, batch_size=4, directory=tmp_path,
                      **blekota.PRESETS["original"])
    assert (trainer.optimizer.name, trainer.optimizer.lr, trainer.schedule.name) == ("rmsprop", 2e-3, "constant")


def scripted_validations(monkeypatch, trainer: Trainer, losses: list[float]) -> None:
    """Make trainer's validations return these held-out losses in turn."""
    script = iter(losses)
    monkeypatch.setattr(trainer, "_held_out_loss", lambda abandon: next(script))


def test_stop_after_ends_the_run_when_the_held_out_loss_stops_bettering_its_best(tmp_path, monkeypatch):
    reports = []
    trainer = small_trainer(tmp_path, val_every=5, stop_after=2, callback=reports.append, checkpoint_every=0)
    scripted_validations(monkeypatch, trainer, [3.0, 2.0, 2.5, 1.9, 2.2, 2.1, 1.0])
    result = trainer.train(100)
    assert (result.iterations, trainer.iteration, result.interrupted) == (30, 30, False)
    assert [row[0] for row in trainer.val_history] == [5, 10, 15, 20, 25, 30]  # no second validation at the end
    assert result.path == tmp_path / "t_30.npz" and result.path.exists()
    assert blekota.load(tmp_path / "t_best.npz").info["iterations"] == 20
    notes = [r.message for r in reports if r.kind == "note" and "bettered" in r.message]
    assert notes == ["the held-out loss has not bettered its best, 1.9000 at iteration 20, in 2 validations: stopping"]
    assert reports[-1].kind == "done" and reports[-1].path == result.path


def test_stop_after_zero_never_stops_early(tmp_path, monkeypatch):
    trainer = small_trainer(tmp_path, val_every=5)
    scripted_validations(monkeypatch, trainer, [1.0] + [2.0] * 10)
    assert trainer.train(40).iterations == 40


def test_a_resumed_run_counts_the_validations_since_its_best_on(tmp_path, monkeypatch):
    trainer = small_trainer(tmp_path, val_every=5, stop_after=3)
    scripted_validations(monkeypatch, trainer, [2.0, 2.5, 2.6])
    trainer.train(12)  # validations at 5 and 10 (one since the best), then one at the end, which does not count
    resumed = Trainer.from_checkpoint(tmp_path / "t_12.npz", audio=wobbly_sine(), threads=1)
    assert (resumed.stop_after, resumed.stale_validations) == (3, 1)
    scripted_validations(monkeypatch, resumed, [2.7, 2.8, 1.0])
    assert resumed.train(100).iterations == 8  # stale at 15 and 20: three in a row


@pytest.mark.parametrize("change", [{"audio": wobbly_sine(12000) + 0.01}, {"val_fraction": 0.1}, {"set_audio": True}])
def test_resumed_on_other_held_out_sound_the_best_and_its_count_start_afresh(tmp_path, monkeypatch, capsys, change):
    """Held-out losses of other sound are not compared with the best of the sound before: it
    neither stops the run (stop_after), lowers the rate (plateau) nor keeps NAME_best."""
    trainer = small_trainer(tmp_path, val_every=5, stop_after=2, schedule="plateau")
    scripted_validations(monkeypatch, trainer, [1.0, 1.5, 1.6])
    trainer.train(12)
    assert trainer.stale_validations == 1 and trainer.schedule.bad == 1
    audio = change.get("audio", wobbly_sine())
    options = {key: value for key, value in change.items() if key == "val_fraction"}
    resumed = Trainer.from_checkpoint(tmp_path / "t_12.npz", audio=audio, threads=1, **options)
    if "set_audio" in change:
        assert resumed.best_val_loss == 1.0
        resumed.set_audio(wobbly_sine(12000) + 0.01)
    assert (resumed.best_val_loss, resumed.stale_validations, resumed.schedule.bad) == (None, 0, 0)
    scripted_validations(monkeypatch, resumed, [3.0, 2.9, 2.8, 2.75, 2.7])
    assert resumed.train(20).iterations == 20 and resumed.optimizer.lr == 3e-3
    assert resumed.best_val_loss == 2.7 == blekota.load(tmp_path / "t_best.npz").info["best_val_loss"]
    assert main(["info", str(tmp_path / "t_32.npz")]) == 0  # the best NAME_best.npz holds
    assert "val loss:    first 1.0000, last 2.7000, best 2.7000 at iteration 32 " in capsys.readouterr().out


def test_resumed_on_the_same_sound_the_best_goes_on(tmp_path, monkeypatch):
    trainer = small_trainer(tmp_path, val_every=5, stop_after=2)
    scripted_validations(monkeypatch, trainer, [1.0, 1.5, 1.6])
    trainer.train(12)
    resumed = Trainer.from_checkpoint(tmp_path / "t_12.npz", audio=wobbly_sine(), threads=1, seq_length=10)
    assert not resumed.continues_data and (resumed.best_val_loss, resumed.stale_validations) == (1.0, 1)


def test_stop_after_needs_validations(tmp_path):
    with pytest.raises(blekota.ConfigError, match=r"stop_after 3 \(train --stop-after\) counts validations: val_fraction and val_every"):
        small_trainer(tmp_path, val_fraction=0, stop_after=3)
    with pytest.raises(blekota.ConfigError, match="stop_after 3 .* counts validations"):
        small_trainer(tmp_path, val_every=0, stop_after=3)


def test_a_new_trainer_warns_of_an_earlier_runs_files_it_writes_over(tmp_path):
    small_trainer(tmp_path, checkpoint_every=4).train(8)
    with pytest.warns(blekota.OverwriteWarning) as caught:
        small_trainer(tmp_path)  # a new model, the same name and folder
    assert [str(warning.message) for warning in caught] == [
        f"{tmp_path}: holds this run's files from after iteration 0 (t_4.npz, t_8.npz, t_best.npz), "
        "which training from a model at iteration 0 writes over"]
    assert caught[0].filename == __file__  # the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_trainer(tmp_path, name="other")
        small_trainer(tmp_path, directory=tmp_path / "elsewhere")


def test_a_run_that_trains_over_a_history_drops_its_log_lines(tmp_path):
    small_trainer(tmp_path, checkpoint_every=4, report_every=2).train(8)
    log = tmp_path / "t.log.jsonl"
    assert [record["iteration"] for record in blekota.trainlog.read_log(log)] == [2, 4, 6, 8]
    with pytest.warns(blekota.OverwriteWarning):
        resumed = Trainer.from_checkpoint(tmp_path / "t_4.npz", audio=wobbly_sine(), threads=1, report_every=2)
    resumed.train(2)
    assert [record["iteration"] for record in blekota.trainlog.read_log(log)] == [2, 4, 6]  # the 6 and 8 of the history trained over went
    with pytest.warns(blekota.OverwriteWarning):
        small_trainer(tmp_path, report_every=2).train(2)  # a new model of the name
    assert [record["iteration"] for record in blekota.trainlog.read_log(log)] == [2]


def test_a_schedule_whose_floor_is_the_learning_rate_is_told(tmp_path):
    with pytest.warns(blekota.BlekotaWarning, match=r"^the step schedule's min_lr 0.01 \(train --min-lr\) is not below the "
                                                     r"learning rate 0.003: it never lowers it$"):
        small_trainer(tmp_path, schedule=blekota.Step(min_lr=0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_trainer(tmp_path, schedule=blekota.Step(min_lr=1e-4))
