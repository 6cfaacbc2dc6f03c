"""Keys typed while sound plays, and what they change: temperature, top-k and smoothing, the
volume, pause, start again, quit.

apply_key is the whole meaning of the keys, as a pure function; KeyReader reads them from a
terminal one by one (cbreak mode, restored however the block is left), or line by line when
standard input is not a terminal.
"""

from __future__ import annotations

import os
import queue
import re
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import TextIO

try:
    import termios
    import tty
except ImportError:  # pragma: no cover - not on POSIX: keys come line by line
    termios = tty = None

from .drawing import SMOOTH
from .mulaw import LEVELS

TEMPERATURE_STEP = 0.05
SMOOTH_STEP = 0.1
VOLUME_STEP_DB = 3.0
MIN_VOLUME_DB = -60.0  # the volume's range, in dB of the model's sound: MIN_VOLUME_DB..0
KEYS_HELP = ("keys: up/+ and down/- temperature (higher: more varied); ]/right and [/left top-k (more, fewer "
             "levels); . and , smoothing (less hiss, more of the drawn levels); 0 and 9 volume up, down; m mute; "
             "space pause; r start again; h these keys; q quit")
ESCAPES = {"[A": "up", "[B": "down", "[C": "right", "[D": "left", "OA": "up", "OB": "down", "OC": "right", "OD": "left"}
ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[@-~]|O.)?")  # an escape sequence a terminal sends for a key


@dataclass(frozen=True)
class Controls:
    """What the keys change: temperature (>= 0), top_k (0: all levels) and smooth (0..1, as
    Model.sample's); how it is heard: volume_db (MIN_VOLUME_DB..0 dB), muted and paused."""

    temperature: float = 1.0
    top_k: int = 0
    smooth: float = SMOOTH
    volume_db: float = 0.0
    muted: bool = False
    paused: bool = False

    @property
    def gain(self) -> float:
        """The factor the sound is played at: the volume, 0 when muted."""
        return 0.0 if self.muted else 10.0 ** (self.volume_db / 20.0)

    def __str__(self) -> str:
        top_k = f"top-k {self.top_k}" if 0 < self.top_k < LEVELS else "top-k off"
        heard = "".join((f", volume {self.volume_db:g} dB" if self.volume_db else "", ", muted" if self.muted else "",
                         ", paused" if self.paused else ""))
        return f"temperature {self.temperature:.2f}, {top_k}, smooth {self.smooth:.2f}{heard}"


