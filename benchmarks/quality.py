"""Time to a good model: held-out loss against training time, blekota's defaults and the PyTorch recipe.

    python benchmarks/quality.py                  # speech and music, 1..20 minutes each (long)
    python benchmarks/quality.py --quick          # the same at 15, 30 and 60 s
    python benchmarks/quality.py --sound my.wav --minutes 1 5 10
    python benchmarks/run.py --only quality [--quick]

Each sound is split like blekota splits it: the last 10 % held out, the rest cut into windows of
T=100 levels dealt into B=80 contiguous streams (blekota.dataset.WindowLayout). Every run starts
from its own seed 0 in a fresh subprocess with --threads threads and trains until the last time
mark; at each mark the training clock stops while the mean loss over the whole held-out tail is
measured (nats per sample, forward passes from a zero state, the same pieces for both).

  blekota   what a user gets: blekota.Model() and blekota.Trainer(model, sound) with their
            defaults (optimizer, learning rate, schedule, random gain, initialization,
            validation every val_every iterations, checkpoints: all of that counts as training
            time), given the sound without its last 10 %. The trainer holds out the tail of
            that (val_fraction, 5 %) for its own validation, so it trains on 85.5 % of the sound
            against PyTorch's 90 %, and the 10 % measured here are never seen by it, not even
            by the validation that steers its schedule.
  pytorch   nn.GRU(256, 256, num_layers=3) on one-hot input + nn.Linear(256, 256), cross-entropy,
            torch.optim.Adam(lr=2e-3), clip_grad_norm_(5), hidden state carried from window to
            window over the same windows in the same order (no validation inside the clock).
            Skipped when torch is not importable.
  --variant NAME='{"optimizer": "rmsprop", "lr": 0.002}' adds blekota runs with Trainer options
            (and Model options under "model": '{"model": {"frame": 20}}')
            (a schedule as {"name": "plateau", "patience": 1, ...}; block-sparse training as
            {"density": 0.1, "prune_start": 50, "prune_end": 350, "prune_every": 25}: give the
            schedule in iterations, since these runs stop by the benchmark's own clock, not by
            Trainer.train's max_seconds, which would plan it by the time; see blekota.sparsity).

On a shared machine, --threads 1 --clock cpu counts each run's own CPU seconds instead of wall
time (with one thread, the time the run would take on a quiet machine), and --side-by-side runs a
sound's runs at the same time, one core each.

The sounds come from sounds.py (espeak-ng speech, synthesized plucked-string music; with
--unseen its second pair, made after the defaults were chosen) unless --sound names files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Unavailable, json_output, measure_in_subprocess, positive_float, positive_int, sound_files  # noqa: E402

VAL_FRACTION = 0.1
MINUTES = (1, 2, 5, 10, 15, 20)
QUICK_MINUTES = (0.25, 0.5, 1)
LEVELS = 256


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class Clock:
    """Training time: seconds since start minus the time spent measuring, on the wall clock or
    on the process's CPU clock (all its threads: with one thread, the wall time the run would
    take on a quiet machine, whatever else the machine is doing)."""

    def __init__(self, kind: str = "wall"):
        self.now = CLOCKS[kind]
        self.start = self.now()
        self.paused = 0.0

    def seconds(self) -> float:
        return self.now() - self.start - self.paused

    def measure(self, evaluate):
        """evaluate() with the clock stopped."""
        begin = self.now()
        value = evaluate()
        self.paused += self.now() - begin
        return value


class Marks:
    """Records (minutes, iteration, held-out loss) as the clock passes each time mark; at_mark, if
    given, is called with the mark's minutes after each measurement, the clock still stopped."""

    def __init__(self, minutes: list[float], clock: Clock, evaluate, at_mark=None):
        self.pending = sorted(minutes)
        self.clock, self.evaluate, self.at_mark = clock, evaluate, at_mark
        self.points: list[dict] = []

    def after_iteration(self, iteration: int) -> bool:
        """Measure at every mark passed; True when the last mark is done."""
        while self.pending and self.clock.seconds() >= 60 * self.pending[0]:
            minutes = self.pending.pop(0)
            loss = self.clock.measure(self.evaluate)
            self.points.append({"minutes": minutes, "iteration": iteration, "val_loss": loss,
                                "train_s": self.clock.seconds()})
            if self.at_mark:
                self.clock.measure(lambda: self.at_mark(minutes))
        return not self.pending


def mark_text(minutes: float) -> str:
    """How a time mark fills "{minutes}" in a file name: 10.0 -> "10", 0.5 -> "0.5"."""
    return f"{minutes:g}"


def result(impl: str, recipe: str, sound: str, threads: int, marks: Marks, iterations: int,
           samples_per_iteration: int, start_loss: float) -> dict:
    train_s = marks.points[-1]["train_s"] if marks.points else 0.0
    return {"impl": impl, "recipe": recipe, "sound": sound, "threads": threads,
            "iterations": iterations, "samples_per_s": iterations * samples_per_iteration / max(train_s, 1e-9),
            "start_loss": start_loss, "points": marks.points}


