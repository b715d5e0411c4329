"""``RoomIO``: an AgentSession's input and output in a LiveKit room, as in LiveKit Agents. It
links to one remote participant, listens to their microphone, publishes the agent's voice and
the transcriptions, takes chat messages as input, and can be attached to and detached from a
running session (the conversation and its history carry on with other I/O)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc
from livekit.rtc.room import EventTypes as RoomEventTypes

from ...agents.types import NotGiven
from ...agents.utils.aio import TaskSet, cancel_and_wait
from ...agents.voice.agent_session import AgentSession
from ...agents.voice.events import (
    AgentStateChangedEvent,
    CloseEvent,
    CloseReason,
    UserInputTranscribedEvent,
)
from ._input import RoomAudioInput
from ._output import RoomAudioOutput
from ._participant import ParticipantLinker
from ._pre_connect import PreConnectAudio
from ._transcription import AgentTranscriptOutput, UserTranscriptPublisher
from .events import RoomIOEvent, RoomIOEventTypes
from .options import (
    ATTRIBUTE_AGENT_STATE,
    CLOSE_ON_DISCONNECT_REASONS,
    DEFAULT_PARTICIPANT_KINDS,
    TOPIC_CHAT,
    RoomInputOptions,
    RoomOutputOptions,
    TextInputEvent,
    default_text_input_cb,
    is_enabled,
)

logger = logging.getLogger("voicetui.io.room")


def _reason_name(reason: int | None) -> str:
    try:
        name = rtc.DisconnectReason.Name(reason or 0)  # type: ignore[arg-type]
    except ValueError:
        name = "UNKNOWN_REASON"
    return name.lower().replace("_", " ")


class RoomIO(rtc.EventEmitter[RoomIOEventTypes]):
    """Connects ``session`` to ``room`` (already connected; the caller owns it). ``start()``
    sets ``session.input.audio``, ``session.output.audio`` and ``session.output.transcription``
    (the previous transcription output keeps receiving the agent's text, chained);
    ``aclose()`` detaches them again. ``delete_room``, if given, is called when the session
    closes and ``input_options.delete_room_on_close`` is set (see ``token.room_deleter``).
    Emits :class:`RoomIOEvent` for every event type in ``RoomIOEventTypes``."""

    def __init__(
        self,
        session: AgentSession[Any],
        room: rtc.Room,
        *,
        input_options: RoomInputOptions | None = None,
        output_options: RoomOutputOptions | None = None,
        delete_room: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self._session = session
        self._room = room
        self._in = input_options or RoomInputOptions()
        self._out = output_options or RoomOutputOptions()
        self._delete_room = delete_room
        identity = self._in.participant_identity
        kinds = self._in.participant_kinds
        self._linker = ParticipantLinker(
            room,
            identity=None if isinstance(identity, NotGiven) else identity,
            kinds=DEFAULT_PARTICIPANT_KINDS if isinstance(kinds, NotGiven) else kinds,
            on_linked=self._on_linked,
            on_unlinked=self._on_unlinked,
        )
        self._pre_connect: PreConnectAudio | None = None
        self._audio_input: RoomAudioInput | None = None
        self._audio_output: RoomAudioOutput | None = None
        self._agent_transcript: AgentTranscriptOutput | None = None
        self._user_transcript: UserTranscriptPublisher | None = None
        self._chat_registered = False
        self._tasks = TaskSet("RoomIO")
        self._state_task: asyncio.Task[None] | None = None
        self._session_close_task: asyncio.Task[None] | None = None
        self._delete_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    # --- public -------------------------------------------------------------------------
    @property
    def room(self) -> rtc.Room:
        return self._room

    @property
    def session(self) -> AgentSession[Any]:
        return self._session

    @property
    def linked_participant(self) -> rtc.RemoteParticipant | None:
        return self._linker.linked

    @property
    def audio_input(self) -> RoomAudioInput | None:
        return self._audio_input

    @property
    def audio_output(self) -> RoomAudioOutput | None:
        return self._audio_output

    @property
    def transcription_output(self) -> AgentTranscriptOutput | None:
        return self._agent_transcript

    async def wait_for_participant(self) -> rtc.RemoteParticipant:
        """The linked participant, waiting for one to join if there is none yet."""
        return await self._linker.wait()

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("RoomIO.start() was already called")
        self._started = True
        self._create_io()
        for event, handler in self._room_handlers().items():
            self._room.on(event, handler)
        if self._audio_output is not None:
            try:
                await self._audio_output.start()
            except Exception as e:
                self._error(f"could not publish the agent's audio track: {e}", e, "audio_output")
        self._linker.start()
        self._attach()
        self._session.on("user_input_transcribed", self._on_user_input_transcribed)
        self._session.on("agent_state_changed", self._on_agent_state_changed)
        self._session.on("close", self._on_session_close)
        if self._session.running:
            self._on_agent_state_changed(
                AgentStateChangedEvent(
                    old_state=self._session.agent_state, new_state=self._session.agent_state
                )
            )

    async def aclose(self) -> None:
        """Detach from the session (only what is still ours) and release the room resources.
        The room stays connected; the session and its history are untouched."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        self._detach()
        self._session.off("user_input_transcribed", self._on_user_input_transcribed)
        self._session.off("agent_state_changed", self._on_agent_state_changed)
        self._session.off("close", self._on_session_close)
        self._linker.stop()
        for event, handler in self._room_handlers().items():
            self._room.off(event, handler)
        if self._chat_registered:
            self._room.unregister_text_stream_handler(TOPIC_CHAT)
            self._chat_registered = False
        if self._audio_input is not None:
            await self._audio_input.aclose()
        if self._audio_output is not None:
            await self._audio_output.aclose()  # first: held transcript text resolves at once
        if self._agent_transcript is not None:
            await self._agent_transcript.aclose()
        if self._user_transcript is not None:
            await self._user_transcript.aclose()
        if self._pre_connect is not None:
            await self._pre_connect.aclose()
        # closing the session and deleting the room are finished, not abandoned
        pending = [t for t in (self._session_close_task, self._delete_task) if t is not None]
        if pending:
            await asyncio.wait(pending, timeout=10.0)
        await cancel_and_wait(self._state_task)
        await self._tasks.aclose()

    # --- setup --------------------------------------------------------------------------
    def _create_io(self) -> None:
        inp, out = self._in, self._out
        audio_in = is_enabled(inp.audio_enabled, default=True)
        if is_enabled(inp.video_enabled, default=False):
            logger.warning("video input is not supported by voicetui sessions; ignored")
        if audio_in and inp.pre_connect_audio:
            self._pre_connect = PreConnectAudio(
                self._room, timeout=inp.pre_connect_audio_timeout, report=self._report_warning
            )
            self._pre_connect.register()
        if audio_in:
            self._audio_input = RoomAudioInput(
                sample_rate=inp.audio_sample_rate,
                num_channels=inp.audio_num_channels,
                noise_cancellation=inp.noise_cancellation,
                pre_connect=self._pre_connect,
            )
        if is_enabled(inp.text_enabled, default=True):
            try:
                self._room.register_text_stream_handler(TOPIC_CHAT, self._on_chat)
                self._chat_registered = True
            except ValueError:
                logger.warning("a handler for %r is already registered; no chat input", TOPIC_CHAT)
        if is_enabled(out.audio_enabled, default=True):
            self._audio_output = RoomAudioOutput(
                self._room,
                sample_rate=out.audio_sample_rate,
                num_channels=out.audio_num_channels,
                publish_options=out.audio_publish_options,
            )
        if is_enabled(out.transcription_enabled, default=True):
            self._user_transcript = UserTranscriptPublisher(self._room, self._report_warning)
            self._agent_transcript = AgentTranscriptOutput(
                self._room,
                audio_output=self._audio_output,
                is_synced=self._speaks_through_room,
                report=self._report_warning,
                next_in_chain=self._session.output.transcription,
            )

    def _room_handlers(self) -> dict[RoomEventTypes, Callable[..., None]]:
        return {
            "track_subscribed": self._on_track_subscribed,
            "track_unsubscribed": self._on_track_unsubscribed,
            "track_unpublished": self._on_track_unpublished,
            "track_published": self._on_track_published,
            "disconnected": self._on_disconnected,
            "reconnecting": self._on_reconnecting,
            "reconnected": self._on_reconnected,
        }

    def _attach(self) -> None:
        s = self._session
        if self._audio_input is not None:
            s.input.audio = self._audio_input
        if self._audio_output is not None:
            s.output.audio = self._audio_output
        if self._agent_transcript is not None:
            s.output.transcription = self._agent_transcript

    def _detach(self) -> None:
        s = self._session
        if self._audio_input is not None and s.input.audio is self._audio_input:
            s.input.audio = None
        if self._audio_output is not None and s.output.audio is self._audio_output:
            s.output.audio = None
        if self._agent_transcript is not None and s.output.transcription is self._agent_transcript:
            s.output.transcription = self._agent_transcript.next_in_chain

    def _speaks_through_room(self) -> bool:
        out = self._session.output
        return out.audio is self._audio_output and out.audio_enabled

    # --- reporting ----------------------------------------------------------------------
    def _emit_event(self, ev: RoomIOEvent) -> None:
        self.emit(ev.type, ev)

    def _report_warning(self, message: str, error: BaseException | None) -> None:
        logger.warning("%s", message)
        self._emit_event(RoomIOEvent(type="error", message=message, error=error))

    def _error(self, message: str, error: BaseException | None, source: str) -> None:
        self._report_warning(message, error)
        if self._session.running:
            self._session._report_error(source, message, error, recoverable=True)

    # --- participant --------------------------------------------------------------------
    def _on_linked(self, participant: rtc.RemoteParticipant) -> None:
        if self._user_transcript is not None:
            self._user_transcript.identity = participant.identity
            self._user_transcript.track_id = None
        self._listen_to(participant)
        self._emit_event(
            RoomIOEvent(
                type="participant_linked",
                message=f"talking with {participant.identity} in room {self._room.name!r}",
                participant_identity=participant.identity,
            )
        )

    def _on_unlinked(self, participant: rtc.RemoteParticipant) -> None:
        if self._audio_input is not None:
            self._audio_input.clear_track()
        if self._user_transcript is not None:
            self._user_transcript.identity = None
        reason_code = participant.disconnect_reason
        reason = _reason_name(reason_code)
        closing = (
            self._in.close_on_disconnect
            and reason_code in CLOSE_ON_DISCONNECT_REASONS
            and self._session.running
            and self._session_close_task is None
        )
        suffix = "closing the session" if closing else "waiting for someone to join"
        self._emit_event(
            RoomIOEvent(
                type="participant_unlinked",
                message=f"{participant.identity} left the room ({reason}); {suffix}",
                participant_identity=participant.identity,
                reason=reason,
            )
        )
        if closing:
            self._session_close_task = self._tasks.create(
                self._session.aclose(reason=CloseReason.PARTICIPANT_DISCONNECTED),
                name="RoomIO.close_session",
            )

    def _listen_to(self, participant: rtc.RemoteParticipant) -> None:
        for publication in list(participant.track_publications.values()):
            track = publication.track
            if track is not None and self._is_microphone(publication):
                self._on_track_subscribed(track, publication, participant)
                return
            if self._is_microphone(publication) and not publication.subscribed:
                publication.set_subscribed(True)  # auto-subscribe is off: ask for it

    @staticmethod
    def _is_microphone(publication: rtc.TrackPublication) -> bool:
        return (
            publication.source == rtc.TrackSource.SOURCE_MICROPHONE
            and publication.kind == rtc.TrackKind.KIND_AUDIO
        )

    def _is_linked(self, participant: rtc.RemoteParticipant) -> bool:
        linked = self._linker.linked
        return linked is not None and linked.identity == participant.identity

    def _on_track_published(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if (
            self._is_linked(participant)
            and self._is_microphone(publication)
            and not publication.subscribed
        ):
            publication.set_subscribed(True)

    def _on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.TrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if not self._is_linked(participant) or not self._is_microphone(publication):
            return
        if self._user_transcript is not None:
            self._user_transcript.track_id = publication.sid
        if self._audio_input is not None:
            self._audio_input.set_track(track, publication, participant)

    def _on_track_unsubscribed(
        self,
        track: rtc.Track | None,
        publication: rtc.TrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        self._on_track_unpublished(publication, participant)

    def _on_track_unpublished(
        self, publication: rtc.TrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if self._audio_input is None or not self._is_linked(participant):
            return
        if publication.sid != self._audio_input.publication_sid:
            return
        self._audio_input.clear_track(publication.sid)
        for other in list(participant.track_publications.values()):  # another microphone?
            if other.sid != publication.sid and other.track is not None:
                if self._is_microphone(other):
                    self._on_track_subscribed(other.track, other, participant)
                    return

    # --- room connection ----------------------------------------------------------------
    def _on_disconnected(self, reason: int | None = None) -> None:
        why = _reason_name(reason)
        self._emit_event(
            RoomIOEvent(
                type="disconnected",
                message=f"disconnected from LiveKit room {self._room.name!r} ({why}); the conversation "
                "is kept — reconnect or switch to local audio to continue",
                reason=why,
            )
        )

    def _on_reconnecting(self) -> None:
        self._emit_event(
            RoomIOEvent(
                type="reconnecting",
                message=f"lost the connection to LiveKit room {self._room.name!r}; reconnecting…",
            )
        )

    def _on_reconnected(self) -> None:
        self._emit_event(
            RoomIOEvent(
                type="reconnected", message=f"reconnected to LiveKit room {self._room.name!r}"
            )
        )

    # --- chat input ---------------------------------------------------------------------
    def _on_chat(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        linked = self._linker.linked
        if linked is None or linked.identity != participant_identity:
            logger.info("ignoring a chat message from %s (not linked)", participant_identity)
            reader.close()
            return
        self._tasks.create(self._read_chat(reader, linked), name="RoomIO.chat")

    async def _read_chat(self, reader: rtc.TextStreamReader, who: rtc.RemoteParticipant) -> None:
        try:
            text = await reader.read_all()
        except Exception as e:
            self._report_warning(f"could not read a chat message from {who.identity}: {e}", e)
            return
        if not text.strip():
            return
        if self._in.text_input_cb is default_text_input_cb and not self._session.running:
            logger.info("ignoring a chat message from %s: the session is not running", who.identity)
            return
        try:
            result = self._in.text_input_cb(
                self._session, TextInputEvent(text=text, info=reader.info, participant=who)
            )
            if inspect.isawaitable(result):
                await result
        except Exception as e:
            self._error(f"the chat message from {who.identity} failed: {e}", e, "text_input")

    # --- session events -----------------------------------------------------------------
    def _on_user_input_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if self._user_transcript is not None:
            self._user_transcript.publish(ev.transcript, final=ev.is_final)

    def _on_agent_state_changed(self, ev: AgentStateChangedEvent) -> None:
        previous = self._state_task
        self._state_task = self._tasks.create(
            self._publish_state(previous, ev.new_state), name="RoomIO.agent_state"
        )

    async def _publish_state(self, previous: asyncio.Task[None] | None, state: str) -> None:
        await cancel_and_wait(previous)
        if not self._room.isconnected():
            return
        try:
            await self._room.local_participant.set_attributes({ATTRIBUTE_AGENT_STATE: state})
        except Exception as e:
            logger.debug("could not publish the agent state: %s", e)

    def _on_session_close(self, ev: CloseEvent) -> None:
        if not self._in.delete_room_on_close or self._delete_task is not None:
            return
        if self._delete_room is None:
            logger.info("not deleting room %r: no API credentials", self._room.name)
            return
        self._delete_task = self._tasks.create(self._delete(), name="RoomIO.delete_room")

    async def _delete(self) -> None:
        assert self._delete_room is not None
        try:
            await self._delete_room()
            logger.info("deleted room %r", self._room.name)
        except Exception as e:
            self._report_warning(f"could not delete room {self._room.name!r}: {e}", e)