def apply_key(key: str, controls: Controls) -> tuple[Controls, str | None]:
    """What one key does: (the controls after it, the action it asks for: "reset", "help", "quit" or
    None).

    up, + or =: temperature up by TEMPERATURE_STEP; down or -: down (not below 0). ] or right:
    twice the top-k levels (from 128 up: all, top-k off); [ or left: half as many (at least 1;
    from off: 128). . (or >): smooth up by SMOOTH_STEP (at most 1); , (or <): down (not below 0).
    0 (or *): volume up by VOLUME_STEP_DB (at most 0 dB), 9 (or /): down (not below MIN_VOLUME_DB);
    either unmutes. m: mute or unmute. Space or p: pause or go on. r: start again; h (or ?): show
    the keys; q (or Q): quit. Other keys change nothing.
    """
    if key in ("up", "+", "="):
        return replace(controls, temperature=round(controls.temperature + TEMPERATURE_STEP, 2)), None
    if key in ("down", "-"):
        return replace(controls, temperature=max(0.0, round(controls.temperature - TEMPERATURE_STEP, 2))), None
    top_k = controls.top_k if 0 < controls.top_k < LEVELS else 0
    if key in ("]", "right"):
        return replace(controls, top_k=0 if not top_k or 2 * top_k >= LEVELS else 2 * top_k), None
    if key in ("[", "left"):
        return replace(controls, top_k=LEVELS // 2 if not top_k else max(1, top_k // 2)), None
    if key in (".", ">"):
        return replace(controls, smooth=min(1.0, round(controls.smooth + SMOOTH_STEP, 2))), None
    if key in (",", "<"):
        return replace(controls, smooth=max(0.0, round(controls.smooth - SMOOTH_STEP, 2))), None
    if key in ("0", "*"):
        return replace(controls, volume_db=min(0.0, controls.volume_db + VOLUME_STEP_DB), muted=False), None
    if key in ("9", "/"):
        return replace(controls, volume_db=max(MIN_VOLUME_DB, controls.volume_db - VOLUME_STEP_DB), muted=False), None
    if key in ("m", "M"):
        return replace(controls, muted=not controls.muted), None
    if key in (" ", "p", "P"):
        return replace(controls, paused=not controls.paused), None
    if key in ("r", "R"):
        return controls, "reset"
    if key in ("h", "H", "?"):
        return controls, "help"
    if key in ("q", "Q"):
        return controls, "quit"
    return controls, None


def split_keys(text: str) -> list[str]:
    """Typed text -> keys: an arrow's escape sequence is "up", "down", "left" or "right", another
    escape sequence (or a lone Escape) is dropped, every other character is a key."""
    keys = []
    at = 0
    while at < len(text):
        escape = ESCAPE.match(text, at)
        if escape:
            sequence = escape.group(1)
            if sequence in ESCAPES:
                keys.append(ESCAPES[sequence])
            at = escape.end()
        else:
            keys.append(text[at])
            at += 1
    return keys


def in_background(fd: int) -> bool:
    """Whether this process is a background job of the terminal fd (not its foreground process
    group); False where that cannot be told (fd is not this process's controlling terminal)."""
    try:
        return os.tcgetpgrp(fd) != os.getpgrp()
    except OSError:
        return False


class KeyReader:
    """Keys typed on standard input: `with KeyReader() as keys: keys.read(timeout_s)`.

    On a terminal (POSIX), each key arrives as it is typed, without echo (cbreak mode: Ctrl+C
    still interrupts); the terminal's settings come back when the block is left, however it is
    left, and while the program is suspended (Ctrl+Z: the shell gets its terminal as it was;
    fg: cbreak again). Otherwise (a pipe, a file, no termios) a thread reads lines and each character is a
    key; the end of the input is not a key. `interactive` says which. A background job of its
    terminal (`play ... &`) reads no keys and leaves the terminal alone, which would stop it
    (SIGTTOU, SIGTTIN); `background` says so.
    """

    def __init__(self, stdin: TextIO | None = None):
        self.stdin = stdin if stdin is not None else sys.stdin
        self.interactive = False
        self.background = False
        self._fd: int | None = None
        self._saved = None
        self._lines: queue.Queue[list[str]] = queue.Queue()
        self._handlers: dict[int, object] = {}

    def __enter__(self) -> KeyReader:
        try:
            fd = self.stdin.fileno()
            terminal = termios is not None and os.isatty(fd)
        except (AttributeError, OSError, ValueError):
            terminal = False
        if terminal and in_background(fd):
            self.background = True
        elif terminal:
            self._fd, self._saved = fd, termios.tcgetattr(fd)
            tty.setcbreak(fd)
            self.interactive = True
            if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTSTP"):
                self._handlers = {
                    signal.SIGTSTP: signal.signal(signal.SIGTSTP, self._suspend),
                    signal.SIGCONT: signal.signal(signal.SIGCONT, self._resume),
                }
        else:
            threading.Thread(target=self._read_lines, name="blekota-keys", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._handlers.items():
            signal.signal(number, handler)
        self._handlers = {}
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def _suspend(self, number, frame) -> None:
        """Ctrl+Z: give the terminal back as it was, then stop as the default action would."""
        termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        os.kill(os.getpid(), signal.SIGSTOP)

    def _resume(self, number, frame) -> None:
        """Continued (fg): keys one by one again."""
        if self._saved is not None:
            tty.setcbreak(self._fd)

    def read(self, timeout_s: float) -> list[str]:
        """The keys typed since the last call, waiting up to timeout_s seconds for one."""
        if self.background:
            time.sleep(timeout_s)
            return []
        if self.interactive:
            ready, _, _ = select.select([self._fd], [], [], timeout_s)
            typed = os.read(self._fd, 64) if ready else b""
            if ready and not typed:  # the terminal hung up: nothing more will come
                time.sleep(timeout_s)
            return split_keys(typed.decode(errors="ignore"))
        try:
            keys = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return []
        while not self._lines.empty():
            keys += self._lines.get_nowait()
        return keys

    def _read_lines(self) -> None:
        if self.stdin is None:  # no standard input at all (<&-): no keys
            return
        try:
            for line in self.stdin:
                self._lines.put(split_keys(line.rstrip("\r\n")))
        except (OSError, ValueError):  # closed, or not readable here (as under pytest)
            return
