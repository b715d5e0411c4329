"""Audio taps: wrappers around the session's AudioInput/AudioOutput that copy what the pipeline
heard and what was actually played to the recorder, without the session knowing.

Work done on the audio path is a copy of the frame and an append to a queue; everything else
happens on the recorder's writer thread.

Agent audio is placed where it was heard: a segment starts at its ``playback_started`` time; while
it plays, what is surely played by now (elapsed playing time minus ``commit_lag``) is committed
every tick; ``playback_finished`` commits the rest up to ``playback_position`` (an interrupted
segment ends where playback stopped). Pausing starts a new run placed at the resume time.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from livekit import rtc

from ..agents.audio import captured_at, frame_mono, resample
from ..agents.voice.io import AudioInput, AudioOutput, PlaybackFinishedEvent, PlaybackStartedEvent
from .event_log import (
    AudioInputAttached,
    AudioInputDetached,
    AudioPlaybackFinished,
    AudioPlaybackStarted,
    RecorderNote,
)

logger = logging.getLogger("voicetui.recording")


class TapSink(Protocol):
    """What the taps need from the recorder."""

    @property
    def tapping(self) -> bool: ...

    def now(self) -> float:
        """The loop clock."""
        ...

    def rel(self, loop_time: float) -> float:
        """Seconds since the recording started."""
        ...

    def push_user_audio(
        self, loop_time: float, pcm: np.ndarray, rate: int, *, captured: bool = False
    ) -> None:
        """``loop_time``: when the frame's last sample was captured (``captured``: the backend
        said so) or arrived."""

    def push_agent_audio(
        self, segment: int, start: float, pcm: np.ndarray, rate: int, restart: bool
    ) -> None: ...

    def end_agent_segment(self, segment: int, keep: int | None, rate: int) -> None: ...

    def note(self, note: RecorderNote, *, loop_time: float | None = None) -> None:
        """Record an event of the recorder's own."""
        ...

    def next_segment_id(self) -> int: ...


class RecordingAudioInput(AudioInput):
    """Passes the inner input's frames through, copying each to the recorder as it arrives.
    Without a sink (or once its recording stopped) it is an inert pass-through that a
    recording can adopt later (:meth:`rebind`) without swapping the session's input."""

    def __init__(self, inner: AudioInput, sink: TapSink | None = None) -> None:
        super().__init__(label=inner.label)
        self._inner = inner
        self._sink = sink

    @property
    def inner(self) -> AudioInput:
        return self._inner

    @property
    def sink(self) -> TapSink | None:
        return self._sink

    def rebind(self, sink: TapSink | None) -> None:
        """Record to another recorder (a new recording adopting this wrapper), or to none."""
        self._sink = sink

    def _live(self) -> TapSink | None:
        sink = self._sink
        return sink if sink is not None and sink.tapping else None

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        it = self._inner.__aiter__()
        try:
            while True:
                try:
                    frame = await it.__anext__()
                except StopAsyncIteration:
                    return
                sink = self._live()
                if sink is not None:
                    # placed where it was captured when the backend says (a busy loop
                    # delivers late; the session dates speech by the same mark)
                    at = captured_at(frame)
                    pcm = frame_mono(frame)
                    if at is None:
                        sink.push_user_audio(sink.now(), pcm, frame.sample_rate)
                    else:
                        sink.push_user_audio(at, pcm, frame.sample_rate, captured=True)
                yield frame
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    def on_attached(self) -> None:
        self._inner.on_attached()
        if (sink := self._live()) is not None:
            sink.note(AudioInputAttached(label=self._inner.label))

    def on_detached(self) -> None:
        self._inner.on_detached()
        if (sink := self._live()) is not None:
            sink.note(AudioInputDetached(label=self._inner.label))

    def __getattr__(self, name: str) -> Any:
        # reached only for attributes the wrapper lacks: the backend's own API (close(), ...)
        if name.startswith("__") or "_inner" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._inner, name)


