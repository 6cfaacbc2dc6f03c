"""Training throughput: one iteration = forward + backward + Adam step over a (T, B) window.

Three implementations of the same model, each measured in its own subprocess:
  blekota    the compiled core (blekota.Model.window) + blekota.optim.Adam
  reference  blekota.reference.loss_and_grad (NumPy float64) + blekota.optim.Adam per matrix;
             it is slow, so it runs a shorter window (reference_T) and its samples/s is per sample
  pytorch    torch.nn.GRU(256, H, num_layers=L) on one-hot input + nn.Linear(H, 256) +
             cross-entropy + torch.optim.Adam, when torch is importable
dtype "bfloat16" is a float32 model trained with bfloat16 products: blekota's window(bf16=True)
(only where the CPU has AVX512_BF16; on AMX tiles where it has them, the note says which; what
`train` and Trainer run by default where they beat float32), PyTorch's
step under torch.autocast("cpu", torch.bfloat16).
The hidden state is carried from window to window (truncated BPTT), as in real training.
"""

from __future__ import annotations

import sys

import numpy as np

from common import Unavailable, make_row, measure_in_subprocess, merge_rows, rss_mib, time_runs

SECTION = "training"
LEVELS = 256
CONFIGS = {  # name: layers, hidden, T, B, and the window length used for the reference
    "default": {"layers": 3, "hidden": 256, "T": 100, "B": 80, "reference_T": 10},
    "small": {"layers": 1, "hidden": 100, "T": 100, "B": 80, "reference_T": 25},
}
DTYPES = ("float32", "float64", "bfloat16")


def shape_name(config: str) -> str:
    c = CONFIGS[config]
    return f"{c['layers']}x{c['hidden']} T={c['T']} B={c['B']}"


def synthetic_levels(T: int, B: int, seed: int = 0) -> np.ndarray:
    """(T+1, B) mu-law levels (uint8) of B excerpts of a noisy two-tone sound."""
    rng = np.random.default_rng(seed)
    t = np.arange(T + 1)[:, None] + rng.integers(0, 100_000, B)[None, :]
    sound = 0.5 * np.sin(2 * np.pi * 440 * t / 8000) + 0.2 * np.sin(2 * np.pi * 97 * t / 8000)
    sound += 0.05 * rng.standard_normal(sound.shape)
    sound = np.clip(sound, -1, 1)
    mu = np.sign(sound) * np.log1p(255 * np.abs(sound)) / np.log(256)
    return np.round((mu + 1) / 2 * 255).astype(np.uint8)


def blekota_training(threads: int, config: str, dtype: str, repeats: int, warmup: int) -> dict:
    """Row for blekota's compiled core (runs in a measuring subprocess)."""
    import blekota
    from blekota.optim import Adam

    c = CONFIGS[config]
    x = synthetic_levels(c["T"], c["B"])
    base = rss_mib()
    if dtype == "bfloat16" and not blekota._gru.bf16_products():
        raise Unavailable("this CPU has no AVX512_BF16: no bfloat16 products")
    model = blekota.Model(hidden=c["hidden"], layers=c["layers"],
                          dtype="float32" if dtype == "bfloat16" else dtype, seed=0, threads=threads)
    grads = np.empty_like(model.params)
    optimizer = Adam(model.params.size, model.dtype, lr=1e-3)
    state = {"h": None}

    def iteration():
        _, state["h"] = model.window(x, state["h"], grads, bf16=dtype == "bfloat16")
        optimizer.step(model.params, grads, threads)

    times = time_runs(iteration, repeats, warmup)
    note = ""
    if dtype == "bfloat16":
        note = "AMX tiles" if blekota._gru.amx_products() else "VDPBF16PS"
    return make_row(section=SECTION, config=config, shape=shape_name(config), impl="blekota",
                    dtype=dtype, threads=threads, unit="iteration", samples=c["T"] * c["B"],
                    times=times, base_mib=base, note=note)


