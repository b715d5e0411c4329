"""``AgentActivity``: one agent's turn loop — the speech queue, the reply pipeline (LLM → text →
sentence-split TTS → audio), multi-step tool calls and interruptions."""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..exceptions import ModelError
from ..llm import LLM, ChatContext, ChatMessage, FunctionTool, ToolChoice
from ..metrics import AgentMetrics
from ..stt import STT
from ..stt import StreamAdapter as STTStreamAdapter
from ..tts import TTS
from ..tts import StreamAdapter as TTSStreamAdapter
from ..turn_detector import TurnDetector
from ..utils.aio import TaskSet, now
from ..vad import VAD, SharedVADEvents
from .agent import Agent, ModelSettings
from .audio_recognition import AudioRecognition
from .events import (
    SpeechCreatedEvent,
    SpeechSource,
)
from .io import AudioOutput
from .recognition_hooks import EndpointingOptions
from .reply import run_reply
from .say import run_say
from .speech_handle import SPEECH_PRIORITY_NORMAL, SpeechHandle
from .turn_latency import TurnTiming, current_turn_id
from .turn_options import TurnDetectionMode, TurnOptions
from .turn_taking import TurnTaking

if TYPE_CHECKING:
    from .agent_session import AgentSession

logger = logging.getLogger("voicetui.agents.voice")


