"""train --tensorboard DIR and blekota.TensorBoard: the event files are read back here, record by
record (TFRecord framing, CRCs and tensorboardX's Event protobuf), the way TensorBoard reads them."""

import errno
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import blekota
from blekota.cli import main
from test_parallel import MPIEXEC, blekota_command, needs_mpi

tensorboardX = pytest.importorskip("tensorboardX")
from tensorboardX.proto.event_pb2 import Event, SessionLog  # noqa: E402
from tensorboardX.record_writer import masked_crc32c  # noqa: E402

SMALL = ["--layers", "1", "--hidden", "16", "--seq-length", "20", "--batch-size", "4", "--threads", "1"]
SCALARS = ("train/learning_rate", "train/samples_per_second", "train/epoch")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sound(tmp_path) -> Path:
    t = np.arange(16000) / 8000
    return blekota.save_wav(tmp_path / "sine.wav", 0.6 * np.sin(2 * np.pi * 300 * t + 3 * np.sin(4 * np.pi * t)), 8000)


def records(path: Path) -> list[Event]:
    """The events of one file, each record's length and data checked against their CRCs."""
    data, events, at = path.read_bytes(), [], 0
    while at < len(data):
        header = data[at : at + 8]
        (size,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[at + 8 : at + 12])[0] == masked_crc32c(header)
        body = data[at + 12 : at + 12 + size]
        assert struct.unpack("<I", data[at + 12 + size : at + 16 + size])[0] == masked_crc32c(body)
        at += 16 + size
        event = Event()
        event.ParseFromString(body)
        events.append(event)
    return events


def event_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if "tfevents" in path.name)


def payload(value):
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return value.simple_value
    if kind == "image":
        assert value.image.encoded_image_string.startswith(PNG)
        assert struct.unpack(">II", value.image.encoded_image_string[16:24]) == (value.image.width, value.image.height)
        return value.image.encoded_image_string
    assert kind == "tensor" and value.metadata.plugin_data.plugin_name == "audio"  # as tf.summary.audio writes it
    assert value.metadata.plugin_data.content == b"\x10\x0b"  # AudioPluginData(encoding=WAV)
    assert [dim.size for dim in value.tensor.tensor_shape.dim] == [1, 2] and value.tensor.dtype == 7  # DT_STRING
    return value.tensor.string_val[0]


def read_board(directory: Path, readers_agree: bool = True) -> dict[str, list[tuple[int, object]]]:
    """Each tag's (step, value) as TensorBoard shows them: as its Python reader does, which purges
    every step from a SessionLog START's on; when readers_agree, checked to be the same in its
    Rust reader, which drops a series' points from a step on when that step comes again."""
    purged: dict[str, list] = {}
    preempted: dict[str, list] = {}
    for path in event_files(directory):
        events = records(path)
        assert events[0].file_version == "brain.Event:2"
        for event in events[1:]:
            if event.HasField("session_log"):
                assert event.session_log.status == SessionLog.START
                purged = {tag: [p for p in points if p[0] < event.step] for tag, points in purged.items()}
                continue
            for value in event.summary.value:
                point = (event.step, payload(value))
                purged.setdefault(value.tag, []).append(point)
                series = preempted.setdefault(value.tag, [])
                series[:] = [p for p in series if p[0] < event.step] + [point]
    if readers_agree:
        assert purged == preempted
    for points in purged.values():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps))
    return purged


def steps(board: dict, tag: str) -> list[int]:
    return [step for step, _ in board.get(tag, [])]


def train(sound: Path, out: Path, *options: str) -> int:
    return main(["train", str(sound), *SMALL, "--checkpoint-every", "25", "--checkpoint-sound", "0.05",
                 "--val-every", "20", "--out-dir", str(out), "--seed", "1", "-q", *options])


