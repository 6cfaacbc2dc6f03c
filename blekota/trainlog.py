"""The machine-readable training log NAME.log.jsonl: one JSON object per line, appended as
training goes, with exactly the keys

    {"iteration": int, "time": float, "train_loss": float | null, "val_loss": float | null, "lr": float}

iteration: iterations done so far (counting earlier runs of a resumed model); time: seconds since
this training run started; train_loss: mean nats per sample since the previous line that had one
(null when the line only reports a validation); val_loss: nats per sample on the held-out part
(null when not validated at this iteration); lr: the learning rate from this iteration on.
Non-finite losses are written as null.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

from .checks import file_name
from .errors import BlekotaError
from .fileutil import input_problem, open_output

FIELDS = ("iteration", "time", "train_loss", "val_loss", "lr")


def _number(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def format_line(iteration: int, time: float, train_loss: float | None, val_loss: float | None, lr: float) -> str:
    """One log line (with its newline)."""
    values = (int(iteration), round(float(time), 3), _number(train_loss), _number(val_loss), float(lr))
    return json.dumps(dict(zip(FIELDS, values))) + "\n"


def append(path: str | os.PathLike, line: str) -> None:
    """Append a line to the log, straight to the OS, so a crash loses at most this line. A line
    an earlier crash cut short is dropped first, and a write that fails (a full disk) is undone:
    the log never holds half a line before a whole one."""
    data = line.encode("utf-8")
    with open(path, "a+b", buffering=0) as log:
        end = log.seek(0, os.SEEK_END)
        if end:
            log.seek(end - 1)
            if log.read(1) != b"\n":
                log.seek(0)
                end = log.read().rfind(b"\n") + 1
                log.truncate(end)
        try:
            while data:
                data = data[log.write(data):]
        except OSError:
            with contextlib.suppress(OSError):
                log.truncate(end)
            raise


def cut_after(path: str | os.PathLike, iteration: int) -> None:
    """Drop the lines of the log at path past `iteration` (those of a run gone on from an older
    checkpoint, now trained over), writing the rest in place atomically; a log that has none, or
    is missing, is left as it is. Raises BlekotaError as read_log."""
    if not os.path.lexists(path):
        return
    records = read_log(path)
    kept = [record for record in records
            if not (isinstance(record, dict) and isinstance(record.get("iteration"), int) and record["iteration"] > iteration)]
    if len(kept) < len(records):
        with open_output(path) as out:
            out.write("".join(json.dumps(record) + "\n" for record in kept).encode("utf-8"))


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a log file; a last line still being written (or cut short by a crash) is
    skipped. Raises BlekotaError naming the file when it cannot be read or is not a log."""
    path = Path(file_name("path", path))
    problem = input_problem(path, "a training log")
    if problem and problem != "is empty (0 bytes)":
        raise BlekotaError(f"{path}: {problem}")
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise BlekotaError(f"{path}: not a training log (not text; a log is NAME.log.jsonl)") from None
    except OSError as error:
        raise BlekotaError(f"{path}: cannot read ({error.strerror or error})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):  # no newline after it yet: training is writing it
                break
            raise BlekotaError(f"{path}:{number}: not a JSON line") from None
    return records


def is_log(path: str | os.PathLike) -> bool:
    """Whether the file at path is a training log: empty, or every complete line a record with
    the log's keys (one that training may append to)."""
    try:
        records = read_log(path)
    except BlekotaError:
        return False
    return all(isinstance(record, dict) and sorted(record) == sorted(FIELDS) for record in records)
