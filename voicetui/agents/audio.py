"""Audio frame helpers. Frames are ``livekit.rtc.AudioFrame`` (int16 PCM) everywhere."""

from __future__ import annotations

import numpy as np
from livekit import rtc


def frame_duration(frame: rtc.AudioFrame) -> float:
    return frame.samples_per_channel / frame.sample_rate


def frames_duration(frames: list[rtc.AudioFrame]) -> float:
    return sum(frame_duration(f) for f in frames)


def as_array(frame: rtc.AudioFrame) -> np.ndarray:
    """The frame's samples as an int16 array of shape (samples, channels) (a view, no copy)."""
    return np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)


def make_frame(samples: np.ndarray, sample_rate: int, num_channels: int = 1) -> rtc.AudioFrame:
    data = np.ascontiguousarray(samples, dtype=np.int16)
    return rtc.AudioFrame(
        data.tobytes(), sample_rate, num_channels, data.size // max(num_channels, 1)
    )


def silence(duration: float, sample_rate: int, num_channels: int = 1) -> rtc.AudioFrame:
    n = round(duration * sample_rate)
    return rtc.AudioFrame(bytes(n * num_channels * 2), sample_rate, num_channels, n)


def rms_dbfs(frame: rtc.AudioFrame) -> float:
    """Root-mean-square level in dBFS (-inf for digital silence)."""
    a = as_array(frame).astype(np.float32) / 32768.0
    if a.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(a * a)))
    return 20.0 * float(np.log10(rms)) if rms > 0 else float("-inf")


_CAPTURED_AT = "voicetui.captured_at"


def mark_captured(frame: rtc.AudioFrame, at: float) -> rtc.AudioFrame:
    """Note on ``frame`` when its last sample was captured (loop clock). An input backend that
    knows (a device callback) marks its frames, so the session and the recorder date the audio
    by when it was heard, not by when a busy loop got round to it."""
    frame.userdata[_CAPTURED_AT] = at
    return frame


def captured_at(frame: rtc.AudioFrame) -> float | None:
    """When ``frame``'s last sample was captured (loop clock), if its backend said."""
    at = frame.userdata.get(_CAPTURED_AT)
    return at if isinstance(at, float) else None


class AudioByteStream:
    """Re-chunks a stream of PCM bytes into frames of exactly ``samples_per_frame`` samples."""

    def __init__(self, sample_rate: int, num_channels: int, samples_per_frame: int | None = None):
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._samples_per_frame = samples_per_frame or sample_rate // 100
        self._bytes_per_frame = self._samples_per_frame * num_channels * 2
        self._buf = bytearray()

    @property
    def pending_samples(self) -> int:
        """Samples (per channel) held back until a whole frame is there."""
        return len(self._buf) // (2 * self._num_channels)

    def push(self, data: bytes | bytearray | memoryview) -> list[rtc.AudioFrame]:
        self._buf.extend(data)
        frames: list[rtc.AudioFrame] = []
        while len(self._buf) >= self._bytes_per_frame:
            chunk = bytes(self._buf[: self._bytes_per_frame])
            del self._buf[: self._bytes_per_frame]
            frames.append(
                rtc.AudioFrame(
                    chunk, self._sample_rate, self._num_channels, self._samples_per_frame
                )
            )
        return frames

    def flush(self) -> list[rtc.AudioFrame]:
        """The remaining bytes as a last (shorter) frame, if any."""
        usable = len(self._buf) - len(self._buf) % (2 * self._num_channels)
        if usable <= 0:
            self._buf.clear()
            return []
        chunk = bytes(self._buf[:usable])
        self._buf.clear()
        n = usable // (2 * self._num_channels)
        return [rtc.AudioFrame(chunk, self._sample_rate, self._num_channels, n)]
