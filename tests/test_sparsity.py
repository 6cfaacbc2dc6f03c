"""Block-sparse training (blekota.sparsity): the schedule, which blocks are pruned, exact zeros,
the final density, the model file and exact resume."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

import blekota
from blekota import agreement, sparsity
from blekota.cli import main
from blekota.errors import ConfigError
from blekota.layout import Layout
from blekota.sparsity import Pruning, block_density, block_energy, choose_blocks, scheduled_density

from test_train import wobbly_sine


def sparse_trainer(directory, hidden=12, layers=2, **options):
    """A float64 model with partial blocks (12 units: one and a half column blocks) and a
    schedule over iterations 2..8, masks every 2."""
    model = blekota.Model(hidden=hidden, layers=layers, seed=0, dtype="float64", threads=1)
    settings = dict(seq_length=20, batch_size=8, optimizer="adam", lr=3e-3, name="t", checkpoint_every=0,
                    val_fraction=0, directory=directory, log=False, density=0.25, prune_start=2,
                    prune_end=8, prune_every=2)
    settings.update(options)
    return blekota.Trainer(model, wobbly_sine(), **settings)


def pruned_weights(pruning: Pruning, flat: np.ndarray) -> np.ndarray:
    """The values of the weights the pruning's masks prune."""
    return np.concatenate([
        matrix.view(flat, pruning.hidden)[~sparsity.expand(blocks, matrix.rows, pruning.hidden)]
        for matrix, blocks in zip(pruning.matrices, pruning.kept)
    ])


