"""Crash-safe 16-bit PCM WAV files and the time-aligned audio timeline behind them.

A :class:`WavFile` writes samples at any position (``os.pwrite``) and then rewrites its 44-byte
header in one ``pwrite`` with the sizes of what is written, so the file is a valid WAV of
everything up to its last :meth:`WavFile.commit` whatever happens next (a ``kill -9`` between
the data and the header leaves a header that undercounts, which is still valid; see
:mod:`.repair` for headers damaged otherwise).

The :class:`Timeline` keeps the last ``window`` seconds of the stereo recording in memory, so
audio that arrives late (an agent segment committed once its playback position is known) can
still be placed where it was heard; :meth:`Timeline.flush` writes the changed range to
``audio.wav`` (stereo) and both mono files. A :class:`Track` places one source's audio on a
channel, resampling with a streaming soxr resampler when the source rate differs.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

import numpy as np

from ..agents.audio import Resampler

HEADER_SIZE = 44
MAX_DATA_BYTES = 0xFFFFFFFF - 36


def wav_header(*, sample_rate: int, channels: int, data_bytes: int) -> bytes:
    data_bytes = min(data_bytes, MAX_DATA_BYTES)
    block = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block,
        block,
        16,
        b"data",
        data_bytes,
    )


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError("pwrite wrote nothing")
        view = view[n:]
        offset += n


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError("write wrote nothing")
        view = view[n:]


def open_private(path: str, flags: int) -> int:
    """Open (creating, owner-only) ``path``; the mode is enforced even under a lax umask."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


