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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..llm import FunctionToolCall
from ..utils.aio import now
from ..voice.agent import Agent
from ..voice.agent_session import AgentSession
from .fake_io import FakeAudioOutput, FakeTextOutput
from .timeline_fakes import (
    TimelineAudioInput,
    TimelineLLM,
    TimelineLLMCall,
    TimelineSTT,
    TimelineTTS,
    TimelineVAD,
    llm_input_of,
)

__all__ = [
    "LLMReply",
    "ScriptedToolCall",
    "TTSAudio",
    "Timeline",
    "TimelineAudioInput",
    "TimelineLLM",
    "TimelineLLMCall",
    "TimelineSTT",
    "TimelineTTS",
    "TimelineVAD",
    "UserSpeech",
    "llm_input_of",
]


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
