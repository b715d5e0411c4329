"""The LiveKit room backend: :class:`RoomIO` plugs an AgentSession into a room (the linked
participant's microphone in; the agent's voice, transcriptions and state out; chat messages as
text input), and :func:`connect` joins a room with a minimal short-lived token."""

from __future__ import annotations

from ._input import RoomAudioInput
from ._output import RoomAudioOutput
from ._transcription import AgentTranscriptOutput
from .events import RoomIOEvent, RoomIOEventTypes
from .options import (
    DEFAULT_PARTICIPANT_KINDS,
    TOPIC_CHAT,
    TOPIC_PRE_CONNECT_AUDIO,
    TOPIC_TRANSCRIPTION,
    RoomInputOptions,
    RoomOutputOptions,
    TextInputCallback,
    TextInputEvent,
    default_text_input_cb,
)
from .room_io import RoomIO
from .token import DEFAULT_TOKEN_TTL, RoomConnectError, connect, mint_token, room_deleter

__all__ = [
    "DEFAULT_PARTICIPANT_KINDS",
    "DEFAULT_TOKEN_TTL",
    "TOPIC_CHAT",
    "TOPIC_PRE_CONNECT_AUDIO",
    "TOPIC_TRANSCRIPTION",
    "AgentTranscriptOutput",
    "RoomAudioInput",
    "RoomAudioOutput",
    "RoomConnectError",
    "RoomIO",
    "RoomIOEvent",
    "RoomIOEventTypes",
    "RoomInputOptions",
    "RoomOutputOptions",
    "TextInputCallback",
    "TextInputEvent",
    "connect",
    "default_text_input_cb",
    "mint_token",
    "room_deleter",
]
