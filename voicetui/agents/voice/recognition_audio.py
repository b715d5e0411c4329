"""The audio a listening pipeline keeps beside its streams: when the audio fed to the VAD
arrived (to date its events by the audio they are about), and the current turn's audio for an
end-of-turn model."""

from __future__ import annotations

import asyncio
import bisect
from collections import deque

import numpy as np
from livekit import rtc

from ..audio import captured_at, frame_duration, frame_mono
from ..utils.aio import now

_PRE_SPEECH_AUDIO = 0.5  # s of audio before the voice the end-of-turn model hears too


class AudioClock:
    """When the audio fed to the VAD arrived: maps a position in the current VAD stream's
    audio (seconds) to the loop time its samples came in, for the last half minute."""

    _KEEP = 30.0

    def __init__(self) -> None:
        self._fed = 0.0  # seconds of audio fed so far (all streams)
        self._stream_base = 0.0  # where the current stream's audio starts in that count
        # a mark per frame: the seconds fed after it and when it arrived, as two deques of
        # floats rather than one of tuples (a tuple per frame is a tracked allocation the
        # garbage collector counts; 50 a second per session set off most young collections)
        self._mark_fed: deque[float] = deque()
        self._mark_at: deque[float] = deque()
        self.input_rate = 0

    def fed(self, frame: rtc.AudioFrame) -> None:
        self.input_rate = frame.sample_rate
        self._fed += frame_duration(frame)
        at = captured_at(frame)  # when the backend captured it; else now, as it arrives
        self._mark_fed.append(self._fed)
        self._mark_at.append(now() if at is None else at)
        oldest = self._fed - self._KEEP
        while self._mark_fed[0] < oldest:
            self._mark_fed.popleft()
            self._mark_at.popleft()

    def new_stream(self, queued: float) -> None:
        self._stream_base = self._fed - queued

    def time_of(self, position: float) -> float | None:
        """The loop time of ``position`` seconds into the current stream's audio (a frame's
        samples are spread back from its arrival), None if it is not remembered."""
        target = self._stream_base + position
        fed = self._mark_fed
        if not fed or target < fed[0] - self._KEEP or target > fed[-1] + 0.05:
            return None
        i = min(bisect.bisect_left(fed, target), len(fed) - 1)
        return self._mark_at[i] - max(0.0, fed[i] - target)


class TurnAudio:
    """The audio of the current user turn for the end-of-turn model: from a little before the
    voice started, the latest ``keep`` seconds."""

    _IDLE = 1.5  # s kept between turns: the pre-speech audio and the VAD's start lag

    def __init__(self, keep: float) -> None:
        self._keep = keep
        self._frames: deque[rtc.AudioFrame] = deque()
        self._duration = 0.0
        self._in_turn = False

    def _trim(self, limit: float) -> None:
        while self._frames and self._duration - frame_duration(self._frames[0]) >= limit:
            self._duration -= frame_duration(self._frames.popleft())

    def push(self, frame: rtc.AudioFrame) -> None:
        self._frames.append(frame)
        self._duration += frame_duration(frame)
        self._trim(self._keep if self._in_turn else self._IDLE)

    def turn_started(self, voiced: float) -> None:
        """The VAD heard a voice start ``voiced`` seconds of audio ago."""
        if not self._in_turn:
            self._in_turn = True
            self._trim(voiced + _PRE_SPEECH_AUDIO)

    def turn_ended(self) -> None:
        self._in_turn = False
        self._trim(self._IDLE)

    def samples(self) -> tuple[np.ndarray, int]:
        """int16 mono and its rate (the frames' rate; a rate change keeps the latest run)."""
        if not self._frames:
            return np.zeros(0, dtype=np.int16), 16000
        rate = self._frames[-1].sample_rate
        run: list[np.ndarray] = []
        for f in reversed(self._frames):
            if f.sample_rate != rate:
                break
            run.append(frame_mono(f))
        return np.concatenate(run[::-1]), rate


def finished_result(task: asyncio.Task[float | None] | None) -> float | None:
    """What a finished prediction said (None: none, still running, cancelled or failed)."""
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()