def test_schedule_falls_from_one_to_the_density_as_lpcnet():
    D, start, end = 0.1, 100, 500
    assert scheduled_density(0, D, start, end) == 1.0
    assert scheduled_density(start, D, start, end) == 1.0
    assert scheduled_density(300, D, start, end) == pytest.approx(1 - (1 - D) * (1 - 0.5**3))
    assert scheduled_density(400, D, start, end) == pytest.approx(1 - (1 - D) * (1 - 0.25**3))
    assert scheduled_density(end, D, start, end) == D
    assert scheduled_density(10**6, D, start, end) == D
    assert scheduled_density(start, D, start, start) == D  # a schedule with no length: at once
    assert scheduled_density(300, D, start, end, initial=0.5) == pytest.approx(D + (0.5 - D) * 0.5**3)
    values = [scheduled_density(it, D, start, end) for it in range(0, 600, 10)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("layers,hidden", [(1, 8), (2, 12), (3, 256)])
def test_which_matrices_are_pruned(layers, hidden):
    layout = Layout(layers, hidden)
    matrices = sparsity.pruned_matrices(layers, hidden)
    expected = []
    for layer in range(layers):
        wx, uh, _ = layout.layer_slices(layer)
        expected += [(f"gru{layer}.WxT.{g}", wx.start, False) for g in "rzc"] if layer else []
        expected += [(f"gru{layer}.UhT.{g}", uh.start, True) for g in "rzc"]
    assert [(m.name, m.offset, m.recurrent) for m in matrices] == expected
    assert all(m.rows == hidden for m in matrices)


def test_blocks_are_8_units_of_one_gate_by_4_inputs_and_partial_at_the_edges():
    hidden = 12
    weights = np.zeros((hidden, hidden))
    weights[5, 9] = 2.0  # input 5 (row block 1), unit 9 (column block 1, a partial one of 4 units)
    weights[11, 0] = 1.0  # input 11 (row block 2), unit 0
    energy = block_energy(weights)
    assert energy.shape == (3, 2)
    assert energy[1, 1] == 4.0 and energy[2, 0] == 1.0 and energy.sum() == 5.0
    diagonal = sparsity.diagonal_blocks(hidden)
    assert diagonal.tolist() == [[True, False], [True, False], [False, True]]  # units 0-3, 4-7, 8-11
    mask = sparsity.expand(diagonal, hidden, hidden)
    assert mask[np.arange(hidden), np.arange(hidden)].all()
    assert sparsity.diagonal_blocks(256).sum() == 64  # 8 / H of the 64 x 32 blocks


def test_blocks_are_chosen_by_energy_keeping_the_given_ones():
    energy = np.array([[5.0, 1.0], [3.0, 3.0], [0.0, 9.0]])
    assert choose_blocks(energy, 0.5).tolist() == [[True, False], [True, False], [False, True]]
    keep = np.array([[False, False], [False, False], [True, False]])
    assert choose_blocks(energy, 0.5, keep).tolist() == [[True, False], [False, False], [True, True]]
    assert choose_blocks(energy, 0.01).sum() == 1  # at least one block
    assert choose_blocks(energy, 0.01, keep | keep[::-1]).sum() == 2  # at least the kept ones
    assert choose_blocks(energy, 1.0).all()


def test_pruned_blocks_are_exactly_zero_after_every_step(tmp_path):
    trainer = sparse_trainer(tmp_path)
    pruning, model = trainer.pruning, trainer.model
    layout = Layout(model.layers, model.hidden)
    dense_part = np.concatenate([model.params[layout.layer_slices(0)[0]],
                                 *(model.params[layout.layer_slices(l)[2]] for l in range(model.layers)),
                                 *(model.params[s] for s in layout.output_slices())])
    shares = []
    for iteration in range(1, 13):
        trainer.step()
        assert (pruning.kept is None) == (iteration < 2)
        if pruning.kept is None:
            continue
        assert (pruned_weights(pruning, model.params) == 0).all()
        for slot in ("m", "v"):
            assert (pruned_weights(pruning, getattr(trainer.optimizer, slot)) == 0).all()
        for matrix, blocks in zip(pruning.matrices, pruning.kept):
            if matrix.recurrent:
                assert blocks[sparsity.diagonal_blocks(model.hidden)].all()
        shares.append(pruning.kept_share())
    assert all(a >= b for a, b in zip(shares, shares[1:]))
    assert shares[0] > shares[-1]
    # layer 0's input matrix, the biases and the output layer are never pruned
    now = np.concatenate([model.params[layout.layer_slices(0)[0]],
                          *(model.params[layout.layer_slices(l)[2]] for l in range(model.layers)),
                          *(model.params[s] for s in layout.output_slices())])
    assert (now != 0).all() and (now != dense_part).any()


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_no_optimizer_revives_a_pruned_weight(tmp_path, optimizer):
    trainer = sparse_trainer(tmp_path, optimizer=optimizer, prune_start=1, prune_end=1)
    trainer.step()
    pruned = pruned_weights(trainer.pruning, np.arange(trainer.model.n_params, dtype=np.float64)).astype(int)
    for _ in range(5):
        trainer.step()
        assert not trainer.model.params[pruned].any()
        assert np.signbit(trainer.model.params[pruned]).sum() == 0  # +0.0, not -0.0


@pytest.mark.parametrize("hidden,density", [(12, 0.25), (32, 0.1)])
def test_train_reaches_the_density_before_its_last_iteration(tmp_path, hidden, density):
    trainer = sparse_trainer(tmp_path, hidden=hidden, density=density, prune_start=None, prune_end=None,
                             prune_every=3)
    result = trainer.train(20)
    assert (trainer.pruning.start, trainer.pruning.end) == (2, 15)  # a tenth and three quarters of 20
    assert trainer.pruning.every == 1  # at least ten choices from 2 to 15
    for matrix, blocks in zip(trainer.pruning.matrices, trainer.pruning.kept):
        diagonal = int(sparsity.diagonal_blocks(hidden).sum()) if matrix.recurrent else 0
        assert blocks.sum() == max(1, diagonal, int(density * blocks.size + 0.5))
    loaded = blekota.load(result.path)
    assert loaded.info["sparsity"]["density"] == density and loaded.info["sparsity"]["block"] == [8, 4]
    assert block_density(loaded) == pytest.approx(trainer.pruning.kept_share())
    assert sparsity.describe(loaded.info) == f"density {density:.2f} (8x4 blocks)"
    kept = sparsity.kept_blocks(loaded)
    assert [kept[m.name].tolist() for m in trainer.pruning.matrices] == [b.tolist() for b in trainer.pruning.kept]


def test_the_clock_brings_a_planned_schedule_forward():
    pruning = Pruning(2, 32, density=0.1)
    pruning.plan(0, 10000, seconds=100.0)
    assert (pruning.start, pruning.end, pruning.clock) == (1000, 7500, (0, 100.0))
    assert pruning.follow_clock(5, 5.0) is None  # 5 % of the time
    message = pruning.follow_clock(20, 10.0)  # a tenth of the time, at 0.5 s an iteration
    assert (pruning.start, pruning.end) == (20, 150) and "iteration 20" in message  # 65 s more: 130
    assert pruning.every == 13  # ten choices on the way down, not one every 200
    pruning.updated = 20
    assert pruning.follow_clock(90, 70.0) is None  # slower than planned, 3/4 of the time not yet over
    message = pruning.follow_clock(100, 75.0)
    assert (pruning.end, pruning.clock) == (101, None) and "iteration 101" in message
    assert pruning.due(101)
    pruning.updated = 101
    assert not pruning.due(102)


def test_the_clock_never_moves_a_given_schedule_nor_an_iteration_plan_it_lags():
    given = Pruning(2, 32, density=0.1, start=2, end=8)
    given.plan(0, 100, seconds=10.0)
    assert given.clock is None and given.follow_clock(5, 9.0) is None and (given.start, given.end) == (2, 8)
    start_given = Pruning(2, 32, density=0.1, start=50)
    start_given.plan(0, 100, seconds=10.0)
    assert start_given.clock is None and (start_given.start, start_given.end) == (50, 75)
    fast = Pruning(2, 32, density=0.1)
    fast.plan(0, 100, seconds=1000.0)
    assert fast.follow_clock(10, 1.0) is None  # the iterations reach the start first
    fast.updated = 10
    assert fast.follow_clock(74, 5.0) is None and fast.follow_clock(75, 6.0) is None
    assert (fast.start, fast.end, fast.clock) == (10, 75, None)


def test_a_run_stopped_by_time_reaches_its_density(tmp_path, monkeypatch):
    """Without a schedule, 10,000 iterations would prune from 1,000 to 7,500; a run that
    stops after 30 s of a clock ticking 0.1 s a reading still saves its final density."""
    readings = iter(np.arange(0.0, 1e4, 0.1))
    monkeypatch.setattr(agreement, "time", SimpleNamespace(perf_counter=lambda: float(next(readings))))
    trainer = sparse_trainer(tmp_path, hidden=32, density=0.1, prune_start=None, prune_end=None,
                             prune_every=3)
    notes = []
    trainer.callback = lambda progress: notes.append(progress.message) if progress.kind == "note" else None
    result = trainer.train(10000, max_seconds=30.0)
    assert not result.interrupted and result.iterations < 1000
    assert trainer.pruning.start < trainer.pruning.end < trainer.iteration
    assert any("pruning starts" in note for note in notes)
    loaded = blekota.load(result.path)
    for matrix, blocks in zip(trainer.pruning.matrices, trainer.pruning.kept):
        diagonal = int(sparsity.diagonal_blocks(32).sum()) if matrix.recurrent else 0
        assert blocks.sum() == max(1, diagonal, int(0.1 * blocks.size + 0.5))
    assert block_density(loaded) == pytest.approx(trainer.pruning.kept_share())


def test_a_run_whose_time_ends_before_its_density_says_so(tmp_path, monkeypatch, capsys):
    """An iteration longer than a quarter of --seconds: the step that would reach the density
    never runs. The model file still names the density asked; train warns that it is denser."""
    readings = iter(np.arange(0.0, 1e4, 1.0))
    monkeypatch.setattr(agreement, "time", SimpleNamespace(perf_counter=lambda: float(next(readings))))
    blekota.save_wav(tmp_path / "sine.wav", wobbly_sine(), 8000)
    assert main(["train", str(tmp_path / "sine.wav"), "--layers", "1", "--hidden", "32", "--seq-length", "20",
                 "--batch-size", "4", "--threads", "1", "--checkpoint-sound", "0", "--val-fraction", "0",
                 "--out-dir", str(tmp_path), "-q", "--density", "0.2", "--seconds", "2"]) == 0
    path = next(tmp_path.glob("sine_*.npz"))
    assert block_density(blekota.load(path)) > 0.5
    assert re.search(r"warning: this run ended at iteration \d+, before the density 0.2 was reached \(at iteration "
                     r"\d+\): the model it saved is denser", capsys.readouterr().err)


class Observed(blekota.Plateau):
    """A plateau schedule with patience 0 that records every loss it observes."""

    def __init__(self):
        super().__init__(patience=0, min_lr=1e-9)
        self.observed, self.restarts = [], 0

    def observe(self, val_loss, lr):
        self.observed.append(val_loss)
        return super().observe(val_loss, lr)

    def restart(self):
        self.restarts += 1
        super().restart()


def test_validations_while_the_density_falls_neither_lower_the_lr_nor_make_a_best(tmp_path):
    """Each mask update raises the loss for a while: validations from the schedule's start (2)
    until it reaches the density (8) are recorded, but the schedule never sees them and none is
    a best; at 8 the schedule and the best start afresh, so the best file has the density."""
    schedule = Observed()
    trainer = sparse_trainer(tmp_path, val_fraction=0.2, val_every=1, schedule=schedule)
    trainer.train(12)
    losses = dict(trainer.val_history)
    assert sorted(losses) == list(range(1, 13))
    assert schedule.observed == [losses[1]] + [losses[i] for i in range(8, 13)]
    assert schedule.restarts == 1
    assert schedule.best == trainer.best_val_loss == min(losses[i] for i in range(8, 13))
    best = blekota.load(trainer.best_path())
    assert best.info["best_val_loss"] == trainer.best_val_loss
    assert block_density(best) == pytest.approx(trainer.pruning.kept_share())
    assert block_density(best) < 0.5


def test_a_dense_model_records_no_sparsity(tmp_path):
    trainer = sparse_trainer(tmp_path, density=1.0, prune_start=None, prune_end=None)
    result = trainer.train(3)
    loaded = blekota.load(result.path)
    assert "sparsity" not in loaded.info and sparsity.describe(loaded.info) is None
    assert block_density(loaded) == 1.0


@pytest.mark.parametrize("stop", [1, 3, 5, 9])  # before the start, between updates, at one, after the end
def test_resume_continues_the_schedule_and_masks_exactly(tmp_path, stop):
    straight = sparse_trainer(tmp_path / "a", prune_every=3)
    for _ in range(12):
        straight.step()
    first = sparse_trainer(tmp_path / "b", prune_every=3)
    for _ in range(stop):
        first.step()
    path = first.save(tmp_path / "half.npz")
    resumed = blekota.Trainer.from_checkpoint(path, wobbly_sine(), threads=1)
    assert resumed.pruning.settings() == first.pruning.settings()
    for _ in range(12 - stop):
        resumed.step()
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)
    assert resumed.pruning.settings() == straight.pruning.settings()


