"""Which remote participant the agent talks to: the one with the given identity, else the first
of an accepted kind; when they leave, the next one who is (or comes) in the room."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from livekit import rtc

from .options import ATTRIBUTE_PUBLISH_ON_BEHALF

logger = logging.getLogger("voicetui.io.room")


class ParticipantLinker:
    def __init__(
        self,
        room: rtc.Room,
        *,
        identity: str | None,
        kinds: list[rtc.ParticipantKind.ValueType],
        on_linked: Callable[[rtc.RemoteParticipant], None],
        on_unlinked: Callable[[rtc.RemoteParticipant], None],
    ) -> None:
        self._room = room
        self._identity = identity
        self._kinds = list(kinds)
        self._on_linked = on_linked
        self._on_unlinked = on_unlinked
        self._linked: rtc.RemoteParticipant | None = None
        self._waiters: list[asyncio.Future[rtc.RemoteParticipant]] = []
        self._started = False

    @property
    def linked(self) -> rtc.RemoteParticipant | None:
        return self._linked

    def start(self) -> None:
        self._started = True
        self._room.on("participant_connected", self._on_connected)
        self._room.on("participant_disconnected", self._on_disconnected)
        self._link_first_present()

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._room.off("participant_connected", self._on_connected)
        self._room.off("participant_disconnected", self._on_disconnected)
        for fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def wait(self) -> rtc.RemoteParticipant:
        """The linked participant, waiting for one to join if needed."""
        if self._linked is not None:
            return self._linked
        fut: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    def accepts(self, participant: rtc.RemoteParticipant) -> bool:
        if self._identity is not None:
            return participant.identity == self._identity
        if participant.kind not in self._kinds:
            return False
        # an avatar publishing on the agent's behalf is not a user
        local = self._room.local_participant.identity
        return participant.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF) != local

    def _link_first_present(self) -> None:
        for participant in list(self._room.remote_participants.values()):
            if self._linked is not None:
                return
            if self.accepts(participant):
                self._link(participant)

    def _link(self, participant: rtc.RemoteParticipant) -> None:
        self._linked = participant
        logger.info("linked to participant %s", participant.identity)
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(participant)
        self._waiters.clear()
        self._on_linked(participant)

    def _on_connected(self, participant: rtc.RemoteParticipant) -> None:
        if self._linked is None and self.accepts(participant):
            self._link(participant)

    def _on_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        linked = self._linked
        if linked is None or participant.identity != linked.identity:
            return
        self._linked = None
        logger.info("participant %s left", participant.identity)
        self._on_unlinked(participant)
        if self._started:
            self._link_first_present()