def test_train_writes_losses_rate_sounds_and_pictures(tmp_path, sound):
    assert train(sound, tmp_path / "m", "--iterations", "60", "--tensorboard", str(tmp_path / "tb")) == 0
    assert len(event_files(tmp_path / "tb")) == 1
    board = read_board(tmp_path / "tb")
    assert sorted(board) == sorted(["loss/train", "loss/validation", *SCALARS, "loss/curve", "generated/sound",
                                    "generated/spectrogram"])
    log = blekota.trainlog.read_log(tmp_path / "m/sine.log.jsonl")
    train_loss = [(r["iteration"], r["train_loss"]) for r in log if r["train_loss"] is not None]
    val_loss = [(r["iteration"], r["val_loss"]) for r in log if r["val_loss"] is not None]
    assert steps(board, "loss/train") == [50, 60] == [step for step, _ in train_loss]
    assert [value for _, value in board["loss/train"]] == pytest.approx([loss for _, loss in train_loss], rel=1e-6)
    assert steps(board, "loss/validation") == [20, 40, 60] == [step for step, _ in val_loss]
    assert [value for _, value in board["loss/validation"]] == pytest.approx([loss for _, loss in val_loss], rel=1e-6)
    for tag in SCALARS:
        assert steps(board, tag) == [50, 60]
    assert [value for _, value in board["train/learning_rate"]] == pytest.approx([0.004, 0.004])
    assert all(value > 0 for _, value in board["train/samples_per_second"])
    assert steps(board, "loss/curve") == [25, 50, 60]  # each checkpoint and the final model
    assert steps(board, "generated/sound") == steps(board, "generated/spectrogram") == [25, 50]
    for step, wav in board["generated/sound"]:
        assert wav == (tmp_path / f"m/sine_{step}.wav").read_bytes()  # the checkpoint's sound as it is
        assert soundfile.info(io.BytesIO(wav)).samplerate == 8000 and soundfile.info(io.BytesIO(wav)).frames == 400


def test_a_resumed_run_appends_without_duplicate_or_out_of_order_steps(tmp_path, sound):
    tb = str(tmp_path / "tb")
    assert train(sound, tmp_path / "m", "--iterations", "60", "--tensorboard", tb) == 0
    first = read_board(tmp_path / "tb")
    # from the checkpoint at 50 (--force: sine_60.npz is written over): the first run's events after it
    # are superseded by the same iterations again
    assert main(["train", "--resume", str(tmp_path / "m/sine_50.npz"), "--iterations", "10", "--tensorboard", tb,
                 "--threads", "1", "-q", "--force"]) == 0
    files = event_files(tmp_path / "tb")
    assert len(files) == 2 and files[0] == event_files(tmp_path / "tb")[0]
    mark = records(files[1])[1]
    assert mark.session_log.status == SessionLog.START and mark.step == 51
    board = read_board(tmp_path / "tb")
    assert {tag: steps(board, tag) for tag in board} == {tag: steps(first, tag) for tag in first}
    for tag in set(board) - {"train/samples_per_second"}:  # resuming is exact: the same losses, pictures, sounds
        assert board[tag] == first[tag]
    # from the older checkpoint at 25: the reports come at other iterations, and the first run's at
    # 50 is purged (TensorBoard's Rust reader shows it until a point of the series comes at 50 or before)
    assert main(["train", "--resume", str(tmp_path / "m/sine_25.npz"), "--iterations", "35", "--tensorboard", tb,
                 "--threads", "1", "-q", "--force"]) == 0
    assert records(event_files(tmp_path / "tb")[2])[1].step == 26
    board = read_board(tmp_path / "tb", readers_agree=False)
    assert steps(board, "loss/train") == [60]
    assert board["loss/train"][0][1] != first["loss/train"][-1][1]  # the mean over 26-60, not over 51-60
    assert board["loss/validation"] == first["loss/validation"]
    assert steps(board, "loss/curve") == [25, 50, 60] and steps(board, "generated/sound") == [25, 50]


def test_resuming_into_an_empty_folder_writes_the_earlier_losses_first(tmp_path, sound):
    assert train(sound, tmp_path / "m", "--iterations", "60") == 0
    assert main(["train", "--resume", str(tmp_path / "m/sine_60.npz"), "--iterations", "10", "--tensorboard",
                 str(tmp_path / "tb"), "--threads", "1", "-q"]) == 0
    board = read_board(tmp_path / "tb")
    assert steps(board, "loss/train") == [50, 60, 70]
    assert steps(board, "loss/validation") == [20, 40, 60, 70]
    assert steps(board, "train/learning_rate") == [70]


def test_a_new_run_is_refused_where_another_left_its_events(tmp_path, sound, capsys):
    tb = tmp_path / "tb"
    assert train(sound, tmp_path / "m", "--iterations", "5", "--tensorboard", str(tb)) == 0
    before = {path: path.read_bytes() for path in event_files(tb)}
    capsys.readouterr()
    assert train(sound, tmp_path / "m", "--iterations", "5", "--tensorboard", str(tb), "--force") == 2
    assert capsys.readouterr().err == (
        f"blekota: error: {tb}: holds the TensorBoard events of an earlier run; give another folder (TensorBoard "
        "shows each folder as a run of its own), go on with that run (--resume), or remove them\n")
    assert {path: path.read_bytes() for path in event_files(tb)} == before
    assert train(sound, tmp_path / "m", "--iterations", "5", "--tensorboard", str(tmp_path / "m/sine_5.npz")) == 2
    assert "sine_5.npz: is not a directory" in capsys.readouterr().err