class WavFile:
    def __init__(self, path: str, *, sample_rate: int, channels: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        self._fd: int | None = open_private(path, os.O_RDWR | os.O_TRUNC)
        _pwrite_all(
            self._fd, wav_header(sample_rate=sample_rate, channels=channels, data_bytes=0), 0
        )

    @property
    def block(self) -> int:
        return self.channels * 2

    def write_at(self, frame: int, data: bytes) -> None:
        """Write PCM (interleaved int16) starting at sample frame ``frame``."""
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        _pwrite_all(self._fd, data, HEADER_SIZE + frame * self.block)

    def commit(self, frames: int) -> None:
        """Make the header claim ``frames`` sample frames (all written before this call)."""
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        self.frames = max(self.frames, frames)
        header = wav_header(
            sample_rate=self.sample_rate,
            channels=self.channels,
            data_bytes=self.frames * self.block,
        )
        _pwrite_all(self._fd, header, 0)

    def fsync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class Timeline:
    """Stereo int16 audio indexed by sample position since the recording started: channel 0 the
    user, channel 1 the agent. Only a window of recent audio is kept; the files get the rest."""

    def __init__(
        self, files: Sequence[WavFile], *, sample_rate: int, window_seconds: float = 30.0
    ) -> None:
        self.sample_rate = sample_rate
        self._files = files  # stereo, user mono, agent mono
        self._cap = max(4096, round(window_seconds * sample_rate))
        self._buf = np.zeros((self._cap, 2), dtype=np.int16)
        self._base = 0
        self.end = 0
        """One past the last sample position that exists (audio or silence)."""
        self.flushed = 0
        """What the files' headers count."""
        self._dirty_lo: int | None = None
        self.clipped = 0
        """Samples that arrived for positions already out of the window (dropped)."""

    def _mark(self, lo: int, hi: int) -> None:
        self._dirty_lo = lo if self._dirty_lo is None else min(self._dirty_lo, lo)
        self.end = max(self.end, hi)

    def _make_room(self, hi: int) -> None:
        if hi - self._base <= self._cap:
            return
        self.flush()
        new_base = max(self._base, hi - self._cap // 2)
        keep = self._base + self._cap - new_base
        if keep > 0:
            self._buf[:keep] = self._buf[new_base - self._base :]
            self._buf[keep:] = 0
        else:
            self._buf[:] = 0
        self._base = new_base

    def put(self, channel: int, pos: int, samples: np.ndarray) -> None:
        """Write ``samples`` (int16 mono) on ``channel`` from sample position ``pos``."""
        step = self._cap // 4
        for i in range(0, len(samples), step):
            self._put(channel, pos + i, samples[i : i + step])

    def _put(self, channel: int, pos: int, samples: np.ndarray) -> None:
        n = len(samples)
        if n == 0:
            return
        if pos < self._base:
            cut = min(n, self._base - pos)
            self.clipped += cut
            samples, pos, n = samples[cut:], pos + cut, n - cut
            if n == 0:
                return
        self._make_room(pos + n)
        self._buf[pos - self._base : pos - self._base + n, channel] = samples
        self._mark(pos, pos + n)

    def zero(self, channel: int, pos: int, n: int) -> None:
        lo = max(pos, self._base)
        hi = min(pos + n, self._base + self._cap)
        if hi > lo:
            self._buf[lo - self._base : hi - self._base, channel] = 0
            self._mark(lo, hi)

    def extend(self, end: int) -> None:
        """Silence up to ``end`` (nobody spoke)."""
        if end > self.end:
            self._make_room(end)
            self._mark(self.end, end)

    @property
    def pending(self) -> bool:
        return self._dirty_lo is not None

    def flush(self) -> None:
        """Write what changed since the last flush, then the headers."""
        if self._dirty_lo is None:
            return
        lo = max(self._dirty_lo, self._base)
        hi = self.end
        self._dirty_lo = None
        if hi > lo:
            chunk = self._buf[lo - self._base : hi - self._base]
            stereo, user, agent = self._files
            stereo.write_at(lo, chunk.tobytes())
            user.write_at(lo, np.ascontiguousarray(chunk[:, 0]).tobytes())
            agent.write_at(lo, np.ascontiguousarray(chunk[:, 1]).tobytes())
        for f in self._files:
            f.commit(hi)
        self.flushed = hi


class Track:
    """Places one source's audio on a timeline channel. Consecutive chunks that start where the
    previous one ended (within ``tolerance`` samples) are resampled as one stream and written
    back to back; otherwise the stream restarts at the new position."""

    def __init__(self, timeline: Timeline, channel: int) -> None:
        self._tl = timeline
        self._channel = channel
        self._rate = timeline.sample_rate
        self._stream: Resampler | None = None
        self._in_rate: int | None = None
        self._origin = 0
        self._in_fed = 0
        self._out_done = 0
        self.end = 0
        """One past the last sample this track wrote."""
        self.runs: list[tuple[int, int]] = []
        """(timeline position, samples) of each contiguous run since :meth:`reset_runs`."""

    def expected(self) -> int | None:
        """Where the next contiguous input sample would be placed."""
        if self._in_rate is None:
            return None
        return self._origin + round(self._in_fed * self._rate / self._in_rate)

    def write(
        self,
        pos: int,
        pcm: np.ndarray,
        rate: int,
        *,
        tolerance: int,
        overwrite: bool,
        restart: bool = False,
    ) -> None:
        exp = self.expected()
        if restart or exp is None or self._in_rate != rate or abs(pos - exp) > tolerance:
            self.finish()
            if not overwrite and self.runs:  # never over this track's own audio
                pos = max(pos, self.end)
            self._origin, self._in_fed, self._out_done = pos, 0, 0
            self._in_rate = rate
            self._stream = Resampler(rate, self._rate) if rate != self._rate else None
            self.runs.append((pos, 0))
        self._in_fed += len(pcm)
        out = self._stream.push(pcm) if self._stream is not None else pcm
        self._place(out)

    def _place(self, out: np.ndarray) -> None:
        if len(out) == 0:
            return
        pos = self._origin + self._out_done
        self._tl.put(self._channel, pos, out)
        self._out_done += len(out)
        self.end = max(self.end, pos + len(out))
        if self.runs:
            start, n = self.runs[-1]
            self.runs[-1] = (start, n + len(out))

    def finish(self) -> None:
        """End the current stream (the resampler's held-back tail is written)."""
        if self._stream is not None:
            tail = self._stream.flush()
            self._stream = None
            self._place(tail)
        self._in_rate = None

    def reset_runs(self) -> None:
        self.runs = []

    def truncate_runs(self, keep: int) -> None:
        """Silence everything after the first ``keep`` samples of the runs since
        :meth:`reset_runs` (an interrupted segment that was written past where it stopped)."""
        for start, n in self.runs:
            if keep >= n:
                keep -= n
                continue
            self._tl.zero(self._channel, start + keep, n - keep)
            keep = 0
