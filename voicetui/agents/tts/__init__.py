"""Text-to-speech models."""

from __future__ import annotations

from ..exceptions import TTSError
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
    "ChunkedStream",
    "StreamAdapter",
    "SynthesizeStream",
    "SynthesizedAudio",
    "TTSCapabilities",
    "TTSError",
]
