"""Joining a LiveKit room: a short-lived token with only the grants the agent needs, minted from
the API key and secret, and a connected ``rtc.Room``. Deleting the room at the end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Literal

from livekit import rtc

DEFAULT_TOKEN_TTL = timedelta(minutes=10)
"""Long enough to join; the server refreshes the token of a connected participant."""

ParticipantKindName = Literal["standard", "agent"]


class RoomConnectError(Exception):
    """Joining the room failed; the message says why in plain words."""


def mint_token(
    api_key: str,
    api_secret: str,
    *,
    room_name: str,
    identity: str,
    name: str | None = None,
    kind: ParticipantKindName = "agent",
    ttl: timedelta = DEFAULT_TOKEN_TTL,
) -> str:
    """A token to join ``room_name`` as ``identity``: subscribe, publish a microphone track,
    send data (transcriptions, chat) and set its own attributes (the agent state), nothing
    else (no room creation, listing, recording or admin)."""
    if not api_key or not api_secret:
        raise RoomConnectError("minting a token needs LIVEKIT_API_KEY and LIVEKIT_API_SECRET")
    if not room_name or not identity:
        raise RoomConnectError("minting a token needs a room name and an identity")
    from livekit import api  # livekit-api is only needed here (and slow to import)

    grants = api.VideoGrants(
        room_join=True,
        room=room_name,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_publish_sources=["microphone"],
        can_update_own_metadata=True,
    )
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_kind(kind)
        .with_grants(grants)
        .with_ttl(ttl)
    )
    if name:
        token = token.with_name(name)
    return token.to_jwt()


def _credentials(
    url: str | None, token: str | None, api_key: str | None, api_secret: str | None
) -> tuple[str, str | None, str | None, str | None]:
    url = url or os.environ.get("LIVEKIT_URL")
    if not url:
        raise RoomConnectError("no LiveKit server URL: pass --url or set LIVEKIT_URL")
    if token:
        return url, token, None, None
    api_key = api_key or os.environ.get("LIVEKIT_API_KEY")
    api_secret = api_secret or os.environ.get("LIVEKIT_API_SECRET")
    if not api_key or not api_secret:
        raise RoomConnectError(
            "joining a LiveKit room needs a token, or LIVEKIT_API_KEY and LIVEKIT_API_SECRET "
            "to mint one"
        )
    return url, None, api_key, api_secret


async def connect(
    url: str | None = None,
    token: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    *,
    room_name: str = "voicetui",
    identity: str = "voicetui-agent",
    name: str | None = "voicetui agent",
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    options: rtc.RoomOptions | None = None,
    connect_timeout: float = 20.0,
) -> rtc.Room:
    """Join a room. Missing arguments come from ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
    ``LIVEKIT_API_SECRET``; without a ``token`` one is minted (see :func:`mint_token`).
    Raises :class:`RoomConnectError` with a readable message. The caller owns the room and
    disconnects it (``await room.disconnect()``)."""
    url, token, api_key, api_secret = _credentials(url, token, api_key, api_secret)
    if token is None:
        assert api_key is not None and api_secret is not None
        token = mint_token(
            api_key, api_secret, room_name=room_name, identity=identity, name=name, ttl=ttl
        )
    room = rtc.Room()
    try:
        await asyncio.wait_for(
            room.connect(url, token, options or rtc.RoomOptions()), connect_timeout
        )
    except TimeoutError:
        await _disconnect_quietly(room)
        raise RoomConnectError(
            f"could not join the LiveKit room at {url} within {connect_timeout:g} s"
        ) from None
    except rtc.ConnectError as e:
        await _disconnect_quietly(room)
        raise RoomConnectError(f"could not join the LiveKit room at {url}: {e.message}") from e
    except Exception as e:
        await _disconnect_quietly(room)
        raise RoomConnectError(f"could not join the LiveKit room at {url}: {e}") from e
    return room


async def _disconnect_quietly(room: rtc.Room) -> None:
    try:
        await room.disconnect()
    except Exception:  # best effort: the connection failed already
        pass


def room_deleter(
    url: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    *,
    room_name: str,
) -> Callable[[], Awaitable[None]] | None:
    """A coroutine function deleting ``room_name`` through the server API (for
    ``RoomInputOptions.delete_room_on_close``), or None without API credentials."""
    url = url or os.environ.get("LIVEKIT_URL")
    api_key = api_key or os.environ.get("LIVEKIT_API_KEY")
    api_secret = api_secret or os.environ.get("LIVEKIT_API_SECRET")
    if not url or not api_key or not api_secret:
        return None
    http_url = "http" + url.removeprefix("ws") if url.startswith("ws") else url

    async def delete() -> None:
        from livekit import api

        lkapi = api.LiveKitAPI(http_url, api_key, api_secret)
        try:
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=room_name))
        finally:
            await lkapi.aclose()

    return delete
