"""Data-parallel training over MPI: exact against one process, and failures that end the job.

The tests start `mpiexec -n 2` (the one of the mpich wheel in this environment, else the one on the
PATH) and skip when mpi4py, an MPI library or mpiexec is missing.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import blekota
from blekota import parallel
from blekota.train import Trainer

HERE = Path(__file__).parent
FLOAT64 = ["--dtype", "float64", "--seed", "0", "--hidden", "16", "--layers", "2", "--batch-size", "8",
           "--seq-length", "20", "--threads", "1", "--checkpoint-sound", "0", "--val-every", "10"]


def find_mpiexec() -> list[str] | None:
    """The mpiexec command for 2 processes on this machine, or None when MPI cannot run here."""
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        return None
    try:
        probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True, timeout=60)
        version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    command = [found, "-n", "2"]
    if re.search("Open MPI|OpenRTE|prterun", version.stdout + version.stderr):
        command[1:1] = ["--oversubscribe", "--allow-run-as-root"]  # CI runs as root on few cores
    return command


MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpi4py with an MPI library and mpiexec are not installed")


def run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def blekota_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "blekota", *args]


@pytest.fixture
def sound(tmp_path) -> Path:
    t = np.arange(12000) / 8000
    return blekota.save_wav(tmp_path / "sine.wav", 0.6 * np.sin(2 * np.pi * 300 * t + 3 * np.sin(4 * np.pi * t)), 8000)


def weights(path: Path) -> np.ndarray:
    return blekota.load(path).params


def assert_close(a: np.ndarray, b: np.ndarray) -> None:
    assert np.abs(a - b).max() <= 1e-9 * np.abs(a).max()


def test_streams_are_shared_out_in_rank_order():
    for size in (1, 2, 3, 8):
        shares = []
        for rank in range(size):
            processes = parallel.Processes()
            processes.rank, processes.size = rank, size
            shares.append(processes.part(11) if size <= 11 else None)
        assert [s.start for s in shares] == [0] + [s.stop for s in shares[:-1]] and shares[-1].stop == 11
        assert max(s.stop - s.start for s in shares) - min(s.stop - s.start for s in shares) <= 1


def test_only_a_model_left_to_the_default_threads_is_given_its_share():
    class ThreeCoresEach:
        def default_threads(self) -> int:
            return 3

    defaulted, chosen = blekota.Model(hidden=4, layers=1), blekota.Model(hidden=4, layers=1, threads=5)
    set_later = blekota.Model(hidden=4, layers=1)
    set_later.threads = 7
    for model in (defaulted, chosen, set_later):
        parallel.MPIProcesses.fit_threads(ThreeCoresEach(), model)
    assert (defaulted.threads, chosen.threads, set_later.threads) == (3, 5, 7)
    parallel.Processes().fit_threads(chosen)  # one process: the model keeps its own
    assert chosen.threads == 5
    with pytest.raises(blekota.ConfigError, match="threads"):
        chosen.threads = 0


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_a_cgroup_quota_is_read_from_either_cgroup_version(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert parallel.cpu_quota(tmp_path) == quota


@pytest.mark.parametrize("quota, cpus", [(None, 8), (1.5, 2), (0.5, 1), (32.0, 8)])
def test_a_containers_cpu_quota_caps_the_default_threads(monkeypatch, quota, cpus):
    monkeypatch.setattr(parallel, "usable_cpu_set", lambda: set(range(8)))
    monkeypatch.setattr(parallel, "cpu_quota", lambda: quota)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert parallel.usable_cpus() == cpus
    assert blekota.Model(hidden=8, layers=1, seed=0).threads == cpus


def test_one_process_needs_no_mpi(tmp_path):
    trainer = Trainer(blekota.Model(hidden=8, layers=1, threads=1), np.zeros(4000, np.float32) + 0.1,
                      seq_length=10, batch_size=4, directory=tmp_path, comm=None)
    assert trainer.processes.size == 1 and trainer.streams == slice(0, 4)
    with pytest.raises(blekota.ConfigError, match="comm must be an mpi4py communicator"):
        Trainer(blekota.Model(hidden=8, layers=1), np.zeros(4000), directory=tmp_path, comm="world")


@needs_mpi
@pytest.mark.parametrize("variable", ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS"])
def test_a_launcher_of_another_mpi_is_refused_before_anything_is_written(tmp_path, sound, variable):
    """mpiexec of one MPI library starting processes whose mpi4py loaded another: each would see
    itself alone and train its own copy over the same files."""
    launchers = parallel.LAUNCHER_SIZE_VARIABLES + parallel.LAUNCHER_RANK_VARIABLES
    env = {name: value for name, value in os.environ.items() if name not in launchers}
    result = subprocess.run(blekota_command("train", str(sound), "--hidden", "8", "--layers", "1", "--iterations", "2",
                                            "--out-dir", "out"),
                            cwd=tmp_path, env={**env, variable: "2"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"blekota: error: started as one of 2 MPI processes ({variable}=2), but MPI sees "
                                    "this process alone: mpi4py probably loaded another MPI library than the launcher's")
    assert result.stderr.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sine.wav"]


@needs_mpi
def test_two_processes_train_the_same_model_as_one(tmp_path, sound):
    one = run(blekota_command("train", str(sound), *FLOAT64, "-q", "--iterations", "20", "--out-dir", "one"), tmp_path)
    two = run(MPIEXEC + blekota_command("train", str(sound), *FLOAT64, "-q", "--iterations", "20", "--out-dir", "two"),
              tmp_path)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert_close(weights(tmp_path / "one/sine_20.npz"), weights(tmp_path / "two/sine_20.npz"))
    one_log = blekota.trainlog.read_log(tmp_path / "one/sine.log.jsonl")
    two_log = blekota.trainlog.read_log(tmp_path / "two/sine.log.jsonl")
    assert [r["iteration"] for r in one_log] == [r["iteration"] for r in two_log] == [10, 20]
    assert two_log[-1]["val_loss"] == pytest.approx(one_log[-1]["val_loss"], rel=1e-12)
    # the two-process checkpoint continues in one process like a straight run of 25
    straight = run(blekota_command("train", str(sound), *FLOAT64, "-q", "--iterations", "25", "--out-dir", "straight"),
                   tmp_path)
    resumed = run(blekota_command("train", "--resume", "two/sine_20.npz", "--iterations", "5", "--threads", "1",
                                  "--checkpoint-sound", "0", "-q", "--out-dir", "resumed"), tmp_path)
    assert straight.returncode == 0 and resumed.returncode == 0, resumed.stderr
    assert_close(weights(tmp_path / "straight/sine_25.npz"), weights(tmp_path / "resumed/sine_25.npz"))
    # on the same number of processes, bit for bit
    straight = run(MPIEXEC + blekota_command("train", str(sound), *FLOAT64, "-q", "--iterations", "25", "--out-dir",
                                             "straight2"), tmp_path)
    resumed = run(MPIEXEC + blekota_command("train", "--resume", "two/sine_20.npz", "--iterations", "5", "--threads",
                                            "1", "--checkpoint-sound", "0", "-q", "--out-dir", "resumed2"), tmp_path)
    assert straight.returncode == 0 and resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(weights(tmp_path / "straight2/sine_25.npz"), weights(tmp_path / "resumed2/sine_25.npz"))


@needs_mpi
@pytest.mark.parametrize("scenario, name", [("exact", "params"), ("frame", "frame")])
def test_every_process_holds_the_same_weights(tmp_path, scenario, name):
    """The stack alone, and with a frame tier (its gradient block handed over last)."""
    worker = [sys.executable, str(HERE / "mpi_worker.py"), scenario, str(tmp_path)]
    assert run(worker, tmp_path).returncode == 0
    result = run(MPIEXEC + worker, tmp_path)
    assert result.returncode == 0, result.stderr
    alone, together = np.load(tmp_path / f"{name}_1.npy"), np.load(tmp_path / f"{name}_2.npy")
    np.testing.assert_array_equal(together[0], together[1])
    assert_close(alone[0], together[0])
    if scenario == "frame":
        assert not np.allclose(together[0][-16 * 48 :], 0)  # the conditioning, started at zero, learned


@needs_mpi
def test_every_process_prunes_the_same_blocks(tmp_path):
    worker = [sys.executable, str(HERE / "mpi_worker.py"), "sparse", str(tmp_path)]
    assert run(worker, tmp_path).returncode == 0
    result = run(MPIEXEC + worker, tmp_path)
    assert result.returncode == 0, result.stderr
    alone, together = np.load(tmp_path / "sparse_1.npy"), np.load(tmp_path / "sparse_2.npy")
    np.testing.assert_array_equal(together[0], together[1])
    zeros = alone[0] == 0
    # at 16 units the diagonal is half of the blocks: half of both UhT pruned, 3/4 of layer 1's WxT
    assert zeros.sum() == 2 * 16 * 48 // 2 + 16 * 48 * 3 // 4
    np.testing.assert_array_equal(together[0] == 0, zeros)
    assert_close(alone[0], together[0])


@needs_mpi
def test_bf16_runs_only_where_every_process_has_it(tmp_path):
    """One process without AVX512_BF16: the default ("auto") trains in float32 in all of them, so
    their gradients are the same kind and the settings agree."""
    result = run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), "bf16", str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [(tmp_path / f"bf16_{rank}.txt").read_text() for rank in range(2)] == ["False", "False"]


@needs_mpi
def test_a_run_stopped_by_time_prunes_by_rank_0s_clock_in_every_process(tmp_path):
    result = run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), "clock", str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stderr
    params, schedules = np.load(tmp_path / "clock.npy"), np.load(tmp_path / "clock_schedule.npy")
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_array_equal(schedules[0], schedules[1])
    start, end, iterations = schedules[0]
    assert 0 < start < end < iterations < 1000  # 10,000 asked: the clock planned and stopped it


@needs_mpi
def test_bad_input_is_reported_once_by_rank_0(tmp_path):
    result = run(MPIEXEC + blekota_command("train", "missing.wav"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "blekota: error: missing.wav: no such file"
    result = run(MPIEXEC + blekota_command("train", "missing.wav", "--batch-size", "1"), tmp_path)
    assert result.stderr.strip() == ("blekota: error: batch_size 1 (train --batch-size) is smaller than the 2 processes: "
                                     "each needs at least one stream")


@needs_mpi
def test_a_refused_run_leaves_no_folder_it_created(tmp_path):
    """As in one process: the folders made for the files (--out-dir, --model-name, --tensorboard)
    are removed again when the run is refused."""
    (tmp_path / "bad.wav").write_text("not a sound")
    result = run(MPIEXEC + blekota_command("train", "bad.wav", "--out-dir", "out/deep", "--model-name", "sub/voice",
                                           "--tensorboard", "runs/voice"), tmp_path)
    assert result.returncode == 2, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.wav"]


@needs_mpi
def test_summing_during_the_backward_pass_is_exact(tmp_path):
    """The gradient blocks summed while the backward pass goes on give the same weights, bit for
    bit, as one sum after it; a model built without threads gets this process's share of the cores."""
    env = {name: value for name, value in os.environ.items() if name != "OMP_NUM_THREADS"}
    result = subprocess.run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), "overlap", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    overlapped, unthreaded, after = np.load(tmp_path / "overlap.npy")
    np.testing.assert_array_equal(overlapped, after)
    np.testing.assert_array_equal(unthreaded, after)
    share = max(1, len(os.sched_getaffinity(0)) // 2) if hasattr(os, "sched_getaffinity") else None
    for rank in (0, 1):
        threads = int((tmp_path / f"threads_{rank}.txt").read_text())
        assert threads == share or (share is None and threads >= 1)


@needs_mpi
@pytest.mark.parametrize("scenario", ["fail", "fail-midway"])
def test_a_failing_process_stops_every_process(tmp_path, scenario):
    result = run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), scenario, str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert (tmp_path / "outcome_0.txt").read_text() == (
        "ProcessError: process 1 of 2 failed: out of memory (cannot allocate the window)")
    assert (tmp_path / "outcome_1.txt").read_text() == "MemoryError: cannot allocate the window"
    assert sorted(p.name for p in tmp_path.glob("t_*.npz")) == ["t_2.npz", "t_4.npz"]
    assert blekota.load(tmp_path / "t_4.npz").info["iterations"] == 4


