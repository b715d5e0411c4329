"""``LocalAudioInput``: the microphone as the session's audio input (PortAudio via sounddevice).

The device is read in 30 ms blocks and the PortAudio callback only copies each and hands it to
the loop (a callback, a PulseAudio round and a loop wake-up per 30 ms instead of per 10 ms: at
most 20 ms more latency; while nothing is said or played, four at a time: see
:mod:`.quiet_batch`); on the loop each 10 ms piece goes through echo cancellation (when
paired with a speaker, see :class:`LocalAudio`), then mute, the level meter and the resampler,
and comes out as frames of ``frame_duration`` at ``sample_rate``. Device faults never reach the
session: the iterator keeps waiting while the stream is reopened, and the faults are ``error``
events on :attr:`events`.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np
from livekit import rtc

from ...agents.audio import AudioByteStream, Resampler, mark_captured, to_float32, to_int16
from ...agents.voice.io import AudioInput
from ._stream import DEFAULT_BACKOFF, StreamSupervisor, SupervisedDevice
from .devices import DeviceInfo, DeviceSpec, ThreadNamer
from .echo import EchoCanceller
from .events import AudioLevelsEvent, LocalAudioEvents
from .levels import LevelMeter
from .quiet_batch import QuietBatcher

_BLOCK_MS = 30  # audio per PortAudio callback and per loop wake-up (a multiple of 10 ms)
# a block: its audio, whether it follows an overflow, when it was captured, the stream's rate
_Block = tuple[bytes, bool, float, int]


_CAPTURE_GAP = 0.25  # s: a block this much later than the audio before it follows lost audio
_DRIFT = 0.002  # the most a device clock runs fast against ours that is followed (0.2 %)


class _CaptureClock:
    """When each block's last sample was captured, on the loop clock, read in the device
    callback. Back-to-back blocks get back-to-back times: a callback the OS ran late, or a
    burst of them, does not move its audio. A block delivered before its time says the device
    clock runs fast: the times follow, a little per block (never so fast that a burst makes
    audio overlap). A block much later than the audio before it (or after an overflow: audio
    was lost) starts a new run at its delivery."""

    def __init__(self) -> None:
        self._end: float | None = None

    def block_end(self, delivered_at: float, duration: float, *, lost: bool) -> float:
        if self._end is None or lost or delivered_at - (self._end + duration) > _CAPTURE_GAP:
            end = delivered_at
        else:
            end = self._end + duration
            if delivered_at < end:
                end = max(delivered_at, end - duration * _DRIFT)
        self._end = end
        return end


class LocalAudioInput(SupervisedDevice, AudioInput):
    """Mic frames for the session.

    ``device``: None (system default), an index, or a name substring (see
    :func:`resolve_device`). ``device_sample_rate``: the rate the device is opened at (None = its
    default rate). ``latency``: PortAudio's suggested latency (0.02 s or ``"high"``; ``"low"``
    underruns on PulseAudio). ``max_buffered``: seconds of frames kept while nobody reads (the
    oldest are dropped). The stream opens on :meth:`start` or when iteration begins."""

    def __init__(
        self,
        *,
        device: DeviceSpec = None,
        sample_rate: int = 24000,
        device_sample_rate: int | None = 48000,
        frame_duration: float = 0.01,
        latency: float | str = 0.02,
        echo_canceller: EchoCanceller | None = None,
        events: LocalAudioEvents | None = None,
        max_buffered: float = 2.0,
        stall_timeout: float = 2.0,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        label: str = "LocalAudioInput",
    ) -> None:
        super().__init__(label=label)
        self._sample_rate = sample_rate
        self._device_sample_rate = device_sample_rate
        self._frame_samples = max(1, round(sample_rate * frame_duration))
        self._latency = latency
        self._echo = echo_canceller
        self.events: LocalAudioEvents = events if events is not None else LocalAudioEvents()
        self._queue: deque[rtc.AudioFrame] = deque(
            maxlen=max(1, round(max_buffered / frame_duration))
        )
        self._ready = asyncio.Event()
        self._muted = False
        self._closed = False
        self.xruns = 0
        """Overflows reported by PortAudio (audio lost because the loop was too slow)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rate = 0
        self._resampler: Resampler | None = None
        self._chunker = AudioByteStream(sample_rate, 1, self._frame_samples)
        self._meter: LevelMeter | None = None
        self._supervisor = StreamSupervisor(
            direction="input",
            device=device,
            events=self.events,
            make_stream=self._make_stream,
            on_opened=self._on_opened,
            on_closed=lambda lost: None,
            stall_timeout=stall_timeout,
            backoff=backoff,
        )

    # --- public ---------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool) -> None:
        """Mute: the session keeps getting frames, all silent (its VAD sees silence)."""
        self._muted = muted

    async def aclose(self) -> None:
        self._closed = True
        self._ready.set()
        await self._supervisor.aclose()

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    def on_attached(self) -> None:
        self._queue.clear()  # what was said before the session listened is stale

    # --- internals ------------------------------------------------------------------------
    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        if not self._closed:
            self.start()
        while not self._closed:
            if self._queue:
                yield self._queue.popleft()
                continue
            self._ready.clear()
            await self._ready.wait()

    def _make_stream(self, sd: Any, info: DeviceInfo, finished: Callable[[], None]) -> Any:
        rate = self._device_sample_rate or int(info.default_samplerate)
        # a new stream, a new run of audio: its own capture clock and batching
        batcher: QuietBatcher[_Block] = QuietBatcher(_BLOCK_MS / 1000)
        callback = functools.partial(
            self._callback, _CaptureClock(), batcher, ThreadNamer("voicetui-mic"), rate
        )

        def stopped() -> None:  # (PortAudio thread) the quiet blocks still waiting go too
            self._hand_over(batcher.flush())
            finished()

        return sd.RawInputStream(
            device=info.index,
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=rate * _BLOCK_MS // 1000,
            latency=self._latency,
            callback=callback,
            finished_callback=stopped,
        )

    def _callback(
        self,
        clock: _CaptureClock,
        batcher: QuietBatcher[_Block],
        name_thread: ThreadNamer,
        rate: int,
        indata: Any,
        frames: int,
        time: Any,
        status: Any,
    ) -> None:
        """PortAudio thread: hand the block to the loop (with the quiet ones before it, see
        :mod:`.quiet_batch`), nothing else."""
        loop = self._loop
        if loop is None:
            return
        name_thread()
        # (the loop's clock, read here: however long the loop takes to get to the block)
        t = loop.time()
        captured = clock.block_end(t, frames / rate, lost=bool(status))
        data = bytes(indata)
        echo = self._echo
        may_wait = not status and not (echo is not None and echo.plays_at(t))
        blocks = batcher.add(
            (data, bool(status), captured, rate), np.frombuffer(data, np.int16), may_wait=may_wait
        )
        self._hand_over(blocks)

    def _hand_over(self, blocks: list[_Block]) -> None:
        loop = self._loop
        if loop is None or not blocks:
            return
        try:
            loop.call_soon_threadsafe(self._on_blocks, blocks)
        except RuntimeError:  # the loop is closed
            pass

    def _on_opened(self, stream: Any, info: DeviceInfo) -> None:
        self._rate = int(stream.samplerate)
        self._resampler = (
            Resampler(self._rate, self._sample_rate, dtype="float32")
            if self._rate != self._sample_rate
            else None
        )
        self._meter = LevelMeter(self._rate, self._on_levels)
        if self._echo is not None:
            self._echo.set_input_latency(float(stream.latency))

    def _on_blocks(self, blocks: list[_Block]) -> None:
        for data, xrun, captured, rate in blocks:
            if rate == self._rate:  # (else the last blocks of a stream since replaced)
                self._on_block(data, xrun, captured)

    def _on_block(self, data: bytes, xrun: bool, captured: float) -> None:
        """The loop: echo-cancel each 10 ms piece, then meter, resample and cut frames, each
        marked with when its last sample was captured."""
        self._supervisor.heartbeat()
        rate = self._rate
        if xrun:
            self.xruns += 1
            if self._echo is not None:
                self._echo.on_glitch()
        if not rate or self._closed or not data:
            return
        samples = np.frombuffer(data, dtype=np.int16)
        if self._echo is not None and not self._echo.skips_silent_block(samples):
            step = rate // 100  # samples in 10 ms: the canceller's unit
            parts = [
                np.frombuffer(
                    self._echo.process_capture(
                        rtc.AudioFrame(samples[i : i + step].tobytes(), rate, 1, step),
                        captured - (samples.size - i - step) / rate,
                    ).data,
                    np.int16,
                )
                for i in range(0, samples.size - samples.size % step, step)
            ]
            if samples.size % step:  # (a device that ignored the block size) passed as it is
                parts.append(samples[samples.size - samples.size % step :])
            samples = np.concatenate(parts)
        if self._muted:
            samples = np.zeros_like(samples)
        if self._meter is not None:
            self._meter.push(samples)
        if self._resampler is not None:  # (float: digital silence stays exactly silent)
            samples = to_int16(self._resampler.push(to_float32(samples)))
        frames = self._chunker.push(samples.tobytes())
        end = captured - self._chunker.pending_samples / self._sample_rate
        for f in reversed(frames):
            mark_captured(f, end)
            end -= f.samples_per_channel / self._sample_rate
        self._queue.extend(frames)
        self._ready.set()

    def _on_levels(self, rms: float, peak: float) -> None:
        echo = self._echo
        self.events.emit(
            "levels",
            AudioLevelsEvent(
                "input",
                rms,
                peak,
                muted=self._muted,
                echo_cancelling=echo is not None and echo.cancels_echo,
                erle_db=echo.erle_db if echo is not None else None,
            ),
        )