def test_a_run_refused_before_its_first_update_leaves_no_events(tmp_path, sound, capsys):
    """A user's sound where the run's first checkpoint sound goes refuses the run once TensorBoard has
    started its file; that file held no update, and made the folder refuse the same run next time."""
    out, tb = tmp_path / "m", tmp_path / "tb"
    out.mkdir()
    theirs = blekota.save_wav(out / "sine_25.wav", np.zeros(100), 8000, mark=False)
    assert train(sound, out, "--iterations", "30", "--tensorboard", str(tb)) == 2
    assert "sine_25.wav: not a file blekota wrote" in capsys.readouterr().err
    assert not tb.exists() or event_files(tb) == []
    theirs.rename(tmp_path / "kept.wav")
    assert train(sound, out, "--iterations", "30", "--tensorboard", str(tb)) == 0, capsys.readouterr().err
    assert steps(read_board(tb), "loss/validation") == [20, 30]


def test_a_run_whose_events_cannot_be_started_leaves_no_file_that_refuses_it_later(tmp_path, sound, monkeypatch,
                                                                                   capsys):
    from tensorboardX.event_file_writer import EventsWriter

    def full(writer):
        raise OSError(errno.ENOSPC, "No space left on device")

    tb = tmp_path / "tb"
    with monkeypatch.context() as patch:
        patch.setattr(EventsWriter, "flush", full)  # the first events reach a full disk
        assert train(sound, tmp_path / "m", "--iterations", "5", "--tensorboard", str(tb)) == 2
    assert capsys.readouterr().err == f"blekota: error: {tb}: cannot write TensorBoard events (No space left on device)\n"
    assert not tb.exists() or event_files(tb) == []
    assert train(sound, tmp_path / "m", "--iterations", "5", "--tensorboard", str(tb)) == 0, capsys.readouterr().err


def test_without_tensorboardx_it_is_refused_in_one_line_before_anything_is_written(tmp_path, sound, monkeypatch, capsys):
    for name in [name for name in sys.modules if name.split(".")[0] == "tensorboardX"]:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as when it is not installed
    assert train(sound, tmp_path / "m", "--iterations", "5", "--tensorboard", str(tmp_path / "tb")) == 2
    assert capsys.readouterr().err == (
        'blekota: error: TensorBoard needs the tensorboardX package: pip install "blekota[tensorboard]", or in a clone '
        'of blekota: pip install -e ".[tensorboard]"\n')
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sine.wav"]


def test_the_library_passes_reports_on_and_trains_on_when_writing_fails(tmp_path, sound):
    reports = []
    model = blekota.Model(hidden=16, layers=1, threads=1, seed=0)
    trainer = blekota.Trainer(model, sound, seq_length=20, batch_size=4, directory=tmp_path, name="t",
                              report_every=10, val_every=0, checkpoint_every=0, callback=reports.append)
    with blekota.TensorBoard(tmp_path / "tb", trainer) as board:
        assert trainer.callback is board
        trainer.train(20)
        assert steps(read_board(tmp_path / "tb"), "loss/train") == [10, 20]

        def full(event):
            raise OSError(errno.ENOSPC, "No space left on device")

        board._writer.write_event = full
        trainer.train(10)
    assert trainer.callback == reports.append
    assert trainer.iteration == 30
    warnings = [report.message for report in reports if report.kind == "warning"]
    assert warnings == [f"{tmp_path / 'tb'}: cannot write TensorBoard events (No space left on device); training goes "
                        "on without TensorBoard"]
    assert [report.iteration for report in reports if report.kind == "progress"] == [10, 20, 30]
    assert steps(read_board(tmp_path / "tb"), "loss/train") == [10, 20]


@needs_mpi
def test_only_rank_0_writes(tmp_path, sound):
    command = MPIEXEC + blekota_command("train", str(sound), *SMALL[:-2], "--iterations", "60", "--checkpoint-every", "50",
                                        "--checkpoint-sound", "0.05", "--out-dir", "m", "-q", "--tensorboard", "tb")
    here = str(Path(blekota.__file__).parent.parent)  # this blekota, also where another is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(event_files(tmp_path / "tb")) == 1
    board = read_board(tmp_path / "tb")
    log = blekota.trainlog.read_log(tmp_path / "m/sine.log.jsonl")
    assert steps(board, "loss/train") == [r["iteration"] for r in log if r["train_loss"] is not None] == [50, 60]
    assert steps(board, "generated/sound") == [50]
