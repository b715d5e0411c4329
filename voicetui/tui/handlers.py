"""How the app reacts to what the bridge posts: runtime events → widget updates. Widgets are
only ever updated here, on the UI thread; commands go back through the bridge.

A batch is handled in slices of about :data:`SLICE_SECONDS`: when the runtime (or a recording)
delivers thousands of events at once, the rest waits in a backlog while the app draws a frame
and reads the keyboard, so the UI stays responsive. The agent/user state and the sidebar's recent
turns are shown once per slice, not once per event."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from textual.app import App
from textual.message import Message
from textual.widgets import TabbedContent

from ..agents.llm.chat_context import ChatMessage
from ..agents.metrics import EOUMetrics
from ..conversation import Said, ToolCall, event_entries, pending_calls
from ..runtime.api import ModeChanged, RuntimeStatus, SessionRuntime, ToolBreak, ToolBreakResolution
from . import messages as m
from .bridge import RuntimeBridge
from .screens.tool_break import ToolBreakScreen
from .widgets.conversation import ConversationView
from .widgets.error_banner import ErrorBanner
from .widgets.header import SessionHeader
from .widgets.latency import LatencyPanel, RecentTurns
from .widgets.loading import LoadingPanel
from .widgets.logs import LogsPanel
from .widgets.state import StatePanel
from .widgets.timeline import TimelinePanel
from .widgets.tools import ToolsPanel

SLICE_SECONDS = 0.010
"""The time spent on runtime messages before the app may draw and read input again."""
SLICE_MIN_MESSAGES = 64
"""Messages always handled in one go (a small batch is never split)."""


class RuntimeHandlers(App[int]):
    """The message handlers of :class:`voicetui.tui.app.VoiceTUIApp`."""

    runtime: SessionRuntime
    bridge: RuntimeBridge
    clock: Callable[[], float]
    read_only: bool

    def init_state(self) -> None:
        self.status: RuntimeStatus | None = None
        self.mode_event: ModeChanged | None = None
        self.last_audio_mode: Literal["local", "room"] = "local"
        """Where ctrl+t goes back to from text."""
        self.mic_muted = False
        self.ptt_open = False
        self.break_on_tool_call = False
        self.recording_dir: str | None = None
        self._breaks: list[ToolBreak] = []
        self._break_open = False
        self._bindings_ptt_open = False
        self._backlog: deque[Message] = deque()
        self._continue_posted = False
        # shown on the state panels at the end of each slice
        self._agent_state = "initializing"
        self._user_state = "listening"
        self._tools_running = 0
        self._last_e2e: float | None = None
        self._states_dirty = False
        self._recent_dirty = False
        self._timeline_version = 0

    # --- widgets (looked up once: queries walk the DOM) -----------------------------------------
    def cache_widgets(self) -> None:
        self.conversation = self.query_one("#conversation", ConversationView)
        self.tools_panel = self.query_one("#tools", ToolsPanel)
        self.latency_panel = self.query_one("#latency", LatencyPanel)
        self.logs_panel = self.query_one("#logs", LogsPanel)
        self.header = self.query_one(SessionHeader)
        self.error_banner = self.query_one(ErrorBanner)
        self.loading_panel = self.query_one(LoadingPanel)
        self.tabs = self.query_one("#tabs", TabbedContent)
        self._state_panels = list(self.query(StatePanel))
        self.recent_turns = self.query_one(RecentTurns)
        self.timeline = self.query_one("#timeline", TimelinePanel)

    def state_panels(self) -> list[StatePanel]:
        return self._state_panels

    # --- bridge plumbing --------------------------------------------------------------------
    def on_bridge_wakeup(self, _: m.BridgeWakeup) -> None:
        self.bridge.on_wakeup()

    def on_runtime_batch(self, batch: m.RuntimeBatch) -> None:
        """Handle the batch's messages after any left from earlier batches, for one slice; an
        empty batch continues the backlog (posted to itself, so whatever wraps this handler
        wraps every slice)."""
        if not batch.messages:
            self._continue_posted = False
        self._backlog.extend(batch.messages)
        self._handle_slice()

    @property
    def runtime_backlog(self) -> int:
        """Runtime messages received but not handled yet."""
        return len(self._backlog)

    def _handle_slice(self) -> None:
        backlog = self._backlog
        started = time.perf_counter()
        handled = 0
        try:
            while backlog:
                msg = backlog.popleft()
                handler = getattr(self, msg.handler_name, None)
                if handler is not None:
                    handler(msg)
                handled += 1
                if handled >= SLICE_MIN_MESSAGES and time.perf_counter() - started >= SLICE_SECONDS:
                    break
        finally:
            self._end_slice()
        if backlog and not self._continue_posted:
            self._continue_posted = True
            # after the loop has run once more: queued keys, timers and a frame come first
            asyncio.get_running_loop().call_soon(self.post_message, m.RuntimeBatch([]))

    def _end_slice(self) -> None:
        if self._states_dirty:
            self._states_dirty = False
            for panel in self.state_panels():
                panel.agent_state = self._agent_state
                panel.user_state = self._user_state
                panel.tools_running = self._tools_running
                panel.last_e2e = self._last_e2e
        if self._recent_dirty:
            self._recent_dirty = False
            self.recent_turns.rows_changed()
        if self.timeline.model.version != self._timeline_version:
            self._timeline_version = self.timeline.model.version
            self.timeline.changed()

    def show_error(self, text: str) -> None:
        """An error the user must see: a toast, and the banner until dismissed."""
        self.notify(text, title="voicetui", severity="error", timeout=6, markup=False)
        if not self.read_only:  # (a recording's errors are history, not news)
            self.error_banner.report(text)
            self.refresh_bindings()

    def on_command_failed(self, msg: m.CommandFailed) -> None:
        self.show_error(msg.error)
        self.conversation.notice("error", msg.error)

    def on_command_done(self, msg: m.CommandDone) -> None:
        msg.then()

    # --- conversation -----------------------------------------------------------------------
    def on_user_transcript(self, msg: m.UserTranscript) -> None:
        ev = msg.event
        self.conversation.user_transcript(ev.transcript, ev.is_final)
        self.timeline.model.transcript(ev.transcript, ev.is_final, ev.created_at)

    def on_agent_transcript(self, msg: m.AgentTranscript) -> None:
        self.conversation.agent_text(msg.speech_id, msg.text)

    def on_conversation_item(self, msg: m.ConversationItem) -> None:
        ev = msg.event
        for entry in event_entries(ev, ev.created_at):
            self.conversation.add(entry)
        match ev.item:
            case ChatMessage(role="assistant") as said:
                metrics = said.metrics
                self.timeline.model.reply(
                    metrics.started_speaking_at, metrics.stopped_speaking_at, said.interrupted
                )
                row = self.latency_panel.book.add_assistant_report(metrics)
                self.latency_panel.row_changed(row)
                if row is not None:
                    self._recent_dirty = True
                if row is not None and row.e2e is not None:
                    self._last_e2e = row.e2e
                    self._states_dirty = True
            case _:
                pass  # (the latency of a reply only)

    def on_reply_was_cut_off(self, _: m.ReplyWasCutOff) -> None:
        # "… ⏹ interrupted": a reply of which nothing was heard
        self.conversation.add(Said(time.time(), "agent", "", interrupted=True))

    def on_false_interruption(self, msg: m.FalseInterruption) -> None:
        what = "the agent resumed" if msg.resumed else "the agent did not resume"
        self.conversation.info(f"false interruption: {what}")
        self.timeline.model.false_interruption(msg.at, msg.resumed)

    def on_session_error(self, msg: m.SessionError) -> None:
        ev = msg.event
        self.conversation.error(ev.source, ev.message, ev.recoverable)
        if not ev.recoverable:
            self.show_error(f"{ev.source}: {ev.message}")

    def on_session_closed(self, msg: m.SessionClosed) -> None:
        reason = msg.event.reason.value
        suffix = f": {msg.event.error}" if msg.event.error else ""
        self.conversation.notice(
            "error" if msg.event.error else "info", f"session closed ({reason}){suffix}"
        )
        self._agent_state = "idle"
        self._tools_running = 0
        self._states_dirty = True

    def on_notice_posted(self, msg: m.NoticePosted) -> None:
        notice = msg.notice
        if notice.level == "error":
            self.show_error(notice.message)
        else:
            severity: Literal["information", "warning"] = (
                "information" if notice.level == "info" else "warning"
            )
            self.notify(notice.message, severity=severity, timeout=5, markup=False)
        self.conversation.notice(notice.level, notice.message)

    # --- state ------------------------------------------------------------------------------
    def on_agent_state_update(self, msg: m.AgentStateUpdate) -> None:
        self.timeline.model.agent_state(msg.state, msg.at)
        self._agent_state = msg.state
        if msg.state in ("listening", "idle"):
            self._tools_running = 0
        self._states_dirty = True

    def on_user_state_update(self, msg: m.UserStateUpdate) -> None:
        self.timeline.model.user_state(msg.state, msg.at)
        self._user_state = msg.state
        self._states_dirty = True

    def on_levels_update(self, msg: m.LevelsUpdate) -> None:
        lv = msg.levels
        for panel in self.state_panels():
            panel.show_levels(
                lv.input_dbfs,
                lv.input_peak_dbfs,
                lv.output_dbfs,
                lv.output_peak_dbfs,
                echo_cancelling=lv.echo_cancelling,
                erle_db=lv.erle_db,
            )

    def on_mode_update(self, msg: m.ModeUpdate) -> None:
        first = self.mode_event is None
        self.mode_event = msg.event
        if msg.event.mode in ("local", "room"):
            self.last_audio_mode = "room" if msg.event.mode == "room" else "local"
        self.header.mode = msg.event.mode
        self.header.mode_description = msg.event.description
        for panel in self.state_panels():
            panel.mode = msg.event.mode
        if not first:
            self.conversation.info(f"switched to {msg.event.description}")

    def on_status_update(self, msg: m.StatusUpdate) -> None:
        st = msg.status
        self.status = st
        self.mic_muted = st.mic_muted
        self.ptt_open = st.push_to_talk
        self.break_on_tool_call = st.break_on_tool_call
        self.recording_dir = st.recording_dir
        header = self.header
        header.agent_name = st.agent_name
        header.models = st.models
        header.recording_dir = st.recording_dir
        header.recording_since = st.recording_since if st.recording_dir else None
        self.sync_controls()

    def sync_controls(self) -> None:
        """Show the control state (after a status update or an optimistic change)."""
        for panel in self.state_panels():
            panel.mic_muted = self.mic_muted
            panel.push_to_talk = self.ptt_open
            panel.break_on_tool_call = self.break_on_tool_call
        self.tools_panel.set_break(self.break_on_tool_call)
        if self.ptt_open != self._bindings_ptt_open:
            # the footer is rebuilt on every refresh (tens of ms): only when a key's state
            # changes — "Cancel talk" (Esc) exists while push-to-talk is open
            self._bindings_ptt_open = self.ptt_open
            self.refresh_bindings()

    def on_loading_update(self, msg: m.LoadingUpdate) -> None:
        loading = self.loading_panel
        loading.update_progress(msg.event)
        self.header.loading_text = loading.summary()
        if msg.event.stage == "failed":
            text = f"{msg.event.kind} model {msg.event.label} failed to load"
            if msg.event.message:
                text += f": {msg.event.message}"
            self.conversation.notice("error", text)

    # --- tools ------------------------------------------------------------------------------
    def show_tool_call(self, call: ToolCall) -> None:
        """A tool call of the conversation model (under way or done), where calls show."""
        self.conversation.add(call)
        self.tools_panel.show_call(call)

    def on_tools_started(self, msg: m.ToolsStarted) -> None:
        ev = msg.event
        for call in pending_calls(ev, ev.created_at):
            self.show_tool_call(call)
            self.timeline.model.tool_started(call.call_id, call.name, ev.created_at)
        self._tools_running += len(ev.function_calls)
        self._states_dirty = True

    def on_tools_executed(self, msg: m.ToolsExecuted) -> None:
        ev = msg.event
        for call in event_entries(ev, ev.created_at):
            assert isinstance(call, ToolCall)  # (what tools executed add: their calls)
            self.show_tool_call(call)
            self.timeline.model.tool_finished(
                call.call_id, call.name, ev.created_at, call.duration or 0.0, call.failed
            )
        self._tools_running = max(0, self._tools_running - len(ev.executions))
        self._states_dirty = True

    def on_tool_rerun_done(self, msg: m.ToolRerunDone) -> None:
        call = ToolCall.of(msg.event.execution, time.time())
        self.tools_panel.show_rerun(call)
        self.notify(
            f"re-run of {call.name}: {'failed' if call.failed else 'done'}",
            severity="error" if call.failed else "information",
            timeout=4,
        )

    def on_tool_break_requested(self, msg: m.ToolBreakRequested) -> None:
        for call in pending_calls(msg.event, time.time()):
            self.show_tool_call(call)
        self._breaks.append(msg.event)
        self.bell()
        self._show_next_break()

    def _show_next_break(self) -> None:
        if self._break_open or not self._breaks:
            return
        ev = self._breaks.pop(0)
        self._break_open = True

        def resolved(resolution: ToolBreakResolution | None) -> None:
            self._break_open = False
            res = resolution if resolution is not None else ToolBreakResolution("run")
            call = ev.call
            if res.action == "run" and res.arguments is not None:
                call = call.model_copy(update={"arguments": res.arguments})  # as it runs
            self.show_tool_call(ToolCall.pending(call, time.time()))
            self.bridge.command(
                "resolve the tool break",
                lambda: self.runtime.resolve_tool_break(ev.break_id, res),
            )
            self._show_next_break()

        self.push_screen(ToolBreakScreen(ev.break_id, ev.call, pending=len(self._breaks)), resolved)

    # --- metrics and logs -------------------------------------------------------------------
    def on_metrics_update(self, msg: m.MetricsUpdate) -> None:
        mt = msg.metrics
        if isinstance(mt, EOUMetrics):
            self.timeline.model.end_of_turn(
                mt.timestamp,
                mt.end_of_utterance_delay,
                mt.end_of_turn_probability,
                mt.end_of_turn_threshold,
            )
        row = self.latency_panel.book.add_metrics(msg.metrics)
        self.latency_panel.row_changed(row)
        if row is not None:
            self._recent_dirty = True

    def on_log_batch(self, msg: m.LogBatch) -> None:
        self.logs_panel.add(msg.records, msg.dropped)
