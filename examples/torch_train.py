"""Train blekota's network with PyTorch (on a GPU when there is one), then sample with blekota.

    pip install torch
    python examples/torch_train.py --steps 200                     # the built-in demo sound
    python examples/torch_train.py voice.wav --model voice_5000.npz --steps 1000 -o voice_torch.npz

It trains blekota.torch.GRUModel with truncated BPTT (the hidden state carried from window to
window, as blekota's Trainer does), Adam and element-wise gradient clipping, converts the result
to a blekota model file, checks that both compute the same loss, and generates a second of sound
from it with blekota's compiled sampler.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import blekota

try:
    import torch

    from blekota.torch import GRUModel
except ImportError:
    sys.exit("examples/torch_train.py needs PyTorch, which is not installed: pip install torch")


def windows(levels: np.ndarray, batch: int, length: int):
    """(length + 1, batch) windows over `batch` equal streams cut from levels, in order, forever;
    consecutive windows overlap by one level so the state carries on."""
    per_stream = levels.size // batch
    streams = levels[: per_stream * batch].reshape(batch, per_stream).T
    while True:
        for start in range(0, per_stream - length - 1, length):
            yield start == 0, streams[start : start + length + 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sound", nargs="?", default=None, help="sound to learn (default: the built-in demo sound)")
    parser.add_argument("--model", default=None, help="start from this blekota model file instead of a new model")
    parser.add_argument("--steps", type=int, default=200, help="training windows (default 200)")
    parser.add_argument("--hidden", type=int, default=128, help="units per layer of a new model (default 128)")
    parser.add_argument("--layers", type=int, default=2, help="layers of a new model (default 2)")
    parser.add_argument("--seq-length", type=int, default=100, help="samples per window (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="parallel streams (default 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (default 0.002)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("-o", "--output", default="torch_model.npz", help="model file to write (default torch_model.npz)")
    parser.add_argument("--force", action="store_true", help="overwrite the output files if they exist")
    args = parser.parse_args(argv)
    for name in ("steps", "hidden", "layers", "seq_length", "batch_size", "lr"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device {args.device}: not a device PyTorch knows (cpu, cuda, cuda:N, ...)")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: PyTorch {torch.__version__} sees no CUDA GPU here")

    output = Path(args.output)
    sound_out = output.with_suffix(".wav")
    if not output.parent.is_dir():
        sys.exit(f"{output.parent}: no such folder")
    for path in (output, sound_out):
        if path.exists() and not args.force:
            sys.exit(f"{path}: already exists (use --force to overwrite)")
    try:
        return run(args, output, sound_out)
    except blekota.BlekotaError as error:
        sys.exit(str(error))


def run(args: argparse.Namespace, output: Path, sound_out: Path) -> int:
    """Train, convert, check and sample as the module docstring says."""
    if args.model:
        start = blekota.load(args.model)
        fs = start.fs
        net = GRUModel.from_blekota(start, dtype=torch.float32, device=args.device)
    else:
        fs = 8000
        net = GRUModel(args.hidden, args.layers, fs=fs, device=args.device)
    sound = blekota.load_audio(args.sound, fs)[0] if args.sound else blekota.demo_sound(fs)
    levels = blekota.mulaw.quantize(sound)
    if levels.size // args.batch_size < args.seq_length + 2:
        sys.exit(f"the sound is too short for {args.batch_size} streams of {args.seq_length} samples")

    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    batches = windows(levels, args.batch_size, args.seq_length)
    h = net.zero_state(args.batch_size)
    began = time.perf_counter()
    for step in range(1, args.steps + 1):
        restart, window = next(batches)
        x = torch.from_numpy(window.astype(np.int64)).to(args.device)
        loss, h = net.loss(x, None if restart else h.detach())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(net.parameters(), 5.0)
        optimizer.step()
        if step % 50 == 0 or step == args.steps:
            rate = step * args.seq_length * args.batch_size / (time.perf_counter() - began)
            print(f"step {step:5d}  loss {loss.item():.4f} nats/sample  {rate:,.0f} samples/s on {args.device}")

    model = net.to_blekota()
    with torch.no_grad():
        torch_loss = net.loss(x, None)[0].item()
    blekota_loss = model.loss_and_grad(window)[0]
    print(f"last window from a zero state: torch {torch_loss:.6f}, blekota {blekota_loss:.6f} nats/sample")
    model.save(output)
    generated = model.sample(fs, seed=0, hint=sound[: fs // 4])
    blekota.save_wav(sound_out, generated, fs)
    print(f"wrote {output} (sample more with: python -m blekota sample {output}) and {sound_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