def test_a_new_density_on_resume_plans_a_new_schedule_from_the_current_one(tmp_path):
    first = sparse_trainer(tmp_path, density=0.5, prune_start=None, prune_end=None)
    path = first.train(10).path
    share = first.pruning.kept_share()
    resumed = blekota.Trainer.from_checkpoint(path, wobbly_sine(), threads=1, density=0.25)
    resumed.train(20)
    assert (resumed.pruning.start, resumed.pruning.end, resumed.pruning.initial) == (12, 25, share)
    assert resumed.pruning.kept_share() < share


def test_a_new_density_on_resume_with_its_schedule_given_reaches_it_from_the_current_one(tmp_path):
    """The new schedule goes on from the model's blocks, even where the old one chose its last
    masks after the iterations given (they held the new density back: never chosen, yet the
    file said it had it)."""
    first = sparse_trainer(tmp_path, density=0.5)
    path = first.train(10).path
    share = first.pruning.kept_share()
    for start, end in ((12, 14), (3, 5)):  # ahead, and before the old schedule's last masks (8)
        resumed = blekota.Trainer.from_checkpoint(path, wobbly_sine(), threads=1, density=0.25,
                                                  prune_start=start, prune_end=end, name=f"r{start}")
        assert resumed.pruning.initial == share
        resumed.train(6)
        assert resumed.pruning.kept_share() < share
        np.testing.assert_allclose(block_density(resumed.model), resumed.pruning.kept_share())
        path2 = resumed.save(tmp_path / f"r{start}.npz")
        assert sparsity.reached_at(blekota.load(path2).info) is not None


