"""Training steps on a torch device (blekota.device, blekota.torchstep), checked on torch's CPU.

There is no GPU here: the step runs on torch's CPU device (Trainer(device="torch-cpu"), or
TorchStep(..., "cpu")), the same body a CUDA graph captures; a stand-in for the capture checks
what is around it. The refusals are checked without torch as well.
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import blekota
from blekota import device, memory
from blekota.cli import main
from blekota.errors import BlekotaWarning, ConfigError
from blekota.layout import flat_to_canonical
from blekota.optim import make_optimizer
from blekota.train import Trainer
from test_parallel import MPIEXEC, needs_mpi

try:
    import torch

    from blekota import torchstep
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
needs_cuda = pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="no CUDA GPU")

LAYERS, HIDDEN, T, B = 2, 12, 9, 4
FLOAT32 = dict(loss=1e-5, state=1e-5, weights=1e-4)  # float32 tolerances, relative to the largest value


def noisy_sine(n: int = 9000, fs: int = 8000) -> np.ndarray:
    t = np.arange(n) / fs
    noise = np.random.default_rng(5).standard_normal(n) * 0.05
    return (0.5 * np.sin(2 * np.pi * 310 * t + 2 * np.sin(2 * np.pi * 3 * t)) + noise).astype(np.float32)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference of a and b over b's largest magnitude."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def core_step(model, optimizer, x, targets, h0):
    """The Trainer's CPU step: compiled loss and gradients, then the update. Returns (loss,
    h_last, the clipped gradients)."""
    grads = np.empty_like(model.params)
    loss, h_last = model.window(x, h0, grads, targets)
    optimizer.step(model.params, grads)
    return loss, h_last, grads


def check_steps_against_the_core(make_model, rng, name: str, dtype: str, where: str, windows=(T, T, T, T)):
    """Steps of a TorchStep on `where` against the core's: loss, clipped gradients, carried state,
    updated weights and moments, window after window (of windows' lengths)."""
    core, on_torch = (make_model(HIDDEN, LAYERS, dtype, seed=7, scale=0.3) for _ in range(2))
    core_optimizer, torch_optimizer = (make_optimizer(name, core.n_params, core.dtype, 0.01) for _ in range(2))
    step = torchstep.TorchStep(on_torch, torch_optimizer, where)
    h_core = h_torch = rng.standard_normal((LAYERS, B, HIDDEN)).astype(dtype) * 0.5
    tolerance = dict(loss=1e-9, state=1e-9, weights=1e-9) if dtype == "float64" else FLOAT32
    for index, steps in enumerate(windows):
        x = rng.integers(0, 256, (steps + 1, B)).astype(np.uint8)
        targets = rng.integers(0, 256, (steps, B)).astype(np.uint8) if index % 2 else None
        loss, h_core, grads = core_step(core, core_optimizer, x, targets, h_core)
        torch_loss, h_torch, finite = step.run(x, targets, h_torch)
        assert finite
        assert abs(torch_loss - loss) <= tolerance["loss"] * loss
        assert relative(h_torch, h_core) <= tolerance["state"]
        core_grads = flat_to_canonical(grads, LAYERS, HIDDEN)
        for key, param in step.net.canonical_parameters().items():
            assert relative(param.grad.double().cpu().numpy(), core_grads[key]) <= tolerance["loss"], key
    assert relative(on_torch.params, core.params) > 1e-3  # the host's weights are not yet the device's
    step.download()
    assert torch_optimizer.t == core_optimizer.t == len(windows)
    assert relative(on_torch.params, core.params) <= tolerance["weights"]
    for slot in core_optimizer.slots:
        assert relative(getattr(torch_optimizer, slot), getattr(core_optimizer, slot)) <= tolerance["weights"]
    return step


@needs_torch
@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_step_equals_the_compiled_core(make_model, rng, name, dtype):
    step = check_steps_against_the_core(make_model, rng, name, dtype, "cpu")
    assert not step.graphs and str(step) == "torch's cpu device"


@needs_cuda
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_cuda_graph_step_equals_the_compiled_core(make_model, rng, name, dtype):
    """On a GPU (skipped elsewhere): each window shape captured in its own CUDA graph, without a
    warning (a failed capture would warn and run eagerly), the steps equal to the core's."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", BlekotaWarning)
        step = check_steps_against_the_core(make_model, rng, name, dtype, "cuda", windows=(T, T, 3, T, 3))
    assert step.graphs and set(step.windows) == {(T, B), (3, B)} and str(step).startswith("cuda:")


@needs_cuda
def test_a_run_resumed_across_cpu_and_gpu_equals_an_unbroken_one(tmp_path):
    """On a GPU (skipped elsewhere): cpu core -> CUDA graph steps -> cpu core (float64: 1e-9)."""
    unbroken = small_trainer(tmp_path / "unbroken", "cpu")
    unbroken.train(9)
    path = small_trainer(tmp_path, "cpu").train(3).path
    for device_name in ("cuda", "cpu"):
        path = Trainer.from_checkpoint(path, audio=noisy_sine(), device=device_name).train(3).path
    assert relative(blekota.load(path).params, unbroken.model.params) <= 1e-9


@needs_torch
def test_the_step_follows_what_the_host_changed(make_model, rng):
    """Between steps the host is the keeper of record: a step after download() starts from the
    host's weights, learning rate and moments, whatever changed there."""
    core, on_torch = (make_model(HIDDEN, LAYERS, "float64", seed=2, scale=0.3) for _ in range(2))
    core_optimizer, torch_optimizer = (make_optimizer("rmsprop", core.n_params, core.dtype, 0.01) for _ in range(2))
    step = torchstep.TorchStep(on_torch, torch_optimizer, "cpu")
    h = np.zeros((LAYERS, B, HIDDEN))
    x = rng.integers(0, 256, (T + 1, B)).astype(np.uint8)
    core_step(core, core_optimizer, x, None, h)
    step.run(x, None, h)
    step.download()
    step.download()  # nothing newer: a second download changes nothing
    for model, optimizer in ((core, core_optimizer), (on_torch, torch_optimizer)):
        model.params[:5] = 0.25
        optimizer.lr = 0.003
        optimizer.m *= 2
    core_step(core, core_optimizer, x, None, h)
    step.run(x, None, h)
    step.download()
    assert relative(on_torch.params, core.params) <= 1e-9
    assert relative(torch_optimizer.m, core_optimizer.m) <= 1e-9


def small_trainer(tmp_path, device_name: str, dtype: str = "float64", **options) -> Trainer:
    model = blekota.Model(hidden=HIDDEN, layers=LAYERS, dtype=dtype, seed=3, threads=1)
    settings = dict(seq_length=T, batch_size=B, val_fraction=0.1, val_every=3, checkpoint_every=0, name="d",
                    directory=tmp_path, input_noise=1.0, random_gain_db=4.0, log=False)
    return Trainer(model, noisy_sine(), device=device_name, **{**settings, **options})


@needs_torch
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_a_run_resumed_across_devices_equals_an_unbroken_one(tmp_path, optimizer):
    """cpu core -> torch step -> cpu core, through model files, gives the unbroken run's weights,
    moments, validation losses and schedule (float64: 1e-9)."""
    unbroken = small_trainer(tmp_path / "unbroken", "cpu", optimizer=optimizer)
    unbroken.train(9)
    path = small_trainer(tmp_path, "cpu", optimizer=optimizer).train(3).path
    for device_name in ("torch-cpu", "cpu"):
        trainer = Trainer.from_checkpoint(path, audio=noisy_sine(), device=device_name)
        assert trainer.continues_data and (trainer.device_step is None) == (device_name == "cpu")
        path = trainer.train(3).path
    resumed = blekota.load(path)
    assert relative(resumed.params, unbroken.model.params) <= 1e-9
    final = Trainer.from_checkpoint(path, audio=noisy_sine())
    for slot in final.optimizer.slots:
        assert relative(getattr(final.optimizer, slot), getattr(unbroken.optimizer, slot)) <= 1e-9
    assert final.optimizer.t == unbroken.optimizer.t == 9
    assert final.optimizer.lr == unbroken.optimizer.lr
    np.testing.assert_allclose(final.val_history, unbroken.val_history, rtol=1e-9)
    np.testing.assert_allclose(final.h, unbroken.h, rtol=0, atol=1e-9)


@needs_torch
def test_a_float32_run_on_the_torch_step_follows_the_core(tmp_path):
    """float32 (the core's products too), 20 iterations with validation, plateau schedule, random
    gain and input noise: the weights stay within 1e-4 of the largest weight of the core's (3e-6 measured with Adam),
    the losses within 1e-6 (1e-8 measured)."""
    runs = [small_trainer(tmp_path / name, name, dtype="float32", bf16=False) for name in ("cpu", "torch-cpu")]
    results = [trainer.train(20) for trainer in runs]
    assert relative(runs[1].model.params, runs[0].model.params) <= 1e-4
    assert abs(results[1].val_loss - results[0].val_loss) <= 1e-6 * results[0].val_loss
    assert abs(results[1].loss - results[0].loss) <= 1e-6 * results[0].loss


@needs_torch
def test_sampling_and_checkpoints_read_the_device_weights(tmp_path):
    trainer = small_trainer(tmp_path, "torch-cpu", checkpoint_every=2, checkpoint_sound=50)
    trainer.train(4)
    twin = small_trainer(tmp_path / "core", "cpu", checkpoint_every=2, checkpoint_sound=50)
    twin.train(4)
    assert relative(blekota.load(tmp_path / "d_2.npz").params, blekota.load(tmp_path / "core" / "d_2.npz").params) <= 1e-9
    assert (tmp_path / "d_4.wav").exists()
    for _ in range(3):
        trainer.step()
        twin.step()
    assert [path.name for path in trainer.checkpoint(40)] == ["d_7.npz", "d_7.wav"]
    assert relative(trainer.trained_weights(), twin.trained_weights()) <= 1e-9  # checkpoint() copied them back
    twin.use_average()
    assert relative(trainer.model.params, twin.model.params) <= 1e-9  # ... and their average


@needs_torch
def test_the_host_memory_check_leaves_the_windows_to_the_device(tmp_path, monkeypatch):
    """A big batch needs its windows' memory where the steps run: the host checks only its own."""
    batch = 400
    core_needs = memory.training_bytes(LAYERS, HIDDEN, T, batch, 8, 2)
    monkeypatch.setattr(memory, "available_bytes", lambda: core_needs - 1)
    with pytest.raises(ConfigError, match="training a 2x12 float64 model with seq_length 9 and batch_size 400 needs"):
        small_trainer(tmp_path, "cpu", batch_size=batch, val_fraction=0.0, schedule="constant")
    trainer = small_trainer(tmp_path, "torch-cpu", batch_size=batch, val_fraction=0.0, schedule="constant")
    assert trainer.device_step is not None

class StandIn:
    """In place of blekota.torchstep.capture where there is no CUDA: runs the warm-up as the
    real one does (those updates must be undone) and returns the eager body as the "replay"."""

    def __init__(self, error: BaseException | None = None):
        self.error, self.captures = error, 0

    def __call__(self, body, device):
        for _ in range(torchstep.WARMUP):
            body()
        self.captures += 1
        if self.error is not None:
            raise self.error
        return body


@needs_torch
@pytest.mark.parametrize("error", [None, RuntimeError("operation not permitted when stream is capturing")])
def test_a_captured_step_undoes_its_warm_up(make_model, rng, monkeypatch, error):
    """With graphs on, each window shape is captured once after a warm-up whose updates are
    undone; a capture that fails warns and runs eagerly. Either way the steps equal the core's."""
    stand_in = StandIn(error)
    monkeypatch.setattr(torchstep, "capture", stand_in)
    core, on_torch = (make_model(HIDDEN, LAYERS, "float64", seed=4, scale=0.3) for _ in range(2))
    core_optimizer, torch_optimizer = (make_optimizer("adam", core.n_params, core.dtype, 0.01) for _ in range(2))
    step = torchstep.TorchStep(on_torch, torch_optimizer, "cpu", graphs=True)
    h_core = h_torch = np.zeros((LAYERS, B, HIDDEN))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for steps in (T, T, 3, T):  # a shorter window gets its own capture
            x = rng.integers(0, 256, (steps + 1, B)).astype(np.uint8)
            loss, h_core, _ = core_step(core, core_optimizer, x, None, h_core)
            torch_loss, h_torch, _ = step.run(x, None, h_torch)
            assert abs(torch_loss - loss) <= 1e-9 * loss
    assert stand_in.captures == 2 and set(step.windows) == {(T, B), (3, B)}
    messages = [str(warning.message) for warning in caught if warning.category is BlekotaWarning]
    assert messages == [] if error is None else messages == [
        "torch's cpu device: the training step could not be captured in a CUDA graph (operation not permitted "
        "when stream is capturing); it runs eagerly, slower"] * 2
    step.download()
    assert relative(on_torch.params, core.params) <= 1e-9
    assert relative(torch_optimizer.v, core_optimizer.v) <= 1e-9


@needs_torch
def test_out_of_device_memory_is_one_line(make_model, monkeypatch):
    monkeypatch.setattr(torchstep, "capture", StandIn(torch.cuda.OutOfMemoryError("CUDA out of memory")))
    model = make_model(HIDDEN, LAYERS, "float32")
    step = torchstep.TorchStep(model, make_optimizer("adam", model.n_params, model.dtype, 0.01), "cpu", graphs=True)
    with pytest.raises(ConfigError, match=r"torch's cpu device: out of memory for windows of 9 steps x 4 streams "
                                          r"of a 2x12 model; use a smaller batch_size"):
        step.run(np.zeros((T + 1, B), np.uint8), None, np.zeros((LAYERS, B, HIDDEN), np.float32))


@needs_torch
@pytest.mark.parametrize("device_name", ["cpu", "torch-cpu"])
def test_a_diverging_step_is_reported_alike(tmp_path, device_name):
    trainer = small_trainer(tmp_path, device_name, dtype="float32", lr=1e300)  # inf in float32
    with pytest.raises(blekota.TrainingDiverged, match="^training diverged at iteration 1: the weights became NaN"):
        trainer.step()


def test_bad_device_names_are_refused():
    for bad in ("gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1", "", None, 0):
        with pytest.raises(ConfigError, match="device must be cpu, cuda or cuda:N"):
            device.check("device", bad)
    assert device.check("device", "cpu") == "cpu"
    assert device.training_step("cpu", None, None) is None


def test_a_gpu_is_refused_in_one_line_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    for name in ("cuda", "torch-cpu"):
        with pytest.raises(ConfigError, match=rf"^device {name} trains through PyTorch, which is not installed: "
                                              r"pip install torch \(blekota itself does not need it\)$"):
            device.check("device", name)


def test_a_gpu_is_refused_with_mpi():
    with pytest.raises(ConfigError, match="--device cuda trains in one process with one GPU; it cannot be combined "
                                          r"with MPI \(4 processes here\): start it without mpiexec or srun"):
        device.check("--device", "cuda", processes=4)
    with pytest.raises(ConfigError, match="device torch-cpu trains in one process"):
        device.check("device", "torch-cpu", processes=2)
    assert device.check("device", "cpu", processes=2) == "cpu"


@needs_mpi
def test_train_device_cuda_under_mpiexec_is_refused_once(tmp_path):
    blekota.save_wav(tmp_path / "s.wav", noisy_sine(), 8000)
    env = {**os.environ, "PYTHONPATH": str(Path(blekota.__file__).parent.parent)}
    result = subprocess.run(MPIEXEC + [sys.executable, "-m", "blekota", "train", "s.wav", "--device", "cuda"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == ("blekota: error: --device cuda trains in one process with one GPU; it cannot be combined "
                             "with MPI (2 processes here): start it without mpiexec or srun\n")
    assert [path.name for path in tmp_path.iterdir()] == ["s.wav"]


@needs_torch
def test_a_gpu_that_is_not_there_is_refused(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^device cuda: PyTorch .* sees no CUDA GPU here$"):
            device.check("device", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device.check("device", "cuda:0") == "cuda:0"
    with pytest.raises(ConfigError, match=r"device cuda:1: there is 1 CUDA GPU here \(cuda:0..cuda:0\)"):
        device.check("device", "cuda:1")


def test_train_device_cuda_without_torch_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    sound = tmp_path / "s.wav"
    blekota.save_wav(sound, noisy_sine(), 8000)
    assert main(["train", str(sound), "--device", "cuda", "--iterations", "1", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == ("blekota: error: --device cuda trains through PyTorch, which is not installed: pip install torch "
                   "(blekota itself does not need it)\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.wav"]
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(sound), "--device", "gpu"])
    assert exit_.value.code == 2
    assert "argument --device: expected cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


@needs_torch
def test_train_device_cuda_end_to_end(tmp_path, monkeypatch, capsys):
    """The command line with a GPU, stood in for by torch's CPU: train on "cuda", resume on the
    CPU, and the files are the ones a CPU run writes."""
    monkeypatch.setattr(device, "check", lambda name, value, processes=1: value)
    made = []

    def on_torch_cpu(device_name, model, optimizer, processes=1, average=None):
        if device_name == "cpu":
            return None
        made.append(torchstep.TorchStep(model, optimizer, "cpu", average=average))
        return made[-1]

    monkeypatch.setattr("blekota.train.training_step", on_torch_cpu)
    sound = tmp_path / "s.wav"
    blekota.save_wav(sound, noisy_sine(), 8000)
    small = ["--layers", "1", "--hidden", "8", "--seq-length", "10", "--batch-size", "4", "--threads", "1"]
    assert main(["train", str(sound), *small, "--device", "cuda", "--iterations", "4", "--checkpoint-sound", "0.01",
                 "--checkpoint-every", "2", "--out-dir", str(tmp_path), "--seed", "1"]) == 0
    assert "each step on torch's cpu device" in capsys.readouterr().out and len(made) == 1
    assert main(["train", "--resume", str(tmp_path / "s_4.npz"), "--iterations", "2", "-q"]) == 0
    assert len(made) == 1
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["s.log.jsonl", "s.wav", "s_2.npz", "s_2.wav", "s_4.npz", "s_4.wav", "s_6.npz", "s_6.wav",
                     "s_best.npz"]
    assert blekota.load(tmp_path / "s_6.npz").info["iterations"] == 6


@needs_torch
def test_the_gpu_benchmark_runs_on_torch_cpu_and_refuses_without_a_gpu(tmp_path):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"
    env = {**os.environ, "PYTHONPATH": str(Path(blekota.__file__).parent.parent)}
    checked = subprocess.run([sys.executable, str(script), "--device", "cpu", "--repeats", "1", "--json",
                              str(tmp_path / "rows.json")], capture_output=True, text=True, timeout=300, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "| 4 | eager |" in checked.stdout and "| 4 | cudnn |" in checked.stdout
    assert [row["impl"] for row in json.loads((tmp_path / "rows.json").read_text())] == ["eager", "cudnn"]
    if not torch.cuda.is_available():
        refused = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.endswith("sees no CUDA GPU here; nothing to measure\n")
