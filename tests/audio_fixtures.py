"""Speech for tests, synthesized with espeak-ng (22050 Hz mono) and cut into livekit frames.

    from tests.audio_fixtures import espeak_frames, have_espeak
    pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
    frames = espeak_frames("hello world", sample_rate=16000, frame_ms=20)

espeak-ng's own leading/trailing silence is trimmed, so the speech starts exactly
``silence_before`` seconds into the frames and ends ``silence_after`` seconds before their end.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from livekit import rtc

from voicetui.agents.audio import read_audio, resample, to_float32

__all__ = [
    "espeak_frames",
    "espeak_pcm",
    "espeak_wav",
    "have_espeak",
    "speech_duration",
    "split_frames",
]

_ESPEAK_RATE = 22050
_TRIM_LEVEL = 64  # |sample| below this (about -54 dBFS) at the edges counts as silence


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_wav(text: str, path: str | Path) -> Path:
    """Speak ``text`` (en-us, 150 words/min) into the WAV file ``path`` (22050 Hz mono int16)."""
    out = Path(path)
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@functools.lru_cache(maxsize=64)
def _speech(text: str, sample_rate: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = espeak_wav(text, Path(tmp) / "speech.wav")
        pcm, rate = read_audio(path)
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= _TRIM_LEVEL)
    pcm = pcm[loud[0] : loud[-1] + 1] if loud.size else pcm[:0]
    if rate != sample_rate:  # (scaled by 32767, as the fixtures always were: tests compare)
        audio = resample(to_float32(pcm), rate, sample_rate)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    pcm.flags.writeable = False
    return pcm


def espeak_pcm(
    text: str, *, sample_rate: int = 16000, silence_before: float = 0.5, silence_after: float = 1.0
) -> np.ndarray:
    """The speech as one int16 mono array, with digital silence around it."""
    speech = _speech(text, sample_rate)
    before = np.zeros(round(silence_before * sample_rate), dtype=np.int16)
    after = np.zeros(round(silence_after * sample_rate), dtype=np.int16)
    return np.concatenate([before, speech, after])


def split_frames(
    pcm: np.ndarray, *, sample_rate: int = 16000, frame_ms: int = 20
) -> list[rtc.AudioFrame]:
    """Cut int16 mono samples into frames of ``frame_ms`` (the last one zero-padded)."""
    n = sample_rate * frame_ms // 1000
    if n <= 0:
        raise ValueError("frame_ms too small for sample_rate")
    padded = np.concatenate([pcm, np.zeros(-len(pcm) % n, dtype=np.int16)]).astype(np.int16)
    return [
        rtc.AudioFrame(padded[i : i + n].tobytes(), sample_rate, 1, n)
        for i in range(0, len(padded), n)
    ]


def espeak_frames(
    text: str,
    *,
    sample_rate: int = 16000,
    frame_ms: int = 20,
    silence_before: float = 0.5,
    silence_after: float = 1.0,
) -> list[rtc.AudioFrame]:
    """``text`` spoken by espeak-ng as mono int16 frames of ``frame_ms`` at ``sample_rate``.
    The speech lasts ``speech_duration(text, sample_rate)`` seconds."""
    pcm = espeak_pcm(
        text, sample_rate=sample_rate, silence_before=silence_before, silence_after=silence_after
    )
    return split_frames(pcm, sample_rate=sample_rate, frame_ms=frame_ms)


def speech_duration(text: str, sample_rate: int = 16000) -> float:
    """Seconds of speech (without the added silence) in :func:`espeak_frames`' output."""
    return len(_speech(text, sample_rate)) / sample_rate
