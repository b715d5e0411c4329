"""A LiveKit room without a server, for RoomIO tests. ``FakeRoom`` is an ``rtc.EventEmitter``
emitting the real room events with the real arguments; participants' microphones are real
``rtc.LocalAudioTrack`` objects fed by real ``rtc.AudioSource`` objects (``FakeMicrophone``), so
``rtc.AudioStream`` works on them offline. The local participant records what is published:
tracks, text streams, attributes.

    room = FakeRoom()
    alice = room.add_participant("alice")
    mic = FakeMicrophone()
    room.publish_microphone(alice, mic)
    await mic.play_tone(0.5, 440)
    room.send_chat("alice", "hello")
    room.remove_participant("alice", reason=rtc.DisconnectReason.CLIENT_INITIATED)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import numpy as np
from livekit import rtc
from livekit.rtc.room import EventTypes

_ids = itertools.count(1)


def _sid(prefix: str) -> str:
    return f"{prefix}_{next(_ids):04d}"


def tone(
    duration: float, freq: float, *, sample_rate: int = 48000, amplitude: float = 0.3
) -> np.ndarray:
    n = round(duration * sample_rate)
    t = np.arange(n) / sample_rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def frames_of(samples: np.ndarray, sample_rate: int, frame_ms: int = 10) -> list[rtc.AudioFrame]:
    step = sample_rate * frame_ms // 1000
    out = []
    for i in range(0, len(samples), step):
        chunk = np.ascontiguousarray(samples[i : i + step], dtype=np.int16)
        out.append(rtc.AudioFrame(chunk.tobytes(), sample_rate, 1, len(chunk)))
    return out


# --- remote side ------------------------------------------------------------------------
class FakeMicrophone:
    """A participant's microphone: a real AudioSource feeding a real LocalAudioTrack."""

    def __init__(self, sample_rate: int = 48000, num_channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.source = rtc.AudioSource(sample_rate, num_channels, queue_size_ms=100)
        self.track = rtc.LocalAudioTrack.create_audio_track("microphone", self.source)

    async def play(self, samples: np.ndarray) -> None:
        for frame in frames_of(samples, self.sample_rate):
            await self.source.capture_frame(frame)

    async def play_tone(self, duration: float, freq: float = 440.0, amplitude: float = 0.3) -> None:
        await self.play(tone(duration, freq, sample_rate=self.sample_rate, amplitude=amplitude))

    async def play_silence(self, duration: float) -> None:
        await self.play(np.zeros(round(duration * self.sample_rate), dtype=np.int16))

    async def aclose(self) -> None:
        await self.source.aclose()


class FakeRemotePublication:
    def __init__(
        self,
        track: Any | None,
        *,
        source: rtc.TrackSource.ValueType = rtc.TrackSource.SOURCE_MICROPHONE,
        kind: rtc.TrackKind.ValueType = rtc.TrackKind.KIND_AUDIO,
        audio_features: Sequence[int] = (),
    ) -> None:
        self.sid = _sid("TR")
        self.name = "microphone"
        self.source = source
        self.kind = kind
        self.track = track
        self.subscribed = track is not None
        self.muted = False
        self.audio_features = list(audio_features)
        self.subscribe_requests: list[bool] = []

    def set_subscribed(self, subscribed: bool) -> None:
        self.subscribe_requests.append(subscribed)


class FakeRemoteParticipant:
    def __init__(
        self,
        identity: str,
        *,
        kind: rtc.ParticipantKind.ValueType = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.identity = identity
        self.name = identity
        self.sid = _sid("PA")
        self.kind = kind
        self.attributes = dict(attributes or {})
        self.metadata = ""
        self.disconnect_reason: rtc.DisconnectReason.ValueType | None = None
        self.track_publications: dict[str, FakeRemotePublication] = {}


class FakeTextReader:
    """An incoming text stream (what a chat message looks like to a handler)."""

    def __init__(self, text: str, topic: str, attributes: dict[str, str] | None = None) -> None:
        self._text = text
        self.info = rtc.TextStreamInfo(
            stream_id=_sid("ST"),
            mime_type="text/plain",
            topic=topic,
            timestamp=int(time.time() * 1000),
            size=len(text),
            attributes=dict(attributes or {}),
            attachments=[],
        )
        self.closed = False
        self.read = False

    async def read_all(self) -> str:
        self.read = True
        return self._text

    def close(self) -> None:
        self.closed = True


class FakeByteReader:
    """An incoming byte stream, delivered in chunks (``chunk_delay`` seconds apart)."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        topic: str,
        attributes: dict[str, str],
        mime_type: str = "audio/pcm",
        chunk_delay: float = 0.0,
    ) -> None:
        self._chunks = list(chunks)
        self._delay = chunk_delay
        self.info = rtc.ByteStreamInfo(
            stream_id=_sid("BS"),
            mime_type=mime_type,
            topic=topic,
            timestamp=int(time.time() * 1000),
            size=sum(len(c) for c in self._chunks),
            attributes=attributes,
            name="pre-connect-audio",
        )
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield chunk

    def close(self) -> None:
        self.closed = True


# --- local side -------------------------------------------------------------------------
class FakeLocalPublication:
    def __init__(self, track: rtc.LocalAudioTrack, options: rtc.TrackPublishOptions) -> None:
        self.sid = _sid("TR")
        self.track = track
        self.options = options
        self.source = options.source
        self.kind = rtc.TrackKind.KIND_AUDIO
        self.subscribed = asyncio.Event()

    async def wait_for_subscription(self) -> None:
        await self.subscribed.wait()


class FakeTextWriter:
    def __init__(
        self, topic: str, attributes: dict[str, str], sender_identity: str, opened_at: float
    ) -> None:
        self.topic = topic
        self.attributes = dict(attributes)
        self.sender_identity = sender_identity
        self.opened_at = opened_at
        self.chunks: list[tuple[float, str]] = []
        self.closed = False
        self.close_attributes: dict[str, str] = {}
        self.closed_at: float | None = None

    @property
    def text(self) -> str:
        return "".join(c for _, c in self.chunks)

    @property
    def final(self) -> bool:
        merged = {**self.attributes, **self.close_attributes}
        return merged.get("lk.transcription_final") == "true"

    @property
    def segment_id(self) -> str | None:
        return self.attributes.get("lk.segment_id")

    @property
    def track_id(self) -> str | None:
        merged = {**self.attributes, **self.close_attributes}
        return merged.get("lk.transcribed_track_id")

    async def write(self, text: str) -> None:
        if self.closed:
            raise RuntimeError("Cannot write after stream is closed")
        self.chunks.append((asyncio.get_running_loop().time(), text))

    async def aclose(self, *, reason: str = "", attributes: dict[str, str] | None = None) -> None:
        if self.closed:
            raise RuntimeError("Stream already closed")
        self.closed = True
        self.close_attributes = dict(attributes or {})
        self.closed_at = asyncio.get_running_loop().time()


class FakeLocalParticipant:
    def __init__(self, room: FakeRoom, identity: str) -> None:
        self._room = room
        self.identity = identity
        self.name = identity
        self.sid = _sid("PA")
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        self.attributes: dict[str, str] = {}
        self.attribute_history: list[dict[str, str]] = []
        self.track_publications: dict[str, FakeLocalPublication] = {}
        self.published: list[FakeLocalPublication] = []
        self.unpublished: list[str] = []
        self.text_streams: list[FakeTextWriter] = []
        self.publish_error: Exception | None = None
        self.auto_subscribed = True
        self.stream_error: Exception | None = None

    async def publish_track(
        self, track: rtc.LocalAudioTrack, options: rtc.TrackPublishOptions
    ) -> FakeLocalPublication:
        await asyncio.sleep(0)
        if self.publish_error is not None:
            raise self.publish_error
        pub = FakeLocalPublication(track, options)
        if self.auto_subscribed:
            pub.subscribed.set()  # somebody listens right away
        self.track_publications[pub.sid] = pub
        self.published.append(pub)
        self._room.emit("local_track_published", pub, track)
        return pub

    async def unpublish_track(self, track_sid: str) -> None:
        pub = self.track_publications.pop(track_sid)
        self.unpublished.append(track_sid)
        self._room.emit("local_track_unpublished", pub)

    async def stream_text(
        self,
        *,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        sender_identity: str | None = None,
        **_: Any,
    ) -> FakeTextWriter:
        await asyncio.sleep(0)
        if self.stream_error is not None:
            raise self.stream_error
        writer = FakeTextWriter(
            topic,
            attributes or {},
            sender_identity or self.identity,
            asyncio.get_running_loop().time(),
        )
        self.text_streams.append(writer)
        return writer

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.update(attributes)
        self.attribute_history.append(dict(attributes))

    def streams(self, topic: str, *, sender: str | None = None) -> list[FakeTextWriter]:
        return [
            w
            for w in self.text_streams
            if w.topic == topic and (sender is None or w.sender_identity == sender)
        ]


# --- the room ---------------------------------------------------------------------------
class FakeRoom(rtc.EventEmitter[EventTypes]):
    def __init__(self, name: str = "test-room", *, local_identity: str = "agent") -> None:
        super().__init__()
        self.name = name
        self.metadata = ""
        self.local_participant = FakeLocalParticipant(self, local_identity)
        self.remote_participants: dict[str, FakeRemoteParticipant] = {}
        self._connected = True
        self.text_handlers: dict[str, Any] = {}
        self.byte_handlers: dict[str, Any] = {}

    # rtc.Room API used by RoomIO
    def isconnected(self) -> bool:
        return self._connected

    @property
    def connection_state(self) -> int:
        return 1 if self._connected else 0

    def register_text_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.text_handlers:
            raise ValueError(f"text stream handler for topic '{topic}' already set")
        self.text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        self.text_handlers.pop(topic, None)

    def register_byte_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.byte_handlers:
            raise ValueError(f"byte stream handler for topic '{topic}' already set")
        self.byte_handlers[topic] = handler

    def unregister_byte_stream_handler(self, topic: str) -> None:
        self.byte_handlers.pop(topic, None)

    # scripting the other side
    def add_participant(
        self,
        identity: str,
        *,
        kind: rtc.ParticipantKind.ValueType = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
        attributes: dict[str, str] | None = None,
        emit: bool = True,
    ) -> FakeRemoteParticipant:
        p = FakeRemoteParticipant(identity, kind=kind, attributes=attributes)
        self.remote_participants[identity] = p
        if emit:
            self.emit("participant_connected", p)
        return p

    def publish_microphone(
        self,
        participant: FakeRemoteParticipant,
        mic: FakeMicrophone,
        *,
        audio_features: Sequence[int] = (),
        subscribe: bool = True,
    ) -> FakeRemotePublication:
        pub = FakeRemotePublication(None, audio_features=audio_features)
        participant.track_publications[pub.sid] = pub
        self.emit("track_published", pub, participant)
        if subscribe:
            self.subscribe(participant, pub, mic)
        return pub

    def subscribe(
        self, participant: FakeRemoteParticipant, pub: FakeRemotePublication, mic: FakeMicrophone
    ) -> None:
        pub.track = mic.track
        pub.subscribed = True
        self.emit("track_subscribed", mic.track, pub, participant)

    def unpublish(self, participant: FakeRemoteParticipant, pub: FakeRemotePublication) -> None:
        track, pub.track, pub.subscribed = pub.track, None, False
        if track is not None:
            self.emit("track_unsubscribed", track, pub, participant)
        participant.track_publications.pop(pub.sid, None)
        self.emit("track_unpublished", pub, participant)

    def remove_participant(
        self,
        identity: str,
        *,
        reason: rtc.DisconnectReason.ValueType = rtc.DisconnectReason.CLIENT_INITIATED,
    ) -> FakeRemoteParticipant:
        p = self.remote_participants[identity]
        for pub in list(p.track_publications.values()):
            if pub.track is not None:
                track, pub.track, pub.subscribed = pub.track, None, False
                self.emit("track_unsubscribed", track, pub, p)
        del self.remote_participants[identity]
        p.disconnect_reason = reason
        self.emit("participant_disconnected", p)
        return p

    def start_reconnecting(self) -> None:
        self.emit("reconnecting")

    def finish_reconnecting(self) -> None:
        self.emit("reconnected")

    def disconnect(
        self, reason: rtc.DisconnectReason.ValueType = rtc.DisconnectReason.SIGNAL_CLOSE
    ) -> None:
        self._connected = False
        self.emit("connection_state_changed", 0)
        self.emit("disconnected", reason)

    def send_chat(self, identity: str, text: str, *, topic: str = "lk.chat") -> FakeTextReader:
        reader = FakeTextReader(text, topic)
        handler = self.text_handlers.get(topic)
        if handler is None:
            reader.close()
        else:
            handler(reader, identity)
        return reader

    def send_pre_connect_audio(
        self,
        identity: str,
        samples: np.ndarray,
        *,
        sample_rate: int,
        channels: int = 1,
        track_id: str | None = None,
        chunk_bytes: int = 4000,
        chunk_delay: float = 0.0,
        attributes: dict[str, str] | None = None,
    ) -> FakeByteReader:
        data = np.ascontiguousarray(samples, dtype=np.int16).tobytes()
        chunks = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
        attrs = {"sampleRate": str(sample_rate), "channels": str(channels)}
        if track_id:
            attrs["trackId"] = track_id
        attrs.update(attributes or {})
        topic = "lk.agent.pre-connect-audio-buffer"
        reader = FakeByteReader(chunks, topic=topic, attributes=attrs, chunk_delay=chunk_delay)
        handler = self.byte_handlers.get(topic)
        if handler is None:
            reader.close()
        else:
            handler(reader, identity)
        return reader
