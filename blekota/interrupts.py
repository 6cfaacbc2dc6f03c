"""Interruptions: while a run trains, Ctrl+C (SIGINT), SIGTERM and a hang-up (SIGHUP: the terminal
closed, an ssh connection lost) ask it to stop after the current update, instead of cutting an
update or a file in half. A hang-up that was ignored when the context began (nohup) stays ignored."""

from __future__ import annotations

import os
import signal
import stat
import threading

from .fileutil import write_nowhere

SIGHUP = getattr(signal, "SIGHUP", None)  # None where there is none (Windows)
SIGNALS = (signal.SIGINT, signal.SIGTERM) + ((SIGHUP,) if SIGHUP is not None else ())


def heeded(signals: tuple[int | None, ...] = SIGNALS) -> tuple[int, ...]:
    """The signals to catch: all of them but None (no SIGHUP on Windows) and a SIGHUP ignored now
    (under nohup it must not stop a run)."""
    ignored = SIGHUP is not None and signal.getsignal(SIGHUP) is signal.SIG_IGN
    return tuple(sig for sig in signals if sig is not None and not (sig == SIGHUP and ignored))


def _terminals() -> list[int]:
    """Standard output and error where they are a terminal, hung up or not: a character device
    other than the null device (isatty() says False once the terminal hung up)."""
    null = os.stat(os.devnull).st_rdev
    found = []
    for fd in (1, 2):
        try:
            info = os.fstat(fd)
        except OSError:  # closed: nothing to write to either way
            continue
        if stat.S_ISCHR(info.st_mode) and info.st_rdev != null:
            found.append(fd)
    return found


def terminal_gone() -> bool:
    """Whether standard output or error is a terminal that hung up."""
    return any(not os.isatty(fd) for fd in _terminals())


def leave_terminal() -> None:
    """After a hang-up (in the main thread): standard output and error that were the terminal write
    to the null device from now on (writing to a terminal that hung up fails with EIO), and further
    hang-ups are ignored (the shell and the terminal may each send one)."""
    if SIGHUP is not None:
        signal.signal(SIGHUP, signal.SIG_IGN)
    write_nowhere(_terminals())


class StopRequests:
    """A context in which SIGINT, SIGTERM and SIGHUP (see heeded) set `requested` instead of
    interrupting (SIGTERM and SIGHUP also `terminated`: the process was asked to end); after SIGHUP
    what was written to the terminal goes nowhere (leave_terminal).

    The previous handlers come back on exit. Outside the main thread signals cannot be caught;
    there the context changes nothing (requested stays False).
    """

    def __init__(self) -> None:
        self.requested = self.terminated = False
        self._previous: dict = {}

    def _request(self, signum, frame) -> None:
        self.requested = True
        self.terminated = self.terminated or signum in (signal.SIGTERM, SIGHUP)
        if signum == SIGHUP:
            leave_terminal()

    def __enter__(self) -> StopRequests:
        self.requested = self.terminated = False
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in heeded()}
        return self

    def __exit__(self, *exc) -> None:
        restore(self._previous)
        self._previous = {}


def restore(previous: dict) -> None:
    """Put back the signal handlers `previous` maps, but not a hang-up's after one (leave_terminal)."""
    for sig, handler in previous.items():
        if sig != SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)
