import tracemalloc
import warnings

import numpy as np
import pytest
import soundfile

import blekota
from blekota.audio import LAST_PLAYED, PlaybackError, WavRecorder


def tone(fs: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    mono = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_reads_formats_mixes_and_resamples(tmp_path, fmt):
    path = tmp_path / f"tone.{fmt}"
    soundfile.write(str(path), tone(44100, 0.5, channels=2), 44100)
    y, fs = blekota.load_audio(path, fs=8000)
    assert fs == 8000
    assert y.dtype == np.float32
    assert abs(y.size - 4000) <= 1
    assert np.abs(y).max() <= 1.0
    # a 440 Hz tone survives: its spectrum peaks at 440 Hz
    spectrum = np.abs(np.fft.rfft(y[500:3500]))
    peak_hz = np.argmax(spectrum) * 8000 / 3000
    assert abs(peak_hz - 440) < 10


def test_stereo_is_mixed_to_mono(tmp_path):
    path = tmp_path / "lr.wav"
    left = tone(8000, 0.1)
    soundfile.write(str(path), np.stack([left, -left], axis=1), 8000)
    y, _ = blekota.load_audio(path, fs=8000)
    assert np.abs(y).max() < 1e-4


def test_any_target_rate(tmp_path):
    path = tmp_path / "t.wav"
    soundfile.write(str(path), tone(8000, 1.0), 8000)
    y, fs = blekota.load_audio(path, fs=16000)
    assert fs == 16000 and abs(y.size - 16000) <= 1


def test_save_wav_round_trip(tmp_path):
    y = tone(8000, 0.2).astype(np.float32)
    path = blekota.save_wav(tmp_path / "out.wav", y, 8000)
    back, fs = blekota.load_audio(path, 8000)
    assert fs == 8000
    np.testing.assert_allclose(back, y, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary file left


def test_missing_and_non_audio_files_name_the_file(tmp_path):
    with pytest.raises(blekota.AudioError, match="nothing.wav: no such file"):
        blekota.load_audio(tmp_path / "nothing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a sound" * 10)
    with pytest.raises(blekota.AudioError, match="junk.wav: not a sound file"):
        blekota.load_audio(junk)


def test_play_without_sound_output_saves_last_played(tmp_path, monkeypatch):
    """With no PortAudio or no device, play says so and writes last_played.wav."""
    monkeypatch.chdir(tmp_path)
    import sys

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without PortAudio
    with pytest.raises(PlaybackError, match="last_played.wav"):
        blekota.play(tone(8000, 0.1), 8000)
    y, _ = blekota.load_audio(tmp_path / LAST_PLAYED, 8000)
    assert y.size == 800


def test_wav_writing_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = blekota.save_wav(tmp_path / "keep.wav", np.zeros(10), 8000)
    before = path.read_bytes()
    with pytest.raises(blekota.ConfigError, match="the sound to write contains NaN samples"):
        blekota.save_wav(path, np.array([0.1, np.nan]), 8000)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


def recorded(path) -> np.ndarray:
    samples, fs = soundfile.read(path, dtype="float32")
    assert fs == 8000
    return samples


def test_a_recording_keeps_what_was_played_and_gets_its_header_last(tmp_path):
    path = tmp_path / "take.wav"
    sound = tone(8000, 0.3).astype(np.float32)
    with WavRecorder(path, 8000) as out:
        for start in range(0, sound.size, 256):
            out.write(sound[start : start + 256])
        assert not path.exists()  # a temporary file until the recording ends
        out.keep(1000)
    assert out.frames == 1000 and out.written == sound.size and out.saved
    assert path.stat().st_size == 44 + 2 * 1000
    np.testing.assert_allclose(recorded(path), sound[:1000], atol=1 / 32768)
    with WavRecorder(path, 8000) as out:  # without keep: everything written
        out.write(sound[:10])
    assert recorded(path).size == 10


def test_an_interrupted_recording_is_kept_and_a_failed_or_empty_one_is_not(tmp_path):
    path = tmp_path / "take.wav"
    with pytest.raises(KeyboardInterrupt):
        with WavRecorder(path, 8000) as out:
            out.write(np.full(300, 0.25, np.float32))
            raise KeyboardInterrupt
    assert recorded(path).size == 300
    before = path.read_bytes()
    with WavRecorder(path, 8000) as out:
        out.write(np.zeros(50, np.float32))
        out.keep(0)  # nothing played: the file there stays
    assert not out.saved
    with pytest.raises(blekota.ConfigError, match="NaN"):
        with WavRecorder(path, 8000) as out:
            out.write(np.zeros(50, np.float32))
            out.write(np.array([np.nan], np.float32))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["take.wav"]


def test_a_recording_goes_to_a_file():
    with pytest.raises(blekota.ConfigError, match="^-: a recording is written to a file, not a stream"):
        WavRecorder("-", 8000)
    with pytest.raises(blekota.ConfigError, match="sample rate"):
        WavRecorder("take.wav", 0)


def test_a_wav_is_not_written_under_another_formats_name(tmp_path):
    for name in ("take.flac", "take.MP3"):
        with pytest.raises(blekota.ConfigError, match=rf"{name}: a wav is written here, not {name[5:].lower()}; "
                                                      r"give it a name ending in \.wav"):
            blekota.save_wav(tmp_path / name, np.zeros(10), 8000)
        with pytest.raises(blekota.ConfigError, match="a wav is written here"):
            WavRecorder(tmp_path / name, 8000)
    assert list(tmp_path.iterdir()) == []
    assert blekota.save_wav(tmp_path / "take.WAV", np.zeros(10), 8000).exists()


def test_a_wav_is_not_written_over_a_model_files_name(tmp_path):
    """save_wav("voice_5000.npz", y) replaced the model file there with a wav."""
    model = blekota.Model(hidden=4, layers=1).save(tmp_path / "voice_5000.npz")
    before = model.read_bytes()
    for name in ("voice_5000.npz", "bety.PKL", "voice.onnx"):
        with pytest.raises(blekota.ConfigError, match=rf"{name}: a wav is written here, not {name.split('.')[1].lower()}; "
                                                      r"give it a name ending in \.wav"):
            blekota.save_wav(tmp_path / name, np.zeros(10), 8000)
    assert model.read_bytes() == before and sorted(tmp_path.iterdir()) == [model]


def test_samples_beyond_full_scale_are_clipped_with_a_warning(tmp_path):
    path = tmp_path / "hot.wav"
    soundfile.write(str(path), 4 * tone(8000, 0.5), 8000, subtype="FLOAT")  # a float wav peaking at 2.0
    with pytest.warns(blekota.BlekotaWarning, match=r"hot.wav: \d+ samples beyond full scale \(peak 2\) are clipped"):
        y, _ = blekota.load_audio(path, 8000)
    assert np.abs(y).max() == 1.0
    soundfile.write(str(path), [0.5, 1.5, 0.5], 8000, subtype="FLOAT")
    with pytest.warns(blekota.BlekotaWarning, match=r"hot.wav: 1 sample beyond full scale \(peak 1.5\)"):
        blekota.load_audio(path, 8000)
    soundfile.write(str(path), tone(8000, 0.5, channels=2) * [1.9, 0.0], 8000, subtype="FLOAT")  # the mix peaks at 0.95
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blekota.load_audio(path, 8000)


def test_arrays_beyond_full_scale_are_clipped_with_a_warning_where_a_sound_is_written_played_or_heard(tmp_path):
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    with pytest.warns(blekota.BlekotaWarning, match=r"^hint: 100 samples beyond full scale \(peak 1.5\) are clipped"):
        model.sample(10, hint=np.full(100, 1.5), streams=3, seed=0)
    with pytest.warns(blekota.BlekotaWarning, match=r"loud.wav: 1 sample beyond full scale \(peak 3\)"):
        blekota.save_wav(tmp_path / "loud.wav", [0.5, 3.0], 8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.sample(10, hint=np.full(100, 0.5), seed=0)
        blekota.save_wav(tmp_path / "fine.wav", [0.5, -1.0], 8000)


@pytest.mark.parametrize("file_fs,channels,fs", [(44100, 2, 8000), (44100, 1, 8000), (8000, 6, 8000), (8000, 1, 44100)])
def test_the_memory_asked_for_covers_what_reading_takes(tmp_path, monkeypatch, file_fs, channels, fs):
    import scipy.signal  # noqa: F401  (imported before measuring: its import is not the sound's)

    path = tmp_path / "long.wav"
    soundfile.write(str(path), np.full((file_fs * 4, channels), 0.1), file_fs)
    asked = []
    monkeypatch.setattr(blekota.memory, "ensure", lambda size, *what: asked.append(size))
    tracemalloc.start()
    try:
        blekota.load_audio(path, fs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= asked[0]


def test_a_sound_cut_short_is_read_with_a_warning_that_says_how_much_is_there(tmp_path):
    sound = (0.5 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    soundfile.write(tmp_path / "whole.wav", sound, 8000, subtype="PCM_16")
    whole = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: 44 + 2 * 4000])
    with pytest.warns(blekota.BlekotaWarning, match=r"cut.wav: cut short: it holds 0.50 s of the 2.00 s its header promises"):
        samples, _ = blekota.load_audio(tmp_path / "cut.wav", 8000)
    np.testing.assert_array_equal(samples, blekota.load_audio(tmp_path / "whole.wav", 8000)[0][:4000])
    streamed = bytearray(whole)
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"  # a stream's "length not known"
    (tmp_path / "streamed.wav").write_bytes(streamed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert blekota.load_audio(tmp_path / "streamed.wav", 8000)[0].size == 16000
        blekota.load_audio(tmp_path / "whole.wav", 8000)
