"""The benchmark's fakes against livekit-agents' public ABCs, and a session built from them.

Runs only in the scratch venv that holds ``livekit-agents`` (never a project dependency). The
fakes mirror the ideas of LiveKit's own test fakes (tests/fake_*.py in its repository, not in the
wheel) but share their logic with the voicetui adapter through :mod:`overhead.core`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, function_tool
from livekit.agents.language import LanguageCode
from livekit.agents.llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChoiceDelta,
    FunctionToolCall,
    LLMStream,
)
from livekit.agents.stt import (
    STT,
    RecognizeStream,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    STTCapabilities,
)
from livekit.agents.tts import TTS, AudioEmitter, ChunkedStream, SynthesizeStream, TTSCapabilities
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities, TextOutput

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

NAME = "livekit-agents"

_VAD_TYPES = {VAD_START: VADEventType.START_OF_SPEECH, VAD_END: VADEventType.END_OF_SPEECH}
_STT_TYPES = {
    STT_START: SpeechEventType.START_OF_SPEECH,
    STT_INTERIM: SpeechEventType.INTERIM_TRANSCRIPT,
    STT_FINAL: SpeechEventType.FINAL_TRANSCRIPT,
    STT_END: SpeechEventType.END_OF_SPEECH,
}
_EN = LanguageCode("en")


def version() -> str:
    from importlib.metadata import version as v

    return v("livekit-agents")


class _VAD(VAD):
    def __init__(self, t: Timings) -> None:
        super().__init__(capabilities=VADCapabilities(update_interval=t.frame_ms / 1000))
        self._t = t

    def stream(self) -> VADStream:
        return _VADStream(self)


class _VADStream(VADStream):
    async def _main_task(self) -> None:
        assert isinstance(self._vad, _VAD)
        samples = 0

        def emit(kind: int, speech: float, silence: float, speaking: bool, voice: bool) -> None:
            self._event_ch.send_nowait(
                VADEvent(
                    type=_VAD_TYPES.get(kind, VADEventType.INFERENCE_DONE),
                    samples_index=samples,
                    timestamp=time.time(),
                    speech_duration=speech,
                    silence_duration=silence,
                    probability=1.0 if voice else 0.0,
                    speaking=speaking,
                    raw_accumulated_speech=speech if voice else 0.0,
                    raw_accumulated_silence=silence,
                )
            )

        logic = VadLogic(self._vad._t, emit)
        async for item in self._input_ch:
            if isinstance(item, rtc.AudioFrame):
                samples += item.samples_per_channel
                logic.push(item)


class _STT(STT):
    def __init__(self, t: Timings, user: User) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=True))
        self._t, self._user = t, user

    async def _recognize_impl(self, buffer: Any, *, language: Any = None, conn_options: Any = None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def stream(
        self,
        *,
        language: Any = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> RecognizeStream:
        return _STTStream(stt=self, conn_options=conn_options)


class _STTStream(RecognizeStream):
    async def _run(self) -> None:
        stt = self._stt
        assert isinstance(stt, _STT)

        def emit(kind: int, text: str) -> None:
            alts = [SpeechData(language=_EN, text=text, confidence=1.0)] if text else []
            self._event_ch.send_nowait(SpeechEvent(type=_STT_TYPES[kind], alternatives=alts))

        logic = SttLogic(stt._t, stt._user, emit)
        try:
            async for item in self._input_ch:
                if isinstance(item, rtc.AudioFrame):
                    logic.push(item)
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
        tools: list[Any] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> LLMStream:
        return _LLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _LLMStream(LLMStream):
    async def _run(self) -> None:
        llm = self._llm
        assert isinstance(llm, _LLM)
        items = self._chat_ctx.items
        after_tool = bool(items) and items[-1].type == "function_call_output"
        rid = f"llm_{uuid.uuid4().hex[:12]}"

        def text(delta: str) -> None:
            self._event_ch.send_nowait(
                ChatChunk(id=rid, delta=ChoiceDelta(role="assistant", content=delta))
            )

        def tool(call_id: str, name: str, arguments: str) -> None:
            call = FunctionToolCall(name=name, arguments=arguments, call_id=call_id)
            self._event_ch.send_nowait(
                ChatChunk(id=rid, delta=ChoiceDelta(role="assistant", tool_calls=[call]))
            )

        await llm.logic.run(after_tool, text, tool)


class _TTS(TTS):
    def __init__(self, t: Timings) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=True),
            sample_rate=t.tts_sample_rate,
            num_channels=1,
        )
        self._t = t

    def synthesize(
        self, text: str, *, conn_options: Any = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        raise NotImplementedError("the benchmark TTS only streams")

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        return _TTSStream(tts=self, conn_options=conn_options)


class _TTSStream(SynthesizeStream):
    async def _run(self, output_emitter: AudioEmitter) -> None:
        tts = self._tts
        assert isinstance(tts, _TTS)
        t = tts._t
        output_emitter.initialize(
            request_id=uuid.uuid4().hex[:12],
            sample_rate=t.tts_sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=t.tts_chunk_ms,
            stream=True,
        )
        in_segment = False

        async def items() -> AsyncIterator[str | None]:
            nonlocal in_segment
            async for item in self._input_ch:
                if isinstance(item, str):
                    if not in_segment:
                        in_segment = True
                        output_emitter.start_segment(segment_id=uuid.uuid4().hex[:12])
                        self._mark_started()
                    yield item
                else:
                    yield None

        def segment_end() -> None:
            nonlocal in_segment
            if in_segment:
                in_segment = False
                output_emitter.end_segment()

        def emit(pcm: bytes, first: bool) -> None:
            output_emitter.push(pcm)

        await TtsLogic(t).run(items(), emit, segment_end)


class _Input(AudioInput):
    def __init__(self, user: User) -> None:
        super().__init__(label="bench.Input")
        self._frames = user.frames()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.__anext__()


class _Output(AudioOutput):
    def __init__(self, t: Timings) -> None:
        super().__init__(
            label="bench.Sink", capabilities=AudioOutputCapabilities(pause=False), sample_rate=None
        )
        self.sink = Sink(t, self._sink_started, self._sink_finished)

    def _sink_started(self, t: float) -> None:
        self.on_playback_started(created_at=time.time())

    def _sink_finished(self, position: float, interrupted: bool) -> None:
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        await self.sink.capture(frame)

    def flush(self) -> None:
        super().flush()
        self.sink.flush()

    def clear_buffer(self) -> None:
        self.sink.clear()


class _Text(TextOutput):
    def __init__(self) -> None:
        super().__init__(label="bench.Text", next_in_chain=None)

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
    """One livekit-agents AgentSession fed by the scripted user."""

    def __init__(self, t: Timings) -> None:
        self.user = User(t)
        self._output = _Output(t)
        self.sink = self._output.sink
        self.session: AgentSession[None] = AgentSession(
            vad=_VAD(t),
            stt=_STT(t, self.user),
            llm=_LLM(t, self.user),
            tts=_TTS(t),
            turn_handling={
                "turn_detection": "vad",
                "endpointing": {"mode": "fixed", "min_delay": t.endpointing, "max_delay": 6.0},
                "interruption": {
                    "enabled": True,
                    "mode": "vad",
                    "min_duration": 0.5,
                    "false_interruption_timeout": 2.0,
                    "resume_false_interruption": True,
                },
                "preemptive_generation": {"enabled": False},
            },
            user_away_timeout=15.0,
            # voicetui has no TTS text transforms; LiveKit's default markdown filter holds each
            # token back until the next one arrives (word boundary). --lk-text-transforms keeps it.
            **(
                {}
                if os.environ.get("BENCH_LK_TEXT_TRANSFORMS") == "1"
                else {"tts_text_transforms": None}
            ),
        )
        self.session.input.audio = _Input(self.user)
        self.session.output.audio = self._output
        self.session.output.transcription = _Text()

    async def start(self) -> None:
        await self.session.start(
            Agent(instructions="You are a benchmark.", tools=[lookup_weather]), record=False
        )

    async def aclose(self) -> None:
        self.user.close()
        await self.session.aclose()
        await self.sink.aclose()
