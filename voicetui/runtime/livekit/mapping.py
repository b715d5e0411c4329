"""LiveKit's session events (``AgentSessionEvent``) as voicetui's :data:`RuntimeEvent` values.

Every kind of event is either mapped or deliberately ignored (:data:`IGNORED_EVENTS`, listed in
docs/livekit-agents.md); one this version does not know (a newer agent) is logged once and
skipped. Nothing here raises on what the peer sends."""

from __future__ import annotations

import logging
import time

from livekit.protocol.agent_pb import agent_session as pb

from ...agents.llm import ChatMessage, FunctionCall, FunctionCallOutput
from ...agents.llm.chat_context import AgentHandoff, ChatRole, MetricsReport
from ...agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentState,
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    ToolExecution,
    UserInputTranscribedEvent,
    UserState,
    UserStateChangedEvent,
)
from ...events import RuntimeEvent

logger = logging.getLogger("voicetui.livekit")

AGENT_STATES: dict[int, AgentState] = {
    pb.AS_INITIALIZING: "initializing",
    pb.AS_IDLE: "idle",
    pb.AS_LISTENING: "listening",
    pb.AS_THINKING: "thinking",
    pb.AS_SPEAKING: "speaking",
}
USER_STATES: dict[int, UserState] = {
    pb.US_SPEAKING: "speaking",
    pb.US_LISTENING: "listening",
    pb.US_AWAY: "away",
}
ROLES: dict[int, ChatRole] = {
    pb.DEVELOPER: "developer",
    pb.SYSTEM: "system",
    pb.USER: "user",
    pb.ASSISTANT: "assistant",
}
MAPPED_EVENTS = frozenset(
    {
        "agent_state_changed",
        "user_state_changed",
        "conversation_item_added",
        "user_input_transcribed",
        "function_tools_started",
        "function_tools_executed",
        "tool_execution_updated",
        "agent_false_interruption",
        "error",
    }
)
IGNORED_EVENTS: dict[str, str] = {
    "overlapping_speech": "the interruption it reports shows as the agent's and user's states",
    "session_usage_updated": "token and character counts: not shown by voicetui's panels",
    "amd_prediction": "answering-machine detection is for phone calls, not a console",
    "eot_prediction": "its delay is part of the turn's latency report (the assistant message)",
    "debug_message": "free-form developer payloads: logged at debug level",
}
"""Events the console deliberately does not show, and why."""


def _seconds(ts: object) -> float | None:
    """A protobuf Timestamp as epoch seconds (None when unset)."""
    seconds = getattr(ts, "seconds", 0) + getattr(ts, "nanos", 0) / 1e9
    return seconds or None


def _opt(msg: object, name: str) -> float | None:
    has = getattr(msg, "HasField", None)
    if has is None or not has(name):
        return None
    value = getattr(msg, name)
    return float(value) if isinstance(value, int | float) else None


def metrics_report(m: pb.MetricsReport) -> MetricsReport:
    return MetricsReport(
        started_speaking_at=_seconds(m.started_speaking_at),
        stopped_speaking_at=_seconds(m.stopped_speaking_at),
        end_of_turn_delay=_opt(m, "end_of_turn_delay"),
        llm_node_ttft=_opt(m, "llm_node_ttft"),
        tts_node_ttfb=_opt(m, "tts_node_ttfb"),
        e2e_latency=_opt(m, "e2e_latency"),
    )


def chat_message(m: pb.ChatMessage) -> ChatMessage:
    created = _seconds(m.created_at) or time.time()
    return ChatMessage(
        id=m.id or f"lk_{created}",
        role=ROLES.get(m.role, "assistant"),
        content=[c.text for c in m.content if c.WhichOneof("payload") == "text"],
        interrupted=m.interrupted,
        created_at=created,
        metrics=metrics_report(m.metrics),
    )


def function_call(c: pb.FunctionCall) -> FunctionCall:
    call = FunctionCall(
        call_id=c.call_id,
        name=c.name,
        arguments=c.arguments,
        created_at=_seconds(c.created_at) or time.time(),
    )
    return call.model_copy(update={"id": c.id}) if c.id else call


def function_output(o: pb.FunctionCallOutput) -> FunctionCallOutput:
    return FunctionCallOutput(
        call_id=o.call_id,
        name=o.name,
        output=o.output,
        is_error=o.is_error,
        created_at=_seconds(o.created_at) or time.time(),
    )


