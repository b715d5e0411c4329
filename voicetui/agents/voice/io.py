"""The session's I/O: where user audio comes from, where agent audio and text go.

Backends (local devices, LiveKit rooms, WAV files, fakes) subclass these. ``session.input`` and
``session.output`` hold the current ones and can be swapped while the session runs.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from livekit import rtc

from ..utils.aio import EventEmitter, now


class AudioInput(ABC):
    """An async iterator of user audio frames. ``on_attached``/``on_detached`` tell the backend
    when the session starts and stops reading it."""

    def __init__(self, *, label: str) -> None:
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]: ...

    def on_attached(self) -> None:
        """The session started reading from this input."""

    def on_detached(self) -> None:
        """The session stopped reading from this input."""


@dataclass
class PlaybackStartedEvent:
    created_at: float
    """Loop time at which the first frame of the segment was heard."""


@dataclass
class PlaybackFinishedEvent:
    playback_position: float
    """Seconds of the segment's audio that were actually played."""
    interrupted: bool
    synchronized_transcript: str | None = None


class AudioOutput(ABC, EventEmitter[Literal["playback_started", "playback_finished"]]):
    """Plays agent audio. Audio is captured in segments: frames, then ``flush()``; each segment
    ends with exactly one ``playback_finished`` (via :meth:`on_playback_finished`) telling how
    much of it was heard. ``clear_buffer()`` stops playback at once (interruption)."""

    def __init__(
        self,
        *,
        label: str,
        sample_rate: int | None = None,
        can_pause: bool = False,
        next_in_chain: AudioOutput | None = None,
    ) -> None:
        super().__init__()
        self._label = label
        self._sample_rate = sample_rate
        self._can_pause = can_pause
        self._next_in_chain = next_in_chain
        self._capturing = False
        self._segments = 0
        self._finished = 0
        self._last_finished: PlaybackFinishedEvent | None = None
        self._playout_waiters: list[tuple[int, asyncio.Future[PlaybackFinishedEvent]]] = []

    @property
    def label(self) -> str:
        return self._label

    @property
    def sample_rate(self) -> int | None:
        """The rate frames must have, or None if any rate is accepted."""
        return self._sample_rate

    @property
    def can_pause(self) -> bool:
        return self._can_pause

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        """Queue a frame for playback (may wait: back-pressure from the device buffer)."""
        if not self._capturing:
            self._capturing = True
            self._segments += 1

    def flush(self) -> None:
        """The current segment is complete."""
        self._capturing = False

    @abstractmethod
    def clear_buffer(self) -> None:
        """Stop playing now and drop what is buffered; the segment finishes as interrupted."""

    def pause(self) -> None:
        """Pause playback, keeping the buffer (only when ``can_pause``)."""
        raise RuntimeError(f"{self._label} cannot pause")

    def resume(self) -> None:
        raise RuntimeError(f"{self._label} cannot pause")

    def on_playback_started(self, *, created_at: float | None = None) -> None:
        self.emit("playback_started", PlaybackStartedEvent(created_at or now()))

    def on_playback_finished(
        self,
        *,
        playback_position: float,
        interrupted: bool,
        synchronized_transcript: str | None = None,
    ) -> None:
        """Backends call this once per flushed (or cleared) segment."""
        self._finished += 1
        ev = PlaybackFinishedEvent(playback_position, interrupted, synchronized_transcript)
        self._last_finished = ev
        self.emit("playback_finished", ev)
        still_waiting = []
        for target, fut in self._playout_waiters:
            if self._finished >= target:
                if not fut.done():
                    fut.set_result(ev)
            else:
                still_waiting.append((target, fut))
        self._playout_waiters = still_waiting

    async def wait_for_playout(self) -> PlaybackFinishedEvent:
        """Wait until every segment captured so far finished playing; returns the last one's
        event."""
        if self._finished >= self._segments:
            return self._last_finished or PlaybackFinishedEvent(0.0, interrupted=False)
        fut: asyncio.Future[PlaybackFinishedEvent] = asyncio.get_running_loop().create_future()
        self._playout_waiters.append((self._segments, fut))
        return await fut


class TextOutput(ABC):
    """Receives the agent's transcription (and the user's, for backends that show it)."""

    def __init__(self, *, label: str) -> None:
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    @abstractmethod
    async def capture_text(self, text: str) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """The current message is complete."""


def _nothing() -> None:
    """The change callback of a closed session's I/O: notifies nobody."""


class AgentInput:
    """``session.input``: the current audio input, swappable at any time."""

    def __init__(self, on_audio_changed: Callable[[], None]) -> None:
        self._audio: AudioInput | None = None
        self._audio_enabled = True
        self._on_audio_changed = on_audio_changed

    @property
    def audio(self) -> AudioInput | None:
        return self._audio

    @audio.setter
    def audio(self, value: AudioInput | None) -> None:
        if value is self._audio:
            return
        self._audio = value
        self._on_audio_changed()

    @property
    def audio_enabled(self) -> bool:
        return self._audio_enabled

    def set_audio_enabled(self, enabled: bool) -> None:
        """Mute (False) or unmute the input without detaching it."""
        if enabled != self._audio_enabled:
            self._audio_enabled = enabled
            self._on_audio_changed()

    def _session_closed(self) -> None:
        """Its session closed: changes notify nobody (and the session is not kept alive by
        the callback: a closed session is freed by reference counting)."""
        self._on_audio_changed = _nothing


class AgentOutput:
    """``session.output``: the current audio and transcription outputs, swappable at any time."""

    def __init__(
        self, on_audio_changed: Callable[[], None], on_text_changed: Callable[[], None]
    ) -> None:
        self._audio: AudioOutput | None = None
        self._transcription: TextOutput | None = None
        self._audio_enabled = True
        self._on_audio_changed = on_audio_changed
        self._on_text_changed = on_text_changed

    @property
    def audio(self) -> AudioOutput | None:
        return self._audio

    @audio.setter
    def audio(self, value: AudioOutput | None) -> None:
        if value is self._audio:
            return
        self._audio = value
        self._on_audio_changed()

    @property
    def audio_enabled(self) -> bool:
        return self._audio_enabled

    def set_audio_enabled(self, enabled: bool) -> None:
        """Speak (True) or reply as text only (False) without detaching the output."""
        if enabled != self._audio_enabled:
            self._audio_enabled = enabled
            self._on_audio_changed()

    @property
    def transcription(self) -> TextOutput | None:
        return self._transcription

    @transcription.setter
    def transcription(self, value: TextOutput | None) -> None:
        if value is self._transcription:
            return
        self._transcription = value
        self._on_text_changed()

    def _session_closed(self) -> None:
        """See :meth:`AgentInput._session_closed`."""
        self._on_audio_changed = self._on_text_changed = _nothing
