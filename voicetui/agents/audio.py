"""Audio helpers, the one place for them: frames, sample conversion, mono downmix, resampling
(soxr), re-chunking, and reading audio files (soundfile). Frames are ``livekit.rtc.AudioFrame``
(int16 PCM) everywhere; sample arrays are int16 (or float32 in [-1, 1) where a model wants it),
shaped (samples,) when mono and (samples, channels) otherwise.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Literal

import numpy as np
import soundfile
import soxr
from livekit import rtc

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]
"""soxr's quality presets (HQ: what every stream here uses unless latency matters more)."""


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


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(samples, channels) or (samples,) → (samples,), the channels' mean, same dtype. A new
    array (never a view of the input: frames' buffers are reused)."""
    if samples.ndim == 1:
        mono: np.ndarray = samples.copy()
    elif samples.shape[1] == 1:
        mono = samples[:, 0].copy()
    else:
        mono = samples.mean(axis=1).astype(samples.dtype)
    return mono


def frame_mono(frame: rtc.AudioFrame) -> np.ndarray:
    """A frame's samples as a new mono int16 array."""
    return to_mono(as_array(frame))


def to_float32(samples: np.ndarray) -> np.ndarray:
    """int16 samples as float32 in [-1, 1)."""
    out: np.ndarray = samples.astype(np.float32) / 32768.0
    return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1) as int16 (clipped)."""
    out: np.ndarray = (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)
    return out


def remix(frame: rtc.AudioFrame, num_channels: int) -> rtc.AudioFrame:
    """``frame`` with ``num_channels`` channels: downmixed to mono, or mono copied to each."""
    if frame.num_channels == num_channels:
        return frame
    mono = frame_mono(frame)
    if num_channels == 1:
        return make_frame(mono, frame.sample_rate)
    return make_frame(np.repeat(mono, num_channels), frame.sample_rate, num_channels)


def resample(
    samples: np.ndarray, input_rate: int, output_rate: int, *, quality: Quality = "HQ"
) -> np.ndarray:
    """A whole signal (int16 or float32, mono or (samples, channels)) at ``output_rate``,
    same dtype."""
    if input_rate == output_rate:
        return samples
    out: np.ndarray = soxr.resample(samples, input_rate, output_rate, quality=quality)
    return out.astype(samples.dtype, copy=False)


class Resampler:
    """Streaming rate conversion of one signal, chunk after chunk (soxr keeps the filter's
    state between chunks: no clicks at chunk boundaries). ``dtype`` is what goes in and out."""

    def __init__(
        self,
        input_rate: int,
        output_rate: int,
        *,
        num_channels: int = 1,
        dtype: Literal["int16", "float32"] = "int16",
        quality: Quality = "HQ",
    ) -> None:
        self.input_rate = input_rate
        self.output_rate = output_rate
        self.num_channels = num_channels
        self._dtype = np.dtype(dtype)
        self._stream = soxr.ResampleStream(
            input_rate, output_rate, num_channels, dtype=dtype, quality=quality
        )

    def push(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Converted samples available so far (soxr holds a few back until ``last``)."""
        out: np.ndarray = self._stream.resample_chunk(
            np.asarray(samples, dtype=self._dtype), last=last
        )
        return out

    def flush(self) -> np.ndarray:
        """What soxr held back: the end of the signal."""
        shape = (0,) if self.num_channels == 1 else (0, self.num_channels)
        return self.push(np.zeros(shape, self._dtype), last=True)


class FrameResampler:
    """Streaming rate conversion of frames (int16, ``num_channels``), as frames."""

    def __init__(
        self, input_rate: int, output_rate: int, *, num_channels: int = 1, quality: Quality = "HQ"
    ) -> None:
        self._resampler = Resampler(
            input_rate, output_rate, num_channels=num_channels, quality=quality
        )

    def push(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        samples = as_array(frame)
        return self._frames(
            self._resampler.push(samples if samples.shape[1] > 1 else samples[:, 0])
        )

    def flush(self) -> list[rtc.AudioFrame]:
        return self._frames(self._resampler.flush())

    def _frames(self, samples: np.ndarray) -> list[rtc.AudioFrame]:
        if not len(samples):
            return []
        r = self._resampler
        return [make_frame(samples, r.output_rate, r.num_channels)]


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
    def sample_rate(self) -> int:
        return self._sample_rate

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


# --- files ----------------------------------------------------------------------------------
def check_audio(path: str | os.PathLike[str]) -> None:
    """Raise ValueError naming the file unless it is audio libsndfile reads (WAV of any sample
    format, FLAC, Ogg, …) with samples in it; OSError as ``open`` raises it."""
    _info(path)


def read_audio(
    path: str | os.PathLike[str], sample_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """An audio file (see :func:`check_audio`) as mono int16 samples and their rate, resampled
    to ``sample_rate`` if given."""
    _info(path)
    samples, rate = soundfile.read(os.fspath(path), dtype="int16", always_2d=True)
    pcm = to_mono(samples)
    if sample_rate is not None and sample_rate != rate:
        pcm, rate = resample(pcm, rate, sample_rate), sample_rate
    return pcm, int(rate)


def _info(path: str | os.PathLike[str]) -> soundfile._SoundFileInfo:
    with open(path, "rb") as f:  # (OSError for a missing or unreadable file, as open says)
        head = f.read(12)
    try:
        info = soundfile.info(os.fspath(path))
    except soundfile.LibsndfileError as e:
        if len(head) < 12:
            raise ValueError(f"{path}: empty or cut short, not an audio file") from None
        raise ValueError(f"{path}: not an audio file ({e.error_string})") from None
    if info.frames <= 0:
        raise ValueError(f"{path}: the file holds no audio")
    return info


def read_pcm16(file: BinaryIO, *, frames: int, channels: int, sample_rate: int) -> np.ndarray:
    """Up to ``frames`` sample frames of headerless 16-bit little-endian PCM from ``file``'s
    position, shaped (frames, channels): the audio of a WAV whose header cannot be trusted."""
    data = file.read(max(0, frames) * channels * 2)  # (libsndfile would seek to 0: read first)
    whole = len(data) - len(data) % (channels * 2)
    if whole == 0:
        return np.zeros((0, channels), np.int16)
    samples: np.ndarray = soundfile.read(
        io.BytesIO(data[:whole]),
        dtype="int16",
        always_2d=True,
        format="RAW",
        subtype="PCM_16",
        endian="LITTLE",
        channels=channels,
        samplerate=sample_rate,
    )[0]
    return samples
