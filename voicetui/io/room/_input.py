"""The linked participant's microphone as the session's audio input. One input object lives as
long as the RoomIO; the room's audio streams are switched underneath it when the participant (or
their track) changes, so the session keeps iterating the same input."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable

from livekit import rtc

from ...agents.audio import FrameResampler, frame_duration, remix, silence
from ...agents.utils.aio import TaskSet, cancel_and_wait
from ...agents.voice.io import AudioInput
from ._pre_connect import PreConnectAudio

logger = logging.getLogger("voicetui.io.room")

_END_SILENCE = 0.5
"""Silence given after a stream ends, so speech in progress gets its end (final transcript)."""
_MAX_BACKLOG = 10.0
"""Seconds of audio kept for a session that does not read yet; older audio is dropped."""


class RoomAudioInput(AudioInput):
    """Frames from the current participant's microphone (``rtc.AudioStream`` resampled to
    ``sample_rate``), preceded by their pre-connect audio. Until the session first reads, up to
    10 s are kept; while it is detached, frames are dropped."""

    def __init__(
        self,
        *,
        sample_rate: int,
        num_channels: int,
        noise_cancellation: rtc.NoiseCancellationOptions | None = None,
        pre_connect: PreConnectAudio | None = None,
    ) -> None:
        super().__init__(label="RoomIO")
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._noise_cancellation = noise_cancellation
        self._pre_connect = pre_connect
        self._frames: deque[rtc.AudioFrame] = deque()
        self._backlog = 0.0
        self._ready = asyncio.Event()
        self._attached = True  # until the session says otherwise: keep the first words
        self._stream: rtc.AudioStream | None = None
        self._publication_sid: str | None = None
        self._forward_task: asyncio.Task[None] | None = None
        self._tasks = TaskSet("RoomAudioInput")
        self._closed = False
        self.frames_received = 0
        """Frames received from the room so far (diagnostics)."""

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def publication_sid(self) -> str | None:
        """The microphone track currently listened to."""
        return self._publication_sid

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[rtc.AudioFrame]:
        while True:
            while not self._frames:
                if self._closed:
                    return
                self._ready.clear()
                await self._ready.wait()
            frame = self._frames.popleft()
            self._backlog -= frame_duration(frame)
            yield frame

    def on_attached(self) -> None:
        self._attached = True

    def on_detached(self) -> None:
        self._attached = False
        self._frames.clear()  # nothing stale when the session comes back
        self._backlog = 0.0

    def set_track(
        self,
        track: rtc.Track,
        publication: rtc.TrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        """Listen to this track from now on (replacing the current one)."""
        if self._closed or publication.sid == self._publication_sid:
            return
        self._close_stream()
        stream = rtc.AudioStream(
            track,
            sample_rate=self._sample_rate,
            num_channels=self._num_channels,
            noise_cancellation=self._noise_cancellation,
        )
        self._stream = stream
        self._publication_sid = publication.sid
        previous = self._forward_task
        self._forward_task = self._tasks.create(
            self._forward(previous, stream, participant, publication),
            name="RoomAudioInput.forward",
        )
        logger.info("listening to %s (track %s)", participant.identity, publication.sid)

    def clear_track(self, publication_sid: str | None = None) -> None:
        """Stop listening (to ``publication_sid`` only, if given); the current stream ends."""
        if publication_sid is not None and publication_sid != self._publication_sid:
            return
        self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._publication_sid = None
        if stream is not None:
            self._tasks.create(stream.aclose(), name="RoomAudioInput.close_stream")

    async def aclose(self) -> None:
        """Stop listening; iterating the input ends."""
        self._closed = True
        self._ready.set()
        stream, self._stream = self._stream, None
        self._publication_sid = None
        await cancel_and_wait(self._forward_task)
        if stream is not None:
            await stream.aclose()
        # streams being closed finish closing (their native side ends them promptly)
        closing = list(self._tasks.tasks)
        if closing:
            await asyncio.wait(closing, timeout=2.0)
        await self._tasks.aclose()

    def _send(self, frame: rtc.AudioFrame) -> None:
        if not self._attached or self._closed:
            return
        self._frames.append(frame)
        self._backlog += frame_duration(frame)
        while self._backlog > _MAX_BACKLOG and len(self._frames) > 1:
            self._backlog -= frame_duration(self._frames.popleft())
        self._ready.set()

    async def _forward(
        self,
        previous: asyncio.Task[None] | None,
        stream: rtc.AudioStream,
        participant: rtc.RemoteParticipant,
        publication: rtc.TrackPublication,
    ) -> None:
        await cancel_and_wait(previous)
        if self._pre_connect is not None:
            frames = await self._pre_connect.take(participant, publication)
            if frames:
                for frame in self._resampled(frames):
                    self._send(frame)
                logger.info(
                    "delivered %.2f s of pre-connect audio from %s",
                    sum(f.samples_per_channel / f.sample_rate for f in frames),
                    participant.identity,
                )
        async for ev in stream:
            self.frames_received += 1
            self._send(ev.frame)
        self._send(silence(_END_SILENCE, self._sample_rate, self._num_channels))

    def _resampled(self, frames: Iterable[rtc.AudioFrame]) -> Iterable[rtc.AudioFrame]:
        resampler: FrameResampler | None = None
        for frame in frames:
            frame = remix(frame, self._num_channels)
            if resampler is None and frame.sample_rate != self._sample_rate:
                resampler = FrameResampler(
                    frame.sample_rate, self._sample_rate, num_channels=self._num_channels
                )
            if resampler is None:
                yield frame
            else:
                yield from resampler.push(frame)
        if resampler is not None:
            yield from resampler.flush()
