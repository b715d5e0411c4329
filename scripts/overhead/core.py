"""Framework-agnostic parts of the overhead benchmark: the scripted conversation, and the logic of
every fake (user audio, VAD, STT, LLM, TTS, real-time audio sink) shared by both adapters.

This module imports nothing but the standard library and ``livekit.rtc`` (present in both the
project venv and the LiveKit scratch venv), so both workers run exactly the same fake logic; the
adapters only translate it to each framework's ABCs. Every time is the event loop's clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from livekit import rtc

VAD_START, VAD_INFERENCE, VAD_END = 0, 1, 2
STT_START, STT_INTERIM, STT_FINAL, STT_END = 0, 1, 2, 3


@dataclass(frozen=True)
class Timings:
    """The scripted conversation (identical for both frameworks)."""

    turns: int = 20
    warmup_turns: int = 1
    """Leading turns of each session left out of the latency statistics (first-use paths)."""
    frame_ms: int = 20
    sample_rate: int = 16000
    speech: float = 1.0
    """Seconds of user voice per turn."""
    gap: float = 0.4
    """Silence between the end of a reply's playout and the next user speech."""
    stt_interim: float = 0.3
    """An interim transcript after this much voice."""
    stt_final_delay: float = 0.1
    """The final transcript comes this long after the end of the voice."""
    vad_min_speech: float = 0.05
    vad_min_silence: float = 0.3
    endpointing: float = 0.5
    """min_endpointing_delay (from the end of the voice to the end of the turn)."""
    llm_ttft: float = 0.2
    llm_tokens_per_s: float = 50.0
    reply_words: int = 16
    tts_ttfb: float = 0.1
    """From the first text pushed into a TTS segment to its audio."""
    tts_audio: float = 1.0
    """Seconds of audio per reply."""
    tts_sample_rate: int = 24000
    tts_chunk_ms: int = 20
    tool_every: int = 5
    """Every n-th turn, the LLM first calls a tool, then answers with its result."""
    sink_buffer: float = 0.2
    """The audio sink accepts this much audio ahead of playback (back-pressure beyond it)."""
    turn_timeout: float = 10.0

    def is_tool_turn(self, turn: int) -> bool:
        return self.tool_every > 0 and turn % self.tool_every == self.tool_every - 1

    def ideal_latency(self, turn: int) -> float:
        """End of user voice → first reply audio if the framework took no time at all."""
        llm_calls = 2 if self.is_tool_turn(turn) else 1
        return self.endpointing + llm_calls * self.llm_ttft + self.tts_ttfb

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pcm(value: int, samples: int) -> bytes:
    return int(value).to_bytes(2, "little", signed=True) * samples


def is_voice(frame: rtc.AudioFrame) -> bool:
    """Scripted voice frames hold a constant non-zero sample; silence is all zeros."""
    return bool(frame.data[0])


async def sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


class User:
    """The scripted user: an endless real-time stream of 10/20 ms frames, silence unless
    :meth:`say` asked for an utterance. Frames are paced on absolute deadlines (no drift); a
    late loop catches up, like a device buffer would."""

    def __init__(self, t: Timings) -> None:
        self._t = t
        n = t.sample_rate * t.frame_ms // 1000
        self._dt = t.frame_ms / 1000
        self._voice = rtc.AudioFrame(_pcm(1000, n), t.sample_rate, 1, n)
        self._silence = rtc.AudioFrame(_pcm(0, n), t.sample_rate, 1, n)
        self._voice_left = 0
        self._said: asyncio.Future[float] | None = None
        self._closed = False
        self.transcript = ""
        self.tool_turn = False
        self.last_voice_end = 0.0
        """Nominal time the last voice frame of the current utterance was complete."""

    def say(self, transcript: str, *, tool_turn: bool) -> asyncio.Future[float]:
        """Speak ``transcript`` for ``Timings.speech`` seconds; the future gets the nominal time
        at which the voice ended."""
        self.transcript = transcript
        self.tool_turn = tool_turn
        self._voice_left = max(1, round(self._t.speech / self._dt))
        self._said = asyncio.get_running_loop().create_future()
        return self._said

    def close(self) -> None:
        self._closed = True

    async def frames(self) -> AsyncIterator[rtc.AudioFrame]:
        loop = asyncio.get_running_loop()
        dt = self._dt
        t0 = loop.time()
        k = 0
        while not self._closed:
            k += 1
            deadline = t0 + k * dt
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._voice_left > 0:
                self._voice_left -= 1
                if self._voice_left == 0:
                    self.last_voice_end = deadline
                    said = self._said
                    if said is not None and not said.done():
                        said.set_result(deadline)
                yield self._voice
            else:
                yield self._silence


