"""The bfloat16 training products (csrc/bf16_gemm.h, Trainer(bf16=...), train --bf16): each
product against NumPy with the same rounding, the window against a float64 forward pass that
rounds where the kernel does, the refusals where they cannot run, and the default ("auto": where
they can), kept by resuming."""

import numpy as np
import pytest

from conftest import cpu_level

import blekota
from blekota import ConfigError, _gru, reference
from blekota.cli import main
from blekota.layout import canonical_to_flat

needs_bf16 = pytest.mark.skipif(not _gru.bf16_products(), reason="this CPU has no AVX512_BF16")


def bf16(a: np.ndarray) -> np.ndarray:
    """a rounded to bfloat16 (to nearest even), as float64."""
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


@pytest.fixture(params=["vdpbf16ps", "amx"])
def products(request):
    """The bf16 products on AVX512_BF16's VDPBF16PS, then on AMX tiles where this CPU and Linux
    allow them (blekota._gru.amx_products); the choice is restored afterwards."""
    before = _gru.amx_products()
    if request.param == "amx" and not before:
        pytest.skip("no AMX tiles here (Intel Sapphire Rapids and later)")
    _gru.amx_products(request.param == "amx")
    yield request.param
    _gru.amx_products(before)


def relative_to_magnitudes(got: np.ndarray, want: np.ndarray, magnitudes: np.ndarray) -> float:
    """The largest error of a sum relative to the sum of its terms' magnitudes."""
    return float(np.max(np.abs(got - want) / np.maximum(magnitudes, 1e-30)))


@needs_bf16
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (3, 5, 7), (80, 256, 512), (97, 255, 33), (10, 768, 256), (200, 3, 17),
                                   (13, 64, 112), (17, 29, 40), (17, 30, 40), (33, 31, 16), (16, 33, 48),
                                   (5, 1536, 20), (5, 1537, 20)])
def test_product_equals_rounded_operands_summed(M, K, N, rng, products):
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    want = bf16(x) @ bf16(w)
    magnitudes = np.abs(bf16(x)) @ np.abs(bf16(w))
    got = _gru.bf16_product(x, w)
    assert relative_to_magnitudes(got, want, magnitudes) < 1e-6
    assert np.array_equal(_gru.bf16_product(x, np.ascontiguousarray(w.T), trans=True), got)
    base = rng.standard_normal((M, N)).astype(np.float32)
    added = _gru.bf16_product(x, w, c=base.copy())
    assert relative_to_magnitudes(added, want + base, magnitudes + np.abs(base)) < 1e-6
    # the rounding is what makes it differ from float32 products
    assert K < 8 or relative_to_magnitudes(got, x.astype(np.float64) @ w, magnitudes) > 1e-5


@needs_bf16
@pytest.mark.parametrize("K,M,N", [(1, 1, 1), (7, 3, 40), (256, 256, 768), (600, 300, 270), (513, 1, 600), (2085, 33, 270),
                                   (37, 64, 176), (31, 33, 17), (257, 16, 32)])
