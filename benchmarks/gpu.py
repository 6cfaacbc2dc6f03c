"""Training speed on a CUDA GPU: python benchmarks/gpu.py [--quick] [--json OUT] (or run.py --only gpu).

Times training iterations (forward + backward + Adam over a (T, B) window, the hidden state
carried) of the default model, 3x256, T=100, float32, at batch 80, 1024 and 8192:

  graph    blekota.torchstep.TorchStep, the step `train --device cuda` runs: one CUDA graph
           replay, with the window and the state sent and the loss and state brought back
  eager    the same step without the graph (the same kernels launched one by one)
  cudnn    nn.GRU(256, 256, num_layers=3) (cuDNN; a different cell: the reset gate after the
           recurrent product) on one-hot input + nn.Linear + cross-entropy + torch.optim.Adam, the
           loss read back every iteration as the Trainer reads it

Without PyTorch or without a CUDA GPU it refuses in one line (exit status 2). `--device cpu`
runs the same code on torch's CPU with a small model and batch, to check this script itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from common import json_output, positive_int

BATCHES = (80, 1024, 8192)
LAYERS, HIDDEN, T = 3, 256, 100
SMALL = dict(layers=1, hidden=16, T=10, batches=(4,))  # --device cpu: checks the script, measures nothing useful


def timed(step, repeats: int, warmup: int) -> list[float]:
    """Seconds of each of `repeats` calls of step (which waits for the device) after `warmup`."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def blekota_step(torch, device: str, layers: int, hidden: int, T: int, B: int, graphs: bool):
    """One `train --device` step of a new default-initialized model, as a function."""
    import blekota
    from blekota.optim import make_optimizer
    from blekota.torchstep import TorchStep

    model = blekota.Model(hidden=hidden, layers=layers, dtype="float32", seed=0)
    step = TorchStep(model, make_optimizer("adam", model.n_params, model.dtype, 4e-3), device, graphs=graphs)
    x = np.random.default_rng(0).integers(0, 256, (T + 1, B)).astype(np.uint8)
    state = {"h": model.zero_state(B)}

    def run():
        _, state["h"], _ = step.run(x, None, state["h"])

    return run


def cudnn_step(torch, device: str, layers: int, hidden: int, T: int, B: int):
    """One iteration of nn.GRU + nn.Linear + Adam on the same shapes, as a function."""
    torch.manual_seed(0)
    levels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (T + 1, B))).to(device)
    gru = torch.nn.GRU(256, hidden, num_layers=layers).to(device)
    linear = torch.nn.Linear(hidden, 256).to(device)
    optimizer = torch.optim.Adam([*gru.parameters(), *linear.parameters()], lr=4e-3)
    state = {"h": torch.zeros(layers, B, hidden, device=device)}

    def run():
        inputs = torch.zeros(T, B, 256, device=device).scatter_(2, levels[:-1, :, None], 1.0)
        out, h = gru(inputs, state["h"])
        loss = torch.nn.functional.cross_entropy(linear(out).reshape(-1, 256), levels[1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["h"] = h.detach()
        loss.item()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeats", type=positive_int, default=None, help="timed iterations per row (default 20, quick 5)")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu to check this script on torch's CPU")
    parser.add_argument("--json", type=json_output, help="write the rows to this file")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("benchmarks/gpu.py: error: needs PyTorch, which is not installed: pip install torch", file=sys.stderr)
        return 2
    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"benchmarks/gpu.py: error: PyTorch {torch.__version__} sees no CUDA GPU here; nothing to measure",
              file=sys.stderr)
        return 2
    shapes = SMALL if args.device == "cpu" else dict(layers=LAYERS, hidden=HIDDEN, T=T, batches=BATCHES)
    repeats = args.repeats or (5 if args.quick else 20)
    where = torch.cuda.get_device_name(args.device) if args.device != "cpu" else "torch's CPU (a check of the script)"
    print(f"# {where}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"{shapes['layers']}x{shapes['hidden']} T={shapes['T']} float32, Adam")
    print("| batch | impl | median ms (min-max) | samples/s | vs cudnn |")
    print("|---|---|---|---|---|")
    rows = []
    for B in shapes["batches"]:
        measured = {}
        common = (torch, args.device, shapes["layers"], shapes["hidden"], shapes["T"], B)
        impls = {"graph": lambda: blekota_step(*common, graphs=True),
                 "eager": lambda: blekota_step(*common, graphs=False), "cudnn": lambda: cudnn_step(*common)}
        if args.device == "cpu":
            del impls["graph"]  # no CUDA graphs on a CPU
        for impl, make in impls.items():
            times = timed(make(), repeats, warmup=3)
            median = statistics.median(times)
            measured[impl] = shapes["T"] * B / median
            rows.append({"batch": B, "impl": impl, "median_s": median, "min_s": min(times), "max_s": max(times),
                         "samples_per_s": measured[impl], "device": where, "torch": torch.__version__})
            if args.device != "cpu":
                torch.cuda.empty_cache()
        for row in rows[-len(impls):]:
            print(f"| {B} | {row['impl']} | {row['median_s'] * 1e3:.3g} ({row['min_s'] * 1e3:.3g}-"
                  f"{row['max_s'] * 1e3:.3g}) | {row['samples_per_s']:,.0f} | "
                  f"{row['samples_per_s'] / measured['cudnn']:.2f}x |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
