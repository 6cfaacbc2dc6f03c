"""Live play: a Stream generated ahead of the sound device and played through it in real time.

A worker thread keeps a few blocks ready in a queue; the device's callback only copies the next
one out, so it never computes. Gaps are counted: the device saying its buffer ran dry, and blocks
that were not ready when the device asked for them (played as silence). A device that does not
take the model's rate gets the sound resampled to its own (blekota.resampling), and what is
played can be recorded as it is made (audio.WavRecorder, encoding.EncodedRecorder).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .devices import PlaybackError, device_rate, open_device, sounddevice_module
from .resampling import StreamResampler
from .stream import Stream

if TYPE_CHECKING:
    import sounddevice

MIN_BLOCK, MAX_BLOCK = 64, 512  # samples per block the device asks for
MAX_AHEAD = 64  # blocks kept ready
WAIT_S = 0.05  # how long the worker waits for room in the queue before looking at the stop flag


def block_size(value: object, name: str = "block") -> int:
    """value as an int, when it is a block size in MIN_BLOCK..MAX_BLOCK samples."""
    return checks.integer(name, value, MIN_BLOCK, MAX_BLOCK)


def blocks_ahead(value: object, name: str = "ahead") -> int:
    """value as an int, when it is a number of blocks to keep ready: 1..MAX_AHEAD."""
    return checks.integer(name, value, 1, MAX_AHEAD)


def output_stream_class() -> type[sounddevice.OutputStream]:
    """sounddevice.OutputStream, or PlaybackError saying why sound cannot be played here. Tests
    replace this with a class that calls the callback as sounddevice does, without a device."""
    return sounddevice_module().OutputStream


@dataclass
class Underruns:
    """Gaps in the sound: `device`, callbacks whose status said the device's buffer had run dry
    (output underflow); `late`, callbacks for which the next block was not ready (the generator
    fell behind real time; silence was played instead)."""

    device: int = 0
    late: int = 0

    @property
    def total(self) -> int:
        return self.device + self.late


class LivePlayer:
    """Plays a Stream through the sound device: `with LivePlayer(stream) as player: ...`.

    block: samples per block (MIN_BLOCK..MAX_BLOCK), the size the device is asked to take; ahead:
    blocks kept ready before the device needs them (a change of the stream's settings is heard
    after about ahead + 1 blocks plus the device's latency). limit: stop after this many samples
    of the stream played (None: until the block ends); `finished` is set then. latency: the device
    latency asked for ("low", "high" or seconds, as sounddevice takes it). output_stream: the class
    that opens the device, called like sounddevice.OutputStream (None: output_stream_class()).
    device: the output device (an index or a part of its name; None: the default). rate: the
    device's sample rate in Hz (None: the stream's where the device takes it, else the device's
    default rate); the sound is resampled to it. recorder: something with write(samples) that is
    given every block the stream makes, at the stream's rate (encoding.sound_recorder); recorded_samples
    says how many of them were played. gain: the factor the sound is played at (the volume; the
    recorder gets the stream's own sound); paused: while True the device gets silence, the stream
    waits where it is, and neither `played` nor the limit counts on. Both may change while it plays.
    Entering opens the device, starts the worker, waits until `ahead` blocks are ready and starts
    the device; PlaybackError when there is no device. Leaving stops the device, then the worker.
    check() raises an error the worker met; wait() waits for `finished`; summary() says how it went.
    """

    def __init__(self, stream: Stream, block: int = 256, ahead: int = 2, limit: int | None = None,
                 latency="low", output_stream=None, device: int | str | None = None, rate: int | None = None,
                 recorder=None):
        self.stream = stream
        self.block = block_size(block)
        self.ahead = blocks_ahead(ahead)
        self.limit = None if limit is None else checks.positive_int("limit", limit)
        self.latency = latency
        self.output_stream = output_stream
        self.device = device
        self.rate = None if rate is None else device_rate(rate)
        self.recorder = recorder
        self.gain = 1.0
        self.paused = False
        self.device_fs = stream.fs  # the rate the device runs at, once it is open
        self.underruns = Underruns()
        self.played = 0  # samples at device_fs handed to the device (silence of gaps included)
        self.taken = 0  # of them, samples of the stream (not gaps)
        self.generated = 0  # samples the worker made, at the stream's rate
        self.compute_s = 0.0  # seconds the worker spent making them
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._ready: queue.Queue[np.ndarray] = queue.Queue(self.ahead)
        self._left = np.empty(0, np.float32)  # what is left of the block being played
        self._stopping = threading.Event()
        self._filled = threading.Event()
        self._worker: threading.Thread | None = None
        self._device = None
        self._started = False
        self._device_latency_s = 0.0
        self._device_limit: int | None = None
        self._resampler: StreamResampler | None = None

    @property
    def block_latency_s(self) -> float:
        """Seconds of sound in one block."""
        return self.block / self.stream.fs

    @property
    def device_latency_s(self) -> float:
        """The output latency the device reported when it opened, in seconds (0 before)."""
        return self._device_latency_s

    @property
    def change_latency_s(self) -> float:
        """About how long until a change of settings is heard: the blocks ahead, the one being
        made, and the device's latency."""
        return (self.ahead + 1) * self.block_latency_s + self.device_latency_s

    @property
    def played_s(self) -> float:
        """Seconds of sound handed to the device (gaps included)."""
        return self.played / self.device_fs

    @property
    def resampled(self) -> bool:
        """Whether the device runs at another rate than the stream."""
        return self.device_fs != self.stream.fs

    @property
    def recorded_samples(self) -> int:
        """How many of the samples the worker made (and gave the recorder) were played."""
        return min(self.generated, round(self.taken * self.stream.fs / self.device_fs))

    @property
    def samples_per_s(self) -> float | None:
        """How fast the worker makes sound (samples per second of its compute time), None before
        it made any."""
        return self.generated / self.compute_s if self.generated and self.compute_s > 0 else None

    def __enter__(self) -> LivePlayer:
        try:
            self._open(self.output_stream or output_stream_class())
            self._worker = threading.Thread(target=self._fill, name="blekota-live", daemon=True)
            self._worker.start()
            while not self._filled.wait(WAIT_S):
                self.check()
            self.check()
            self._started = True  # before start(): a Ctrl+C landing as start() returns still stops the device
            try:
                self._device.start()
            except Exception as error:  # sounddevice.PortAudioError
                self._started = False
                raise PlaybackError(f"cannot play sound: the device did not start ({str(error).splitlines()[0]})") from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def _open(self, open_stream) -> None:
        """Open the device (devices.open_device) and set up resampling when it runs at another rate
        than the stream."""
        fs = self.stream.fs
        self._device, self.device_fs = open_device(open_stream, fs, self.device, self.rate, self.block,
                                                   latency=self.latency, callback=self._callback)
        self._resampler = StreamResampler(fs, self.device_fs) if self.device_fs != fs else None
        self._device_limit = None if self.limit is None else max(1, round(self.limit * self.device_fs / fs))
        latency = getattr(self._device, "latency", 0.0)
        self._device_latency_s = float(latency) if isinstance(latency, (int, float)) else 0.0

    def __exit__(self, *exc) -> None:
        if self._device is not None:
            try:
                if self._started:
                    self._device.stop()
            finally:
                self._device.close()
                self._device = None
        self._stopping.set()
        if self._worker is not None:
            self._worker.join()

    def check(self) -> None:
        """Raise the error that stopped the worker, if one did."""
        if self.error is not None:
            raise self.error

    def wait(self) -> None:
        """Return when `finished` (without a limit: never; Ctrl+C raises KeyboardInterrupt here),
        raising an error that stopped the worker meanwhile."""
        while not self.finished.wait(WAIT_S):
            self.check()
        self.check()

    def summary(self) -> str:
        """One line: how long it played, how fast the model made sound, and the gaps."""
        fs = self.stream.fs
        rate = self.samples_per_s or 0.0
        gaps = self.underruns
        slow = ": too slow, expect gaps" if rate < fs else ""
        return (f"played {self.played_s:.1f} s; the model made {rate:,.0f} samples/s ({rate / fs:.1f}x real "
                f"time{slow}); underruns: {gaps.total} ({gaps.device} reported by the device, {gaps.late} blocks "
                "not ready in time)")

    def _fill(self) -> None:
        """The worker: make blocks and queue them until told to stop."""
        try:
            while not self._stopping.is_set():
                start = time.perf_counter()
                made = self.stream.process(self.block)
                block = made if self._resampler is None else self._resampler.process(made)
                self.compute_s += time.perf_counter() - start
                self.generated += made.size
                if self.recorder is not None:
                    self.recorder.write(made)
                while not self._stopping.is_set():
                    try:
                        self._ready.put(block, timeout=WAIT_S)
                        break
                    except queue.Full:
                        self._filled.set()
                if self._ready.full():
                    self._filled.set()
        except BaseException as error:  # handed to the main thread by check()
            self.error = error
            self._filled.set()

    def _callback(self, outdata: np.ndarray, frames: int, when, status) -> None:
        """Called by the device for the next `frames` samples: outdata (frames, 1) float32."""
        if getattr(status, "output_underflow", False):
            self.underruns.device += 1
        out = outdata[:, 0]
        if self.paused:
            out[:] = 0.0
            return
        gain = self.gain
        limit = self._device_limit
        wanted = frames if limit is None else max(0, min(frames, limit - self.played))
        filled = 0
        while filled < wanted:
            if not self._left.size:
                try:
                    self._left = self._ready.get_nowait()
                except queue.Empty:
                    self.underruns.late += 1
                    break
            take = min(wanted - filled, self._left.size)
            np.multiply(self._left[:take], gain, out=out[filled : filled + take])
            self._left = self._left[take:]
            filled += take
        out[filled:] = 0.0
        self.played += wanted
        self.taken += filled
        if limit is not None and self.played >= limit:
            self.finished.set()

