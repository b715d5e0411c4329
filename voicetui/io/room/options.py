"""What a :class:`RoomIO` takes from and gives to a LiveKit room: ``RoomInputOptions`` and
``RoomOutputOptions`` (as in LiveKit Agents), the text input callback, and the protocol's topic
and attribute names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ...agents.types import NOT_GIVEN, NotGiven

if TYPE_CHECKING:
    from ...agents.voice.agent_session import AgentSession

TOPIC_CHAT = "lk.chat"
"""Text stream topic of the room's chat: text input for the agent."""
TOPIC_TRANSCRIPTION = "lk.transcription"
"""Text stream topic on which user and agent transcriptions are published."""
TOPIC_PRE_CONNECT_AUDIO = "lk.agent.pre-connect-audio-buffer"
"""Byte stream topic of the audio a client recorded before the agent joined."""
ATTRIBUTE_PRE_CONNECT_AUDIO = "lk.agent.pre-connect-audio"
ATTRIBUTE_TRANSCRIPTION_TRACK_ID = "lk.transcribed_track_id"
ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID = "lk.segment_id"
ATTRIBUTE_TRANSCRIPTION_FINAL = "lk.transcription_final"
ATTRIBUTE_AGENT_STATE = "lk.agent.state"
ATTRIBUTE_PUBLISH_ON_BEHALF = "lk.publish_on_behalf"

DEFAULT_PARTICIPANT_KINDS: list[rtc.ParticipantKind.ValueType] = [
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
]

CLOSE_ON_DISCONNECT_REASONS: list[rtc.DisconnectReason.ValueType] = [
    rtc.DisconnectReason.CLIENT_INITIATED,
    rtc.DisconnectReason.ROOM_DELETED,
    rtc.DisconnectReason.USER_REJECTED,
]
"""The linked participant leaving for one of these reasons ends the conversation (they hung
up); other reasons (lost connection, ...) keep the session waiting for them to come back."""


@dataclass
class TextInputEvent:
    """A chat message from the linked participant."""

    text: str
    info: rtc.TextStreamInfo
    participant: rtc.RemoteParticipant


TextInputCallback = Callable[["AgentSession[Any]", TextInputEvent], Awaitable[None] | None]


def default_text_input_cb(session: AgentSession[Any], ev: TextInputEvent) -> None:
    """Interrupt what the agent is saying and answer the message."""
    session.interrupt()
    session.generate_reply(user_input=ev.text)


@dataclass
class RoomInputOptions:
    text_enabled: bool | NotGiven = NOT_GIVEN
    """Accept chat messages (topic ``lk.chat``) as user input. Not given: True."""
    audio_enabled: bool | NotGiven = NOT_GIVEN
    """Listen to the linked participant's microphone. Not given: True."""
    video_enabled: bool | NotGiven = NOT_GIVEN
    """Not given: False. voicetui sessions have no video input; True is ignored (logged)."""
    audio_sample_rate: int = 24000
    """Rate of the frames given to the session (the room's audio is resampled to it)."""
    audio_num_channels: int = 1
    noise_cancellation: rtc.NoiseCancellationOptions | None = None
    text_input_cb: TextInputCallback = default_text_input_cb
    participant_kinds: list[rtc.ParticipantKind.ValueType] | NotGiven = NOT_GIVEN
    """Kinds of participant the agent links to. Not given: SIP and standard participants."""
    participant_identity: str | NotGiven = NOT_GIVEN
    """Link to this participant only. Not given: the first participant of an accepted kind."""
    pre_connect_audio: bool = True
    """Play first the audio the client recorded before the agent joined."""
    pre_connect_audio_timeout: float = 3.0
    """Pre-connect audio that does not arrive (or is not claimed) within this time is dropped."""
    close_on_disconnect: bool = True
    """Close the session when the linked participant leaves the room (hangs up)."""
    delete_room_on_close: bool = True
    """Delete the room when the session closes (needs API credentials, see
    :func:`~voicetui.io.room.token.room_deleter`)."""


@dataclass
class RoomOutputOptions:
    transcription_enabled: bool | NotGiven = NOT_GIVEN
    """Publish user and agent transcriptions (topic ``lk.transcription``). Not given: True."""
    audio_enabled: bool | NotGiven = NOT_GIVEN
    """Publish the agent's voice as an audio track. Not given: True."""
    audio_sample_rate: int = 24000
    audio_num_channels: int = 1
    audio_publish_options: rtc.TrackPublishOptions = field(
        default_factory=lambda: rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )


def is_enabled(value: bool | NotGiven, *, default: bool) -> bool:
    return default if isinstance(value, NotGiven) else value
