import numpy as np
import pytest

from blekota import BlekotaError, mulaw


def test_silence_and_extremes():
    assert mulaw.quantize(0.0) == mulaw.SILENCE == 128
    assert mulaw.quantize(-1.0) == 0
    assert mulaw.quantize(1.0) == 255
    assert mulaw.quantize(np.inf) == 255 and mulaw.quantize(-np.inf) == 0
    assert mulaw.quantize(7.0) == 255  # clipped
    assert mulaw.unquantize(0) == pytest.approx(-1.0)
    assert mulaw.unquantize(255) == pytest.approx(1.0)


def test_levels_are_uint8_and_monotonic():
    x = np.linspace(-1, 1, 20001)
    levels = mulaw.quantize(x)
    assert levels.dtype == np.uint8
    assert (np.diff(levels.astype(int)) >= 0).all()
    assert set(np.unique(levels)) == set(range(256))


def test_round_trip_within_one_step():
    x = np.linspace(-1, 1, 100001)
    back = mulaw.unquantize(mulaw.quantize(x))
    grid = mulaw.unquantize(np.arange(256)).astype(np.float64)
    index = np.clip(np.searchsorted(grid, x), 1, 255)
    step = grid[index] - grid[index - 1]
    assert (np.abs(back - x) <= step + 1e-7).all()


def test_levels_round_trip_exactly():
    levels = np.arange(256)
    np.testing.assert_array_equal(mulaw.quantize(mulaw.unquantize(levels)), levels)


def test_shapes_are_kept():
    x = np.zeros((3, 4, 5))
    assert mulaw.quantize(x).shape == (3, 4, 5)
    assert mulaw.unquantize(mulaw.quantize(x)).shape == (3, 4, 5)


def test_small_signals_get_fine_levels():
    """Mu-law spends levels on quiet sound: 0.01 and 0.02 land several levels apart."""
    assert int(mulaw.quantize(0.02)) - int(mulaw.quantize(0.01)) >= 3


def test_nan_is_refused():
    with pytest.raises(BlekotaError, match="NaN"):
        mulaw.quantize([0.0, np.nan])


def test_levels_out_of_range_are_refused():
    with pytest.raises(BlekotaError):
        mulaw.unquantize([256])


@pytest.mark.parametrize("bad", ["loud", [1j], np.array([None]), [[0.1], [0.2, 0.3]]])
def test_quantize_refuses_what_is_not_real_numbers(bad):
    with pytest.raises(BlekotaError, match="mulaw.quantize: expected an array of"):
        mulaw.quantize(bad)


@pytest.mark.parametrize("bad", [[0.5], [np.nan], [np.inf], ["7"]])
def test_unquantize_refuses_non_integer_levels(bad):
    with pytest.raises(BlekotaError, match="mulaw.unquantize"):
        mulaw.unquantize(bad)


def test_unquantize_accepts_integral_floats_and_bools():
    np.testing.assert_array_equal(mulaw.unquantize([0.0, 255.0]), mulaw.unquantize([0, 255]))
    assert mulaw.unquantize(np.array([True])).shape == (1,)
