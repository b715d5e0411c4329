"""Every event a running session sends its front ends, and its recordings keep: one
discriminated union, :data:`RuntimeEvent`, of pydantic models with a literal ``type``.

- the framework's session events (``voicetui.agents.voice.events``), passed through unchanged;
- the runtime's own (below): its mode, status, audio levels, tool breaks, model loading,
  notices, the agent's words as they are spoken;
- what happened in a LiveKit room (:class:`RoomUpdate`);
- Python log records (:class:`LogRecordEvent`).

:data:`RUNTIME_EVENT` is the one adapter that turns them into JSON (``events.jsonl``,
``--headless --json``) and back. Front ends dispatch with ``match`` and end with
``assert_never``, so that mypy names every front end that does not handle a new event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .agents.llm import FunctionCall
from .agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    MetricsCollectedEvent,
    SpeechCreatedEvent,
    ToolExecution,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from .io.room.events import RoomIOEvent

Mode: TypeAlias = Literal["local", "room", "text", "wav"]
NoticeLevel: TypeAlias = Literal["info", "warning", "error"]


class _RuntimeEvent(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModeChanged(_RuntimeEvent):
    """The session's I/O changed (also sent once at start)."""

    mode: Mode
    description: str
    """For the header: "LOCAL mic: X / speaker: Y", "ROOM name@url", "TEXT", "WAV in.wav"."""
    type: Literal["mode_changed"] = "mode_changed"


class RuntimeStatus(_RuntimeEvent):
    """Everything the header shows that is not a session event; sent on change."""

    agent_name: str
    models: str
    """One line: which provider does what (``ResolvedModels.describe()``)."""
    mic_muted: bool
    push_to_talk: bool
    """A push-to-talk turn is open (the user pressed the key and is talking)."""
    recording_dir: str | None
    recording_since: float | None
    """Wall-clock start of the recording, for the elapsed-time indicator."""
    break_on_tool_call: bool
    room_configured: bool = False
    """The settings name a LiveKit server and credentials: switching to ROOM needs no prompt."""
    room_url: str | None = None
    """The configured LiveKit server (any credentials in it removed), to prefill a prompt."""
    room_name: str = "voicetui"
    """The configured room name (the default when a prompt leaves it empty)."""
    type: Literal["status"] = "status"


class AudioLevels(_RuntimeEvent):
    """Mic and speaker levels, at most ~20 per second."""

    input_dbfs: float
    input_peak_dbfs: float
    output_dbfs: float
    output_peak_dbfs: float
    echo_cancelling: bool = False
    """The microphone's audio goes through echo cancellation (local mode)."""
    erle_db: float | None = None
    """Its measured echo return loss enhancement while the agent speaks (None otherwise)."""
    type: Literal["levels"] = "levels"


class ToolBreak(_RuntimeEvent):
    """Break-on-tool-call: a tool call waits for ``SessionRuntime.resolve_tool_break``."""

    break_id: str
    call: FunctionCall
    type: Literal["tool_break"] = "tool_break"


class ModelLoading(_RuntimeEvent):
    """Model loading progress (``voicetui.plugins.prewarm.LoadProgress`` fields)."""

    kind: str
    label: str
    stage: str
    fraction: float | None
    message: str = ""
    type: Literal["model_loading"] = "model_loading"


class Notice(_RuntimeEvent):
    """A readable message that is not a session error: a device went away and came back, a room
    reconnected, the app fell back to text mode because there is no microphone..."""

    level: NoticeLevel
    message: str
    type: Literal["notice"] = "notice"


class ToolRerun(_RuntimeEvent):
    """The result of ``SessionRuntime.rerun_tool``."""

    execution: ToolExecution
    type: Literal["tool_rerun"] = "tool_rerun"


class AgentTranscript(_RuntimeEvent):
    """The agent's words as they are spoken (the session's transcription output, in step with
    the audio): ``text`` is everything said so far in speech ``speech_id``; ``final`` marks the
    end of the message."""

    speech_id: str
    text: str
    final: bool = False
    type: Literal["agent_transcript"] = "agent_transcript"


class ReplyCutOff(_RuntimeEvent):
    """A reply (or ``say``) was interrupted before any of it was heard: nothing of it is in
    history, but the user cut it off (F4, talking over it, typing)."""

    speech_id: str
    type: Literal["reply_cut_off"] = "reply_cut_off"


class RoomUpdate(_RuntimeEvent):
    """Something happened in the LiveKit room (a participant joined or left, the connection
    dropped or came back): shown like a notice, at ``level``."""

    event: RoomIOEvent
    level: NoticeLevel
    type: Literal["room"] = "room"


class LogRecordEvent(_RuntimeEvent):
    """A Python logging record (the TUI's Logs tab; nothing prints to the raw terminal)."""

    level: int
    logger: str
    message: str
    created: float
    type: Literal["log"] = "log"


RuntimeOwnEvent: TypeAlias = (
    ModeChanged
    | RuntimeStatus
    | AudioLevels
    | ToolBreak
    | ModelLoading
    | Notice
    | ToolRerun
    | AgentTranscript
    | ReplyCutOff
)
SessionEventModel: TypeAlias = (
    UserInputTranscribedEvent
    | AgentStateChangedEvent
    | UserStateChangedEvent
    | ConversationItemAddedEvent
    | FunctionToolsStartedEvent
    | FunctionToolsExecutedEvent
    | SpeechCreatedEvent
    | MetricsCollectedEvent
    | AgentFalseInterruptionEvent
    | ErrorEvent
    | CloseEvent
)
RuntimeEvent: TypeAlias = Annotated[
    SessionEventModel | RuntimeOwnEvent | RoomUpdate | LogRecordEvent,
    Field(discriminator="type"),
]
"""Anything a runtime sends its subscribers."""

RUNTIME_EVENT: TypeAdapter[RuntimeEvent] = TypeAdapter(RuntimeEvent)
"""Events to JSON and back (``events.jsonl``, ``--headless --json``)."""


def event_data(ev: RuntimeEvent) -> dict[str, Any]:
    """``ev`` as JSON values (its ``type`` included; what cannot be, such as a speech handle or
    an exception object, left out)."""
    data: dict[str, Any] = RUNTIME_EVENT.dump_python(ev, mode="json")
    return data
