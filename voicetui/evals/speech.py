"""The user's side of an audio eval: turns as 16 kHz mono int16 PCM, and a microphone that
sends them to the session.

Text turns are spoken by espeak-ng (a voice the agent does not use); WAV files are read and
resampled; a recording's user turn is cut from its ``user.wav`` (a typed turn stays text).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from livekit import rtc

from ..agents.audio import make_frame, read_audio, resample, silence, to_mono
from ..agents.voice.io import AudioInput
from .scenario import Turn

__all__ = ["RATE", "ScriptedMicrophone", "TurnAudio", "turn_audio"]

RATE = 16000
_STEP = 0.02
ESPEAK_VOICE = "en-us"


class TurnAudioError(Exception):
    """A turn's audio cannot be made; the message says why."""


def _trimmed(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono int16 at :data:`RATE`, without the silence around the speech."""
    pcm = resample(to_mono(audio), rate, RATE)
    loud = np.nonzero(np.abs(pcm) > 0.01 * 32768)[0]
    return pcm[loud[0] : loud[-1] + 1] if len(loud) else pcm


def espeak(text: str, *, voice: str = ESPEAK_VOICE, words_per_minute: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng (blocking: call it in a thread)."""
    if shutil.which("espeak-ng") is None:
        raise TurnAudioError("audio evals speak text turns with espeak-ng, which is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turn.wav"
        cmd = ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text]
        subprocess.run(cmd, check=True, capture_output=True)
        audio, rate = read_audio(path)
    return _trimmed(audio, rate)


class TurnAudio:
    """A turn's input: ``pcm`` to speak, or ``text`` to type (a typed turn of a recording)."""

    def __init__(self, *, pcm: np.ndarray | None = None, text: str | None = None) -> None:
        self.pcm = pcm
        self.text = text


def turn_audio(turn: Turn) -> TurnAudio:
    """Blocking (espeak-ng, file reads): call it in a thread. Raises :class:`TurnAudioError`."""
    if turn.say is not None:
        return TurnAudio(pcm=espeak(turn.say))
    if turn.wav is not None:
        try:
            audio, rate = read_audio(turn.wav)
        except (OSError, ValueError) as e:
            raise TurnAudioError(f"cannot read {turn.wav}: {e}") from None
        return TurnAudio(pcm=_trimmed(audio, rate))
    assert turn.recording is not None
    from ..recording.load import load_recording

    try:
        rec = load_recording(turn.recording.dir)
    except (OSError, ValueError) as e:
        raise TurnAudioError(f"cannot read the recording {turn.recording.dir}: {e}") from None
    turns = rec.user_turns
    k = turn.recording.turn
    if k > len(turns):
        raise TurnAudioError(f"{turn.recording.dir} has {len(turns)} user turns, not {k}")
    chosen = turns[k - 1]
    if chosen.typed:
        return TurnAudio(text=chosen.user or "")
    start = turns[k - 2].t if k > 1 else 0.0
    rate = rec.sample_rate
    segment = rec.user_audio[int(start * rate) : int(chosen.t * rate)]
    return TurnAudio(pcm=_trimmed(segment, rate))


class ScriptedMicrophone(AudioInput):
    """Sends silence in real time, and each queued utterance ``speed`` times faster than real
    time (the VAD and STT see the same samples; only the waiting is shorter). Records on the
    loop clock when the last sample of each utterance was sent."""

    def __init__(self, *, speed: float = 2.0) -> None:
        super().__init__(label="eval microphone")
        self._queue: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self._speed = speed
        self.voice_ended = asyncio.Event()
        self.voice_ended_at = 0.0

    def say(self, pcm: np.ndarray) -> None:
        self.voice_ended.clear()
        self._queue.put_nowait(pcm)

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        loop = asyncio.get_running_loop()
        n = int(RATE * _STEP)
        start, sent = loop.time(), 0.0
        while True:
            if self._queue.empty():
                frame = silence(_STEP, RATE)
                sent += _STEP
            else:
                pcm = self._queue.get_nowait()
                for i in range(0, len(pcm), n):
                    chunk = pcm[i : i + n]
                    yield make_frame(np.pad(chunk, (0, n - len(chunk))), RATE)
                    sent += _STEP / self._speed
                    delay = start + sent - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                self.voice_ended_at = loop.time()
                self.voice_ended.set()
                continue
            delay = start + sent - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # the loop was busy: do not burst to catch up
                start, sent = loop.time(), 0.0
            yield frame
