"""Text to speech with the audio speech endpoint, as raw 24 kHz 16-bit mono PCM streamed into
frames as the bytes arrive. One request per text: ``tts.StreamAdapter`` adds sentence
streaming."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...agents import tts
from ...agents.audio import AudioByteStream
from ...agents.exceptions import TTSError
from ...agents.tts import ChunkedStream, TTSCapabilities
from ...agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ._client import ClientHolder, resolve_config
from ._errors import map_error

if TYPE_CHECKING:
    import openai

SAMPLE_RATE = 24000
"""The ``pcm`` response format of the speech endpoint: 24 kHz, s16le, mono."""
FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms frames
_READ_SIZE = 4800  # bytes per read: 100 ms of audio


class TTS(tts.TTS):
    """``audio.speech`` with ``response_format="pcm"``. ``instructions`` (gpt-4o-mini-tts only)
    steers the voice. ``api_key``/``base_url``/``timeout``/``client`` as for
    :class:`voicetui.plugins.openai.LLM`."""

    def __init__(
        self,
        *,
        model: str = "tts-1",
        voice: str = "alloy",
        speed: float = 1.0,
        instructions: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1
        )
        if not 0.25 <= speed <= 4.0:
            raise ValueError("speed must be between 0.25 and 4.0")
        self._model = model
        self._voice = voice
        self._speed = speed
        self._instructions = instructions
        self._holder = ClientHolder(
            resolve_config(api_key, base_url), client=client, timeout=timeout
        )
        _ = (
            self._holder.get().audio.speech.with_streaming_response
        )  # resolve the client's lazy resource now

    @property
    def model(self) -> str:
        return self._model

    @property
    def voice(self) -> str:
        return self._voice

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        return _OpenAIChunkedStream(self, text, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._holder.aclose()


class _OpenAIChunkedStream(ChunkedStream):
    async def _synthesize(self) -> None:
        owner = self._tts
        assert isinstance(owner, TTS)
        holder = owner._holder
        if not self._text.strip():
            return
        args: dict[str, object] = {
            "input": self._text,
            "model": owner._model,
            "voice": owner._voice,
            "response_format": "pcm",
            "speed": owner._speed,
            "timeout": holder.request_timeout(self._conn_options.timeout),
        }
        if owner._instructions:
            args["instructions"] = owner._instructions
        pcm = AudioByteStream(SAMPLE_RATE, 1, FRAME_SAMPLES)
        speech = holder.get().audio.speech.with_streaming_response
        try:
            async with speech.create(**args) as resp:  # type: ignore[arg-type]
                async for data in resp.iter_bytes(_READ_SIZE):
                    for frame in pcm.push(data):
                        self._emit_frame(frame)
        except TTSError:
            raise
        except Exception as e:
            mapped = map_error(e, TTSError, holder.config)
            if mapped is None:
                raise
            raise mapped from e
        for frame in pcm.flush():
            self._emit_frame(frame)
