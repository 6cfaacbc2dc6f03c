"""The benchmark scripts and the example as a user runs them: what their rows time, their arguments,
their output."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blekota

CHECKOUT = Path(__file__).resolve().parent.parent
EXAMPLE = CHECKOUT / "examples" / "torch_train.py"
sys.path.insert(0, str(CHECKOUT / "benchmarks"))
import parts  # noqa: E402
import quality  # noqa: E402
import run  # noqa: E402
import sampling  # noqa: E402
import sound  # noqa: E402
import streaming  # noqa: E402


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
    sparse = runpy.run_path(str(CHECKOUT / "benchmarks" / "sparse.py"))  # not as "sparse": scipy looks that name up
    rows = [sampling._row("pytorch", 1, 1, 10, [0.1, 0.2, 0.3], None),
            sparse["_row"]("3x256 dense", "3x256, 10 steps", 1, 10, [0.1, 0.2], "dense kernel")]
    back = json.loads(json.dumps(rows, allow_nan=False))
    assert [row["peak_mib"] for row in back] == [None, None]
    assert [line.split("|")[10].strip() for line in run.table(back).splitlines()[2:]] == ["", ""]


@pytest.mark.parametrize("script, argv, says", [
    (run, ["--threads", "0"], "--threads: expected a positive integer, got '0'"),
    (run, ["--repeats", "-2"], "--repeats: expected a positive integer, got '-2'"),
    (run, ["--json", "no/such/folder/out.json"], "--json: no/such/folder: no such folder"),
    (quality, ["--quick", "--sound", "no_such.wav"], "--sound no_such.wav: no such file"),
    (sound, ["--quick", "--sound", "no_such.wav"], "--sound no_such.wav: no such file"),
    (sound, ["--demo", "--json", "."], "--json: . is a folder"),
    (sound, ["--demo", "--demo-variant", '{"bf16": true}'], 'Trainer options under "training"'),
    (sound, ["--minutes", "-3"], "--minutes: expected a positive number, got '-3'"),
    (sound, ["--seconds", "nan"], "--seconds: expected a positive number, got 'nan'"),
    (quality, ["--minutes", "0"], "--minutes: expected a positive number, got '0'"),
])
def test_bad_arguments_are_refused_before_any_run(script, argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        script.main(argv)
    assert exit.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["-n", "1000"], "-n 1000 is not a multiple of every block (64, 256, 512)"),
    (["--models", "3X256"], "--models: expected LAYERSxHIDDEN such as 3x256, got '3X256'"),
    (["--repeats", "0"], "--repeats: expected a positive integer, got '0'"),
])
def test_streaming_refuses_bad_arguments_in_one_line(argv, says, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["streaming.py", *argv])
    with pytest.raises(SystemExit) as exit:
        streaming.main()
    assert exit.value.code == 2 and says in capsys.readouterr().err


def test_torch_example_without_torch_says_so_in_one_line(tmp_path):
    code = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['torch_train.py', '--help']; "
            f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "examples/torch_train.py needs PyTorch, which is not installed: pip install torch\n"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, says", [
    (["--steps", "0"], "--steps must be positive, got 0"),
    (["--batch-size", "-1"], "--batch-size must be positive, got -1"),
    (["-o", "no/such/model.npz"], "no/such: no such folder"),
    (["no_such.wav", "--steps", "1"], "no_such.wav: no such file"),
])
def test_torch_example_refuses_bad_arguments_in_one_line(argv, says, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    example = runpy.run_path(str(EXAMPLE))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        example["main"](argv)
    assert says in f"{exit.value.code} {capsys.readouterr().err}"
    assert not any(tmp_path.iterdir())


def test_parts_compares_blekota_with_pytorch_by_the_unprofiled_times(monkeypatch):
    found = {"cpu_s": 1.0, "wall_s": 0.9, "peak": 100.0, "bf16_peak": 0.0, "bf16_kind": "bf16", "bf16": False,
             "level": "avx2", "samples": 10, "seconds": dict.fromkeys(parts.PARTS, 0.1),
             "floors": {"forward products": 0.05}}
    monkeypatch.setattr(parts.shutil, "which", lambda name: "/usr/bin/perf")
    monkeypatch.setattr(parts, "profile", lambda *args: found)
    text = parts.breakdown(2, pytorch_s=0.4, blekota_s=0.2)  # slower under perf: 0.9 s
    assert "a float32 kernel would be 16.00x PyTorch; blekota is 2.00x (without perf)." in text


def test_sampling_alone_says_when_the_pytorch_rows_were_skipped(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sampling.py", "--quick"])
    monkeypatch.setattr(sampling, "run", lambda *args: [sampling._row("blekota", 1, 1, 10, [0.1], 1.0)])
    sampling.main()
    assert "# torch is not importable: the PyTorch rows were skipped" in capsys.readouterr().out


@pytest.mark.parametrize("section", ["training", "scaling"])
def test_a_section_run_alone_points_to_run_py(section, tmp_path):
    result = subprocess.run([sys.executable, str(CHECKOUT / "benchmarks" / f"{section}.py"), "--help"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"benchmarks/{section}.py is a section of the suite: "
                             f"python benchmarks/run.py --only {section}\n")
