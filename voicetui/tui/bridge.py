"""The one place the TUI meets the runtime.

Runtime → UI: the runtime calls :meth:`RuntimeBridge._on_event` on its own thread. The bridge
turns the event into a Textual message and queues it (a lock held for a few list operations,
never for UI work), then wakes the app with one :class:`BridgeWakeup` if none is in flight. The
app calls :meth:`RuntimeBridge.on_wakeup` on its thread, which drains the queue at most every
``min_interval`` seconds (20 Hz) and posts the messages, in order, in one
:class:`RuntimeBatch`. High-rate data is merged while
it waits: audio levels keep only the latest value, an interim transcript replaces the interim
before it, model-loading progress replaces the previous progress of the same model, and log
records beyond ``max_pending_logs`` are dropped and counted. So a slow UI never slows the
runtime, and the runtime never floods the UI.

UI → runtime: :meth:`RuntimeBridge.command` calls a runtime command (they return at once with a
``concurrent.futures.Future``) and turns a failure into a :class:`CommandFailed` message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar, assert_never

from textual.message import Message
from textual.message_pump import MessagePump

from ..agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    MetricsCollectedEvent,
    SpeechCreatedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from ..runtime.api import (
    AgentTranscript,
    AudioLevels,
    CommandError,
    LogRecordEvent,
    ModeChanged,
    ModelLoading,
    Notice,
    ReplyCutOff,
    RoomUpdate,
    RuntimeEvent,
    RuntimeStatus,
    SessionRuntime,
    ToolBreak,
    ToolRerun,
)
from ..untrusted import Sanitizer
from . import messages as m

logger = logging.getLogger("voicetui.tui")

T = TypeVar("T")


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def describe_failure(label: str, exc: BaseException | None) -> str:
    """One sentence: the runtime's own (it names what failed), else "<label> failed: why"."""
    if isinstance(exc, CommandError):
        return describe_error(exc)
    return f"{label} failed: {describe_error(exc) if exc is not None else 'cancelled'}"


def to_message(ev: RuntimeEvent) -> Message | None:
    """The Textual message for a runtime event (None: the UI ignores it)."""
    match ev:
        case UserInputTranscribedEvent():
            return m.UserTranscript(ev)
        case AgentTranscript():
            return m.AgentTranscript(ev.speech_id, ev.text, ev.final)
        case AgentStateChangedEvent():
            return m.AgentStateUpdate(ev.new_state, ev.created_at)
        case UserStateChangedEvent():
            return m.UserStateUpdate(ev.new_state, ev.created_at)
        case ConversationItemAddedEvent():
            return m.ConversationItem(ev)
        case FunctionToolsStartedEvent():
            return m.ToolsStarted(ev)
        case FunctionToolsExecutedEvent():
            return m.ToolsExecuted(ev)
        case MetricsCollectedEvent():
            return m.MetricsUpdate(ev.metrics)
        case AgentFalseInterruptionEvent():
            return m.FalseInterruption(ev.resumed, ev.created_at)
        case ErrorEvent():
            return m.SessionError(ev)
        case CloseEvent():
            return m.SessionClosed(ev)
        case ModeChanged():
            return m.ModeUpdate(ev)
        case RuntimeStatus():
            return m.StatusUpdate(ev)
        case AudioLevels():
            return m.LevelsUpdate(ev)
        case ModelLoading():
            return m.LoadingUpdate(ev)
        case Notice():
            return m.NoticePosted(ev)
        case RoomUpdate():
            return m.NoticePosted(Notice(level=ev.level, message=ev.event.message))
        case ToolBreak():
            return m.ToolBreakRequested(ev)
        case ToolRerun():
            return m.ToolRerunDone(ev)
        case ReplyCutOff():
            return m.ReplyWasCutOff()
        case SpeechCreatedEvent() | LogRecordEvent():
            return None  # (log records go to the Logs tab in batches, see _on_event)
        case _:
            assert_never(ev)


def _replaces(new: Message, old: Message) -> bool:
    """Whether ``new`` makes ``old`` (queued just before it) pointless."""
    if isinstance(new, m.UserTranscript) and isinstance(old, m.UserTranscript):
        return not old.event.is_final
    if isinstance(new, m.AgentTranscript) and isinstance(old, m.AgentTranscript):
        return old.speech_id == new.speech_id and not old.final
    if isinstance(new, m.LoadingUpdate) and isinstance(old, m.LoadingUpdate):
        return old.event.kind == new.event.kind and old.event.stage not in ("ready", "failed")
    return False


_CLEAN = Sanitizer()


