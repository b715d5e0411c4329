"""The contract between the session runtime and its front ends (the TUI, ``--headless``).

A runtime owns an ``AgentSession`` running on its own asyncio loop in a background thread. Front
ends only:

- call its command methods, which are thread-safe, return at once, and return a
  ``concurrent.futures.Future`` with the outcome (a failure is a readable exception in it);
- receive :data:`RuntimeEvent` values through the callbacks they subscribed. Callbacks run on
  the runtime's thread: a UI must hop to its own thread (Textual: ``post_message`` is
  thread-safe). Callbacks must return quickly; the runtime never waits for a slow consumer.

Session events are the framework's pydantic events (``voicetui.agents.voice.events``) passed
through unchanged; the runtime adds its own below.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from ..agents.llm import FunctionCall
from ..agents.voice import ToolExecution
from ..config import Mode as Mode  # (re-exported: part of the runtime contract)


@dataclass(frozen=True)
class RoomDetails:
    url: str
    room: str
    token: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    identity: str = "voicetui-agent"


@dataclass(frozen=True)
class ModeChanged:
    """The session's I/O changed (also sent once at start)."""

    mode: Mode
    description: str
    """For the header: "LOCAL mic: X / speaker: Y", "ROOM name@url", "TEXT", "WAV in.wav"."""
    type: Literal["mode_changed"] = "mode_changed"


@dataclass(frozen=True)
class RuntimeStatus:
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


@dataclass(frozen=True)
class AudioLevels:
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


@dataclass(frozen=True)
class ToolBreak:
    """Break-on-tool-call: a tool call waits for :meth:`SessionRuntime.resolve_tool_break`."""

    break_id: str
    call: FunctionCall
    type: Literal["tool_break"] = "tool_break"


@dataclass(frozen=True)
class ModelLoading:
    """Model loading progress (``voicetui.plugins.prewarm.LoadProgress`` fields)."""

    kind: str
    label: str
    stage: str
    fraction: float | None
    message: str = ""
    type: Literal["model_loading"] = "model_loading"


@dataclass(frozen=True)
class Notice:
    """A readable message that is not a session error: a device went away and came back, a room
    reconnected, the app fell back to text mode because there is no microphone..."""

    level: Literal["info", "warning", "error"]
    message: str
    type: Literal["notice"] = "notice"


@dataclass(frozen=True)
class ToolRerun:
    """The result of :meth:`SessionRuntime.rerun_tool`."""

    execution: ToolExecution
    type: Literal["tool_rerun"] = "tool_rerun"


@dataclass(frozen=True)
class AgentTranscript:
    """The agent's words as they are spoken (the session's transcription output, in step with
    the audio): ``text`` is everything said so far in speech ``speech_id``; ``final`` marks the
    end of the message."""

    speech_id: str
    text: str
    final: bool = False
    type: Literal["agent_transcript"] = "agent_transcript"


@dataclass(frozen=True)
class LogRecordEvent:
    """A Python logging record (the TUI's Logs tab; nothing prints to the raw terminal)."""

    level: int
    logger: str
    message: str
    created: float
    type: Literal["log"] = "log"


@dataclass(frozen=True)
class ReplyCutOff:
    """A reply (or ``say``) was interrupted before any of it was heard: nothing of it is in
    history, but the user cut it off (F4, talking over it, typing)."""

    speech_id: str
    type: Literal["reply_cut_off"] = "reply_cut_off"


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
RuntimeEvent: TypeAlias = Any
"""A session event (pydantic, from ``voicetui.agents.voice.events``), a RuntimeOwnEvent or a
LogRecordEvent. All have a string ``type``."""


class CommandError(RuntimeError):
    """A runtime command failed; the message is a whole sentence for the user ("switching to
    ROOM mode failed: ..."). ``announced``: the runtime has already told every front end (a
    :class:`Notice`), so a front end shows it no second time."""

    def __init__(self, message: str, *, announced: bool = False) -> None:
        super().__init__(message)
        self.announced = announced


ToolBreakAction: TypeAlias = Literal["run", "mock", "error"]


@dataclass(frozen=True)
class ToolBreakResolution:
    action: ToolBreakAction
    arguments: str | None = None
    """run: the JSON arguments to run with (None: as the LLM gave them)."""
    output: str = ""
    """mock: the result the LLM gets; error: the error message it gets."""


@dataclass
class Subscription:
    callback: Callable[[RuntimeEvent], None]
    types: frozenset[str] | None = field(default=None)


class SessionRuntime(Protocol):
    """What a front end may do with a running session."""

    def subscribe(self, callback: Callable[[RuntimeEvent], None]) -> Callable[[], None]:
        """Receive every event (on the runtime's thread); returns an unsubscribe function."""
        ...

    def start(self) -> Future[None]:
        """Start the loop thread, load models (ModelLoading events), start the session."""
        ...

    def stop(self) -> Future[None]:
        """Close the session (history is kept in memory) and stop the loop thread."""
        ...

    @property
    def mode(self) -> Mode: ...

    def send_text(self, text: str) -> Future[None]:
        """The user typed ``text``: interrupt what the agent says, then answer it."""
        ...

    def say(self, text: str) -> Future[None]:
        """Make the agent speak ``text`` as is."""
        ...

    def interrupt(self) -> Future[None]: ...

    def set_mic_muted(self, muted: bool) -> Future[None]: ...

    def push_to_talk(self) -> Future[None]:
        """First press: open a manual turn (mic on, turn detection manual). Second press:
        commit it (``session.commit_user_turn``)."""
        ...

    def cancel_push_to_talk(self) -> Future[None]: ...

    def switch_mode(self, mode: Mode, room: RoomDetails | None = None) -> Future[None]:
        """Swap the session's I/O while it runs; history is kept. Room mode needs ``room``
        unless configured."""
        ...

    def list_devices(self) -> Future[list[dict[str, Any]]]: ...

    def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> Future[None]: ...

    def set_break_on_tool_call(self, enabled: bool) -> Future[None]: ...

    def resolve_tool_break(
        self, break_id: str, resolution: ToolBreakResolution
    ) -> Future[None]: ...

    def rerun_tool(self, name: str, arguments: str) -> Future[ToolExecution]: ...

    def start_recording(self, directory: str | None = None) -> Future[str]:
        """Returns the recording's directory."""
        ...

    def stop_recording(self) -> Future[None]: ...

    def export_transcript(self, path: str) -> Future[str]: ...
