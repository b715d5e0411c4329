"""Pre-connect audio: what a client recorded before the agent joined, sent to the agent as a byte
stream (topic ``lk.agent.pre-connect-audio-buffer``, raw int16 PCM, attributes ``sampleRate``,
``channels`` and ``trackId``), so the user's first words are not lost. It is delivered to the
session before the live microphone audio; a buffer that does not arrive, or is not claimed,
within the timeout is dropped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit import rtc
from livekit.rtc._proto.track_pb2 import AudioTrackFeature

from ...agents.audio import AudioByteStream
from ...agents.utils.aio import TaskSet, now
from .options import ATTRIBUTE_PRE_CONNECT_AUDIO, TOPIC_PRE_CONNECT_AUDIO

logger = logging.getLogger("voicetui.io.room")

ErrorReporter = Callable[[str, BaseException | None], None]


@dataclass
class _Buffer:
    received_at: float
    done: asyncio.Future[None]
    frames: list[rtc.AudioFrame] = field(default_factory=list)
    track_id: str | None = None


class PreConnectAudio:
    """Receives pre-connect audio buffers per participant and hands each out once."""

    def __init__(self, room: rtc.Room, *, timeout: float, report: ErrorReporter) -> None:
        self._room = room
        self._timeout = timeout
        self._report = report
        self._buffers: dict[str, _Buffer] = {}
        self._tasks = TaskSet("PreConnectAudio")
        self._registered = False

    def register(self) -> None:
        try:
            self._room.register_byte_stream_handler(TOPIC_PRE_CONNECT_AUDIO, self._on_stream)
            self._registered = True
        except ValueError:
            logger.warning("a pre-connect audio handler is already registered; not receiving it")

    async def aclose(self) -> None:
        if self._registered:
            self._room.unregister_byte_stream_handler(TOPIC_PRE_CONNECT_AUDIO)
            self._registered = False
        await self._tasks.aclose()
        self._buffers.clear()

    def _on_stream(self, reader: rtc.ByteStreamReader, participant_identity: str) -> None:
        buf = _Buffer(now(), asyncio.get_running_loop().create_future())
        self._buffers[participant_identity] = buf
        self._tasks.create(
            self._receive(reader, participant_identity, buf), name="PreConnectAudio.receive"
        )

    async def _receive(self, reader: rtc.ByteStreamReader, identity: str, buf: _Buffer) -> None:
        attrs = reader.info.attributes or {}
        try:
            try:
                sample_rate = int(attrs["sampleRate"])
                channels = int(attrs.get("channels", "1"))
            except (KeyError, ValueError) as e:
                raise ValueError(
                    f"the stream has no valid sampleRate/channels attributes ({attrs})"
                ) from e
            mime = reader.info.mime_type
            if mime and "pcm" not in mime and mime != "application/octet-stream":
                raise ValueError(f"unsupported audio format {mime!r} (raw PCM expected)")
            buf.track_id = attrs.get("trackId") or None
            chunker = AudioByteStream(sample_rate, channels)
            async with asyncio.timeout(self._timeout):
                async for chunk in reader:
                    buf.frames.extend(chunker.push(chunk))
            buf.frames.extend(chunker.flush())
            logger.debug(
                "pre-connect audio from %s: %.2f s",
                identity,
                sum(f.samples_per_channel / f.sample_rate for f in buf.frames),
            )
        except TimeoutError:
            buf.frames.clear()
            self._report(
                f"the pre-connect audio of {identity} did not arrive within "
                f"{self._timeout:g} s; it is ignored",
                None,
            )
        except Exception as e:
            buf.frames.clear()
            self._report(f"could not read the pre-connect audio of {identity}: {e}", e)
            close = getattr(reader, "close", None)
            if callable(close):
                close()
        finally:
            if not buf.done.done():
                buf.done.set_result(None)
        # not claimed within the timeout: drop it
        await asyncio.sleep(self._timeout)
        if self._buffers.get(identity) is buf:
            del self._buffers[identity]
            if buf.frames:
                logger.info("pre-connect audio of %s was not used in time; dropped", identity)

    def expected(
        self, participant: rtc.RemoteParticipant, publication: rtc.TrackPublication
    ) -> bool:
        """Whether this participant sent (or announced) pre-connect audio for this track."""
        if participant.identity in self._buffers:
            return True
        if participant.attributes.get(ATTRIBUTE_PRE_CONNECT_AUDIO) == "true":
            return True
        try:
            features = list(publication.audio_features)
        except Exception:
            return False
        return AudioTrackFeature.TF_PRECONNECT_BUFFER in features

    async def take(
        self, participant: rtc.RemoteParticipant, publication: rtc.TrackPublication
    ) -> list[rtc.AudioFrame]:
        """The participant's pre-connect audio (once), waiting for it up to the timeout if it is
        announced but not complete; [] if there is none or it came too late."""
        if not self.expected(participant, publication):
            return []
        identity = participant.identity
        deadline = now() + self._timeout
        while (buf := self._buffers.get(identity)) is None:
            remaining = deadline - now()
            if remaining <= 0:
                self._report(
                    f"{identity} announced pre-connect audio but it did not arrive within "
                    f"{self._timeout:g} s; it is ignored",
                    None,
                )
                return []
            await asyncio.sleep(min(0.02, remaining))
        if buf.track_id and publication.sid and buf.track_id != publication.sid:
            logger.debug("pre-connect audio is for track %s, not %s", buf.track_id, publication.sid)
        if not buf.done.done():
            try:
                await asyncio.wait_for(asyncio.shield(buf.done), max(0.0, deadline - now()))
            except TimeoutError:
                return []  # _receive reports it when its own timeout ends
        if self._buffers.get(identity) is buf:
            del self._buffers[identity]
        return list(buf.frames)
