"""blekota.agreement: what the processes of a run agree on at every gradient sum."""

from types import SimpleNamespace

import pytest

from blekota import agreement
from blekota.agreement import TAIL, RunAgreement


@pytest.fixture
def now(monkeypatch) -> list[float]:
    """The time every process reads, in seconds: set now[0]."""
    time = [0.0]
    monkeypatch.setattr(agreement, "time", SimpleNamespace(perf_counter=lambda: time[0]))
    return time


def test_one_process_answers_from_its_own_clock_and_signals(now):
    run = RunAgreement(SimpleNamespace(size=1, is_root=True))
    now[0] = 10.0
    run.start(3.0)
    now[0] = 12.0
    assert not run.out_of_time() and not run.interrupted() and run.elapsed() == 2.0
    now[0] = 13.0
    assert run.out_of_time()
    run.stop.requested = True
    assert run.interrupted()


def test_several_processes_answer_what_the_sum_agreed(now):
    root, other = (RunAgreement(SimpleNamespace(size=2, is_root=is_root)) for is_root in (True, False))
    for run in (root, other):
        run.start(2.0)
    now[0] = 1.0
    other.stop.requested = True
    tails = [root.tail(), other.tail()]
    assert len(tails[0]) == TAIL and tails[0][2] == 1.0 and tails[1][2] == 0.0  # only rank 0's clock
    summed = [a + b for a, b in zip(*tails)]
    now[0] = 5.0  # after the sum: what was agreed counts, not the clocks now
    for run in (root, other):
        run.take(summed)
    assert [run.interrupted() for run in (root, other)] == [True, True]
    assert [run.out_of_time() for run in (root, other)] == [False, False]
    assert root.elapsed() == other.elapsed() == 1.0
    root.take(root.tail())  # rank 0 alone at 5 s: out of time
    assert root.out_of_time() and not root.interrupted()