def test_weight_gradient_product_equals_rounded_operands_summed(K, M, N, rng, products):
    a = rng.standard_normal((K, M)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    got, sums = _gru.bf16_product_tn(a, b)
    want = bf16(a).T @ bf16(b)
    assert relative_to_magnitudes(got, want, np.abs(bf16(a)).T @ np.abs(bf16(b))) < 1e-6
    assert np.allclose(sums, b.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)


@needs_bf16
def test_every_tile_shape_gives_the_same_bits(rng, products):
    """Rows alone (one-row tiles) and 16-column strips (one-vector tiles) against the whole
    product, which runs on tiles up to 6 rows by 64 columns: a row's pairs are summed in order."""
    x = rng.standard_normal((23, 37)).astype(np.float32)
    w = rng.standard_normal((37, 112)).astype(np.float32)
    whole = _gru.bf16_product(x, w)
    rows = np.concatenate([_gru.bf16_product(x[i:i + 1], w) for i in range(23)])
    strips = np.concatenate([_gru.bf16_product(x, np.ascontiguousarray(w[:, j:j + 16]))
                             for j in range(0, 112, 16)], axis=1)
    assert np.array_equal(rows, whole) and np.array_equal(strips, whole)


@needs_bf16
def test_amx_and_vdpbf16ps_agree_to_float32_rounding(rng):
    """The two ways of running the bf16 products sum the same exact products, rounding otherwise:
    the results differ by at most a few float32 roundings of the sum of magnitudes."""
    if not _gru.amx_products():
        pytest.skip("no AMX tiles here (Intel Sapphire Rapids and later)")
    x = rng.standard_normal((80, 256)).astype(np.float32)
    w = rng.standard_normal((256, 768)).astype(np.float32)
    magnitudes = np.abs(bf16(x)) @ np.abs(bf16(w))
    try:
        amx = _gru.bf16_product(x, w)
        amx_tn, amx_sums = _gru.bf16_product_tn(x, w[:80])
        _gru.amx_products(False)
        vdp = _gru.bf16_product(x, w)
        vdp_tn, vdp_sums = _gru.bf16_product_tn(x, w[:80])
    finally:
        _gru.amx_products(True)
    assert not np.array_equal(amx, vdp)
    assert relative_to_magnitudes(amx, vdp, magnitudes) < 1e-6
    assert relative_to_magnitudes(amx_tn, vdp_tn, np.abs(bf16(x)).T @ np.abs(bf16(w[:80]))) < 1e-6
    assert np.array_equal(amx_sums, vdp_sums)


def rounded_forward(state: dict, x: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """p (T, B, 256) of the stack with both operands of every matrix product rounded to
    bfloat16 (layer 0's input is a row gather: not rounded), as window(bf16=True) computes it."""
    layers, H = h0.shape[0], h0.shape[2]
    h = [h0[layer].astype(np.float64) for layer in range(layers)]
    probs = []
    for levels in x[:-1]:
        inp = levels
        for layer in range(layers):
            W, Wr, Wz = (state[f"gru{layer}.{name}"].astype(np.float64) for name in ("W", "Wr", "Wz"))
            X = W.shape[1] - H - 1
            part = (lambda M: M[:, inp].T) if layer == 0 else (lambda M: bf16(inp) @ bf16(M[:, :X]).T)
            r = reference.sigmoid(part(Wr) + bf16(h[layer]) @ bf16(Wr[:, X:-1]).T + Wr[:, -1])
            z = reference.sigmoid(part(Wz) + bf16(h[layer]) @ bf16(Wz[:, X:-1]).T + Wz[:, -1])
            candidate = np.tanh(part(W) + bf16(r * h[layer]) @ bf16(W[:, X:-1]).T + W[:, -1])
            h[layer] = (1 - z) * h[layer] + z * candidate
            inp = h[layer]
        Wy = state["out.Wy"].astype(np.float64)
        logits = bf16(inp) @ bf16(Wy[:, :-1]).T + Wy[:, -1]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs.append(e / e.sum(axis=1, keepdims=True))
    return np.array(probs)


@needs_bf16
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("T,B,H,layers", [(5, 3, 16, 2), (4, 7, 33, 3), (3, 2, 9, 1)])
def test_window_rounds_every_product_and_nothing_else(threads, T, B, H, layers, rng, make_model, products):
    model = make_model(H, layers, "float32")
    model.threads = threads
    x = rng.integers(0, 256, (T + 1, B)).astype(np.uint8)
    h0 = (rng.standard_normal((layers, B, H)) * 0.5).astype(np.float32)
    model.window(x, h0, bf16=True)
    got = model._workspaces[(T, B)].out.reshape(T, B, 256)
    rounded = rounded_forward(model.state_dict(), x, h0)
    plain = reference.probabilities(model.state_dict(), x[:-1], h0)
    assert np.abs(got - rounded).max() < 2e-5
    assert np.abs(plain - rounded).max() > 20 * np.abs(got - rounded).max()


@needs_bf16
@pytest.mark.parametrize("threads", [1, 2])
def test_gradients_near_the_float64_reference(threads, rng, make_model, products):
    model = make_model(32, 2, "float32", scale=0.3)
    model.threads = threads
    x = rng.integers(0, 256, (9, 5)).astype(np.uint8)
    grads = np.empty_like(model.params)
    loss, _ = model.window(x, None, grads, bf16=True)
    ref_loss, ref_grads, _ = reference.loss_and_grad(model.state_dict(), x)
    assert abs(loss - ref_loss) / ref_loss < 1e-2
    flat = np.empty(model.n_params)
    canonical_to_flat(ref_grads, model.layers, model.hidden, flat)
    assert np.linalg.norm(grads - flat) / np.linalg.norm(flat) < 3e-2


@needs_bf16
def test_trainer_learns_with_bf16_as_with_float32(tmp_path):
    sound = np.sin(np.arange(16000) * 2 * np.pi * 220 / 8000).astype(np.float32) * 0.5
    losses = {}
    for bf in (False, True):
        model = blekota.Model(hidden=32, layers=2, seed=3, threads=1)
        trainer = blekota.Trainer(model, sound, seq_length=40, batch_size=8, directory=tmp_path / str(bf), log=False,
                                  val_fraction=0, checkpoint_every=0, seed=3, bf16=bf, report_every=50)
        assert trainer.bf16 is bf
        trainer.train(200)
        losses[bf] = trainer.history[-1][1]
    assert losses[True] < 4.0 and abs(losses[True] - losses[False]) < 0.05


def test_bf16_is_refused_where_it_cannot_run(tmp_path, rng):
    sound = rng.standard_normal(4000).astype(np.float32) * 0.1
    double = blekota.Model(hidden=8, layers=1, dtype="float64")
    with pytest.raises(ConfigError, match="float32 model"):
        blekota.Trainer(double, sound, directory=tmp_path, log=False, val_fraction=0, bf16=True)
    with pytest.raises(ConfigError, match="CPU core"):
        blekota.device.check_bf16("bf16", True, "cuda", blekota.Model(hidden=8, layers=1))
    with cpu_level("avx2"):
        with pytest.raises(ConfigError, match="AVX512_BF16"):
            blekota.Trainer(blekota.Model(hidden=8, layers=1), sound, directory=tmp_path, log=False,
                            val_fraction=0, bf16=True)
        with pytest.raises(ValueError, match="AVX512_BF16"):
            blekota.Model(hidden=8, layers=1).window(np.zeros((3, 2), np.uint8), bf16=True)


def test_auto_takes_bf16_wherever_it_can_run(tmp_path, rng):
    sound = rng.standard_normal(4000).astype(np.float32) * 0.1
    options = dict(directory=tmp_path, log=False, val_fraction=0, seq_length=10, batch_size=4)
    assert blekota.Trainer(blekota.Model(hidden=8, layers=1), sound, **options).bf16 is _gru.bf16_by_default()
    assert blekota.Trainer(blekota.Model(hidden=8, layers=1), sound, bf16=False, **options).bf16 is False
    assert blekota.Trainer(blekota.Model(hidden=8, layers=1, dtype="float64"), sound, **options).bf16 is False
    with cpu_level("avx2"):
        assert blekota.Trainer(blekota.Model(hidden=8, layers=1), sound, **options).bf16 is False
    with pytest.raises(ConfigError, match="bf16 is true, false or 'auto', not 'on'"):
        blekota.Trainer(blekota.Model(hidden=8, layers=1), sound, bf16="on", **options)


@needs_bf16
def test_a_model_trained_with_bf16_samples_with_it(tmp_path, rng):
    """Trained with bf16 products, a model is sampled with them and its file says so; float32
    training leaves sampling as it was, and a choice already in model.info stays."""
    sound = rng.standard_normal(4000).astype(np.float32) * 0.1
    options = dict(directory=tmp_path, log=False, val_fraction=0, seq_length=10, batch_size=4, checkpoint_every=0)
    trained = blekota.Model(hidden=8, layers=1, seed=0)
    blekota.Trainer(trained, sound, name="m", bf16=True, **options).train(2)
    assert trained.bf16_sampling and blekota.load(tmp_path / "m_2.npz").bf16_sampling
    plain = blekota.Model(hidden=8, layers=1, seed=0)
    blekota.Trainer(plain, sound, name="p", bf16=False, **options).train(2)
    assert not plain.bf16_sampling and "bf16_sampling" not in blekota.load(tmp_path / "p_2.npz").info
    declined = blekota.Model(hidden=8, layers=1, seed=0)
    declined.bf16_sampling = False
    blekota.Trainer(declined, sound, name="d", bf16=True, **options).train(2)
    assert not declined.bf16_sampling and blekota.load(tmp_path / "d_2.npz").info["bf16_sampling"] is False


def test_sampling_choices_outlive_training(tmp_path, rng):
    """What model.info says about sampling (int8, bf16_sampling) is saved by the trainer as it was."""
    sound = rng.standard_normal(4000).astype(np.float32) * 0.1
    model = blekota.Model(hidden=8, layers=1, seed=0)
    model.int8 = True
    model.bf16_sampling = False
    blekota.Trainer(model, sound, directory=tmp_path, name="m", log=False, val_fraction=0, seq_length=10,
                    batch_size=4, checkpoint_every=0, bf16=False).train(2)
    saved = blekota.load(tmp_path / "m_2.npz")
    assert model.int8 and saved.int8 and saved.info["bf16_sampling"] is False


def test_auto_takes_bf16_only_where_it_beats_float32():
    """On AMX tiles, or on VDPBF16PS where the CPU is not Intel's (an Intel Xeon runs it at half
    its FMA rate: no faster than float32, so there it waits for --bf16)."""
    with open("/proc/cpuinfo") as cpuinfo:
        intel = "GenuineIntel" in cpuinfo.read()
    before = _gru.amx_products()
    try:
        assert _gru.bf16_by_default() is (_gru.bf16_products() and (before or not intel))
        _gru.amx_products(False)
        assert _gru.bf16_by_default() is (_gru.bf16_products() and not intel)
    finally:
        _gru.amx_products(before)


@pytest.mark.parametrize("choice,resumed", [("auto", "auto"), (False, False), (True, "auto")])
def test_resuming_keeps_the_choice(tmp_path, rng, choice, resumed):
    """A run with --no-bf16 goes on in float32; --bf16 goes on as "auto", on whatever CPU resumes it."""
    if choice is True and not _gru.bf16_products():
        pytest.skip("this CPU has no AVX512_BF16")
    sound = rng.standard_normal(4000).astype(np.float32) * 0.1
    trainer = blekota.Trainer(blekota.Model(hidden=8, layers=1, seed=0), sound, directory=tmp_path, name="m",
                              log=False, val_fraction=0, seq_length=10, batch_size=4, checkpoint_every=0, bf16=choice)
    trainer.train(2)
    saved = blekota.load(tmp_path / "m_2.npz").info["trainer"]
    assert saved["bf16"] == choice and saved["products"] == ("bfloat16" if trainer.bf16 else "float32")
    again = blekota.Trainer.from_checkpoint(tmp_path / "m_2.npz", sound, log=False)
    assert again.bf16_choice == resumed and again.bf16 is (resumed == "auto" and _gru.bf16_by_default())


def test_train_bf16_on_the_command_line(tmp_path, capsys):
    import soundfile

    sound = tmp_path / "sine.wav"
    soundfile.write(str(sound), 0.5 * np.sin(np.arange(8000) * 2 * np.pi * 330 / 8000), 8000)
    args = ["train", str(sound), "--iterations", "3", "--hidden", "16", "--layers", "1", "--checkpoint-every", "0",
            "--seq-length", "20", "--batch-size", "4", "--threads", "1", "--out-dir", str(tmp_path),
            "--model-name", "m", "--bf16"]
    if not _gru.bf16_products():
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "AVX512_BF16" in err and "Traceback" not in err
        return
    assert main(args) == 0
    assert "products in bfloat16" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "m_3.npz"), "--iterations", "3", "--bf16"]) == 0
    assert "products in bfloat16" in capsys.readouterr().out
    assert main(args + ["--dtype", "float64", "--force"]) == 2
    err = capsys.readouterr().err
    assert "float32 model" in err and len(err.strip().splitlines()) == 1


