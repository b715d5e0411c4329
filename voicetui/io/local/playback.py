"""``LocalAudioOutput``: the speaker as the session's audio output (PortAudio via sounddevice).

Frames are resampled to the device rate and written into a single-producer/single-consumer ring
(the loop writes, the PortAudio callback reads): the callback never blocks, never touches an
asyncio object, and reports every block it handed to the device back to the loop with
``call_soon_threadsafe`` (idle silence in batches of 50 ms). Segment accounting is done on the loop from those reports, in device
samples: a segment "played" what the device was actually given of it, so ``playback_finished``
carries the exact played duration (the full captured duration when it played to the end).

Standby: after ``standby_after`` seconds with nothing to play, the stream is stopped (not
closed: the device stays ours) and restarted by the next frame to play, which is written into
the ring meanwhile: a restart delays the first audio by the few ms PortAudio takes to start
(about 2-5 ms on PulseAudio) and loses none of it. While stopped, the callback, PulseAudio's
thread and the loop's 20 Hz wake-ups for idle silence cost nothing.

Faults: when the device disappears, the segments in flight finish as interrupted with what was
played, audio is discarded (segments finish at flush with 0 s played) until the stream is back,
and the fault is an ``error`` event on :attr:`events`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc

from ...agents.audio import Resampler, frame_duration, frame_mono
from ...agents.utils.aio import now
from ...agents.voice.io import AudioOutput
from ._stream import DEFAULT_BACKOFF, StreamSupervisor, SupervisedDevice
from .devices import DeviceInfo, DeviceSpec, ThreadNamer
from .echo import EchoCanceller
from .events import AudioLevelsEvent, LocalAudioEvents
from .levels import LevelMeter

_CLEAR_ACK_TIMEOUT = 0.5  # a clear not seen by the callback by then is settled without it
_IDLE_AFTER_BLOCKS = 50  # blocks of nothing to play before silent blocks are batched (0.5 s)
_IDLE_BATCH = 5  # silent blocks per report once idle (50 ms)


def _device_silence(time: Any, expected: list[float], duration: float, xrun: bool) -> float:
    """PortAudio thread: how long the device played silence nobody gave it (an underrun)
    before this block of ``duration`` s: at an xrun, how much later the block's DAC time is
    than the block before it said this one would play (``expected[0]``, updated here). The
    echo canceller needs it: its far-end audio must keep the device's timing, or every echo
    after an underrun comes later than it expects. (Only at an xrun: on a busy machine the
    DAC times jitter by ±10 ms from block to block, and over seconds they drift from the
    sample count.)"""
    at = float(getattr(time, "outputBufferDacTime", 0.0) or 0.0)
    previous = expected[0]
    expected[0] = at + duration if at else 0.0
    if not xrun or not at or not previous:
        return 0.0
    return max(0.0, at - previous)


class _CallbackState:
    """The callback's own bookkeeping (PortAudio thread), reset by the loop while the stream
    is stopped for standby (no callback runs then)."""

    def __init__(self) -> None:
        self.idle = 0  # consecutive blocks with nothing to play
        self.held: list[bytes] = []  # idle blocks not reported yet
        self.name_thread = ThreadNamer("voicetui-play")
        # the next block's expected DAC time; the device's unplanned silence not reported yet
        self.dac = [0.0, 0.0]


class _Ring:
    """int16 ring buffer. Positions only grow: ``write_pos`` is written by the loop only,
    ``read_pos``/``seen_gen`` by the PortAudio callback only; ``clear`` is one tuple
    (generation, position) so the callback reads it atomically."""

    def __init__(self, capacity: int) -> None:
        self.buf = np.zeros(capacity, dtype=np.int16)
        self.capacity = capacity
        self.write_pos = 0
        self.read_pos = 0
        self.clear: tuple[int, int] = (0, 0)
        self.seen_gen = 0
        self.paused = False

    def write(self, samples: np.ndarray) -> None:
        start = self.write_pos % self.capacity
        first = min(samples.size, self.capacity - start)
        self.buf[start : start + first] = samples[:first]
        self.buf[: samples.size - first] = samples[first:]
        self.write_pos += samples.size  # publish after the data is in place

    def read_into(self, out: np.ndarray) -> None:
        start = self.read_pos % self.capacity
        first = min(out.size, self.capacity - start)
        out[:first] = self.buf[start : start + first]
        out[first:] = self.buf[: out.size - first]


@dataclass
class _Segment:
    start: int  # ring position of its first sample
    end: int | None = None  # ring position after its last sample, once flushed
    captured: float = 0.0  # seconds of audio given to capture_frame
    started: bool = False
    clear_gen: int | None = None  # cleared, waiting for the callback to acknowledge
    lost: bool = False  # the device went away: the rest of its audio is dropped
    done: bool = False


class LocalAudioOutput(SupervisedDevice, AudioOutput):
    """Agent audio to a speaker.

    ``sample_rate``: the rate the session sends (frames of other rates are accepted too).
    ``device_sample_rate``: the rate the device is opened at (None = its default rate).
    ``buffer_duration``: seconds queued ahead of the device before ``capture_frame`` waits.
    ``open_timeout``: how long the first frames wait for the device to open.
    ``standby_after``: seconds with nothing to play after which the stream is stopped until
    the next audio (None: it always runs)."""

    def __init__(
        self,
        *,
        device: DeviceSpec = None,
        sample_rate: int = 24000,
        device_sample_rate: int | None = 48000,
        latency: float | str = 0.02,
        buffer_duration: float = 0.3,
        echo_canceller: EchoCanceller | None = None,
        events: LocalAudioEvents | None = None,
        open_timeout: float = 3.0,
        stall_timeout: float = 2.0,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        standby_after: float | None = 3.0,
        label: str = "LocalAudioOutput",
    ) -> None:
        super().__init__(label=label, sample_rate=sample_rate, can_pause=True)
        self._device_sample_rate = device_sample_rate
        self._latency = latency
        self._buffer_duration = buffer_duration
        self._echo = echo_canceller
        self._open_timeout = open_timeout
        self.events: LocalAudioEvents = events if events is not None else LocalAudioEvents()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rate = 0
        self._ring: _Ring | None = None
        self._acked = 0  # ring position the loop knows was handed to the device
        self._handed: tuple[float, int] | None = None  # see _on_played
        self._pending: list[_Segment] = []
        self._current: _Segment | None = None
        self._resampler: Resampler | None = None
        self._space = asyncio.Event()
        self._lost = False
        self._closed = False
        self._paused = False
        self._standby_after = standby_after
        self._idle_since: float | None = None  # nothing to play since (loop time)
        self._cb_state = _CallbackState()
        self.standbys = 0
        """Times the stream was stopped for standby."""
        self.xruns = 0
        """Underflows reported by PortAudio (the device ran out of audio)."""
        self._meter: LevelMeter | None = None
        self._supervisor = StreamSupervisor(
            direction="output",
            device=device,
            events=self.events,
            make_stream=self._make_stream,
            on_opened=self._on_opened,
            on_closed=self._on_closed,
            on_standby=self._on_standby,
            stall_timeout=stall_timeout,
            backoff=backoff,
        )

    # --- public ---------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def in_standby(self) -> bool:
        """The stream is stopped because there was nothing to play (see ``standby_after``)."""
        return self._supervisor.in_standby

    async def aclose(self) -> None:
        self.clear_buffer()
        self._closed = True
        self._space.set()
        await self._supervisor.aclose()
        for seg in list(self._pending):
            self._finish(seg, self._played(seg, self._acked), interrupted=True)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._idle_since = None
        if not self._closed:
            self.start()
            self._supervisor.set_standby(False)  # (written into the ring while it restarts)
        seg = self._current
        if seg is None:
            seg = _Segment(start=self._ring.write_pos if self._ring is not None else 0)
            self._current = seg
            self._pending.append(seg)
        seg.captured += frame_duration(frame)
        if self._ring is None and not self._lost and not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._open_timeout):
                    await self._supervisor.wait_open()
        if self._ring is None or self._lost or self._closed:
            seg.lost = True
        if seg.lost or seg.clear_gen is not None or seg.done:
            return
        samples = self._resample(frame, last=False)
        while samples.size and (ring := self._ring) is not None:
            limit = round(self._buffer_duration * self._rate)
            free = limit - (ring.write_pos - self._acked)
            if free <= 0:
                self._space.clear()
                await self._space.wait()
                if self._lost or self._closed or seg.clear_gen is not None or seg.done:
                    return
                continue
            ring.write(samples[:free])
            samples = samples[free:]

    def flush(self) -> None:
        super().flush()
        seg, self._current = self._current, None
        if seg is None:
            return
        ring = self._ring
        if ring is not None and not seg.lost and seg.clear_gen is None and not seg.done:
            tail = self._resample(None, last=True)
            room = ring.capacity - (ring.write_pos - self._acked)
            ring.write(tail[: max(0, room)])
            seg.end = ring.write_pos
        self._resampler = None
        if seg.lost:
            self._finish(seg, self._played(seg, self._acked), interrupted=True)
        else:
            self._update_segments()

    def clear_buffer(self) -> None:
        self._capturing = False
        self._current = None
        self._resampler = None
        pending = [s for s in self._pending if not s.done and s.clear_gen is None]
        if not pending:
            return
        ring = self._ring
        if ring is None or self._lost or self._supervisor.stream is None:
            for seg in pending:
                self._finish(seg, self._played(seg, self._acked), interrupted=True)
            return
        gen = ring.clear[0] + 1
        ring.clear = (gen, ring.write_pos)
        for seg in pending:
            seg.clear_gen = gen
        self._space.set()
        asyncio.get_running_loop().call_later(_CLEAR_ACK_TIMEOUT, self._settle_clear, gen)

    def pause(self) -> None:
        self._paused = True
        if self._ring is not None:
            self._ring.paused = True

    def resume(self) -> None:
        self._paused = False
        if self._ring is not None and self._ring.paused:
            self._ring.paused = False
            if self._echo is not None and any(s.started and not s.done for s in self._pending):
                self._echo.start_warmup()

    # --- the PortAudio side ---------------------------------------------------------------
    def _make_stream(self, sd: Any, info: DeviceInfo, finished: Callable[[], None]) -> Any:
        rate = self._device_sample_rate or int(info.default_samplerate)
        # (a worker thread, while no callback runs: the loop does not write a lost ring)
        ring = self._ring
        if ring is None or rate != self._rate:
            # positions carry on, so segments stay comparable; audio queued at another rate
            # is skipped
            old = ring
            ring = _Ring(round((self._buffer_duration + 0.25) * rate))
            if old is not None:
                ring.write_pos = ring.read_pos = old.write_pos
                ring.clear = old.clear
                ring.seen_gen = old.clear[0]
            ring.paused = self._paused
            self._ring = ring
        elif self._lost:  # reopening after a fault: skip what was queued for the lost device
            ring.read_pos = ring.write_pos
            ring.seen_gen = ring.clear[0]
        self._rate = rate
        return sd.RawOutputStream(
            device=info.index,
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=rate // 100,
            latency=self._latency,
            callback=self._make_callback(ring),
            finished_callback=finished,
        )

    def _make_callback(self, ring: _Ring) -> Callable[[Any, int, Any, Any], None]:
        loop = self._loop
        on_played = self._on_played
        rate = self._rate  # (this stream's)
        state = self._cb_state = _CallbackState()  # (each stream starts afresh)

        def callback(outdata: Any, frames: int, time: Any, status: Any) -> None:
            """PortAudio thread: copy from the ring, report what went out. Never blocks.
            After ``_IDLE_AFTER_BLOCKS`` blocks of nothing to play, silent blocks are reported
            ``_IDLE_BATCH`` at a time (the loop wakes at 20 Hz instead of 100 Hz); anything
            else (audio, a clear, an xrun) is reported at once, with the held blocks."""
            state.name_thread()
            out = np.frombuffer(outdata, dtype=np.int16)
            gen, clear_to = ring.clear
            cleared_at = -1
            if gen != ring.seen_gen:
                cleared_at = ring.read_pos
                ring.read_pos = max(ring.read_pos, clear_to)
                ring.seen_gen = gen
            n = 0 if ring.paused else min(out.size, ring.write_pos - ring.read_pos)
            if n:
                ring.read_into(out[:n])
                ring.read_pos += n
            out[n:] = 0
            if loop is not None:
                quiet = not n and cleared_at < 0 and not status
                state.idle = state.idle + 1 if quiet else 0
                dac = state.dac
                dac[1] += _device_silence(time, dac, out.size / rate, bool(status))
                held = state.held
                held.append(out.tobytes())
                if quiet and state.idle > _IDLE_AFTER_BLOCKS and len(held) < _IDLE_BATCH:
                    return
                block = held[0] if len(held) == 1 else b"".join(held)
                held.clear()
                try:
                    # (the loop's clock, read here: when this block went to the device)
                    loop.call_soon_threadsafe(
                        on_played,
                        block,
                        ring.read_pos,
                        gen,
                        cleared_at,
                        bool(status),
                        (loop.time(), ring.read_pos - n),
                        dac[1],
                    )
                    dac[1] = 0.0
                except RuntimeError:  # the loop is closed
                    pass

        return callback

    # --- the loop side --------------------------------------------------------------------
    def _on_opened(self, stream: Any, info: DeviceInfo) -> None:
        self._lost = False
        self._meter = LevelMeter(self._rate, self._on_levels)
        if self._echo is not None:
            self._echo.set_output_latency(float(stream.latency))
        self._space.set()

    def _on_standby(self, standby: bool) -> None:
        if standby:
            self.standbys += 1
            # idle blocks held back were silence; dropped, so that the first report after the
            # restart is the audio played then (the echo canceller's reverse stream stays in
            # step with the mic)
            self._cb_state.idle = 0
            self._cb_state.held.clear()
            self._cb_state.dac[:] = [0.0, 0.0]  # (a restart is not an underrun)

    def _on_closed(self, lost: bool) -> None:
        if not lost:
            return  # switching devices: the ring carries over to the new stream
        self._lost = True
        for seg in self._pending:
            if not seg.done:
                seg.lost = True
                self._finish(seg, self._played(seg, self._acked), interrupted=True)
        self._space.set()

    def _on_played(
        self,
        block: bytes,
        read_pos: int,
        gen: int,
        cleared_at: int,
        xrun: bool,
        handed: tuple[float, int],
        underrun: float,
    ) -> None:
        """``handed``: when the last block went to the device (loop clock) and the ring
        position of its first sample of audio; ``underrun``: seconds of silence the device
        played before ``block`` that it was not given (see :func:`_device_silence`)."""
        self._supervisor.heartbeat()
        self._handed = handed
        if xrun:
            self.xruns += 1
            if self._echo is not None:
                self._echo.on_glitch()
        samples = np.frombuffer(block, dtype=np.int16)
        if self._meter is not None:
            self._meter.push(samples)
        if self._echo is not None:
            if underrun:
                self._echo.process_reverse(
                    np.zeros(round(underrun * self._rate), np.int16), self._rate
                )
            # (the block's first sample: its last 10 ms went to the device at handed[0])
            first_at = handed[0] - max(0.0, samples.size / self._rate - 0.01)
            self._echo.process_reverse(samples, self._rate, first_at)
        if cleared_at >= 0:
            self._acked = max(self._acked, cleared_at)
            for seg in self._pending:
                if seg.clear_gen is not None and seg.clear_gen <= gen and not seg.done:
                    self._finish(seg, self._played(seg, cleared_at), interrupted=True)
        self._acked = max(self._acked, read_pos)
        self._update_segments()
        self._space.set()
        if self._standby_after is not None:
            self._check_idle()

    def _check_idle(self) -> None:
        """Put the stream in standby once nothing was left to play for ``standby_after``."""
        ring = self._ring
        busy = self._pending or self._current is not None or self._paused
        if busy or (ring is not None and ring.write_pos > self._acked):
            self._idle_since = None
            return
        t = now()
        if self._idle_since is None:
            self._idle_since = t
        elif self._standby_after is not None and t - self._idle_since >= self._standby_after:
            self._supervisor.set_standby(True)

    def _settle_clear(self, gen: int) -> None:
        for seg in self._pending:
            if seg.clear_gen is not None and seg.clear_gen <= gen and not seg.done:
                self._finish(seg, self._played(seg, self._acked), interrupted=True)

    def _update_segments(self) -> None:
        for seg in list(self._pending):
            if seg.done or seg.clear_gen is not None:
                continue
            if not seg.started and self._acked > seg.start:
                seg.started = True
                # dated by when its first sample went to the device, not by when the loop
                # heard of it (the recording places the agent's audio by the same time)
                at = now()
                if self._handed is not None and self._rate:
                    handed_at, handed_from = self._handed
                    at = min(at, handed_at + max(0, seg.start - handed_from) / self._rate)
                self.on_playback_started(created_at=at)
                if self._echo is not None:
                    self._echo.start_warmup()
            if seg.end is not None and self._acked >= seg.end:
                self._finish(seg, seg.captured, interrupted=False)

    def _played(self, seg: _Segment, position: int) -> float:
        end = seg.end if seg.end is not None else position
        samples = max(0, min(position, end) - seg.start)
        return min(seg.captured, samples / self._rate) if self._rate else 0.0

    def _finish(self, seg: _Segment, played: float, *, interrupted: bool) -> None:
        if seg.done:
            return
        seg.done = True
        self._pending.remove(seg)
        if seg is self._current:  # the rest of its frames are dropped
            seg.lost = True
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    def _resample(self, frame: rtc.AudioFrame | None, *, last: bool) -> np.ndarray:
        if frame is None:
            if self._resampler is None:
                return np.zeros(0, dtype=np.int16)
            return self._resampler.flush()
        mono = frame_mono(frame)
        if frame.sample_rate == self._rate:
            return mono
        if self._resampler is None or self._resampler.input_rate != frame.sample_rate:
            self._resampler = Resampler(frame.sample_rate, self._rate)
        return self._resampler.push(mono, last=last)

    def _on_levels(self, rms: float, peak: float) -> None:
        self.events.emit("levels", AudioLevelsEvent("output", rms, peak))
