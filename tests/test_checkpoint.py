"""blekota.checkpoint: the training state beside the weights, written, checked and restored."""

import json

import numpy as np
import pytest

import blekota
from blekota import checkpoint
from blekota.train import Trainer


def sound() -> np.ndarray:
    return (0.5 * np.sin(np.arange(6000) * 0.07)).astype(np.float32)


def trained(tmp_path, iterations: int = 3) -> Trainer:
    model = blekota.Model(hidden=6, layers=1, seed=0)
    trainer = Trainer(model, sound(), seq_length=10, batch_size=4, name="t", directory=tmp_path,
                      checkpoint_every=0, seed=1, log=False)
    for _ in range(iterations):
        trainer.step()
    return trainer


def test_write_check_restore_round_trip(tmp_path):
    trainer = trained(tmp_path)
    info = json.loads(json.dumps(checkpoint.info(trainer)))  # as a model file holds it
    arrays = checkpoint.training_arrays(trainer.h.copy(), trainer.optimizer.state_dict())
    assert checkpoint.problem(info) is None
    assert set(arrays) == {"h"} | {checkpoint.OPTIM + slot for slot in trainer.optimizer.slots}

    model = blekota.Model.from_state_dict(trainer.model.state_dict(), fs=trainer.model.fs)
    model.info = info  # as reading the model file sets it: the counters and history
    options = checkpoint.resume_options(tmp_path / "t_3.npz", info, {"log": False})
    assert options["directory"] == tmp_path and options["name"] == "t" and options["seq_length"] == 10
    resumed = Trainer(model, sound(), **options)
    checkpoint.restore(resumed, tmp_path / "t_3.npz", info, arrays)

    assert resumed.iteration == 3 and resumed.continues_data and resumed.position == trainer.position
    np.testing.assert_array_equal(resumed.h, trainer.h)
    assert resumed.optimizer.t == trainer.optimizer.t and resumed.optimizer.lr == trainer.optimizer.lr
    for slot in trainer.optimizer.slots:
        np.testing.assert_array_equal(getattr(resumed.optimizer, slot), getattr(trainer.optimizer, slot))
    assert resumed.rng.bit_generator.state == trainer.rng.bit_generator.state
    assert resumed.schedule.state_dict() == trainer.schedule.state_dict()
    assert resumed.random_gain_db == trainer.random_gain_db
    for _ in range(2):
        assert resumed.step() == trainer.step()


def test_other_data_restores_all_but_the_position(tmp_path):
    trainer = trained(tmp_path)
    info = checkpoint.info(trainer)
    arrays = checkpoint.training_arrays(trainer.h, trainer.optimizer.state_dict())
    other = Trainer(trainer.model, sound()[::-1].copy(), **checkpoint.resume_options(tmp_path / "t.npz", info, {}))
    checkpoint.restore(other, tmp_path / "t.npz", info, arrays)
    assert not other.continues_data and other.position == 0 and other.optimizer.t == 3


@pytest.mark.parametrize(
    "trainer_block,message",
    [
        ({"t": -1}, "info.trainer.t is not a count"),
        ({"position": 1.5}, "info.trainer.position is not a count"),
        ({"clip": "5"}, "info.trainer.clip is not a positive number"),
        ({"rng": [1]}, "info.trainer.rng is not a mapping"),
        ({"lr": 0.0}, "info.trainer.lr is not a positive number"),
        ({"seq_length": None}, "info.trainer.seq_length is not a positive integer"),
        ({"val_fraction": float("nan")}, "info.trainer.val_fraction is not a number in [0, 1)"),
        ({"random_gain_db": 1e308}, "info.trainer.random_gain_db is not a number of decibels in [0, 96]"),
        ({"checkpoint_sound": 10**12}, "info.trainer.checkpoint_sound is not a count of samples a wav holds"),
        ({"name": "../escaped/evil"}, "info.trainer.name is not a plain file name (no folder)"),
        ({"name": "x" * 201}, "info.trainer.name is not a plain file name (no folder)"),
        ({"schedule": None}, "info.trainer.schedule is not a mapping"),
        ({"bf16": 1}, "info.trainer.bf16 is not true, false or 'auto'"),
        ({"bf16": "yes"}, "info.trainer.bf16 is not true, false or 'auto'"),
        ({"products": "int8"}, "info.trainer.products is not 'bfloat16' or 'float32'"),
    ],
)
def test_problem_names_the_field(trainer_block, message):
    assert checkpoint.problem({"trainer": trainer_block}) == message