class AgentActivity:
    def __init__(self, agent: Agent, session: AgentSession[Any]) -> None:
        self._agent = agent
        self._session = session
        self._options = session.options.with_overrides(agent.options)
        self._tasks = TaskSet(f"AgentActivity({agent.id})")
        self._speech_q: list[tuple[int, int, SpeechHandle]] = []
        self._seq = 0
        self._q_changed = asyncio.Event()
        self._pending: set[SpeechHandle] = set()
        self._all_done = asyncio.Event()
        self._all_done.set()
        self._current_speech: SpeechHandle | None = None
        self._draining = False
        self._closed = False
        self._on_enter_task: asyncio.Task[None] | None = None
        self._streaming_tts: TTS | None = None
        self._streaming_stt: STT | None = None
        # the recognition publishes its VAD events here; the STT adapter listens
        self._vad_events = SharedVADEvents()
        self._metrics_sources: list[Any] = []
        self._turns = TurnTaking(self)
        self._recognition: AudioRecognition | None = None
        self._last_speech_end: float | None = None

    # --- configuration --------------------------------------------------------------------
    @property
    def agent(self) -> Agent:
        return self._agent

    @property
    def session(self) -> AgentSession[Any]:
        return self._session

    @property
    def llm(self) -> LLM | None:
        return self._agent.llm or self._session.llm

    @property
    def stt(self) -> STT | None:
        return self._agent.stt or self._session.stt

    @property
    def tts(self) -> TTS | None:
        return self._agent.tts or self._session.tts

    @property
    def vad(self) -> VAD | None:
        return self._agent.vad or self._session.vad

    @property
    def streaming_tts(self) -> TTS | None:
        tts = self.tts
        if tts is None or tts.capabilities.streaming:
            return tts
        if (
            self._streaming_tts is None
            or getattr(self._streaming_tts, "wrapped_tts", None) is not tts
        ):
            self._streaming_tts = TTSStreamAdapter(tts=tts)
        return self._streaming_tts

    @property
    def streaming_stt(self) -> STT | None:
        stt = self.stt
        if stt is None or stt.capabilities.streaming:
            return stt
        if self.vad is None:
            return None
        if (
            self._streaming_stt is None
            or getattr(self._streaming_stt, "wrapped_stt", None) is not stt
        ):
            self._streaming_stt = STTStreamAdapter(
                stt=stt, vad=self.vad, vad_events=self._shared_vad_events()
            )
        return self._streaming_stt

    def _shared_vad_events(self) -> SharedVADEvents | None:
        """The recognition's VAD events for the STT adapter (no second VAD stream), if the STT
        hears what the VAD hears: the default ``stt_node`` (an override may change the audio)."""
        return self._vad_events if type(self._agent).stt_node is Agent.stt_node else None

    @property
    def tools(self) -> list[FunctionTool]:
        return self._agent.tools

    @property
    def options(self) -> TurnOptions:
        """The effective turn-taking options: the agent's overrides over the session's."""
        return self._options

    @property
    def current_speech(self) -> SpeechHandle | None:
        return self._current_speech

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def recognition(self) -> AudioRecognition | None:
        return self._recognition

    def turn_detector(self) -> TurnDetector | None:
        """The end-of-turn model deciding at the VAD's pauses: the agent's, else the
        session's unless the agent chose another mode; none while the mode is switched to
        something else for now (push-to-talk)."""
        if self._session._turn_detection_override not in (None, "vad"):
            return None
        if self._agent.turn_detector is not None:
            return self._agent.turn_detector
        if "turn_detection" in self._agent.options.given():
            return None  # the agent chose a mode of its own
        return self._session.turn_detector

    def turn_detection_mode(self) -> TurnDetectionMode:
        mode = self._session._turn_detection_override or self._options.turn_detection
        if mode is None:
            return "vad" if self.vad is not None else "stt" if self.stt is not None else "manual"
        if mode == "vad" and self.vad is None:
            raise ValueError('turn_detection="vad" needs a VAD: pass vad= to the session or agent')
        if mode == "stt" and self.stt is None:
            raise ValueError('turn_detection="stt" needs an STT')
        return mode

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._agent._activity = self
        for model in {self.llm, self.stt, self.tts, self.vad} - {None}:
            model.on("metrics_collected", self._on_model_metrics)  # type: ignore[union-attr]
            self._metrics_sources.append(model)
        self._start_recognition()
        if (detector := self.turn_detector()) is not None:
            # loaded now, off the loop, rather than at the user's first pause
            self._tasks.create(asyncio.to_thread(detector.prewarm), name="TurnDetector.prewarm")
        self._tasks.create(self._scheduling_loop(), name="AgentActivity.scheduling")
        self._on_enter_task = self._tasks.create(
            self._run_hook("on_enter", self._agent.on_enter), name="AgentActivity.on_enter"
        )

    async def drain(self) -> None:
        """Run ``on_exit`` (which may still speak), then refuse new speech and wait until every
        queued speech has played out."""
        if self._on_enter_task is not None and not self._on_enter_task.done():
            await asyncio.wait({self._on_enter_task})
        await self._run_hook("on_exit", self._agent.on_exit)
        self._draining = True
        await self._all_done.wait()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._draining = True
        if self._recognition is not None:
            await self._recognition.aclose()
            # (its callbacks close over this activity: no cycle once closed)
            self._recognition = None
            self._turns.attach(None)
        await self._turns.aclose()
        for handle in list(self._pending):
            handle._cancel()
        await self._tasks.aclose()
        for handle in list(self._pending):
            handle._mark_done()
        for model in self._metrics_sources:
            model.off("metrics_collected", self._on_model_metrics)
        self._metrics_sources.clear()
        if self._agent._activity is self:
            self._agent._activity = None

    async def wait_for_user_turn(self) -> None:
        """Until the user turn being committed is in history and its reply scheduled."""
        await self._turns.wait_for_user_turn()

    async def wait_until_idle(self) -> None:
        """Until nothing is left to say: no user turn being committed, no speech queued,
        playing or waiting for its tools (a finishing speech may schedule its tool reply)."""
        while True:
            await self._turns.wait_for_user_turn()
            await self._all_done.wait()
            await asyncio.sleep(0)  # let done-callbacks and just-scheduled work run
            if self._all_done.is_set() and self._turns.user_turn_done:
                return

    async def _run_hook(self, name: str, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.exception("%s.%s raised", self._agent.label, name)
            self._session._report_error("agent", f"{self._agent.label}.{name} failed: {e}", e)

    def _on_model_metrics(self, metrics: AgentMetrics) -> None:
        if metrics.turn_id is None:  # (emitted from a reply's task: the turn it answers)
            metrics.turn_id = current_turn_id.get()
        self._session._emit_metrics(metrics)

    # --- listening ------------------------------------------------------------------------
    def _start_recognition(self) -> None:
        mode = self.turn_detection_mode()
        stt = self.stt
        if stt is not None and self.streaming_stt is None:
            raise ValueError(
                f"{stt.label} does not stream: give the session a VAD so it can be wrapped"
            )
        if stt is None and self.vad is None:
            return  # text only

        def endpointing() -> EndpointingOptions:
            return EndpointingOptions(
                min_delay=self.options.min_endpointing_delay,
                max_delay=self.options.max_endpointing_delay,
            )

        self._recognition = AudioRecognition(
            self._turns,
            vad=self.vad,
            stt_node=self._agent.stt_node if stt is not None else None,
            stt_label=stt.label if stt is not None else "",
            turn_detection=mode,
            endpointing=endpointing,
            turn_detector=self.turn_detector(),
            preemptive_generation=lambda: self.options.preemptive_generation,
            stt_conn_options=self._session.conn_options.stt,
            vad_events=self._vad_events,
        )
        self._turns.attach(self._recognition)
        self._recognition.start()

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        """User audio from the session's input."""
        if self._recognition is None or self._closed:
            return
        speech = self._current_speech
        if (
            speech is not None
            and not speech.done()
            and not speech.allow_interruptions
            and self.options.discard_audio_if_uninterruptible
        ):
            return  # the user talks over a speech that cannot be interrupted: not a turn
        self._recognition.push_audio(frame)

    def apply_turn_detection(self) -> None:
        if self._recognition is not None:
            self._recognition.set_mode(self.turn_detection_mode())
            self._recognition.set_turn_detector(self.turn_detector())

    def on_audio_input_stopped(self) -> None:
        if self._recognition is not None:
            self._recognition.on_input_stopped()

    async def commit_user_turn(self, *, transcript_timeout: float) -> None:
        if self._recognition is None:
            raise RuntimeError("commit_user_turn needs an STT: this session has none")
        await self._recognition.commit_user_turn(transcript_timeout=transcript_timeout)
        await self._turns.wait_for_user_turn()

    def clear_user_turn(self) -> None:
        if self._recognition is not None:
            self._recognition.clear_user_turn()

    def record_user_message(self, msg: ChatMessage) -> None:
        """A committed user turn joins the agent's context and the session history."""
        self._agent._chat_ctx.append(msg)
        self._session._conversation_item_added(msg)

    def reply_to_user_turn(self, chat_ctx: ChatContext, timing: TurnTiming) -> SpeechHandle:
        handle = SpeechHandle(allow_interruptions=self._allow_interruptions(None))
        handle._turn_timing = timing
        self._emit_speech_created(handle, source="generate_reply", user_initiated=False)
        self._schedule_speech(
            handle, run_reply(self, handle, chat_ctx=chat_ctx, model_settings=ModelSettings())
        )
        return handle

    def start_preemptive_reply(self, chat_ctx: ChatContext) -> SpeechHandle:
        """Start generating a reply now (LLM, TTS) but play it only once enqueued."""
        handle = SpeechHandle(allow_interruptions=self._allow_interruptions(None))
        self._start_speech_task(
            handle, run_reply(self, handle, chat_ctx=chat_ctx, model_settings=ModelSettings())
        )
        return handle

    def enqueue_preemptive(self, handle: SpeechHandle) -> None:
        if handle.done():
            return
        self._emit_speech_created(handle, source="generate_reply", user_initiated=False)
        self._enqueue(handle, priority=SPEECH_PRIORITY_NORMAL, force=False)

    # --- scheduling -----------------------------------------------------------------------
    def _schedule_speech(
        self,
        handle: SpeechHandle,
        coro: Coroutine[Any, Any, None],
        *,
        priority: int = SPEECH_PRIORITY_NORMAL,
        force: bool = False,
    ) -> None:
        if (self._draining and not force) or self._closed:
            coro.close()
            raise RuntimeError(f"{self._agent.label} is leaving the session: cannot speak now")
        self._start_speech_task(handle, coro)
        self._enqueue(handle, priority=priority, force=force)

    def _start_speech_task(self, handle: SpeechHandle, coro: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception as e:
                logger.exception("speech %s failed", handle.id)
                self._session._report_error(
                    "agent", f"the reply failed: {type(e).__name__}: {e}", e
                )
            finally:
                handle._mark_done()

        self._tasks.create(run(), name=f"speech {handle.id}")

    def _enqueue(self, handle: SpeechHandle, *, priority: int, force: bool) -> None:
        if (self._draining and not force) or self._closed:
            handle._cancel()
            raise RuntimeError(f"{self._agent.label} is leaving the session: cannot speak now")
        self._pending.add(handle)
        self._all_done.clear()
        handle.add_done_callback(self._on_speech_done)
        heapq.heappush(self._speech_q, (-priority, self._seq, handle))
        self._seq += 1
        handle._mark_scheduled()
        self._q_changed.set()

    def _on_speech_done(self, handle: SpeechHandle) -> None:
        self._pending.discard(handle)
        if not self._pending:
            self._all_done.set()
        if self._current_speech is None:
            self._refresh_agent_state()

    def _on_generation_done(self, handle: SpeechHandle) -> None:
        """A speech's own audio is out while its tools still run (the agent thinks meanwhile,
        unless the user cut it off)."""
        if not handle.interrupted:
            self._session._update_agent_state("thinking")
        handle._mark_generation_done()

    def _busy(self) -> bool:
        """Something will still be said: a speech queued or generating, or tools whose
        results will be answered (those of an interrupted speech will not)."""
        return any(
            not h.done() and not (h.interrupted and h.generation_done) for h in self._pending
        )

    def _refresh_agent_state(self) -> None:
        """Between speeches: thinking while something is still coming, else idle."""
        if self._closed:
            return
        if self._busy():
            self._session._update_agent_state("thinking")
        else:
            self._session._set_agent_idle()

    async def _scheduling_loop(self) -> None:
        while True:
            await self._q_changed.wait()
            while self._speech_q:
                _, _, speech = heapq.heappop(self._speech_q)
                if speech.done():
                    continue
                delay = self.options.min_consecutive_speech_delay
                if delay > 0 and self._last_speech_end is not None:
                    await asyncio.sleep(max(0.0, self._last_speech_end + delay - now()))
                    if speech.done():
                        continue
                self._current_speech = speech
                self._turns.on_speech_authorized(speech)
                speech._authorize_generation()
                # the next speech may start once this one's own audio is out, even while its
                # tools still run (a tool may be waiting for that next speech)
                await speech._wait_for_generation()
                self._current_speech = None
                self._last_speech_end = now()
            self._q_changed.clear()
            self._refresh_agent_state()  # nothing left to play: thinking (tools) or idle

    def playout_order(self) -> list[SpeechHandle]:
        """The current speech, then the queued ones in the order they will play."""
        queued = [h for _, _, h in sorted(self._speech_q, key=lambda e: (e[0], e[1]))]
        current = self._current_speech
        order = [current] if current is not None and not current.done() else []
        return order + [h for h in queued if not h.done() and h is not current]

    def interrupt(self, *, force: bool = False) -> asyncio.Future[None]:
        """Interrupt what the agent is saying and what it queued, in playout order up to the
        first speech that does not allow it: that one and those behind it still play (cutting
        the middle out of a chain would leave a gap). ``force`` interrupts all. Speeches whose
        audio is over but whose tools still run are interrupted too (no tool reply follows)."""
        order = self.playout_order()
        handles: list[SpeechHandle] = []
        for h in order:
            if not force and not h.allow_interruptions:
                break
            handles.append(h)
        handles += [
            h
            for h in self._pending
            if h not in order and not h.done() and (force or h.allow_interruptions)
        ]
        self._turns.discard_preemptive()  # it was made for a context that no longer holds
        for h in handles:
            h._cancel()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        remaining = [h for h in handles if not h.done()]
        if not remaining:
            fut.set_result(None)
            return fut

        def on_done(_: SpeechHandle) -> None:
            if all(h.done() for h in remaining) and not fut.done():
                fut.set_result(None)

        for h in remaining:
            h.add_done_callback(on_done)
        return fut

    # --- speech creation ------------------------------------------------------------------
    def _emit_speech_created(
        self, handle: SpeechHandle, *, source: SpeechSource, user_initiated: bool
    ) -> None:
        self._session._on_speech_created(
            SpeechCreatedEvent(
                user_initiated=user_initiated,
                source=source,
                speech_handle=handle,
                speech_id=handle.id,
            )
        )

    def say(
        self,
        text: str | AsyncIterable[str],
        *,
        audio: AsyncIterable[rtc.AudioFrame] | None = None,
        allow_interruptions: bool | None = None,
        add_to_chat_ctx: bool = True,
    ) -> SpeechHandle:
        handle = SpeechHandle(allow_interruptions=self._allow_interruptions(allow_interruptions))
        self._emit_speech_created(handle, source="say", user_initiated=True)
        self._schedule_speech(handle, run_say(self, handle, text, audio, add_to_chat_ctx))
        return handle

    def generate_reply(
        self,
        *,
        user_message: ChatMessage | None = None,
        instructions: str | None = None,
        tool_choice: ToolChoice | None = None,
        allow_interruptions: bool | None = None,
        user_initiated: bool = True,
    ) -> SpeechHandle:
        handle = SpeechHandle(allow_interruptions=self._allow_interruptions(allow_interruptions))
        if user_message is not None:  # a typed turn: its latency counts from now
            handle._turn_timing = TurnTiming(now(), end_of_turn_delay=None, typed=True)
            self._session._handoff_timing = None
        elif self._session._handoff_timing is not None:
            # the first reply after a handoff answers the turn that caused it
            handle._turn_timing, self._session._handoff_timing = self._session._handoff_timing, None
        self._emit_speech_created(handle, source="generate_reply", user_initiated=user_initiated)

        async def reply() -> None:
            # Wait for this reply's turn before reading the context: a speech interrupted
            # just before (typed input does interrupt(), then this) records what was heard of
            # it first, so history keeps the order of events and the LLM knows what was said.
            await handle.wait_if_not_interrupted([handle._authorized])
            if user_message is not None:
                self.record_user_message(user_message)  # kept even if the reply is cut off
            if handle.interrupted:
                return
            chat_ctx = self._agent._chat_ctx.copy()
            if instructions:
                chat_ctx.append(ChatMessage(role="system", content=[instructions]))
            await run_reply(
                self,
                handle,
                chat_ctx=chat_ctx,
                model_settings=ModelSettings(tool_choice=tool_choice),
            )

        self._schedule_speech(handle, reply())
        return handle

    def _allow_interruptions(self, value: bool | None) -> bool:
        return self.options.allow_interruptions if value is None else value

    # --- speaking -------------------------------------------------------------------------
    def audio_output(self) -> AudioOutput | None:
        return self._session.output.audio if self._session.output.audio_enabled else None

    def _report_model_error(
        self, exc: BaseException, *, default_source: str, note: str = ""
    ) -> None:
        """A model failed for good (its retries are spent): tell the user, count it."""
        source = exc.source if isinstance(exc, ModelError) else default_source
        message = exc.message if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
        if note:
            message = f"{message} ({note})"
        self._session._report_error(source, message, exc, recoverable=False)
