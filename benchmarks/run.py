"""Run the benchmark suite and print its table: python benchmarks/run.py [--quick] [--json OUT].

Sections: training.py (always), sampling.py, sparse.py and scaling.py (when present); each returns rows as
described in common.py. Every measurement runs in its own subprocess. Ratios compare samples/s with the
pytorch and reference rows of the same section, config and thread count (the reference is
float64 only, so both blekota dtypes are compared with it). `--only quality` runs quality.py
instead (held-out loss against training time) and `--only sound` runs sound.py (what the trained
models make up, against the real sound); both are long, so never part of the full run. `--only gpu`
runs gpu.py (training steps on a CUDA GPU against cuDNN's GRU; refused without one). After the
training table, parts.py's breakdown of blekota's float32 iteration (needs Linux perf).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import json_output, positive_int  # noqa: E402

SECTIONS = ("training", "sampling", "sparse", "scaling")


def machine() -> dict:
    """CPU model, usable cores, date and library versions of this run."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import numpy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        versions["torch"] = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "versions": versions,
    }


def ratio(row: dict, rows: list[dict], impl: str) -> float | None:
    """row's samples/s over the matching peer row's (same section, config, threads)."""
    for peer in rows:
        if (peer["impl"] == impl and peer["section"] == row["section"]
                and peer["config"] == row["config"] and peer["threads"] == row["threads"]
                and (impl == "reference" or peer["dtype"] == row["dtype"])):
            return row["samples_per_s"] / peer["samples_per_s"]
    return None


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table, with ratios to the pytorch and reference rows."""
    header = ("| section | config | impl | dtype | thr | median s (min-max) | samples/s "
              "| vs pytorch | vs reference | peak MiB (base) | note |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        cells = [
            row["section"], f"{row['config']} ({row['shape']})", row["impl"], row["dtype"],
            str(row["threads"]),
            f"{row['median_s']:.4g} ({row['min_s']:.3g}-{row['max_s']:.3g})",
            f"{row['samples_per_s']:,.0f}",
        ]
        for peer in ("pytorch", "reference"):
            value = ratio(row, rows, peer) if row["impl"] != peer else None
            cells.append(f"{value:.2f}x" if value is not None else "")
        cells.append("" if row["peak_mib"] is None else f"{row['peak_mib']:.0f} ({row['base_mib']:.0f})")
        cells.append(row.get("note", ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and warm-up runs")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads per implementation")
    parser.add_argument("--repeats", type=positive_int, default=None, help="timed runs per measurement")
    parser.add_argument("--json", type=json_output, help="write machine info and rows to this file")
    parser.add_argument("--only", choices=SECTIONS + ("quality", "sound", "gpu"),
                        help="run one section; quality (held-out loss against training time) and "
                        "sound (the made-up sound against the real one) are long (see quality.py "
                        "and sound.py) and run only when asked for; gpu needs a CUDA GPU (see gpu.py)")
    args = parser.parse_args(argv)
    if args.only == "gpu":
        import gpu

        return gpu.main(["--quick"] * args.quick + (["--json", str(args.json)] if args.json else [])
                        + (["--repeats", str(args.repeats)] if args.repeats else []))
    if args.only == "quality":
        import quality

        return quality.main(["--threads", str(args.threads)] + ["--quick"] * args.quick
                            + (["--json", str(args.json)] if args.json else []))
    if args.only == "sound":
        import sound

        return sound.main(["--threads", str(args.threads)] + ["--quick"] * args.quick
                          + (["--json", str(args.json)] if args.json else []))
    repeats = args.repeats or (3 if args.quick else 10)

    info = machine()
    print(f"# {info['cpu']}, {info['cores']} cores, {info['date']}, "
          + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    rows = []
    for section in SECTIONS:
        if args.only and section != args.only:
            continue
        if importlib.util.find_spec(section) is None:
            print(f"# no benchmarks/{section}.py: section skipped")
            continue
        print(f"# running {section} ...", flush=True)
        rows += importlib.import_module(section).run(args.threads, repeats, args.quick)
    if not any(row["impl"] == "pytorch" for row in rows):
        print("# torch is not importable: the PyTorch comparison was skipped "
              "(pip install -e '.[bench]' to include it)")
    print(table(rows))
    if any(row["section"] == "training" for row in rows):
        import parts

        medians = {row["impl"]: row["median_s"] for row in rows if row["section"] == "training"
                   and row["config"] == "default" and row["dtype"] == "float32"}
        print("\n# where blekota's float32 iteration goes (benchmarks/parts.py)\n")
        print(parts.breakdown(args.threads, pytorch_s=medians.get("pytorch"), blekota_s=medians.get("blekota")))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
