"""The benchmark scripts as a user runs them: what their rows time, their arguments, their output."""

import json
import sys
from pathlib import Path

import numpy as np

import blekota

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import run  # noqa: E402
import sampling  # noqa: E402
import sparse  # noqa: E402


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


def test_rows_without_a_peak_are_valid_json_and_print_blank():
    rows = [sampling._row("pytorch", 1, 1, 10, [0.1, 0.2, 0.3], None),
            sparse._row("3x256 dense", "3x256, 10 steps", 1, 10, [0.1, 0.2], "dense kernel")]
    back = json.loads(json.dumps(rows, allow_nan=False))
    assert [row["peak_mib"] for row in back] == [None, None]
    assert [line.split("|")[10].strip() for line in run.table(back).splitlines()[2:]] == ["", ""]
