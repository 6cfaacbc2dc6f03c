"""Weight averaging (blekota.averaging): the average itself, what the Trainer validates and saves,
exact resume, pruning, and the command line."""

import json
import re

import numpy as np
import pytest

import blekota
from blekota import fileformat
from blekota.averaging import WeightAverage, check_decay
from blekota.cli import main
from blekota.errors import ConfigError, ModelFileError


def tone(n=30000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    return (0.4 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=n)).astype(np.float32)


def trainer(directory, ema, sound=None, **options):
    model = blekota.Model(layers=2, hidden=16, seed=1, threads=1, dtype="float64")
    return blekota.Trainer(model, tone() if sound is None else sound, seq_length=20, batch_size=4, ema=ema,
                           seed=2, directory=directory, checkpoint_every=0, log=False, **options)


def rewrite(path, change):
    """Write the model file at path again with change(info) applied to its info."""
    meta, arrays = fileformat.read(path)
    change(meta["info"])
    parts = {prefix: {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}
             for prefix in ("model/", "train/")}
    fileformat.write(path, meta["architecture"], parts["model/"], meta["info"], parts["train/"])
    return arrays


def test_the_average_is_the_weighted_mean_of_the_weights_seen():
    rng = np.random.default_rng(0)
    seen = rng.normal(size=(7, 5))
    average = WeightAverage(0.8, 5, np.float64)
    out = np.full(5, 3.0)
    assert average.weights(out) is out and (out == 3.0).all()  # nothing seen: unchanged
    for weights in seen:
        average.update(weights)
    share = 0.2 * 0.8 ** np.arange(6, -1, -1)
    np.testing.assert_allclose(average.weights(out), share @ seen / share.sum(), rtol=1e-14)
    assert average.total == pytest.approx(1 - 0.8**7, rel=1e-14)
    last = WeightAverage(0.0, 5, np.float64)
    for weights in seen:
        last.update(weights)
    np.testing.assert_array_equal(last.weights(out), seen[-1])


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan"), "0.9", True])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ConfigError, match=r"ema must be a decay in \[0, 1\)"):
        check_decay(decay)


