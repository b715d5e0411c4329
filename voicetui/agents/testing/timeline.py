"""Timeline-scripted fakes: a conversation written as a script of *when* things happen.

A :class:`Timeline` lists the user's speeches (VAD start and end, interim and final transcripts
at given seconds), the LLM's answers (per input: time to first token, duration, text, tool calls
with call ids) and the TTS's audio (per text: time to first byte, duration, audio length). Its
fakes follow the script on the loop clock, so under virtual time (``looptime``) a scenario of a
minute runs in milliseconds and every timestamp is exact::

    timeline = Timeline()
    timeline.user_speech(0.5, 2.5, "What's the weather in Tokyo?")
    timeline.llm(
        "Let me check.", tool_calls=[ScriptedToolCall("get_weather", {"location": "Tokyo"})]
    )
    timeline.tts(2.0)                           # the audio of "Let me check."
    timeline.llm("It is sunny.", input="sunny")  # answers the tool's output "sunny"
    timeline.tts(1.5)
    session = timeline.session()
    t0 = await timeline.run(session, WeatherAgent())

Times of user speech count from the moment the session starts reading the microphone
(``run`` returns that instant, in loop time). The LLM answers by *input*: the text of the last
item of the context it is given — the user's message, a tool's output, or the instructions of
``generate_reply(instructions=...)``; an input with no scripted answer gets an empty completion.
The TTS answers by text (each segment of a reply as a whole, stripped); a text with no scripted
audio fails with an error naming what is scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from .._aio import Chan, TaskSet, now
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
    FunctionToolCall,
    LLMStream,
    ToolChoice,
)
from ..metrics import TTSMetrics
from ..stt import STT, SpeechData, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities
from ..tts import TEXT_KEY, TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream
from ..tts import TTSCapabilities as _TTSCapabilities
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream
from ..voice.agent import Agent
from ..voice.agent_session import AgentSession
from ..voice.io import AudioInput
from .fake_io import FakeAudioOutput, FakeTextOutput

_FRAME = 0.01  # seconds per microphone frame
_VAD_INTERVAL = 0.05  # seconds between two VAD inference events while the user speaks


# --- the script ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserSpeech:
    """The user speaks from ``start`` to ``end`` (seconds on the timeline). The STT sends the
    final ``transcript`` ``stt_delay`` after the end and, with ``interim_interval``, a growing
    interim transcript every that many seconds while the user speaks. An empty transcript is
    voice without words (noise, a cough): the VAD hears it, the STT does not."""

    start: float
    end: float
    transcript: str
    stt_delay: float = 0.2
    interim_interval: float | None = None


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    call_id: str | None = None

    def to_tool_call(self, index: int) -> FunctionToolCall:
        args = self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)
        return FunctionToolCall(
            name=self.name, arguments=args, call_id=self.call_id or f"call_{index}"
        )


@dataclass(frozen=True)
class LLMReply:
    """The LLM's answer to ``input``: its first token ``ttft`` seconds after the request, all of
    ``content`` then, and the tool calls when the completion ends ``duration`` seconds after the
    request."""

    input: str
    content: str
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    ttft: float = 0.1
    duration: float = 0.3


@dataclass(frozen=True)
class TTSAudio:
    """The TTS's audio for ``input``: ``audio_duration`` seconds of audio, the first frame
    ``ttfb`` seconds after the text is complete, the last ``duration`` seconds after it."""

    input: str
    audio_duration: float
    ttfb: float = 0.2
    duration: float = 0.3


class Timeline:
    """A conversation script, and the fakes that play it (see the module's documentation)."""

    def __init__(self) -> None:
        self.speeches: list[UserSpeech] = []
        self.llm_replies: list[LLMReply] = []
        self.tts_audio: list[TTSAudio] = []
        self._last: UserSpeech | LLMReply | TTSAudio | None = None
        self._origin: asyncio.Future[float] | None = None

    # building the script
    def user_speech(
        self,
        start: float,
        end: float,
        transcript: str,
        *,
        stt_delay: float = 0.2,
        interim_interval: float | None = None,
    ) -> Timeline:
        if end <= start:
            raise ValueError(f"user speech must end after it starts ({start} → {end})")
        speech = UserSpeech(start, end, transcript, stt_delay, interim_interval)
        self.speeches.append(speech)
        self.speeches.sort(key=lambda s: s.start)
        self._last = speech
        return self

    def llm(
        self,
        content: str,
        tool_calls: Sequence[ScriptedToolCall] = (),
        *,
        input: str | None = None,
        ttft: float = 0.1,
        duration: float = 0.3,
    ) -> Timeline:
        """The LLM's answer to ``input`` (default: the transcript of the last user speech)."""
        if input is None:
            if not isinstance(self._last, UserSpeech):
                raise ValueError("give input=, or add the user speech this answers first")
            input = self._last.transcript
        reply = LLMReply(input, content, tuple(tool_calls), ttft, max(duration, ttft))
        self.llm_replies.append(reply)
        self._last = reply
        return self

    def tts(
        self,
        audio_duration: float,
        *,
        input: str | None = None,
        ttfb: float = 0.2,
        duration: float = 0.3,
    ) -> Timeline:
        """The TTS's audio for ``input`` (default: the content of the last LLM answer)."""
        if input is None:
            if not isinstance(self._last, LLMReply):
                raise ValueError("give input=, or add the LLM answer this speaks first")
            input = self._last.content
        audio = TTSAudio(input.strip(), audio_duration, ttfb, max(duration, ttfb))
        self.tts_audio.append(audio)
        self._last = audio
        return self

    # the clock
    def _origin_future(self) -> asyncio.Future[float]:
        if self._origin is None:
            self._origin = asyncio.get_running_loop().create_future()
        return self._origin

    def _start_clock(self) -> None:
        origin = self._origin_future()
        if not origin.done():
            origin.set_result(now())

    async def origin(self) -> float:
        """Loop time of second 0 of the timeline (when the session starts reading the mic)."""
        return await asyncio.shield(self._origin_future())

    @property
    def end_of_speeches(self) -> float:
        """Timeline second by which the STT and VAD have said everything about the speeches."""
        return max((s.end + max(s.stt_delay, 0.5) for s in self.speeches), default=0.0)

    # the fakes
    def session(
        self,
        *,
        can_pause_audio: bool = False,
        vad_min_silence: float = 0.5,
        **options: Any,
    ) -> AgentSession[Any]:
        """An :class:`AgentSession` on this timeline's fakes, with LiveKit's test defaults
        (endpointing 0.5–6.0 s, interruptions after 0.5 s, false interruptions after 2.0 s)
        unless ``options`` say otherwise. ``session.output.audio`` is a
        :class:`FakeAudioOutput` (pausable with ``can_pause_audio``)."""
        defaults: dict[str, Any] = {
            "min_endpointing_delay": 0.5,
            "max_endpointing_delay": 6.0,
            "min_interruption_duration": 0.5,
            "false_interruption_timeout": 2.0,
        }
        defaults.update(options)
        session: AgentSession[Any] = AgentSession(
            vad=TimelineVAD(self, min_silence_duration=vad_min_silence),
            stt=TimelineSTT(self),
            llm=TimelineLLM(self),
            tts=TimelineTTS(self),
            **defaults,
        )
        session.input.audio = TimelineAudioInput(self)
        session.output.audio = FakeAudioOutput(can_pause=can_pause_audio)
        session.output.transcription = FakeTextOutput()
        return session

    async def run(
        self, session: AgentSession[Any], agent: Agent, *, drain_delay: float = 0.2
    ) -> float:
        """Start ``session`` with ``agent``, play the user's speeches, let the agent finish
        what it has to say (``drain``), close. Returns the loop time of timeline second 0."""
        await session.start(agent)
        origin = await self.origin()
        await asyncio.sleep(max(0.0, origin + self.end_of_speeches - now()))
        await asyncio.sleep(drain_delay)
        with contextlib.suppress(RuntimeError):
            await session.drain()
        await session.aclose()
        out = session.output.audio
        if isinstance(out, FakeAudioOutput):
            await out.aclose()
        return origin


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
