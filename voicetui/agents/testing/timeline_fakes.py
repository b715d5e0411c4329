"""The fakes that play a :class:`~voicetui.agents.testing.timeline.Timeline`: microphone, VAD,
STT, LLM and TTS, each following the script on the loop clock (see ``timeline.py``)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import rtc

from .._stream import FlushSentinel
from ..audio import make_frame, silence
from ..exceptions import TTSError
from ..llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChatMessage,
    ChoiceDelta,
    FunctionCallOutput,
    FunctionTool,
    LLMStream,
    ToolChoice,
)
from ..metrics import TTSMetrics
from ..stt import STT, SpeechData, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities
from ..tts import TEXT_KEY, TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream
from ..tts import TTSCapabilities as _TTSCapabilities
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import Chan, TaskSet, now
from ..vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream
from ..voice.io import AudioInput

if TYPE_CHECKING:
    from .timeline import LLMReply, Timeline, TTSAudio

_FRAME = 0.01  # seconds per microphone frame
_VAD_INTERVAL = 0.05  # seconds between two VAD inference events while the user speaks


# --- microphone ---------------------------------------------------------------------------------
class TimelineAudioInput(AudioInput):
    """10 ms frames of silence in real time; the first one starts the timeline's clock. (The
    timeline's VAD and STT follow the script, not the audio.)"""

    def __init__(self, timeline: Timeline, *, sample_rate: int = 16000) -> None:
        super().__init__(label="TimelineAudioInput")
        self._timeline = timeline
        self._sample_rate = sample_rate

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        self._timeline._start_clock()
        start = now()
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * _FRAME - now()))
            yield silence(_FRAME, self._sample_rate)


async def _drain(stream_input: AsyncIterator[Any]) -> None:
    async for _ in stream_input:
        pass


# --- VAD ----------------------------------------------------------------------------------------
class TimelineVAD(VAD):
    """START_OF_SPEECH ``min_speech_duration`` into each speech (dated back to its start, like
    a real VAD's), INFERENCE_DONE every 50 ms while it lasts, and
    END_OF_SPEECH ``min_silence_duration`` after its end (reporting that silence, as a real VAD
    does). A stream opened during a speech reports it from then on."""

    def __init__(
        self,
        timeline: Timeline,
        *,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.5,
    ) -> None:
        super().__init__(capabilities=VADCapabilities(update_interval=_VAD_INTERVAL))
        self._timeline = timeline
        self.min_speech_duration = min_speech_duration
        self.min_silence_duration = min_silence_duration

    def stream(self) -> VADStream:
        return _TimelineVADStream(self)


class _TimelineVADStream(VADStream):
    async def _run(self) -> None:
        vad = self._vad
        assert isinstance(vad, TimelineVAD)
        drain = asyncio.create_task(_drain(self._input.__aiter__()))
        try:
            origin = await vad._timeline.origin()
            opened = now() - origin
            for s in vad._timeline.speeches:
                eos = s.end + vad.min_silence_duration
                if eos <= opened:
                    continue
                # reported once min_speech_duration of it is heard, as a real VAD does
                heard = min(vad.min_speech_duration, s.end - s.start)
                await _sleep_until(origin + max(s.start + heard, opened))
                self._emit_event(VADEventType.START_OF_SPEECH, now() - origin - s.start, 0.0, True)
                k = 1
                while (t := s.start + k * _VAD_INTERVAL) < s.end - 1e-9:
                    k += 1
                    if t <= opened:
                        continue
                    await _sleep_until(origin + t)
                    # (rounded: 10 x 0.05 must be 0.5, not 0.49999)
                    self._emit_event(VADEventType.INFERENCE_DONE, round(t - s.start, 6), 0.0, True)
                await _sleep_until(origin + eos)
                self._emit_event(
                    VADEventType.END_OF_SPEECH, s.end - s.start, vad.min_silence_duration, False
                )
                self._emit_event(
                    VADEventType.INFERENCE_DONE, s.end - s.start, vad.min_silence_duration, False
                )
            await drain
        finally:
            drain.cancel()

    def _emit_event(
        self, kind: VADEventType, speech: float, silence_for: float, speaking: bool
    ) -> None:
        self._emit(
            VADEvent(
                kind,
                0,
                now(),
                speech,
                silence_for,
                [],
                1.0 if speaking else 0.0,
                speaking=speaking,
            )
        )


