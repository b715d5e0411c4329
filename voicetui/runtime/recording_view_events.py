"""A recording's ``events.jsonl`` lines back into the events a front end gets from a live
runtime: the framework's pydantic session events and the runtime's own dataclasses
(:mod:`voicetui.runtime.api`), so the TUI renders a recording with its usual handlers.

The recorder's own lines (``recording_started``, ``audio_attached``, playback marks,
``recording_gap``, ``recording_stopped``) and kinds this version does not know become log
records (and a notice for lost audio).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..agents.llm.chat_context import FunctionCall
from ..agents.voice.events import SessionEvent, ToolExecution
from ..recording.load import RecordedEvent
from ..recording.transcript import fmt_time
from .api import (
    AgentTranscript,
    LogRecordEvent,
    ModeChanged,
    ModelLoading,
    Notice,
    ReplyCutOff,
    RuntimeStatus,
    ToolBreak,
    ToolRerun,
)

LOGGER = "voicetui.recording"

_SESSION_EVENT: TypeAdapter[Any] = TypeAdapter(SessionEvent)

SESSION_TYPES = frozenset(
    {
        "user_input_transcribed",
        "agent_state_changed",
        "user_state_changed",
        "conversation_item_added",
        "function_tools_started",
        "function_tools_executed",
        "metrics_collected",
        "agent_false_interruption",
        "error",
        "close",
    }
)
IGNORED_TYPES = frozenset({"speech_created", "levels"})
"""Recorded, but nothing a viewer shows (a speech handle cannot be rebuilt; levels are not
recorded by default)."""


def _build(cls: type[Any], data: dict[str, Any], **values: Any) -> Any:
    """A runtime dataclass from its recorded fields (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(cls) if f.name != "type"}
    kwargs = {k: v for k, v in data.items() if k in names}
    kwargs.update(values)
    return cls(**kwargs)


def status_for_viewing(status: RuntimeStatus) -> RuntimeStatus:
    """A recorded status without its recording indicator (the viewer is not recording)."""
    return dataclasses.replace(status, recording_dir=None, recording_since=None)


def _log(ev: RecordedEvent, message: str, level: int = logging.INFO) -> LogRecordEvent:
    return LogRecordEvent(level, LOGGER, message, ev.wall)


def _recorder_event(ev: RecordedEvent) -> list[Any]:
    data, kind = ev.event, ev.type
    if kind == "recording_started":
        return [_log(ev, f"recording started in {data.get('directory', '?')}")]
    if kind == "audio_attached":
        return [_log(ev, f"audio: input {data.get('input')}, output {data.get('output')}")]
    if kind in ("audio_input_attached", "audio_input_detached"):
        return [_log(ev, f"microphone {kind.rsplit('_', 1)[-1]}: {data.get('label')}")]
    if kind == "audio_playback_started":
        return [_log(ev, f"agent audio {data.get('segment')} started", logging.DEBUG)]
    if kind == "audio_playback_finished":
        cut = " (interrupted)" if data.get("interrupted") else ""
        at = float(data.get("playback_position") or 0.0)
        text = f"agent audio {data.get('segment')} finished at {at:.2f} s{cut}"
        return [_log(ev, text, logging.DEBUG)]
    if kind == "recording_stopped":
        return [_log(ev, f"recording stopped after {fmt_time(float(data.get('duration', ev.t)))}")]
    # recording_gap
    start, duration = float(data.get("start", ev.t)), float(data.get("duration", 0.0))
    text = (
        f"{duration:.1f} s of audio were not recorded at {fmt_time(start)} (the disk was too slow)"
    )
    return [Notice("warning", text), _log(ev, text, logging.WARNING)]


RECORDER_TYPES = frozenset(
    {
        "recording_started",
        "audio_attached",
        "audio_input_attached",
        "audio_input_detached",
        "audio_playback_started",
        "audio_playback_finished",
        "recording_gap",
        "recording_stopped",
    }
)


def to_runtime_events(ev: RecordedEvent) -> list[Any]:
    """The events a live runtime sent for one recorded line (often one, none for lines a
    viewer has no use for). Raises ValueError (pydantic's ValidationError is one) or
    TypeError / KeyError when the line does not hold what its type needs."""
    kind, data = ev.type, ev.event
    if kind in SESSION_TYPES:
        return [_SESSION_EVENT.validate_python({**data, "type": kind})]
    if kind in IGNORED_TYPES:
        return []
    if kind in RECORDER_TYPES:
        return _recorder_event(ev)
    if kind == "status":
        return [status_for_viewing(_build(RuntimeStatus, data))]
    if kind == "mode_changed":
        return [_build(ModeChanged, data)]
    if kind == "notice":
        level = data.get("level")
        return [_build(Notice, data, level=level if level in ("warning", "error") else "info")]
    if kind == "model_loading":
        return [_build(ModelLoading, data)]
    if kind == "tool_break":
        return [_build(ToolBreak, data, call=FunctionCall.model_validate(data["call"]))]
    if kind == "tool_rerun":
        return [_build(ToolRerun, data, execution=ToolExecution.model_validate(data["execution"]))]
    if kind == "agent_transcript":
        return [_build(AgentTranscript, data)]
    if kind == "reply_cut_off":
        return [_build(ReplyCutOff, data)]
    if kind == "log":
        return [_build(LogRecordEvent, data)]
    # a kind this version does not know (a newer recorder): in the logs, not an error
    return [_log(ev, f"{kind}: {data}"[:300], logging.DEBUG)]


@dataclass
class Conversion:
    """Every recorded line converted, in order, with what could not be."""

    events: list[tuple[RecordedEvent, list[Any]]] = field(default_factory=list)
    unreadable: int = 0
    first_error: str = ""

    def events_of(self, kind: str) -> list[RecordedEvent]:
        return [recorded for recorded, _ in self.events if recorded.type == kind]

    def problem(self) -> str | None:
        if not self.unreadable:
            return None
        return (
            f"{self.unreadable} event(s) in events.jsonl could not be read and are not shown "
            f"(first: {self.first_error})"
        )


def convert(recorded: list[RecordedEvent]) -> Conversion:
    out = Conversion()
    for ev in recorded:
        try:
            out.events.append((ev, to_runtime_events(ev)))
        except (ValueError, ValidationError, TypeError, KeyError) as e:
            out.unreadable += 1
            if not out.first_error:
                detail = str(e).splitlines()[0] if str(e) else type(e).__name__
                out.first_error = f"{ev.type} at {fmt_time(ev.t)}: {detail}"
    return out