@needs_mpi
def test_a_process_that_stops_answering_ends_the_job(tmp_path):
    start = time.monotonic()
    result = run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), "hang", str(tmp_path)], tmp_path, timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode != 0
    assert (tmp_path / "outcome_0.txt").read_text().startswith("ProcessLost: no word from the other processes for 3 s")
    assert blekota.load(tmp_path / "t_4.npz").info["iterations"] == 4


@needs_mpi
def test_ctrl_c_while_starting_ends_the_job(tmp_path, sound):
    """Ctrl+C that reaches rank 0 while the other process waits for it in MPI (here while rank 0
    creates the run's folder) ends every process: rank 0 went away and the other waited for good."""
    start = time.monotonic()
    result = run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), "ctrl-c-starting", str(tmp_path)],
                 tmp_path, timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode != 0
    assert result.stderr.count("blekota: interrupted") == 1, result.stderr
    assert not list(tmp_path.glob("run/sine_*"))


@needs_mpi
def test_ctrl_c_while_rank_0_finishes_its_files_lets_it_finish(tmp_path):
    """The other processes wait for rank 0's last files with Ctrl+C still deferred: one that had
    gone ahead was killed by Ctrl+C in MPI_Finalize, and the launcher ended rank 0 with it."""
    result = run(MPIEXEC + [sys.executable, str(HERE / "mpi_worker.py"), "ctrl-c-final-save", str(tmp_path)],
                 tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    for rank in (0, 1):
        assert (tmp_path / f"outcome_{rank}.txt").read_text() == "finished"
    assert blekota.load(tmp_path / "t_4.npz").info["iterations"] == 4


def rank_pid(root: int, rank: int) -> int | None:
    """The pid of the process of this MPI rank started (at any depth) by process root."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            ancestor = int(entry.name)
            while ancestor not in (root, 0, 1):
                ancestor = int((Path("/proc") / str(ancestor) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ancestor == root and {f"PMI_RANK={rank}".encode(), f"OMPI_COMM_WORLD_RANK={rank}".encode()} & set(environ):
            return int(entry.name)
    return None


def start_long_run(tmp_path: Path, sound: Path) -> subprocess.Popen:
    """mpiexec -n 2 training for a long time; returns once its first checkpoint is written."""
    command = MPIEXEC + blekota_command("train", str(sound), *FLOAT64, "--iterations", "100000",
                                        "--checkpoint-every", "5", "--out-dir", "run")
    job = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "run/sine_5.npz").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()
        time.sleep(0.1)
    return job


@needs_mpi
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the processes in /proc")
def test_a_killed_process_ends_the_job_and_the_checkpoints_stay(tmp_path, sound):
    job = start_long_run(tmp_path, sound)
    victim = rank_pid(job.pid, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    start = time.monotonic()
    out, err = job.communicate(timeout=60)
    assert time.monotonic() - start < 60 and job.returncode != 0
    for path in (tmp_path / "run").glob("sine_*.npz"):
        assert blekota.load(path).info["iterations"] % 5 == 0


@needs_mpi
def test_ctrl_c_stops_every_process_after_an_update_and_saves_once(tmp_path, sound):
    job = start_long_run(tmp_path, sound)
    job.send_signal(signal.SIGINT)
    out, err = job.communicate(timeout=60)
    assert job.returncode == 0, err
    stopped = [line for line in out.splitlines() if line.startswith("stopped at iteration")]
    assert len(stopped) == 1
    iteration = int(stopped[0].split()[3].rstrip(";"))
    assert blekota.load(tmp_path / f"run/sine_{iteration}.npz").info["iterations"] == iteration
