"""``Agent``: instructions, tools, models and the overridable hooks and nodes of the pipeline."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..llm import LLM, ChatChunk, ChatContext, ChatMessage, FunctionTool, ToolChoice
from ..llm.tool_context import find_function_tools
from ..stt import STT, SpeechEvent
from ..tts import TTS
from ..turn_detector import TurnDetector
from ..types import NOT_GIVEN, NotGiven
from ..utils.aio import Feed, cancel_and_wait
from ..vad import VAD
from .turn_options import TurnDetectionMode, TurnOverrides

if TYPE_CHECKING:
    from .agent_activity import AgentActivity
    from .agent_session import AgentSession

INSTRUCTIONS_ID = "instructions"


@dataclass
class ModelSettings:
    tool_choice: ToolChoice | None = None


def _default_id(cls: type) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class Agent:
    """What the session talks as. Subclass it to add tools (``@function_tool`` methods), hooks
    (``on_enter``, ``on_exit``, ``on_user_turn_completed``) or to rewrite a node."""

    def __init__(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] | None = None,
        chat_ctx: ChatContext | None = None,
        stt: STT | None = None,
        vad: VAD | None = None,
        llm: LLM | None = None,
        tts: TTS | None = None,
        allow_interruptions: bool | NotGiven = NOT_GIVEN,
        min_interruption_duration: float | NotGiven = NOT_GIVEN,
        min_interruption_words: int | NotGiven = NOT_GIVEN,
        min_endpointing_delay: float | NotGiven = NOT_GIVEN,
        max_endpointing_delay: float | NotGiven = NOT_GIVEN,
        max_tool_steps: int | NotGiven = NOT_GIVEN,
        discard_audio_if_uninterruptible: bool | NotGiven = NOT_GIVEN,
        user_away_timeout: float | NotGiven | None = NOT_GIVEN,
        false_interruption_timeout: float | NotGiven | None = NOT_GIVEN,
        resume_false_interruption: bool | NotGiven = NOT_GIVEN,
        min_consecutive_speech_delay: float | NotGiven = NOT_GIVEN,
        preemptive_generation: bool | NotGiven = NOT_GIVEN,
        turn_detection: TurnDetectionMode | TurnDetector | NotGiven | None = NOT_GIVEN,
        options: TurnOverrides | None = None,
        id: str | None = None,
    ) -> None:
        """The turn-taking keyword arguments given (and those ``options`` sets) override the
        session's; a bad value raises :class:`TurnOptionsError`, a ``ValueError``."""
        self._id = id or _default_id(type(self))
        self._instructions = instructions
        self._tools: list[FunctionTool] = [*find_function_tools(self), *(tools or [])]
        self._chat_ctx_given = chat_ctx is not None
        self._chat_ctx = chat_ctx.copy() if chat_ctx is not None else ChatContext.empty()
        self._set_instructions_item()
        self._stt, self._vad, self._llm, self._tts = stt, vad, llm, tts
        self._turn_detector: TurnDetector | None = None
        if isinstance(turn_detection, TurnDetector):  # this agent's own end-of-turn model
            self._turn_detector, turn_detection = turn_detection, "vad"
        self._options = TurnOverrides.build(
            options,
            allow_interruptions=allow_interruptions,
            min_interruption_duration=min_interruption_duration,
            min_interruption_words=min_interruption_words,
            min_endpointing_delay=min_endpointing_delay,
            max_endpointing_delay=max_endpointing_delay,
            max_tool_steps=max_tool_steps,
            discard_audio_if_uninterruptible=discard_audio_if_uninterruptible,
            user_away_timeout=user_away_timeout,
            false_interruption_timeout=false_interruption_timeout,
            resume_false_interruption=resume_false_interruption,
            min_consecutive_speech_delay=min_consecutive_speech_delay,
            preemptive_generation=preemptive_generation,
            turn_detection=turn_detection,
        )
        self._activity: AgentActivity | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self._id!r})"

    @property
    def turn_detector(self) -> TurnDetector | None:
        """This agent's end-of-turn model, if it was given one as ``turn_detection``."""
        return self._turn_detector

    # --- what the agent is ----------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def label(self) -> str:
        return type(self).__name__

    @property
    def instructions(self) -> str:
        return self._instructions

    @property
    def tools(self) -> list[FunctionTool]:
        return list(self._tools)

    @property
    def chat_ctx(self) -> ChatContext:
        """A copy of the agent's own context (its instructions first). Use
        :meth:`update_chat_ctx` to change it."""
        return self._chat_ctx.copy()

    @property
    def stt(self) -> STT | None:
        return self._stt

    @property
    def vad(self) -> VAD | None:
        return self._vad

    @property
    def llm(self) -> LLM | None:
        return self._llm

    @property
    def tts(self) -> TTS | None:
        return self._tts

    @property
    def options(self) -> TurnOverrides:
        """The turn-taking options this agent overrides (``given()``); the others are the
        session's."""
        return self._options

    @property
    def session(self) -> AgentSession[Any]:
        return self._get_activity_or_raise().session

    async def update_instructions(self, instructions: str) -> None:
        self._instructions = instructions
        self._set_instructions_item()

    async def update_tools(self, tools: Sequence[FunctionTool]) -> None:
        self._tools = list(tools)

    async def update_chat_ctx(self, chat_ctx: ChatContext) -> None:
        self._chat_ctx = chat_ctx.copy(exclude_instructions=True)
        self._set_instructions_item()

    def _set_instructions_item(self) -> None:
        items = [it for it in self._chat_ctx.items if it.id != INSTRUCTIONS_ID]
        if self._instructions:
            items.insert(
                0, ChatMessage(id=INSTRUCTIONS_ID, role="system", content=[self._instructions])
            )
        self._chat_ctx.items = items

    def _get_activity_or_raise(self) -> AgentActivity:
        if self._activity is None:
            raise RuntimeError(f"{self!r} is not running in a session")
        return self._activity

    # --- hooks ----------------------------------------------------------------------------
    async def on_enter(self) -> None:
        """Called when the agent becomes the session's active agent (e.g. greet the user)."""

    async def on_exit(self) -> None:
        """Called when the agent stops being the active agent (handoff or session close)."""

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        """Called when the user finished a turn, before the reply is generated. May edit
        ``new_message`` or ``turn_ctx`` (for this reply only), or raise ``StopResponse``."""

    # --- nodes ----------------------------------------------------------------------------
    def stt_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[SpeechEvent]:
        return Agent.default.stt_node(self, audio, model_settings)

    def llm_node(
        self, chat_ctx: ChatContext, tools: list[FunctionTool], model_settings: ModelSettings
    ) -> AsyncIterable[ChatChunk | str]:
        return Agent.default.llm_node(self, chat_ctx, tools, model_settings)

    def transcription_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[str]:
        return Agent.default.transcription_node(self, text, model_settings)

    def tts_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        return Agent.default.tts_node(self, text, model_settings)

    class default:
        """The default node implementations, for overrides that wrap them."""

        @staticmethod
        async def stt_node(
            agent: Agent, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
        ) -> AsyncGenerator[SpeechEvent, None]:
            activity = agent._get_activity_or_raise()
            stt = activity.streaming_stt
            if stt is None:
                raise RuntimeError("stt_node called but no (streaming) STT is configured")
            async with stt.stream(conn_options=activity.session.conn_options.stt) as stream:
                if isinstance(audio, Feed):
                    # the session's own audio feed: frames go straight into the stream
                    audio.bind(stream.push_frame, stream.end_input)
                    try:
                        async for ev in stream:
                            yield ev
                    finally:
                        audio.unbind()
                    return

                async def forward() -> None:
                    async for frame in audio:
                        stream.push_frame(frame)
                    stream.end_input()

                task = asyncio.create_task(forward())
                try:
                    async for ev in stream:
                        yield ev
                finally:
                    await cancel_and_wait(task)

        @staticmethod
        async def llm_node(
            agent: Agent,
            chat_ctx: ChatContext,
            tools: list[FunctionTool],
            model_settings: ModelSettings,
        ) -> AsyncGenerator[ChatChunk, None]:
            activity = agent._get_activity_or_raise()
            llm = activity.llm
            if llm is None:
                raise RuntimeError("llm_node called but no LLM is configured")
            async with llm.chat(
                chat_ctx=chat_ctx,
                tools=tools,
                tool_choice=model_settings.tool_choice,
                conn_options=activity.session.conn_options.llm,
            ) as stream:
                async for chunk in stream:
                    yield chunk

        @staticmethod
        async def transcription_node(
            agent: Agent, text: AsyncIterable[str], model_settings: ModelSettings
        ) -> AsyncGenerator[str, None]:
            async for delta in text:
                yield delta

        @staticmethod
        async def tts_node(
            agent: Agent, text: AsyncIterable[str], model_settings: ModelSettings
        ) -> AsyncGenerator[rtc.AudioFrame, None]:
            activity = agent._get_activity_or_raise()
            tts = activity.streaming_tts
            if tts is None:
                raise RuntimeError("tts_node called but no TTS is configured")
            async with tts.stream(conn_options=activity.session.conn_options.tts) as stream:

                async def forward() -> None:
                    async for delta in text:
                        stream.push_text(delta)
                    stream.end_input()

                task = asyncio.create_task(forward())
                try:
                    async for audio in stream:
                        yield audio.frame
                    await task
                finally:
                    await cancel_and_wait(task)
