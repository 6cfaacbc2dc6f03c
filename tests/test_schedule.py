"""Learning-rate schedules: scripted decisions and state that survives a save."""

import pytest

import blekota
from blekota.schedule import Plateau, Step, describe, make_schedule


def test_plateau_decisions_on_a_scripted_loss_sequence():
    schedule = Plateau(factor=0.5, patience=2, min_lr=0.2, threshold=0.01)
    losses = [5.0, 4.0, 3.99, 4.1, 3.97, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0]
    lr, lrs = 1.0, []
    for loss in losses:
        lr = schedule.observe(loss, lr)
        lrs.append(lr)
    # 3.99 is not 1 % better than 4.0, nor are 4.1 and 3.97: the third miss halves the lr.
    # 3.0 improves; then every third miss halves again, down to min_lr and no further.
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2]
    assert schedule.best == 3.0


def test_plateau_patience_zero_reduces_at_every_miss():
    schedule = Plateau(patience=0, min_lr=1e-9)
    lr = 1.0
    for loss in (2.0, 2.5, 1.0, 1.5):
        lr = schedule.observe(loss, lr)
    assert lr == 0.25


def test_plateau_restart_forgets_the_losses_seen_and_keeps_the_lr():
    schedule = Plateau(patience=1, min_lr=1e-9)
    lr = 1.0
    for loss in (1.0, 2.0):  # one miss of two allowed
        lr = schedule.observe(loss, lr)
    schedule.restart()
    assert (schedule.best, schedule.bad, lr) == (None, 0, 1.0)
    assert schedule.observe(1.5, lr) == 1.0 and schedule.best == 1.5  # a new best, not a second miss
    assert schedule.observe(1.6, lr) == 1.0 and schedule.observe(1.7, lr) == 0.5
    make_schedule("step").restart()  # the other schedules have nothing to forget
    make_schedule("constant").restart()


def test_step_and_constant():
    step = Step(every=3, factor=0.1)
    lrs = []
    lr = 1.0
    for iteration in range(1, 8):
        lr = step.after_step(iteration, lr)
        lrs.append(lr)
    assert lrs == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    constant = make_schedule("constant")
    assert constant.after_step(1000, 0.3) == 0.3 and constant.observe(9.0, 0.3) == 0.3


def test_state_round_trips():
    schedule = Plateau(factor=0.25, patience=1, min_lr=1e-4)
    for loss in (3.0, 3.5):
        schedule.observe(loss, 1e-3)
    again = make_schedule(**schedule.state_dict())
    assert again.state_dict() == schedule.state_dict()
    assert again.observe(3.6, 1e-3) == schedule.observe(3.6, 1e-3) == 2.5e-4


def test_step_stops_at_its_floor_and_never_reaches_zero():
    """A step schedule whose rate would underflow to 0.0 stays at min_lr (issue 19: such a run
    could not be resumed)."""
    step = Step(every=1, factor=1e-300)
    lr = 4e-3
    for iteration in range(1, 5):
        lr = step.after_step(iteration, lr)
    assert lr == 1e-5
    assert Step(every=1, factor=0.5, min_lr=1e-3).after_step(1, 1e-4) == 1e-4  # already below: kept
    assert make_schedule(name="step", every=2, factor=0.5).min_lr == 1e-5  # a state saved before min_lr


@pytest.mark.parametrize("name,options", [("cosine", {}), ("step", {"every": 0}), ("plateau", {"factor": 1.5}),
                                          ("plateau", {"patience": -1}), ("step", {"bogus": 1}),
                                          ("plateau", {"best": "x"}), ("plateau", {"bad": None}),
                                          ("plateau", {"best": float("nan")}), ("step", {"min_lr": 0.0})])
def test_bad_schedules_are_config_errors(name, options):
    with pytest.raises(blekota.ConfigError):
        make_schedule(name, **options)


def test_a_schedule_in_words_for_info():
    assert describe(make_schedule("constant").state_dict()) == "constant"
    assert describe(make_schedule("step", every=500, factor=0.25).state_dict()) == (
        "step (x0.25 every 500 iterations, down to 1e-05)")
    assert describe(Plateau(patience=2, min_lr=1e-4).state_dict()) == (
        "plateau (x0.5 when more than 2 validations in a row do not improve, down to 0.0001)")
    assert describe({"name": "plateau", "factor": "half"}) == "plateau"  # a damaged file: its name alone
