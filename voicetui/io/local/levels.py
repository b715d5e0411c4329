"""Audio level metering: RMS and peak dBFS over fixed windows (50 ms = 20 updates a second)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

SILENCE_DBFS = -120.0
"""Reported for digital silence (instead of -inf, so meters and JSON stay simple)."""


def _dbfs(value: float) -> float:
    return max(SILENCE_DBFS, 20.0 * math.log10(value)) if value > 0 else SILENCE_DBFS


class LevelMeter:
    """Feed int16 samples; ``on_levels(rms_dbfs, peak_dbfs)`` is called once per ``window``
    seconds of audio."""

    def __init__(
        self, sample_rate: int, on_levels: Callable[[float, float], None], *, window: float = 0.05
    ) -> None:
        self._window = max(1, round(sample_rate * window))
        self._on_levels = on_levels
        self._count = 0
        self._sum_sq = 0.0
        self._peak = 0

    def push(self, samples: np.ndarray) -> None:
        pos = 0
        while pos < samples.size:
            take = min(self._window - self._count, samples.size - pos)
            chunk = samples[pos : pos + take].astype(np.float64)
            pos += take
            if take:
                self._sum_sq += float(np.dot(chunk, chunk))
                self._peak = max(self._peak, int(np.max(np.abs(chunk))))
            self._count += take
            if self._count >= self._window:
                rms = math.sqrt(self._sum_sq / self._count) / 32768.0
                self._on_levels(_dbfs(rms), _dbfs(self._peak / 32768.0))
                self._count, self._sum_sq, self._peak = 0, 0.0, 0
