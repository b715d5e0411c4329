"""The benchmark's fakes against voicetui's ABCs, and a session built from them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from livekit import rtc

from voicetui.agents import Agent, AgentSession, function_tool
from voicetui.agents._stream import FlushSentinel
from voicetui.agents.llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChoiceDelta,
    FunctionCallOutput,
    FunctionTool,
    FunctionToolCall,
    LLMStream,
    ToolChoice,
)
from voicetui.agents.stt import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
)
from voicetui.agents.tts import (
    TEXT_KEY,
    TTS,
    ChunkedStream,
    SynthesizedAudio,
    SynthesizeStream,
    TTSCapabilities,
)
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from voicetui.agents.vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream
from voicetui.agents.voice.io import AudioInput, AudioOutput, TextOutput

from .core import (
    STT_END,
    STT_FINAL,
    STT_INTERIM,
    STT_START,
    VAD_END,
    VAD_START,
    LlmLogic,
    Sink,
    SttLogic,
    Timings,
    TtsLogic,
    User,
    VadLogic,
)

NAME = "voicetui"

TASK_PER_FRAME = False
"""True: the fake VAD and STT streams read their input in a task (one wake-up per frame, like
LiveKit's fakes must) instead of the framework's synchronous ``_consume_input``."""

_VAD_TYPES = {
    VAD_START: VADEventType.START_OF_SPEECH,
    VAD_END: VADEventType.END_OF_SPEECH,
}
_STT_TYPES = {
    STT_START: SpeechEventType.START_OF_SPEECH,
    STT_INTERIM: SpeechEventType.INTERIM_TRANSCRIPT,
    STT_FINAL: SpeechEventType.FINAL_TRANSCRIPT,
    STT_END: SpeechEventType.END_OF_SPEECH,
}


def version() -> str:
    import voicetui

    return str(getattr(voicetui, "__version__", "checkout"))


class _VAD(VAD):
    def __init__(self, t: Timings) -> None:
        super().__init__(capabilities=VADCapabilities(update_interval=t.frame_ms / 1000))
        self._t = t

    def stream(self) -> VADStream:
        return _VADStream(self)


class _VADStream(VADStream):
    async def _run(self) -> None:
        assert isinstance(self._vad, _VAD)
        samples = 0

        def emit(kind: int, speech: float, silence: float, speaking: bool, voice: bool) -> None:
            loop_now = asyncio.get_running_loop().time()
            self._emit(
                VADEvent(
                    _VAD_TYPES.get(kind, VADEventType.INFERENCE_DONE),
                    samples,
                    loop_now,
                    speech,
                    silence,
                    probability=1.0 if voice else 0.0,
                    speaking=speaking,
                )
            )

        logic = VadLogic(self._vad._t, emit)

        def take(item: rtc.AudioFrame | FlushSentinel) -> None:
            nonlocal samples
            if not isinstance(item, FlushSentinel):
                samples += item.samples_per_channel
                logic.push(item)

        if TASK_PER_FRAME:
            async for item in self._input:
                take(item)
        else:  # the framework's way for cheap synchronous work (as its own VAD streams do)
            await self._consume_input(take)


class _STT(STT):
    def __init__(self, t: Timings, user: User) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=True))
        self._t, self._user = t, user

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        raise NotImplementedError

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        return _STTStream(self, language=language, conn_options=conn_options)


class _STTStream(SpeechStream):
    async def _run(self) -> None:
        stt = self._stt
        assert isinstance(stt, _STT)

        def emit(kind: int, text: str) -> None:
            alts = [SpeechData(text=text, language="en", confidence=1.0)] if text else []
            self._emit(SpeechEvent(_STT_TYPES[kind], alts))

        logic = SttLogic(stt._t, stt._user, emit)

        def take(item: rtc.AudioFrame | FlushSentinel) -> None:
            if not isinstance(item, FlushSentinel):
                logic.push(item)

        try:
            if TASK_PER_FRAME:
                async for item in self._input:
                    take(item)
            else:
                await self._consume_input(take)
        finally:
            logic.close()


class _LLM(LLM):
    def __init__(self, t: Timings, user: User) -> None:
        super().__init__()
        self.logic = LlmLogic(t, user)

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        return _LLMStream(
            self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice
        )


class _LLMStream(LLMStream):
    async def _run(self) -> None:
        llm = self._llm
        assert isinstance(llm, _LLM)
        items = self._chat_ctx.items
        after_tool = bool(items) and isinstance(items[-1], FunctionCallOutput)
        rid = self._request_id

        def text(delta: str) -> None:
            self._emit(ChatChunk(id=rid, delta=ChoiceDelta(content=delta)))

        def tool(call_id: str, name: str, arguments: str) -> None:
            call = FunctionToolCall(name=name, arguments=arguments, call_id=call_id)
            self._emit(ChatChunk(id=rid, delta=ChoiceDelta(tool_calls=[call])))

        await llm.logic.run(after_tool, text, tool)


class _TTS(TTS):
    def __init__(self, t: Timings) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=True), sample_rate=t.tts_sample_rate
        )
        self._t = t

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        raise NotImplementedError("the benchmark TTS only streams")

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        return _TTSStream(self, conn_options=conn_options)


class _TTSStream(SynthesizeStream):
    async def _run(self) -> None:
        tts = self._tts
        assert isinstance(tts, _TTS)
        sr = tts._t.tts_sample_rate
        rid = uuid.uuid4().hex[:12]
        segment_text: list[str] = []

        async def items() -> AsyncIterator[str | None]:
            async for item in self._input:
                if isinstance(item, FlushSentinel):
                    yield None
                else:
                    segment_text.append(item)
                    yield item

        def emit(pcm: bytes, first: bool) -> None:
            frame = rtc.AudioFrame(pcm, sr, 1, len(pcm) // 2)
            if first:
                frame.userdata[TEXT_KEY] = "".join(segment_text)
            self._emit(SynthesizedAudio(frame=frame, request_id=rid))

        await TtsLogic(tts._t).run(items(), emit, segment_text.clear)


class _Input(AudioInput):
    def __init__(self, user: User) -> None:
        super().__init__(label="bench.Input")
        self._user = user

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._user.frames()


class _Output(AudioOutput):
    def __init__(self, t: Timings) -> None:
        super().__init__(label="bench.Sink", sample_rate=None, can_pause=False)
        self.sink = Sink(t, self._sink_started, self._sink_finished)

    def _sink_started(self, t: float) -> None:
        self.on_playback_started(created_at=t)

    def _sink_finished(self, position: float, interrupted: bool) -> None:
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        await self.sink.capture(frame)

    def flush(self) -> None:
        super().flush()
        self.sink.flush()

    def clear_buffer(self) -> None:
        self._capturing = False
        self.sink.clear()


class _Text(TextOutput):
    def __init__(self) -> None:
        super().__init__(label="bench.Text")

    async def capture_text(self, text: str) -> None:
        return None

    def flush(self) -> None:
        return None


@function_tool
async def lookup_weather(city: str) -> str:
    """Look up the weather.

    Args:
        city: The city.
    """
    return f"It is sunny in {city}."


class BenchSession:
    """One voicetui AgentSession fed by the scripted user."""

    def __init__(self, t: Timings) -> None:
        self.user = User(t)
        self._output = _Output(t)
        self.sink = self._output.sink
        self.session: AgentSession[None] = AgentSession(
            vad=_VAD(t),
            stt=_STT(t, self.user),
            llm=_LLM(t, self.user),
            tts=_TTS(t),
            min_endpointing_delay=t.endpointing,
            max_endpointing_delay=6.0,
            preemptive_generation=False,
            turn_detection="vad",
            allow_interruptions=True,
            min_interruption_duration=0.5,
            false_interruption_timeout=2.0,
            user_away_timeout=15.0,
        )
        self.session.input.audio = _Input(self.user)
        self.session.output.audio = self._output
        self.session.output.transcription = _Text()

    async def start(self) -> None:
        await self.session.start(Agent(instructions="You are a benchmark.", tools=[lookup_weather]))

    async def aclose(self) -> None:
        self.user.close()
        await self.session.aclose()
        await self.sink.aclose()