def blekota_quality(threads: int, sound: str, minutes: list[float], options: dict, recipe: str,
                    clock: str = "wall", model_options: dict | None = None, save: str | None = None,
                    seed: int = 0, save_trained: str | None = None) -> dict:
    """blekota with its defaults (and `options` for Trainer, `model_options` for Model), measured
    at the time marks; save: write the trained model to this file (a name with "{minutes}" in it:
    the model at every mark, see mark_text); seed: of the weights and the trainer; save_trained:
    with weight averaging, also write the model with the weights as last updated to this file (or
    files), and give their held-out loss as "trained_val_loss" (with "{minutes}": in each point)."""
    import blekota
    from blekota.audio import load_audio
    from blekota.dataset import held_out

    model = blekota.Model(seed=seed, threads=threads, **(model_options or {}))
    samples, _ = load_audio(sound, model.fs)
    seen = samples[: samples.size - held_out(samples.size, VAL_FRACTION)]
    with tempfile.TemporaryDirectory() as directory:
        state: dict = {}

        def callback(progress):
            if progress.kind == "step" and state["marks"].after_iteration(progress.iteration):
                raise KeyboardInterrupt  # Trainer.train returns cleanly

        if isinstance(options.get("schedule"), dict):
            options = {**options, "schedule": blekota.make_schedule(**options["schedule"])}
        trainer = blekota.Trainer(model, seen, directory=directory, callback=callback, report_steps=True,
                                  seed=seed, **options)
        # measures the model on the whole sound's last 10 % (the pieces the PyTorch recipe uses);
        # it is never trained
        tail = blekota.Trainer(model, samples, val_fraction=VAL_FRACTION, directory=directory, log=False)
        start_loss = tail.validation_loss()

        def held_out_loss() -> float:
            trainer.use_average()  # the weights a model file holds (with the defaults, their average)
            return tail.validation_loss()

        def keep(fill: dict) -> float | None:
            """Save the model (and with save_trained its trained twin); the twin's held-out loss."""
            model.save(save.format(**fill))
            if not (save_trained and trainer.averaging):
                return None
            averaged = model.params.copy()
            model.params[:] = trainer.trained_weights()
            loss = tail.validation_loss()
            model.save(save_trained.format(**fill))
            model.params[:] = averaged
            return loss

        def keep_at_mark(minutes: float) -> None:
            loss = keep({"minutes": mark_text(minutes)})
            if loss is not None:
                state["marks"].points[-1]["trained_val_loss"] = loss

        per_mark = bool(save) and "{minutes}" in save
        state["marks"] = Marks(minutes, Clock(clock), held_out_loss, keep_at_mark if per_mark else None)
        outcome = trainer.train(10**9)
        extra = {}
        if save and not per_mark:
            loss = keep({})
            if loss is not None:
                extra["trained_val_loss"] = loss
    impl = "blekota, bf16 products" if trainer.bf16 else "blekota"  # the default where the CPU has them
    return {**result(impl, recipe, sound, threads, state["marks"], outcome.iterations,
                     trainer.samples_per_iteration, start_loss), **extra}


def pytorch_quality(threads: int, sound: str, minutes: list[float], clock: str = "wall",
                    save: str | None = None, seed: int = 0) -> dict:
    """The PyTorch recipe (module docstring) on the same windows, measured at the time marks;
    save: write its state (torch.save of {"gru": ..., "linear": ...}) to this file (a name with
    "{minutes}" in it: the state at every mark, see mark_text); seed: torch's."""
    try:
        import torch
    except ImportError as error:
        raise Unavailable(f"torch is not importable: {error}") from error
    from blekota.dataset import Dataset, WindowLayout, validation_pieces

    T, B, H, L = 100, 80, 256, 3
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    data = Dataset.load(sound, 8000)
    train_ranges, val_ranges = data.split(VAL_FRACTION)
    layout = WindowLayout(train_ranges, T, B)
    levels = data.levels
    gru = torch.nn.GRU(LEVELS, H, num_layers=L)
    linear = torch.nn.Linear(H, LEVELS)
    parameters = [*gru.parameters(), *linear.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=2e-3)

    def loss_of(x: np.ndarray, h):
        x = torch.from_numpy(x.astype(np.int64))
        out, h = gru(torch.nn.functional.one_hot(x[:-1], LEVELS).float(), h)
        loss = torch.nn.functional.cross_entropy(linear(out).reshape(-1, LEVELS), x[1:].reshape(-1))
        return loss, h

    starts, length, rest = validation_pieces(val_ranges, B, 10 * T)

    def evaluate() -> float:
        total = count = 0.0
        with torch.no_grad():
            h_full = torch.zeros(L, starts.size, H)
            for offset in range(0, length, T):
                steps = min(T, length - offset)
                loss, h_full = loss_of(levels[starts[None, :] + offset + np.arange(steps + 1)[:, None]], h_full)
                total += loss.item() * steps * starts.size
                count += steps * starts.size
            for first, stop, piece in rest:
                h = torch.zeros(L, 1, H) if piece < 0 else h_full[:, piece : piece + 1].clone()
                for offset in range(first, stop - 1, T):
                    end = min(offset + T, stop - 1)
                    loss, h = loss_of(levels[offset : end + 1, None], h)
                    total += loss.item() * (end - offset)
                    count += end - offset
        return total / count

    def keep(path: str) -> None:
        torch.save({"gru": gru.state_dict(), "linear": linear.state_dict()}, path)

    start_loss = evaluate()
    per_mark = bool(save) and "{minutes}" in save
    marks = Marks(minutes, Clock(clock), evaluate,
                  (lambda m: keep(save.format(minutes=mark_text(m)))) if per_mark else None)
    h = torch.zeros(L, B, H)
    position = iteration = 0
    done = False
    while not done:
        if position >= layout.windows_per_stream:
            position = 0
            layout = layout.at_epoch(layout.epoch + 1)
        h[:, torch.from_numpy(layout.reset[:, position])] = 0
        loss, h = loss_of(layout.window(levels, position), h)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimizer.step()
        h = h.detach()
        position += 1
        iteration += 1
        done = marks.after_iteration(iteration)
    if save and not per_mark:
        keep(save)
    return result("pytorch", "nn.GRU, Adam 2e-3, clip 5", sound, threads, marks, iteration, T * B,
                  start_loss)


