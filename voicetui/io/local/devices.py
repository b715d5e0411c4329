"""Audio devices through PortAudio (sounddevice): listing, selection by index or name substring,
and opening/closing streams under one process-wide lock.

PortAudio enumerates devices once, when it is initialized; :func:`refresh_devices` re-reads the
list, which PortAudio only allows while no stream is open (so a device plugged in during a
session shows up once every stream of ours is closed — e.g. while the backend retries).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger("voicetui.io.local")

Direction = Literal["input", "output"]
DeviceSpec = int | str | None
"""None = the system default; an int (or a string of digits) = a PortAudio device index; any
other string = a case-insensitive substring of the device name."""

_lock = threading.Lock()  # PortAudio is not thread-safe for open/close/(re)initialize
_live_streams: dict[int, Any] = {}
"""Every stream opened and not closed yet, held strongly: a sounddevice stream has no
finalizer, so one dropped while running would free the cffi callbacks PortAudio's thread still
calls into (a native crash, SIGILL/SIGSEGV, at some later garbage collection)."""


class AudioDeviceError(Exception):
    """A device could not be used; the message is meant for the user."""


class DeviceNotFoundError(AudioDeviceError, LookupError):
    """No device matches the requested index or name."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool = False
    default_output: bool = False

    def supports(self, direction: Direction) -> bool:
        channels = self.max_input_channels if direction == "input" else self.max_output_channels
        return channels > 0

    def describe(self) -> str:
        marks = ("<" if self.default_input else " ") + (">" if self.default_output else " ")
        return (
            f"{marks} {self.index:3d} {self.name} ({self.hostapi}, "
            f"{self.max_input_channels} in, {self.max_output_channels} out, "
            f"{self.default_samplerate:g} Hz)"
        )


def portaudio() -> Any:
    """The sounddevice module (imported on first use: it loads PortAudio)."""
    try:
        import sounddevice as sd  # type: ignore[import-untyped,unused-ignore]
    except OSError as e:  # libportaudio2 is missing
        raise AudioDeviceError(f"PortAudio is not available: {e}") from e
    return sd


def _defaults(sd: Any) -> tuple[int, int]:
    dev = sd.default.device
    try:
        return int(dev[0]), int(dev[1])
    except (TypeError, ValueError, IndexError):
        return -1, -1


def list_devices(direction: Direction | None = None) -> list[DeviceInfo]:
    """Every device PortAudio knows (only those usable for ``direction`` if given)."""
    sd = portaudio()
    with _lock:
        raw = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in, default_out = _defaults(sd)
    devices = [
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            default_input=int(d["index"]) == default_in,
            default_output=int(d["index"]) == default_out,
        )
        for d in raw
    ]
    return [d for d in devices if direction is None or d.supports(direction)]


def format_devices(devices: list[DeviceInfo] | None = None) -> str:
    """A listing for ``--list-devices`` (``<`` default input, ``>`` default output)."""
    devices = list_devices() if devices is None else devices
    if not devices:
        return "no audio devices found"
    return "\n".join(d.describe() for d in devices)


def resolve_device(spec: DeviceSpec, direction: Direction) -> DeviceInfo:
    """The device ``spec`` designates for ``direction``; raises :class:`DeviceNotFoundError`
    with the list of usable devices when there is none."""
    devices = list_devices(direction)
    what = "microphone" if direction == "input" else "speaker"

    def not_found(why: str) -> DeviceNotFoundError:
        listing = "\n".join(d.describe() for d in devices) or "  (none)"
        return DeviceNotFoundError(f"{why}; available {what}s:\n{listing}")

    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec.strip())
    if spec is None or spec == "":
        for d in devices:
            if d.default_input if direction == "input" else d.default_output:
                return d
        if devices:
            return devices[0]
        raise not_found(f"no {what} found")
    if isinstance(spec, int):
        for d in devices:
            if d.index == spec:
                return d
        raise not_found(f"no {what} with index {spec}")
    needle = spec.casefold()
    matches = [d for d in devices if needle in d.name.casefold()]
    for d in matches:
        if d.name.casefold() == needle:
            return d
    if matches:
        return matches[0]
    raise not_found(f"no {what} matching {spec!r}")


def refresh_devices() -> bool:
    """Re-read the device list from the system. Returns False (and changes nothing) while a
    stream is open, since PortAudio cannot re-initialize then."""
    sd = portaudio()
    with _lock:
        if _live_streams:
            return False
        sd._terminate()  # sounddevice has no public API to re-enumerate devices
        sd._initialize()
        return True


def open_stream(factory: Callable[[Any], Any]) -> Any:
    """Create and start a stream (blocking: call it in a worker thread). ``factory`` gets the
    sounddevice module."""
    sd = portaudio()
    with _lock:
        stream = factory(sd)
        _live_streams[id(stream)] = stream
        try:
            stream.start()
        except BaseException:
            _close(stream)
            raise
    return stream


class ThreadNamer:
    """Names the PortAudio callback thread it is called on (as ``/proc`` and ``top -H`` show
    it), once per thread: otherwise it inherits the name of the executor thread that opened the
    stream, and a per-thread profile cannot tell the speaker's callback from the mic's. Linux
    only (``prctl``); elsewhere it does nothing."""

    def __init__(self, name: str) -> None:
        self._name = name.encode()[:15]  # (the kernel keeps 15 bytes)
        self._ident = 0

    def __call__(self) -> None:
        ident = threading.get_ident()
        if ident != self._ident:  # (PortAudio starts a new thread on every stream start)
            self._ident = ident
            _set_thread_name(self._name)


def _set_thread_name(name: bytes) -> None:
    global _prctl
    if _prctl is None:
        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = False
    if _prctl:
        _prctl(15, name, 0, 0, 0)  # PR_SET_NAME


_prctl: Any = None


def stop_stream(stream: Any) -> None:
    """Stop a running stream without closing it (blocking: plays out what the device holds,
    a few ms; its finished callback runs before this returns). :func:`start_stream` restarts
    it; the device stays ours meanwhile."""
    with _lock:
        stream.stop()


def start_stream(stream: Any) -> None:
    """Restart a stream stopped by :func:`stop_stream` (blocking, a few ms)."""
    with _lock:
        stream.start()


def close_stream(stream: Any) -> None:
    """Stop and close a stream opened by :func:`open_stream` (blocking; never raises)."""
    with _lock:
        _close(stream)


def _close(stream: Any) -> None:
    with contextlib.suppress(Exception):  # a vanished device may fail on close too
        stream.abort(ignore_errors=True)
        stream.close(ignore_errors=True)
    if stream.closed:
        _live_streams.pop(id(stream), None)
    else:  # still held, so PortAudio never calls into freed callbacks
        logger.warning("a PortAudio stream could not be closed; keeping it until exit")


def open_streams() -> list[Any]:
    """The streams opened by :func:`open_stream` and not closed yet."""
    with _lock:
        return list(_live_streams.values())


@atexit.register
def _close_leftover_streams() -> None:
    """Streams whose owner never closed them (a loop stopped mid-session) are closed before
    the interpreter tears down the objects their callbacks use."""
    with _lock:
        for stream in list(_live_streams.values()):
            _close(stream)
