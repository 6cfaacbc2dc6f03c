"""Datasets of several sounds: loading, held-out tails, and windows that never cross a sound."""

import numpy as np
import pytest
import soundfile

import blekota
from blekota.dataset import Dataset, WindowLayout, audio_paths, first_window, validation_pieces
from blekota.train import Trainer


def tone(seconds: float, fs: int, hz: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    mono = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([mono * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)


@pytest.fixture
def sound_dir(tmp_path):
    """Three sounds at different rates and channel counts, and a file that is not a sound."""
    folder = tmp_path / "sounds"
    folder.mkdir()
    soundfile.write(str(folder / "b_stereo_44k.wav"), tone(0.5, 44100, 330, 2), 44100)
    soundfile.write(str(folder / "a_mono_8k.wav"), tone(0.4, 8000, 220, 1), 8000)
    soundfile.write(str(folder / "c_3ch_16k.flac"), tone(0.3, 16000, 440, 3), 16000)
    (folder / "notes.txt").write_text("not a sound")
    return folder


def test_directory_glob_and_list_give_the_sounds_in_order(sound_dir):
    names = ["a_mono_8k.wav", "b_stereo_44k.wav", "c_3ch_16k.flac"]
    assert [p.name for p in audio_paths(sound_dir)] == names
    assert [p.name for p in audio_paths(str(sound_dir / "*.wav"))] == names[:2]
    assert [p.name for p in audio_paths([sound_dir / names[2], str(sound_dir / "a_*")])] == [names[2], names[0]]
    with pytest.raises(blekota.AudioError, match="no files match"):
        audio_paths(str(sound_dir / "*.mp3"))


def test_sounds_are_mono_levels_at_the_model_rate(sound_dir):
    data = Dataset.load(sound_dir, 8000)
    assert data.levels.dtype == np.uint8
    assert data.sizes == [3200, 4000, 2400]  # 0.4 s, 0.5 s and 0.3 s at 8 kHz
    assert data.files == [str(sound_dir / n) for n in ("a_mono_8k.wav", "b_stereo_44k.wav", "c_3ch_16k.flac")]
    # the 44.1 kHz stereo sound, mixed and resampled, is the same tone as its mono mix at 8 kHz
    second = blekota.mulaw.unquantize(data.levels[3200 + 400 : 3200 + 3600])
    t = (np.arange(400, 3600)) / 8000
    np.testing.assert_allclose(second, 0.3125 * np.sin(2 * np.pi * 330 * t), atol=0.02)


def test_windows_never_span_two_sounds_and_state_resets_at_boundaries(sound_dir):
    data = Dataset.load(sound_dir, 8000)
    train, val = data.split(0.1)
    assert train == [(0, 2880), (3200, 6800), (7200, 9360)] and val == [(2880, 3200), (6800, 7200), (9360, 9600)]
    T, B = 50, 4
    layout = WindowLayout(train, T, B)
    sound = np.searchsorted(data.offsets, layout.starts, side="right")
    np.testing.assert_array_equal(sound, np.searchsorted(data.offsets, layout.starts + T, side="right"))
    changes = np.zeros_like(layout.reset)
    changes[:, 0] = True
    changes[:, 1:] = sound[:, 1:] != sound[:, :-1]
    np.testing.assert_array_equal(layout.reset, changes)
    assert layout.reset[:, 1:].any()  # some stream moves on to another sound


def test_each_epoch_deals_from_another_window_until_every_one_was_trained(sound_dir):
    data = Dataset.load(sound_dir, 8000)
    train, _ = data.split(0.1)
    T, B = 50, 4
    every = WindowLayout(train, T, 1).starts.ravel()  # one stream takes them all, in order
    first = WindowLayout(train, T, B)
    assert first.left_over == every.size % B == 3
    np.testing.assert_array_equal(first.starts.ravel(), every[: every.size - 3])  # epoch 0 as it always was
    firsts = [first_window(epoch, every.size) for epoch in range(12)]
    assert every.size == 171 and firsts[:4] == [0, 105, 40, 146] and len(set(firsts)) == 12
    trained = set()
    for epoch, start in enumerate(firsts):
        layout = first.at_epoch(epoch)
        assert layout.starts.shape == first.starts.shape and layout.unused == first.unused
        dealt = layout.starts.ravel()
        np.testing.assert_array_equal(dealt, np.roll(every, -start)[: dealt.size])
        np.testing.assert_array_equal(layout.reset[:, 1:], layout.starts[:, 1:] != layout.starts[:, :-1] + T)
        assert layout.reset[:, 0].all()
        trained |= set(dealt.tolist())
    assert trained == set(every.tolist())


def test_validation_never_overlaps_training_windows(sound_dir):
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    trainer = Trainer(model, sound_dir, seq_length=30, batch_size=5, val_fraction=0.2, log=False)
    layout = trainer.layout
    trained = np.zeros(trainer.data.levels.size, bool)
    trained[(layout.starts[..., None] + np.arange(31)).ravel()] = True
    _, val_ranges = trainer.data.split(0.2)
    held = np.zeros_like(trained)
    for start, stop in val_ranges:
        held[start:stop] = True
    assert held.sum() == 0.2 * trainer.data.levels.size
    assert not (trained & held).any()
    # every held-out prediction is evaluated exactly once
    starts, L, rest = trainer._val
    predicted = np.zeros(trainer.data.levels.size, int)
    for start in starts:
        predicted[start + 1 : start + L + 1] += 1
    for start, stop, _ in rest:
        predicted[start + 1 : stop] += 1
    expected = held.copy()
    for start, _ in val_ranges:
        expected[start] = False  # the first held-out level is an input only
    np.testing.assert_array_equal(predicted, expected.astype(int))
    assert trainer.val_samples == expected.sum()


def test_validation_loss_is_the_forward_pass_over_the_held_out_part(tmp_path):
    model = blekota.Model(hidden=8, layers=2, seed=0, dtype="float64", threads=1)
    audio = tone(0.5, 8000, 300)[:, 0].astype(np.float32)
    trainer = Trainer(model, audio, seq_length=20, batch_size=4, val_fraction=0.05, log=False)
    held = trainer.data.levels[-200:]
    assert trainer.val_samples == 199
    expected = model.window(held[:, None])[0]  # one window: the pieces carry state exactly
    assert trainer.validation_loss() == pytest.approx(expected, rel=1e-12)


def test_validation_pieces_are_batched():
    starts, L, rest = validation_pieces([(0, 1001), (2000, 2551)], streams=4, min_length=100)
    assert L == 388  # ceil(1550 / 4)
    assert starts.tolist() == [0, 388, 2000] and rest == [(776, 1001, 1), (2388, 2551, 2)]


def test_too_short_to_hold_out(tmp_path):
    model = blekota.Model(hidden=8, layers=1, threads=1)
    with pytest.raises(blekota.AudioError, match=r"too short to hold out 0\.1% for validation"):  # not "0%"
        Trainer(model, tone(0.05, 8000, 300)[:, 0], seq_length=10, batch_size=2, val_fraction=0.001, log=False)
    with pytest.raises(blekota.AudioError, match=r"plus the 12\.5% held out for validation"):
        Trainer(model, tone(0.05, 8000, 300)[:, 0], seq_length=100, batch_size=8, val_fraction=0.125, log=False)


def test_a_directory_takes_every_format_libsndfile_reads_and_names_those_it_does_not(tmp_path):
    folder = tmp_path / "takes"
    folder.mkdir()
    for name, kind in [("a.sph", "NIST"), ("b.bwf", "WAV"), ("c.WAVE", "WAV"), ("d.voc", "VOC")]:
        soundfile.write(str(folder / name), tone(0.1, 8000, 220)[:, 0], 8000, format=kind, subtype="PCM_16")
    (folder / "e.m4a").write_bytes(b"\0\0\0\x20ftypM4A " + bytes(100))  # a voice memo: libsndfile reads no AAC
    with pytest.warns(blekota.BlekotaWarning, match=r"takes: left out 1 file in a format libsndfile does not read "
                                                    r"\(e.m4a; convert it to flac or wav"):
        assert [p.name for p in audio_paths(folder)] == ["a.sph", "b.bwf", "c.WAVE", "d.voc"]
    with pytest.warns(blekota.BlekotaWarning, match="e.m4a"):
        assert Dataset.load(folder, 8000).sizes == [800] * 4
    for name in ["a.sph", "b.bwf", "c.WAVE", "d.voc"]:
        (folder / name).unlink()
    with pytest.raises(blekota.AudioError, match=r"takes: directory holds no sound files libsndfile reads "
                                                 r"\(e.m4a; convert it"):
        audio_paths(folder)


def test_sounds_too_short_together_are_told_as_several(tmp_path):
    paths = []
    for name, size in (("a.wav", 200), ("b.wav", 164)):
        soundfile.write(str(tmp_path / name), np.full(size, 0.1), 8000)
        paths.append(str(tmp_path / name))
    model = blekota.Model(hidden=8, layers=1, seed=0, threads=1)
    with pytest.raises(blekota.AudioError, match=r"^the 2 sounds are too short: 364 samples together, need at least"):
        Trainer(model, paths, seq_length=100, batch_size=80, directory=tmp_path)
