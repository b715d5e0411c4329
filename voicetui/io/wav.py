"""WAV files as the session's audio: ``--input-wav`` feeds a file as the mic, ``--output-wav``
writes what the agent says. For headless runs, demos and regression tests.

Input files are anything libsndfile reads (``agents.audio.read_audio``), mixed down to mono and
converted to the rate asked for; output files are mono 16-bit PCM. Pacing uses the loop clock, so tests can run these on
virtual time.
"""

from __future__ import annotations

import asyncio
import wave
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import numpy as np
from livekit import rtc

from ..agents.audio import (
    Resampler,
    as_array,
    check_audio,
    frame_duration,
    frame_mono,
    make_frame,
    read_audio,
)
from ..agents.utils.aio import now
from ..agents.voice.io import AudioInput, AudioOutput


def check_wav(path: str | Path) -> None:
    """Raise (ValueError, OSError: the message names the file) unless ``path`` is audio with
    samples in it: what ``--input-wav`` is checked with before any model loads."""
    check_audio(path)


class WavAudioInput(AudioInput):
    """A WAV file as the user's microphone, in frames of ``frame_duration``.

    ``realtime``: paced like a live mic (else as fast as the session reads). ``loop``: start
    over at the end. ``then``: after the file, ``"silence"`` goes on with silent frames (always
    paced in real time, so the session's endpointing can run: a file fed as fast as possible
    still gets its answer) until closed; ``"end"`` ends the iteration (the session then stops
    listening). ``sample_rate``: convert to this rate (None keeps the file's)."""

    def __init__(
        self,
        path: str | Path,
        *,
        realtime: bool = True,
        loop: bool = False,
        then: Literal["silence", "end"] = "silence",
        sample_rate: int | None = None,
        frame_duration: float = 0.01,
    ) -> None:
        super().__init__(label=f"WavAudioInput({Path(path).name})")
        if then not in ("silence", "end"):
            raise ValueError('then must be "silence" or "end"')
        self._pcm, self._rate = read_audio(path, sample_rate)
        self._realtime = realtime
        self._loop = loop
        self._then = then
        self._frame_samples = max(1, round(self._rate * frame_duration))
        self._closed = False

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def duration(self) -> float:
        return self._pcm.size / self._rate

    def close(self) -> None:
        """End the iteration (at the next frame)."""
        self._closed = True

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        n, rate = self._frame_samples, self._rate
        t0 = now()
        sent = 0  # samples yielded so far (for pacing)

        async def pace(realtime: bool) -> None:
            if realtime:
                delay = t0 + sent / rate - now()
                await asyncio.sleep(max(0.0, delay))
            else:
                await asyncio.sleep(0)

        while not self._closed:
            for i in range(0, self._pcm.size, n):
                if self._closed:
                    return
                chunk = self._pcm[i : i + n]
                await pace(self._realtime)
                sent += chunk.size
                yield make_frame(chunk, rate)
            if not self._loop:
                break
        if self._then == "end":
            return
        t0, sent = now(), 0  # silence is paced from here on
        silent = np.zeros(n, dtype=np.int16)
        while not self._closed:
            sent += n
            await pace(True)
            yield make_frame(silent, rate)