class RuntimeBridge:
    def __init__(
        self,
        runtime: SessionRuntime,
        target: MessagePump,
        *,
        min_interval: float = 0.05,
        max_pending_logs: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self._target = target
        self._min_interval = min_interval
        self._max_pending_logs = max_pending_logs
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: list[Message] = []
        self._levels: m.LevelsUpdate | None = None
        self._logs: list[LogRecordEvent] = []
        self._dropped_logs = 0
        self._wakeup_pending = False
        self._timer_armed = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = float("-inf")
        self._unsubscribe: Callable[[], None] | None = None
        self.events_received = 0
        self.messages_posted = 0

    # --- lifecycle (UI thread) --------------------------------------------------------------
    def attach(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.runtime.subscribe(self._on_event)

    def detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            try:
                unsubscribe()
            except Exception:  # the runtime may already be gone
                logger.debug("unsubscribe failed", exc_info=True)

    # --- runtime thread ---------------------------------------------------------------------
    def _on_event(self, ev: RuntimeEvent) -> None:
        """Called by the runtime, on its thread: queue and return at once. Every event is
        cleaned of control sequences here, whichever runtime sent it (no copy if clean)."""
        try:
            ev = _CLEAN.event(ev)
            if isinstance(ev, LogRecordEvent):
                with self._lock:
                    self.events_received += 1
                    if len(self._logs) < self._max_pending_logs:
                        self._logs.append(ev)
                    else:
                        self._dropped_logs += 1
                    wake = not self._wakeup_pending
                    self._wakeup_pending = True
            elif (msg := to_message(ev)) is not None:
                with self._lock:
                    self.events_received += 1
                    if isinstance(msg, m.LevelsUpdate):
                        self._levels = msg
                    elif self._queue and _replaces(msg, self._queue[-1]):
                        self._queue[-1] = msg
                    else:
                        self._queue.append(msg)
                    wake = not self._wakeup_pending
                    self._wakeup_pending = True
            else:
                return
            if wake:
                self._target.post_message(m.BridgeWakeup())
        except Exception:  # never raise into the runtime
            logger.exception("bridge: could not queue %r", ev.type)

    # --- UI thread --------------------------------------------------------------------------
    def on_wakeup(self) -> None:
        """The app got a :class:`BridgeWakeup`: flush now, or when the interval allows."""
        wait = self._last_flush + self._min_interval - self._clock()
        if wait > 0:
            if not self._timer_armed:
                self._timer_armed = True
                self._schedule_flush(wait)
            return
        self.flush()

    def _schedule_flush(self, delay: float) -> None:
        """``flush`` in ``delay`` seconds, on this (the UI) thread. Not with Textual's
        ``set_timer``: a one-shot Textual timer whose task first runs after its deadline (a GC
        pause, the GIL held by the runtime's thread) is skipped, never called — and with the
        flush lost, no wakeup would ever come again."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven by hand, off any loop (unit tests)
            self._target.set_timer(delay, self.flush)
            return
        self._timer = loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Post everything queued, in order (levels last, logs as one batch), as one
        :class:`RuntimeBatch`."""
        self._timer_armed = False
        self._timer = None
        with self._lock:
            queue, self._queue = self._queue, []
            levels, self._levels = self._levels, None
            logs, self._logs = self._logs, []
            dropped, self._dropped_logs = self._dropped_logs, 0
            self._wakeup_pending = False
        self._last_flush = self._clock()
        out: list[Message] = queue
        if levels is not None:
            out.append(levels)
        if logs or dropped:
            out.append(m.LogBatch(logs, dropped))
        if out:
            self._target.post_message(m.RuntimeBatch(out))
        self.messages_posted += len(out)

    def command(
        self,
        label: str,
        call: Callable[[], Future[T]],
        then: Callable[[T], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        *,
        undo: Callable[[], None] | None = None,
    ) -> None:
        """Run a runtime command. ``then(result)`` runs on the UI thread when it succeeds; a
        failure runs ``on_error(message)`` there. Without ``on_error`` a failure is shown
        once: the runtime's own notice says it, or else a :class:`CommandFailed` message.
        ``undo`` runs on the UI thread after a failure (an optimistic change taken back)."""

        def fail(exc: BaseException | None) -> None:
            if undo is not None:
                self._target.post_message(m.CommandDone(label, undo))
            if on_error is not None:
                reason = _CLEAN.text(describe_error(exc)) if exc is not None else "cancelled"
                self._target.post_message(m.CommandDone(label, lambda: on_error(reason)))
            elif not (isinstance(exc, CommandError) and exc.announced):
                failure = _CLEAN.text(describe_failure(label, exc))
                self._target.post_message(m.CommandFailed(label, failure))

        try:
            future = call()
        except Exception as e:
            fail(e)
            return

        def done(fut: Future[T]) -> None:
            if fut.cancelled():
                fail(None)
                return
            exc = fut.exception()
            if exc is not None:
                fail(exc)
            elif then is not None:
                result = fut.result()
                self._target.post_message(m.CommandDone(label, lambda: then(result)))

        future.add_done_callback(done)
