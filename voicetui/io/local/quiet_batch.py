"""Quiet microphone blocks handed to the loop in batches: one loop wake-up per 120 ms instead
of per 30 ms while nothing is said and nothing is played.

The decision is made in the PortAudio callback, per block, from the block's peak. A block
waits for the next ones only when all of these hold:

- it is quiet: its peak is at most 6 dB above the quietest block of the last 2 s (the room's
  noise floor, whatever the microphone), and below -40 dBFS whatever the floor;
- the input has been quiet for 2 s (:data:`QUIET_HOLD`): the voice before it has long been
  seen to end, so an end of speech is never dated late by waiting audio;
- the caller says nothing is played (the echo canceller pairs speaker and mic audio by time).

Anything else (a louder block, an overflow, the speaker starting) sends the waiting blocks and
itself at once, so the start of speech reaches the VAD as soon as before. Every block keeps
its own capture time: batching moves when audio reaches the loop, not when it was captured.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import numpy as np

QUIET_HOLD = 2.0
"""Seconds of quiet input before quiet blocks are batched."""
BATCH = 4
"""Quiet blocks handed over together (at most ``BATCH - 1`` blocks, 90 ms, later)."""
_FLOOR_WINDOW = 2.0  # s of block peaks the noise floor is the lowest of
_ABOVE_FLOOR = 2  # x the floor's peak (6 dB) is still quiet
_MIN_QUIET_PEAK = 32  # int16: a block this quiet (-60 dBFS) is quiet whatever the floor
_MAX_QUIET_PEAK = 328  # int16: a block louder than -40 dBFS is never quiet

T = TypeVar("T")


class QuietBatcher(Generic[T]):
    """Per stream, in its callback thread: :meth:`add` each block, get back the blocks to hand
    to the loop now (empty: keep waiting)."""

    def __init__(self, block_seconds: float) -> None:
        self._block_seconds = block_seconds
        self._peaks: deque[int] = deque(maxlen=max(1, round(_FLOOR_WINDOW / block_seconds)))
        self._quiet_for = 0.0
        self._waiting: list[T] = []

    def add(self, block: T, samples: np.ndarray, *, may_wait: bool) -> list[T]:
        """``samples``: the block's int16 audio; ``may_wait``: False when the block must go now
        (an overflow, audio playing)."""
        peak = max(int(samples.max()), -int(samples.min())) if samples.size else 0
        floor = min(self._peaks) if self._peaks else peak
        self._peaks.append(peak)
        quiet = peak <= min(_MAX_QUIET_PEAK, max(_MIN_QUIET_PEAK, _ABOVE_FLOOR * floor))
        self._quiet_for = self._quiet_for + self._block_seconds if quiet else 0.0
        self._waiting.append(block)
        if may_wait and self._quiet_for >= QUIET_HOLD and len(self._waiting) < BATCH:
            return []
        return self.flush()

    def flush(self) -> list[T]:
        """The blocks waiting (the stream is stopping)."""
        out, self._waiting = self._waiting, []
        return out
