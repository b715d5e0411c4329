"""A scripted end-of-turn model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..turn_detector import TurnDetector


@dataclass(frozen=True)
class TurnDetectorCall:
    audio_duration: float
    """Seconds of audio the model was given."""
    loud_duration: float
    """Of which louder than -40 dBFS (10 ms pieces): the voice it heard."""


class FakeTurnDetector(TurnDetector):
    """Answers the scripted ``probabilities`` in order (the last one again when they run out),
    each after ``latency`` seconds; ``errors``: the calls (0-based) that raise instead.
    Every call is recorded in :attr:`calls`."""

    def __init__(
        self,
        probabilities: Sequence[float] = (1.0,),
        *,
        threshold: float = 0.5,
        latency: float = 0.05,
        errors: Sequence[int] = (),
    ) -> None:
        super().__init__(threshold=threshold)
        self._probabilities = list(probabilities) or [1.0]
        self._latency = latency
        self._errors = set(errors)
        self.calls: list[TurnDetectorCall] = []
        self.prewarmed = False

    @property
    def model(self) -> str:
        return "fake-turn-detector"

    def prewarm(self) -> None:
        self.prewarmed = True

    async def predict_end_of_turn(self, audio: np.ndarray, sample_rate: int) -> float:
        n = len(self.calls)
        piece = max(1, sample_rate // 100)
        pieces = audio[: len(audio) // piece * piece].astype(np.float64).reshape(-1, piece)
        loud = np.sqrt(np.mean(pieces**2, axis=1)) > 32768 * 0.01 if len(pieces) else []
        self.calls.append(TurnDetectorCall(len(audio) / sample_rate, float(np.sum(loud)) / 100))
        await asyncio.sleep(self._latency)
        if n in self._errors:
            raise RuntimeError("the scripted end-of-turn model failed")
        return self._probabilities[min(n, len(self._probabilities) - 1)]
