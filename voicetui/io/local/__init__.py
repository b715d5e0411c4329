"""Local audio: the machine's microphone and speaker through PortAudio (sounddevice)."""

from __future__ import annotations

from .capture import LocalAudioInput
from .devices import (
    AudioDeviceError,
    DeviceInfo,
    DeviceNotFoundError,
    DeviceSpec,
    format_devices,
    list_devices,
    refresh_devices,
    resolve_device,
)
from .echo import EchoCanceller
from .events import (
    AudioErrorEvent,
    AudioLevelsEvent,
    LocalAudioEvents,
    LocalAudioEventTypes,
    StreamOpenedEvent,
)
from .pair import LocalAudio
from .playback import LocalAudioOutput

__all__ = [
    "AudioDeviceError",
    "AudioErrorEvent",
    "AudioLevelsEvent",
    "DeviceInfo",
    "DeviceNotFoundError",
    "DeviceSpec",
    "EchoCanceller",
    "LocalAudio",
    "LocalAudioEventTypes",
    "LocalAudioEvents",
    "LocalAudioInput",
    "LocalAudioOutput",
    "StreamOpenedEvent",
    "format_devices",
    "list_devices",
    "refresh_devices",
    "resolve_device",
]
