"""The end-of-turn model interface: at a pause in the user's voice, is the user done?

Silence alone cannot tell "What time is it?" from "I'd like to book a table for… [thinking]".
An end-of-turn model hears the turn so far and gives the probability that it is complete. The
session asks it at each end of speech the VAD reports (``turn_detection=<a TurnDetector>``):
likely done → the turn ends ``min_endpointing_delay`` after the voice; not → the session waits
up to ``max_endpointing_delay`` for the user to go on. The probability and the threshold are
reported with the turn (:class:`~voicetui.agents.metrics.EOUMetrics`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class TurnDetector(ABC):
    """An end-of-turn model that listens to the audio of the user's turn."""

    def __init__(self, *, threshold: float = 0.5, context: float = 8.0) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
        self._threshold = threshold
        self._context = context

    @property
    def threshold(self) -> float:
        """A probability at or above it means the user is done."""
        return self._threshold

    @property
    def context(self) -> float:
        """Seconds of the turn's latest audio the model looks at."""
        return self._context

    @property
    @abstractmethod
    def model(self) -> str: ...

    @property
    def provider(self) -> str:
        return type(self).__module__.split(".")[-1]

    @property
    def label(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    @abstractmethod
    async def predict_end_of_turn(self, audio: np.ndarray, sample_rate: int) -> float:
        """P(the user is done) for ``audio`` (int16 mono: the turn so far, from a little
        before the voice started to now, at most :attr:`context` seconds). Runs the model off
        the event loop."""

    def prewarm(self) -> None:
        """Load the model now (blocking: call it from a thread), not on the first pause."""

    async def aclose(self) -> None:
        """Release the model."""
