"""blekota.soundstats: each measure on sounds whose answer is known."""

import warnings

import numpy as np
import pytest
import scipy.linalg

import blekota
from blekota import soundstats
from blekota.demo import demo_sound

FS = 8000


def tone(f0: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return amplitude * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))


def noise(seconds: float = 1.0, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    return amplitude * np.random.default_rng(seed).standard_normal(int(seconds * FS))


def test_frames_are_32_ms_every_10_ms():
    framed = soundstats.frames(np.arange(FS, dtype=float), FS)
    assert framed.shape == ((FS - 256) // 80 + 1, 256)
    np.testing.assert_array_equal(framed[1, :3], [80, 81, 82])
    assert soundstats.frames(np.zeros(100), FS).shape == (0, 256)


def test_a_harmonic_tone_is_voiced_flat_free_and_at_its_pitch():
    stats = soundstats.describe(tone(150.0), FS)
    assert stats.quiet_share == 0
    assert stats.flatness < 0.01
    assert stats.voiced_share > 0.95
    assert stats.pitch_hz == pytest.approx(150.0, rel=0.01)
    assert stats.pitch_spread < 0.1 and stats.pitch_motion < 0.05


def test_white_noise_is_flat_and_unvoiced():
    stats = soundstats.describe(noise(), FS)
    assert stats.flatness > 0.5
    assert stats.voiced_share < 0.05


def test_a_glide_moves_in_pitch():
    glide = 0.5 * np.sin(2 * np.pi * np.cumsum(np.geomspace(100.0, 200.0, FS)) / FS)
    stats = soundstats.describe(glide, FS)
    assert stats.pitch_motion == pytest.approx(12 / 100, rel=0.2)  # an octave in 100 hops
    assert stats.pitch_spread == pytest.approx(12 / np.sqrt(12), rel=0.15)  # uniform over 12 semitones


def test_quiet_frames_are_judged_by_the_reference_level():
    half = np.concatenate([tone(200.0, 0.5), np.zeros(FS // 2)])
    assert soundstats.describe(half, FS).quiet_share == pytest.approx(0.5, abs=0.05)
    soft = tone(200.0, amplitude=0.01)
    assert soundstats.describe(soft, FS).quiet_share == 0  # by its own level
    level = soundstats.loud_level(tone(200.0), FS)
    assert soundstats.describe(soft, FS, level).quiet_share == 1  # by a louder sound's


def test_bursts_and_pauses_last_as_long_as_they_do():
    burst, pause = tone(200.0, 0.3), np.zeros(int(0.2 * FS))
    gated = np.concatenate([burst, pause] * 6)
    stats = soundstats.describe(gated, FS)
    # a 32 ms frame is loud while any of it holds the tone, so bursts read a frame longer
    assert stats.burst_ms == pytest.approx(300 + 32, abs=10)
    assert stats.pause_ms == pytest.approx(200 - 32, abs=10)
    assert stats.loudness == pytest.approx(1.0, rel=0.01)  # most frames as loud as the loudest
    assert soundstats.describe(gated, FS, 4 * soundstats.loud_level(gated, FS)).loudness == pytest.approx(0.25, rel=0.01)
    assert np.isnan(soundstats.describe(tone(200.0), FS).pause_ms)


def test_run_lengths_split_true_and_false_runs():
    loud, quiet = soundstats.run_lengths(np.array([1, 1, 0, 1, 0, 0, 0], bool))
    np.testing.assert_array_equal(loud, [2, 1])
    np.testing.assert_array_equal(quiet, [1, 3])
    assert [runs.size for runs in soundstats.run_lengths(np.empty(0, bool))] == [0, 0]


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert soundstats.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + [3.0, 0.0, 0.0]
    assert soundstats.frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-6)
    wider = rng.standard_normal((20000, 3)) * 2.0
    # tr(I + 4I - 2 * 2I) = 3
    assert soundstats.frechet_distance(a, wider) == pytest.approx(3.0, rel=0.05)


def test_the_root_of_the_covariance_product_is_the_general_matrix_roots():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.trace(np.real(scipy.linalg.sqrtm(cov_a @ cov_b)))
    assert soundstats.trace_sqrt_product(cov_a, cov_b) == pytest.approx(expected, rel=1e-10)


def test_a_pure_tone_and_silence_are_judged_without_warnings():
    fs = 8000
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(fs) / fs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's sqrtm said "Matrix is singular" of such sounds
        assert soundstats.mel_distance(tone, tone, fs) == pytest.approx(0, abs=1e-6)
        assert soundstats.judge([np.zeros(fs)], tone, fs)["fd"] > 0


def test_the_frechet_parts_split_the_means_from_the_spread():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    average, spread = soundstats.frechet_parts(a, a * 2.0 + [3.0, 0.0, 0.0])
    assert average == pytest.approx(9.0, abs=0.05) and spread == pytest.approx(3.0, rel=0.05)
    assert soundstats.frechet_distance(a, a * 2.0 + [3.0, 0.0, 0.0]) == pytest.approx(average + spread)


def test_variety_tells_a_changing_sound_from_a_drone():
    steady = soundstats.describe(tone(150.0, 2.0), FS)
    # a tenth of a second at a time, one of two vowel-like colours, as speech changes its sounds
    colours = [tone(150.0, 0.1) if k % 2 else np.convolve(tone(150.0, 0.1), [1.0, -0.95], "same")
               for k in range(20)]
    changing = soundstats.describe(np.concatenate(colours), FS)
    assert steady.variety_db < 3.0 < 10.0 < changing.variety_db
    # a louder copy varies as much: it is the change from frame to frame, not the level
    assert soundstats.describe(4.0 * tone(150.0, 2.0), FS).variety_db == pytest.approx(steady.variety_db, rel=0.1)
    assert np.isnan(soundstats.describe(np.zeros(FS), FS).variety_db)


def test_mel_distance_orders_alike_unalike_and_noise():
    sound = demo_sound()
    first, second = sound[: sound.size // 2], sound[sound.size // 2:]
    alike = soundstats.mel_distance(first, second, FS)
    unalike = soundstats.mel_distance(tone(400.0, 4.0), second, FS)
    hiss = soundstats.mel_distance(noise(4.0), second, FS)
    assert alike < 0.1 * unalike and alike < 0.1 * hiss


def test_mel_filters_cover_the_band_once():
    filters = soundstats.mel_filterbank(FS, 256)
    assert filters.shape == (40, 129)
    assert filters.min() >= 0 and filters.max() <= 1
    assert (filters.max(axis=0)[1:-1] > 0).all()


def test_too_short_or_silent_sounds_give_nan_not_errors():
    stats = soundstats.describe(np.zeros(10), FS)
    assert np.isnan(stats.quiet_share) and np.isnan(stats.pitch_hz)
    silent = soundstats.describe(np.zeros(FS), FS)
    assert silent.quiet_share == 1 and np.isnan(silent.flatness) and silent.voiced_share == 0
    assert np.isnan(silent.burst_ms) and silent.pause_ms == pytest.approx(970)  # 97 frames


def test_the_distance_scale_orders_real_levels_and_noise():
    sound = demo_sound()
    floor, levels_floor, ceiling = soundstats.distance_scale(sound, FS, 4 * FS)
    assert floor < levels_floor < ceiling
    # the same excerpts and the same noise every time
    assert soundstats.distance_scale(sound, FS, 4 * FS) == (floor, levels_floor, ceiling)
    # a length over half the sound is judged at half
    assert soundstats.distance_scale(sound, FS, 10 * sound.size) == soundstats.distance_scale(sound, FS, sound.size // 2)


def test_judge_counts_bursts_and_pauses_stream_by_stream():
    burst, pause = tone(200.0, 0.3), np.zeros(int(0.2 * FS))
    streams = [np.concatenate([burst, pause]), np.concatenate([pause, burst, burst])]
    judged = soundstats.judge(streams, np.concatenate(streams), FS)
    # one after another the two pauses would read as one of 0.4 s
    assert judged["pause_ms"] == pytest.approx(200 - 32, abs=10)
    # a run that ends with its stream has no frame past its end: (300 + 32 + 600 - 32) / 2
    assert judged["burst_ms"] == pytest.approx(450, abs=10)
    assert judged["fd"] == pytest.approx(0, abs=1e-6) and judged["fd_average"] == pytest.approx(0, abs=1e-6)
    assert judged["quiet_share"] == pytest.approx(soundstats.describe(np.concatenate(streams), FS).quiet_share)


def test_sounds_it_cannot_measure_are_one_line_config_errors():
    tone = np.sin(np.arange(8000) * 0.05)
    with pytest.raises(blekota.ConfigError, match=r"needs at least 2 frames \(42 ms\) of each sound, got 0 and 97"):
        soundstats.mel_distance(tone[:100], tone, 8000)
    with pytest.raises(blekota.ConfigError, match="the sound contains NaN or infinite samples"):
        soundstats.mel_distance(np.full(8000, np.nan), tone, 8000)
    with pytest.raises(blekota.ConfigError, match="the sound contains NaN or infinite samples"):
        soundstats.describe(np.r_[tone, np.inf], 8000)
    for fs in (0, 10, float("nan"), "8000"):
        with pytest.raises(blekota.ConfigError, match="^fs must be a sample rate of at least 50 Hz"):
            soundstats.describe(tone, fs)
    with pytest.raises(blekota.ConfigError, match="judge needs at least one made-up sound"):
        soundstats.judge([], tone, 8000)


@pytest.mark.parametrize("fs", [50, 51, 100, 149, 200])
def test_low_rates_are_measured_without_pitch_not_a_numpy_error(fs):
    """From 50 Hz on, as frames() promises: a hop of one sample or more, and no pitch where 60-500 Hz
    leaves fewer than three lags below fs / 2 (it raised ValueError from NumPy)."""
    sound = noise(60 * fs / FS)  # 60 s at fs
    assert soundstats.frames(sound, fs).shape[0] > 1
    stats = soundstats.describe(sound, fs)
    assert np.isnan(stats.pitch_hz) and stats.voiced_share == 0
    assert soundstats.pitch_track(sound, 8000, 0.1).shape == soundstats.frames(sound, 8000).shape[:1]


def test_one_sound_is_judged_as_one_stream_not_as_one_stream_a_sample():
    """judge(model.sample(n), ...) took each sample for a stream of its own: no bursts nor pauses."""
    burst, pause = tone(200.0, 0.3), np.zeros(int(0.2 * FS))
    sound = np.concatenate([burst, pause, burst])
    alone = soundstats.judge(sound, sound, FS)
    assert alone == soundstats.judge([sound], sound, FS) == soundstats.judge(list(sound), sound, FS)
    assert alone["pause_ms"] == pytest.approx(200 - 32, abs=10)
    assert soundstats.judge(np.stack([sound, sound]), sound, FS) == soundstats.judge([sound, sound], sound, FS)


@pytest.mark.parametrize("call,message", [
    (lambda: soundstats.describe("abc", FS), "the sound must be an array of float samples, got dtype <U3"),
    (lambda: soundstats.judge(["abc"], noise(), FS), "the sound must be an array of float samples, got dtype <U3"),
    (lambda: soundstats.judge([noise()], "abc", FS), "the sound must be an array of float samples, got dtype <U3"),
    (lambda: soundstats.judge([np.r_[noise(), np.nan]], noise(), FS), "the sound contains NaN or infinite samples"),
    (lambda: soundstats.distance_scale("abc", FS, 100), "the sound must be an array of float samples, got dtype <U3"),
    (lambda: soundstats.distance_scale(noise(), FS, 1.5), "length must be a positive integer, got 1.5"),
    (lambda: soundstats.distance_scale(noise(), FS, 0), "length must be a positive integer, got 0"),
    (lambda: soundstats.distance_scale(noise(), FS, 4000, seed=-1), "seed must be None or an integer >= 0, got -1"),
])
def test_what_is_not_a_sound_is_a_config_error_not_numpys(call, message):
    with pytest.raises(blekota.ConfigError) as raised:
        call()
    assert str(raised.value) == message
