"""The made-up sound: what a model generates after a fixed training time, against its real source.

    python benchmarks/sound.py                      # speech and music, 10 minutes each (long)
    python benchmarks/sound.py --unseen             # speech2 and music2, which nothing was tuned on
    python benchmarks/sound.py --minutes 2 --sound my.wav --variant long='{"seq_length": 400}'
    python benchmarks/sound.py --unseen --train-seeds 3 --variant pe='{"model": {"preemphasis": 0.85}}'
    python benchmarks/sound.py --unseen --train-seeds 2 --trained-too   # each run with and without its average
    python benchmarks/sound.py --unseen --minutes 10 20 40   # the sound against training time
    python benchmarks/sound.py --unseen --also-sampling drawn='{"smooth": 0}'   # also the drawn levels
    python benchmarks/sound.py --unseen --also-sampling float32='{"bf16_sampling": false}'
    python benchmarks/sound.py --unseen --draw-sets 5      # medians over 5 sets of draws per model
    python benchmarks/sound.py --unseen --real-past        # also each step drawn given the real past
    python benchmarks/run.py --only sound [--quick]

Each run trains as quality.py does (blekota's defaults given the sound without its last 10 %, or
the PyTorch recipe; --clock cpu counts the run's own CPU seconds), then draws --streams
independent sounds of --seconds each with `sample`'s defaults (temperature 1, nothing truncated,
each sample written 0.3 of the way to its step's mean; --sampling changes that for every run, e.g.
'{"smooth": 0}' for the drawn levels), from silence, as `python -m blekota sample MODEL` does.
The PyTorch recipe's model is sampled the same way (blekota.reference's distribution and draw,
smoothed as Model.sample smooths).

Besides the held-out loss on levels (what training reports), blekota's rows give the continuous
loss: nats per sample of the held-out tail with each level's probability spread evenly over the
samples it stands for (blekota.mulaw.level_log_widths). Pre-emphasis changes what the levels stand
for, so only the continuous loss compares a model with it and one without.

The drawn sounds are measured against the whole real sound (blekota.soundstats):
  fd        log-mel Fréchet distance to the real sound (40 mel bands, 32 ms frames, 10 ms hop);
            on the same scale the table prints the floor, the median distance of --seconds x
            --streams of real sound (excerpts at four places) to the rest of it, the levels
            floor, the same excerpts written in the model's 256 mu-law levels (what a perfect
            model of the levels would score), and the ceiling, noise shaped to the real sound's
            average spectrum;
  quiet     share of 32 ms frames below a tenth of the real sound's loud level;
  bursts / pauses: median length in ms of the runs of frames above and below that line (each
            stream's runs apart);
  loudness  median frame RMS over the real sound's loud level (the real sound's own: about 0.3
            for speech, where pauses and soft sounds fill half the frames);
  flat      median spectral flatness of the other frames (0: harmonics, 1: white noise);
  variety   how much those frames' spectra change from frame to frame: the standard deviation of
            each log-mel band in dB, averaged over the bands (a drone or a steady hiss: a few dB);
  voiced    share of frames with a clear period (autocorrelation >= 0.5 within 60-500 Hz);
  f0, spread, motion: median pitch of voiced frames (Hz), its spread (semitones) and its median
            change between neighbouring frames (semitones per 10 ms).
--demo instead trains the demo's model as `python -m blekota demo` does (its sound, model, training
and iterations) and draws its continuation with --demo-seeds seeds: for each, the flatness of
loud frames and the quiet share of the made-up part against the demo sound's, and whether it
meets the bar (flatness <= 0.02, quiet share within 0.15 of the sound's).

With --out DIR each run's sounds go to DIR/SOUND_RUN.wav (the streams one after another) and
DIR/SOUND_RUN.png (a real excerpt and the first stream, waveforms and spectrograms).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Unavailable, json_output, measure_in_subprocess, positive_float, positive_int, sound_files  # noqa: E402
from quality import CLOCKS, VAL_FRACTION, mark_text, blekota_quality, pytorch_quality  # noqa: E402

MINUTES = 10.0
QUICK_MINUTES = 1.0
STREAMS = 5
SECONDS = 4.0
FS = 8000
CONTINUOUS_SAMPLES = 40_000  # of the held-out tail, for the continuous loss: 5 s at 8 kHz


def real_sound(sound: str) -> np.ndarray:
    from blekota.audio import load_audio

    samples, _ = load_audio(sound, FS)
    return samples


def judged_sets(draw, real: np.ndarray, sets: int, keep) -> dict:
    """judge() of `sets` sets of draws, draw(seed) (S, n) for seeds 1..sets, as one: the median of
    every measure, and with several sets each set's fd under "fd_sets". keep(generated) is
    given the first set (to write it)."""
    from blekota.soundstats import judge

    judgements = []
    for seed in range(1, sets + 1):
        generated = draw(seed)
        if seed == 1:
            keep(generated)
        judgements.append(judge(generated, real, FS))
    if sets == 1:
        return judgements[0]
    medians = {key: float(np.median([found[key] for found in judgements])) for key in judgements[0]}
    return {**medians, "fd_sets": [found["fd"] for found in judgements]}


def keep_sounds(generated: np.ndarray, real: np.ndarray, out: str | None, name: str) -> None:
    """Write the drawn streams as one wav and a picture of the first beside a real excerpt."""
    if not out:
        return
    from blekota import plot
    from blekota.audio import save_wav

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    save_wav(folder / f"{name}.wav", generated.reshape(-1), FS)
    start = real.size // 3
    plot.compare(real[start:start + generated.shape[1]], generated[0], FS, out=folder / f"{name}.png")


def mark_label(minutes: float, several: bool) -> str:
    """What a run's name gets for a time mark when there are several: ", 10 min"."""
    return f", {minutes:g} min" if several else ""


