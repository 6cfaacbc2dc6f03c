"""The bf16 sampling kernel (blekota.sampler, csrc/sample_kernel.h): dense streams with every
product's weights and inputs rounded to bfloat16 and float32 sums. Checked against a float64
NumPy oracle that rounds the same operands, for the same numbers on every CPU level (vdpbf16ps
where the CPU has AVX512_BF16, float instructions elsewhere) and for a stream alone or among
several, and for its distance from float32."""

import numpy as np
import pytest
from conftest import cpu_level

import blekota
from blekota import _sample, sampler
from blekota.cli import main
from blekota.mulaw import SILENCE

SHAPES = [(5, 1), (64, 2), (70, 3), (130, 2)]  # padded units; more than one panel of 64 units
NEAR_FLOAT = 0.01  # largest total variation of a bf16 distribution from the float32 one, per step


def to_bf16(values) -> np.ndarray:
    """values rounded to float32, then to bfloat16 (to nearest, ties to even), as float64."""
    bits = np.asarray(values, np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def oracle(model: blekota.Model, level: int, state: np.ndarray, rounded: bool = True) -> np.ndarray:
    """The distribution (256,) of one step from the hidden state (layers, H) fed `level`, each
    product's weights and inputs rounded by to_bf16 (not when rounded is False) and summed in
    float64; layer 0's table rows and every bias as they are."""
    to_bf16 = globals()["to_bf16"] if rounded else (lambda values: np.asarray(values, np.float64))
    params = {key: np.asarray(value, np.float64) for key, value in model.state_dict().items()}
    H = model.hidden
    x = None
    for layer in range(model.layers):
        W, Wr, Wz = (params[f"gru{layer}.{name}"] for name in ("W", "Wr", "Wz"))
        h = np.asarray(state[layer], np.float64)

        def pre(matrix, recurrent):
            given = matrix[:, level] if layer == 0 else to_bf16(matrix[:, :H]) @ to_bf16(x)
            return given + to_bf16(matrix[:, -H - 1 : -1]) @ to_bf16(recurrent) + matrix[:, -1]

        r, z = sigmoid(pre(Wr, h)), sigmoid(pre(Wz, h))
        x = (1 - z) * h + z * np.tanh(pre(W, r * h))
    Wy = params["out.Wy"]
    y = to_bf16(Wy[:, :-1]) @ to_bf16(x) + Wy[:, -1]
    return np.exp(y - y.max()) / np.exp(y - y.max()).sum()


def bf16_model(make_model, hidden, layers, dtype="float32"):
    """A model sampled with bf16 products, its weights no more chaotic than a rounding can follow."""
    model = make_model(hidden, layers, dtype, scale=min(0.3, 2.5 / np.sqrt(hidden)))
    model.bf16_sampling = True
    return model


def drawn(model, n, top_k):
    """(levels (n,), distributions (n, 256)) of one stream through blekota.sampler.Sampler."""
    run = sampler.Sampler(model, 1, 3)
    levels, probs = np.empty((1, n), np.uint8), np.empty((1, n, 256), run.packed.dense.dtype)
    run.run(levels, np.empty((1, 0), np.uint8), np.zeros(1, np.intp), probs, 1.0, (top_k, 1.0, 0.0))
    return levels[0], probs[0]


def stepwise(model, steps, rounded=True):
    """Each step's distribution (steps, 256) from the bf16 kernel, and from the oracle given the
    kernel's own state and level before the step."""
    run = sampler.Sampler(model, 1, 3)
    assert run.packed.kernel == "bf16"
    probs, levels = np.empty((1, 1, 256), np.float32), np.empty((1, 1), np.uint8)
    kernel, expected = np.empty((steps, 256)), np.empty((steps, 256))
    for t in range(steps):
        level, state = int(run.previous[0]), run.h[:, 0].copy()
        run.run(levels, np.empty((1, 0), np.uint8), np.zeros(1, np.intp), probs, 1.0, (0, 1.0, 0.0))
        kernel[t], expected[t] = probs[0, 0], oracle(model, level, state, rounded)
    return kernel, expected


@pytest.mark.parametrize("hidden,layers", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bf16_kernel_matches_the_rounding_oracle(every_cpu_level, make_model, hidden, layers, dtype):
    """Step by step from the kernel's own state, so that both round the same inputs; within a step
    the oracle's float64 may round a value the kernel holds in float32 to the neighbouring
    bfloat16 (rarely: a few steps in a hundred), which moves a probability by up to ~1e-3."""
    kernel, expected = stepwise(bf16_model(make_model, hidden, layers, dtype), 200)
    errors = np.abs(kernel - expected).max(axis=1)
    assert np.median(errors) < 1e-6 and (errors < 1e-5).mean() > 0.9 and errors.max() < 5e-3


@pytest.mark.parametrize("hidden,layers", [(70, 3), (130, 2)])
def test_every_cpu_level_gives_the_same_numbers(make_model, hidden, layers):
    """vdpbf16ps and the float instructions add the same exact products in the same order: the
    same levels, and the distributions as equal as the float kernels' elementwise math is from
    level to level (AVX2 and AVX-512 bit for bit)."""
    model = bf16_model(make_model, hidden, layers)
    runs = {}
    for level in ("portable", "avx2", "avx512"):
        try:
            with cpu_level(level):
                runs[level] = drawn(model, 400, 40)
        except pytest.skip.Exception:
            continue
    for levels, probs in runs.values():
        np.testing.assert_array_equal(levels, runs["portable"][0])
        np.testing.assert_allclose(probs, runs["portable"][1], rtol=1e-5, atol=1e-7)
    if "avx512" in runs:
        np.testing.assert_array_equal(runs["avx512"][1], runs["avx2"][1])


@pytest.mark.parametrize("hidden,layers", SHAPES)
@pytest.mark.parametrize("streams", [2, 7])
def test_many_streams_get_the_sums_of_one_stream(every_cpu_level, make_model, rng, hidden, layers, streams):
    """Several streams multiply in tiles of streams (vdpbf16ps, or float instructions on the same
    rounded inputs): each stream's distributions are those of the stream alone, bit for bit, on one
    thread or two."""
    model = bf16_model(make_model, hidden, layers)
    hints = list(rng.uniform(-0.6, 0.6, (streams, 120)))
    alone = np.stack([model.sample(120, hint=hint, seed=1, return_probs=True)[1] for hint in hints])
    for threads in (1, 2):
        model.threads = threads
        _, together = model.sample(120, hint=hints, streams=streams, seed=1, return_probs=True)
        np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(model.sample(300, streams=streams, seed=5),
                                  np.concatenate(list(model.generate(300, chunk=70, streams=streams, seed=5)), axis=1))
    model.bf16_sampling = False
    _, exact = model.sample(120, hint=hints, streams=streams, seed=1, return_probs=True)
    assert np.abs(exact - alone).max() > 1e-6  # the float32 kernel gives other numbers


def test_bf16_path_names_how_it_runs():
    """One stream takes vdpbf16ps wherever the CPU has it; several streams only where it runs at
    the float32 FMA's rate (not on Intel CPUs, where float instructions are faster)."""
    with open("/proc/cpuinfo") as cpuinfo:
        intel = "GenuineIntel" in cpuinfo.read()
    assert sampler.bf16_path() in ("avx512_bf16", "float")
    assert sampler.bf16_path(8) == ("float" if intel else sampler.bf16_path())
    with cpu_level("portable"):
        assert sampler.bf16_path() == sampler.bf16_path(8) == "float"


@pytest.mark.parametrize("hidden,layers", [(64, 2), (130, 2)])
def test_a_bf16_step_is_near_the_exact_one(make_model, hidden, layers):
    """From the same state, a step's distribution is within NEAR_FLOAT of the unrounded float64
    one (trained 3x256 models fed real sound: 2.9e-3 on average, 0.017 at most)."""
    kernel, exact = stepwise(bf16_model(make_model, hidden, layers), 200, rounded=False)
    variation = 0.5 * np.abs(kernel - exact).sum(axis=-1)
    assert variation.max() < NEAR_FLOAT
    assert variation.max() > 1e-5  # the products were rounded


def test_the_kernel_chosen(make_model):
    model = bf16_model(make_model, 64, 2)
    assert sampler.kernel_for(model, 1) == sampler.kernel_for(model, 2) == "bf16"
    packed = sampler.pack(model, 1)
    assert packed.dense.dtype == np.float32 and packed.half.dtype == np.uint16
    assert packed.half.size == packed.dense.size and packed.sparse is None
    model.int8 = True
    assert sampler.kernel_for(model, 1) == "int8"
    plain = blekota.Model(hidden=16, layers=1, seed=0)
    assert not plain.bf16_sampling and sampler.pack(plain, 1).half is None
    with pytest.raises(blekota.ConfigError, match="bf16_sampling must be True or False"):
        plain.bf16_sampling = "yes"


def test_chunks_threads_hints_and_the_stream_carry_the_state(make_model):
    model = bf16_model(make_model, 70, 2)
    model.threads = 1
    whole = model.sample(3000, seed=4)
    model.threads = 2  # the units split over two threads: the same arithmetic
    np.testing.assert_array_equal(whole, model.sample(3000, seed=4))
    np.testing.assert_array_equal(whole, np.concatenate(list(model.generate(3000, chunk=700, seed=4))))
    stream = model.stream(seed=4)
    np.testing.assert_array_equal(whole, np.concatenate([stream.process(1000) for _ in range(3)]))
    hinted = model.sample(600, hint=whole[:500], seed=2)
    assert hinted.shape == (600,) and np.isfinite(hinted).all()


def test_generate_refuses_half_panels_it_cannot_run(make_model):
    model = bf16_model(make_model, 16, 1)
    packed = sampler.pack(model, 1)
    base = dict(hint=np.empty((2, 0), np.uint8), hint_length=np.zeros(2, np.intp),
                previous=np.full(2, SILENCE, np.uint8), probs=np.empty((2, 0, 256), np.float32),
                temperature=1.0, bit_generator=np.random.PCG64(0), threads=1)
    with pytest.raises(ValueError, match="half panels are for dense streams"):
        _sample.generate(packed.dense.astype(np.float64), np.zeros((1, 2, 16)), np.empty((2, 5), np.uint8),
                         **{**base, "probs": np.empty((2, 0, 256))}, half=packed.half)
    with pytest.raises(ValueError, match="half panels are for dense streams"):
        _sample.generate(packed.dense, np.zeros((1, 1, 16), np.float32), np.empty((1, 5), np.uint8),
                         np.empty((1, 0), np.uint8), np.zeros(1, np.intp), np.full(1, SILENCE, np.uint8),
                         np.empty((1, 0, 256), np.float32), 1.0, np.random.PCG64(0), 1, half=packed.half[:-1])


def test_saved_with_the_model_and_shown_by_info(tmp_path, make_model, capsys):
    model = bf16_model(make_model, 32, 2)
    path = model.save(tmp_path / "m.npz")
    loaded = blekota.load(path)
    assert loaded.bf16_sampling and sampler.kernel_for(loaded, 1) == "bf16"
    np.testing.assert_array_equal(loaded.sample(400, seed=1), model.sample(400, seed=1))
    assert main(["info", str(path)]) == 0
    assert "one stream and several on the bf16 kernel; bf16 products (saved with the model)" in capsys.readouterr().out


def test_sample_bf16_option(tmp_path, make_model, capsys):
    model = make_model(32, 2, "float32", scale=0.3)
    path = model.save(tmp_path / "m.npz")
    wav = tmp_path / "out.wav"
    assert main(["sample", str(path), "-n", "300", "-o", str(wav), "--seed", "1", "--bf16"]) == 0
    model.bf16_sampling = True
    sound, _ = blekota.audio.load_audio(str(wav), model.fs)
    np.testing.assert_allclose(sound, model.sample(300, seed=1), atol=1 / 32768)
    assert not blekota.load(path).bf16_sampling  # the model file is not changed
    with pytest.raises(SystemExit):
        main(["sample", str(path), "-o", str(wav), "--force", "--bf16", "--int8"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_sample_no_bf16_option(tmp_path, make_model, capsys):
    """--no-bf16 samples a model saved with bf16 products in float32, for this run only."""
    model = bf16_model(make_model, 32, 2)
    path = model.save(tmp_path / "m.npz")
    wav = tmp_path / "out.wav"
    assert main(["sample", str(path), "-n", "300", "-o", str(wav), "--seed", "1", "--no-bf16"]) == 0
    assert "dense kernel" in capsys.readouterr().out
    model.bf16_sampling = False
    sound, _ = blekota.audio.load_audio(str(wav), model.fs)
    np.testing.assert_allclose(sound, model.sample(300, seed=1), atol=1 / 32768)
    assert blekota.load(path).bf16_sampling
    assert main(["sample", str(path), "-n", "300", "-o", str(wav), "--seed", "1", "--force"]) == 0
    assert "bf16 kernel" in capsys.readouterr().out


def test_a_frame_tier_samples_with_bf16_products(rng):
    """The frame tier's conditioning reaches the bf16 kernel, frame by frame."""
    model = blekota.Model(hidden=64, layers=2, frame=8, seed=0)
    hint = rng.uniform(-0.5, 0.5, 120)
    _, exact = model.sample(160, hint=hint, seed=1, return_probs=True)
    model.bf16_sampling = True
    assert sampler.Sampler(model, 1, 0).packed.kernel == "bf16"
    _, rounded = model.sample(160, hint=hint, seed=1, return_probs=True)
    variation = 0.5 * np.abs(rounded.astype(np.float64) - exact).sum(axis=-1)
    assert 0 < variation.max() < NEAR_FLOAT
    np.testing.assert_array_equal(model.sample(400, seed=2), np.concatenate(list(model.generate(400, chunk=50, seed=2))))
