"""Audio I/O that runs on the loop's clock: an output that "plays" frames in real time (and
reports exactly how much was heard), an input that replays scripted speech and silence, and a
text output that records what it was given."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
from livekit import rtc

from ..audio import frame_duration, make_frame, silence
from ..utils.aio import Chan, now
from ..voice.io import AudioInput, AudioOutput, TextOutput


class FakeAudioOutput(AudioOutput):
    """Plays captured frames in real time under the loop clock. ``capture_frame`` applies
    back-pressure beyond ``buffer_duration`` seconds of queued audio. Records every segment.
    ``can_pause=False`` makes it an output that cannot pause (like many real transports)."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        buffer_duration: float = 0.2,
        can_pause: bool = True,
    ) -> None:
        super().__init__(label="FakeAudioOutput", sample_rate=sample_rate, can_pause=can_pause)
        self._queue: deque[rtc.AudioFrame] = deque()
        self._queued = 0.0
        self._buffer_duration = buffer_duration
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._paused = False
        self._segment_played = 0.0
        self._segment_started = False
        self._segment_flushed = False
        self._segment_open = False
        self._epoch = 0
        self._player: asyncio.Task[None] | None = None
        self.played_frames: list[rtc.AudioFrame] = []
        self.segments: list[tuple[float, bool]] = []
        """(played duration, interrupted) per finished segment"""

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._player is None:
            self._player = asyncio.create_task(self._play(), name="FakeAudioOutput.play")
        while self._queued >= self._buffer_duration:
            self._space.clear()
            await self._space.wait()
        self._segment_open = True
        self._queue.append(frame)
        self._queued += frame_duration(frame)
        self._wakeup.set()

    def flush(self) -> None:
        super().flush()
        if self._segment_open:
            self._segment_flushed = True
            self._wakeup.set()

    def clear_buffer(self) -> None:
        self._queue.clear()
        self._queued = 0.0
        self._epoch += 1
        self._space.set()
        self._capturing = False
        if self._segment_open:
            self._finish(interrupted=True)

    def pause(self) -> None:
        if not self.can_pause:
            super().pause()  # raises
        self._paused = True

    def resume(self) -> None:
        if not self.can_pause:
            super().resume()  # raises
        self._paused = False
        self._wakeup.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def _finish(self, *, interrupted: bool) -> None:
        played = self._segment_played
        self._segment_played = 0.0
        self._segment_started = False
        self._segment_flushed = False
        self._segment_open = False
        self.segments.append((played, interrupted))
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    async def _play(self) -> None:
        while True:
            if self._paused or not self._queue:
                if not self._queue and self._segment_flushed and self._segment_open:
                    self._finish(interrupted=False)
                    continue
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            frame = self._queue.popleft()
            if not self._segment_started:
                self._segment_started = True
                self.on_playback_started(created_at=now())
            d = frame_duration(frame)
            epoch = self._epoch
            await asyncio.sleep(d)
            if epoch == self._epoch:  # not cleared while this frame played
                self._segment_played += d
                self.played_frames.append(frame)
                self._queued = max(0.0, self._queued - d)
            if self._queued < self._buffer_duration:
                self._space.set()

    async def aclose(self) -> None:
        if self._player is not None:
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)


@dataclass
class Utterance:
    """Scripted user audio: ``speech`` seconds of voice (after ``silence_before`` seconds)."""

    speech: float
    silence_before: float = 0.0
    transcript: str = ""


class FakeAudioInput(AudioInput):
    """Produces 10 ms frames in real time: silence, then each utterance as a loud tone, then
    silence forever (until closed). Voice frames carry the transcript in ``userdata``."""

    def __init__(self, utterances: Sequence[Utterance] = (), *, sample_rate: int = 16000) -> None:
        super().__init__(label="FakeAudioInput")
        self._utterances = list(utterances)
        self._sample_rate = sample_rate
        self._closed = False
        self._extra: Chan[Utterance] = Chan()

    def add(self, utterance: Utterance) -> None:
        self._extra.send_nowait(utterance)

    def close(self) -> None:
        self._closed = True

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        sr = self._sample_rate
        step = 0.01
        n = sr // 100
        t = np.arange(n) / sr
        voice = (np.sin(2 * np.pi * 300.0 * t) * 12000).astype(np.int16)
        queue = deque(self._utterances)
        while not self._closed:
            if not queue:
                while not self._extra._items and not self._closed:
                    await asyncio.sleep(step)
                    yield silence(step, sr)
                if self._extra._items:
                    queue.append(self._extra._items.popleft())
                continue
            u = queue.popleft()
            for _ in range(round(u.silence_before / step)):
                await asyncio.sleep(step)
                yield silence(step, sr)
            for _ in range(round(u.speech / step)):
                await asyncio.sleep(step)
                f = make_frame(voice, sr)
                f.userdata["transcript"] = u.transcript
                yield f


class FakeTextOutput(TextOutput):
    def __init__(self) -> None:
        super().__init__(label="FakeTextOutput")
        self.messages: list[str] = []
        self._current = ""
        self.captured: list[tuple[float, str]] = []

    async def capture_text(self, text: str) -> None:
        self._current += text
        self.captured.append((now(), text))

    def flush(self) -> None:
        self.messages.append(self._current)
        self._current = ""