def file_part(name: str) -> str:
    """A run's name as part of a file name: "defaults, 10 min" -> "defaults_10_min"."""
    return name.replace(", ", "_").replace(" ", "_")


def seed_part(seed: int) -> str:
    """A training seed in a file name: nothing for seed 0, "_seed1" for 1."""
    return f"_seed{seed}" if seed else ""


def blekota_sound(threads: int, sound: str, minutes: list[float], options: dict, recipe: str, clock: str,
                  model_options: dict, sampling: dict, streams: int, seconds: float, out: str | None,
                  seed: int = 0, trained_too: bool = False, also_sampling: dict | None = None,
                  draw_sets: int = 1, real_past: bool = False) -> list[dict]:
    """Train like quality.blekota_quality from `seed` to the last time mark, then draw and judge
    `streams` sounds from the model at every mark: a row per mark (recipe "RECIPE, M min" when
    there are several). trained_too: with weight averaging, also draw and judge the weights as
    last updated (rows of their own, recipe "RECIPE, as trained"). also_sampling {NAME: sample
    options}: also draw and judge every model with `sampling` updated by these, the same draws
    (rows "RECIPE, NAME"). draw_sets: judge that many sets of draws (seeds 1..draw_sets), the
    medians (judged_sets). real_past: also judge every sampling fed the real past (real_past_draws;
    rows "RECIPE, fed the real past")."""
    import blekota

    real = real_sound(sound)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        path, trained_path = (str(Path(directory) / f"{kind}_{{minutes}}.npz") for kind in ("model", "trained"))
        row = blekota_quality(threads, sound, minutes, options, recipe, clock, model_options, path, seed,
                              trained_path if trained_too else None)
        for index, point in enumerate(row["points"]):
            name = recipe + mark_label(point["minutes"], len(minutes) > 1)
            at_mark = {**row, "iterations": point["iteration"], "points": row["points"][: index + 1]}
            trained_loss = point.pop("trained_val_loss", None)
            for judged_name, file in ((name, path), (f"{name}, as trained", trained_path)):
                file = Path(file.format(minutes=mark_text(point["minutes"])))
                if not file.exists():
                    continue
                model = blekota.load(file, threads=threads)
                loss = continuous_loss(model, real)
                samplings = {judged_name: sampling}
                samplings.update({f"{judged_name}, {extra}": {**sampling, **options}
                                  for extra, options in (also_sampling or {}).items()})
                draws = [(drawn_name, drawn_with, False) for drawn_name, drawn_with in samplings.items()]
                if real_past:
                    draws += [(f"{drawn_name}, fed the real past", drawn_with, True)
                              for drawn_name, drawn_with in samplings.items()]
                for drawn_name, drawn_with, fed_real in draws:
                    def draw(draw_seed: int) -> np.ndarray:
                        options, products = dict(drawn_with), model.bf16_sampling
                        model.bf16_sampling = options.pop("bf16_sampling", products)
                        try:
                            if fed_real:
                                return real_past_draws(model, real, options, streams, round(seconds * FS), draw_seed)
                            return model.sample(round(seconds * FS), streams=streams, seed=draw_seed,
                                                **options).reshape(streams, -1)
                        finally:
                            model.bf16_sampling = products

                    name_part = f"{Path(sound).stem}_{file_part(drawn_name)}{seed_part(seed)}"
                    judgement = judged_sets(draw, real, draw_sets,
                                            lambda generated: keep_sounds(generated, real, out, name_part))
                    judged = {**at_mark, "recipe": drawn_name, "seed": seed, "sampling": drawn_with,
                              "continuous_loss": loss, **judgement}
                    if judged_name != name:
                        judged["points"] = [*at_mark["points"][:-1], {**point, "val_loss": trained_loss}]
                    rows.append(judged)
    return rows


