"""train --tensorboard: the event files read back (scalars, audio, pictures), resume, refusal."""

import builtins
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from blekota.cli import main

pytest.importorskip("tensorboardX")
from tensorboardX.proto import event_pb2  # noqa: E402

SMALL = ["--layers", "1", "--hidden", "16", "--seq-length", "20", "--batch-size", "4", "--threads", "1",
         "--checkpoint-sound", "0.05", "--val-every", "20", "--seed", "1"]


@pytest.fixture
def tone(tmp_path):
    import soundfile

    path = tmp_path / "tone.wav"
    t = np.arange(16000) / 8000
    soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * 220 * t), 8000)
    return path


def read_events(directory: Path) -> list:
    """Every Event in the TFRecord files of directory, file by file in the order written."""
    events = []
    for path in sorted(directory.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns):
        data, at = path.read_bytes(), 0
        while at < len(data):
            length = int.from_bytes(data[at : at + 8], "little")
            at += 12  # the length and its checksum
            events.append(event_pb2.Event.FromString(data[at : at + length]))
            at += length + 4  # the record and its checksum
    return events


def summaries(events: list) -> dict[str, list[tuple[int, str]]]:
    """tag -> [(step, kind of value)] of the summary values."""
    found = defaultdict(list)
    for event in events:
        for value in event.summary.value:
            found[value.tag].append((event.step, value.WhichOneof("value")))
    return found


def test_a_run_and_its_resume_as_tensorboard_sees_them(tmp_path, tone, capsys):
    board = tmp_path / "board"
    assert main(["train", str(tone), *SMALL, "--iterations", "100", "--checkpoint-every", "50",
                 "--out-dir", str(tmp_path), "--tensorboard", str(board)]) == 0
    assert f"tensorboard --logdir {board}" in capsys.readouterr().out
    found = summaries(read_events(board))
    for tag in ("loss/train", "lr", "samples_per_s", "epoch"):
        assert [step for step, _ in found[tag]] == [50, 100] and {kind for _, kind in found[tag]} == {"simple_value"}
    assert [step for step, _ in found["loss/validation"]] == [20, 40, 60, 80, 100]
    assert found["sound"] == [(50, "audio"), (100, "audio")]
    assert found["spectrogram"] == [(50, "image"), (100, "image")]
    assert found["loss_curve"] == [(50, "image"), (100, "image")]
    audio = next(value.audio for event in read_events(board) for value in event.summary.value
                 if value.tag == "sound")
    assert audio.sample_rate == 8000 and audio.length_frames == 400
    image = next(value.image for event in read_events(board) for value in event.summary.value
                 if value.tag == "spectrogram")
    assert image.width > 100 and image.height > 100

    assert main(["train", "--resume", str(tmp_path / "tone_50.npz"), "--iterations", "30",
                 "--checkpoint-every", "50", "--tensorboard", str(board)]) == 0
    events = read_events(board)
    restart = [event.step for event in events if event.HasField("session_log")]
    assert restart == [51]  # TensorBoard drops what the first run wrote after iteration 50
    after = summaries(events[[event.HasField("session_log") for event in events].index(True):])
    assert [step for step, _ in after["loss/validation"]] == [60, 80]
    assert after["loss_curve"] == [(80, "image")] and not after["sound"]  # the final save: no sound


def test_without_tensorboardx_it_is_refused_in_one_line(tmp_path, tone, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    assert main(["train", str(tone), *SMALL, "--iterations", "5", "--out-dir", str(tmp_path / "out"),
                 "--tensorboard", str(tmp_path / "board")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "tensorboardX" in error and 'pip install -e ".[tensorboard]"' in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "board").exists()
