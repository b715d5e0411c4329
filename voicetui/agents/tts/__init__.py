"""Text-to-speech models."""

from __future__ import annotations

from ..exceptions import TTSError
from .fallback_adapter import AvailabilityChangedEvent, FallbackAdapter, FallbackChunkedStream
from .stream_adapter import StreamAdapter
from .tts import (
    TEXT_KEY,
    TTS,
    ChunkedStream,
    SynthesizedAudio,
    SynthesizeStream,
    TTSCapabilities,
)

__all__ = [
    "TEXT_KEY",
    "TTS",
    "AvailabilityChangedEvent",
    "ChunkedStream",
    "FallbackAdapter",
    "FallbackChunkedStream",
    "StreamAdapter",
    "SynthesizeStream",
    "SynthesizedAudio",
    "TTSCapabilities",
    "TTSError",
]