def places(real: np.ndarray, streams: int, n: int, seed: int) -> np.ndarray:
    """(streams, n): the real sound at `streams` places drawn from `seed` (anywhere in it, so most
    of them in the part a model trained on)."""
    starts = np.random.default_rng(seed).integers(0, real.size - n + 1, streams)
    return np.stack([real[start:start + n] for start in starts])


def real_past_draws(model, real: np.ndarray, sampling: dict, streams: int, n: int, seed: int) -> np.ndarray:
    """(streams, n) float32: each sample drawn from the model's distribution given the real sound's
    own past at places(real, streams, n, seed), instead of the model's earlier draws: what the
    randomness of every step does to the sound without drift. The distributions as `sampling`
    shapes them (Model.generate's return_probs: temperature and truncation), each level drawn as
    blekota.reference.draw_level draws with uniforms from `seed` and written `smooth` of the way
    to the step's mean (temperature 0: the likeliest level, written as it is, as sampling does),
    through the model's de-emphasis when it has pre-emphasis."""
    from blekota.drawing import SMOOTH, smoothed
    from blekota.emphasis import deemphasize
    from blekota.mulaw import unquantize

    shaping = {key: value for key, value in sampling.items() if key not in ("smooth", "wake")}
    values = unquantize(np.arange(256)).astype(np.float64)
    uniforms = np.random.default_rng(seed)
    parts = []
    for _, probs in model.generate(n, hint=list(places(real, streams, n, seed)), seed=seed, streams=streams,
                                   return_probs=True, **shaping):
        p = probs.reshape(streams, -1, 256).astype(np.float64)
        running = np.cumsum(p, axis=-1)
        if shaping.get("temperature", 1.0) == 0:
            drawn = means = values[p.argmax(axis=-1)]
        else:
            u = uniforms.random(p.shape[:-1] + (1,)) * running[..., -1:]
            drawn = values[np.minimum((running <= u).sum(axis=-1), 255)]
            means = p @ values / running[..., -1]
        parts.append(smoothed(drawn, means, sampling.get("smooth", SMOOTH)))
    written = np.concatenate(parts, axis=1)
    if model.preemphasis:
        written = np.stack([deemphasize(row, model.preemphasis) for row in written])
    return written.astype(np.float32)


def continuous_loss(model, real: np.ndarray) -> float:
    """Nats per sample of the held-out tail (its first CONTINUOUS_SAMPLES, from a zero state) under
    the density that spreads each level's probability evenly over the samples it stands for: unlike
    the loss on levels, comparable between models with and without pre-emphasis."""
    from blekota.dataset import held_out
    from blekota.mulaw import level_log_widths, quantize

    heard = quantize(model.heard(real))[real.size - held_out(real.size, VAL_FRACTION):][: CONTINUOUS_SAMPLES + 1]
    probs = model.probabilities(heard[:-1, None])[:, 0]
    targets = heard[1:]
    chosen = probs[np.arange(targets.size), targets].astype(np.float64)
    return float(np.mean(level_log_widths()[targets] - np.log(chosen)))


