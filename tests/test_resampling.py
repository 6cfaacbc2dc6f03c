"""StreamResampler: block by block, the same samples as scipy's polyphase filter on the whole sound."""

import numpy as np
import pytest
from scipy.signal import resample_poly, upfirdn

from blekota.errors import ConfigError
from blekota.resampling import StreamResampler


@pytest.mark.parametrize("from_fs,to_fs", [(8000, 48000), (8000, 44100), (16000, 8000), (44100, 8000), (3, 7)])
def test_any_split_gives_upfirdns_samples(from_fs, to_fs):
    rng = np.random.default_rng(from_fs + to_fs)
    sound = rng.uniform(-1, 1, 3000)
    resampler = StreamResampler(from_fs, to_fs)
    pieces, start = [], 0
    while start < sound.size:
        size = int(rng.integers(0, 400))  # empty blocks too
        pieces.append(resampler.process(sound[start : start + size]))
        start += size
    made = np.concatenate(pieces)
    assert made.dtype == np.float32
    assert made.size == -(-sound.size * resampler.up // resampler.down)  # every output whose inputs have arrived
    whole = upfirdn(resampler.taps, sound, resampler.up, resampler.down)
    np.testing.assert_allclose(made, whole[: made.size], rtol=0, atol=1e-6)


def test_the_filter_is_resample_polys_and_late_by_half_of_it():
    sound = np.random.default_rng(0).uniform(-1, 1, 800)
    made = StreamResampler(8000, 48000).process(sound)
    delay = 10 * 6  # (taps - 1) / 2 at 48 kHz: 10 input samples
    np.testing.assert_allclose(made[delay:], resample_poly(sound, 6, 1)[: made.size - delay], rtol=0, atol=1e-6)


def test_a_tone_keeps_its_level_and_equal_rates_pass_through():
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    made = StreamResampler(8000, 44100).process(tone)
    assert np.abs(made[4410:-4410]).max() == pytest.approx(0.5, abs=0.005)
    same = StreamResampler(8000, 8000)
    assert np.array_equal(same.process(tone[:100]), tone[:100].astype(np.float32))


@pytest.mark.parametrize("rates", [(0, 8000), (8000, -1), (8000.5, 8000)])
def test_rates_are_checked(rates):
    with pytest.raises(ConfigError):
        StreamResampler(*rates)
