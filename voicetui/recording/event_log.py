"""What one line of ``events.jsonl`` holds, and the one adapter that writes and reads it.

A line is ``{"t": <s since start>, "wall": <epoch s>, "type": <type>, "event": {...}}``; its
``event`` is a :data:`~voicetui.events.RuntimeEvent` or one of the recorder's own notes below
(when recording started and stopped, which audio devices it heard, when the agent's audio
played, audio the disk could not keep up with). Older recordings wrote the runtime's events
with a generic walker; their fields are the same, so the adapter reads them too.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..events import LogRecordEvent, RoomUpdate, RuntimeOwnEvent, SessionEventModel


class _Note(BaseModel):
    model_config = ConfigDict(frozen=True)


class RecordingStarted(_Note):
    type: Literal["recording_started"] = "recording_started"
    directory: str = ""
    sample_rate: int | None = None


class AudioAttached(_Note):
    """The session's audio input and output the recording hears (their labels)."""

    type: Literal["audio_attached"] = "audio_attached"
    input: str | None = None
    output: str | None = None


class AudioInputAttached(_Note):
    type: Literal["audio_input_attached"] = "audio_input_attached"
    label: str | None = None


class AudioInputDetached(_Note):
    type: Literal["audio_input_detached"] = "audio_input_detached"
    label: str | None = None


class AudioPlaybackStarted(_Note):
    type: Literal["audio_playback_started"] = "audio_playback_started"
    segment: int


class AudioPlaybackFinished(_Note):
    type: Literal["audio_playback_finished"] = "audio_playback_finished"
    segment: int
    playback_position: float = 0.0
    """Seconds of the segment that were heard."""
    interrupted: bool = False


class RecordingGap(_Note):
    """Audio dropped because the disk could not keep up."""

    type: Literal["recording_gap"] = "recording_gap"
    start: float = 0.0
    duration: float = 0.0


class RecordingStopped(_Note):
    type: Literal["recording_stopped"] = "recording_stopped"
    duration: float | None = None


RecorderNote: TypeAlias = (
    RecordingStarted
    | AudioAttached
    | AudioInputAttached
    | AudioInputDetached
    | AudioPlaybackStarted
    | AudioPlaybackFinished
    | RecordingGap
    | RecordingStopped
)
RecordedBody: TypeAlias = Annotated[
    SessionEventModel | RuntimeOwnEvent | RoomUpdate | LogRecordEvent | RecorderNote,
    Field(discriminator="type"),
]
"""What a line of ``events.jsonl`` holds."""

EVENT_LOG: TypeAdapter[RecordedBody] = TypeAdapter(RecordedBody)


def _tags(union: Any) -> frozenset[str]:
    out: set[str] = set()
    for member in typing.get_args(union):
        if isinstance(member, type) and issubclass(member, BaseModel):
            out.add(str(member.model_fields["type"].default))
        else:
            out |= _tags(member)
    return frozenset(out)


KNOWN_TYPES: frozenset[str] = _tags(typing.get_args(RecordedBody)[0])


def encode(body: RecordedBody) -> dict[str, Any]:
    """``body`` as JSON values (what cannot be recorded, a speech handle or an exception object,
    left out)."""
    data: dict[str, Any] = EVENT_LOG.dump_python(body, mode="json")
    return data


def decode(type_: str, data: dict[str, Any]) -> RecordedBody | None:
    """A line's event as the object that was recorded; None for a type this version does not
    know (a newer recorder's). Raises ``pydantic.ValidationError`` (a ValueError) when the line
    does not hold what its type needs."""
    if type_ not in KNOWN_TYPES:
        return None
    return EVENT_LOG.validate_python({**data, "type": type_})