def pytorch_sound(threads: int, sound: str, minutes: list[float], clock: str, sampling: dict, streams: int,
                  seconds: float, out: str | None, seed: int = 0, draw_sets: int = 1) -> list[dict]:
    """The PyTorch recipe to the last time mark from `seed`, its model at every mark sampled like
    blekota's and judged (draw_sets as blekota_sound's): a row per mark."""
    try:
        import torch
    except ImportError as error:
        raise Unavailable(f"torch is not importable: {error}") from error

    real = real_sound(sound)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "model_{minutes}.pt")
        row = pytorch_quality(threads, sound, minutes, clock, path, seed)
        for index, point in enumerate(row["points"]):
            state = torch.load(path.format(minutes=mark_text(point["minutes"])))
            mark = mark_label(point["minutes"], len(minutes) > 1)
            name_part = f"{Path(sound).stem}_pytorch{file_part(mark)}{seed_part(seed)}"
            judgement = judged_sets(lambda draw_seed: pytorch_sample(state, sampling, streams, round(seconds * FS),
                                                                     draw_seed),
                                    real, draw_sets, lambda generated: keep_sounds(generated, real, out, name_part))
            rows.append({**row, "recipe": row["recipe"] + mark,
                         "iterations": point["iteration"], "points": row["points"][: index + 1], "seed": seed,
                         "sampling": sampling, **judgement})
    return rows


def pytorch_sample(state: dict, sampling: dict, streams: int, n: int, seed: int = 1) -> np.ndarray:
    """(streams, n) float32 samples drawn from the PyTorch recipe's model (its state dicts) from
    silence, each level from blekota.reference.sampling_distribution with `sampling`'s options,
    written `smooth` of the way to the mean of that distribution (blekota.drawing.smoothed), and
    long silences heard dithered as `wake` says (blekota.reference.heard_level); the draws from
    numpy.random.PCG64(seed)."""
    import torch

    from blekota.drawing import SMOOTH, WAKE, smoothed, wake_steps
    from blekota.mulaw import SILENCE, unquantize
    from blekota.reference import draw_level, heard_level, sampling_distribution

    levels, hidden = state["linear"]["weight"].shape
    layers = sum(1 for key in state["gru"] if key.startswith("weight_ih_l"))
    gru = torch.nn.GRU(levels, hidden, num_layers=layers)
    linear = torch.nn.Linear(hidden, levels)
    gru.load_state_dict(state["gru"])
    linear.load_state_dict(state["linear"])
    temperature = sampling.get("temperature", 1.0)
    truncation = {key: sampling[key] for key in ("top_k", "top_p", "min_p") if key in sampling}
    smooth = sampling.get("smooth", SMOOTH)
    wake_after = wake_steps(sampling.get("wake", WAKE), FS)
    quiet_runs = [0] * streams
    sample_of_level = unquantize(np.arange(levels)).astype(np.float64)
    rng = np.random.Generator(np.random.PCG64(seed))
    drawn = np.empty((streams, n), np.uint8)
    means = np.empty((streams, n))
    previous = np.full(streams, SILENCE)
    h = torch.zeros(layers, streams, hidden)
    with torch.no_grad():
        for t in range(n):
            x = torch.nn.functional.one_hot(torch.from_numpy(previous).long(), levels).float()[None]
            output, h = gru(x, h)
            p = torch.softmax(linear(output[0]).double(), dim=-1).numpy()
            if temperature == 0:
                drawn[:, t] = previous = p.argmax(axis=-1)
                means[:, t] = sample_of_level[previous]
            else:
                p = sampling_distribution(p, temperature, **truncation)
                draws = rng.random(streams)
                drawn[:, t] = [draw_level(row, u) for row, u in zip(p, draws)]
                means[:, t] = p @ sample_of_level
                for s in range(streams):
                    previous[s], quiet_runs[s] = heard_level(int(drawn[s, t]), draws[s], quiet_runs[s], wake_after)
    return smoothed(unquantize(drawn), means, smooth)


def demo_draws(threads: int, iterations: int, seeds: int, model_options: dict | None = None,
               training_options: dict | None = None, train_seed: int = 0) -> dict:
    """The demo's model trained from train_seed (the demo's is 0) for `iterations`, its continuation
    drawn with seeds 0..seeds-1, judged; model_options and training_options replace parts of the
    demo's model and training."""
    import blekota
    from blekota import demo
    from blekota.soundstats import describe, loud_level

    sound = demo.demo_sound(FS)
    model = blekota.Model(**{**demo.DEMO_MODEL, **(model_options or {})}, fs=FS, seed=train_seed, threads=threads)
    with tempfile.TemporaryDirectory() as directory:
        trainer = blekota.Trainer(model, sound, **{**demo.DEMO_TRAINING, **(training_options or {})},
                                  checkpoint_every=0,
                                  directory=directory, seed=train_seed, log=False)
        trainer.train(iterations)
        val_loss = trainer.validation_loss()
    source = describe(sound, FS)
    hint = sound[: round(demo.DEMO_HINT_SECONDS * FS)]
    draws = []
    for seed in range(seeds):
        made_up = model.sample(round(demo.DEMO_SECONDS * FS), seed=seed, hint=hint,
                               **demo.DEMO_SAMPLING)[hint.size:]
        stats = describe(made_up, FS, loud_level(sound, FS))
        draws.append({"seed": seed, "flatness": stats.flatness, "quiet_share": stats.quiet_share,
                      "note_changes": demo.note_changes(made_up, FS),
                      "good": bool(stats.flatness <= 0.02
                                   and abs(stats.quiet_share - source.quiet_share) <= 0.15)})
    return {"iterations": iterations, "threads": threads, "train_seed": train_seed, "val_loss": val_loss,
            "model": model_options or {},
            "training": training_options or {},
            "source_quiet_share": source.quiet_share, "source_flatness": source.flatness, "draws": draws}


