"""What :class:`~voicetui.io.room.RoomIO` reports about the room (a module of its own: the
runtime's event union names it without loading the room machinery's callers)."""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

RoomIOEventTypes: TypeAlias = Literal[
    "participant_linked",
    "participant_unlinked",
    "disconnected",
    "reconnecting",
    "reconnected",
    "error",
]


class RoomIOEvent(BaseModel):
    """Something that happened in the room, with a message fit to show the user."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    type: RoomIOEventTypes
    message: str
    participant_identity: str | None = None
    reason: str | None = None
    error: BaseException | None = Field(default=None, exclude=True)