def test_masks_kept_before_a_new_schedule_chooses_any_resume_with_the_file(tmp_path):
    first = sparse_trainer(tmp_path, density=0.5)
    path = first.train(10).path
    waiting = blekota.Trainer.from_checkpoint(path, wobbly_sine(), threads=1, density=0.25, prune_start=20,
                                              prune_end=22, name="w")
    again = blekota.Trainer.from_checkpoint(waiting.save(tmp_path / "w.npz"), wobbly_sine(), threads=1)
    assert again.pruning.kept_share() == waiting.pruning.kept_share() < 1


@pytest.mark.parametrize("options,message", [
    ({"density": 0}, "density must be a number in (0, 1] (1: dense), got 0"),
    ({"density": 1.5}, "density must be a number in (0, 1] (1: dense), got 1.5"),
    ({"prune_start": 5, "prune_end": 4}, "prune_end 4 (train --prune-end) must not come before prune_start 5 (--prune-start)"),
    ({"prune_every": 0}, "prune_every must be a positive integer, got 0"),
])
def test_bad_settings_are_refused(tmp_path, options, message):
    with pytest.raises(ConfigError) as error:
        sparse_trainer(tmp_path, **options)
    assert str(error.value) == message


def test_cli_refuses_a_pruning_end_before_its_start_naming_the_options(tmp_path, capsys):
    blekota.save_wav(tmp_path / "sine.wav", wobbly_sine(), 8000)
    small = ["--layers", "1", "--hidden", "16", "--seq-length", "20", "--batch-size", "4", "--threads", "1",
             "--iterations", "2", "--checkpoint-sound", "0", "--out-dir", str(tmp_path), "-q"]
    assert main(["train", str(tmp_path / "sine.wav"), *small, "--density", "0.5", "--prune-start", "1",
                 "--prune-end", "2"]) == 0
    for argv in (["train", str(tmp_path / "sine.wav"), *small, "--model-name", "new", "--density", "0.5",
                  "--prune-start", "20", "--prune-end", "10"],
                 ["train", "--resume", str(tmp_path / "sine_2.npz"), *small, "--prune-end", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "(train --prune-end) must not come before prune_start" in err


def test_cli_refuses_pruning_options_for_a_dense_run(tmp_path, capsys):
    blekota.save_wav(tmp_path / "sine.wav", wobbly_sine(), 8000)
    small = ["--layers", "1", "--hidden", "16", "--seq-length", "20", "--batch-size", "4", "--threads", "1",
             "--iterations", "2", "--checkpoint-sound", "0", "--out-dir", str(tmp_path), "-q"]
    new = ["train", str(tmp_path / "sine.wav"), *small]
    assert main([*new, "--prune-start", "1"]) == 2
    err = capsys.readouterr().err
    assert err == ("blekota: error: --prune-start: applies to block-sparse training, and this run is dense: give "
                   "--density below 1 with them\n")
    assert not list(tmp_path.glob("sine_*.npz"))
    assert main([*new, "--prune-every", "1", "--prune-end", "2", "--density", "1"]) == 2
    assert "--prune-end, --prune-every: apply to block-sparse training" in capsys.readouterr().err
    assert main(new) == 0
    resume = ["train", "--resume", str(tmp_path / "sine_2.npz"), *small]
    assert main([*resume, "--prune-every", "1"]) == 2
    assert "this run is dense" in capsys.readouterr().err
    assert main([*resume, "--prune-every", "1", "--density", "0.5"]) == 0
    assert main(["train", "--resume", str(tmp_path / "sine_4.npz"), *small, "--prune-every", "3"]) == 0  # sparse now


@pytest.mark.parametrize("value", ["0", "1.01", "-0.1", "nan", "x"])
def test_cli_refuses_a_density_outside_0_1(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as stop:
        main(["train", "x.wav", "--density", value])
    assert stop.value.code == 2
    assert f"argument --density: expected a number in (0, 1], got '{value}'" in capsys.readouterr().err


def test_cli_warns_when_the_run_ends_before_its_density(tmp_path, capsys):
    blekota.save_wav(tmp_path / "sine.wav", wobbly_sine(), 8000)
    argv = ["train", str(tmp_path / "sine.wav"), "--layers", "1", "--hidden", "16", "--seq-length", "20",
            "--batch-size", "4", "--threads", "1", "--iterations", "6", "--density", "0.5",
            "--checkpoint-sound", "0", "-q", "--out-dir", str(tmp_path)]
    assert main([*argv, "--prune-start", "8"]) == 0
    assert ("this run ends at iteration 6 (--iterations 6), before the density is reached at 8: the model it "
            "saves is denser (train --resume goes on)") in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0  # the planned schedule ends within the run
    assert "density is reached" not in capsys.readouterr().err


def test_cli_trains_sparse_and_info_shows_it(tmp_path, capsys):
    blekota.save_wav(tmp_path / "sine.wav", wobbly_sine(), 8000)
    assert main(["train", str(tmp_path / "sine.wav"), "--layers", "2", "--hidden", "16", "--seq-length", "20",
                 "--batch-size", "4", "--threads", "1", "--iterations", "12", "--density", "0.25",
                 "--prune-every", "2", "--checkpoint-sound", "0", "-q", "--out-dir", str(tmp_path)]) == 0
    model = blekota.load(tmp_path / "sine_12.npz")
    assert model.info["sparsity"]["start"] == 1 and model.info["sparsity"]["end"] == 9
    assert main(["info", str(tmp_path / "sine_12.npz")]) == 0
    shown = capsys.readouterr().out
    assert f"sparsity:    density 0.25 (8x4 blocks); {block_density(model):.3f} of the 8x4 blocks hold weights now" in shown
    assert main(["train", "--resume", str(tmp_path / "sine_12.npz"), "--iterations", "2", "--threads", "1",
                 "-q"]) == 0
    resumed = blekota.load(tmp_path / "sine_14.npz")
    assert resumed.info["sparsity"] == {**model.info["sparsity"]}
    assert block_density(resumed) == block_density(model)


@pytest.mark.parametrize("change,message", [
    ({"block": [16, 1]}, "pruned in blocks of [16, 1]; this version of blekota prunes 8x4 blocks"),
    ({"density": 2}, "bad pruning settings (density must be a number in (0, 1] (1: dense), got 2)"),
    ({"start": "soon"}, "bad pruning settings (prune_start must be None or an integer >= 0, got 'soon')"),
    ({"updated": -1}, "bad pruning state (updated must be an integer >= 0, got -1)"),
])
def test_a_bad_pruning_record_is_refused_naming_the_file(tmp_path, change, message):
    trainer = sparse_trainer(tmp_path)
    for _ in range(4):
        trainer.step()
    saved = blekota.modelfile.read(trainer.save(tmp_path / "good.npz"))
    info = {**saved.info, "sparsity": {**saved.info["sparsity"], **change}}
    bad = blekota.modelfile.save(tmp_path / "bad.npz", saved.model, info, saved.train_arrays)
    with pytest.raises(blekota.ModelFileError) as error:
        blekota.Trainer.from_checkpoint(bad, wobbly_sine(), threads=1)
    assert str(error.value) == f"{bad}: {message}"


def test_missing_masks_are_refused(tmp_path):
    trainer = sparse_trainer(tmp_path)
    for _ in range(4):
        trainer.step()
    saved = blekota.modelfile.read(trainer.save(tmp_path / "good.npz"))
    arrays = {key: value for key, value in saved.train_arrays.items() if not key.startswith("sparsity.")}
    bad = blekota.modelfile.save(tmp_path / "bad.npz", saved.model, saved.info, arrays)
    with pytest.raises(blekota.ModelFileError, match="bad pruning state"):
        blekota.Trainer.from_checkpoint(bad, wobbly_sine(), threads=1)


def test_a_dense_model_goes_sparse_on_resume(tmp_path):
    path = sparse_trainer(tmp_path, density=1.0, prune_start=None, prune_end=None).train(4).path
    resumed = blekota.Trainer.from_checkpoint(path, wobbly_sine(), threads=1, density=0.5)
    resumed.train(10)
    assert (resumed.pruning.start, resumed.pruning.end, resumed.pruning.initial) == (5, 11, 1.0)
    assert resumed.pruning.kept_share() < 1 and block_density(resumed.model) == resumed.pruning.kept_share()


def test_sparse_training_stays_on_the_cpu():
    model = blekota.Model(hidden=16, layers=2, seed=0, threads=1)
    with pytest.raises(ConfigError, match="density 0.5 trains on the CPU only"):
        blekota.Trainer(model, wobbly_sine(), seq_length=10, batch_size=2, density=0.5, device="cuda")


def test_stepping_a_sparse_trainer_without_a_schedule_is_refused(tmp_path):
    sound = np.sin(np.arange(12000) * 0.05).astype(np.float32)
    model = blekota.Model(hidden=16, layers=1, seed=0, threads=1)
    trainer = blekota.Trainer(model, sound, seq_length=20, batch_size=4, directory=tmp_path, density=0.5)
    with pytest.raises(ConfigError, match="density 0.5: the pruning has no schedule"):
        trainer.step()
    scheduled = blekota.Trainer(blekota.Model(hidden=16, layers=1, seed=0, threads=1), sound, seq_length=20,
                                batch_size=4, directory=tmp_path, density=0.5, prune_start=0, prune_end=2,
                                prune_every=1)
    for _ in range(3):
        scheduled.step()
    assert blekota.sparsity.block_density(scheduled.model) < 1


def test_info_names_the_best_loss_at_the_density(tmp_path, capsys):
    """A denser model's loss before the density was reached is no measure of the pruned one:
    info's best is the best from the step that reached it on."""
    trainer = sparse_trainer(tmp_path, val_fraction=0.2, val_every=1)
    trainer.train(12)
    path = trainer.save(tmp_path / "pruned.npz")
    reached = blekota.sparsity.reached_at(blekota.load(path).info)
    assert reached == 8
    assert main(["info", str(path)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("val loss:"))
    losses = dict(trainer.val_history)
    best = min(range(8, 13), key=losses.get)
    assert f"best {losses[best]:.4f} at iteration {best} at the density (reached at iteration 8)" in line


def test_reached_at_is_none_for_dense_models_and_while_pruning():
    assert blekota.sparsity.reached_at({}) is None
    assert blekota.sparsity.reached_at({"sparsity": {"density": 0.1, "end": 8, "updated": 6}}) is None
    assert blekota.sparsity.reached_at({"sparsity": {"density": 0.1, "end": 8, "updated": None}}) is None
    assert blekota.sparsity.reached_at({"sparsity": {"density": 0.1, "end": 8, "updated": 9}}) == 9