def demo_table(row: dict) -> str:
    changes = json.dumps({key: row[key] for key in ("model", "training") if row.get(key)})
    lines = [f"# the demo{' with ' + changes if changes != '{}' else ''} after {row['iterations']} iterations "
             f"({row['threads']} threads, training seed {row.get('train_seed', 0)}): validation loss "
             f"{row['val_loss']:.3f}; the sound's quiet share {row['source_quiet_share']:.3f}, flatness "
             f"{row['source_flatness']:.3f}",
             "| seed | flatness | quiet | note changes | meets the bar |", "|---|---|---|---|---|"]
    for draw in row["draws"]:
        lines.append(f"| {draw['seed']} | {draw['flatness']:.3f} | {draw['quiet_share']:.2f} | "
                     f"{draw['note_changes']} | {'yes' if draw['good'] else 'no'} |")
    good = sum(draw["good"] for draw in row["draws"])
    return "\n".join(lines + [f"{good} of {len(row['draws'])} draws meet the bar"])


def table(rows: list[dict]) -> str:
    """One line per run: held-out loss and the sound measures, with each sound's real figures."""
    header = ("| sound | run | loss | continuous | fd (floor / levels / noise) | quiet | bursts / pauses ms | loudness "
              "| flat | variety dB | voiced | f0 Hz | spread | motion | iterations |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        loss = f"{row['points'][-1]['val_loss']:.3f}" if row.get("points") else ""
        fd = f"{row['fd']:.0f}" + (f" ({row['floor']:.0f} / {row['levels_floor']:.0f} / {row['ceiling']:.0f})"
                                       if "floor" in row else "")
        if "fd_sets" in row:
            fd += f" [{min(row['fd_sets']):.0f}-{max(row['fd_sets']):.0f}]"
        continuous = f"{row['continuous_loss']:.3f}" if "continuous_loss" in row else ""
        recipe = row["recipe"] + (", bf16 products" if "bf16" in row.get("impl", "") else "")
        recipe += f" (seed {row['seed']})" if row.get("seed") else ""
        cells = [Path(row["sound"]).stem, recipe, loss, continuous, fd]
        cells += [f"{row['quiet_share']:.3f}", f"{row['burst_ms']:.0f} / {row['pause_ms']:.0f}", f"{row['loudness']:.2f}"]
        cells += [f"{row['flatness']:.3f}", f"{row['variety_db']:.1f}", f"{row['voiced_share']:.3f}"]
        cells += [f"{row['pitch_hz']:.0f}", f"{row['pitch_spread']:.2f}", f"{row['pitch_motion']:.2f}"]
        cells.append(f"{row['iterations']:,}" if "iterations" in row else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_table(rows: list[dict]) -> str:
    """One line per sound and run: the medians over its training seeds (rows of the real sound
    itself, which train nothing, left out)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if "points" in row:
            groups.setdefault((Path(row["sound"]).stem, row["recipe"]), []).append(row)
    keys = ("continuous_loss", "fd", "quiet_share", "burst_ms", "pause_ms", "loudness", "flatness", "variety_db",
            "voiced_share")
    lines = ["| sound | run | seeds | loss | continuous | fd | quiet | bursts ms | pauses ms | loudness | flat | variety dB "
             "| voiced |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (sound, recipe), group in groups.items():
        loss = np.median([row["points"][-1]["val_loss"] for row in group])
        medians = [np.median([row[key] for row in group]) if all(key in row for row in group) else None for key in keys]
        cells = [sound, recipe, str(len(group)), f"{loss:.3f}"]
        cells += ["" if value is None else f"{value:.0f}" if key in ("fd", "burst_ms", "pause_ms")
                  else f"{value:.1f}" if key == "variety_db" else f"{value:.3f}"
                  for key, value in zip(keys, medians)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def real_places_row(sound: str, streams: int, seconds: float, draw_sets: int) -> dict:
    """The places --real-past feeds, written in 256 levels and judged as draws are: how near the
    real past's own levels are (the same places for the same seeds)."""
    from blekota.mulaw import quantize, unquantize

    real = real_sound(sound)
    judgement = judged_sets(lambda seed: unquantize(quantize(places(real, streams, round(seconds * FS), seed))),
                            real, draw_sets, lambda generated: None)
    return {"sound": sound, "recipe": "real, the places fed (in levels)", **judgement}


def real_row(sound: str, streams: int, seconds: float) -> dict:
    """The real sound measured like the made-up ones: its floor and ceiling, and its own stats."""
    from blekota.soundstats import describe, distance_scale

    real = real_sound(sound)
    floor, levels_floor, ceiling = distance_scale(real, FS, round(streams * seconds * FS))
    return {"sound": sound, "recipe": "real", "fd": floor, "floor": floor, "levels_floor": levels_floor,
            "ceiling": ceiling,
            **describe(real, FS).as_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=positive_float, nargs="+",
                        help=f"training time of every run (default {MINUTES:g}); several: each run trains "
                        "to the last, and the model at every mark is drawn and judged")
    parser.add_argument("--quick", action="store_true", help=f"train {QUICK_MINUTES:g} minute")
    parser.add_argument("--sound", nargs="+", help="sound files (default: speech and music from sounds.py)")
    parser.add_argument("--unseen", action="store_true", help="sounds.py's speech2 and music2")
    parser.add_argument("--sound-dir", type=Path, default=Path(tempfile.gettempdir()) / "blekota-bench-sounds",
                        help="where sounds.py's sounds are made (default: a folder in the temp dir)")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads per run (default 2)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="training time on the wall clock or the process's CPU clock")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help='also run blekota with these options: Trainer options, and under "model" '
                        "Model options, under \"sampling\" sample options")
    parser.add_argument("--sampling", default="{}", metavar="JSON",
                        help="sample options for every run (default: sample's defaults)")
    parser.add_argument("--streams", type=positive_int, default=STREAMS, help=f"sounds drawn per run (default {STREAMS})")
    parser.add_argument("--seconds", type=positive_float, default=SECONDS, help=f"seconds each (default {SECONDS:g})")
    parser.add_argument("--no-pytorch", action="store_true", help="skip the PyTorch recipe")
    parser.add_argument("--no-defaults", action="store_true", help="skip blekota with its defaults")
    parser.add_argument("--side-by-side", action="store_true", help="run a sound's runs at the same time")
    parser.add_argument("--out", help="write each run's sounds and a picture to this folder")
    parser.add_argument("--demo", action="store_true", help="measure the demo's single draws instead")
    parser.add_argument("--demo-iterations", type=positive_int, help="the demo's training iterations (default: the demo's)")
    parser.add_argument("--demo-seeds", type=positive_int, default=10, help="draws of the demo's continuation (default 10)")
    parser.add_argument("--demo-variant", default="{}", metavar="JSON",
                        help='with --demo: Model options under "model", Trainer options under "training" '
                        "replacing the demo's")
    parser.add_argument("--train-seeds", type=positive_int, default=1, metavar="N",
                        help="train every run from seeds 0..N-1 (one 10-minute run is a draw) and add "
                        "a table of the medians over the seeds; with --demo, the demo's model from each "
                        "(default 1)")
    parser.add_argument("--trained-too", action="store_true",
                        help="also judge each averaging run's weights as last updated (a paired row, "
                        "'RECIPE, as trained': the same run without its average)")
    parser.add_argument("--also-sampling", action="append", default=[], metavar="NAME=JSON",
                        help="also draw and judge every blekota model with these sample options over "
                        "--sampling (a paired row 'RECIPE, NAME': the same model and draws), e.g. "
                        "drawn='{\"smooth\": 0}'; \"bf16_sampling\": false or true sets the model's "
                        "products for those draws, e.g. float32='{\"bf16_sampling\": false}'")
    parser.add_argument("--draw-sets", type=positive_int, default=1, metavar="K",
                        help="judge K sets of draws of every model (seeds 1..K) and print the medians, "
                        "fd with its [min-max] over the sets: one set of a model that falls silent "
                        "now and then is a lottery (default 1)")
    parser.add_argument("--real-past", action="store_true",
                        help="also judge every blekota model fed the real past: each sample drawn from the "
                             "model's distribution given the real sound before it (at random places), so the "
                             "randomness of each step without drift; and those places themselves in levels")
    parser.add_argument("--json", type=json_output, help="write the rows to this file")
    args = parser.parse_args(argv)
    sound_files(parser, args.sound)
    minutes = sorted(args.minutes or [QUICK_MINUTES if args.quick else MINUTES])
    sampling = json.loads(args.sampling)
    demo_variant = json.loads(args.demo_variant)
    if set(demo_variant) - {"model", "training"}:
        parser.error(f"--demo-variant {args.demo_variant}: Model options go under \"model\", Trainer options "
                     "under \"training\"")
    if args.demo:
        from blekota.demo import DEMO_ITERATIONS

        demo_rows = []
        for train_seed in range(args.train_seeds):
            demo_rows.append(measure_in_subprocess(
                "sound", "demo_draws", args.threads, iterations=args.demo_iterations or DEMO_ITERATIONS,
                seeds=args.demo_seeds, model_options=demo_variant.get("model", {}),
                training_options=demo_variant.get("training", {}), train_seed=train_seed))
            print(demo_table(demo_rows[-1]), flush=True)
        if args.train_seeds > 1:
            good = sum(draw["good"] for row in demo_rows for draw in row["draws"])
            print(f"{good} of {sum(len(row['draws']) for row in demo_rows)} draws over {args.train_seeds} "
                  "trainings meet the bar")
        if args.json:
            args.json.write_text(json.dumps(demo_rows if args.train_seeds > 1 else demo_rows[0], indent=1) + "\n")
        return 0

    if args.sound:
        sounds = args.sound
    else:
        import sounds as makers

        sounds = makers.pair(args.unseen, args.sound_dir)
    common = {"minutes": minutes, "clock": args.clock, "streams": args.streams, "seconds": args.seconds,
              "out": args.out, "draw_sets": args.draw_sets}
    runs = [] if args.no_defaults else [("blekota_sound", {"options": {}, "recipe": "defaults",
                                                           "model_options": {}, "sampling": sampling})]
    for variant in args.variant:
        name, _, text = variant.partition("=")
        options = json.loads(text)
        runs.append(("blekota_sound", {"recipe": name, "model_options": options.pop("model", {}),
                                       "sampling": {**sampling, **options.pop("sampling", {})},
                                       "options": options}))
    if args.trained_too:
        runs = [(function, {**kwargs, "trained_too": True}) for function, kwargs in runs]
    if args.also_sampling:
        also = {name: json.loads(text) for name, _, text in (item.partition("=") for item in args.also_sampling)}
        runs = [(function, {**kwargs, "also_sampling": also}) for function, kwargs in runs]
    if args.real_past:
        runs = [(function, {**kwargs, "real_past": True}) for function, kwargs in runs]
    if not args.no_pytorch:
        runs.append(("pytorch_sound", {"sampling": sampling}))
    runs = [(function, {**kwargs, "seed": seed}) for seed in range(args.train_seeds) for function, kwargs in runs]
    rows = []
    for sound in sounds:
        rows.append(real_row(sound, args.streams, args.seconds))
        if args.real_past:
            rows.append(real_places_row(sound, args.streams, args.seconds, args.draw_sets))
        calls = [(function, {"sound": sound, **common, **kwargs}) for function, kwargs in runs]
        print(f"# {Path(sound).name}: {len(calls)} runs of {', '.join(f'{m:g}' for m in minutes)} minutes"
              + (", side by side" if args.side_by_side else ", one after the other"), flush=True)
        if args.side_by_side:
            from quality import measure_side_by_side

            found = measure_side_by_side(calls, args.threads, module="sound")
        else:
            found = [measure_in_subprocess("sound", function, args.threads, **kwargs)
                     for function, kwargs in calls]
        if None in found:
            print("# torch is not importable: the PyTorch recipe was skipped")
        for found_rows in found:
            rows += found_rows or []
        print(table(rows), flush=True)
    if args.train_seeds > 1:
        print(median_table(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