def test_bad_state_is_a_model_file_error(tmp_path):
    trainer = trained(tmp_path)
    info = checkpoint.info(trainer)
    info["trainer"]["schedule"] = {"name": "step", "every": 0}
    with pytest.raises(blekota.ModelFileError, match="m.npz: bad learning-rate schedule state"):
        checkpoint.resume_options("m.npz", info, {})
    info = checkpoint.info(trainer)
    info["trainer"]["rng"] = {"bit_generator": "nope"}
    with pytest.raises(blekota.ModelFileError, match=r"m.npz: corrupted \(its random generator state\)"):
        checkpoint.restore(trainer, "m.npz", info, checkpoint.training_arrays(trainer.h, trainer.optimizer.state_dict()))


def test_the_original_pickles_write_the_same_format(tmp_path):
    block = checkpoint.trainer_block("rmsprop", 5.0, 7, lr=0.002)
    assert block == {"optimizer": "rmsprop", "clip": 5.0, "t": 7, "lr": 0.002}
    assert checkpoint.training_arrays(None, {"name": "rmsprop", "m": np.zeros(3)}).keys() == {"optim.m"}


def test_resume_rules(tmp_path):
    model = blekota.Model(hidden=4, layers=1, seed=0)
    checkpoint.check_architecture("m.npz", model, {"--hidden": 4, "fs": 8000})
    with pytest.raises(blekota.BlekotaError, match="m.npz: a 1x4 float32 model at 8000 Hz; --layers 2 does not fit it"):
        checkpoint.check_architecture("m.npz", model, {"--layers": 2})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.wav").touch()
    info = {"training_files": ["a.wav"]}
    assert checkpoint.training_sounds(tmp_path / "run" / "m.npz", info) == [tmp_path / "run" / "a.wav"]
    assert checkpoint.resume_sounds(tmp_path / "m.npz", info, ["b.wav"]) == ["b.wav"]
    with pytest.raises(blekota.BlekotaError, match="m.npz: was trained on a.wav, which is not here .*; give it"):
        checkpoint.resume_sounds(tmp_path / "m.npz", info, advice="give it")


def test_a_file_model_save_wrote_trains_on_with_a_fresh_optimizer(tmp_path):
    trainer = trained(tmp_path)
    model = blekota.load(trainer.save(tmp_path / "t_3.npz"))
    model.int8 = True  # as README suggests: a saved model file remembers it
    model.save(tmp_path / "mine.npz")  # the weights and info, no training state
    resumed = Trainer.from_checkpoint(tmp_path / "mine.npz", sound(), log=False)
    assert resumed.iteration == 3 and resumed.optimizer.t == 0 and not resumed.continues_data
    assert all(not getattr(resumed.optimizer, slot).any() for slot in resumed.optimizer.slots)
    np.testing.assert_array_equal(resumed.model.params, model.params)
    assert np.isfinite(resumed.step())


def test_a_sparse_file_model_save_wrote_keeps_its_blocks(tmp_path):
    model = blekota.Model(hidden=16, layers=1, seed=0)
    trainer = Trainer(model, sound(), seq_length=10, batch_size=4, name="s", directory=tmp_path,
                      checkpoint_every=0, seed=1, log=False, density=0.5, prune_start=1, prune_end=2, prune_every=1)
    trainer.train(3)
    blekota.load(tmp_path / "s_3.npz").save(tmp_path / "mine.npz")
    resumed = Trainer.from_checkpoint(tmp_path / "mine.npz", sound(), log=False)
    assert len(resumed.pruning.kept) == len(trainer.pruning.kept)
    for kept, expected in zip(resumed.pruning.kept, trainer.pruning.kept):
        np.testing.assert_array_equal(kept, expected)
    resumed.step()
    assert blekota.sparsity.block_density(resumed.model) == blekota.sparsity.block_density(trainer.model)