@dataclass
class _Segment:
    id: int
    rate: int = 0
    pcm: bytearray = field(default_factory=bytearray)
    base: int = 0
    """Segment sample index of ``pcm[0]`` (committed audio is dropped from memory)."""
    captured: int = 0
    committed: int = 0
    started: float | None = None
    run_time: float = 0.0
    run_sample: int = 0
    paused_sample: int | None = None
    restart: bool = True
    partial: bool = False
    """Captured from the middle (the recording adopted the wrapper mid-segment): where its
    audio belongs is unknown, so it is not written."""

    def estimate(self, now: float) -> int:
        """Samples played by ``now`` (loop clock), as the output's clock sees it."""
        if self.started is None:
            return 0
        if self.paused_sample is not None:
            return self.paused_sample
        return self.run_sample + max(0, round((now - self.run_time) * self.rate))


class AgentTap:
    """Follows one output's segments (they play and finish in order)."""

    def __init__(self, sink: TapSink, *, commit_lag: float) -> None:
        self._sink = sink
        self.commit_lag = commit_lag
        self._segments: deque[_Segment] = deque()

    def now(self) -> float:
        return self._sink.now()

    def capture(self, frame: rtc.AudioFrame, *, new_segment: bool) -> None:
        if new_segment or not self._segments:
            seg_id = self._sink.next_segment_id()
            self._segments.append(_Segment(seg_id, rate=frame.sample_rate, partial=not new_segment))
        seg = self._segments[-1]
        pcm = frame_mono(frame)
        if frame.sample_rate != seg.rate:  # a rate change mid-segment: rare, convert
            pcm = resample(pcm, frame.sample_rate, seg.rate)
        seg.pcm += pcm.tobytes()
        seg.captured += len(pcm)

    def _playing(self) -> _Segment | None:
        seg = self._segments[0] if self._segments else None
        return seg if seg is not None and seg.started is not None else None

    def started(self, loop_time: float) -> None:
        for seg in self._segments:
            if seg.started is None:
                seg.started = seg.run_time = loop_time
                self._sink.note(AudioPlaybackStarted(segment=seg.id), loop_time=loop_time)
                return

    def progress(self, now: float) -> None:
        seg = self._playing()
        if seg is not None:
            target = seg.estimate(now) - round(self.commit_lag * seg.rate)
            self._commit(seg, min(seg.captured, target))

    def pause(self, now: float) -> None:
        seg = self._playing()
        if seg is not None and seg.paused_sample is None:
            played = min(seg.captured, seg.estimate(now))
            self._commit(seg, played)
            seg.paused_sample = played

    def resume(self, now: float) -> None:
        seg = self._playing()
        if seg is not None and seg.paused_sample is not None:
            seg.run_time, seg.run_sample = now, seg.paused_sample
            seg.paused_sample = None
            seg.restart = True

    def finished(self, ev: PlaybackFinishedEvent, now: float) -> None:
        if not self._segments:
            return
        seg = self._segments.popleft()
        total = min(seg.captured, round(ev.playback_position * seg.rate))
        if seg.started is None and total > 0:  # a backend that never said it started
            seg.started = seg.run_time = now - ev.playback_position
        if seg.started is not None and not seg.partial:
            self._commit(seg, total)
            keep = total if seg.committed > total else None
            self._sink.end_agent_segment(seg.id, keep, seg.rate)
        finished = AudioPlaybackFinished(
            segment=seg.id, playback_position=ev.playback_position, interrupted=ev.interrupted
        )
        self._sink.note(finished, loop_time=now)

    def stop(self, now: float) -> None:
        """The recording stops: commit what was played so far."""
        seg = self._playing()
        if seg is not None and not seg.partial:
            self._commit(seg, min(seg.captured, seg.estimate(now)))
            self._sink.end_agent_segment(seg.id, None, seg.rate)
        self._segments.clear()

    def _commit(self, seg: _Segment, upto: int) -> None:
        if upto <= seg.committed or seg.started is None or seg.partial:
            return
        lo = seg.committed - seg.base
        hi = upto - seg.base
        pcm = np.frombuffer(bytes(seg.pcm[2 * lo : 2 * hi]), dtype=np.int16)
        start = self._sink.rel(seg.run_time) + (seg.committed - seg.run_sample) / seg.rate
        self._sink.push_agent_audio(seg.id, start, pcm, seg.rate, seg.restart)
        seg.restart = False
        seg.committed = upto
        if lo > 48000:  # drop what is written from memory (amortized)
            del seg.pcm[: 2 * hi]
            seg.base = upto


