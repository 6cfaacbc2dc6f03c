"""The sampling kernels' conditioning input (_sample.generate's cond): per stream a vector added
to layer 0's gate pre-activations at every step, which must act as a layer 0 bias of b + cond on
every path (dense one stream on one and several threads, several streams, sparse float, sparse
int8), at every CPU level, in float32 and float64.

A kernel adds cond to its table row, (input row + b) + cond, where a model with the shifted bias
packs input row + (b + cond): the two differ by a rounding unless both sums are exact. So the
comparisons run with layer 0's weights, biases and cond on a grid of 2^-12 (every sum exact),
where the two must agree bit for bit, and again with ordinary values, where they must agree
within a rounding: float64 distributions within 1e-10 and the same levels; float32 within 1e-5
(see assert_same_draws for the levels); int8 within a small distance (see
test_int8_cond_is_a_shifted_bias_up_to_a_byte).
"""

import numpy as np
import pytest
from test_sample import fed_inputs
from test_sparse import distance, int8_model, prune

import blekota
from blekota import _sample, reference, sampler
from blekota.layout import GATES
from blekota.mulaw import SILENCE

COND_SCALE = 0.5  # conditioning vectors N(0, 0.5^2): they change every distribution noticeably
GRID = 2.0**-12  # layer 0's inputs, biases and cond on this grid: their sums are exact
FLOAT32_ATOL = 1e-5
FLOAT64_ATOL = 1e-10
SEED = 5  # of every run's draws
PATHS = [("dense", "float64"), ("dense", "float32"), ("sparse", "float64"), ("sparse", "float32"),
         ("int8", "float32")]
SHAPES = [(5, 1), (64, 2), (70, 3), (130, 2)]  # padded units but at 64 (there cond is used as given);
# 70 and 130: more than one panel of 64 units


def weight_scale(hidden):
    """The weights' standard deviation: 0.3 as tests/test_sample.py up to 70 units, less above, so
    that the net is no more chaotic than there and a rounding apart stays a rounding apart over a
    run (at 0.3, 130 units amplify one float32 rounding to 1e-2 in 300 steps)."""
    return min(0.3, 2.5 / np.sqrt(hidden))


class Run:
    """S streams of one model through _sample.generate, carrying h, the last levels and the bit
    generator (PCG64(SEED)) from call to call: blekota.sampler.Sampler's seam, with cond."""

    def __init__(self, model, streams=1, threads=1):
        self.packed = sampler.pack(model, streams)
        self.h = model.zero_state(streams).astype(self.packed.dense.dtype)
        self.previous = np.full(streams, SILENCE, np.uint8)
        self.bit_generator = np.random.PCG64(SEED)
        self.threads = threads
        self.tuning = _sample.new_tuning()

    def __call__(self, n, cond=None, hint=None, top_k=0):
        """The next n levels (S, n) and their distributions (S, n, 256); hint (S, n) levels or None."""
        streams = self.h.shape[1]
        hint = np.empty((streams, 0), np.uint8) if hint is None else np.ascontiguousarray(hint, np.uint8)
        levels = np.empty((streams, n), np.uint8)
        probs = np.empty((streams, n, 256), self.packed.dense.dtype)
        _sample.generate(self.packed.dense, self.h, levels, hint, np.full(streams, hint.shape[1], np.intp),
                         self.previous, probs, 1.0, self.bit_generator, self.threads, top_k,
                         tuning=self.tuning, sparse=self.packed.sparse, cond=cond)
        return levels, probs


def shifted(model, cond_row):
    """A copy of `model` whose layer 0 biases are b + cond_row (3H,), gate blocks in GATES order."""
    state = model.state_dict()
    H = model.hidden
    for block, name in enumerate(GATES):
        state[f"gru0.{name}"][:, -1] += cond_row[block * H : (block + 1) * H]
    copy = blekota.Model(hidden=H, layers=model.layers, dtype=model.dtype, seed=0)
    copy.load_state_dict(state)
    copy.int8 = model.int8
    return copy


