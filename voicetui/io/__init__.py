"""Audio backends for a session: local devices, WAV files (and LiveKit rooms)."""

from __future__ import annotations

from .local import (
    AudioDeviceError,
    AudioErrorEvent,
    AudioLevelsEvent,
    DeviceInfo,
    DeviceNotFoundError,
    EchoCanceller,
    LocalAudio,
    LocalAudioEvents,
    LocalAudioInput,
    LocalAudioOutput,
    StreamOpenedEvent,
    format_devices,
    list_devices,
)
from .wav import WavAudioInput, WavAudioOutput

__all__ = [
    "AudioDeviceError",
    "AudioErrorEvent",
    "AudioLevelsEvent",
    "DeviceInfo",
    "DeviceNotFoundError",
    "EchoCanceller",
    "LocalAudio",
    "LocalAudioEvents",
    "LocalAudioInput",
    "LocalAudioOutput",
    "StreamOpenedEvent",
    "WavAudioInput",
    "WavAudioOutput",
    "format_devices",
    "list_devices",
]