def measure_side_by_side(calls: list[tuple[str, dict]], threads: int, module: str = "quality") -> list[dict | None]:
    """Run measure_in_subprocess for every (function, kwargs) of `module` at the same time, so that a
    change of load on a shared machine hits all of them alike; rows in the order of calls."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(measure_in_subprocess, module, function, threads, **kwargs)
                   for function, kwargs in calls]
        return [future.result() for future in futures]


def table(rows: list[dict]) -> str:
    """Held-out loss (nats per sample) at each time mark, one line per run."""
    marks = sorted({point["minutes"] for row in rows for point in row["points"]})
    header = ("| sound | impl | recipe | " + " | ".join(f"{m:g} min" for m in marks)
              + " | iterations | samples/s |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        at = {point["minutes"]: point["val_loss"] for point in row["points"]}
        cells = [Path(row["sound"]).stem, row["impl"], row["recipe"]]
        cells += [f"{at[m]:.3f}" if m in at else "" for m in marks]
        cells += [f"{row['iterations']:,}", f"{row['samples_per_s']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"time marks {QUICK_MINUTES} minutes")
    parser.add_argument("--minutes", type=positive_float, nargs="+", help=f"time marks (default {MINUTES})")
    parser.add_argument("--pytorch-minutes", type=float, nargs="+",
                        help="time marks of the PyTorch recipe (default: the same as blekota's)")
    parser.add_argument("--sound", nargs="+", help="sound files (default: speech and music from sounds.py)")
    parser.add_argument("--unseen", action="store_true",
                        help="sounds.py's speech2 and music2, which the defaults were not tuned on")
    parser.add_argument("--sound-dir", type=Path, default=Path(tempfile.gettempdir()) / "blekota-bench-sounds",
                        help="where sounds.py's sounds are made (default: a folder in the temp dir)")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads per run (default 2)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="also run blekota with these Trainer options")
    parser.add_argument("--no-pytorch", action="store_true", help="skip the PyTorch recipe")
    parser.add_argument("--no-defaults", action="store_true", help="skip blekota with its defaults")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="training time on the wall clock (default) or the process's CPU clock "
                        "(with --threads 1: robust to other load on the machine)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run a sound's runs at the same time (give each --threads 1 on 2 cores)")
    parser.add_argument("--json", type=json_output, help="write the rows to this file")
    args = parser.parse_args(argv)
    sound_files(parser, args.sound)
    minutes = args.minutes or (QUICK_MINUTES if args.quick else MINUTES)

    if args.sound:
        sounds = args.sound
    else:
        import sounds as makers

        sounds = makers.pair(args.unseen, args.sound_dir)
    runs = [] if args.no_defaults else [("blekota_quality", {"options": {}, "recipe": "defaults"})]
    for variant in args.variant:
        name, _, text = variant.partition("=")
        options = json.loads(text)
        runs.append(("blekota_quality", {"model_options": options.pop("model", {}), "options": options,
                                         "recipe": name}))
    if not args.no_pytorch:
        runs.append(("pytorch_quality", {"minutes": list(args.pytorch_minutes or minutes)}))
    rows = []
    for sound in sounds:
        calls = [(function, {"sound": sound, "minutes": list(minutes), "clock": args.clock, **kwargs})
                 for function, kwargs in runs]
        print(f"# {Path(sound).name}: {len(calls)} runs"
              + (", side by side" if args.side_by_side else ", one after the other"), flush=True)
        found = measure_side_by_side(calls, args.threads) if args.side_by_side else [
            measure_in_subprocess("quality", function, args.threads, **kwargs) for function, kwargs in calls
        ]
        if None in found:
            print("# torch is not importable: the PyTorch recipe was skipped")
        rows += [row for row in found if row is not None]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