def on_grid(model):
    """`model` with layer 0's input weights and biases rounded to multiples of GRID."""
    state = model.state_dict()
    for name in GATES:
        matrix = state[f"gru0.{name}"]
        matrix[:, :256] = np.round(matrix[:, :256] / GRID) * GRID
        matrix[:, -1] = np.round(matrix[:, -1] / GRID) * GRID
    model.load_state_dict(state)
    return model


def conditioning(model, streams, exact=False, seed=0):
    """Random (streams, 3H) conditioning vectors in the kernels' dtype (float32 for int8), on the
    grid when exact."""
    cond = np.random.default_rng(seed).standard_normal((streams, 3 * model.hidden)) * COND_SCALE
    if exact:
        cond = np.round(cond / GRID) * GRID
    return cond.astype(np.float32 if model.int8 else model.dtype)


def kernel_model(make_model, kernel, hidden, layers, dtype, exact=False):
    """A model that one stream samples with `kernel`: dense, sparse (20 % of the blocks kept) or
    int8; layer 0 on the grid when exact."""
    if kernel == "int8":
        model = int8_model(make_model, hidden, layers, dtype)
        model.int8 = True
    else:
        model = make_model(hidden, layers, dtype, scale=weight_scale(hidden))
        if kernel == "sparse":
            prune(model, 0.2)
    return on_grid(model) if exact else model


def assert_close(dtype, actual, expected):
    atol = FLOAT64_ATOL if np.dtype(dtype) == np.float64 else FLOAT32_ATOL
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def assert_same_draws(dtype, streams, stream, levels, probs, twin_levels, twin_probs):
    """Stream `stream` of a free run (levels (n,), probs (n, 256)) against its twin's, both drawn
    from PCG64(SEED) with `streams` streams (stream s's draw at step t is uniform t S + s).

    float64: the same levels, the distributions within FLOAT64_ATOL. float32: the same, up to the
    first step (if any) where the levels differ, which must be a draw that fell within rounding
    of the boundary between the two levels (the two runs' running sums of p straddle u there);
    from then on each run is fed its own level and they part, so nothing after it is compared.
    (On this machine none of 40 float32 runs of 500 steps, dense and sparse, parted at all.)
    """
    differ = np.flatnonzero(levels != twin_levels)
    if np.dtype(dtype) == np.float64 or differ.size == 0:
        np.testing.assert_array_equal(levels, twin_levels)
        assert_close(dtype, probs, twin_probs)
        return
    t = differ[0]
    assert_close(dtype, probs[: t + 1], twin_probs[: t + 1])
    raw = np.random.PCG64(SEED).random_raw((t + 1) * streams)[t * streams + stream]
    u = float(raw >> np.uint64(11)) * 2.0**-53  # numpy's next_double
    boundary = np.cumsum(probs[t], dtype=np.float64)[min(levels[t], twin_levels[t])]
    assert abs(boundary - u * probs[t].sum(dtype=np.float64)) < FLOAT32_ATOL


@pytest.mark.parametrize("kernel,dtype", PATHS)
@pytest.mark.parametrize("hidden,layers", SHAPES)
def test_cond_is_exactly_a_shifted_bias(every_cpu_level, make_model, kernel, dtype, hidden, layers):
    model = kernel_model(make_model, kernel, hidden, layers, dtype, exact=True)
    assert sampler.pack(model, 1).kernel == kernel
    cond = conditioning(model, 1, exact=True)
    twin = shifted(model, cond[0])
    for threads in (1, 2) if kernel == "dense" else (1,):
        run, twin_run = Run(model, threads=threads), Run(twin, threads=threads)
        levels, probs = run(300, cond)
        twin_levels, twin_probs = twin_run(300)
        np.testing.assert_array_equal(levels, twin_levels)
        np.testing.assert_array_equal(probs, twin_probs)
        np.testing.assert_array_equal(run.h, twin_run.h)
    plain = Run(model)(300)[1]
    assert distance(probs, plain).max() > 0.05  # cond does change the distributions


