"""Live play without a sound device: a fake output stream calls the callback as sounddevice does."""

import _thread
import io
import os
import re
import signal
import sys
import threading
import time

import numpy as np
import pytest
import soundfile

import blekota
from blekota import keys as keys_module
from blekota import devices, live
from blekota.cli import main
from blekota.errors import ConfigError
from blekota.keys import KEYS_HELP, Controls, KeyReader, apply_key, split_keys
from blekota.repl import Console, Session, session_namespace
from blekota.resampling import StreamResampler


class Flags:
    """The status sounddevice passes to a callback (only what the player reads)."""

    def __init__(self, output_underflow: bool):
        self.output_underflow = output_underflow


class FakeDevice:
    """Stands for sounddevice.OutputStream: from start() to stop() a thread asks the callback for
    one block every `pace` times a block's duration (0: as fast as it can), and keeps what it got."""

    pace = 0.25
    underflow_every = 0  # the status reports an output underflow on every Nth call (0: never)
    rates = None  # the sample rates it opens at (None: any)
    opened: list = []

    def __init__(self, samplerate, blocksize, channels, dtype, latency, callback, device=None):
        assert channels == 1 and dtype == "float32" and latency == "low"
        if self.rates is not None and samplerate not in self.rates:
            raise RuntimeError(f"Error opening OutputStream: Invalid sample rate {samplerate} [PaErrorCode -9997]")
        self.samplerate, self.blocksize, self.callback, self.device = samplerate, blocksize, callback, device
        self.latency = 0.0125
        self.blocks, self.calls = [], 0
        self.started = self.stopped = self.closed = False
        self._stop = threading.Event()
        type(self).opened.append(self)

    def start(self):
        self.started = True
        self._thread = threading.Thread(target=self._run, daemon=True)  # one left running never holds up the exit
        self._thread.start()

    def _run(self):
        due = time.perf_counter()
        while not self._stop.is_set():
            self.calls += 1
            outdata = np.full((self.blocksize, 1), np.nan, np.float32)
            underflow = bool(self.underflow_every) and self.calls % self.underflow_every == 0
            self.callback(outdata, self.blocksize, None, Flags(underflow))
            self.blocks.append(outdata[:, 0].copy())
            due += self.pace * self.blocksize / self.samplerate
            time.sleep(max(0.0, due - time.perf_counter()))

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.stopped = True

    def close(self):
        self.closed = True

    @property
    def sound(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.empty(0, np.float32)


@pytest.fixture
def device(monkeypatch):
    """FakeDevice as the player's sound device; each test gets its own class attributes."""
    fake = type("Device", (FakeDevice,), {"opened": []})
    monkeypatch.setattr(live, "output_stream_class", lambda: fake)
    return fake


KNOWN_DEVICES = [  # what the tests' PortAudio knows: the default output runs at 48 kHz
    {"name": "Built-in Output", "hostapi": 0, "max_output_channels": 2, "default_samplerate": 48000.0},
    {"name": "Microphone", "hostapi": 0, "max_output_channels": 0, "default_samplerate": 44100.0},
    {"name": "USB Audio Interface", "hostapi": 1, "max_output_channels": 8, "default_samplerate": 44100.0},
]


class FakeSounddevice:
    """Stands for the sounddevice module's device queries."""

    class default:
        device = [1, 0]

    @staticmethod
    def query_hostapis():
        return [{"name": "Core Audio"}, {"name": "ASIO"}]

    @staticmethod
    def query_devices(device=None, kind=None):
        if kind is None:
            return [dict(known) for known in KNOWN_DEVICES]
        if device is None:
            device = FakeSounddevice.default.device[1]
        outputs = [index for index, known in enumerate(KNOWN_DEVICES) if known["max_output_channels"]]
        if isinstance(device, str):
            found = [index for index in outputs if device.lower() in KNOWN_DEVICES[index]["name"].lower()]
            if not found:
                raise ValueError(f"No output device matching {device!r}")
            device = found[0]
        if device not in outputs:
            raise ValueError(f"Error querying device {device}")
        return dict(KNOWN_DEVICES[device], index=device)


@pytest.fixture(autouse=True)
def known_devices(monkeypatch):
    """The device queries answer from KNOWN_DEVICES, never from this machine's PortAudio."""
    monkeypatch.setattr(devices, "sounddevice_module", lambda: FakeSounddevice)


@pytest.fixture(scope="module")
def model():
    return blekota.Model(hidden=16, layers=1, seed=2, threads=1)


def check_played(sound: np.ndarray, played: int, block: int, late: int, expected: np.ndarray) -> None:
    """What the device got: the model's sound in order, silence for each late block, then silence.
    (A mu-law level is never exactly 0.0, so silence is told apart from sound.)"""
    assert not np.isnan(sound).any()
    heard = sound[:played]
    assert np.count_nonzero(heard == 0) == late * block
    assert not sound[played:].any()
    made = heard[heard != 0]
    assert np.array_equal(made, expected[: made.size])


def test_plays_the_streams_sound_until_the_limit(model, device):
    stream = model.stream(seed=5, top_k=40)
    with live.LivePlayer(stream, block=128, ahead=3, limit=20 * 128) as player:
        assert player.finished.wait(30)
        assert player.device_latency_s == 0.0125 and player.block_latency_s == 128 / 8000
        assert player.change_latency_s == pytest.approx(4 * 128 / 8000 + 0.0125)
    fake = device.opened[0]
    assert fake.stopped and fake.closed and not player._worker.is_alive()
    assert player.played == 20 * 128 and player.samples_per_s > 0
    check_played(fake.sound, player.played, 128, player.underruns.late, model.sample(40 * 128, seed=5, top_k=40))


def test_blocks_not_ready_in_time_are_counted_and_played_as_silence(model, device):
    device.pace = 0  # the device asks far faster than real time: the generator falls behind
    stream = model.stream(seed=1)
    with live.LivePlayer(stream, block=64, ahead=1, limit=300 * 64) as player:
        assert player.finished.wait(60)
    assert player.underruns.late > 0 and player.underruns.device == 0
    check_played(device.opened[0].sound, player.played, 64, player.underruns.late, model.sample(300 * 64, seed=1))


def test_the_volume_scales_what_is_played_and_a_pause_plays_silence_without_counting(model, device):
    device.pace = 0.5
    stream = model.stream(seed=4)
    with live.LivePlayer(stream, block=64, ahead=2, limit=200 * 64) as player:
        player.gain = 0.5
        time.sleep(0.1)
        player.paused = True
        time.sleep(0.2)  # about 50 blocks' time at this pace
        paused_at = player.played
        time.sleep(0.1)
        assert player.played == paused_at < 200 * 64 and not player.finished.is_set()
        player.paused = False
        assert player.finished.wait(30)
    sound = device.opened[0].sound
    assert np.count_nonzero(sound == 0) >= 10 * 64 + player.underruns.late * 64  # the pause, and the gaps
    made = sound[sound != 0]
    assert made.size == player.taken
    expected = model.sample(made.size + 4 * 64, seed=4)  # before the volume changed, the sound as it is
    loud = np.flatnonzero(~np.isclose(made, expected[: made.size]))
    np.testing.assert_array_equal(made[loud], (0.5 * expected[loud]).astype(np.float32))
    assert loud.size > 0 and np.array_equal(loud, np.arange(loud[0], made.size))  # from the change on


def test_the_devices_underflows_are_counted(model, device):
    device.underflow_every = 3
    with live.LivePlayer(model.stream(seed=0), block=64, limit=12 * 64) as player:
        assert player.finished.wait(30)
    assert player.underruns.device == device.opened[0].calls // 3 >= 4
    assert player.underruns.total == player.underruns.device + player.underruns.late


def test_no_device_is_a_playback_error_and_stops_the_worker(model, monkeypatch):
    def no_device(**options):
        raise RuntimeError("Error querying device -1\nmore lines")

    monkeypatch.setattr(devices, "default_rate", lambda device: None)  # nothing to fall back to
    player = live.LivePlayer(model.stream(), output_stream=no_device)
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: no sound output device \(Error querying device -1\)$"):
        player.__enter__()
    assert player._worker is None
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: no sound output device \(Error querying device -1\)$"):
        live.LivePlayer(model.stream(), output_stream=no_device, rate=44100).__enter__()  # not "does not take 44100 Hz"
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without sounddevice
    monkeypatch.setattr(devices, "sounddevice_module", blekota.audio.sounddevice_module)
    with pytest.raises(blekota.PlaybackError, match="sounddevice is not installed"):
        live.LivePlayer(model.stream()).__enter__()


def test_an_error_of_the_generator_reaches_the_caller(device):
    class Broken:
        fs = 8000

        def process(self, n):
            raise ConfigError("broken stream")

    player = live.LivePlayer(Broken())
    with pytest.raises(ConfigError, match="broken stream"):
        player.__enter__()
    fake = device.opened[0]
    assert not fake.started and fake.closed and not player._worker.is_alive()


def test_ctrl_c_as_the_device_starts_stops_it(model, device):
    class Interrupted(device):
        """Ctrl+C lands in the main thread just as start() returns, the device already playing."""

        def start(self):
            super().start()
            raise KeyboardInterrupt

    player = live.LivePlayer(model.stream(), output_stream=Interrupted)
    with pytest.raises(KeyboardInterrupt):
        player.__enter__()
    fake = device.opened[0]
    assert fake.stopped and fake.closed and not player._worker.is_alive()


def test_a_device_that_does_not_start_is_a_playback_error(model, device):
    class Refusing(device):
        def start(self):
            raise RuntimeError("Error starting stream: Device unavailable\nmore lines")

    player = live.LivePlayer(model.stream(), output_stream=Refusing)
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: the device did not start \(Error starting stream: "
                                                    r"Device unavailable\)$"):
        player.__enter__()
    fake = device.opened[0]
    assert not fake.stopped and fake.closed and not player._worker.is_alive()


def test_a_device_that_does_not_take_the_models_rate_gets_it_resampled(model, device):
    device.rates = {48000}  # the default device's own rate (KNOWN_DEVICES)
    recording = []
    player = live.LivePlayer(model.stream(seed=3), block=128, limit=20 * 128, recorder=type("R", (), {"write": lambda self, block: recording.append(block)})())
    with player:
        assert player.finished.wait(30)
    fake = device.opened[0]
    assert fake.samplerate == 48000 and fake.blocksize == 6 * 128 and player.device_fs == 48000 and player.resampled
    assert player.played == 6 * 20 * 128 and player.played_s == pytest.approx(20 * 128 / 8000)
    assert player.change_latency_s == pytest.approx(3 * 128 / 8000 + 0.0125)
    late = player.underruns.late
    assert player.taken == player.played - late * 6 * 128 and player.recorded_samples == player.taken // 6
    made = model.sample(40 * 128, seed=3)
    np.testing.assert_array_equal(np.concatenate(recording), made[: sum(block.size for block in recording)])
    heard = fake.sound[: player.played]
    heard = heard[heard != 0]  # the silence of late blocks out
    expected = StreamResampler(8000, 48000).process(made)
    np.testing.assert_allclose(heard, expected[: heard.size], rtol=0, atol=1e-6)


def test_a_rate_or_device_asked_for_is_what_opens(model, device):
    with live.LivePlayer(model.stream(seed=0), block=256, limit=256, device="usb", rate=44100) as player:
        assert player.finished.wait(30)
    fake = device.opened[0]
    assert (fake.samplerate, fake.blocksize, fake.device) == (44100, 1411, "usb") and player.device_fs == 44100
    device.rates = {48000}
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: the device does not take 44100 Hz \(Error opening"):
        live.LivePlayer(model.stream(), rate=44100).__enter__()
    device.rates = {96000}
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: the device takes neither 8000 Hz nor 48000 Hz"):
        live.LivePlayer(model.stream()).__enter__()
    with pytest.raises(ConfigError, match=r"rate must be a sample rate in 1000\.\.384000 Hz, got 500"):
        live.LivePlayer(model.stream(), rate=500)


def test_devices_are_found_by_number_or_name(monkeypatch):
    assert devices.device_info()["name"] == "Built-in Output"
    assert devices.device_info("usb")["index"] == 2 and devices.device_info(2)["name"] == "USB Audio Interface"
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: no output device matching 'hdmi' \(python -m blekota sound-devices lists them\)$"):
        devices.device_info("hdmi")
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: error querying device 1 "):
        devices.device_info(1)  # an input
    assert devices.default_rate("usb") == 44100 and devices.default_rate("hdmi") is None
    assert [(d["index"], d["host"], d["default"]) for d in devices.output_devices()] == [(0, "Core Audio", True), (2, "ASIO", False)]


def test_block_and_ahead_are_checked(model):
    with pytest.raises(ConfigError, match=r"block must be an integer in 64\.\.512, got 32"):
        live.LivePlayer(model.stream(), block=32)
    with pytest.raises(ConfigError, match=r"ahead must be an integer in 1\.\.64, got 0"):
        live.LivePlayer(model.stream(), ahead=0)


@pytest.mark.parametrize("key,before,after,action", [
    ("+", Controls(1.0, 0), Controls(1.05, 0), None),
    ("up", Controls(0.9, 16), Controls(0.95, 16), None),
    ("=", Controls(0.0, 0), Controls(0.05, 0), None),
    ("-", Controls(0.85, 0), Controls(0.8, 0), None),
    ("down", Controls(0.03, 4), Controls(0.0, 4), None),
    ("down", Controls(0.0, 4), Controls(0.0, 4), None),
    ("[", Controls(1.0, 0), Controls(1.0, 128), None),
    ("left", Controls(1.0, 12), Controls(1.0, 6), None),
    ("[", Controls(1.0, 1), Controls(1.0, 1), None),
    ("]", Controls(1.0, 12), Controls(1.0, 24), None),
    ("right", Controls(1.0, 128), Controls(1.0, 0), None),
    ("]", Controls(1.0, 0), Controls(1.0, 0), None),
    ("]", Controls(1.0, 256), Controls(1.0, 0), None),
    ("r", Controls(0.7, 8), Controls(0.7, 8), "reset"),
    ("q", Controls(0.7, 8), Controls(0.7, 8), "quit"),
    ("Q", Controls(0.7, 8), Controls(0.7, 8), "quit"),
    ("x", Controls(0.7, 8), Controls(0.7, 8), None),
    (".", Controls(1.0, 0, 0.3), Controls(1.0, 0, 0.4), None),
    (">", Controls(1.0, 0, 0.95), Controls(1.0, 0, 1.0), None),
    (",", Controls(1.0, 0, 0.3), Controls(1.0, 0, 0.2), None),
    ("<", Controls(1.0, 0, 0.05), Controls(1.0, 0, 0.0), None),
    ("9", Controls(), Controls(volume_db=-3.0), None),
    ("/", Controls(volume_db=-58.5), Controls(volume_db=-60.0), None),
    ("0", Controls(volume_db=-1.5), Controls(volume_db=0.0), None),
    ("*", Controls(volume_db=-6.0, muted=True), Controls(volume_db=-3.0), None),
    ("m", Controls(volume_db=-6.0), Controls(volume_db=-6.0, muted=True), None),
    ("M", Controls(muted=True), Controls(), None),
    (" ", Controls(0.7, 8), Controls(0.7, 8, paused=True), None),
    ("p", Controls(paused=True), Controls(), None),
    ("h", Controls(0.7, 8), Controls(0.7, 8), "help"),
    ("?", Controls(0.7, 8), Controls(0.7, 8), "help"),
])
def test_keys(key, before, after, action):
    assert apply_key(key, before) == (after, action)


def test_many_presses_land_on_round_temperatures():
    controls = Controls(1.0, 0)
    for _ in range(7):
        controls, _ = apply_key("-", controls)
    assert controls.temperature == 0.65 and str(controls) == "temperature 0.65, top-k off, smooth 0.30"
    assert str(Controls(1.2, 16, 0.0)) == "temperature 1.20, top-k 16, smooth 0.00"
    for _ in range(3):
        controls, _ = apply_key(",", controls)
    assert controls.smooth == 0.0
    assert str(Controls(1.0, 0, 0.3, -6.0, True, True)) == "temperature 1.00, top-k off, smooth 0.30, volume -6 dB, muted, paused"
    assert Controls(volume_db=-20.0).gain == pytest.approx(0.1) and Controls(muted=True).gain == 0.0


def test_typed_text_splits_into_keys():
    assert split_keys("+\x1b[A\x1b[B\x1bOC\x1b[D]q") == ["+", "up", "down", "right", "left", "]", "q"]
    assert split_keys("\x1b[1;5A\x1b[15~\x1br") == ["r"]  # other sequences and a lone Escape are dropped


def test_a_terminal_gets_its_settings_back_however_the_block_is_left():
    termios = pytest.importorskip("termios")
    controller, terminal = os.openpty()
    try:
        with os.fdopen(os.dup(terminal), "r") as stdin:
            before = termios.tcgetattr(terminal)
            with KeyReader(stdin) as keys:
                assert keys.interactive
                assert not termios.tcgetattr(terminal)[3] & (termios.ICANON | termios.ECHO)
                os.write(controller, b"+\x1b[B]")
                assert keys.read(2.0) == ["+", "down", "]"]
                assert keys.read(0.01) == []
            assert termios.tcgetattr(terminal) == before
            with pytest.raises(KeyboardInterrupt):
                with KeyReader(stdin):
                    raise KeyboardInterrupt
            assert termios.tcgetattr(terminal) == before
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_background_job_leaves_its_terminal_alone(monkeypatch):
    """play ... &: setting the terminal (or reading it) from a background job stops the process
    (SIGTTOU, SIGTTIN), so it reads no keys and changes nothing."""
    termios = pytest.importorskip("termios")
    monkeypatch.setattr(os, "tcgetpgrp", lambda fd: os.getpgrp() + 1)  # another group has the terminal
    controller, terminal = os.openpty()
    try:
        with os.fdopen(os.dup(terminal), "r") as stdin:
            before = termios.tcgetattr(terminal)
            with KeyReader(stdin) as keys:
                assert termios.tcgetattr(terminal) == before
                assert keys.background and not keys.interactive
                os.write(controller, b"q")
                assert keys.read(0.05) == []
            assert termios.tcgetattr(terminal) == before
    finally:
        os.close(controller)
        os.close(terminal)


def test_without_a_terminal_keys_come_line_by_line():
    with KeyReader(io.StringIO("+]\n\nq\n")) as keys:
        assert not keys.interactive
        typed = []
        deadline = time.monotonic() + 10
        while len(typed) < 3 and time.monotonic() < deadline:
            typed += keys.read(0.1)
    assert typed == ["+", "]", "q"]


def test_a_closed_standard_input_gives_no_keys_and_no_traceback(monkeypatch):
    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    monkeypatch.setattr(sys, "stdin", None)  # as python gets it with <&-
    with KeyReader() as keys:
        assert not keys.interactive and keys.read(0.01) == []
        for thread in threading.enumerate():
            if thread.name == "blekota-keys":
                thread.join(10)
    assert errors == []


@pytest.fixture
def model_file(tmp_path, model):
    return str(model.save(tmp_path / "voice.npz"))


def test_play_command_plays_and_reports(model, model_file, device, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["play", model_file, "--seconds", "0.5", "--seed", "3", "--block", "128", "--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"playing {model_file} with --seed 3 at 8000 Hz: blocks of 128 samples (16.0 ms), 2 ready ahead, device "
                      "latency 12.5 ms; a key is heard after about 60 ms")
    assert out[1].startswith("keys: up/+ and down/- temperature") and out[1].endswith("(standard input is not a terminal: type them and Enter)")
    assert out[2] == "temperature 1.00, top-k off, smooth 0.30"
    assert out[-1].startswith("played 0.5 s; the model made ") and "underruns: " in out[-1]
    fake = device.opened[0]
    late = int(out[-1].split(", ")[-1].split(" blocks")[0])
    check_played(fake.sound, 4000, 128, late, model.sample(8000, seed=3))


@pytest.mark.parametrize("option", ["--bf16", "--int8"])
def test_play_samples_with_the_kernel_asked_for(model_file, device, monkeypatch, capsys, option):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["play", model_file, "--seconds", "0.5", "--seed", "3", "--block", "128", "--threads", "1", option]) == 0
    out = capsys.readouterr().out.splitlines()
    late = int(out[-1].split(", ")[-1].split(" blocks")[0])
    saved = blekota.load(model_file, threads=1)
    assert not saved.bf16_sampling and not saved.int8  # the model file is not changed
    setattr(saved, "bf16_sampling" if option == "--bf16" else "int8", True)
    check_played(device.opened[0].sound, 4000, 128, late, saved.sample(8000, seed=3))


def test_keys_change_the_sound_while_it_plays(model_file, device, monkeypatch, capsys):
    device.pace = 1.0  # real time: the keys are read while it plays
    monkeypatch.setattr(sys, "stdin", io.StringIO("--\n[[\n..\nr\n"))
    assert main(["play", model_file, "--seconds", "0.4", "--top-k", "64", "--top-p", "0.9", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "temperature 1.00, top-k 64, smooth 0.30, top-p 0.9\n" in out
    assert "temperature 0.90, top-k 16, smooth 0.50, top-p 0.9\n" in out
    assert re.search(r"^from the start again with --seed \d+$", out, re.M)  # r: fresh draws, said


def test_keys_set_the_volume_mute_and_pause_while_it_plays(model_file, device, monkeypatch, capsys):
    device.pace = 1.0
    monkeypatch.setattr(sys, "stdin", io.StringIO("9\nm\n  \nh\n"))  # paused and on again
    assert main(["play", model_file, "--seconds", "0.4", "--volume", "-6", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for settings in ("volume -6 dB", "volume -9 dB, muted"):
        assert f"temperature 1.00, top-k off, smooth 0.30, {settings}\n" in out
    assert out.count(KEYS_HELP) == 2  # at the start, and for h


def test_the_volume_asked_for_is_heard_from_the_first_block(model, model_file, device, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["play", model_file, "--seconds", "0.5", "--seed", "3", "--block", "128", "--volume", "-20",
                 "--threads", "1"]) == 0
    sound = device.opened[0].sound
    made = sound[sound != 0]
    expected = model.sample(made.size, seed=3)
    np.testing.assert_array_equal(made, (expected * np.float32(10 ** (-20 / 20))).astype(np.float32))


def test_q_quits(model_file, device, monkeypatch, capsys):
    device.pace = 1.0
    monkeypatch.setattr(sys, "stdin", io.StringIO("q\n"))
    start = time.monotonic()
    assert main(["play", model_file, "--threads", "1"]) == 0
    assert time.monotonic() - start < 20
    assert "played " in capsys.readouterr().out
    assert device.opened[0].closed


def ctrl_c_on_read(monkeypatch, reads: int) -> None:
    """The terminal's keys: nothing for reads - 1 reads of the key reader, then Ctrl+C."""
    calls = []

    def read(self, timeout_s):
        calls.append(timeout_s)
        if len(calls) == reads:
            raise KeyboardInterrupt
        time.sleep(timeout_s)
        return []

    monkeypatch.setattr(keys_module.KeyReader, "read", read)


def test_ctrl_c_stops_cleanly(model_file, device, monkeypatch, capsys):
    ctrl_c_on_read(monkeypatch, 3)
    threads = threading.active_count()
    assert main(["play", model_file, "--threads", "1"]) == 130
    captured = capsys.readouterr()
    assert "played " in captured.out and captured.err == "blekota: interrupted\n"
    assert device.opened[0].stopped and device.opened[0].closed
    assert threading.active_count() <= threads + 1  # the worker is gone (a line reader may wait on stdin)


@pytest.mark.parametrize("name", ["take.wav", "take.flac"])
def test_play_records_what_it_plays(model, model_file, tmp_path, device, monkeypatch, capsys, name):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    take = tmp_path / name
    argv = ["play", model_file, "--seconds", "0.5", "--seed", "3", "--block", "128", "--threads", "1", "--record", str(take)]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    late = int(out[-2].split(", ")[-1].split(" blocks")[0])
    recorded, fs = soundfile.read(take, dtype="float32")
    assert fs == 8000 and recorded.size == 4000 - 128 * late
    assert out[-1] == f"recorded {recorded.size / 8000:.1f} s to {take}"
    np.testing.assert_allclose(recorded, model.sample(4000, seed=3)[: recorded.size], atol=1 / 32768)
    before = take.read_bytes()
    assert main(argv) == 2  # the take is kept
    assert capsys.readouterr().err == f"blekota: error: {take}: already exists (use --force to overwrite)\n"
    assert take.read_bytes() == before
    assert main([*argv, "--force", "--seed", "4"]) == 0
    assert take.read_bytes() != before


@pytest.mark.parametrize("name", ["take.wav", "take.flac"])
def test_ctrl_c_keeps_the_recording(model_file, tmp_path, device, monkeypatch, capsys, name):
    ctrl_c_on_read(monkeypatch, 4)
    take = tmp_path / name
    assert main(["play", model_file, "--threads", "1", "--record", str(take)]) == 130
    captured = capsys.readouterr()
    frames = soundfile.info(take).frames
    assert frames > 0 and f"recorded {frames / 8000:.1f} s to {take}\n" in captured.out
    assert captured.err == "blekota: interrupted\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([name, "voice.npz"])
    assert soundfile.info(take).format == ("FLAC" if name.endswith(".flac") else "WAV")


def test_no_sound_no_recording(model_file, tmp_path, monkeypatch, capsys):
    def no_device(**options):
        raise RuntimeError("Error querying device -1")

    monkeypatch.setattr(live, "output_stream_class", lambda: no_device)
    take = tmp_path / "take.wav"
    assert main(["play", model_file, "--record", str(take)]) == 2
    assert capsys.readouterr().err.startswith("blekota: error: cannot play sound: the device takes neither 8000 Hz nor 48000 Hz")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["voice.npz"]
    assert main(["play", model_file, "--record", "-"]) == 2
    assert capsys.readouterr().err == "blekota: error: -: --record writes a file, not a stream (a recording is complete only when play stops)\n"
    assert main(["play", model_file, "--record", model_file, "--force"]) == 2
    assert capsys.readouterr().err == f"blekota: error: {model_file}: is the MODEL this reads; give --record another file\n"


def test_play_on_a_device_by_name_at_its_rate(model_file, tmp_path, device, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    device.rates = {44100}
    take = tmp_path / "take.wav"
    assert main(["play", model_file, "--sound-device", "USB", "--seconds", "0.2", "--threads", "1", "--record", str(take)]) == 0
    out = capsys.readouterr().out.splitlines()
    said = re.fullmatch(rf"playing {re.escape(model_file)} with --seed (\d+) at 8000 Hz on USB Audio Interface \(resampled "
                        r"to the device's 44100 Hz\): blocks of 256 samples \(32.0 ms\).*", out[0])
    assert said  # no --seed given: the one drawn is said, and plays the recorded take again
    recorded = soundfile.read(take, dtype="float32")[0]
    again = blekota.load(model_file).sample(recorded.size, seed=int(said[1]))
    np.testing.assert_allclose(recorded, again, atol=1 / 32768)
    assert out[-2].startswith("played 0.2 s; ")
    fake = device.opened[-1]
    assert (fake.device, fake.samplerate) == ("USB", 44100)
    assert soundfile.info(take).samplerate == 8000 and 0 < soundfile.info(take).frames <= 1600
    assert main(["play", model_file, "--sound-device", "2", "--sound-rate", "44100", "--seconds", "0.1", "--threads", "1"]) == 0
    assert device.opened[-1].device == 2
    assert main(["play", model_file, "--sound-device", "hdmi"]) == 2
    assert capsys.readouterr().err == ("blekota: error: cannot play sound: no output device matching 'hdmi' "
                                       "(python -m blekota sound-devices lists them)\n")


def test_devices_lists_the_outputs(capsys, monkeypatch):
    assert main(["sound-devices"]) == 0
    assert capsys.readouterr().out == (
        "sound output devices (* the default; play --sound-device takes the number or a part of the name):\n"
        "*   0  Built-in Output (Core Audio), 2 channels, 48,000 Hz\n"
        "    2  USB Audio Interface (ASIO), 8 channels, 44,100 Hz\n")
    listed = devices.output_devices
    monkeypatch.setattr(devices, "output_devices", lambda: [])
    assert main(["sound-devices"]) == 0
    assert capsys.readouterr().out == "no sound output device here\n"
    monkeypatch.setattr(devices, "output_devices", listed)
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    monkeypatch.setattr(devices, "sounddevice_module", blekota.audio.sounddevice_module)
    assert main(["sound-devices"]) == 2
    assert capsys.readouterr().err.startswith("blekota: error: cannot play sound: sounddevice is not installed")


class SoundModule(FakeSounddevice):
    """sounddevice as audio.play and audio.SoundStream use it: play() and a stream written to,
    both taking only the rates in `rates`."""

    rates = {48000}
    played: list = []

    @classmethod
    def play(cls, sound, fs, blocking):
        if fs not in cls.rates:
            raise RuntimeError(f"Error opening OutputStream: Invalid sample rate {fs}")
        cls.played.append((sound, fs))

    class OutputStream:
        def __init__(self, samplerate, blocksize, channels, dtype, device=None):
            if samplerate not in SoundModule.rates:
                raise RuntimeError(f"Error opening OutputStream: Invalid sample rate {samplerate}")
            self.samplerate, self.device, self.written = samplerate, device, []
            SoundModule.played.append(self)

        def start(self):
            pass

        def write(self, data):
            self.written.append(data[:, 0].copy())

        def stop(self):
            pass

        def close(self):
            pass


@pytest.fixture
def sound_module(monkeypatch):
    monkeypatch.setattr(blekota.audio, "sounddevice_module", lambda: SoundModule)
    monkeypatch.setattr(SoundModule, "rates", {48000})
    monkeypatch.setattr(SoundModule, "played", [])
    return SoundModule


def test_play_and_sample_play_resample_for_a_device_that_needs_it(model_file, tmp_path, sound_module, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sound the device refuses goes to last_played.wav here
    tone = np.sin(2 * np.pi * 440 * np.arange(800) / 8000).astype(np.float32)
    blekota.play(tone, 8000)  # the default device runs at 48 kHz
    sound, fs = sound_module.played[-1]
    assert fs == 48000 and sound.size == 4800
    SoundModule.rates = {44100}
    with pytest.raises(blekota.PlaybackError, match=r"^cannot play sound: the device takes neither 8000 Hz nor 48000 Hz"):
        blekota.play(tone, 8000)
    assert (tmp_path / blekota.audio.LAST_PLAYED).exists()
    out = tmp_path / "out.wav"
    assert main(["sample", model_file, "-n", "800", "-o", str(out), "--play", "--sound-device", "usb", "--threads", "1"]) == 0
    stream = sound_module.played[-1]
    assert (stream.samplerate, stream.device) == (44100, "usb")
    assert np.concatenate(stream.written).size == 800 * 44100 // 8000
    capsys.readouterr()
    assert main(["sample", model_file, "-n", "8", "-o", str(out), "--force", "--play", "--sound-device", "hdmi"]) == 0
    assert capsys.readouterr().err == ("blekota: cannot play sound: no output device matching 'hdmi' "
                                       "(python -m blekota sound-devices lists them)\n")


@pytest.mark.parametrize("kernel,advice", [
    ([], "--bf16 or --int8 (faster on one core), --threads, a larger --ahead, or a smaller model"),
    (["--bf16"], "--int8, --threads, a larger --ahead, or a smaller model"),
    (["--int8"], "a larger --ahead, or a smaller model"),
])
def test_a_model_too_slow_for_real_time_is_told(tmp_path, device, monkeypatch, capsys, kernel, advice):
    slow = blekota.Model(hidden=8, layers=1, fs=1000, seed=0, threads=1).save(tmp_path / "slow.npz")
    process = blekota.Stream.process

    def half_real_time(self, n):
        time.sleep(2 * n / self.fs)
        return process(self, n)

    monkeypatch.setattr(blekota.Stream, "process", half_real_time)
    device.pace = 1.0
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["play", str(slow), "--block", "64", "--ahead", "1", "--seconds", "1.2", "--threads", "1", *kernel]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("this machine makes ") and line.endswith(
        f" samples/s with this model, below the 1,000 real time needs: expect gaps (try {advice})") for line in out)
    assert "x real time: too slow, expect gaps); underruns: " in out[-1]
    assert int(out[-1].split("underruns: ")[1].split(" ")[0]) > 0


@pytest.mark.parametrize("argv,message", [
    (["--block", "32"], "argument --block: expected an integer in 64..512, got '32'"),
    (["--block", "1024"], "argument --block: expected an integer in 64..512, got '1024'"),
    (["--ahead", "0"], "argument --ahead: expected an integer in 1..64, got '0'"),
    (["--seconds", "0"], "argument --seconds: expected a positive number, got '0'"),
    (["--sound-rate", "500"], "argument --sound-rate: expected a sample rate in 1000..384000 Hz, got '500'"),
    (["--volume", "3"], "argument --volume: expected a number of dB in -60..0, got '3'"),
])
def test_bad_options_exit_2(model_file, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["play", model_file, *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_errors_are_one_line(tmp_path, model_file, device, monkeypatch, capsys):
    text = tmp_path / "notes.wav"
    text.write_text("not a model")
    assert main(["play", str(text)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"blekota: error: {text}: ") and err.count("\n") == 1
    assert main(["play", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: no such file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    monkeypatch.setattr(live, "output_stream_class", lambda: blekota.audio.sounddevice_module().OutputStream)
    assert main(["play", model_file]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blekota: error: cannot play sound: sounddevice is not installed (pip install \"blekota[play]\"")
    assert err.count("\n") == 1


def test_ctrl_z_gives_the_terminal_back_and_fg_takes_it_again(monkeypatch):
    termios = pytest.importorskip("termios")
    if not hasattr(signal, "SIGTSTP"):
        pytest.skip("no job control signals here")
    stops = []
    monkeypatch.setattr(keys_module.os, "kill", lambda pid, number: stops.append(number))
    controller, terminal = os.openpty()
    try:
        with os.fdopen(os.dup(terminal), "r") as stdin:
            before = termios.tcgetattr(terminal)
            handlers = signal.getsignal(signal.SIGTSTP), signal.getsignal(signal.SIGCONT)
            with KeyReader(stdin):
                signal.getsignal(signal.SIGTSTP)(signal.SIGTSTP, None)
                assert stops == [signal.SIGSTOP]
                assert termios.tcgetattr(terminal) == before
                signal.getsignal(signal.SIGCONT)(signal.SIGCONT, None)
                assert not termios.tcgetattr(terminal)[3] & (termios.ICANON | termios.ECHO)
            assert (signal.getsignal(signal.SIGTSTP), signal.getsignal(signal.SIGCONT)) == handlers
            assert termios.tcgetattr(terminal) == before
    finally:
        os.close(controller)
        os.close(terminal)


def repl_live(model):
    """The REPL's live() for a session with this model."""
    return session_namespace(Session(model))["live"]


def test_the_repl_plays_the_models_stream_for_the_seconds_given(model, device, capsys):
    repl_live(model)(seconds=0.5, block=128, ahead=3, seed=4, top_k=40, top_p=0.9)
    out = capsys.readouterr().out
    assert out.startswith("played 0.5 s; the model made ") and out.count("\n") == 1
    assert out.endswith("; latency about 76 ms (3 blocks of 128 samples ready ahead, the one being made, the device's "
                        "12.5 ms)\n")
    fake = device.opened[0]
    assert fake.stopped and fake.closed
    late = int(out.split("reported by the device, ")[1].split(" ")[0])
    expected = model.stream(seed=4, top_k=40, top_p=0.9).process(8000)
    check_played(fake.sound, 4000, 128, late, expected)


def test_the_repls_live_play_records_on_the_device_named(model, device, tmp_path, capsys):
    take = tmp_path / "take.wav"
    take.write_bytes(b"an older take")  # replaced, as save_file replaces
    repl_live(model)(seconds=0.25, block=128, seed=4, record=take, device="usb")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("played 0.2 s; ") and len(out) == 2
    recorded, fs = soundfile.read(take, dtype="float32")
    assert out[1] == f"recorded {recorded.size / 8000:.1f} s to {take}" and 0 < recorded.size <= 2000
    np.testing.assert_allclose(recorded, model.sample(2000, seed=4)[: recorded.size], atol=1 / 32768)
    assert device.opened[0].device == "usb"


@pytest.fixture
def hears_ctrl_c():
    """SIGINT raises KeyboardInterrupt in the main thread, as at a terminal, even when the tests run
    in a background job: that starts with SIGINT ignored, and _thread.interrupt_main() then does
    nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_the_repls_live_play_and_cleans_up(model, device, monkeypatch, capsys, hears_ctrl_c):
    calls = []
    give_up = 2500  # blocks (20 s) of Ctrl+C unheard: the play is ended, and the test fails instead of waiting for ever

    class Interrupting(device):
        """Ctrl+C while the fifth block plays, and again every 250 blocks (2 s) while it still plays:
        an interrupt that lands while the main thread runs a finalizer (__del__, a weakref
        callback) is dropped there, and a user would press Ctrl+C again."""

        def __init__(self, *args, callback, **options):
            def interrupting(outdata, frames, when, status):
                callback(outdata, frames, when, status)
                calls.append(frames)
                if len(calls) == 5 or len(calls) % 250 == 0:
                    _thread.interrupt_main()
                if len(calls) == give_up:
                    callback.__self__.finished.set()  # the callback is the player's method

            super().__init__(*args, callback=interrupting, **options)

    monkeypatch.setattr(live, "output_stream_class", lambda: Interrupting)
    threads = threading.active_count()
    repl_live(model)(seed=1)  # no seconds: until Ctrl+C, which does not leave live()
    assert len(calls) < give_up, "no Ctrl+C reached live() in 20 s"
    out = capsys.readouterr().out
    assert out.startswith("played ") and "underruns: " in out and out.count("\n") == 1
    fake = Interrupting.opened[0]
    assert fake.stopped and fake.closed and len(calls) >= 5
    assert threading.active_count() == threads
    assert not any(thread.name == "blekota-live" for thread in threading.enumerate())


def test_the_repls_live_play_without_a_sound_device_is_one_line(model, monkeypatch, capsys):
    monkeypatch.setattr(live, "output_stream_class", lambda: blekota.audio.sounddevice_module().OutputStream)
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    threads = threading.active_count()
    console = Console(session_namespace(Session(model)))
    console.push("live(1)")
    captured = capsys.readouterr()
    assert captured.out.startswith("cannot play sound: sounddevice is not installed (pip install \"blekota[play]\"")
    assert captured.out.count("\n") == 1 and captured.err == ""

    def no_device(**options):
        raise RuntimeError("Error querying device -1\nmore lines")

    monkeypatch.setattr(live, "output_stream_class", lambda: no_device)
    monkeypatch.setattr(devices, "default_rate", lambda device: None)  # nothing to fall back to
    console.push("live(1)")
    assert capsys.readouterr().out == "cannot play sound: no sound output device (Error querying device -1)\n"
    console.push("live(0)")
    assert capsys.readouterr().err == "error: seconds must be a finite number > 0, got 0\n"
    assert threading.active_count() == threads


def test_ctrl_c_while_sample_plays_what_is_left_keeps_the_file(model_file, tmp_path, device, monkeypatch, capsys):
    class Interrupted(blekota.audio.ChunkPlayer):
        def __exit__(self, *exc):
            super().__exit__(*exc)
            raise KeyboardInterrupt  # Ctrl+C while the sound left after generation plays

    monkeypatch.setattr("blekota.cli.sample.ChunkPlayer", Interrupted)
    out = tmp_path / "out.wav"
    assert main(["sample", model_file, "-n", "800", "-o", str(out), "--play", "--threads", "1", "--seed", "2"]) == 130
    np.testing.assert_allclose(soundfile.read(out, dtype="float32")[0], blekota.load(model_file).sample(800, seed=2),
                               atol=1 / 32768)
