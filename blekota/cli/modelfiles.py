"""python -m blekota info | import-legacy | export: what a model file holds, and the model in
other formats (from the original blekota's pickles, to ONNX)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import legacy, modelfile, plot, sampler, sparsity
from .. import schedule as blekota_schedule
from ..errors import ConfigError, install_hint
from ..fileutil import is_stream
from .options import file_name, read_model
from .outputs import check_distinct, check_format_name, check_output

if TYPE_CHECKING:
    import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The info, import-legacy and export commands' options."""
    info_parser = commands.add_parser("info", help="describe a model file", description="Describe a model file (or a .pkl of the original blekota).")
    info_parser.add_argument("model", metavar="MODEL", type=file_name, help="a model file (.npz), or a .pkl of the original blekota (read without converting)")

    legacy_parser = commands.add_parser(
        "import-legacy", help="convert a model pickled by the original NumPy blekota",
        description="Convert a .pkl model of the original NumPy blekota into a model file. Only "
        "its weights and training state are read: nothing in the pickle is run. (sample, repl "
        "and train --resume also open a .pkl directly, converting it once.)",
    )
    legacy_parser.add_argument("pickle", metavar="OLD.pkl", type=file_name, help="the original's pickled model")
    legacy_parser.add_argument("-o", "--output", type=file_name, default=None, help="model file to write (default: OLD.npz)")
    legacy_parser.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64",
        help="precision of the converted model (default float64, as the original)",
    )
    legacy_parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")

    export_parser = commands.add_parser(
        "export", help="write a model as ONNX, for any ONNX runtime",
        description="Write a model as a float32 ONNX file (standard GRU operators) that any ONNX "
        "runtime runs: inputs the levels of a window (T, B) and the hidden state h0 "
        "(layers, B, H); outputs probs and logits (T, B, 256) and the new state h. Needs the "
        f"onnx package ({install_hint('onnx')}).",
    )
    export_parser.add_argument("model", metavar="MODEL", type=file_name, help="a model file (.npz), or a .pkl of the original blekota (read without converting)")
    export_parser.add_argument("-o", "--output", type=file_name, default=None, help="the ONNX file to write (default: MODEL.onnx)")
    export_parser.add_argument(
        "--input", choices=("level", "onehot"), default="level",
        help="level: int64 levels (T, B) (default); onehot: float32 one-hot rows (T, B, 256)",
    )
    export_parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")


def run(args: argparse.Namespace) -> int:
    """Run the command args.command names."""
    return {"info": info, "import-legacy": import_legacy, "export": export}[args.command](args)


def import_legacy(args: argparse.Namespace) -> int:
    """import-legacy: convert the original's pickle to a model file; returns the exit status (0)."""
    output = Path(args.output) if args.output else Path(args.pickle).with_suffix(modelfile.EXTENSION)
    check_distinct({"-o": output}, {"OLD.pkl": args.pickle})
    check_format_name(output, "-o", "npz")
    check_output(output, args.force)
    converted = legacy.read_legacy(args.pickle, dtype=args.dtype)
    model = converted.model
    modelfile.save(output, model, converted.info, converted.train_arrays)
    print(
        f"wrote {output}: {counted(model.layers, 'GRU layer')} x {model.hidden} units, {model.fs} Hz, "
        f"{counted(model.info.get('iterations', 0), 'iteration')}; continue with: python -m blekota train "
        f"--resume {output} SOUND", file=sys.stderr if is_stream(output) else sys.stdout,
    )
    return 0


def export(args: argparse.Namespace) -> int:
    """export: write the model as ONNX; returns the exit status (0)."""
    from ..onnx import export_onnx

    output = Path(args.output) if args.output else Path(args.model).with_suffix(".onnx")
    check_distinct({"-o": output}, {"MODEL": args.model})
    check_format_name(output, "-o", "ONNX")
    check_output(output, args.force)
    model = read_model(args.model).model
    try:
        export_onnx(model, output, input=args.input)
    except ConfigError as error:  # about the model (a frame tier, too large), which it does not name
        raise ConfigError(f"{args.model}: {error}") from None
    state = f"({model.layers}, B, {model.hidden})"
    inputs = "level (T, B) int64" if args.input == "level" else "onehot (T, B, 256)"
    emphasis = (f"; its levels are of y[t] = x[t] - {model.preemphasis:g} x[t-1] (metadata preemphasis): filter the "
                "draws back" if model.preemphasis else "")
    print(f"wrote {output}: {counted(model.layers, 'GRU layer')} x {model.hidden} units at {model.fs} Hz, float32; "
          f"inputs {inputs} and h0 {state}; outputs probs and logits (T, B, 256) and h {state}{emphasis}",
          file=sys.stderr if is_stream(output) else sys.stdout)
    return 0


