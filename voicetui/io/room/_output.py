"""The agent's voice as a published microphone track: frames go through a small buffer into an
``rtc.AudioSource`` feeding a ``LocalAudioTrack``. The source plays in real time, so what was
heard of a segment is exactly what was pushed minus what is still queued (in our buffer and in
the source) at the moment playback stops."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from livekit import rtc

from ...agents.audio import frame_duration, remix
from ...agents.utils.aio import TaskSet, now
from ...agents.voice.io import AudioOutput

logger = logging.getLogger("voicetui.io.room")

_FINISHED_KEPT = 32


@dataclass
class _Segment:
    number: int
    done: asyncio.Future[None]
    pushed: float = 0.0
    flushed: bool = False
    started: bool = False


@dataclass(frozen=True)
class SegmentProgress:
    """How far playback of one segment got (for transcript synchronization)."""

    started: bool
    played: float
    finished: bool = False
    interrupted: bool = False


@dataclass
class _Recent:
    """The last frames handed to the source: what pause takes back from its queue."""

    frames: deque[rtc.AudioFrame] = field(default_factory=deque)
    duration: float = 0.0
    limit: float = 1.0

    def add(self, frame: rtc.AudioFrame) -> None:
        self.frames.append(frame)
        self.duration += frame_duration(frame)
        while self.frames and self.duration - frame_duration(self.frames[0]) >= self.limit:
            self.duration -= frame_duration(self.frames.popleft())

    def clear(self) -> None:
        self.frames.clear()
        self.duration = 0.0

    def take_tail(self, duration: float) -> list[rtc.AudioFrame]:
        """The last ``duration`` seconds (cut at a sample), removed from here."""
        tail: list[rtc.AudioFrame] = []
        left = duration
        while self.frames and left > 1e-9:
            frame = self.frames.pop()
            d = frame_duration(frame)
            self.duration -= d
            if d <= left + 1e-9:
                tail.append(frame)
                left -= d
                continue
            keep = round(left * frame.sample_rate)
            if keep > 0:
                width = frame.num_channels * 2
                start = (frame.samples_per_channel - keep) * width
                data = bytes(memoryview(frame.data).cast("B")[start:])
                tail.append(rtc.AudioFrame(data, frame.sample_rate, frame.num_channels, keep))
            left = 0.0
        self.clear()
        tail.reverse()
        return tail


class RoomAudioOutput(AudioOutput):
    """Publishes the agent's audio to the room. Supports clear_buffer (interruption, with the
    exact played duration) and pause/resume (false interruptions): pausing takes the audio
    still queued in the source back, so nothing is lost and playback resumes where it
    stopped."""

    def __init__(
        self,
        room: rtc.Room,
        *,
        sample_rate: int,
        num_channels: int,
        publish_options: rtc.TrackPublishOptions,
        track_name: str = "agent_voice",
        queue_size_ms: int = 200,
        buffer_duration: float = 0.2,
        subscription_timeout: float = 5.0,
    ) -> None:
        super().__init__(label="RoomIO", sample_rate=sample_rate, can_pause=True)
        self._room = room
        self._num_channels = num_channels
        self._publish_options = publish_options
        self._track_name = track_name
        self._source = rtc.AudioSource(sample_rate, num_channels, queue_size_ms=queue_size_ms)
        self._track: rtc.LocalAudioTrack | None = None
        self._publication: rtc.LocalTrackPublication | None = None
        self._buffer_duration = buffer_duration
        self._subscription_timeout = subscription_timeout
        self._pending: deque[rtc.AudioFrame] = deque()
        self._pending_duration = 0.0
        self._recent = _Recent(limit=queue_size_ms / 1000 + 0.3)
        self._seg: _Segment | None = None
        self._seg_count = 0
        self._results: dict[int, tuple[float, bool]] = {}
        self._paused = False
        self._epoch = 0
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._subscribed = asyncio.Event()
        self._waited_for_subscription = False
        self._tasks = TaskSet("RoomAudioOutput")
        self._player: asyncio.Task[None] | None = None
        self._closed = False

    # --- publishing ---------------------------------------------------------------------
    @property
    def track(self) -> rtc.LocalAudioTrack | None:
        return self._track

    @property
    def track_sid(self) -> str | None:
        return self._publication.sid if self._publication is not None else None

    @property
    def paused(self) -> bool:
        return self._paused

    async def start(self) -> None:
        """Publish the track (raises if the room refuses it; the output still plays)."""
        if self._player is None:
            self._player = self._tasks.create(self._play(), name="RoomAudioOutput.play")
        self._track = rtc.LocalAudioTrack.create_audio_track(self._track_name, self._source)
        try:
            self._publication = await self._room.local_participant.publish_track(
                self._track, self._publish_options
            )
        except BaseException:
            self._subscribed.set()  # nobody will subscribe: do not wait for it
            raise
        self._tasks.create(self._wait_subscribed(self._publication), name="RoomAudioOutput.sub")

    async def _wait_subscribed(self, publication: rtc.LocalTrackPublication) -> None:
        try:
            await publication.wait_for_subscription()
        finally:
            self._subscribed.set()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        seg = self._seg
        if seg is not None:
            self._finish(seg, self._played(seg), interrupted=True)
        await self._tasks.aclose()
        pub = self._publication
        if pub is not None and self._room.isconnected():
            try:
                await self._room.local_participant.unpublish_track(pub.sid)
            except Exception as e:
                logger.warning("could not unpublish the agent's audio track: %s", e)
        self._publication = None
        await self._source.aclose()

    # --- AudioOutput --------------------------------------------------------------------
    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            return
        if not self._waited_for_subscription:
            # the first words are not lost while the user's client subscribes
            self._waited_for_subscription = True
            try:
                await asyncio.wait_for(self._subscribed.wait(), self._subscription_timeout)
            except TimeoutError:
                logger.info("nobody subscribed to the agent's audio yet; speaking anyway")
        while self._seg is not None and self._seg.flushed:
            await asyncio.shield(self._seg.done)  # the previous segment plays out first
        await super().capture_frame(frame)
        if self._seg is None:
            self._seg_count += 1
            self._seg = _Segment(self._seg_count, asyncio.get_running_loop().create_future())
        seg = self._seg
        while self._pending_duration >= self._buffer_duration and self._seg is seg:
            self._space.clear()
            await self._space.wait()
        if self._seg is not seg or self._closed:
            return  # cleared while waiting: this frame belongs to the interrupted segment
        self._pending.append(remix(frame, self._num_channels))
        d = frame_duration(frame)
        self._pending_duration += d
        seg.pushed += d
        self._wakeup.set()

    def flush(self) -> None:
        super().flush()
        seg = self._seg
        if seg is not None and not seg.flushed:
            seg.flushed = True
            self._wakeup.set()

    def clear_buffer(self) -> None:
        self._capturing = False
        seg = self._seg
        if seg is None:
            return
        played = self._played(seg)
        self._pending.clear()
        self._pending_duration = 0.0
        self._recent.clear()
        self._source.clear_queue()
        self._epoch += 1
        self._finish(seg, played, interrupted=True)

    def pause(self) -> None:
        if self._paused:
            return
        self._paused = True
        queued = self._source.queued_duration
        if queued > 0:
            tail = self._recent.take_tail(queued)
            self._source.clear_queue()
            self._epoch += 1
            self._pending.extendleft(reversed(tail))
            self._pending_duration += sum(frame_duration(f) for f in tail)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._wakeup.set()

    # --- progress (transcript synchronization) ------------------------------------------
    def mark(self) -> tuple[int, float]:
        """(segment number, position in it) where audio captured from now on will start."""
        seg = self._seg
        if seg is not None and not seg.flushed:
            return seg.number, seg.pushed
        return self._seg_count + 1, 0.0

    def progress(self, number: int) -> SegmentProgress:
        seg = self._seg
        if seg is not None and seg.number == number:
            return SegmentProgress(started=seg.started, played=self._played(seg))
        if number in self._results:
            played, interrupted = self._results[number]
            return SegmentProgress(True, played, finished=True, interrupted=interrupted)
        if number > self._seg_count:
            return SegmentProgress(started=False, played=0.0)
        return SegmentProgress(True, float("inf"), finished=True)  # long forgotten

    # --- internals ----------------------------------------------------------------------
    def _played(self, seg: _Segment) -> float:
        if not seg.started:
            return 0.0
        queued = self._pending_duration + self._source.queued_duration
        return max(0.0, seg.pushed - queued)

    def _finish(self, seg: _Segment, played: float, *, interrupted: bool) -> None:
        if seg.done.done():
            return
        if self._seg is seg:
            self._seg = None
        self._recent.clear()
        self._results[seg.number] = (played, interrupted)
        for old in [n for n in self._results if n <= seg.number - _FINISHED_KEPT]:
            del self._results[old]
        seg.done.set_result(None)
        self._space.set()
        self._wakeup.set()
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    async def _play(self) -> None:
        while True:
            seg = self._seg
            if seg is None or self._paused or (not self._pending and not seg.flushed):
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            epoch = self._epoch
            if self._pending:
                frame = self._pending.popleft()
                self._pending_duration = max(0.0, self._pending_duration - frame_duration(frame))
                if self._pending_duration < self._buffer_duration:
                    self._space.set()
                if not seg.started:
                    seg.started = True
                    self.on_playback_started(created_at=now())
                self._recent.add(frame)
                try:
                    await self._source.capture_frame(frame)  # waits while the source is full
                except Exception as e:  # the frame is lost; playback goes on
                    logger.error("the agent's audio could not be played: %s", e)
                if epoch != self._epoch:
                    # cleared or paused while this frame was being queued: it must not play
                    self._source.clear_queue()
                continue
            await self._source.wait_for_playout()  # released early by clear_queue
            if epoch == self._epoch and self._seg is seg and not self._pending:
                if not self._paused:
                    self._finish(seg, seg.pushed, interrupted=False)
