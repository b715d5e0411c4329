"""A TTS that makes a tone whose length follows the text, after a scripted time to first byte."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from ..audio import make_frame
from ..exceptions import TTSError
from ..tts import TTS, ChunkedStream, TTSCapabilities
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions


class FakeTTS(TTS):
    """Audio of ``seconds_per_char * len(text)`` (or ``audio_duration`` if set) per request, in
    ``frame_duration`` frames. ``ttfb`` delays the first frame; ``rtf`` paces generation
    (0 = instant). ``errors`` are raised by the next requests, one each."""

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        ttfb: float = 0.0,
        seconds_per_char: float = 0.05,
        audio_duration: float | None = None,
        frame_duration: float = 0.05,
        rtf: float = 0.0,
        errors: Sequence[TTSError] = (),
    ) -> None:
        super().__init__(capabilities=TTSCapabilities(streaming=False), sample_rate=sample_rate)
        self.ttfb = ttfb
        self.seconds_per_char = seconds_per_char
        self.audio_duration = audio_duration
        self.frame_duration = frame_duration
        self.rtf = rtf
        self.errors = list(errors)
        self.requests: list[str] = []

    @property
    def model(self) -> str:
        return "fake-tts"

    def duration_for(self, text: str) -> float:
        return (
            self.audio_duration
            if self.audio_duration is not None
            else len(text) * self.seconds_per_char
        )

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        self.requests.append(text)
        return _FakeChunkedStream(self, text, conn_options=conn_options)


class _FakeChunkedStream(ChunkedStream):
    async def _synthesize(self) -> None:
        tts = self._tts
        assert isinstance(tts, FakeTTS)
        if tts.ttfb > 0:
            await asyncio.sleep(tts.ttfb)
        if tts.errors:
            raise tts.errors.pop(0)
        total = round(tts.duration_for(self._text) * tts.sample_rate)
        per_frame = max(1, round(tts.frame_duration * tts.sample_rate))
        t = np.arange(per_frame) / tts.sample_rate
        tone = (np.sin(2 * np.pi * 220.0 * t) * 8000).astype(np.int16)
        done = 0
        while done < total:
            n = min(per_frame, total - done)
            self._emit_frame(make_frame(tone[:n], tts.sample_rate))
            done += n
            if tts.rtf > 0:
                await asyncio.sleep(n / tts.sample_rate * tts.rtf)
