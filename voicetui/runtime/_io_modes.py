"""The session's I/O for each mode: local devices, a LiveKit room, text only, WAV files.

A :class:`ModeBackend` owns its resources (devices, room connection, files); ``attach`` puts its
input and output on a session, ``detach`` takes them off again (the session and its history
carry on with other I/O), ``aclose`` releases the resources. Backends are built on the session
loop by :func:`build_backend` (tests give the controller their own factory instead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from livekit import rtc

from ..agents.voice import AgentSession, AudioInput, AudioOutput
from ..config import Settings
from ..io.room.events import RoomIOEvent, RoomIOEventTypes
from ._loop import readable_error
from .api import Mode, NoticeLevel, RoomDetails, RoomUpdate, RuntimeEvent

logger = logging.getLogger("voicetui.runtime")

NoticeFn = Callable[[NoticeLevel, str], None]
LevelsFn = Callable[..., None]
"""``(direction, rms_dbfs, peak_dbfs, *, echo_cancelling=False, erle_db=None)``"""

PIPELINE_INPUT_RATE = 16000
PIPELINE_OUTPUT_RATE = 24000


class NoAudioDeviceError(RuntimeError):
    """There is no usable microphone or speaker (or no PortAudio at all)."""


@dataclass(frozen=True)
class ModeRequest:
    mode: Mode
    room: RoomDetails | None = None
    input_device: str | int | None = None
    output_device: str | int | None = None
    input_wav: str | None = None
    output_wav: str | None = None
    echo_cancellation: bool = True


@dataclass(frozen=True)
class BackendHooks:
    """How a backend reports to the runtime (called on the session loop)."""

    notice: NoticeFn
    levels: LevelsFn
    emit: Callable[[RuntimeEvent], None]


class ModeBackend:
    """A mode's I/O. The base class is a complete backend for fixed input/output objects (text
    mode, tests with fakes); subclasses add what their resources need."""

    def __init__(
        self,
        mode: Mode,
        description: str,
        *,
        audio_input: AudioInput | None = None,
        audio_output: AudioOutput | None = None,
    ) -> None:
        self.mode: Mode = mode
        self.description = description
        self.audio_input = audio_input
        self.audio_output = audio_output
        self.input_finished: asyncio.Event | None = None
        """Set when a finite input (a WAV file) has been heard to its end."""

    @property
    def can_mute(self) -> bool:
        """The backend mutes at the source (the mic level meter shows it)."""
        return False

    def set_muted(self, muted: bool) -> None:
        """Mute at the source (only when :attr:`can_mute`)."""

    async def attach(self, session: AgentSession[Any]) -> None:
        session.input.audio = self.audio_input
        session.output.audio = self.audio_output

    async def detach(self, session: AgentSession[Any]) -> None:
        # the session may hold this backend's I/O inside recording wrappers
        from ..recording.taps import unwrap_input, unwrap_output

        if unwrap_input(session.input.audio) is self.audio_input:
            session.input.audio = None
        if unwrap_output(session.output.audio) is self.audio_output:
            session.output.audio = None

    async def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> None:
        raise RuntimeError(f"audio devices are chosen in LOCAL mode (this is {self.mode.upper()})")

    async def aclose(self) -> None:
        for obj in (self.audio_input, self.audio_output):
            close = getattr(obj, "aclose", None)
            if close is not None:
                await close()
            elif callable(getattr(obj, "close", None)):
                obj.close()  # type: ignore[union-attr]


# --- local devices ----------------------------------------------------------------------------
def probe_devices(input_device: str | int | None, output_device: str | int | None) -> Any:
    """The (input, output) DeviceInfo the local mode would use; raises
    :class:`NoAudioDeviceError` (blocking: PortAudio queries)."""
    from ..io.local import AudioDeviceError, DeviceNotFoundError, resolve_device

    try:
        mic = resolve_device(input_device, "input")
    except DeviceNotFoundError as e:
        first = str(e).splitlines()[0]
        raise NoAudioDeviceError(
            first if input_device is not None else "no microphone found"
        ) from e
    except AudioDeviceError as e:
        raise NoAudioDeviceError(f"audio is not available: {e}") from e
    try:
        speaker = resolve_device(output_device, "output")
    except DeviceNotFoundError as e:
        first = str(e).splitlines()[0]
        raise NoAudioDeviceError(first if output_device is not None else "no speaker found") from e
    return mic, speaker


class LocalBackend(ModeBackend):
    def __init__(self, request: ModeRequest, hooks: BackendHooks, mic: Any, speaker: Any) -> None:
        from ..io.local import LocalAudio

        self._audio = LocalAudio(
            input_device=mic.index,
            output_device=speaker.index,
            input_sample_rate=PIPELINE_INPUT_RATE,
            output_sample_rate=PIPELINE_OUTPUT_RATE,
            echo_cancellation=request.echo_cancellation,
        )
        super().__init__(
            "local",
            self._describe(mic.name, speaker.name),
            audio_input=self._audio.input,
            audio_output=self._audio.output,
        )
        self._hooks = hooks
        events = self._audio.events
        events.on(
            "levels",
            lambda ev: hooks.levels(
                ev.direction,
                ev.rms_dbfs,
                ev.peak_dbfs,
                echo_cancelling=ev.echo_cancelling,
                erle_db=ev.erle_db,
            ),
        )
        events.on("error", lambda ev: hooks.notice("warning", ev.message))
        events.on("stream_opened", self._on_opened)

    @staticmethod
    def _describe(mic: str, speaker: str) -> str:
        return f"LOCAL mic: {mic} / speaker: {speaker}"

    def _on_opened(self, ev: Any) -> None:
        if ev.recovered:
            what = "microphone" if ev.direction == "input" else "speaker"
            self._hooks.notice("info", f"the {what} {ev.device} works again")

    def start(self) -> None:
        self._audio.start()

    @property
    def can_mute(self) -> bool:
        return True

    def set_muted(self, muted: bool) -> None:
        self._audio.set_muted(muted)

    async def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> None:
        mic = self._audio.input.device
        speaker = self._audio.output.device
        if input_device is not None:
            mic = await self._audio.switch_input(input_device)
        if output_device is not None:
            speaker = await self._audio.switch_output(output_device)
        self.description = self._describe(
            mic.name if mic is not None else "?", speaker.name if speaker is not None else "?"
        )

    async def aclose(self) -> None:
        await self._audio.aclose()


# --- LiveKit room -----------------------------------------------------------------------------
class RoomBackend(ModeBackend):
    def __init__(self, details: RoomDetails, room: rtc.Room, hooks: BackendHooks) -> None:
        super().__init__("room", f"ROOM {details.room}@{details.url}")
        self._details = details
        self._room = room
        self._hooks = hooks
        self._io: Any = None

    async def attach(self, session: AgentSession[Any]) -> None:
        from ..io.room import RoomInputOptions, RoomIO

        # the TUI outlives a caller hanging up, and the room is the user's: keep both
        io = RoomIO(
            session,
            self._room,
            input_options=RoomInputOptions(close_on_disconnect=False, delete_room_on_close=False),
        )
        levels: dict[RoomIOEventTypes, NoticeLevel] = {
            "participant_linked": "info",
            "participant_unlinked": "info",
            "disconnected": "warning",
            "reconnecting": "warning",
            "reconnected": "info",
            "error": "warning",
        }
        for name, level in levels.items():
            io.on(name, lambda ev, level=level: self._room_update(ev, level))
        await io.start()
        self._io = io

    def _room_update(self, ev: RoomIOEvent, level: NoticeLevel) -> None:
        logger.log(logging.INFO if level == "info" else logging.WARNING, "%s", ev.message)
        self._hooks.emit(RoomUpdate(event=ev, level=level))

    async def detach(self, session: AgentSession[Any]) -> None:
        io, self._io = self._io, None
        if io is not None:
            await io.aclose()

    async def aclose(self) -> None:
        try:
            await self._room.disconnect()
        except Exception as e:
            logger.debug("disconnecting from the room failed: %s", e)


# --- WAV files --------------------------------------------------------------------------------
class _FileEndInput(AudioInput):
    """A WAV input (followed by silence) that tells when the file itself has been heard."""

    def __init__(self, inner: Any, finished: asyncio.Event) -> None:
        super().__init__(label=inner.label)
        self._inner = inner
        self._finished = finished
        self._samples = round(inner.duration * inner.sample_rate)

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        seen = 0
        async for frame in self._inner:
            yield frame
            seen += frame.samples_per_channel
            if seen >= self._samples and not self._finished.is_set():
                self._finished.set()

    def close(self) -> None:
        self._inner.close()


def _wav_description(request: ModeRequest) -> str:
    parts = []
    if request.input_wav:
        parts.append(Path(request.input_wav).name)
    if request.output_wav:
        parts.append(f"→ {Path(request.output_wav).name}")
    return "WAV " + " ".join(parts) if parts else "WAV"


def _open_wav_files(request: ModeRequest) -> tuple[Any, Any]:
    """(WavAudioInput | None, WavAudioOutput | None): blocking file I/O."""
    from ..io.wav import WavAudioInput, WavAudioOutput

    if not request.input_wav and not request.output_wav:
        raise ValueError("WAV mode needs --input-wav and/or --output-wav")
    inp = out = None
    if request.input_wav:
        path = Path(request.input_wav).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"input WAV not found: {path}")
        inp = WavAudioInput(path, realtime=True, then="silence", sample_rate=PIPELINE_INPUT_RATE)
    if request.output_wav:
        target = Path(request.output_wav).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        out = WavAudioOutput(target, sample_rate=PIPELINE_OUTPUT_RATE, realtime=True)
    return inp, out


async def _wav_backend(request: ModeRequest) -> ModeBackend:
    inp, out = await asyncio.to_thread(_open_wav_files, request)
    finished = asyncio.Event() if inp is not None else None
    backend = ModeBackend(
        "wav",
        _wav_description(request),
        audio_input=_FileEndInput(inp, finished) if inp is not None and finished else None,
        audio_output=out,
    )
    backend.input_finished = finished
    return backend


# --- building ---------------------------------------------------------------------------------
def mode_request(
    settings: Settings,
    mode: Mode,
    room: RoomDetails | None = None,
    *,
    input_device: str | int | None = None,
    output_device: str | int | None = None,
) -> ModeRequest:
    """What ``mode`` needs, from the settings (room details from ``[room]`` unless given)."""
    r = settings.room
    if mode == "room" and room is None and r.url:
        room = RoomDetails(r.url, r.name, r.token, r.api_key, r.api_secret, r.identity)
    elif room is not None and not room.token and not (room.api_key and room.api_secret):
        # details typed in the app: the credentials come from the settings
        room = dataclasses.replace(room, token=r.token, api_key=r.api_key, api_secret=r.api_secret)
    return ModeRequest(
        mode=mode,
        room=room,
        input_device=input_device,
        output_device=output_device,
        input_wav=settings.input_wav,
        output_wav=settings.output_wav,
        echo_cancellation=settings.echo_cancellation,
    )


async def build_backend(request: ModeRequest, hooks: BackendHooks) -> ModeBackend:
    """The backend for ``request``. Raises :class:`NoAudioDeviceError` when local audio is not
    possible, ``RoomConnectError`` when the room cannot be joined, ``ValueError`` /
    ``FileNotFoundError`` for bad WAV or room details."""
    if request.mode == "text":
        return ModeBackend("text", "TEXT")
    if request.mode == "wav":
        return await _wav_backend(request)
    if request.mode == "local":
        mic, speaker = await asyncio.to_thread(
            probe_devices, request.input_device, request.output_device
        )
        backend = LocalBackend(request, hooks, mic, speaker)
        backend.start()
        return backend
    if request.mode == "room":
        details = request.room
        if details is None or not details.url:
            raise ValueError(
                "ROOM mode needs a LiveKit server URL (--url, LIVEKIT_URL or [room] url)"
            )
        from ..io.room import connect

        room = await connect(
            details.url,
            details.token,
            details.api_key,
            details.api_secret,
            room_name=details.room,
            identity=details.identity,
        )
        return RoomBackend(details, room, hooks)
    raise ValueError(f"unknown mode {request.mode!r}")


BackendFactory = Callable[[ModeRequest, BackendHooks], Awaitable[ModeBackend]]


async def initial_backend(
    mode: Mode,
    factory: BackendFactory,
    request: Callable[[Mode], ModeRequest],
    hooks: BackendHooks,
) -> ModeBackend:
    """The I/O of ``mode``; if it cannot start, local audio (when there are devices), else
    text, with a notice saying why. The user can switch from there (F6, ctrl+t, the
    palette). WAV mode has no fallback: its failure is raised."""
    try:
        return await factory(request(mode), hooks)
    except NoAudioDeviceError as e:
        hooks.notice("warning", f"{readable_error(e)}: running in TEXT mode (type to talk)")
        return await factory(request("text"), hooks)
    except Exception as e:
        if mode == "wav":
            raise
        why = f"{mode.upper()} mode: {readable_error(e)}"
    if mode == "room":
        try:
            backend = await factory(request("local"), hooks)
        except Exception as e:
            logger.info("no local audio either: %s", readable_error(e))
        else:
            hooks.notice("error", f"{why}; running in LOCAL mode (F6 tries the room again)")
            return backend
    hooks.notice("error", f"{why}; running in TEXT mode")
    return await factory(request("text"), hooks)


def without_credentials(url: str | None) -> str | None:
    """``url`` without a user name or password (``wss://user:pw@host`` → ``wss://host``)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))
