"""Transcriptions published to the room as text streams on topic ``lk.transcription`` (what
LiveKit clients show as captions): the user's (interim and final, on behalf of the user) and the
agent's (one delta stream per message, released in step with the audio actually played)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc

from ...agents.utils.aio import Chan, TaskSet
from ...agents.voice.io import TextOutput
from ._output import RoomAudioOutput
from .options import (
    ATTRIBUTE_TRANSCRIPTION_FINAL,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    ATTRIBUTE_TRANSCRIPTION_TRACK_ID,
    TOPIC_TRANSCRIPTION,
)

logger = logging.getLogger("voicetui.io.room")

ErrorReporter = Callable[[str, BaseException | None], None]

_POLL = 0.02  # how often held text checks the playback position


def _segment_id() -> str:
    return "SG_" + uuid.uuid4().hex[:12]


def _attributes(segment_id: str, track_id: str | None, *, final: bool) -> dict[str, str]:
    attrs = {
        ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID: segment_id,
        ATTRIBUTE_TRANSCRIPTION_FINAL: "true" if final else "false",
    }
    if track_id:
        attrs[ATTRIBUTE_TRANSCRIPTION_TRACK_ID] = track_id
    return attrs


class _FailureLog:
    """Reports the first failure of a run of failures, not every one."""

    def __init__(self, what: str, report: ErrorReporter) -> None:
        self._what = what
        self._report = report
        self._failing = False

    def failed(self, e: BaseException) -> None:
        if not self._failing:
            self._failing = True
            self._report(f"could not publish the {self._what} to the room: {e}", e)
        else:
            logger.debug("publishing the %s failed again: %s", self._what, e)

    def ok(self) -> None:
        self._failing = False


class UserTranscriptPublisher:
    """Publishes the user's transcripts on their behalf: each update as a complete stream with
    the same segment id until the final one."""

    def __init__(self, room: rtc.Room, report: ErrorReporter) -> None:
        self._room = room
        self._ch: Chan[tuple[str, bool, str, str | None]] = Chan()
        self._segment_id = _segment_id()
        self._failures = _FailureLog("user's transcription", report)
        self._tasks = TaskSet("UserTranscriptPublisher")
        self._tasks.create(self._run(), name="UserTranscriptPublisher.run")
        self.identity: str | None = None
        self.track_id: str | None = None

    def publish(self, transcript: str, *, final: bool) -> None:
        if self.identity is None or not transcript or self._ch.closed:
            return
        self._ch.send_nowait((transcript, final, self.identity, self.track_id))

    async def _run(self) -> None:
        async for text, final, identity, track_id in self._ch:
            attrs = _attributes(self._segment_id, track_id, final=final)
            if final:
                self._segment_id = _segment_id()
            if not self._room.isconnected():
                continue
            try:
                writer = await self._room.local_participant.stream_text(
                    topic=TOPIC_TRANSCRIPTION, attributes=attrs, sender_identity=identity
                )
                await writer.write(text)
                await writer.aclose()
                self._failures.ok()
            except Exception as e:
                self._failures.failed(e)

    async def aclose(self) -> None:
        self._ch.close()
        await self._tasks.aclose()


@dataclass
class _Text:
    text: str
    segment: int
    position: float
    synced: bool


class _Flush:
    pass


class AgentTranscriptOutput(TextOutput):
    """The session's transcription output while a RoomIO is attached. Text is held until the
    agent's audio reaches it (when the session speaks through ``audio_output``), then written
    to a delta text stream; ``flush`` closes the stream as final. Text never heard (an
    interruption) is not published. Released text is also given to ``next_in_chain``."""

    def __init__(
        self,
        room: rtc.Room,
        *,
        audio_output: RoomAudioOutput | None,
        is_synced: Callable[[], bool],
        report: ErrorReporter,
        next_in_chain: TextOutput | None = None,
    ) -> None:
        super().__init__(label="RoomIO")
        self._room = room
        self._audio = audio_output
        self._is_synced = is_synced
        self._next = next_in_chain
        self._ops: Chan[_Text | _Flush] = Chan()
        self._flushes_queued = 0
        self._writer: rtc.TextStreamWriter | None = None
        self._segment_id = _segment_id()
        self._released_any = False
        self._failures = _FailureLog("agent's transcription", report)
        self._tasks = TaskSet("AgentTranscriptOutput")
        self._tasks.create(self._run(), name="AgentTranscriptOutput.run")

    @property
    def next_in_chain(self) -> TextOutput | None:
        return self._next

    async def capture_text(self, text: str) -> None:
        if self._ops.closed or not text:
            return
        if self._audio is not None and self._is_synced():
            segment, position = self._audio.mark()
            self._ops.send_nowait(_Text(text, segment, position, synced=True))
        else:
            self._ops.send_nowait(_Text(text, 0, 0.0, synced=False))

    def flush(self) -> None:
        if self._ops.closed:
            return
        self._flushes_queued += 1
        self._ops.send_nowait(_Flush())

    async def aclose(self) -> None:
        """Publish what is held (the conversation moves elsewhere) and stop."""
        self._ops.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._drain()), 2.0)
        except TimeoutError:
            logger.warning("gave up publishing the rest of the agent's transcription")
        await self._tasks.aclose()
        await self._close_writer(final=True)

    async def _drain(self) -> None:
        for task in list(self._tasks.tasks):
            await asyncio.wait({task})

    async def _run(self) -> None:
        async for op in self._ops:
            if isinstance(op, _Flush):
                self._flushes_queued -= 1
                await self._close_writer(final=True)
                if self._next is not None and self._released_any:
                    self._next.flush()
                self._released_any = False
                continue
            if op.synced and not await self._reached(op):
                continue  # never heard: interrupted before this text's audio
            await self._release(op.text)

    async def _reached(self, op: _Text) -> bool:
        """Wait until playback reaches the text; False if it never will (interrupted)."""
        assert self._audio is not None
        while True:
            p = self._audio.progress(op.segment)
            if p.started and p.played >= op.position:
                return True
            if p.finished:
                return not p.interrupted
            if not p.started and (self._flushes_queued > 0 or self._ops.closed):
                return True  # the message ended without audio for this text: show it
            await asyncio.sleep(_POLL)

    async def _release(self, text: str) -> None:
        self._released_any = True
        if self._next is not None:
            await self._next.capture_text(text)
        if not self._room.isconnected():
            return
        try:
            if self._writer is None:
                track_id = self._audio.track_sid if self._audio is not None else None
                self._writer = await self._room.local_participant.stream_text(
                    topic=TOPIC_TRANSCRIPTION,
                    attributes=_attributes(self._segment_id, track_id, final=False),
                )
            await self._writer.write(text)
            self._failures.ok()
        except Exception as e:
            self._failures.failed(e)

    async def _close_writer(self, *, final: bool) -> None:
        writer, self._writer = self._writer, None
        segment_id, self._segment_id = self._segment_id, _segment_id()
        if writer is None or not self._room.isconnected():
            return
        track_id = self._audio.track_sid if self._audio is not None else None
        try:
            await writer.aclose(attributes=_attributes(segment_id, track_id, final=final))
        except Exception as e:
            self._failures.failed(e)