async def _sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - now()))


# --- STT ----------------------------------------------------------------------------------------
class TimelineSTT(STT):
    """Streaming: START_OF_SPEECH at each worded speech's start, interim transcripts every
    ``interim_interval`` (the first words, more each time), the final ``stt_delay`` after the
    end, then END_OF_SPEECH. Speeches without words produce nothing."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=True))
        self._timeline = timeline

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        """The transcript of the last worded speech that has ended by now."""
        origin = await self._timeline.origin()
        heard = [
            s.transcript
            for s in self._timeline.speeches
            if s.transcript.strip() and s.end <= now() - origin
        ]
        return _transcript(SpeechEventType.FINAL_TRANSCRIPT, heard[-1] if heard else "")

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        return _TimelineSTTStream(self, language=language, conn_options=conn_options)


class _TimelineSTTStream(SpeechStream):
    async def _run(self) -> None:
        stt = self._stt
        assert isinstance(stt, TimelineSTT)
        drain = asyncio.create_task(_drain(self._input.__aiter__()))
        try:
            origin = await stt._timeline.origin()
            opened = now() - origin
            for s in stt._timeline.speeches:
                final_at = s.end + s.stt_delay
                if not s.transcript.strip() or final_at <= opened:
                    continue
                await _sleep_until(origin + max(s.start, opened))
                self._emit(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                words = s.transcript.split()
                if s.interim_interval:
                    t = s.start + s.interim_interval
                    while t < s.end:
                        if t >= opened:
                            await _sleep_until(origin + t)
                            heard = (t - s.start) / (s.end - s.start)
                            partial = " ".join(words[: max(1, round(len(words) * heard))])
                            self._emit(_transcript(SpeechEventType.INTERIM_TRANSCRIPT, partial))
                        t += s.interim_interval
                await _sleep_until(origin + final_at)
                self._emit(_transcript(SpeechEventType.FINAL_TRANSCRIPT, s.transcript))
                self._emit(SpeechEvent(SpeechEventType.END_OF_SPEECH))
            await drain
        finally:
            drain.cancel()


def _transcript(kind: SpeechEventType, text: str) -> SpeechEvent:
    return SpeechEvent(kind, [SpeechData(text=text, language="en", confidence=1.0)])


# --- LLM ----------------------------------------------------------------------------------------
@dataclass
class TimelineLLMCall:
    input: str
    chat_ctx: ChatContext
    tools: list[FunctionTool]
    tool_choice: ToolChoice | None
    started_at: float


def llm_input_of(chat_ctx: ChatContext) -> str:
    """What :class:`TimelineLLM` answers: the text of the context's last item (a message's
    text, a tool output), or "" for anything else."""
    if not chat_ctx.items:
        return ""
    last = chat_ctx.items[-1]
    if isinstance(last, ChatMessage):
        return (last.text_content or "").strip()
    if isinstance(last, FunctionCallOutput):
        return last.output.strip()
    return ""


class TimelineLLM(LLM):
    """Answers each request by its input (see :func:`llm_input_of`) with the timeline's
    scripted reply; answers to the same input are used in order, the last one repeatedly.
    Every request is recorded in :attr:`calls`."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self._timeline = timeline
        self._used: dict[str, int] = defaultdict(int)
        self.calls: list[TimelineLLMCall] = []

    @property
    def model(self) -> str:
        return "timeline-llm"

    @property
    def provider(self) -> str:
        return "fake"

    def reply_for(self, text: str) -> LLMReply | None:
        replies = [r for r in self._timeline.llm_replies if r.input.strip() == text]
        if not replies:
            return None
        i = min(self._used[text], len(replies) - 1)
        self._used[text] += 1
        return replies[i]

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        text = llm_input_of(chat_ctx)
        self.calls.append(
            TimelineLLMCall(text, chat_ctx.copy(), list(tools or []), tool_choice, now())
        )
        return _TimelineLLMStream(
            self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice
        )