@pytest.mark.parametrize("kernel,dtype", [path for path in PATHS if path[0] != "int8"])
@pytest.mark.parametrize("hidden,layers", SHAPES)
def test_cond_is_a_shifted_bias_up_to_rounding(every_cpu_level, make_model, kernel, dtype, hidden,
                                              layers):
    model = kernel_model(make_model, kernel, hidden, layers, dtype)
    cond = conditioning(model, 1)
    twin = shifted(model, cond[0])
    n = 200
    hint = np.random.default_rng(1).integers(0, 256, (1, n))
    assert_close(dtype, Run(model)(n, cond, hint=hint)[1], Run(twin)(n, hint=hint)[1])
    levels, probs = Run(model)(n, cond)
    twin_levels, twin_probs = Run(twin)(n)
    assert_same_draws(dtype, 1, 0, levels[0], probs[0], twin_levels[0], twin_probs[0])


@pytest.mark.parametrize("hidden,layers", SHAPES)
def test_int8_cond_is_a_shifted_bias_up_to_a_byte(every_cpu_level, make_model, hidden, layers):
    """int8 rounds each activation to a byte, so a rounding apart in the sum can move one byte
    by 1 and the state after it: seen once in 20 models of 500 steps, at most 0.008 in total
    variation. Held under 0.02, far inside int8's own 0.05 from float."""
    model = kernel_model(make_model, "int8", hidden, layers, "float32")
    cond = conditioning(model, 1)
    hint = np.random.default_rng(1).integers(0, 256, (1, 300))
    _, probs = Run(model)(300, cond, hint=hint)
    _, twin_probs = Run(shifted(model, cond[0]))(300, hint=hint)
    assert distance(probs, twin_probs).max() < 0.02


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("threads", [2, 3])
def test_one_stream_on_threads_adds_cond_to_each_threads_units(make_model, dtype, threads):
    # hidden 130: three panels of 64 units, split unevenly over 2 threads and one each over 3;
    # 300 steps run past the tuner's probes of one thread and all
    model = kernel_model(make_model, "dense", 130, 3, dtype, exact=True)
    cond = conditioning(model, 1, exact=True)
    levels, probs = Run(model, threads=1)(300, cond)
    again, probs_again = Run(model, threads=threads)(300, cond)
    np.testing.assert_array_equal(levels, again)
    np.testing.assert_array_equal(probs, probs_again)
    twin_levels, twin_probs = Run(shifted(model, cond[0]), threads=threads)(300)
    np.testing.assert_array_equal(levels, twin_levels)
    np.testing.assert_array_equal(probs, twin_probs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("streams,threads", [(3, 1), (5, 2)])
@pytest.mark.parametrize("hidden,layers", [(5, 1), (70, 3)])
def test_each_stream_gets_its_own_cond(every_cpu_level, make_model, dtype, streams, threads, hidden,
                                       layers):
    model = kernel_model(make_model, "dense", hidden, layers, dtype, exact=True)
    cond = conditioning(model, streams, exact=True)
    n = 150
    hint = np.random.default_rng(2).integers(0, 256, (streams, n))
    _, forced = Run(model, streams, threads=threads)(n, cond, hint=hint)
    levels, probs = Run(model, streams, threads=threads)(n, cond)
    for s in range(streams):
        twin = shifted(model, cond[s])
        # alone: the one-stream kernel, whose products round differently from the tiles'
        _, forced_twin = Run(twin)(n, hint=hint[s : s + 1])
        assert_close(dtype, forced[s], forced_twin[0])
        # the same draws need the same uniforms: stream s of a run of as many streams
        twin_levels, twin_probs = Run(twin, streams, threads=threads)(n)
        np.testing.assert_array_equal(levels[s], twin_levels[s])
        np.testing.assert_array_equal(probs[s], twin_probs[s])
    assert not np.array_equal(levels[0], levels[1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_streams_cond_up_to_rounding(make_model, dtype):
    model = kernel_model(make_model, "dense", 70, 3, dtype)
    cond = conditioning(model, 4)
    levels, probs = Run(model, 4, threads=2)(150, cond)
    for s in range(4):
        twin_levels, twin_probs = Run(shifted(model, cond[s]), 4, threads=2)(150)
        assert_same_draws(dtype, 4, s, levels[s], probs[s], twin_levels[s], twin_probs[s])


@pytest.mark.parametrize("kernel,dtype,streams", [(*path, 1) for path in PATHS]
                         + [("dense", "float64", 3), ("dense", "float32", 3)])
def test_cond_matches_the_reference_with_a_shifted_bias(make_model, kernel, dtype, streams):
    """The float64 NumPy oracle, fed the levels each stream drew and its shifted bias; int8 is
    held to its own tolerance from float (tests/test_sparse.py), not to the oracle."""
    model = kernel_model(make_model, kernel, 70, 3, dtype)
    cond = conditioning(model, streams)
    levels, probs = Run(model, streams)(150, cond)
    for s in range(streams):
        p = reference.forward(shifted(model, cond[s]).state_dict(), fed_inputs(levels[s : s + 1]))[0][:, 0]
        if kernel == "int8":
            assert distance(probs[s], p).max() < 0.05
        else:
            tol = 1e-9 if dtype == "float64" else 1e-4
            np.testing.assert_allclose(probs[s], p, rtol=tol, atol=tol)


@pytest.mark.parametrize("kernel,dtype", PATHS + [("streams", "float64"), ("streams", "float32")])
def test_zero_cond_is_bit_identical_to_none(every_cpu_level, make_model, kernel, dtype):
    streams = 4 if kernel == "streams" else 1
    model = kernel_model(make_model, "dense" if kernel == "streams" else kernel, 70, 2, dtype)
    zeros = np.zeros((streams, 3 * model.hidden), sampler.pack(model, streams).dense.dtype)
    for threads in (1, 2):
        plain, with_zeros = Run(model, streams, threads=threads), Run(model, streams, threads=threads)
        for n in (100, 37):  # two calls: the state carries over
            levels, probs = plain(n, top_k=30)
            levels_zeros, probs_zeros = with_zeros(n, zeros, top_k=30)
            np.testing.assert_array_equal(levels, levels_zeros)
            np.testing.assert_array_equal(probs, probs_zeros)
        np.testing.assert_array_equal(plain.h, with_zeros.h)


@pytest.mark.parametrize("kernel,dtype", PATHS)
def test_cond_changed_call_by_call_is_a_bias_changed_call_by_call(make_model, kernel, dtype):
    """How a frame tier drives it: a new cond every frame of 16 steps, the state carried."""
    model = kernel_model(make_model, kernel, 33, 2, dtype, exact=True)
    frames = conditioning(model, 12, exact=True)
    run, twin_run = Run(model), Run(model)
    for cond in frames:
        levels, probs = run(16, cond[None])
        twin = Run(shifted(model, cond))
        twin.h, twin.previous, twin.bit_generator = twin_run.h, twin_run.previous, twin_run.bit_generator
        twin_levels, twin_probs = twin(16)
        np.testing.assert_array_equal(levels, twin_levels)
        np.testing.assert_array_equal(probs, twin_probs)


def test_bad_cond_is_refused(make_model):
    model = make_model(10, 2, "float32")
    wrong = [np.zeros((2, 30), np.float32), np.zeros((1, 31), np.float32), np.zeros(30, np.float32),
             np.zeros((1, 30), np.float64), np.zeros((1, 60), np.float32)[:, ::2], [[0.0] * 30],
             np.zeros((1, 3 * 64), np.float32)]
    for cond in wrong:
        with pytest.raises(ValueError, match=r"cond must be None or a C-contiguous \(1, 30\) array of float32"):
            Run(model)(5, cond)
    with pytest.raises(ValueError, match=r"\(3, 30\) array of float64"):
        Run(make_model(10, 2), streams=3)(5, np.zeros((1, 30)))
    with pytest.raises(ValueError, match=r"float32 .*got a C-contiguous \(1, 30\) array of float64"):
        Run(kernel_model(make_model, "int8", 10, 2, "float64"))(5, np.zeros((1, 30)))
    with pytest.raises(ValueError, match="cond"):
        Run(model)(0, np.zeros((1, 29), np.float32))  # checked even when nothing is generated
