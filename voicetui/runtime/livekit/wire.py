"""The LiveKit Agents console wire: each message is a 4-byte big-endian length and a serialized
``livekit.protocol.agent_pb.agent_session.AgentSessionMessage`` (what ``lk agent console`` and
``python -m livekit.agents console --connect-addr`` speak over TCP)."""

from __future__ import annotations

import asyncio
import struct
import uuid

from livekit.protocol.agent_pb import agent_session as pb

HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""A longer message is a broken or foreign peer, not a real one: the connection is dropped."""
WIRE_SAMPLE_RATE = 48_000
"""Console audio is 48 kHz mono 16-bit PCM in both directions."""


class WireError(RuntimeError):
    """The peer sent something that is not this protocol."""


def encode(msg: pb.AgentSessionMessage) -> bytes:
    data = msg.SerializeToString()
    return HEADER.pack(len(data)) + data


def decode(data: bytes) -> pb.AgentSessionMessage:
    msg = pb.AgentSessionMessage()
    try:
        msg.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError
        raise WireError(f"not an AgentSessionMessage: {e}") from e
    return msg


async def read_message(reader: asyncio.StreamReader) -> pb.AgentSessionMessage | None:
    """The next message, or None at the end of the stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise WireError(f"a {length}-byte message (the limit is {MAX_MESSAGE_BYTES})")
    try:
        data = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return decode(data)


def request(**one: object) -> tuple[str, pb.AgentSessionMessage]:
    """A ``SessionRequest`` with a fresh id, e.g. ``request(run_input=RunInput(text=...))``."""
    request_id = uuid.uuid4().hex[:12]
    req = pb.SessionRequest(request_id=request_id, **one)  # type: ignore[arg-type]
    return request_id, pb.AgentSessionMessage(request=req)


def audio_frame(pcm: bytes, *, sample_rate: int = WIRE_SAMPLE_RATE) -> pb.AgentSessionMessage:
    """Microphone audio (16-bit mono) for the agent."""
    frame = pb.AgentSessionMessage.ConsoleIO.AudioFrame(
        data=pcm, sample_rate=sample_rate, num_channels=1, samples_per_channel=len(pcm) // 2
    )
    return pb.AgentSessionMessage(audio_input=frame)


def playback_finished() -> pb.AgentSessionMessage:
    """Tells the agent its audio up to the last flush has been played out."""
    return pb.AgentSessionMessage(
        audio_playback_finished=pb.AgentSessionMessage.ConsoleIO.AudioPlaybackFinished()
    )
