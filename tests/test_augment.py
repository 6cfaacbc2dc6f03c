import numpy as np
import pytest

import blekota
from blekota.augment import SPEED_CHUNK, epoch_speed, input_noise, played_at, random_gain, stream_gains
from blekota.mulaw import quantize, unquantize
from test_train import small_trainer, wobbly_sine


def speechlike(n: int = 101 * 6) -> np.ndarray:
    rng = np.random.default_rng(1)
    return quantize(0.5 * np.sin(np.arange(n) / 7.0) * rng.uniform(0.05, 1, n)).reshape(101, 6)


def test_no_gain_is_the_window_itself():
    window = speechlike()
    assert random_gain(window, 0.0, 5) is window


def test_each_stream_is_scaled_by_its_gain_within_the_range():
    window = speechlike()
    gains = stream_gains(4.0, 7, window.shape[1])
    assert ((gains >= 10 ** (-4 / 20)) & (gains <= 10 ** (4 / 20))).all()
    assert np.unique(gains).size == gains.size
    louder = random_gain(window, 4.0, 7)
    assert louder.dtype == np.uint8 and louder.shape == window.shape
    expected = quantize(np.clip(unquantize(window).astype(np.float64) * gains, -1, 1))
    assert np.abs(louder.astype(int) - expected).max() <= 1  # float32 against float64 arithmetic
    quiet = np.abs(unquantize(window)) < 1e-3  # the samples mu-law resolves worst
    ratios = unquantize(louder)[~quiet] / unquantize(window)[~quiet]
    columns = np.broadcast_to(np.arange(window.shape[1]), window.shape)[~quiet]
    for column, gain in enumerate(gains):
        assert np.median(ratios[columns == column]) == pytest.approx(gain, rel=0.03)


def test_gains_depend_on_the_iteration_only():
    np.testing.assert_array_equal(stream_gains(4.0, 11, 80), stream_gains(4.0, 11, 80))
    assert not np.array_equal(stream_gains(4.0, 11, 80), stream_gains(4.0, 12, 80))
    np.testing.assert_array_equal(stream_gains(4.0, 11, 80)[:5], stream_gains(4.0, 11, 5))


def test_trainer_trains_on_the_windows_at_random_gain(tmp_path):
    plain = small_trainer(tmp_path, random_gain_db=0)
    jittered = small_trainer(tmp_path, random_gain_db=6)
    assert jittered.random_gain_db == 6.0
    first, second = plain._next_window(), jittered._next_window()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, random_gain(first, 6.0, 0))


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 1e308, 96.5, "3", True])
def test_bad_random_gain_is_a_config_error(tmp_path, value):
    with pytest.raises(blekota.ConfigError, match=r"random_gain_db must be a number in \[0, 96\]"):
        small_trainer(tmp_path, random_gain_db=value)


def test_presets_say_their_random_gain(tmp_path):
    assert blekota.PRESETS["default"]["random_gain_db"] > 0
    assert blekota.PRESETS["original"]["random_gain_db"] == 0
    trainer = blekota.Trainer(blekota.Model(hidden=16, layers=1, seed=0), wobbly_sine(), directory=tmp_path)
    assert trainer.random_gain_db == blekota.PRESETS["default"]["random_gain_db"]


@pytest.mark.parametrize("option,value", [("random_gain_db", 5.0), ("input_noise", 1.5)])
def test_resume_keeps_the_augmentation_and_continues_exactly(tmp_path, option, value):
    straight = small_trainer(tmp_path / "a", val_fraction=0, **{option: value})
    for _ in range(6):
        straight.step()
    first = small_trainer(tmp_path / "b", val_fraction=0, **{option: value})
    for _ in range(3):
        first.step()
    path = first.save(tmp_path / "half.npz")
    resumed = blekota.Trainer.from_checkpoint(path, wobbly_sine(), threads=1)
    assert getattr(resumed, option) == value
    for _ in range(3):
        resumed.step()
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)


def test_no_input_noise_is_the_window_itself():
    window = speechlike()
    assert input_noise(window, 0.0, 5) is window


def test_input_noise_moves_levels_by_rounded_normal_draws_keyed_by_the_iteration():
    window = speechlike()
    noisy = input_noise(window, 1.5, 7)
    assert noisy.dtype == np.uint8 and noisy.shape == window.shape
    moved = noisy.astype(int) - window
    assert moved.std() == pytest.approx(1.5, rel=0.15) and abs(moved.mean()) < 0.3
    np.testing.assert_array_equal(noisy, input_noise(window, 1.5, 7))
    assert not np.array_equal(noisy, input_noise(window, 1.5, 8))
    edges = np.array([[0, 255]] * 50, np.uint8)
    clipped = input_noise(edges, 3.0, 1)
    assert clipped[:, 0].max() > 0 and clipped[:, 1].min() < 255  # moved inwards, never wrapped
    assert (clipped[:, 0] < 20).all() and (clipped[:, 1] > 235).all()


