"""Sound output devices: which there are (PortAudio through sounddevice), and opening one at the
model's rate or, where it does not take that, at its own default rate (the caller resamples)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import checks
from .errors import AudioError, install_hint

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

MIN_RATE, MAX_RATE = 1000, 384000  # device sample rates in Hz


class PlaybackError(AudioError):
    """Sound could not be played here (no PortAudio or no output device)."""


def sounddevice_module() -> ModuleType:
    """The sounddevice module, or PlaybackError saying why sound cannot be played here."""
    try:
        import sounddevice
    except ImportError:
        raise PlaybackError(f"cannot play sound: sounddevice is not installed ({install_hint('play')})") from None
    except OSError:
        raise PlaybackError(
            "cannot play sound: the PortAudio library is not installed (Debian: apt-get install libportaudio2)"
        ) from None
    return sounddevice


def device_rate(value: object, name: str = "rate") -> int:
    """value as an int, when it is a device sample rate in MIN_RATE..MAX_RATE Hz."""
    return checks.integer(name, value, MIN_RATE, MAX_RATE, f"a sample rate in {MIN_RATE}..{MAX_RATE} Hz")


def device_info(device: int | str | None = None) -> dict:
    """What PortAudio says of an output device: `name`, `hostapi` (an index), `max_output_channels`,
    `default_samplerate` (Hz), `index`... device: its index, a part of its name (as sounddevice
    takes them) or None for the default. PlaybackError when sound cannot be played here, or when
    no output device or several match."""
    sounddevice = sounddevice_module()
    try:
        return dict(sounddevice.query_devices(device, "output"))
    except Exception as error:  # ValueError: none or several match; PortAudioError: no PortAudio device
        why = str(error).splitlines()[0].rstrip(":")
        raise PlaybackError(f"cannot play sound: {why[:1].lower()}{why[1:]} (python -m blekota sound-devices lists them)") from None


def output_devices() -> list[dict]:
    """Every output device PortAudio knows, as device_info gives them, with `default` (True for the
    one used when none is named) and `host` (the host API's name); PlaybackError as device_info."""
    sounddevice = sounddevice_module()
    try:
        devices, hosts = sounddevice.query_devices(), sounddevice.query_hostapis()
        default = sounddevice.default.device[1]
    except Exception as error:  # PortAudioError
        raise PlaybackError(f"cannot list sound devices: {str(error).splitlines()[0]}") from None
    found = []
    for index, device in enumerate(devices):
        if device["max_output_channels"] > 0:
            host = hosts[device["hostapi"]]["name"] if 0 <= device["hostapi"] < len(hosts) else "?"
            found.append(dict(device, index=index, default=index == default, host=host))
    return found


def default_rate(device: int | str | None = None) -> int | None:
    """The default sample rate of the output device in Hz, None when PortAudio cannot say."""
    try:
        rate = device_info(device).get("default_samplerate")
    except PlaybackError:
        return None
    return round(rate) if isinstance(rate, (int, float)) and MIN_RATE <= rate <= MAX_RATE else None


def open_device(open_stream: Callable[..., object], fs: int, device: int | str | None = None,
                rate: int | None = None, block: int = 0, **options) -> tuple[object, int]:
    """Open a mono float32 output stream: open_stream (sounddevice.OutputStream or a stand-in) at
    `rate` Hz when given, else at fs and, where the device does not take fs, at its default rate.
    block: samples per block at fs (0: the device chooses), scaled to the rate opened at; options
    go to open_stream (callback, latency). Returns the stream (opened, not started) and its rate;
    PlaybackError when no device matches `device`, or saying what was tried when no rate opened."""
    if device is not None:
        device_info(device)  # none or several match: say so
    where = {} if device is None else {"device": device}
    rates = [rate or fs]
    while True:
        try:
            stream = open_stream(samplerate=rates[-1], blocksize=round(block * rates[-1] / fs), channels=1,
                                 dtype="float32", **where, **options)
            return stream, rates[-1]
        except Exception as error:  # sounddevice.PortAudioError and friends
            why = str(error).splitlines()[0]
        fallback = None if rate or len(rates) > 1 else default_rate(device)
        if fallback is None or fallback == fs:
            if len(rates) > 1:
                what = f"the device takes neither {rates[0]} Hz nor {rates[1]} Hz"
            else:
                there = rate is not None and default_rate(device) is not None  # a device that refused the rate
                what = f"the device does not take {rate} Hz" if there else "no sound output device"
            raise PlaybackError(f"cannot play sound: {what} ({why})")
        rates.append(fallback)
