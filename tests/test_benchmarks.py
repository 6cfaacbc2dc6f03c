"""The benchmark scripts as a user runs them: what their rows time, their arguments, their output."""

import sys
from pathlib import Path

import numpy as np

import blekota

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import sampling  # noqa: E402


def test_sampling_bf16_rows_time_the_plain_draw(monkeypatch):
    calls = []

    def sample(model, n, **options):
        calls.append((model.bf16_sampling, options))
        return np.zeros(n, np.uint8)

    monkeypatch.setattr(blekota.Model, "sample", sample)
    monkeypatch.setattr(sampling, "_numpy_sampler", lambda streams, steps: lambda: None)
    monkeypatch.setattr(sampling, "_torch_sampler", lambda streams, steps, threads: None)
    sampling.run(threads=1, repeats=1, quick=True)
    bf16 = [options for on, options in calls if on]
    assert bf16 and all(set(options) == {"seed", "streams"} for options in bf16)
