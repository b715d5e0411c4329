"""The contract between the session runtime and its front ends (the TUI, ``--headless``).

A runtime owns an ``AgentSession`` running on its own asyncio loop in a background thread. Front
ends only:

- call its command methods, which are thread-safe, return at once, and return a
  ``concurrent.futures.Future`` with the outcome (a failure is a readable exception in it);
- receive :data:`RuntimeEvent` values through the callbacks they subscribed. Callbacks run on
  the runtime's thread: a UI must hop to its own thread (Textual: ``post_message`` is
  thread-safe). Callbacks must return quickly; the runtime never waits for a slow consumer.

The events are :data:`voicetui.events.RuntimeEvent` (re-exported here): the framework's session
events passed through unchanged, the runtime's own, room updates and log records.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from ..agents.voice import ToolExecution
from ..events import (
    RUNTIME_EVENT,
    AgentTranscript,
    AudioLevels,
    LogRecordEvent,
    Mode,
    ModeChanged,
    ModelLoading,
    Notice,
    NoticeLevel,
    ReplyCutOff,
    RoomUpdate,
    RuntimeEvent,
    RuntimeOwnEvent,
    RuntimeStatus,
    ToolBreak,
    ToolRerun,
    event_data,
)


@dataclass(frozen=True)
class RoomDetails:
    url: str
    room: str
    token: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    identity: str = "voicetui-agent"


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

    @property
    def read_only(self) -> bool:
        """A recording: every session command fails (the UI hides what would send one)."""
        ...

    @property
    def title(self) -> str:
        """What the app's header calls the session ("voicetui", "RECORDING <folder> · ...")."""
        ...

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


__all__ = [
    "RUNTIME_EVENT",
    "AgentTranscript",
    "AudioLevels",
    "CommandError",
    "LogRecordEvent",
    "Mode",
    "ModeChanged",
    "ModelLoading",
    "Notice",
    "NoticeLevel",
    "ReplyCutOff",
    "RoomDetails",
    "RoomUpdate",
    "RuntimeEvent",
    "RuntimeOwnEvent",
    "RuntimeStatus",
    "SessionRuntime",
    "Subscription",
    "ToolBreak",
    "ToolBreakAction",
    "ToolBreakResolution",
    "ToolRerun",
    "event_data",
]