class _TimelineLLMStream(LLMStream):
    async def _run(self) -> None:
        llm = self._llm
        assert isinstance(llm, TimelineLLM)
        started = now()
        reply = llm.reply_for(llm_input_of(self._chat_ctx))
        if reply is None:
            return
        await _sleep_until(started + reply.ttft)
        if reply.content:
            self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(content=reply.content)))
        await _sleep_until(started + reply.duration)
        if reply.tool_calls and self._tool_choice != "none":
            calls = [c.to_tool_call(i + 1) for i, c in enumerate(reply.tool_calls)]
            self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(tool_calls=calls)))


# --- TTS ----------------------------------------------------------------------------------------
class TimelineTTS(TTS):
    """A streaming TTS: each segment's text (up to ``flush()`` or the end of input), stripped,
    is looked up in the timeline's scripted audio; the audio comes ``ttfb`` after the text is
    complete, in 50 ms frames spread until ``duration``. Emits its own :class:`TTSMetrics`
    (a streaming TTS must: the session only relays them)."""

    FRAME = 0.05

    def __init__(self, timeline: Timeline, *, sample_rate: int = 24000) -> None:
        super().__init__(capabilities=_TTSCapabilities(streaming=True), sample_rate=sample_rate)
        self._timeline = timeline
        self.requests: list[str] = []

    def audio_for(self, text: str) -> TTSAudio:
        key = text.strip()
        for audio in self._timeline.tts_audio:
            if audio.input == key:
                return audio
        known = ", ".join(repr(a.input) for a in self._timeline.tts_audio) or "none"
        raise TTSError(f"TimelineTTS: no audio scripted for {key!r} (scripted: {known})")

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        raise TypeError("TimelineTTS only streams")

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        return _TimelineTTSStream(self, conn_options=conn_options)


class _TimelineTTSStream(SynthesizeStream):
    async def _run(self) -> None:
        tts = self._tts
        assert isinstance(tts, TimelineTTS)
        tasks = TaskSet("TimelineTTS")
        segments: deque[Chan[rtc.AudioFrame]] = deque()
        ready = asyncio.Event()
        ended = False
        text = ""

        def close_segment() -> None:
            nonlocal text
            if text.strip():
                tts.requests.append(text.strip())
                ch: Chan[rtc.AudioFrame] = Chan()
                segments.append(ch)
                tasks.create(self._synthesize(tts, text, ch), name="TimelineTTS.segment")
                ready.set()
            text = ""

        async def read_text() -> None:
            nonlocal text, ended
            async for item in self._input:
                if isinstance(item, FlushSentinel):
                    close_segment()
                else:
                    text += item
            close_segment()
            ended = True
            ready.set()

        reader = tasks.create(read_text(), name="TimelineTTS.text")
        try:
            while True:  # segments play in order; each one's frames as they are made
                if not segments:
                    if ended:
                        break
                    ready.clear()
                    await ready.wait()
                    continue
                async for frame in segments.popleft():
                    self._emit(SynthesizedAudio(frame=frame, request_id=""))
            await reader
        finally:
            await tasks.aclose()

    async def _synthesize(self, tts: TimelineTTS, text: str, out: Chan[rtc.AudioFrame]) -> None:
        started = now()
        try:
            audio = tts.audio_for(text)
            n = max(1, round(audio.audio_duration / tts.FRAME))
            t = np.arange(round(tts.FRAME * tts.sample_rate)) / tts.sample_rate
            tone = (np.sin(2 * np.pi * 220.0 * t) * 8000).astype(np.int16)
            await _sleep_until(started + audio.ttfb)
            ttfb = now() - started
            spread = max(0.0, audio.duration - audio.ttfb) / n
            for i in range(n):
                if i:
                    await _sleep_until(started + audio.ttfb + i * spread)
                frame = make_frame(tone, tts.sample_rate)
                if i == 0:
                    frame.userdata[TEXT_KEY] = text
                out.send_nowait(frame)
            tts.emit(
                "metrics_collected",
                TTSMetrics(
                    label=tts.label,
                    request_id=f"timeline_{len(tts.requests)}",
                    ttfb=ttfb,
                    duration=now() - started,
                    audio_duration=n * tts.FRAME,
                    characters_count=len(text),
                    streamed=True,
                ),
            )
        finally:
            out.close()