class EventMapper:
    """Maps one agent's events; remembers when each tool call started (for its duration)."""

    def __init__(self) -> None:
        self._started_at: dict[str, float] = {}
        self._reported: set[str] = set()

    def note_once(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` the first time ``key`` comes up (unknown messages from a newer
        agent: said once, then skipped)."""
        if key not in self._reported:
            self._reported.add(key)
            logger.info(message, *args)

    def map(self, ev: pb.AgentSessionEvent) -> list[RuntimeEvent]:
        kind = ev.WhichOneof("event")
        created = _seconds(ev.created_at) or time.time()
        if kind is None:
            self.note_once("?", "the agent sent an event this voicetui does not know (ignored)")
            return []
        if kind in IGNORED_EVENTS:
            logger.debug("livekit event %s (not shown: %s)", kind, IGNORED_EVENTS[kind])
            return []
        if kind not in MAPPED_EVENTS:
            self.note_once(kind, "the agent sent a %r event this voicetui does not know", kind)
            return []
        match kind:
            case "agent_state_changed":
                a = ev.agent_state_changed
                return [
                    AgentStateChangedEvent(
                        old_state=AGENT_STATES.get(a.old_state, "idle"),
                        new_state=AGENT_STATES.get(a.new_state, "idle"),
                        created_at=created,
                    )
                ]
            case "user_state_changed":
                u = ev.user_state_changed
                return [
                    UserStateChangedEvent(
                        old_state=USER_STATES.get(u.old_state, "listening"),
                        new_state=USER_STATES.get(u.new_state, "listening"),
                        created_at=created,
                    )
                ]
            case "user_input_transcribed":
                t = ev.user_input_transcribed
                return [
                    UserInputTranscribedEvent(
                        transcript=t.transcript,
                        is_final=t.is_final,
                        language=t.language or None,
                        created_at=created,
                    )
                ]
            case "conversation_item_added":
                return self._item(ev.conversation_item_added.item, created)
            case "function_tools_started":
                calls = [function_call(c) for c in ev.function_tools_started.function_calls]
                return self._started(calls, created)
            case "tool_execution_updated":
                tool = ev.tool_execution_updated
                if tool.WhichOneof("update") == "started":
                    return self._started([function_call(tool.started.function_call)], created)
                return []  # progress and reply status: the executed event carries the result
            case "function_tools_executed":
                return [self._executed(ev.function_tools_executed, created)]
            case "agent_false_interruption":
                resumed = ev.agent_false_interruption.resumed
                return [AgentFalseInterruptionEvent(resumed=resumed, created_at=created)]
            case "error":
                message = ev.error.message or "unknown error"
                return [
                    ErrorEvent(
                        source="agent", message=message, recoverable=True, created_at=created
                    )
                ]
        return []

    def _item(self, item: pb.ChatContext.ChatItem, created: float) -> list[RuntimeEvent]:
        kind = item.WhichOneof("item")
        if kind == "message":
            return [ConversationItemAddedEvent(item=chat_message(item.message), created_at=created)]
        if kind == "agent_handoff":
            h = item.agent_handoff
            handoff = AgentHandoff(
                old_agent_id=h.old_agent_id if h.HasField("old_agent_id") else None,
                new_agent_id=h.new_agent_id,
                created_at=_seconds(h.created_at) or created,
            )
            return [ConversationItemAddedEvent(item=handoff, created_at=created)]
        # function calls and outputs arrive whole in function_tools_executed; a config update
        # (instructions, tools) is not part of the conversation
        return []

    def _started(self, calls: list[FunctionCall], created: float) -> list[RuntimeEvent]:
        fresh = [c for c in calls if c.call_id not in self._started_at]
        for c in fresh:
            self._started_at[c.call_id] = created
        if not fresh:
            return []
        return [FunctionToolsStartedEvent(function_calls=fresh, speech_id="", created_at=created)]

    def _executed(
        self, e: pb.AgentSessionEvent.FunctionToolsExecuted, created: float
    ) -> FunctionToolsExecutedEvent:
        outputs = {o.call_id: function_output(o) for o in e.function_call_outputs}
        executions = []
        for c in e.function_calls:
            call = function_call(c)
            output = outputs.get(c.call_id) or FunctionCallOutput(
                call_id=c.call_id, name=c.name, output="", is_error=False
            )
            started = self._started_at.pop(c.call_id, created)
            executions.append(
                ToolExecution(call=call, output=output, duration=max(0.0, created - started))
            )
        return FunctionToolsExecutedEvent(executions=executions, speech_id="", created_at=created)
