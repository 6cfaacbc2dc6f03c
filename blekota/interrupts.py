"""Interruptions: while a run trains, Ctrl+C (SIGINT) and SIGTERM ask it to stop after the current
update, instead of cutting an update or a file in half."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """A context in which SIGINT and SIGTERM set `requested` instead of interrupting.

    The previous handlers come back on exit. Outside the main thread signals cannot be caught;
    there the context changes nothing (requested stays False).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def _request(self, signum, frame) -> None:
        self.requested = True

    def __enter__(self) -> StopRequests:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