class WavAudioOutput(AudioOutput):
    """Writes the agent's audio to a WAV file (mono 16-bit at ``sample_rate``), segment after
    segment.

    ``realtime=False``: a segment "plays" as it is captured — ``playback_started`` at its first
    frame, ``playback_finished`` at ``flush()`` with its full duration (``clear_buffer()``
    finishes it as interrupted, with everything captured so far counted as played).
    ``realtime=True``: frames are played on the loop clock (``buffer_duration`` of
    back-pressure), written when played; ``clear_buffer()`` drops the rest and reports the played
    duration; pause/resume are supported."""

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int = 24000,
        realtime: bool = False,
        buffer_duration: float = 0.2,
    ) -> None:
        super().__init__(
            label=f"WavAudioOutput({Path(path).name})", sample_rate=sample_rate, can_pause=realtime
        )
        self._path = Path(path)
        self._writer = wave.open(str(self._path), "wb")
        self._writer.setnchannels(1)
        self._writer.setsampwidth(2)
        self._writer.setframerate(sample_rate)
        self._realtime = realtime
        self._buffer_duration = buffer_duration
        self._written = 0.0
        # the current segment
        self._open = False
        self._started = False
        self._flushed = False
        self._played = 0.0
        self._queue: deque[rtc.AudioFrame] = deque()
        self._queued = 0.0
        self._paused = False
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._player: asyncio.Task[None] | None = None
        self._epoch = 0
        self._resampler: Resampler | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def written_duration(self) -> float:
        """Seconds of audio in the file so far."""
        return self._written

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        frame = self._convert(frame)
        self._open = True
        if not self._realtime:
            self._take(frame)
            return
        if self._player is None:
            self._player = asyncio.create_task(self._play(), name="WavAudioOutput.play")
        epoch = self._epoch
        while self._queued >= self._buffer_duration and epoch == self._epoch:
            self._space.clear()
            await self._space.wait()
        if epoch != self._epoch:
            return  # cleared meanwhile
        self._queue.append(frame)
        self._queued += frame_duration(frame)
        self._wakeup.set()

    def flush(self) -> None:
        super().flush()
        if self._resampler is not None and self._open:
            tail = self._resampler.flush()
            if tail.size:
                self._take(make_frame(tail, self._resampler.output_rate))
        self._resampler = None
        if not self._open:
            return
        if not self._realtime:
            self._finish(interrupted=False)
        else:
            self._flushed = True
            self._wakeup.set()

    def clear_buffer(self) -> None:
        self._capturing = False
        self._queue.clear()
        self._queued = 0.0
        self._epoch += 1
        self._space.set()
        if self._open:
            self._finish(interrupted=True)

    def pause(self) -> None:
        if not self._realtime:
            super().pause()
        self._paused = True

    def resume(self) -> None:
        if not self._realtime:
            super().resume()
        self._paused = False
        self._wakeup.set()

    async def aclose(self) -> None:
        if self._player is not None:
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)
            self._player = None
        if self._open:
            self._finish(interrupted=True)
        self._writer.close()

    def _take(self, frame: rtc.AudioFrame) -> None:
        """A frame to play now (instant mode) or to queue without waiting (flush's tail)."""
        if self._realtime:
            self._queue.append(frame)
            self._queued += frame_duration(frame)
            self._wakeup.set()
            return
        if not self._started:
            self._started = True
            self.on_playback_started(created_at=now())
        self._write(frame)
        self._played += frame_duration(frame)

    def _convert(self, frame: rtc.AudioFrame) -> rtc.AudioFrame:
        """Mono at the file's rate (the session already sends that; other callers may not)."""
        rate = self.sample_rate or frame.sample_rate
        if frame.sample_rate == rate and frame.num_channels == 1:
            return frame
        pcm = frame_mono(frame)
        if frame.sample_rate != rate:
            if self._resampler is None or self._resampler.input_rate != frame.sample_rate:
                self._resampler = Resampler(frame.sample_rate, rate)
            pcm = self._resampler.push(pcm)
        return make_frame(pcm, rate)

    def _write(self, frame: rtc.AudioFrame) -> None:
        self._writer.writeframes(as_array(frame).tobytes())
        self._written += frame_duration(frame)

    def _finish(self, *, interrupted: bool) -> None:
        played = self._played
        self._open = self._started = self._flushed = False
        self._played = 0.0
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    async def _play(self) -> None:
        while True:
            if self._paused or not self._queue:
                if not self._queue and self._flushed and self._open and not self._paused:
                    self._finish(interrupted=False)
                    continue
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            frame = self._queue[0]
            if not self._started:
                self._started = True
                self.on_playback_started(created_at=now())
            epoch = self._epoch
            d = frame_duration(frame)
            await asyncio.sleep(d)
            if epoch != self._epoch:
                continue  # cleared while it played: not heard to the end
            self._queue.popleft()
            self._queued = max(0.0, self._queued - d)
            self._write(frame)
            self._played += d
            if self._queued < self._buffer_duration:
                self._space.set()
