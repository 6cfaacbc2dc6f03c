"""The sparse and int8 sampling kernels (csrc/sparse_kernel.h, blekota.sampler): the sparse float
kernel draws exactly the dense kernel's levels; int8 stays within a stated tolerance of the float
distributions on every CPU level and int8 path."""

import numpy as np
import pytest
from conftest import cpu_level

import blekota
from blekota import _sample, reference, sampler, sparsity
from blekota.mulaw import quantize, unquantize
from test_sample import fed_inputs

SHAPES = [(5, 1), (33, 2), (70, 3)]  # odd sizes: padded panels, partial blocks
INT8_TOLERANCE = 0.05  # largest total variation distance of an int8 distribution from the float
# one, per step, for weights N(0, (2 / sqrt(hidden))^2) (trained 3x256 models: 0.01-0.02 on average)


def int8_model(make_model, hidden, layers, dtype="float32"):
    return make_model(hidden, layers, dtype, scale=2 / np.sqrt(hidden))


def distance(p, q):
    """Total variation distance of each step's distributions (..., 256) -> (...)."""
    return 0.5 * np.abs(p.astype(np.float64) - q).sum(axis=-1)


def prune(model: blekota.Model, density: float, seed: int = 0) -> blekota.Model:
    """Zero random blocks (8 units of one gate by 4 inputs) of the hidden-sized matrices, keeping
    about `density` of them (the layout blekota.sparsity trains to)."""
    rng = np.random.default_rng(seed)
    H, G, at = model.hidden, 3 * model.hidden, 0
    for layer in range(model.layers):
        X = 256 if layer == 0 else H
        WxT = model.params[at : at + X * G].reshape(X, G)
        UhT = model.params[at + X * G : at + (X + H) * G].reshape(H, G)
        for matrix in [UhT] + ([WxT] if layer else []):
            for gate in range(3):
                for row in range(0, H, 4):
                    for unit in range(0, H, 8):
                        if rng.random() > density:
                            matrix[row : row + 4, gate * H + unit : gate * H + min(unit + 8, H)] = 0
        at += (X + H + 1) * G
    return model


@pytest.fixture
def sparse_model(make_model):
    def build(hidden, layers, dtype, density=0.2):
        return prune(make_model(hidden, layers, dtype, scale=0.3), density)
    return build


def dense_kernel(model, **options):
    """model.sample(...) forced onto the dense kernel."""
    previous, sampler.SPARSE_BELOW = sampler.SPARSE_BELOW, -1.0
    try:
        return model.sample(**options)
    finally:
        sampler.SPARSE_BELOW = previous


def test_block_density_and_the_kernel_chosen(sparse_model):
    dense = blekota.Model(hidden=64, layers=2, seed=0)
    assert sparsity.block_density(dense) == 1.0
    assert sampler.pack(dense, streams=1).kernel == "dense"
    model = sparse_model(64, 2, "float32", density=0.1)
    assert 0.05 < sparsity.block_density(model) < 0.15
    assert sampler.pack(model, streams=1).kernel == "sparse"
    assert sampler.pack(model, streams=3).kernel == "dense"
    model.int8 = True
    assert sampler.pack(model, streams=1).kernel == "int8"
    assert sampler.pack(model, streams=2).kernel == "dense"


@pytest.mark.parametrize("density", [0.1, 0.3])
def test_prune_at_once_keeps_the_strongest_blocks(density):
    model = blekota.Model(hidden=128, layers=2, seed=0)  # diagonal blocks: 8 / 128 of each Uh
    before = model.params.copy()
    sparsity.prune(model, density)
    assert sparsity.block_density(model) == pytest.approx(density, abs=0.01)
    kept = model.params != 0
    np.testing.assert_array_equal(model.params[kept], before[kept])  # kept weights untouched
    assert sampler.kernel_for(model, 1) == "sparse"


@pytest.mark.parametrize("hidden,layers", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.8, 12, 0.95), (0.0, 0, 1.0)])
def test_sparse_kernel_draws_the_dense_levels(every_cpu_level, sparse_model, dtype, hidden, layers,
                                              temperature, top_k, top_p):
    model = sparse_model(hidden, layers, dtype)
    options = dict(n=500, seed=7, temperature=temperature, top_k=top_k, top_p=top_p)
    assert sampler.pack(model, 1).kernel == "sparse"
    np.testing.assert_array_equal(model.sample(**options), dense_kernel(model, **options))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparse_probabilities_equal_dense_and_match_reference(sparse_model, dtype, rng):
    model = sparse_model(70, 3, dtype)
    hint = unquantize(rng.integers(0, 256, 60))
    sound, probs = model.sample(60, hint=hint, return_probs=True)
    _, dense_probs = dense_kernel(model, n=60, hint=hint, return_probs=True)
    np.testing.assert_array_equal(probs, dense_probs)
    expected = reference.forward(model.state_dict(), fed_inputs(quantize(sound)[None]))[0][:, 0]
    tol = 1e-9 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(probs, expected, rtol=tol, atol=tol)