def test_no_bf16_on_the_command_line_and_info(tmp_path, capsys):
    import soundfile

    sound = tmp_path / "sine.wav"
    soundfile.write(str(sound), 0.5 * np.sin(np.arange(8000) * 2 * np.pi * 330 / 8000), 8000)
    args = ["train", str(sound), "--iterations", "2", "--hidden", "16", "--layers", "1", "--checkpoint-every", "0",
            "--seq-length", "20", "--batch-size", "4", "--threads", "1", "--out-dir", str(tmp_path)]
    assert main(args + ["--model-name", "f", "--no-bf16"]) == 0
    assert "bfloat16" not in capsys.readouterr().out
    assert main(["info", str(tmp_path / "f_2.npz")]) == 0
    assert "products:    float32 in the last run (--no-bf16)" in capsys.readouterr().out
    assert main(args + ["--model-name", "a"]) == 0
    assert ("products in bfloat16" in capsys.readouterr().out) is _gru.bf16_by_default()
    assert main(["info", str(tmp_path / "a_2.npz")]) == 0
    products = "bfloat16" if _gru.bf16_by_default() else "float32"
    assert f"products:    {products} in the last run (chosen by the CPU)" in capsys.readouterr().out
    assert main(args + ["--model-name", "d", "--dtype", "float64"]) == 0  # bf16 takes float32 models only
    assert main(["info", str(tmp_path / "d_2.npz")]) == 0
    assert "products:    float64 in the last run (chosen by the CPU)" in capsys.readouterr().out