def info(args: argparse.Namespace) -> int:
    """info: describe a model file on standard output; returns the exit status (0)."""
    loaded = read_model(args.model)
    model, info = loaded.model, loaded.info
    trainer = info.get("trainer") or {}
    if legacy.is_pickle(args.model):
        origin = " (a pickle of the original blekota, read without running it)"
    else:
        origin = f" (converted from {info['imported_from']})" if isinstance(info.get("imported_from"), str) else ""
    print(f"model file:  {args.model}{origin}")
    print(f"network:     {counted(model.layers, 'GRU layer')} x {model.hidden} units, {model.n_params:,} parameters, {model.dtype.name}")
    if model.frame:
        print(f"frame tier:  a GRU of {model.hidden} units over frames of {model.frame} samples "
              f"({1000 * model.frame / model.fs:.3g} ms) conditioning the first layer")
    if model.preemphasis:
        print(f"emphasis:    hears x[t] - {model.preemphasis:g} x[t-1]; its draws are filtered back")
    print(f"sample rate: {model.fs} Hz")
    print(f"trained:     {counted(info.get('iterations', 0), 'iteration')}, {counted(info.get('epochs', 0), 'epoch')}")
    files = info.get("training_files") or []
    print(f"trained on:  {', '.join(files) if files else 'unknown'}")
    if trainer:
        print(
            f"training:    {trainer.get('optimizer')} lr {trainer.get('lr')}, seq_length "
            f"{trainer.get('seq_length')}, batch_size {trainer.get('batch_size')}, random gain "
            f"{trainer.get('random_gain_db', 0.0):g} dB, input noise {trainer.get('input_noise', 0.0):g} levels, "
            + (f"random speed {trainer['random_speed']:g}, " if trainer.get("random_speed") else "")
            + (f"stops after {trainer['stop_after']} validations without a lower held-out loss, "
               if trainer.get("stop_after") else "")
            + (f"weights averaged (ema {trainer['ema']:g})" if trainer.get("ema") else "weights as trained")
        )
    if isinstance(trainer.get("schedule"), dict):
        print(f"lr schedule: {blekota_schedule.describe(trainer['schedule'])}")
    if trainer.get("products"):
        choice = {True: "--bf16", False: "--no-bf16"}.get(trainer.get("bf16"), "chosen by the CPU")
        products = model.dtype.name if trainer["products"] == "float32" else trainer["products"]  # not bf16: the model's
        print(f"products:    {products} in the last run ({choice})")
    target, share = sparsity.describe(info), sparsity.block_density(model)
    if target or share < 1:
        print(f"sparsity:    {target + '; ' if target else ''}{share:.3f} of the 8x4 blocks hold weights now")
    kernel, several = sampler.kernel_for(model, 1), sampler.kernel_for(model, 2)
    saved = "; int8 weights (saved with the model)" if model.int8 else "; bf16 products (saved with the model)" if model.bf16_sampling else ""
    streams = (f"one stream and several on the {kernel} kernel" if kernel == several
               else f"one stream on the {kernel} kernel, several on the {several} kernel")
    print(f"sampling:    {streams}{saved}")
    train, val = plot.loss_points(info)
    reached = sparsity.reached_at(info)
    for label, rows in (("loss:       ", train), ("val loss:   ", val)):
        if rows.size:
            best = info.get("best_val_loss") if rows is val else None
            print(f"{label} first {rows[0, 1]:.4f}, last {rows[-1, 1]:.4f}, {_best(rows, reached, best)} "
                  f"(nats/sample, {counted(len(rows), 'report')})")
    return 0


def counted(number: int, noun: str) -> str:
    """The number and the noun, plural unless the number is 1: "1 GRU layer", "3 GRU layers"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _best(rows: np.ndarray, reached: int | None, held: float | None = None) -> str:
    """'best L at iteration N' over rows of [iteration, loss]; for a model pruned to its density
    at iteration `reached`, the best from there on (a denser model's loss before it is no
    measure of this one), when there is one. held: the run's best held-out loss, the one
    NAME_best.npz has (since the density was reached, or the held-out sound changed), when
    among the rows."""
    since = rows[rows[:, 0] >= reached] if reached is not None else rows[:0]
    chosen = since if since.size else rows
    best = int(chosen[:, 1].argmin())
    if held is not None and (rows[:, 1] == held).any():
        chosen, best = rows, int(np.flatnonzero(rows[:, 1] == held)[-1])
    where = f" at the density (reached at iteration {reached})" if since.size and chosen[best, 0] >= reached else ""
    return f"best {chosen[best, 1]:.4f} at iteration {chosen[best, 0]:.0f}{where}"