class VadLogic:
    """Speech after ``vad_min_speech`` of voice frames, end after ``vad_min_silence`` of silence;
    an INFERENCE_DONE per frame. ``emit(kind, speech, silence, speaking, voice)``."""

    def __init__(self, t: Timings, emit: Callable[[int, float, float, bool, bool], None]) -> None:
        self._t = t
        self._emit = emit
        self._speaking = False
        self._speech = 0.0
        self._silence = 0.0

    def push(self, frame: rtc.AudioFrame) -> None:
        d = frame.samples_per_channel / frame.sample_rate
        voice = is_voice(frame)
        if voice:
            self._speech += d
            self._silence = 0.0
        else:
            self._silence += d
            if not self._speaking:
                self._speech = 0.0
        if not self._speaking and self._speech >= self._t.vad_min_speech - 1e-9:
            self._speaking = True
            self._emit(VAD_START, self._speech, 0.0, True, voice)
        elif self._speaking and self._silence >= self._t.vad_min_silence - 1e-9:
            self._speaking = False
            self._emit(VAD_END, self._speech, self._silence, False, voice)
            self._speech = 0.0
        self._emit(VAD_INFERENCE, self._speech, self._silence, self._speaking, voice)


class SttLogic:
    """A streaming STT: START at the first voice frame, an interim after ``stt_interim`` of
    voice, the final ``stt_final_delay`` after the nominal end of the voice, then END.
    ``emit(kind, text)``; the transcript is the one the user is saying."""

    def __init__(self, t: Timings, user: User, emit: Callable[[int, str], None]) -> None:
        self._t = t
        self._user = user
        self._emit = emit
        self._active = False
        self._voice = 0.0
        self._interim_sent = False
        self._timers: set[asyncio.TimerHandle] = set()

    def push(self, frame: rtc.AudioFrame) -> None:
        if is_voice(frame):
            if not self._active:
                self._active, self._voice, self._interim_sent = True, 0.0, False
                self._emit(STT_START, "")
            self._voice += frame.samples_per_channel / frame.sample_rate
            if not self._interim_sent and self._voice >= self._t.stt_interim - 1e-9:
                self._interim_sent = True
                words = self._user.transcript.split()
                self._emit(STT_INTERIM, " ".join(words[: max(1, len(words) // 2)]))
        elif self._active:
            self._active = False
            text = self._user.transcript
            loop = asyncio.get_running_loop()
            when = self._user.last_voice_end + self._t.stt_final_delay
            handle: asyncio.TimerHandle | None = None

            def final() -> None:
                if handle is not None:
                    self._timers.discard(handle)
                self._emit(STT_FINAL, text)
                self._emit(STT_END, "")

            handle = loop.call_at(when, final)
            self._timers.add(handle)

    def close(self) -> None:
        for h in self._timers:
            h.cancel()
        self._timers.clear()


class LlmLogic:
    """Replies: ``reply_words`` words after ``llm_ttft``, then one word-token every
    1/``llm_tokens_per_s``. On a tool turn the first call returns only a tool call (after the
    TTFT); the call that follows the tool output answers."""

    def __init__(self, t: Timings, user: User) -> None:
        self._t = t
        self._user = user
        self.calls = 0

    async def run(
        self,
        after_tool_output: bool,
        emit_text: Callable[[str], None],
        emit_tool_call: Callable[[str, str, str], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.calls += 1
        t = self._t
        await sleep_until(start + t.llm_ttft)
        if self._user.tool_turn and not after_tool_output:
            emit_tool_call(f"call_{self.calls}", "lookup_weather", '{"city": "Paris"}')
            return
        words = [f"word{i}" for i in range(t.reply_words)]
        words[-1] += "."
        for i, w in enumerate(words):
            if i > 0:
                await sleep_until(start + t.llm_ttft + i / t.llm_tokens_per_s)
            emit_text(w if i == 0 else " " + w)


class TtsLogic:
    """A streaming TTS: ``tts_audio`` seconds of audio per segment, ``tts_ttfb`` after the
    segment's first text (in ``tts_chunk_ms`` chunks, all at once). Feed it with :meth:`text`,
    :meth:`flush` and await :meth:`finish`; ``emit(pcm_bytes, first)`` outputs audio."""

    def __init__(self, t: Timings) -> None:
        self._t = t
        n = t.tts_sample_rate * t.tts_chunk_ms // 1000
        self._chunk = _pcm(500, n)
        self._chunks = max(1, round(t.tts_audio * 1000 / t.tts_chunk_ms))

    async def run(
        self,
        items: AsyncIterator[str | None],
        emit: Callable[[bytes, bool], None],
        on_segment_end: Callable[[], None] | None = None,
    ) -> None:
        """``items``: text deltas, ``None`` for a flush (segment end)."""
        loop = asyncio.get_running_loop()
        producer: asyncio.Task[None] | None = None

        async def produce(at: float) -> None:
            await sleep_until(at)
            for i in range(self._chunks):
                emit(self._chunk, i == 0)

        try:
            async for item in items:
                if item is None:
                    if producer is not None:
                        await producer
                        producer = None
                        if on_segment_end is not None:
                            on_segment_end()
                elif item and producer is None:
                    producer = asyncio.create_task(produce(loop.time() + self._t.tts_ttfb))
            if producer is not None:
                await producer
                producer = None
                if on_segment_end is not None:
                    on_segment_end()
        finally:
            if producer is not None:
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)


@dataclass
class SinkStats:
    segments: int = 0
    interrupted: int = 0
    frames: int = 0


class Sink:
    """A real-time audio sink: accepts ``sink_buffer`` seconds ahead of playback, plays each
    frame for its duration (absolute deadlines within a segment). ``started(t)`` when the
    first frame of a segment is taken for playback, ``finished(position, interrupted)`` once
    per segment."""

    def __init__(
        self,
        t: Timings,
        started: Callable[[float], None],
        finished: Callable[[float, bool], None],
    ) -> None:
        self._buffer = t.sink_buffer
        self._started_cb = started
        self._finished_cb = finished
        self._queue: deque[rtc.AudioFrame] = deque()
        self._queued = 0.0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._open = False
        self._flushed = False
        self._playing = False
        self._played = 0.0
        self._epoch = 0
        self._player: asyncio.Task[None] | None = None
        self.stats = SinkStats()
        self.next_start: asyncio.Future[float] | None = None
        """Set by the driver: resolved with the time the next segment starts playing."""
        self.next_end: asyncio.Future[bool] | None = None
        """Set by the driver: resolved when the next segment ends (True: interrupted)."""

    async def capture(self, frame: rtc.AudioFrame) -> None:
        if self._player is None:
            self._player = asyncio.create_task(self._play(), name="bench.Sink.play")
        while self._queued >= self._buffer:
            self._space.clear()
            await self._space.wait()
        self._open = True
        self._queue.append(frame)
        self._queued += frame.samples_per_channel / frame.sample_rate
        self._wake.set()

    def flush(self) -> None:
        if self._open:
            self._flushed = True
            self._wake.set()

    def clear(self) -> None:
        self._queue.clear()
        self._queued = 0.0
        self._epoch += 1
        self._space.set()
        if self._open:
            self._finish(interrupted=True)

    def _finish(self, *, interrupted: bool) -> None:
        played = self._played
        self._played = 0.0
        self._open = self._flushed = self._playing = False
        self.stats.segments += 1
        self.stats.interrupted += int(interrupted)
        self._finished_cb(played, interrupted)
        end = self.next_end
        if end is not None and not end.done():
            end.set_result(interrupted)

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = 0.0
        while True:
            if not self._queue:
                if self._flushed and self._open:
                    self._finish(interrupted=False)
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            frame = self._queue.popleft()
            d = frame.samples_per_channel / frame.sample_rate
            now = loop.time()
            if not self._playing:
                self._playing = True
                next_at = now
                self._started_cb(now)
                start = self.next_start
                if start is not None and not start.done():
                    start.set_result(now)
            next_at = max(next_at, now) + d
            epoch = self._epoch
            await sleep_until(next_at)
            if epoch == self._epoch:
                self._played += d
                self.stats.frames += 1
                self._queued = max(0.0, self._queued - d)
            if self._queued < self._buffer:
                self._space.set()

    async def aclose(self) -> None:
        if self._player is not None:
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)


@dataclass
class TurnRecord:
    session: int
    turn: int
    tool: bool
    added: float | None
    """Seconds; None when no reply came within ``turn_timeout``."""
    e2e: float | None


@dataclass
class SessionResult:
    turns: list[TurnRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def drive(
    index: int, t: Timings, user: User, sink: Sink, result: SessionResult, start_delay: float
) -> None:
    """Plays the user's side of the conversation and records each turn's added latency."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start_delay)
    for turn in range(t.turns):
        tool = t.is_tool_turn(turn)
        sink.next_start = loop.create_future()
        sink.next_end = loop.create_future()
        said = user.say(f"this is request number {turn} from user {index}", tool_turn=tool)
        end_of_voice = await said
        try:
            first_audio = await asyncio.wait_for(asyncio.shield(sink.next_start), t.turn_timeout)
        except TimeoutError:
            result.turns.append(TurnRecord(index, turn, tool, None, None))
            result.errors.append(f"session {index} turn {turn}: no reply in {t.turn_timeout}s")
            await asyncio.sleep(t.gap)
            continue
        e2e = first_audio - end_of_voice
        result.turns.append(TurnRecord(index, turn, tool, e2e - t.ideal_latency(turn), e2e))
        try:
            await asyncio.wait_for(asyncio.shield(sink.next_end), t.turn_timeout)
        except TimeoutError:
            result.errors.append(f"session {index} turn {turn}: reply never finished playing")
        await asyncio.sleep(t.gap)