def test_repl_refuses_bf16_on_a_model_file_where_it_cannot_run(tmp_path, capsys):
    """As train --resume does (exit 2, one line), instead of opening the model for sampling only."""
    model = blekota.Model(hidden=8, layers=1, dtype="float64")
    model.save(tmp_path / "m.npz")
    assert main(["repl", str(tmp_path / "m.npz"), "--bf16"]) == 2
    err = capsys.readouterr().err
    assert "--bf16" in err and "float32 model" in err and len(err.strip().splitlines()) == 1
    blekota.Model(hidden=8, layers=1).save(tmp_path / "f.npz")
    with cpu_level("avx2"):
        assert main(["repl", str(tmp_path / "f.npz"), "--bf16"]) == 2
    err = capsys.readouterr().err
    assert "AVX512_BF16" in err and "Traceback" not in err


def test_demo_takes_the_default_and_both_flags(tmp_path, capsys):
    products = "bfloat16" if _gru.bf16_by_default() else "float32"
    for flag, name, want in (([], "auto", products), (["--no-bf16"], "off", "float32")):
        directory = tmp_path / name
        assert main(["demo", "--iterations", "2", "--out-dir", str(directory), "--threads", "1", *flag]) == 0
        words = ", products in bfloat16" if want == "bfloat16" else ""
        assert f"for 2 iterations{words}; loss before" in capsys.readouterr().out
        trainer = blekota.load(directory / "demo_2.npz").info["trainer"]
        assert (trainer["bf16"], trainer["products"]) == ({"auto": "auto", "off": False}[name], want)
    with cpu_level("avx2"):
        assert main(["demo", "--iterations", "2", "--out-dir", str(tmp_path / "refused"), "--bf16"]) == 2
    err = capsys.readouterr().err
    assert "AVX512_BF16" in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "refused").glob("*"))  # refused before anything is written