def test_trainer_reads_noisy_inputs_and_predicts_the_clean_levels(tmp_path):
    # float32 products, as loss_and_grad's
    trainer = small_trainer(tmp_path, random_gain_db=0, input_noise=1.0, val_fraction=0, bf16=False)
    window = trainer._next_window()
    trainer.position = 0
    h0 = trainer.h.copy()
    expected, _, _ = trainer.model.loss_and_grad(input_noise(window, 1.0, 0), h0, window[1:])
    assert trainer.step() == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(trainer.model.loss_and_grad(window, h0)[0], rel=1e-6)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "3", True])
def test_bad_input_noise_is_a_config_error(tmp_path, value):
    with pytest.raises(blekota.ConfigError, match="input_noise"):
        small_trainer(tmp_path, input_noise=value)


def test_epoch_speeds_lie_within_the_range_keyed_by_the_epoch():
    assert epoch_speed(0.0, 3) == 1.0
    speeds = np.array([epoch_speed(0.06, epoch) for epoch in range(200)])
    assert ((speeds >= 1 / 1.06 - 1 / 2048) & (speeds <= 1.06 + 1 / 2048)).all()
    assert (speeds < 0.97).any() and (speeds > 1.03).any()
    np.testing.assert_array_equal(speeds * 1024, np.rint(speeds * 1024))  # what resample_poly takes
    assert epoch_speed(0.06, 7) == epoch_speed(0.06, 7) != epoch_speed(0.06, 8)


# 1088 / 1024 and 1.5: up and down 16 and 17, 2 and 3
@pytest.mark.parametrize("speed", [973 / 1024, 1033 / 1024, 1085 / 1024, 1088 / 1024, 1.5])
def test_played_at_moves_pitch_and_length_by_the_speed(speed):
    fs, n = 8000, 3 * SPEED_CHUNK + 5000  # several chunks
    levels = quantize(0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / fs))
    played = played_at(levels, speed)
    assert played.dtype == np.uint8 and abs(played.size - n / speed) <= 1
    spectrum = np.abs(np.fft.rfft(unquantize(played) * np.hanning(played.size)))
    assert np.argmax(spectrum) * fs / played.size == pytest.approx(440 * speed, abs=0.5)
    from scipy.signal import resample_poly  # the chunks join into what one call on the whole gives

    down = round(speed * 1024)
    whole = resample_poly(unquantize(levels).astype(np.float64), 1024, down)
    np.testing.assert_array_equal(played, quantize(whole[: played.size]))


def test_played_at_speed_one_is_the_levels_themselves():
    levels = speechlike().ravel()
    assert played_at(levels, 1.0) is levels


def speed_trainer(tmp_path, **kwargs):
    """Epochs of 7 windows per stream, so a few steps cross them."""
    return small_trainer(tmp_path, audio=wobbly_sine(1200), random_gain_db=0, val_fraction=0.05, **kwargs)


def test_each_epoch_trains_on_the_sound_at_its_speed(tmp_path):
    plain = speed_trainer(tmp_path / "a")
    trainer = speed_trainer(tmp_path / "b", random_speed=0.2)
    assert plain.epoch_levels is plain.data.levels
    (start, stop), = trainer.train_ranges
    for epoch in range(3):
        while trainer.epoch < epoch:
            trainer.step()
        speed = epoch_speed(0.2, epoch)
        assert speed != 1.0
        np.testing.assert_array_equal(trainer.epoch_levels, played_at(trainer.data.levels[start:stop], speed))
        assert trainer.layout.samples == (trainer.epoch_levels.size - 1) // 20 // 8 * 8 * 20
        window = trainer._next_window()
        column = trainer.layout.starts[0, trainer.position]
        np.testing.assert_array_equal(window[:, 0], trainer.epoch_levels[column : column + 21])
        trainer.step()


def test_resume_with_random_speed_continues_exactly_across_epochs(tmp_path):
    straight = speed_trainer(tmp_path / "a", random_speed=0.2)
    for _ in range(20):
        straight.step()
    first = speed_trainer(tmp_path / "b", random_speed=0.2)
    for _ in range(9):
        first.step()
    path = first.save(tmp_path / "half.npz")
    resumed = blekota.Trainer.from_checkpoint(path, wobbly_sine(1200), threads=1)
    assert resumed.random_speed == 0.2 and resumed.continues_data and resumed.epoch == first.epoch == 1
    for _ in range(11):
        resumed.step()
    assert resumed.epoch == straight.epoch >= 2
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)


@pytest.mark.parametrize("value", [-0.1, 0.6, float("nan"), "0.1", True])
def test_bad_random_speed_is_a_config_error(tmp_path, value):
    with pytest.raises(blekota.ConfigError, match=r"random_speed must be a number in \[0, 0.5\]"):
        small_trainer(tmp_path, random_speed=value)


def test_a_sound_too_short_for_the_fastest_speed_says_so(tmp_path):
    with pytest.raises(blekota.AudioError, match=r"too short .* played 1.5 times as fast \(random_speed 0.5\)"):
        small_trainer(tmp_path, audio=wobbly_sine(180), batch_size=8, random_speed=0.5)
