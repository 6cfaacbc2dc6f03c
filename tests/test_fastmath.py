"""The kernels' vectorized exp, tanh and sigmoid (csrc/fastmath.h) against NumPy, at every CPU
level (csrc/cpu.h): the one elementwise math of training and sampling."""

import numpy as np
import pytest
from conftest import cpu_level

from blekota import _gru, _vmath

ULPS = {"float32": 2, "float64": 4}  # sigmoid: two more (it rounds an exp, a sum and a quotient)


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """name(x) computed in float64 (float32 inputs) or long double (float64 inputs)."""
    wide = np.longdouble if x.dtype == np.float64 else np.float64
    with np.errstate(over="ignore", invalid="ignore"):
        w = x.astype(wide)
        if name == "exp":
            return np.exp(w)
        if name == "tanh":
            return np.tanh(w)
        return 1 / (1 + np.exp(-w))


def apply(name: str, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _vmath.apply(name, x, out)
    return out


def ulp_error(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|got - want| in units of the last place of want rounded to got's dtype."""
    rounded = want.astype(got.dtype)
    spacing = np.spacing(np.abs(rounded)).astype(want.dtype)
    return np.abs(got.astype(want.dtype) - want) / spacing


def sweep(dtype: str) -> np.ndarray:
    """Dense values over the interesting range plus random bit patterns over all finite values."""
    rng = np.random.default_rng(0)
    limit = 120 if dtype == "float32" else 760
    dense = np.linspace(-limit, limit, 400_001)
    small = np.concatenate([np.geomspace(1e-30, 2, 20_001), -np.geomspace(1e-30, 2, 20_001)])
    bits = rng.integers(0, 2**32 if dtype == "float32" else 2**63, 200_000, dtype=np.uint64)
    pattern = bits.astype(np.uint32).view(np.float32) if dtype == "float32" else bits.view(np.float64)
    pattern = pattern[np.isfinite(pattern)]
    return np.concatenate([dense.astype(dtype), small.astype(dtype), pattern.astype(dtype)])


EXP_MIN = {"float32": np.float32(-87.3365478515625), "float64": -708.39641853226408}  # fastmath.h


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid"])
def test_accuracy_over_the_range(every_cpu_level, name, dtype):
    x = sweep(dtype)
    got = apply(name, x)
    want = reference(name, x)
    tiny = np.finfo(dtype).tiny
    if name == "exp":  # 0 below EXP_MIN, where the true value is (about) a subnormal number
        assert np.all(got[x < EXP_MIN[dtype]] == 0)
        assert np.all(want[x >= EXP_MIN[dtype]] >= tiny * (1 - 1e-6))
        x, got, want = x[x >= EXP_MIN[dtype]], got[x >= EXP_MIN[dtype]], want[x >= EXP_MIN[dtype]]
    if name == "sigmoid":  # 1 / (1 + inf) = 0 where the true value is a subnormal number
        normal = want >= tiny
        assert np.all(np.abs(got[~normal].astype(want.dtype) - want[~normal]) <= tiny)
        x, got, want = x[normal], got[normal], want[normal]
    with np.errstate(over="ignore"):
        overflow = np.isinf(want.astype(dtype))
    assert np.all(got[overflow] == np.inf)
    x, got, want = x[~overflow], got[~overflow], want[~overflow]
    errors = ulp_error(got, want)
    worst = int(np.argmax(errors))
    limit = ULPS[dtype] + 2 * (name == "sigmoid")
    assert errors[worst] <= limit, (x[worst], got[worst], want[worst])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values(every_cpu_level, dtype):
    info = np.finfo(dtype)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1000.0, -1000.0], dtype)
    e, t, s = (apply(name, x) for name in ("exp", "tanh", "sigmoid"))
    assert np.isnan(e[0]) and np.isnan(t[0]) and np.isnan(s[0])
    np.testing.assert_array_equal(e[1:], [np.inf, 0, 1, 1, np.inf, 0])
    np.testing.assert_array_equal(t[1:], [1, -1, 0, 0, 1, -1])
    assert np.signbit(t[4]) and not np.signbit(t[3])
    np.testing.assert_array_equal(s[1:], [1, 0, 0.5, 0.5, 1, 0])
    overflow = np.log(np.float64(info.max)) * 1.0001
    assert apply("exp", np.array([overflow], dtype))[0] == np.inf
    below = np.array([np.log(np.float64(info.tiny)) - 5, -np.finfo(dtype).max], dtype)
    np.testing.assert_array_equal(apply("exp", below), [0, 0])  # no subnormal results
    lowest = apply("exp", np.array([EXP_MIN[dtype]], dtype))[0]
    assert 0 < lowest and lowest == pytest.approx(np.exp(np.float64(EXP_MIN[dtype])), rel=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid"])
def test_every_cpu_level_computes_the_same(name, dtype):
    """With FMA (AVX2, AVX-512) the results agree bit for bit, so the sampler draws the same
    levels at both; the portable level may differ by rounding only."""
    x = np.ascontiguousarray(sweep(dtype)[::7])
    results = {}
    for level in ("portable", "avx2", "avx512"):
        try:
            with cpu_level(level):
                results[level] = apply(name, x)
        except pytest.skip.Exception:
            continue
    if "avx2" in results and "avx512" in results:
        np.testing.assert_array_equal(results["avx2"], results["avx512"])
    for got in results.values():
        np.testing.assert_allclose(got, results["portable"], rtol=8 * np.finfo(dtype).eps, atol=0)


def test_rejects_unknown_function():
    x = np.zeros(3)
    with pytest.raises(ValueError):
        _vmath.apply("log", x, x)


@pytest.mark.parametrize("level", ["portable", "avx2", "avx512"])
def test_fma_peak_is_measured_at_each_simd_level(level):
    """The benchmarks' floor: a positive float32 rate where the level has FMA kernels, 0 at the
    portable level (whose products are BLAS's)."""
    with cpu_level(level):
        peak = _vmath.fma_peak(200_000)
    if level == "portable":
        assert peak == 0.0
    else:
        assert np.isfinite(peak) and peak > 1.0  # GFLOP/s: any FMA unit does more than one
    with pytest.raises(ValueError, match="rounds"):
        _vmath.fma_peak(0)


@pytest.mark.parametrize("level", ["avx2", "avx512"])
def test_bf16_peak_is_measured_where_the_bf16_products_run(level):
    """The floor of the bf16 training products: positive only where window(bf16=True) runs."""
    with cpu_level(level):
        peak = _vmath.bf16_peak(200_000)
        runs = _gru.bf16_products()
    if runs:
        assert np.isfinite(peak) and peak > 1.0
    else:
        assert peak == 0.0
    with pytest.raises(ValueError, match="rounds"):
        _vmath.bf16_peak(0)


@pytest.mark.parametrize("level", ["avx2", "avx512"])
def test_amx_peak_is_measured_where_the_bf16_products_take_amx_tiles(level):
    """The floor of the bf16 training products on AMX tiles: positive only where they run there,
    and then above the VDPBF16PS rate."""
    with cpu_level(level):
        peak = _vmath.amx_peak(20_000)
        runs = _gru.amx_products()
        vector = _vmath.bf16_peak(200_000)
    if runs:
        assert np.isfinite(peak) and peak > vector > 1.0
    else:
        assert peak == 0.0
    with pytest.raises(ValueError, match="rounds"):
        _vmath.amx_peak(0)