def test_sparse_chunks_carry_the_state(sparse_model):
    model = sparse_model(33, 2, "float32")
    whole = model.sample(3000, seed=4)
    chunks = np.concatenate(list(model.generate(3000, chunk=700, seed=4)))
    np.testing.assert_array_equal(whole, chunks)


@pytest.mark.parametrize("hidden,layers", SHAPES)
@pytest.mark.parametrize("density", [0.2, 1.0])
def test_int8_probabilities_near_float_on_every_path(every_cpu_level, sparse_model, make_model,
                                                     hidden, layers, density, rng):
    model = int8_model(make_model, hidden, layers)
    if density < 1:
        prune(model, density)
    hint = unquantize(rng.integers(0, 256, 80))
    _, exact = model.sample(80, hint=hint, return_probs=True)
    model.int8 = True
    _, approximate = model.sample(80, hint=hint, return_probs=True)
    assert distance(approximate, exact).max() < INT8_TOLERANCE
    assert not np.array_equal(approximate, exact)  # the int8 kernel did run
    free = model.sample(400, seed=2, top_k=20)
    assert free.shape == (400,) and np.isfinite(free).all()


@pytest.mark.parametrize("int8", [False, True])
def test_sparse_and_int8_smooth_towards_their_own_means(sparse_model, make_model, int8):
    """Each kernel writes its sample towards the mean of the distribution it drew from."""
    model = int8_model(make_model, 33, 2) if int8 else sparse_model(33, 2, "float32")
    if int8:
        prune(model, 0.3)
        model.int8 = True
    assert sampler.pack(model, 1).kernel == ("int8" if int8 else "sparse")
    drawn, probs = model.sample(400, seed=3, smooth=0, return_probs=True, temperature=0.9)
    means = probs.astype(np.float64) @ unquantize(np.arange(256)).astype(np.float64)
    np.testing.assert_allclose(model.sample(400, seed=3, smooth=0.4, temperature=0.9),
                               drawn + 0.4 * (means - drawn), rtol=0, atol=1e-6)


def test_int8_paths_sum_the_same(make_model, rng):
    """The integer sums of VNNI, AVX2 and plain C are exact, so their logits agree to the
    rounding of the level's transcendentals."""
    model = int8_model(make_model, 70, 3)
    model.int8 = True
    hint = unquantize(rng.integers(0, 256, 50))
    found = {}
    for level in ("portable", "avx2", "avx512"):
        with cpu_level(level):
            found[_sample.int8_path()] = model.sample(50, hint=hint, return_probs=True)[1]
    reference_probs = found.pop("portable")
    for probs in found.values():
        np.testing.assert_allclose(probs, reference_probs, rtol=1e-5, atol=1e-6)


def test_int8_double_model_runs_in_float32(make_model, rng):
    model = int8_model(make_model, 33, 2, "float64")
    hint = unquantize(rng.integers(0, 256, 40))
    _, exact = model.sample(40, hint=hint, return_probs=True)
    model.int8 = True
    _, approximate = model.sample(40, hint=hint, return_probs=True)
    assert approximate.dtype == np.float64
    assert distance(approximate, exact).max() < INT8_TOLERANCE


def test_int8_is_saved_with_the_model(tmp_path):
    model = blekota.Model(hidden=16, layers=1, seed=0)
    assert model.int8 is False
    model.int8 = True
    model.save(tmp_path / "m.npz")
    assert blekota.load(tmp_path / "m.npz").int8 is True
    with pytest.raises(blekota.ConfigError, match="int8"):
        model.int8 = "yes"