@pytest.mark.parametrize("args,message", [
    ((3, np.int32), "dtype must be float32 or float64, got int32"),
    ((3, "bogus"), "dtype must be float32 or float64, got 'bogus'"),
    ((0, np.float32), "size must be a positive integer, got 0"),
])
def test_an_average_of_another_kind_is_refused(args, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        WeightAverage(0.5, *args)


@pytest.mark.parametrize("weights,got", [(np.zeros(3), "a (3,) float64 array"), ([1.0, 2.0, 3.0], "list"),
                                         (np.zeros(4, np.float32), "a (4,) float32 array")])
def test_weights_unlike_the_average_are_refused_in_one_line(weights, got):
    average = WeightAverage(0.5, 3, np.float32)
    with pytest.raises(ConfigError, match=rf"^weights must be a \(3,\) float32 array, as the average is, got {re.escape(got)}$"):
        average.update(weights)
    assert average.total == 0


def test_training_validates_and_saves_the_average_and_steps_the_trained_weights(tmp_path):
    plain = trainer(tmp_path / "plain", 0.0)
    trained = []
    for _ in range(12):
        plain.step()
        trained.append(plain.model.params.copy())
    averaged = trainer(tmp_path / "averaged", 0.9)
    result = averaged.train(12)
    share = 0.1 * 0.9 ** np.arange(11, -1, -1)
    expected = share @ np.array(trained) / share.sum()
    np.testing.assert_allclose(averaged.model.params, expected, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(averaged.trained_weights(), trained[-1])
    np.testing.assert_array_equal(blekota.load(result.path).params, averaged.model.params)
    plain.model.params[:] = expected
    assert averaged.validation_loss() == pytest.approx(plain.validation_loss(), rel=1e-12)
    assert averaged.val_loss == pytest.approx(plain.validation_loss(), rel=1e-12)  # the final validation
    averaged.step()  # steps on from the trained weights, not from their average
    plain.model.params[:] = trained[-1]
    plain.step()
    np.testing.assert_allclose(averaged.trained_weights(), plain.model.params, rtol=0, atol=1e-14)


def test_save_resume_and_go_on_is_the_same_run(tmp_path):
    whole = trainer(tmp_path, 0.9)
    whole.train(15)
    half = trainer(tmp_path / "half", 0.9)
    half.train(6)
    path = half.save(tmp_path / "half" / "half.npz")  # beside its own run, not over the whole run's files
    info = blekota.load(path).info["trainer"]
    assert info["ema"] == 0.9 and info["ema_total"] == pytest.approx(1 - 0.9**6)
    resumed = blekota.Trainer.from_checkpoint(path, audio=tone(), threads=1)
    assert resumed.ema == 0.9
    resumed.train(9)
    np.testing.assert_array_equal(resumed.model.params, whole.model.params)
    np.testing.assert_array_equal(resumed.trained_weights(), whole.trained_weights())
    with pytest.warns(blekota.OverwriteWarning, match="unnamed_model_15.npz"):  # the resumed run went on
        without = blekota.Trainer.from_checkpoint(path, audio=tone(), threads=1, ema=0.0)
    np.testing.assert_array_equal(without.model.params, half.trained_weights())  # goes on from them


def test_a_file_trained_before_averaging_resumes_without_it(tmp_path):
    path = trainer(tmp_path, 0.9).save(tmp_path / "fresh.npz")  # no update yet: nothing averaged
    arrays = rewrite(path, lambda info: info["trainer"].pop("ema"))
    assert not any(key.startswith("train/ema.") for key in arrays)
    assert blekota.Trainer.from_checkpoint(path, audio=tone(), threads=1).ema == 0.0


def test_a_file_with_half_an_average_is_refused_in_one_line(tmp_path):
    run = trainer(tmp_path, 0.9)
    run.train(3)
    path = run.save(tmp_path / "run.npz")
    assert "train/ema.trained" in rewrite(path, lambda info: info["trainer"].pop("ema_total"))
    with pytest.raises(ModelFileError, match=r"run.npz: corrupted \(its weight averaging's state") as error:
        blekota.Trainer.from_checkpoint(path, audio=tone(), threads=1)
    assert "\n" not in str(error.value)


def test_the_average_of_a_pruned_model_is_pruned_as_it(tmp_path):
    run = trainer(tmp_path, 0.9, density=0.25, prune_start=2, prune_end=6, prune_every=2)
    run.train(10)
    pruned = run.trained_weights() == 0
    assert pruned.sum() > 1000
    assert (run.model.params[pruned] == 0).all()  # the average holds no trace of what was pruned
    averaged_density = blekota.sparsity.block_density(run.model)
    run.model.params[:] = run.trained_weights()
    assert averaged_density == blekota.sparsity.block_density(run.model) < 0.5


def test_cli_trains_with_the_presets_average_and_without_it(tmp_path, capsys):
    sound = tmp_path / "tone.wav"
    blekota.save_wav(sound, tone(12000), 8000)
    common = ["--hidden", "16", "--layers", "1", "--seq-length", "20", "--batch-size", "4", "--iterations", "3"]
    assert main(["train", str(sound), *common, "--out-dir", str(tmp_path / "a")]) == 0
    assert main(["info", str(tmp_path / "a" / "tone_3.npz")]) == 0
    assert "weights averaged (ema 0.99)" in capsys.readouterr().out
    assert main(["train", str(sound), *common, "--ema", "0", "--out-dir", str(tmp_path / "b")]) == 0
    assert main(["info", str(tmp_path / "b" / "tone_3.npz")]) == 0
    assert "weights as trained" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "b" / "tone_3.npz"), "--ema", "0.5", "--iterations", "2"]) == 0
    assert blekota.load(tmp_path / "b" / "tone_5.npz").info["trainer"]["ema"] == 0.5
    assert main(["train", str(sound), *common, "--preset", "original", "--out-dir", str(tmp_path / "c")]) == 0
    assert blekota.load(tmp_path / "c" / "tone_3.npz").info["trainer"]["ema"] == 0.0
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(["train", str(sound), *common, "--ema", "1"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--ema" in err and "a decay in [0, 1)" in err and "Traceback" not in err
    log = (tmp_path / "a" / "tone.log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["val_loss"] == pytest.approx(blekota.load(tmp_path / "a" / "tone_3.npz").info["val_history"][-1][1])
