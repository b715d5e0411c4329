"""``SessionController``: the :class:`~voicetui.runtime.api.SessionRuntime` implementation. One
``AgentSession`` on its own asyncio loop in a background thread, driven by the TUI or
``--headless``.

Every command returns a ``concurrent.futures.Future`` at once; the work runs on the session
loop; a failure is a :class:`CommandError` with a readable message in the future plus a
:class:`~voicetui.runtime.api.Notice`. Commands sent while the session starts wait for it.
Subscribers are called on the loop thread, directly: they must return quickly (hop to your own
thread — Textual's ``post_message`` is thread-safe); the runtime never waits for them, and an
exception in one is logged once and otherwise ignored.

Events: every session event (``voicetui.agents.voice.events``), the runtime's own
(``api.RuntimeOwnEvent``), ``LogRecordEvent`` (with ``log_capture=``) and
:class:`~voicetui.runtime.api.AgentTranscript` (the agent's words as they are spoken).

Tests inject models (``models=``), I/O (``backend_factory=``) and the agent (``agent=``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import typing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..agent_loader import make_agent
from ..agents.llm import AgentHandoff, ChatMessage
from ..agents.voice import Agent, AgentSession, CloseReason, SpeechHandle, ToolExecution
from ..agents.voice.events import (
    CloseEvent,
    ConversationItemAddedEvent,
    EventTypes,
    SpeechCreatedEvent,
)
from ..config import Settings
from ..events import SessionEventModel
from ..plugins.selection import SessionModels
from ._io_modes import (
    BackendFactory,
    BackendHooks,
    ModeBackend,
    ModeRequest,
    build_backend,
    initial_backend,
    mode_request,
    without_credentials,
)
from ._loop import LoopRuntime, readable_error
from ._models import describe_models, prewarm
from ._push_to_talk import PushToTalk
from ._recording import SessionRecording, secret_values
from ._session_ops import (
    LevelsCoalescer,
    ToolBreaks,
    interrupt_quietly,
    rerun_tool,
)
from ._transcript import TranscriptSink, write_transcript
from .api import (
    AgentTranscript,
    CommandError,
    Mode,
    ModeChanged,
    ReplyCutOff,
    RoomDetails,
    RuntimeEvent,
    RuntimeStatus,
    SessionRuntime,
    ToolBreakResolution,
    ToolRerun,
)
from .log_capture import LogCapture

logger = logging.getLogger("voicetui.runtime")

AgentSource = Agent | Callable[[], Any]
"""An Agent, or a function returning one (or an awaitable of one)."""

SESSION_EVENTS: tuple[str, ...] = typing.get_args(EventTypes)
LEVELS_INTERVAL = 0.05  # AudioLevels at most 20 times a second
CLOSE_INTERRUPT_TIMEOUT = 3.0
"""Seconds the reply being spoken at close may take to be recorded as interrupted."""
MAX_RESTARTS = 3  # new sessions after one closed by itself, per RESTART_WINDOW seconds
RESTART_WINDOW = 60.0


class SessionController(LoopRuntime):
    """``settings``: the effective settings (default: the built-in defaults). ``agent``: an
    Agent or a factory of one (default: ``settings.agent`` loaded from its file, else
    ``DefaultAgent``). ``models``: use these instead of building them from
    ``settings.models``. ``backend_factory``: builds each mode's I/O (default
    :func:`~voicetui.runtime._io_modes.build_backend`). ``prewarm``: load the models before the
    first turn (default: when they are built from settings). ``session_options``: more
    ``AgentSession`` keyword arguments (over ``settings.turn``). ``log_capture``: forward its
    records as ``LogRecordEvent``. ``restart_on_close``: replace a session that closed by
    itself (repeated model failures...) with a new one keeping the history."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        agent: AgentSource | None = None,
        models: SessionModels | None = None,
        backend_factory: BackendFactory | None = None,
        prewarm: bool | None = None,
        session_options: dict[str, Any] | None = None,
        log_capture: LogCapture | None = None,
        restart_on_close: bool = True,
    ) -> None:
        self._settings = settings or Settings()
        super().__init__(log_capture=log_capture, secrets=secret_values(self._settings))
        self._agent_source = agent
        self._models = models
        self._models_desc = describe_models(models) if models is not None else ""
        self._backend_factory: BackendFactory = backend_factory or build_backend
        self._prewarm = prewarm if prewarm is not None else models is None
        self._warmed: set[str] = set()
        """The model kinds prewarmed so far."""
        self._session_options = dict(session_options or {})
        self._model_defaults: dict[str, Any] = {}
        """Session options the resolved models suggest (settings and ``session_options`` win)."""
        self._restart_on_close = restart_on_close
        self._session: AgentSession[Any] | None = None
        self._agent: Agent | None = None
        self._backend: ModeBackend | None = None
        self._mode: Mode = self._settings.mode
        self._input_device: str | int | None = self._settings.input_device
        self._output_device: str | int | None = self._settings.output_device
        self._muted = False
        self._ptt = PushToTalk(self._ptt_changed)
        self._breaks = ToolBreaks(self._emit, self._notice)
        self._last_status: RuntimeStatus | None = None
        self._recording = SessionRecording(self._settings, self._notice)
        self._levels = LevelsCoalescer(self._emit, LEVELS_INTERVAL)
        self._restarts: deque[float] = deque()
        self._sink = TranscriptSink(self._emit, self._current_speech_id)
        self.input_finished = threading.Event()
        """Set when a finite input (``--input-wav``) has been heard to its end."""

    # --- introspection ----------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def read_only(self) -> bool:
        return False

    @property
    def title(self) -> str:
        return "voicetui"

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def session(self) -> AgentSession[Any] | None:
        """The current session (tests and tools: touch it on the loop only, see :meth:`run`)."""
        return self._session

    def _current_speech_id(self) -> str:
        speech = self._session.current_speech if self._session is not None else None
        return speech.id if speech is not None else ""

    def _check_ready(self) -> None:
        self._session_or_raise()

    def _session_or_raise(self) -> AgentSession[Any]:
        if self._session is None or not self._session.running:
            raise CommandError("the session is not running")
        return self._session

    # --- starting and stopping --------------------------------------------------------------
    async def _start_session(self) -> None:
        models = self._models
        if models is None:
            models = await asyncio.to_thread(self._build_models)
            self._models = models
        agent = await make_agent(self._agent_source, self._settings.agent)
        self._agent = agent
        self._emit_status(force=True)
        # text mode needs only the LLM: the audio models load when audio is switched on
        await self._prewarm_models(audio=self._settings.mode != "text")
        session = self._new_session()
        self._session = session
        await self._attach(await self._initial_backend())
        if self._settings.record_dir:
            # before the session starts, so the recording holds the whole conversation
            try:
                await self._start_recording(self._settings.record_dir)
            except Exception as e:
                self._notice("warning", f"--record: {readable_error(e)}")
        await session.start(agent)
        self._announce_mode()
        self._emit_status()

    async def _prewarm_models(self, *, audio: bool) -> None:
        """Load the models not loaded yet (the audio ones only if ``audio``)."""
        models, agent = self._models, self._agent
        if not self._prewarm or models is None or agent is None:
            return
        wanted = {"llm"} | ({"vad", "stt", "tts"} if audio else set())
        todo = wanted - self._warmed
        self._warmed |= todo
        await prewarm(models, agent, todo, self._emit, self._notice)

    async def _close_session(self) -> None:
        self._breaks.cancel_all()
        self._levels.cancel()
        await self._interrupt_speech()  # what was said so far reaches the history (and recording)
        await self._stop_recorder()
        session, backend = self._session, self._backend
        if session is not None:
            try:
                await asyncio.wait_for(session.aclose(), 10.0)
            except Exception as e:
                logger.warning("closing the session: %s", readable_error(e))
        if backend is not None:
            try:
                if session is not None:
                    await backend.detach(session)
                await asyncio.wait_for(backend.aclose(), 10.0)
            except Exception as e:
                logger.warning("closing the %s I/O: %s", backend.mode, readable_error(e))

    async def _interrupt_speech(self) -> None:
        """Closing while the agent speaks: interrupt it, so that the reply is recorded with what
        was heard and marked interrupted, before the recording stops (bounded wait)."""
        session = self._session
        if session is None or not session.running or session.current_speech is None:
            return
        try:
            await asyncio.wait_for(session.interrupt(force=True), CLOSE_INTERRUPT_TIMEOUT)
        except Exception as e:  # (closing goes on whatever happens here)
            logger.warning("interrupting the agent before closing: %s", readable_error(e))

    def _build_models(self) -> SessionModels:
        from ..plugins.selection import build_models, resolve

        resolved = resolve(self._settings.models)
        self._models_desc = resolved.describe()
        self._model_defaults = resolved.session_defaults()
        return build_models(resolved)

    def _new_session(self) -> AgentSession[Any]:
        assert self._models is not None
        kwargs = {
            **self._model_defaults,
            **self._settings.turn.session_kwargs(),
            **self._session_options,
        }
        session: AgentSession[Any] = AgentSession(**self._models.session_kwargs(kwargs))
        session.tool_call_interceptor = self._breaks.intercept
        for name in SESSION_EVENTS:
            session.on(name, self._on_session_event)  # type: ignore[arg-type]
        session.output.transcription = self._sink
        return session

    # --- I/O --------------------------------------------------------------------------------
    def _room_configured(self) -> bool:
        r = self._settings.room
        return bool(r.url and (r.token or (r.api_key and r.api_secret)))

    def _request(self, mode: Mode, room: RoomDetails | None = None) -> ModeRequest:
        return mode_request(
            self._settings,
            mode,
            room,
            input_device=self._input_device,
            output_device=self._output_device,
        )

    def _hooks(self) -> BackendHooks:
        return BackendHooks(notice=self._notice, levels=self._levels.report, emit=self._emit)

    async def _initial_backend(self) -> ModeBackend:
        return await initial_backend(
            self._settings.mode, self._backend_factory, self._request, self._hooks()
        )

    async def _attach(self, backend: ModeBackend) -> None:
        session = self._session
        assert session is not None
        await backend.attach(session)
        self._backend = backend
        self._mode = backend.mode
        self._recording.attach()
        self._apply_mute()
        if backend.input_finished is not None:
            self._spawn(self._watch_input_end(backend), "runtime.input_end")

    async def _watch_input_end(self, backend: ModeBackend) -> None:
        assert backend.input_finished is not None
        await backend.input_finished.wait()
        if self._backend is backend:
            self.input_finished.set()
            self._notice("info", "the input WAV has been played to its end")

    def _announce_mode(self) -> None:
        if self._backend is not None:
            self._emit(ModeChanged(mode=self._backend.mode, description=self._backend.description))

    # --- session events ---------------------------------------------------------------------
    def _on_session_event(self, ev: SessionEventModel) -> None:
        self._dispatch(ev)
        match ev:
            case SpeechCreatedEvent():
                ev.speech_handle.add_done_callback(self._on_speech_done)
            case ConversationItemAddedEvent(item=AgentHandoff()):
                self._emit_status()
            case CloseEvent() if not self._stopping:
                self._spawn(self._after_close(ev.reason, ev.error), "runtime.restart")
            case _:
                pass

    def _on_speech_done(self, handle: SpeechHandle) -> None:
        heard = any(
            isinstance(item, ChatMessage) and item.role == "assistant" for item in handle.chat_items
        )
        if handle.interrupted and not heard:
            self._emit(ReplyCutOff(speech_id=handle.id))

    async def _after_close(self, reason: CloseReason, error: str | None) -> None:
        """The session closed by itself (repeated model failures, the agent ended it): start a
        new one with the same agent, I/O and history, so that the app stays usable."""
        why = f"{reason.value}{f': {error}' if error else ''}"
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW:
            self._restarts.popleft()
        old, backend = self._session, self._backend
        if not self._restart_on_close or len(self._restarts) >= MAX_RESTARTS or old is None:
            self._notice("error", f"the session closed ({why}); restart voicetui to continue")
            return
        self._restarts.append(now)
        agent = self._agent
        try:
            agent = old.current_agent  # (after handoffs: the one talking)
        except RuntimeError:
            pass
        assert agent is not None
        self._ptt.open = False
        try:
            if backend is not None:
                await backend.detach(old)
            session = self._new_session()
            session.history.items = list(old.history.items)
            self._session = session
            if backend is not None:
                await self._attach(backend)
            await session.start(agent)
        except Exception as e:
            self._notice("error", f"the session closed ({why}) and could not restart: {e}")
            return
        self._notice("warning", f"the session closed ({why}); a new one goes on, history kept")
        self._emit_status()

    # --- status -----------------------------------------------------------------------------
    def _status(self) -> RuntimeStatus:
        agent_name = self._agent.label if self._agent is not None else ""
        if self._session is not None and self._session.running:
            try:
                agent_name = self._session.current_agent.label
            except RuntimeError:  # (between start and the first agent)
                pass
        return RuntimeStatus(
            agent_name=agent_name,
            models=self._models_desc,
            mic_muted=self._muted,
            push_to_talk=self._ptt.open,
            recording_dir=self._recording.directory,
            recording_since=self._recording.since,
            break_on_tool_call=self._breaks.enabled,
            room_configured=self._room_configured(),
            room_url=without_credentials(self._settings.room.url),
            room_name=self._settings.room.name,
        )

    def _emit(self, ev: RuntimeEvent) -> None:
        super()._emit(ev)
        self._recording.record(ev)

    def _ptt_changed(self) -> None:
        self._apply_mute()
        self._emit_status()

    def _emit_status(self, *, force: bool = False) -> None:
        status = self._status()
        if force or status != self._last_status:
            self._last_status = status
            self._emit(status)

    def _apply_mute(self) -> None:
        session, backend = self._session, self._backend
        muted = self._muted and not self._ptt.open  # a push-to-talk turn opens the mic
        if session is not None:
            session.input.set_audio_enabled(not muted)
        if backend is not None and backend.can_mute:
            backend.set_muted(muted)

    # --- talking ----------------------------------------------------------------------------
    def send_text(self, text: str) -> Future[None]:
        async def run() -> None:
            if not text.strip():
                raise ValueError("the message is empty")
            session = self._session_or_raise()
            # no need to wait for the interruption: the reply reads the conversation only
            # once the interrupted speech has recorded what was heard of it
            session.interrupt()
            session.generate_reply(user_input=text.strip())

        return self._submit("sending your message", run)

    def say(self, text: str) -> Future[None]:
        async def run() -> None:
            if not text.strip():
                raise ValueError("there is nothing to say")
            self._session_or_raise().say(text)

        return self._submit("saying", run)

    def interrupt(self) -> Future[None]:
        return self._submit("interrupting", lambda: interrupt_quietly(self._session_or_raise()))

    def set_mic_muted(self, muted: bool) -> Future[None]:
        async def run() -> None:
            self._muted = muted
            self._apply_mute()
            self._emit_status()

        return self._submit("muting" if muted else "unmuting", run)

    # --- push-to-talk -----------------------------------------------------------------------
    def push_to_talk(self) -> Future[None]:
        return self._submit("push-to-talk", self._push_to_talk)

    def cancel_push_to_talk(self) -> Future[None]:
        return self._submit("cancelling push-to-talk", self._cancel_push_to_talk)

    async def _push_to_talk(self) -> None:
        await self._ptt.press(self._session_or_raise(), self._mode)

    async def _cancel_push_to_talk(self) -> None:
        if self._ptt.open:
            self._ptt.cancel(self._session_or_raise())

    # --- modes and devices ------------------------------------------------------------------
    def switch_mode(self, mode: Mode, room: RoomDetails | None = None) -> Future[None]:
        if room is not None:  # credentials typed in the app: masked like configured ones
            for secret in (room.token, room.api_key, room.api_secret):
                if secret:
                    self._masker.add(secret)
        return self._submit(f"switching to {mode.upper()} mode", lambda: self._switch(mode, room))

    async def _switch(self, mode: Mode, room: RoomDetails | None) -> None:
        session = self._session_or_raise()
        if mode != "text":
            await self._prewarm_models(audio=True)  # (started in text mode: not loaded yet)
        new = await self._backend_factory(self._request(mode, room), self._hooks())
        if self._ptt.open:
            await self._cancel_push_to_talk()
        old = self._backend
        if old is not None:
            await old.detach(session)
        try:
            await self._attach(new)
        except BaseException:
            await new.aclose()
            if old is not None:
                await self._attach(old)
            raise
        if old is not None:
            try:
                await old.aclose()
            except Exception as e:
                logger.warning("closing the %s I/O: %s", old.mode, readable_error(e))
        self._announce_mode()
        self._emit_status()

    def list_devices(self) -> Future[list[dict[str, Any]]]:
        async def run() -> list[dict[str, Any]]:
            from ..io.local import list_devices

            return [asdict(d) for d in await asyncio.to_thread(list_devices)]

        return self._submit("listing audio devices", run, needs_session=False)

    def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> Future[None]:
        async def run() -> None:
            backend = self._backend
            if backend is not None and backend.mode == "local":
                await backend.select_devices(input_device, output_device)
                self._announce_mode()
            if input_device is not None:
                self._input_device = input_device
            if output_device is not None:
                self._output_device = output_device
            chosen = input_device is not None or output_device is not None
            if chosen and self._mode in ("text", "wav"):
                await self._switch("local", None)  # devices picked to talk: use them now
            elif chosen and self._mode == "room":
                self._notice("info", "the audio devices will be used in LOCAL mode")

        return self._submit("choosing audio devices", run)

    # --- tools ------------------------------------------------------------------------------
    def set_break_on_tool_call(self, enabled: bool) -> Future[None]:
        async def run() -> None:
            self._breaks.set_enabled(enabled)
            self._emit_status()

        return self._submit("break on tool call", run, needs_session=False)

    def resolve_tool_break(self, break_id: str, resolution: ToolBreakResolution) -> Future[None]:
        async def run() -> None:
            self._breaks.resolve(break_id, resolution)

        return self._submit("resolving the tool call", run)

    def rerun_tool(self, name: str, arguments: str) -> Future[ToolExecution]:
        async def run() -> ToolExecution:
            execution = await rerun_tool(self._session_or_raise(), name, arguments)
            self._emit(ToolRerun(execution=execution))
            return execution

        return self._submit(f"re-running {name}", run)

    # --- recording and export ---------------------------------------------------------------
    def start_recording(self, directory: str | None = None) -> Future[str]:
        return self._submit(
            "starting the recording",
            lambda: self._start_recording(directory or self._settings.record_dir),
        )

    async def _start_recording(self, directory: str | None) -> str:
        if self._recording.directory is not None:
            return self._recording.directory
        if self._session is None:
            raise RuntimeError("there is no session to record yet")
        backend = self._backend
        where = await self._recording.start(
            self._session,
            directory,
            metadata={
                "agent": self._status().agent_name,
                "models": self._models_desc,
                "mode": self._mode,
            },
            mode=ModeChanged(mode=backend.mode, description=backend.description)
            if backend is not None
            else None,
        )
        self._emit_status()
        self._notice("info", f"recording to {where}")
        return where

    async def _stop_recorder(self) -> None:
        if self._recording.directory is None:
            return
        try:
            where = await self._recording.stop()
        finally:
            self._emit_status()
        self._notice("info", f"recording saved in {where}")

    def stop_recording(self) -> Future[None]:
        return self._submit("stopping the recording", self._stop_recorder)

    def export_transcript(self, path: str) -> Future[str]:
        async def run() -> str:
            if self._session is None:
                raise RuntimeError("there is no conversation yet")
            items = list(self._session.history.items)
            agent = self._status().agent_name
            return await asyncio.to_thread(
                write_transcript,
                items,
                path,
                agent=agent,
                mode=self._mode,
                sanitize=self.sanitizer.text,
            )

        return self._submit("exporting the transcript", run, needs_session=False)


if TYPE_CHECKING:

    def _implements_the_contract(controller: SessionController) -> SessionRuntime:
        return controller


__all__ = ["AgentSource", "AgentTranscript", "CommandError", "SessionController"]