def index_sets(index: np.ndarray, products: list[int]) -> list[list[tuple[int, np.ndarray, np.ndarray]]]:
    """A sparse index (sparse_kernel.h) -> per product (its column count given), per set: the
    place in the index, the first columns (4,) of its groups and the rows (n, 4)."""
    out, at = [], 0
    for columns in products:
        sets = []
        for _ in range(columns // 32):
            n = index[at]
            sets.append((at, index[at + 1 : at + 5], index[at + 5 : at + 5 + 4 * n].reshape(n, 4)))
            at += 5 + 4 * n
        out.append(sets)
    assert at == index.size
    return out


def product_columns(model, int8: bool) -> list[int]:
    Hp = sampler._padded(model.hidden)
    return [2 * Hp, Hp] * model.layers + ([256] if int8 else [])


@pytest.mark.parametrize("int8", [False, True])
def test_sets_group_by_kept_count_so_padding_is_least(int8):
    model = blekota.Model(hidden=128, layers=3, seed=0)
    sparsity.prune(model, 0.1)
    model.int8 = int8
    packed = sampler.pack(model, streams=1)
    index, padded, neighbours, real = packed.sparse[0], 0, 0, 0
    matrices = sampler._products(model.core_params, 3, 128)
    if int8:  # the output layer's blocks are all kept
        matrices.append(np.ones((sampler._padded(128), 256)))
    sets = index_sets(index, product_columns(model, int8))
    for matrix, product in zip(matrices, sets):
        kept = np.abs(sampler._blocks(matrix)).sum(axis=(2, 3)) > 0  # (groups, row blocks)
        counts = kept.sum(axis=1)
        real += counts.sum()
        padded += 4 * np.sort(counts).reshape(-1, 4).max(axis=1).sum()
        neighbours += 4 * counts.reshape(-1, 4).max(axis=1).sum()
        firsts = np.concatenate([first for _, first, _ in product])
        assert sorted(firsts) == list(range(0, matrix.shape[1], 8))  # each group in one set
        assert (np.diff(counts[firsts // 8]) >= 0).all()  # taken in order of their counts
        for _, first, rows in product:  # each group's kept row blocks, in order, then padding
            for k in range(4):
                found = np.flatnonzero(kept[first[k] // 8])
                assert list(rows[: len(found), k] // 4) == list(found) and not rows[len(found) :, k].any()
    assert _sample.walk_blocks(index, 3, 128, int8) == padded
    assert packed.sparse[2 if int8 else 1].ctypes.data % 64 == 0  # blocks on cache lines
    assert padded < neighbours and padded / real < 1.1


def test_a_bad_index_is_refused(sparse_model):
    model = sparse_model(33, 2, "float32")
    packed = sampler.pack(model, streams=1)
    index = packed.sparse[0]
    blocks = _sample.walk_blocks(index, 2, 33, False)
    assert blocks * 32 == packed.sparse[1].size
    row = next(at + 5 for product in index_sets(index, product_columns(model, False))
               for at, _, rows in product if rows.size)

    def changed(at: int, value: int) -> np.ndarray:
        return np.where(np.arange(index.size) == at, value, index).astype(np.int32)

    first_column = 1  # of the first set's first group
    for broken, message in [(index[:-1], "too short|out of range"), (np.append(index, 0).astype(np.int32), "longer"),
                            (changed(row, 2), "row"), (changed(first_column, 3), "column"),
                            (changed(first_column, 10**4), "column"), (changed(2, index[1]), "repeated"),
                            (changed(0, 10**6), "count")]:
        with pytest.raises(ValueError, match=message):
            _sample.walk_blocks(np.ascontiguousarray(broken), 2, 33, False)
    with pytest.raises(ValueError, match="weights"):
        levels = np.empty((1, 5), np.uint8)
        _sample.generate(packed.dense, np.zeros((2, 1, 33), np.float32), levels,
                         np.empty((1, 0), np.uint8), np.zeros(1, np.intp), np.zeros(1, np.uint8),
                         np.empty((1, 0, 256), np.float32), 1.0, np.random.PCG64(0), 1,
                         sparse=(index, packed.sparse[1][:-32], *packed.sparse[2:]))


def test_sample_and_info_say_which_kernel(tmp_path, capsys):
    from blekota.cli import main

    path = tmp_path / "sparse.npz"
    prune(blekota.Model(hidden=32, layers=2, seed=0), 0.1).save(path)
    assert main(["info", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "one stream on the sparse kernel" in shown and "of the 8x4 blocks hold weights now" in shown
    wav = tmp_path / "out.wav"
    assert main(["sample", str(path), "-n", "300", "-o", str(wav), "--seed", "1"]) == 0
    assert "sparse kernel, 1 thread" in capsys.readouterr().out
    float_sound = blekota.audio.load_audio(wav, 8000)[0]
    assert main(["sample", str(path), "-n", "300", "-o", str(wav), "--seed", "1", "--int8", "--force"]) == 0
    assert "int8 kernel" in capsys.readouterr().out
    assert blekota.audio.load_audio(wav, 8000)[0].shape == float_sound.shape


@pytest.mark.parametrize("int8", [False, True])
def test_a_stream_of_a_sparse_model_continues_its_sample(sparse_model, int8):
    model = sparse_model(33, 2, "float64")
    model.int8 = int8
    stream = model.stream(seed=5, top_k=30)
    blocks = np.concatenate([stream.process(n) for n in (64, 200, 1, 300)])
    np.testing.assert_array_equal(blocks, model.sample(565, seed=5, top_k=30))
