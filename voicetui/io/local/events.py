"""Events of the local audio backend, for the TUI (meters, status line, error messages).

Subscribe on the backend's ``events`` emitter (shared by a :class:`LocalAudio` pair)::

    audio.events.on("levels", lambda ev: meters.update(ev.direction, ev.rms_dbfs, ev.peak_dbfs))
    audio.events.on("error", lambda ev: status.show(ev.message))

``error`` events are the backend's faults (no device, device busy, device unplugged): the
backend keeps running and retries by itself; the app shows ``message`` (and may log it next to
the session's own ``error`` events — the session does not see device faults, since its input
iterator never raises and its output keeps reporting playback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...agents.utils.aio import EventEmitter
from .devices import Direction

LocalAudioEventTypes = Literal["levels", "error", "stream_opened"]
LocalAudioEvents = EventEmitter[LocalAudioEventTypes]
"""(the framework's emitter: levels are emitted ~33 times a second per direction, and
``rtc.EventEmitter`` inspects every handler's signature on every emit)"""


@dataclass(frozen=True)
class AudioLevelsEvent:
    """~20 times a second per direction: the level of what the mic delivered to the session
    (after echo cancellation and mute) or of what the speaker played."""

    direction: Direction
    rms_dbfs: float
    peak_dbfs: float
    muted: bool = False
    echo_cancelling: bool = False
    """(input) Echo cancellation is on."""
    erle_db: float | None = None
    """(input) Its measured echo return loss enhancement while the speaker plays."""
    type: Literal["levels"] = "levels"


@dataclass(frozen=True)
class AudioErrorEvent:
    """A device fault, with a message for the user. ``recoverable``: the backend retries."""

    direction: Direction
    message: str
    error: BaseException | None = None
    recoverable: bool = True
    type: Literal["error"] = "error"


@dataclass(frozen=True)
class StreamOpenedEvent:
    """A device stream is running (``recovered``: after a fault; else first open or switch)."""

    direction: Direction
    device: str
    device_index: int
    sample_rate: int
    latency: float
    """The stream's latency reported by PortAudio, in seconds."""
    recovered: bool = False
    type: Literal["stream_opened"] = "stream_opened"
