"""eSpeak NG text to speech: the last resort. Robotic, but it needs no model, starts at once and
runs ~50x faster than real time. Runs the ``espeak-ng`` binary (``apt-get install espeak-ng``) as
a subprocess per request and streams its ``--stdout`` WAV as 22.05 kHz mono frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from typing import NamedTuple

import numpy as np

from voicetui.agents.audio import AudioByteStream, Resampler
from voicetui.agents.exceptions import TTSError
from voicetui.agents.tts import TTS, ChunkedStream, TTSCapabilities
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from voicetui.agents.utils.aio import cancel_and_wait

SAMPLE_RATE = 22_050
FRAME_MS = 50
_READ_SIZE = 4096


class EspeakTTS(TTS):
    """``voice``: an espeak-ng voice (``espeak-ng --voices`` lists them); ``rate``: words per
    minute (80-450); ``binary``: the program to run. A missing binary or an unknown voice is a
    non-recoverable :class:`TTSError` from the request."""

    def __init__(self, *, voice: str = "en-us", rate: int = 160, binary: str = "espeak-ng") -> None:
        if not 80 <= rate <= 450:
            raise ValueError("rate must be between 80 and 450 words per minute")
        super().__init__(capabilities=TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE)
        self._voice = voice
        self._rate = rate
        self._binary = binary

    @property
    def model(self) -> str:
        return f"espeak-ng/{self._voice}"

    def _executable(self) -> str:
        path = shutil.which(self._binary)
        if path is None:
            raise TTSError(
                f"{self._binary} is not installed (on Debian/Ubuntu: apt-get install espeak-ng)",
                recoverable=False,
            )
        return path

    async def prewarm(self) -> None:
        """Check that the binary is there (there is nothing to load)."""
        self._executable()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        return _EspeakStream(self, text, conn_options=conn_options)


class _WavFormat(NamedTuple):
    sample_rate: int
    channels: int
    bits: int


async def _read_wav_header(stdout: asyncio.StreamReader) -> _WavFormat:
    """Reads up to the start of the ``data`` chunk (whose size espeak-ng leaves unset)."""
    riff = await stdout.readexactly(12)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise TTSError("espeak-ng wrote something that is not WAV audio", recoverable=False)
    fmt: _WavFormat | None = None
    while True:
        chunk_id, size = struct.unpack("<4sI", await stdout.readexactly(8))
        if chunk_id == b"data":
            break
        body = await stdout.readexactly(size + size % 2)
        if chunk_id == b"fmt ":
            _tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
            fmt = _WavFormat(rate, channels, bits)
    if fmt is None or fmt.bits != 16 or fmt.channels != 1:
        raise TTSError("espeak-ng wrote WAV audio that is not 16-bit mono", recoverable=False)
    return fmt


class _EspeakStream(ChunkedStream):
    async def _synthesize(self) -> None:
        tts = self._tts
        assert isinstance(tts, EspeakTTS)
        if not self._text.strip():
            return
        proc = await asyncio.create_subprocess_exec(
            tts._executable(),
            *("-v", tts._voice, "-s", str(tts._rate), "--stdout", "--stdin"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        async def feed() -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                stdin.write(self._text.encode())
                await stdin.drain()
                stdin.close()

        writer = asyncio.create_task(feed(), name="EspeakTTS.feed")
        try:
            try:
                fmt = await _read_wav_header(stdout)
            except asyncio.IncompleteReadError:
                await proc.wait()
                raise TTSError(
                    f"espeak-ng made no audio with voice {tts._voice!r}: "
                    f"{await _describe_failure(proc, stderr)}",
                    recoverable=False,
                ) from None
            await self._stream_pcm(stdout, fmt.sample_rate)
            await proc.wait()
            if proc.returncode != 0:
                raise TTSError(
                    f"espeak-ng failed: {await _describe_failure(proc, stderr)}",
                    recoverable=False,
                )
        finally:
            await cancel_and_wait(writer)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _stream_pcm(self, stdout: asyncio.StreamReader, rate: int) -> None:
        out = AudioByteStream(SAMPLE_RATE, 1, samples_per_frame=SAMPLE_RATE * FRAME_MS // 1000)
        # e.g. mbrola voices speak at 16 kHz
        resampler = Resampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        odd = b""
        while True:
            data = odd + await stdout.read(_READ_SIZE)
            last = len(data) == len(odd)  # EOF
            data, odd = data[: len(data) // 2 * 2], data[len(data) // 2 * 2 :]
            if resampler is not None:
                samples = np.frombuffer(data, dtype=np.int16)
                data = resampler.push(samples, last=last).tobytes()
            for frame in out.push(data):
                self._emit_frame(frame)
            if last:
                break
        for frame in out.flush():
            self._emit_frame(frame)


async def _describe_failure(proc: asyncio.subprocess.Process, stderr: asyncio.StreamReader) -> str:
    message = (await stderr.read()).decode(errors="replace").strip()
    return message or f"exit status {proc.returncode}"