def reference_training(threads: int, config: str, repeats: int, warmup: int) -> dict:
    """Row for the NumPy float64 reference, on a window of reference_T steps."""
    from threadpoolctl import threadpool_limits

    import blekota
    from blekota import reference
    from blekota.optim import Adam

    c = CONFIGS[config]
    T = c["reference_T"]
    x = synthetic_levels(T, c["B"])
    base = rss_mib()
    state = blekota.Model(hidden=c["hidden"], layers=c["layers"], dtype="float64",
                          seed=0).state_dict()
    optimizers = {key: Adam(value.size, np.float64, lr=1e-3) for key, value in state.items()}
    carried = {"h": None}

    def iteration():
        _, grads, carried["h"] = reference.loss_and_grad(state, x, carried["h"])
        for key, optimizer in optimizers.items():
            optimizer.step(state[key].reshape(-1), grads[key].reshape(-1))

    with threadpool_limits(threads):
        times = time_runs(iteration, repeats, warmup)
    return make_row(section=SECTION, config=config, shape=shape_name(config), impl="reference",
                    dtype="float64", threads=threads, unit="iteration", samples=T * c["B"],
                    times=times, base_mib=base,
                    note=f"T={T}: samples/s from a shorter window")


def pytorch_training(threads: int, config: str, dtype: str, repeats: int, warmup: int) -> dict:
    """Row for the PyTorch peer model; raises Unavailable when torch is not installed."""
    try:
        import torch
    except ImportError as error:
        raise Unavailable(f"torch is not importable: {error}") from error

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = CONFIGS[config]
    x = torch.from_numpy(synthetic_levels(c["T"], c["B"]).astype(np.int64))
    base = rss_mib()
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    gru = torch.nn.GRU(LEVELS, c["hidden"], num_layers=c["layers"]).to(torch_dtype)
    linear = torch.nn.Linear(c["hidden"], LEVELS).to(torch_dtype)
    optimizer = torch.optim.Adam([*gru.parameters(), *linear.parameters()], lr=1e-3)
    state = {"h": torch.zeros(c["layers"], c["B"], c["hidden"], dtype=torch_dtype)}

    def iteration():
        inputs = torch.nn.functional.one_hot(x[:-1], LEVELS).to(torch_dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            out, h = gru(inputs, state["h"])
            logits = linear(out).reshape(-1, LEVELS)
        loss = torch.nn.functional.cross_entropy(logits.float(), x[1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["h"] = h.detach().to(torch_dtype)

    times = time_runs(iteration, repeats, warmup)
    return make_row(section=SECTION, config=config, shape=shape_name(config), impl="pytorch",
                    dtype=dtype, threads=threads, unit="iteration", samples=c["T"] * c["B"],
                    times=times, base_mib=base, note=f"torch {torch.__version__}")


def run(threads: int, repeats: int, quick: bool, configs: tuple[str, ...] = ("default", "small")
        ) -> list[dict]:
    """Measure every implementation for each config and dtype; rows as described in common.py.

    blekota and PyTorch are measured in alternating rounds (two subprocesses each, half the
    repeats in each), so that a change of load on a shared machine hits both alike. PyTorch rows
    are missing when torch is not importable (run.py reports the skip)."""
    warmup = 1 if quick else 2
    rounds = 1 if quick else 2
    per_round = max(1, -(-repeats // rounds))
    reference_repeats = min(repeats, 2 if quick else 3)
    rows = []
    for config in configs:
        for dtype in DTYPES:
            measured: dict[str, list[dict]] = {"blekota": [], "pytorch": []}
            for _ in range(rounds):
                for impl in measured:
                    row = measure_in_subprocess("training", f"{impl}_training", threads,
                                                config=config, dtype=dtype, repeats=per_round,
                                                warmup=warmup)
                    if row is not None:
                        measured[impl].append(row)
            rows += [merge_rows(found) for found in measured.values() if found]
        rows.append(measure_in_subprocess("training", "reference_training", threads,
                                          config=config, repeats=reference_repeats, warmup=1))
    return rows


if __name__ == "__main__":
    sys.exit("benchmarks/training.py is a section of the suite: python benchmarks/run.py --only training")
