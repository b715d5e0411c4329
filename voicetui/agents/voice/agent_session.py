"""``AgentSession``: the runtime of a voice agent — models, I/O, the active agent, history,
states and events."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self

from livekit import rtc

from ..llm import (
    LLM,
    AgentHandoff,
    ChatContext,
    ChatItem,
    ChatMessage,
    FunctionCall,
    ToolChoice,
)
from ..metrics import AgentMetrics
from ..stt import STT
from ..tts import TTS
from ..turn_detector import TurnDetector
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGiven
from ..utils.aio import EventEmitter, TaskSet, cancel_and_wait
from ..vad import VAD
from .agent import Agent
from .agent_activity import AgentActivity
from .events import (
    AgentState,
    AgentStateChangedEvent,
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    EventTypes,
    MetricsCollectedEvent,
    RunContext,
    SpeechCreatedEvent,
    ToolExecution,
    Userdata_T,
    UserState,
    UserStateChangedEvent,
)
from .generation import ToolCallInterceptor, execute_tools
from .io import AgentInput, AgentOutput, AudioInput
from .run_result import RunResult
from .speech_handle import SpeechHandle
from .turn_latency import TurnTiming
from .turn_options import TurnDetectionMode, TurnOptions

logger = logging.getLogger("voicetui.agents.voice")


@dataclass(frozen=True)
class SessionConnectOptions:
    """Retry policies per model kind."""

    stt: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    llm: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    tts: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    max_unrecoverable_errors: int = 3
    """Consecutive failures of one model (after its retries) that the session tolerates; one
    more closes the session with ``CloseReason.ERROR``."""


AgentSessionOptions = TurnOptions
"""LiveKit's name for the session's options."""


class AgentSession(EventEmitter[EventTypes], Generic[Userdata_T]):
    def __init__(
        self,
        *,
        stt: STT | None = None,
        vad: VAD | None = None,
        llm: LLM | None = None,
        tts: TTS | None = None,
        userdata: Userdata_T | None = None,
        options: TurnOptions | None = None,
        allow_interruptions: bool | NotGiven = NOT_GIVEN,
        discard_audio_if_uninterruptible: bool | NotGiven = NOT_GIVEN,
        min_interruption_duration: float | NotGiven = NOT_GIVEN,
        min_interruption_words: int | NotGiven = NOT_GIVEN,
        min_endpointing_delay: float | NotGiven = NOT_GIVEN,
        max_endpointing_delay: float | NotGiven = NOT_GIVEN,
        max_tool_steps: int | NotGiven = NOT_GIVEN,
        user_away_timeout: float | NotGiven | None = NOT_GIVEN,
        false_interruption_timeout: float | NotGiven | None = NOT_GIVEN,
        resume_false_interruption: bool | NotGiven = NOT_GIVEN,
        min_consecutive_speech_delay: float | NotGiven = NOT_GIVEN,
        preemptive_generation: bool | NotGiven = NOT_GIVEN,
        turn_detection: TurnDetectionMode | TurnDetector | NotGiven | None = NOT_GIVEN,
        conn_options: SessionConnectOptions | None = None,
    ) -> None:
        """The turn-taking keyword arguments (LiveKit's names; see :class:`TurnOptions` for
        their defaults and meaning) override those of ``options``. A bad value raises
        :class:`TurnOptionsError`, a ``ValueError``. ``turn_detection`` may be an end-of-turn
        model (a :class:`TurnDetector`): it decides at the VAD's pauses."""
        super().__init__()
        self._stt, self._vad, self._llm, self._tts = stt, vad, llm, tts
        self._userdata = userdata
        self._turn_detector: TurnDetector | None = None
        if isinstance(turn_detection, TurnDetector):
            self._turn_detector, turn_detection = turn_detection, "vad"
        self._opts = TurnOptions.build(
            options,
            allow_interruptions=allow_interruptions,
            discard_audio_if_uninterruptible=discard_audio_if_uninterruptible,
            min_interruption_duration=min_interruption_duration,
            min_interruption_words=min_interruption_words,
            min_endpointing_delay=min_endpointing_delay,
            max_endpointing_delay=max_endpointing_delay,
            max_tool_steps=max_tool_steps,
            user_away_timeout=user_away_timeout,
            false_interruption_timeout=false_interruption_timeout,
            resume_false_interruption=resume_false_interruption,
            min_consecutive_speech_delay=min_consecutive_speech_delay,
            preemptive_generation=preemptive_generation,
            turn_detection=turn_detection,
        )
        self._conn_options = conn_options or SessionConnectOptions()
        self._input = AgentInput(self._on_audio_input_changed)
        self._output = AgentOutput(self._on_audio_output_changed, self._on_text_output_changed)
        self._history = ChatContext.empty()
        self._agent: Agent | None = None
        self._activity: AgentActivity | None = None
        self._activity_lock = asyncio.Lock()
        self._agent_update_task: asyncio.Task[None] | None = None
        self._agent_state: AgentState = "initializing"
        self._user_state: UserState = "listening"
        self._tasks = TaskSet("AgentSession")
        self._started = False
        self._closing = False
        self._closed = False
        self._run_state: RunResult | None = None
        self._unrecoverable_errors: dict[str, int] = {}
        self._close_task: asyncio.Task[None] | None = None
        self._closed_event = asyncio.Event()  # (binds no loop until awaited)
        self._turn_detection_override: TurnDetectionMode | None = None
        self._handoff_timing: TurnTiming | None = None
        """A user turn a tool handed over to another agent before anything was heard: that
        agent's first reply answers it (its latency report goes on)."""
        self.tool_call_interceptor: ToolCallInterceptor | None = None
        """Called before each tool call runs; decides to run it (maybe with edited arguments)
        or to hand the LLM a mocked result or error instead. For debuggers like the TUI."""
        self._audio_task: asyncio.Task[None] | None = None
        self._away_task: asyncio.Task[None] | None = None

    # --- properties -----------------------------------------------------------------------
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
    def options(self) -> TurnOptions:
        """The session's turn-taking options (an agent may override some: the effective ones
        are ``session.activity.options``)."""
        return self._opts

    @property
    def activity(self) -> AgentActivity | None:
        """What the current agent runs: its effective ``options`` and its ``recognition`` (the
        listening pipeline; None without audio models). None before the session starts,
        while the agent is being handed over, and once the session has closed."""
        return self._activity

    @property
    def conn_options(self) -> SessionConnectOptions:
        return self._conn_options

    @property
    def userdata(self) -> Userdata_T:
        if self._userdata is None:
            raise ValueError("no userdata was given to this AgentSession")
        return self._userdata

    @userdata.setter
    def userdata(self, value: Userdata_T) -> None:
        self._userdata = value

    @property
    def input(self) -> AgentInput:
        return self._input

    @property
    def output(self) -> AgentOutput:
        return self._output

    @property
    def history(self) -> ChatContext:
        """Everything said and done in this session, across agents."""
        return self._history

    @property
    def current_agent(self) -> Agent:
        if self._agent is None:
            raise RuntimeError("the session has not started")
        return self._agent

    @property
    def agent_state(self) -> AgentState:
        return self._agent_state

    @property
    def user_state(self) -> UserState:
        return self._user_state

    @property
    def current_speech(self) -> SpeechHandle | None:
        return self._activity.current_speech if self._activity is not None else None

    @property
    def running(self) -> bool:
        return self._started and not self._closing

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self, agent: Agent) -> None:
        """Start the session with ``agent`` (runs its ``on_enter``). Set ``session.input`` /
        ``session.output`` before or after; without audio the session converses by text."""
        if self._started:
            raise RuntimeError("the session is already started")
        self._started = True
        await self._update_activity(agent)
        self._set_agent_idle()
        self._restart_audio_forwarding()

    async def aclose(
        self, *, reason: CloseReason = CloseReason.USER_INITIATED, error: str | None = None
    ) -> None:
        """Close the session; ``reason`` (and ``error``) are reported in the ``close`` event.

        Backends that end a session for another reason than the user (a room participant
        leaving, a fatal device error) pass it here, e.g.
        ``aclose(reason=CloseReason.PARTICIPANT_DISCONNECTED)``.
        """
        await self._close(reason, error)

    async def drain(self) -> None:
        """Let the agent finish: the user turn being committed is answered, what is queued is
        said (tool replies and handoffs included), then the session closes."""
        self._activity_or_raise()
        # the session keeps running meanwhile: what the user says or types is still answered
        while self._activity is not None and not self._closing:
            update = self._agent_update_task
            if update is not None and not update.done():
                await asyncio.wait({update})
                continue
            activity = self._activity
            await activity.wait_until_idle()
            update = self._agent_update_task
            if activity is self._activity and (update is None or update.done()):
                break
        await self._close(CloseReason.USER_INITIATED, drain=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _close(
        self, reason: CloseReason, error: str | None = None, *, drain: bool = False
    ) -> None:
        if self._closing:
            # closing already (e.g. after repeated errors): wait until it is done
            await self._closed_event.wait()
            return
        self._closing = True
        try:
            await self._do_close(reason, error, drain=drain)
        finally:
            self._closed_event.set()

    async def _do_close(self, reason: CloseReason, error: str | None, *, drain: bool) -> None:
        await cancel_and_wait(self._audio_task, self._away_task)
        if self._agent_update_task is not None:
            await asyncio.wait({self._agent_update_task})
        async with self._activity_lock:
            if self._activity is not None:
                if not drain:
                    self._activity.interrupt(force=True)
                try:
                    await self._activity.drain()
                finally:
                    await self._activity.aclose()
        await self._tasks.aclose()
        self._closed = True
        # let go of what points back at the session, so that it and its history are freed by
        # reference counting, even in a process that freezes old objects (utils.gc_freeze)
        self._audio_task = self._away_task = self._agent_update_task = self._activity = None
        self._input._session_closed()
        self._output._session_closed()
        self.emit("close", CloseEvent(reason=reason, error=error))

    # --- talking --------------------------------------------------------------------------
    def _activity_or_raise(self) -> AgentActivity:
        if self._activity is None or self._closing:
            raise RuntimeError("the session is not running")
        return self._activity

    def say(
        self,
        text: str | AsyncIterable[str],
        *,
        audio: AsyncIterable[rtc.AudioFrame] | None = None,
        allow_interruptions: bool | None = None,
        add_to_chat_ctx: bool = True,
    ) -> SpeechHandle:
        """Speak ``text`` as is (through TTS, or ``audio`` if given)."""
        return self._activity_or_raise().say(
            text,
            audio=audio,
            allow_interruptions=allow_interruptions,
            add_to_chat_ctx=add_to_chat_ctx,
        )

    def generate_reply(
        self,
        *,
        user_input: str | None = None,
        instructions: str | None = None,
        tool_choice: ToolChoice | None = None,
        allow_interruptions: bool | None = None,
    ) -> SpeechHandle:
        """Generate a reply with the LLM; ``user_input`` is added as the user's message first,
        ``instructions`` apply to this reply only."""
        msg = ChatMessage(role="user", content=[user_input]) if user_input else None
        return self._activity_or_raise().generate_reply(
            user_message=msg,
            instructions=instructions,
            tool_choice=tool_choice,
            allow_interruptions=allow_interruptions,
        )

    def interrupt(self, *, force: bool = False) -> asyncio.Future[None]:
        """Interrupt what the agent is saying (and what it queued). Returns a future that is
        done once the interrupted speeches are recorded in history."""
        return self._activity_or_raise().interrupt(force=force)

    async def commit_user_turn(self, *, transcript_timeout: float = 2.0) -> None:
        """End the user's turn now and answer it (push-to-talk released; for
        ``turn_detection="manual"``). Waits up to ``transcript_timeout`` seconds for the final
        transcript of what was already said."""
        await self._activity_or_raise().commit_user_turn(transcript_timeout=transcript_timeout)

    @property
    def turn_detector(self) -> TurnDetector | None:
        """The end-of-turn model given as ``turn_detection`` (None: silence decides)."""
        return self._turn_detector

    def set_turn_detection(self, mode: TurnDetectionMode | None) -> None:
        """Override turn detection while running (None: back to the agent's or session's
        option); applies now and to agents handed over to later. Push-to-talk uses "manual"."""
        self._turn_detection_override = mode
        if self._activity is not None:
            self._activity.apply_turn_detection()

    def clear_user_turn(self) -> None:
        """Forget what the user said since the last turn (push-to-talk cancelled)."""
        self._activity_or_raise().clear_user_turn()

    async def rerun_tool(self, name: str, arguments: str) -> ToolExecution:
        """Run one of the current agent's tools outside the conversation (debugging: re-run a
        past call with edited arguments). Nothing is added to history; errors are returned."""
        agent = self.current_agent
        call = FunctionCall(call_id=f"rerun_{uuid.uuid4().hex[:8]}", name=name, arguments=arguments)
        outcomes = await execute_tools(
            [call],
            agent.tools,
            lambda c: RunContext(session=self, speech_handle=SpeechHandle(), function_call=c),
            lambda v: isinstance(v, Agent),
        )
        return outcomes[0].execution

    def update_agent(self, agent: Agent) -> asyncio.Task[None]:
        """Hand the conversation to ``agent``: the current agent finishes what it is saying and
        runs ``on_exit``, then ``agent`` runs ``on_enter``. History is kept."""
        if not self._started:
            raise RuntimeError("start the session first")
        return self._schedule_agent_update(agent)

    def _schedule_agent_update(self, agent: Agent) -> asyncio.Task[None]:
        previous = self._agent_update_task

        async def run() -> None:
            if previous is not None:
                await asyncio.wait({previous})
            await self._update_activity(agent)

        task = self._tasks.create(run(), name="AgentSession.update_agent")
        self._agent_update_task = task
        return task

    async def _update_activity(self, agent: Agent) -> None:
        async with self._activity_lock:
            old_agent, old_activity = self._agent, self._activity
            if old_activity is not None:
                await old_activity.drain()
                await old_activity.aclose()
            if not agent._chat_ctx_given and old_agent is not None:
                # the new agent knows the conversation so far, under its own instructions
                await agent.update_chat_ctx(old_agent._chat_ctx.copy(exclude_instructions=True))
            self._agent = agent
            self._activity = AgentActivity(agent, self)
            # announced for the first agent too (old_agent_id=None), as LiveKit does
            handoff = AgentHandoff(
                old_agent_id=old_agent.id if old_agent is not None else None,
                new_agent_id=agent.id,
            )
            self._conversation_item_added(handoff)
            if self._run_state is not None:
                self._run_state._on_handoff(handoff, old_agent, agent)
            await self._activity.start()
        if self._run_state is not None:
            self._run_state._watch_task(self._activity._on_enter_task)

    async def run(self, *, user_input: str) -> RunResult:
        """Send ``user_input`` and wait until the agent is done (tool calls, replies, handoffs
        included). The result's ``expect`` cursor asserts what happened."""
        if self._run_state is not None and not self._run_state.done():
            raise RuntimeError("another run is in progress")
        result = RunResult(user_input=user_input)
        self._run_state = result
        try:
            handle = self.generate_reply(user_input=user_input)
            result._watch_handle(handle)
            await result._settle(self)
        finally:
            self._run_state = None
        if result.error is not None:
            raise result.error  # the LLM failed for good (a silent turn is not an error)
        return result

    # --- internal notifications -----------------------------------------------------------
    def _emit_event(self, ev: Any) -> None:
        self.emit(ev.type, ev)

    def _conversation_item_added(self, item: ChatMessage | AgentHandoff) -> None:
        self._history.append(item)
        self._emit_event(ConversationItemAddedEvent(item=item))
        if (
            self._run_state is not None
            and isinstance(item, ChatMessage)
            and item.role == "assistant"
        ):
            self._run_state._on_item(item)

    def _history_append(self, item: ChatItem) -> None:
        self._history.append(item)
        if self._run_state is not None:
            self._run_state._on_item(item)

    def _on_speech_failed(self, handle: SpeechHandle, error: BaseException) -> None:
        """A speech's LLM failed for good (already reported): a run waiting for it fails."""
        if self._run_state is not None:
            self._run_state._on_speech_failed(handle, error)

    def _on_speech_created(self, ev: SpeechCreatedEvent) -> None:
        if self._run_state is not None:
            self._run_state._watch_handle(ev.speech_handle)
        self._emit_event(ev)

    def _emit_metrics(self, metrics: AgentMetrics) -> None:
        self._emit_event(MetricsCollectedEvent(metrics=metrics))

    def _report_error(
        self, source: str, message: str, error: BaseException | None, *, recoverable: bool = True
    ) -> None:
        logger.error("%s error: %s", source, message)
        self._emit_event(
            ErrorEvent(source=source, message=message, recoverable=recoverable, error=error)
        )
        if recoverable or source not in ("llm", "stt", "tts"):
            return
        count = self._unrecoverable_errors.get(source, 0) + 1
        self._unrecoverable_errors[source] = count
        limit = self._conn_options.max_unrecoverable_errors
        if count > limit and not self._closing and self._close_task is None:
            reason = f"the {source} failed {count} times in a row: {message}"
            logger.error("closing the session: %s", reason)
            # not owned by _tasks: closing cancels those, and this task is the one closing
            self._close_task = asyncio.create_task(
                self._close(CloseReason.ERROR, reason), name="AgentSession.close_on_error"
            )

    def _model_succeeded(self, source: str) -> None:
        self._unrecoverable_errors.pop(source, None)

    def _update_agent_state(self, state: AgentState) -> None:
        if state == self._agent_state:
            return
        old, self._agent_state = self._agent_state, state
        self._emit_event(AgentStateChangedEvent(old_state=old, new_state=state))
        self._check_user_away()

    def _update_user_state(self, state: UserState, *, at: float | None = None) -> None:
        """``at``: the loop time the change really happened (the VAD reports a voice's start
        and end after the fact); the event is back-dated to it."""
        if state == self._user_state:
            return
        old, self._user_state = self._user_state, state
        ev = UserStateChangedEvent(old_state=old, new_state=state)
        if at is not None and at < ev.loop_time:
            ev.created_at -= ev.loop_time - at
            ev.loop_time = at
        self._emit_event(ev)
        self._check_user_away()

    def _check_user_away(self) -> None:
        """Start the away timer while nobody speaks; stop it as soon as someone does."""
        quiet = self._user_state == "listening" and self._agent_state == "listening"
        if not quiet or self._closing:
            if self._away_task is not None:
                self._away_task.cancel()
                self._away_task = None
            return
        if self._away_task is not None:
            return
        options = self._activity.options if self._activity is not None else self._opts
        timeout = options.user_away_timeout
        if timeout is not None:
            self._away_task = self._tasks.create(
                self._away_after(timeout), name="AgentSession.user_away"
            )

    async def _away_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._away_task = None
        self._update_user_state("away")

    # --- user audio -----------------------------------------------------------------------
    def _restart_audio_forwarding(self) -> None:
        if not self._started or self._closing:
            return
        previous = self._audio_task
        audio = self._input.audio if self._input.audio_enabled else None
        self._audio_task = self._tasks.create(
            self._forward_audio(previous, audio), name="AgentSession.forward_audio"
        )

    async def _forward_audio(
        self, previous: asyncio.Task[None] | None, audio: AudioInput | None
    ) -> None:
        await cancel_and_wait(previous)
        if self._activity is not None:
            self._activity.on_audio_input_stopped()
        if audio is None:
            return
        audio.on_attached()
        try:
            async for frame in audio:
                if self._activity is not None:
                    self._activity.push_audio(frame)
            if self._activity is not None:  # the input ended (e.g. a file played out)
                self._activity.on_audio_input_stopped()
        except Exception as e:
            self._report_error("audio_input", f"{audio.label} failed: {e}", e, recoverable=False)
        finally:
            audio.on_detached()

    def _set_agent_idle(self) -> None:
        listening = self._input.audio is not None and self._input.audio_enabled
        self._update_agent_state("listening" if listening else "idle")

    def _on_audio_input_changed(self) -> None:
        if self._started and self._agent_state in ("idle", "listening"):
            self._set_agent_idle()
        self._restart_audio_forwarding()

    def _on_audio_output_changed(self) -> None:
        """Takes effect from the next speech."""

    def _on_text_output_changed(self) -> None:
        """Takes effect from the next speech."""
