"""Voice activity detection: ``VAD.stream()`` turns audio frames into speech start/end events."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from livekit import rtc

from ._stream import DuplexStream
from .utils.aio import EventEmitter

logger = logging.getLogger("voicetui.agents.vad")


class VADEventType(str, Enum):
    START_OF_SPEECH = "start_of_speech"
    INFERENCE_DONE = "inference_done"
    END_OF_SPEECH = "end_of_speech"


@dataclass
class VADEvent:
    type: VADEventType
    samples_index: int
    """Index of the last sample covered by this event."""
    timestamp: float
    """Loop time at which the event was produced."""
    speech_duration: float
    silence_duration: float
    frames: list[rtc.AudioFrame] = field(default_factory=list)
    """END_OF_SPEECH: the whole utterance (with prefix padding); START_OF_SPEECH: what led to it
    (up to the end of the window it was decided on); INFERENCE_DONE while speaking: the audio of
    its window, as LiveKit's Silero gives it (a listener can follow the utterance from the
    events alone; the windowed VADs leave it empty between utterances)."""
    probability: float = 0.0
    inference_duration: float = 0.0
    speaking: bool = False


@dataclass(frozen=True)
class VADCapabilities:
    update_interval: float
    """Seconds of audio between two INFERENCE_DONE events."""
    sample_rate: int | None = None
    """The rate ``VADEvent.samples_index`` counts at (None: the rate of the frames pushed).
    With it the session dates an event by the audio it is about, not by when it was handled
    (inference on a busy CPU may report an end of speech late)."""


class VAD(ABC, EventEmitter[Literal["metrics_collected"]]):
    def __init__(self, *, capabilities: VADCapabilities) -> None:
        super().__init__()
        self._capabilities = capabilities
        self._label = f"{type(self).__module__}.{type(self).__name__}"

    @property
    def capabilities(self) -> VADCapabilities:
        return self._capabilities

    @property
    def label(self) -> str:
        return self._label

    @abstractmethod
    def stream(self) -> VADStream: ...

    async def aclose(self) -> None:
        """Release the model's resources."""


class VADStream(DuplexStream[rtc.AudioFrame, VADEvent]):
    def __init__(self, vad: VAD) -> None:
        self._vad = vad
        super().__init__()

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)


VADListener = Callable[[VADEvent], None]


class SharedVADEvents:
    """The events of a VAD stream someone runs (a session's listening pipeline), offered to
    whoever would otherwise run a second stream of the same VAD on the same audio (the STT
    adapter of a non-streaming STT, see ``stt.StreamAdapter``). The owner of the stream calls
    :meth:`publish` with every event it gets, in order; listeners are called right then, on
    the loop, synchronously: no task, no copy. A listener that raises is logged and dropped (the
    owner's stream goes on)."""

    def __init__(self) -> None:
        self._listeners: list[VADListener] = []

    @property
    def listened(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: VADListener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, ev: VADEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(ev)
            except Exception:
                logger.exception("a listener of shared VAD events failed; dropping it")
                if listener in self._listeners:
                    self._listeners.remove(listener)
