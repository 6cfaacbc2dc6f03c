"""How training looks on a terminal: a tqdm progress bar, or plain lines when output is not a
terminal. Both are Trainer callbacks; warnings go to stderr. ReaderWatch stops a run whose reader
went away."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

from .errors import one_line
from .fileutil import write_nowhere
from .interrupts import leave_terminal
from .progress import Progress

QUIET, NORMAL, VERBOSE = 0, 1, 2


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def describe(report: Progress, verbosity: int = NORMAL) -> str | None:
    """The line shown for a report at this verbosity (None: nothing to show)."""
    if report.kind == "warning":
        return f"warning: {one_line(report.message)}"
    if verbosity <= QUIET or report.kind == "step":
        return None
    if report.kind == "progress":
        val = f"  val {report.val_loss:.4f}" if report.val_loss is not None else ""
        detail = f"  lr {report.lr:.3g}" if verbosity >= VERBOSE else ""
        return (
            f"iteration {report.iteration:>7}  loss {_loss(report.loss)} nats/sample{val}  epoch "
            f"{report.epoch}  {report.samples_per_s:,.0f} samples/s  {report.elapsed_s:,.0f} s{detail}"
        )
    if report.kind == "validation":
        return (
            f"validation at {report.iteration}: {report.val_loss:.4f} nats/sample "
            f"({report.val_bits:.3f} bits/sample), best {_loss(report.best_val_loss)}"
        )
    if report.kind == "checkpoint":
        best = report.path is not None and report.path.stem.endswith("_best")
        return f"wrote {report.path}" if verbosity >= VERBOSE or not best else None
    if report.kind == "note":
        return report.message
    state = "stopped" if report.kind == "interrupted" else "done"
    line = f"{state} at iteration {report.iteration}; saved {report.path}"
    measured = None not in (report.path, report.val_loss, report.best_val_loss)
    if report.kind == "done" and measured and report.val_loss > report.best_val_loss:
        best = report.path.with_name(f"{report.path.stem.rsplit('_', 1)[0]}_best.npz")
        line += f" (validation {report.val_loss:.4f}; the best, {report.best_val_loss:.4f}, is {best})"
    return line


def print_progress(report: Progress) -> None:
    """Plain lines at normal verbosity (warnings on stderr)."""
    line = describe(report)
    if line is not None:
        print(line, file=sys.stderr if report.kind == "warning" else sys.stdout, flush=True)


class TrainingDisplay:
    """A Trainer callback. bar: a tqdm bar over `iterations`, shown from the first report (pass
    report_steps=True to the Trainer so it moves every iteration), with messages printed above
    it; otherwise plain lines. verbosity: QUIET (warnings only), NORMAL, or VERBOSE (also the lr
    and every file written)."""

    def __init__(self, iterations: int, bar: bool, verbosity: int = NORMAL, file: TextIO | None = None):
        self.verbosity = verbosity
        self.file = file or sys.stdout
        self.iterations = iterations
        self.show_bar = bar and verbosity > QUIET
        self.bar = None
        self.loss: float | None = None

    def __call__(self, report: Progress) -> None:
        if self.show_bar and self.bar is None and report.kind not in ("done", "interrupted"):
            self.bar = tqdm(
                total=self.iterations, unit="it", file=self.file, dynamic_ncols=True,
                bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
            )
        if self.bar is not None and report.kind in ("step", "progress", "validation"):
            self._update_bar(report)
            if report.kind == "step" or (report.kind == "progress" and self.verbosity < VERBOSE):
                return
        if report.kind in ("done", "interrupted"):
            self.close()
        line = describe(report, self.verbosity)
        if line is None:
            return
        if report.kind == "warning":
            print(line, file=sys.stderr, flush=True)
        elif self.bar is not None:
            self.bar.write(line, file=self.file)
        else:
            print(line, file=self.file, flush=True)

    def _update_bar(self, report: Progress) -> None:
        if report.kind == "progress":
            self.loss = report.loss
        done = self.bar.total - report.iterations_left
        val = f" val {report.val_loss:.4f}" if report.val_loss is not None else ""
        self.bar.set_postfix_str(
            f"iteration {report.iteration} loss {_loss(self.loss if self.loss is not None else report.loss)}{val} lr {report.lr:.3g} "
            f"{report.samples_per_s:,.0f} samples/s",
            refresh=False,
        )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        """Finish the bar; no bar is shown after this."""
        self.show_bar = False
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ReaderWatch:
    """A training display that, when the reader of standard output goes away (a closed
    `| head`, or `| tee` ended by the Ctrl+C that train also hears) or the terminal hangs up
    (EIO: a write can come before the SIGHUP), prints nothing more and stops the run after the
    current update, saving it, as Ctrl+C does, instead of ending unsaved (a KeyboardInterrupt
    raised by the callback, see Trainer.train)."""

    def __init__(self, display: Callable[[Progress], None]):
        self.display, self.gone, self.hung_up = display, False, False

    def __call__(self, report: Progress) -> None:
        if self.gone:
            return
        try:
            self.display(report)
        except OSError as error:
            if not isinstance(error, BrokenPipeError) and error.errno != errno.EIO:
                raise
            self.gone = True
            if error.errno == errno.EIO:
                self.hung_up = True
                leave_terminal()
            else:
                write_nowhere([sys.stdout.fileno()])
            if report.kind not in ("done", "interrupted"):  # the run is saved by then
                raise KeyboardInterrupt from None

    def close(self) -> None:
        """Close the display it watches (when it has a close)."""
        getattr(self.display, "close", lambda: None)()
