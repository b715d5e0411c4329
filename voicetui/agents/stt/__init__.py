"""Speech-to-text models."""

from __future__ import annotations

from ..exceptions import STTError
from .fallback_adapter import AvailabilityChangedEvent, FallbackAdapter, FallbackSpeechStream
from .stream_adapter import StreamAdapter
from .stt import (
    STT,
    AudioBuffer,
    RecognitionUsage,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
)

__all__ = [
    "STT",
    "AudioBuffer",
    "AvailabilityChangedEvent",
    "FallbackAdapter",
    "FallbackSpeechStream",
    "RecognitionUsage",
    "STTCapabilities",
    "STTError",
    "SpeechData",
    "SpeechEvent",
    "SpeechEventType",
    "SpeechStream",
    "StreamAdapter",
]
