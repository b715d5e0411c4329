"""``Recorder``: records a running ``AgentSession`` to a folder.

Usage (on the session's loop)::

    # the runtime keeps its devices wrapped at all times (inert pass-throughs), so a recording
    # can start and stop mid-session without swapping the session's I/O (a swap restarts the
    # input's iteration: a WAV input would start over)
    session.input.audio = RecordingAudioInput(backend.audio_input)
    session.output.audio = RecordingAudioOutput(backend.audio_output)

    rec = Recorder(root, session=session, metadata={...}, on_error=show_error)
    await rec.start()          # creates <root>/<YYYYmmdd-HHMMSS>-<id>/, subscribes to events
    rec.attach()               # adopts the wrappers (or wraps raw devices: a swap)
    ...
    # on a mode switch (same recording): install wrapped devices, then attach() again
    session.input.audio = RecordingAudioInput(new_input)   # or rec.wrap_input(new_input)
    session.output.audio = RecordingAudioOutput(new_output)
    rec.attach()
    rec.record_event(ModeChanged(...))                   # the runtime's own events
    ...
    await rec.stop()           # finishes the files; the wrappers go back to inert

Nothing here blocks the audio path or raises into the conversation: disk errors stop the
recording and are reported once through ``on_error`` (and the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..agents.utils.aio import cancel_and_wait
from ..agents.voice.agent_session import AgentSession
from ..agents.voice.events import EventTypes
from ..agents.voice.io import AudioInput, AudioOutput
from ..events import SessionEventModel
from .event_log import (
    AudioAttached,
    RecordedBody,
    RecorderNote,
    RecordingGap,
    RecordingStarted,
    RecordingStopped,
    encode,
)
from .secrets import SecretMasker
from .session_info import model_objects, recording_info
from .session_info import versions as package_versions
from .taps import RecordingAudioInput, RecordingAudioOutput, unwrap_input, unwrap_output
from .transcript import TranscriptRenderer
from .writer import (
    AgentAudio,
    AgentSegmentEnd,
    Barrier,
    EventLine,
    RecordingFiles,
    Stop,
    Tick,
    UserAudio,
    WriteQueue,
    Writer,
    create_files,
    write_json_atomic,
)

logger = logging.getLogger("voicetui.recording")

SESSION_EVENTS: tuple[EventTypes, ...] = typing.get_args(EventTypes)


class RecordingError(RuntimeError):
    """The recording could not be started (the message says why, for the user)."""


class Recorder:
    """Records one session to ``<directory_root>/<YYYYmmdd-HHMMSS>-<id>/``.

    ``metadata``: anything JSON-like to keep in ``session.json`` (secret-looking keys masked).
    ``on_error(message)``: called once, on the loop's thread, if writing fails.
    ``secrets``: values never to be written (also see :meth:`add_secret`).
    ``max_queue_seconds``: audio waiting for the disk beyond this is dropped (a gap is noted).
    ``skip_event_types``: :meth:`record_event` ignores these (audio levels by default).
    ``stop_timeout``: how long :meth:`stop` waits for the writer (a hung disk) before giving up.
    """

    def __init__(
        self,
        directory_root: str | os.PathLike[str],
        *,
        session: AgentSession[Any],
        sample_rate: int = 24000,
        metadata: Mapping[str, Any] | None = None,
        on_error: Callable[[str], None] | None = None,
        secrets: Iterable[str] = (),
        flush_interval: float = 0.5,
        fsync_interval: float | None = 1.0,
        tick_interval: float = 0.25,
        commit_lag: float = 0.25,
        max_queue_seconds: float = 10.0,
        max_queued_events: int = 10000,
        skip_event_types: Iterable[str] = ("levels",),
        stop_timeout: float = 10.0,
    ) -> None:
        self._root = Path(directory_root).expanduser()
        self._session = session
        self._rate = sample_rate
        self._metadata = dict(metadata or {})
        self.on_error = on_error
        self._masker = SecretMasker(secrets)
        self._flush_interval = flush_interval
        self._fsync_interval = fsync_interval
        self._tick_interval = tick_interval
        self._commit_lag = commit_lag
        self._queue = WriteQueue(max_audio_seconds=max_queue_seconds, max_events=max_queued_events)
        self._skip = frozenset(skip_event_types)
        self._stop_timeout = stop_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._wall0 = 0.0
        self._dir: Path | None = None
        self._writer: Writer | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._listeners: list[tuple[EventTypes, Callable[[Any], None]]] = []
        self._inputs: dict[int, RecordingAudioInput] = {}
        self._outputs: dict[int, RecordingAudioOutput] = {}
        self._active = False
        self._stopping = False
        self._attached = False
        self._segment_ids = 0
        self._gap_start: float | None = None
        self._gap_pending = 0.0
        self.gap_seconds = 0.0
        """Audio dropped because the disk could not keep up."""
        self.dropped_events = 0
        self.error: str | None = None
        self.stopped_at: float | None = None
        self._unwrapped_warned = False
        self._versions: dict[str, Any] | None = None

    # --- properties -----------------------------------------------------------------------
    @property
    def directory(self) -> Path | None:
        return self._dir

    @property
    def active(self) -> bool:
        return self._active

    @property
    def started_at(self) -> float:
        """Wall-clock start (epoch seconds)."""
        return self._wall0

    @property
    def writer(self) -> Writer | None:
        return self._writer

    @property
    def tapping(self) -> bool:
        return self._active and self.error is None

    # --- TapSink --------------------------------------------------------------------------
    def now(self) -> float:
        loop = self._loop
        return loop.time() if loop is not None else time.monotonic()

    def rel(self, loop_time: float) -> float:
        return loop_time - self._t0

    def next_segment_id(self) -> int:
        self._segment_ids += 1
        return self._segment_ids

    def push_user_audio(
        self, loop_time: float, pcm: np.ndarray, rate: int, *, captured: bool = False
    ) -> None:
        t = self.rel(loop_time)
        self._push_audio(UserAudio(t, pcm, rate, captured), len(pcm) / rate, t)

    def push_agent_audio(
        self, segment: int, start: float, pcm: np.ndarray, rate: int, restart: bool
    ) -> None:
        self._push_audio(AgentAudio(segment, start, pcm, rate, restart), len(pcm) / rate, start)

    def end_agent_segment(self, segment: int, keep: int | None, rate: int) -> None:
        self._queue.put_audio(AgentSegmentEnd(segment, keep, rate), 0.0)

    def note(self, note: RecorderNote, *, loop_time: float | None = None) -> None:
        t = self.rel(loop_time if loop_time is not None else self.now())
        self._put_event(EventLine(t, time.time(), note.type, encode(note)))

    def _push_audio(self, item: UserAudio | AgentAudio, seconds: float, t: float) -> None:
        if not self.tapping:
            return
        if self._queue.put_audio(item, seconds):
            if self._gap_pending > 0:
                self._emit_gap()
            return
        if self._gap_pending == 0:
            self._gap_start = t
        self._gap_pending += seconds
        self.gap_seconds += seconds

    def _emit_gap(self) -> None:
        start = self._gap_start if self._gap_start is not None else 0.0
        gap = RecordingGap(start=round(start, 3), duration=round(self._gap_pending, 3))
        logger.warning("recording: %.2f s of audio dropped (the disk is too slow)", gap.duration)
        self._gap_pending, self._gap_start = 0.0, None
        line = EventLine(self.rel(self.now()), time.time(), gap.type, encode(gap))
        self._put_event(line, True)

    def _put_event(self, line: EventLine, force: bool = False) -> None:
        if self.error is not None:
            return
        if not self._queue.put_event(line, force=force):
            self.dropped_events += 1

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> Path:
        """Create the folder and its files and start recording; returns the folder. Raises
        :class:`RecordingError` if the folder or files cannot be created."""
        if self._loop is not None:
            raise RuntimeError("a Recorder records once; make a new one")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._t0 = loop.time()
        self._wall0 = time.time()
        self._masker.harvest(self._metadata)
        for obj in model_objects(self._session):
            self._masker.scan_object(obj)
        info = self._info()
        try:
            files = await loop.run_in_executor(None, self._create, info)
        except OSError as e:
            what = e.strerror or str(e)
            msg = f"cannot create a recording in {self._root}: {what}"
            logger.error("%s", msg)
            raise RecordingError(msg) from e
        self._dir = Path(files.directory)
        # the recording's t = 0: now that it exists (creating it may have taken a while)
        self._t0 = loop.time()
        self._wall0 = time.time()
        writer = Writer(
            files,
            self._queue,
            sample_rate=self._rate,
            masker=self._masker,
            renderer=TranscriptRenderer(),
            on_error=self._writer_failed_threadsafe,
            flush_interval=self._flush_interval,
            fsync_interval=self._fsync_interval,
        )
        self._writer = writer
        self._active = True
        try:
            writer.write_transcript_header(
                TranscriptRenderer().header(info | {"id": self._dir.name})
            )
        except OSError as e:
            writer._fail(e)
        writer.start()
        for name in SESSION_EVENTS:
            cb = self._on_session_event
            self._session.on(name, cb)
            self._listeners.append((name, cb))
        self._tick_task = asyncio.create_task(self._ticks(), name="Recorder.ticks")
        self.note(RecordingStarted(directory=str(self._dir), sample_rate=self._rate))
        logger.info("recording to %s", self._dir)
        return self._dir

    def _create(self, info: dict[str, Any]) -> RecordingFiles:
        """(On an executor thread.)"""
        os.makedirs(self._root, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._wall0))
        for _ in range(20):
            path = self._root / f"{stamp}-{secrets.token_hex(3)}"
            try:
                os.mkdir(path, 0o700)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"cannot find a free folder name in {self._root}")
        os.chmod(path, 0o700)
        files = create_files(str(path), self._rate)
        try:
            info["id"] = path.name
            info["versions"] = self._versions = package_versions()  # slow-ish: not on the loop
            self._masker.harvest(info)
            write_json_atomic(str(path / "session.json"), self._masker.mask(info))
        except OSError:
            files.close()
            raise
        return files

    def _info(self) -> dict[str, Any]:
        return recording_info(
            id=self._dir.name if self._dir is not None else None,
            started_wall=self._wall0,
            sample_rate=self._rate,
            versions=self._versions,
            metadata=self._metadata,
            session=self._session,
        )

    async def stop(self) -> None:
        """Stop recording and finish and close every file. Safe to call twice, or after a
        failure. The wrappers stay in the session as inert pass-throughs (swapping the input
        back would restart its iteration); a later recording's :meth:`attach` adopts them, and
        :meth:`detach` removes them."""
        if not self._active or self._stopping:
            return
        self._stopping = True
        now = self.now()
        if self.tapping:
            for out in self._outputs.values():
                if out.tap is not None:
                    out.tap.stop(now)
        for name, cb in self._listeners:
            with contextlib.suppress(Exception):
                self._session.off(name, cb)
        self._listeners.clear()
        self._attached = False
        await cancel_and_wait(self._tick_task)
        self._tick_task = None
        if self._gap_pending > 0:
            self._emit_gap()
        t = self.rel(now)
        self.stopped_at = time.time()
        info = self._info()
        info.update(
            stopped_at=datetime.fromtimestamp(self.stopped_at, UTC).isoformat(),
            stopped_wall=self.stopped_at,
            duration=round(t, 3),
            gaps_seconds=round(self.gap_seconds, 3),
            dropped_events=self.dropped_events,
            error=self.error,
        )
        stopped = RecordingStopped(duration=round(t, 3))
        self._put_event(EventLine(t, self.stopped_at, stopped.type, encode(stopped)), True)
        self._active = False
        self._queue.put_control(Stop(t, info))
        writer = self._writer
        if writer is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, writer.join, self._stop_timeout)
            if writer.alive:  # a disk that hangs: give up on it, the conversation goes on
                self._writer_failed(
                    f"recording: the disk did not finish writing {self._dir} within "
                    f"{self._stop_timeout:g} s; the last seconds may be missing"
                )
        self._inputs.clear()
        self._outputs.clear()
        logger.info("recording stopped: %s", self._dir)

    async def drain(self, *, flush: bool = True, within: float = 30.0) -> bool:
        """Wait until the writer has handled everything queued so far; with ``flush`` the
        audio is written to disk now too (else at its next periodic flush). False if the
        writer did not get there ``within`` seconds (a stalled disk)."""
        if not self._active or self._writer is None:
            return True
        done = threading.Event()
        self._queue.put_control(Barrier(done, flush))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, done.wait, within)

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            if not self.tapping:
                continue
            now = self.now()
            for out in list(self._outputs.values()):
                if out.tap is not None:
                    out.tap.progress(now)
            self._queue.put_control(Tick(self.rel(now)))
            self._check_wrapped()

    def _check_wrapped(self) -> None:
        if not self._attached or self._unwrapped_warned:
            return
        inp, out = self._session.input.audio, self._session.output.audio
        if (inp is not None and not self._owns(inp)) or (out is not None and not self._owns(out)):
            self._unwrapped_warned = True
            logger.warning(
                "recording: the session's audio was swapped without Recorder.wrap_input/"
                "wrap_output; the new device's audio is not recorded"
            )

    def _owns(self, audio: object) -> bool:
        return isinstance(audio, RecordingAudioInput | RecordingAudioOutput) and audio.sink is self

    # --- errors ---------------------------------------------------------------------------
    def _writer_failed_threadsafe(self, message: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            self._writer_failed(message)
            return
        try:
            loop.call_soon_threadsafe(self._writer_failed, message)
        except RuntimeError:  # the loop closed meanwhile
            self._writer_failed(message)

    def _writer_failed(self, message: str) -> None:
        if self.error is not None:
            return
        self.error = message
        logger.error("%s", message)
        cb = self.on_error
        if cb is not None:
            try:
                cb(message)
            except Exception:
                logger.exception("recording on_error callback failed")

    # --- events ---------------------------------------------------------------------------
    def _on_session_event(self, ev: SessionEventModel) -> None:
        self.record_event(ev)

    def record_event(self, ev: RecordedBody) -> None:
        """Record an event (a session event, the runtime's own...). Thread-safe; never
        raises."""
        if not self.tapping or ev.type in self._skip:
            return
        try:
            self._put_event(EventLine(self.rel(self.now()), time.time(), ev.type, encode(ev)))
        except Exception:
            logger.exception("recording: cannot record %r", ev)

    def add_secret(self, value: str) -> None:
        """Never write ``value``: every occurrence in any text is replaced with ``***``
        (applies to everything written from now on)."""
        self._masker.add(value)

    # --- audio I/O ------------------------------------------------------------------------
    def wrap_input(self, audio: AudioInput | None) -> AudioInput | None:
        """``audio`` wrapped so that this recording hears it (idempotent). After ``stop()``,
        returns the unwrapped input."""
        if audio is None:
            return None
        if not self._active or self._stopping:
            return unwrap_input(audio)
        if isinstance(audio, RecordingAudioInput) and audio.sink is self:
            return audio
        inner = unwrap_input(audio)
        assert inner is not None
        wrapper = self._inputs.get(id(inner))
        if wrapper is None:
            wrapper = RecordingAudioInput(inner, self)
            self._inputs[id(inner)] = wrapper
        return wrapper

    def wrap_output(self, audio: AudioOutput | None) -> AudioOutput | None:
        """``audio`` wrapped so that this recording hears what it plays (idempotent)."""
        if audio is None:
            return None
        if not self._active or self._stopping:
            return unwrap_output(audio)
        if isinstance(audio, RecordingAudioOutput) and audio.sink is self:
            return audio
        inner = unwrap_output(audio)
        assert inner is not None
        wrapper = self._outputs.get(id(inner))
        if wrapper is None:
            wrapper = RecordingAudioOutput(inner, self, commit_lag=self._commit_lag)
            self._outputs[id(inner)] = wrapper
        return wrapper

    def attach(self) -> None:
        """Record the session's current audio input and output: wrappers without a live
        recording are adopted (no swap); raw devices are wrapped in place (a swap). Call it
        again after a mode switch (or install ``wrap_input``/``wrap_output`` results)."""
        if not self._active:
            raise RuntimeError("start the recording first")
        self._attached = True
        s = self._session
        inp, out = s.input.audio, s.output.audio
        # a previous recording's (now inert) wrappers are adopted: no swap, so the input's
        # iteration is not restarted
        if isinstance(inp, RecordingAudioInput) and (inp.sink is None or not inp.sink.tapping):
            inp.rebind(self)
            self._inputs[id(inp.inner)] = inp
        elif inp is not None:
            s.input.audio = self.wrap_input(inp)
        if isinstance(out, RecordingAudioOutput) and (out.sink is None or not out.sink.tapping):
            out.rebind(self)
            self._outputs[id(out.inner)] = out
        elif out is not None:
            s.output.audio = self.wrap_output(out)
        self.note(
            AudioAttached(
                input=inp.label if inp is not None else None,
                output=out.label if out is not None else None,
            )
        )

    def detach(self) -> None:
        """Put the unwrapped input/output back in the session (if they are still ours)."""
        self._attached = False
        s = self._session
        if self._owns(s.input.audio):
            s.input.audio = unwrap_input(s.input.audio)
        if self._owns(s.output.audio):
            s.output.audio = unwrap_output(s.output.audio)
