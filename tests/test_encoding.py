"""Sounds written as FLAC, Ogg, MP3, ... (blekota.encoding): the samples of a wav, and files kept
whole as a wav's are."""

import errno
import io
from contextlib import contextmanager

import numpy as np
import pytest
import soundfile

import blekota
from blekota import encoding
from blekota.encoding import EncodedRecorder, EncodedWriter, encoding_for, save_sound, sound_writer


def ramp(n: int = 5000) -> np.ndarray:
    return np.linspace(-0.9, 0.9, n, dtype=np.float32)


def test_flac_holds_the_samples_a_wav_holds(tmp_path):
    save_sound(tmp_path / "a.wav", ramp(), 8000)
    assert blekota.save_sound(tmp_path / "a.flac", ramp(), 8000) == tmp_path / "a.flac"
    flac, fs = soundfile.read(tmp_path / "a.flac", dtype="int16")
    np.testing.assert_array_equal(flac, soundfile.read(tmp_path / "a.wav", dtype="int16")[0])
    assert fs == 8000 and soundfile.info(tmp_path / "a.flac").format == "FLAC"


@pytest.mark.parametrize("name,kind", [("a.wav", "WavWriter"), ("-", "WavWriter"), ("a.ogg", "EncodedWriter"),
                                       ("a.Mp3", "EncodedWriter"), ("a.sound", "WavWriter")])
def test_the_writer_by_the_name(tmp_path, name, kind):
    assert type(sound_writer(name, 8000, 10)).__name__ == kind


def test_an_interrupted_or_short_write_leaves_the_file_there_and_nothing_else(tmp_path):
    path = tmp_path / "a.flac"
    save_sound(path, ramp(), 8000)
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt), EncodedWriter(path, 8000, 10_000) as out:
        out.write(ramp())
        raise KeyboardInterrupt
    with pytest.raises(blekota.ConfigError, match="a.flac: 5000 samples written, 10000 announced"):
        with EncodedWriter(path, 8000, 10_000) as out:
            out.write(ramp())
    with pytest.raises(blekota.ConfigError, match="more samples than the 10 announced"):
        with EncodedWriter(path, 8000, 10) as out:
            out.write(ramp())
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_a_recording_keeps_what_was_kept_also_when_interrupted(tmp_path):
    path = tmp_path / "take.ogg"
    with pytest.raises(KeyboardInterrupt), EncodedRecorder(path, 16000) as recorder:
        recorder.write(ramp(3000))
        recorder.write(ramp(3000))
        recorder.keep(4000)
        raise KeyboardInterrupt
    assert recorder.saved and recorder.frames == 4000
    info = soundfile.info(path)
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("OGG", "VORBIS", 16000, 4000)
    with EncodedRecorder(tmp_path / "none.flac", 8000) as empty:
        empty.keep(0)
    assert not empty.saved and sorted(p.name for p in tmp_path.iterdir()) == ["take.ogg"]


def test_names_and_rates_it_does_not_write_are_refused(tmp_path, monkeypatch):
    for name in ("a.m4a", "a.aac", "a.wma", "a.aifc", "model.npz", "model.onnx"):
        with pytest.raises(blekota.ConfigError, match=r"blekota writes sounds as \.wav, \.flac, .*, not \."):
            encoding_for(name)
    with pytest.raises(blekota.ConfigError, match="a.opus: Opus takes 8000, 12000, 16000, 24000, 48000 Hz, not 44100"):
        EncodedWriter("a.opus", 44100, 10)
    monkeypatch.setattr(soundfile, "available_formats", lambda: {"WAV": "", "FLAC": ""})
    with pytest.raises(blekota.ConfigError, match=r"a.mp3: this libsndfile \(.*\) does not write mp3; write .wav or .flac"):
        save_sound(tmp_path / "a.mp3", ramp(), 8000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a.flac", "a.aiff", "a.ogg", "a.w64"])
def test_a_disk_full_while_encoding_is_one_error_naming_the_file(tmp_path, monkeypatch, capfd, name):
    path = tmp_path / name
    path.write_bytes(b"precious")
    real_open_output = encoding.open_output

    class Full(io.BufferedWriter):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextmanager
    def full_disk(target):
        with real_open_output(target) as out:
            yield Full(out.raw)

    monkeypatch.setattr(encoding, "open_output", full_disk)
    with pytest.raises(OSError) as raised:
        save_sound(path, ramp(), 8000)
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == b"precious" and list(tmp_path.iterdir()) == [path]
    assert capfd.readouterr().err == ""  # no traceback from libsndfile's callbacks
