"""The recording's writer thread: the only code that touches the disk once a recording runs.

The session's thread hands it items through a :class:`WriteQueue` and never waits: audio is
bounded by duration (dropped when full: the recorder notes a gap), events by count, control
items (ticks, stop) always fit (consecutive ticks are merged).

Durability policy: each event line and transcript entry is written with ``os.write`` to an
``O_APPEND`` descriptor as soon as it is dequeued (it survives the process being killed); WAV data
is written every ``flush_interval`` seconds of recording (and at least that often in wall time)
followed by the headers; everything is ``fsync``-ed at most every ``fsync_interval`` wall seconds
(what an OS crash may lose) and at the end.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..untrusted import clean_text, map_strings
from .secrets import SecretMasker
from .transcript import TranscriptRenderer
from .wav_writer import Timeline, Track, WavFile, open_private, write_all

logger = logging.getLogger("voicetui.recording")

USER, AGENT = 0, 1
_QUIET = 330  # peak below -40 dBFS


@dataclass(slots=True)
class UserAudio:
    t: float
    """Seconds since the start at which the frame's last sample was captured (when the backend
    said so: ``captured``) or arrived."""
    pcm: np.ndarray
    rate: int
    captured: bool = False


@dataclass(slots=True)
class AgentAudio:
    segment: int
    start: float
    """Seconds since the start at which the first sample was heard."""
    pcm: np.ndarray
    rate: int
    restart: bool


@dataclass(slots=True)
class AgentSegmentEnd:
    segment: int
    keep: int | None
    """Only the first ``keep`` samples (at ``rate``) of the segment were played."""
    rate: int


@dataclass(slots=True)
class EventLine:
    t: float
    wall: float
    type: str
    event: dict[str, Any]


@dataclass(slots=True)
class Tick:
    t: float


@dataclass(slots=True)
class Barrier:
    done: threading.Event
    flush: bool


@dataclass(slots=True)
class Stop:
    t: float
    session_info: dict[str, Any]


Item = UserAudio | AgentAudio | AgentSegmentEnd | EventLine | Tick | Barrier | Stop


class WriteQueue:
    def __init__(self, *, max_audio_seconds: float, max_events: int) -> None:
        self._cond = threading.Condition()
        self._items: deque[tuple[Item, float]] = deque()
        self._audio = 0.0
        self._events = 0
        self._max_audio = max_audio_seconds
        self._max_events = max_events
        self.peak_audio = 0.0

    def put_audio(self, item: Item, seconds: float) -> bool:
        with self._cond:
            if self._audio + seconds > self._max_audio:
                return False
            self._audio += seconds
            self.peak_audio = max(self.peak_audio, self._audio)
            self._items.append((item, seconds))
            self._cond.notify()
        return True

    def put_event(self, item: EventLine, *, force: bool = False) -> bool:
        with self._cond:
            if self._events >= self._max_events and not force:
                return False
            self._events += 1
            self._items.append((item, 0.0))
            self._cond.notify()
        return True

    def put_control(self, item: Tick | Barrier | Stop) -> None:
        with self._cond:
            if isinstance(item, Tick) and self._items and isinstance(self._items[-1][0], Tick):
                self._items[-1] = (item, 0.0)
            else:
                self._items.append((item, 0.0))
            self._cond.notify()

    def get(self, timeout: float) -> Item | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item, seconds = self._items.popleft()
            self._audio -= seconds
            if isinstance(item, EventLine):
                self._events -= 1
            return item


@dataclass
class WriterStats:
    items: int = 0
    audio_items: int = 0
    events: int = 0
    bytes_written: int = 0
    busy_seconds: float = 0.0
    """Wall time spent handling items (thread CPU + I/O)."""
    cpu_seconds: float = 0.0
    flushes: int = 0
    clipped_samples: int = 0


@dataclass
class RecordingFiles:
    directory: str
    stereo: WavFile
    user: WavFile
    agent: WavFile
    events_fd: int
    transcript_fd: int
    extra_fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        for f in (self.stereo, self.user, self.agent):
            try:
                f.close()
            except OSError:
                pass
        for fd in (self.events_fd, self.transcript_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def create_files(directory: str, sample_rate: int) -> RecordingFiles:
    """Open every file of a new recording (owner-only)."""
    p = os.path.join
    opened: list[WavFile] = []
    fds: list[int] = []
    try:
        for name, ch in (("audio.wav", 2), ("user.wav", 1), ("agent.wav", 1)):
            opened.append(WavFile(p(directory, name), sample_rate=sample_rate, channels=ch))
        for name in ("events.jsonl", "transcript.md"):
            fds.append(open_private(p(directory, name), os.O_WRONLY | os.O_APPEND | os.O_TRUNC))
    except OSError:
        for f in opened:
            f.close()
        for fd in fds:
            os.close(fd)
        raise
    return RecordingFiles(directory, opened[0], opened[1], opened[2], fds[0], fds[1])


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON to a temporary file then rename it over ``path``: readers (and a crash)
    see the old file or the new one, never a torn one."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        write_all(fd, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Writer:
    """Runs the thread. ``on_error`` is called once, from the thread, on the first OSError;
    from then on items are discarded."""

    def __init__(
        self,
        files: RecordingFiles,
        queue: WriteQueue,
        *,
        sample_rate: int,
        masker: SecretMasker,
        renderer: TranscriptRenderer,
        on_error: Callable[[str], None],
        flush_interval: float = 0.5,
        fsync_interval: float | None = 1.0,
        user_tolerance: float = 0.08,
        user_max_drift: float = 1.0,
    ) -> None:
        self._files = files
        self._queue = queue
        self._rate = sample_rate
        self._masker = masker
        self._renderer = renderer
        self._on_error = on_error
        self._flush_interval = flush_interval
        self._fsync_interval = fsync_interval
        self._user_tol = round(user_tolerance * sample_rate)
        self._user_max_drift = round(user_max_drift * sample_rate)
        self._timeline = Timeline([files.stereo, files.user, files.agent], sample_rate=sample_rate)
        self._user = Track(self._timeline, USER)
        self._agent = Track(self._timeline, AGENT)
        self._agent_segment: int | None = None
        self._last_flush_pos = 0
        self._last_flush_wall = time.monotonic()
        self._last_fsync_wall = time.monotonic()
        self._unsynced = False
        self.error: str | None = None
        self.stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name="voicetui-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        cpu0 = time.thread_time()
        try:
            while True:
                item = self._queue.get(timeout=self._flush_interval)
                if isinstance(item, Barrier) and (self.error is not None or not item.flush):
                    item.done.set()
                    continue
                if self.error is not None:
                    if isinstance(item, Stop):
                        break
                    continue
                t0 = time.perf_counter()
                try:
                    if item is None:
                        self._maybe_flush(wall_only=True)
                    elif isinstance(item, Stop):
                        self._stop(item)
                        break
                    else:
                        self._handle(item)
                        self._maybe_flush(wall_only=False)
                except OSError as e:
                    self._fail(e)
                except Exception as e:  # a bug must not kill the thread silently
                    logger.exception("recording writer failed")
                    self._fail(e)
                finally:
                    self.stats.busy_seconds += time.perf_counter() - t0
        finally:
            self.stats.cpu_seconds = time.thread_time() - cpu0
            self.stats.clipped_samples = self._timeline.clipped
            self._files.close()

    def _fail(self, e: BaseException) -> None:
        if isinstance(e, OSError):
            what = e.strerror or str(e)
            where = f" ({e.filename})" if e.filename else ""
            msg = f"recording stopped: cannot write to {self._files.directory}: {what}{where}"
        else:
            msg = f"recording stopped: {type(e).__name__}: {e}"
        self.error = msg
        try:
            self._on_error(msg)
        except Exception:
            logger.exception("recording error callback failed")

    def _handle(self, item: Item) -> None:
        self.stats.items += 1
        if isinstance(item, UserAudio):
            self.stats.audio_items += 1
            n_out = round(len(item.pcm) * self._rate / item.rate)
            pos = round(item.t * self._rate) - n_out
            # Frames are written back to back while they arrive on time (within the tolerance:
            # jitter). A source that falls behind the clock (or pauses) gets a silence inserted
            # to catch up, but only in a quiet frame, never in the middle of speech (up to
            # user_max_drift).
            if item.captured:
                # the backend's capture times are already back to back where the audio is,
                # and they are what the session dates speech by: placed exactly there
                self._user.write(pos, item.pcm, item.rate, tolerance=1, overwrite=True)
                return
            quiet = len(item.pcm) == 0 or int(np.abs(item.pcm).max()) < _QUIET
            tol = self._user_tol if quiet else self._user_max_drift
            self._user.write(pos, item.pcm, item.rate, tolerance=tol, overwrite=False)
        elif isinstance(item, AgentAudio):
            self.stats.audio_items += 1
            restart = item.restart
            if item.segment != self._agent_segment:
                self._agent.finish()
                self._agent.reset_runs()
                self._agent_segment = item.segment
                restart = True
            pos = round(item.start * self._rate)
            self._agent.write(
                pos, item.pcm, item.rate, tolerance=2, overwrite=True, restart=restart
            )
        elif isinstance(item, AgentSegmentEnd):
            if item.segment == self._agent_segment:
                self._agent.finish()
                if item.keep is not None:
                    self._agent.truncate_runs(round(item.keep * self._rate / item.rate))
                self._agent_segment = None
        elif isinstance(item, EventLine):
            self._write_event(item)
        elif isinstance(item, Tick):
            self._timeline.extend(round(item.t * self._rate))
        elif isinstance(item, Barrier):
            try:
                self._flush()
            finally:
                item.done.set()

    def _write_event(self, item: EventLine) -> None:
        self.stats.events += 1
        self._masker.harvest(item.event)
        event = self._masker.mask(map_strings(item.event, clean_text))
        line = json.dumps(
            {"t": round(item.t, 6), "wall": round(item.wall, 6), "type": item.type, "event": event},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        data = (line + "\n").encode()
        write_all(self._files.events_fd, data)
        self.stats.bytes_written += len(data)
        md = self._renderer.render(item.t, item.type, event)
        if md:
            data = self._masker.mask_text(md).encode()
            write_all(self._files.transcript_fd, data)
            self.stats.bytes_written += len(data)
        self._unsynced = True

    def write_transcript_header(self, text: str) -> None:
        """Called before the thread starts."""
        write_all(self._files.transcript_fd, self._masker.mask_text(clean_text(text)).encode())

    def _maybe_flush(self, *, wall_only: bool) -> None:
        tl = self._timeline
        now = time.monotonic()
        due_wall = now - self._last_flush_wall >= self._flush_interval
        due_pos = tl.end - self._last_flush_pos >= round(self._flush_interval * self._rate)
        if tl.pending and (due_wall or (due_pos and not wall_only)):
            self._flush()
        if (
            self._fsync_interval is not None
            and self._unsynced
            and now - self._last_fsync_wall >= self._fsync_interval
        ):
            self._fsync()

    def _flush(self) -> None:
        tl = self._timeline
        before = tl.flushed
        tl.flush()
        self.stats.flushes += 1
        self.stats.bytes_written += max(0, tl.flushed - before) * 8  # stereo + 2 mono, int16
        self._last_flush_pos = tl.end
        self._last_flush_wall = time.monotonic()
        self._unsynced = True

    def _fsync(self) -> None:
        f = self._files
        for w in (f.stereo, f.user, f.agent):
            w.fsync()
        os.fsync(f.events_fd)
        os.fsync(f.transcript_fd)
        self._unsynced = False
        self._last_fsync_wall = time.monotonic()

    def _stop(self, item: Stop) -> None:
        self._user.finish()
        self._agent.finish()
        self._timeline.extend(round(item.t * self._rate))
        self._flush()
        self._fsync()
        info = dict(item.session_info)
        info["writer"] = {
            "flushes": self.stats.flushes,
            "bytes_written": self.stats.bytes_written,
            "clipped_samples": self._timeline.clipped,
        }
        self._masker.harvest(info)
        write_json_atomic(
            os.path.join(self._files.directory, "session.json"), self._masker.mask(info)
        )