class RecordingAudioOutput(AudioOutput):
    """Forwards everything to the inner output (``next_in_chain``) and relays its playback
    events, copying the frames of each segment to an :class:`AgentTap`. Inert without a sink
    (see :class:`RecordingAudioInput`)."""

    def __init__(
        self, inner: AudioOutput, sink: TapSink | None = None, *, commit_lag: float = 0.25
    ) -> None:
        super().__init__(
            label=inner.label,
            sample_rate=inner.sample_rate,
            can_pause=inner.can_pause,
            next_in_chain=inner,
        )
        self._inner = inner
        self._sink = sink
        self._commit_lag = commit_lag
        self.tap: AgentTap | None = (
            AgentTap(sink, commit_lag=commit_lag) if sink is not None else None
        )
        self._pending = 0
        """Segments captured through this wrapper whose playback has not finished: the inner
        output's events for audio captured around the wrapper are not ours to relay."""
        inner.on("playback_started", self._on_started)
        inner.on("playback_finished", self._on_finished)

    @property
    def inner(self) -> AudioOutput:
        return self._inner

    @property
    def sink(self) -> TapSink | None:
        return self._sink

    def rebind(self, sink: TapSink | None) -> None:
        """Record to another recorder (a new recording adopting this wrapper), or to none."""
        self._sink = sink
        self.tap = AgentTap(sink, commit_lag=self._commit_lag) if sink is not None else None

    def _live(self) -> AgentTap | None:
        sink = self._sink
        return self.tap if sink is not None and sink.tapping else None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        new_segment = not self._capturing
        await super().capture_frame(frame)
        if new_segment:
            self._pending += 1
        if (tap := self._live()) is not None:
            tap.capture(frame, new_segment=new_segment)
        await self._inner.capture_frame(frame)

    def flush(self) -> None:
        super().flush()
        self._inner.flush()

    def clear_buffer(self) -> None:
        self._capturing = False
        self._inner.clear_buffer()

    def pause(self) -> None:
        self._inner.pause()
        if (tap := self._live()) is not None:
            tap.pause(tap.now())

    def resume(self) -> None:
        self._inner.resume()
        if (tap := self._live()) is not None:
            tap.resume(tap.now())

    def _on_started(self, ev: PlaybackStartedEvent) -> None:
        if self._pending <= 0:
            return
        if (tap := self._live()) is not None:
            tap.started(ev.created_at)
        self.on_playback_started(created_at=ev.created_at)

    def _on_finished(self, ev: PlaybackFinishedEvent) -> None:
        if self._pending <= 0:
            return
        self._pending -= 1
        if (tap := self._live()) is not None:
            tap.finished(ev, tap.now())
        self.on_playback_finished(
            playback_position=ev.playback_position,
            interrupted=ev.interrupted,
            synchronized_transcript=ev.synchronized_transcript,
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_inner" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._inner, name)


def unwrap_input(audio: AudioInput | None) -> AudioInput | None:
    """The backend behind any recording wrappers."""
    while isinstance(audio, RecordingAudioInput):
        audio = audio.inner
    return audio


def unwrap_output(audio: AudioOutput | None) -> AudioOutput | None:
    while isinstance(audio, RecordingAudioOutput):
        audio = audio.inner
    return audio
