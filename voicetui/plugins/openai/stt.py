"""Speech to text with the audio transcriptions endpoint (Whisper and compatible servers).

It does not stream: wrap it in ``stt.StreamAdapter(stt=openai.STT(), vad=...)`` so a VAD cuts
utterances, each sent as one in-memory WAV file."""

from __future__ import annotations

import io
import uuid
import wave
from typing import TYPE_CHECKING

from livekit import rtc

from ...agents import stt
from ...agents.exceptions import STTError
from ...agents.stt import SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from ...agents.types import APIConnectOptions
from ._client import ClientHolder, resolve_config
from ._errors import map_error

if TYPE_CHECKING:
    import openai


def frames_to_wav(frames: list[rtc.AudioFrame]) -> bytes:
    """The frames (int16 PCM, same rate and channel count) as a WAV file's bytes."""
    buf = io.BytesIO()
    rate = frames[0].sample_rate if frames else 16000
    channels = frames[0].num_channels if frames else 1
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        for f in frames:
            if f.sample_rate != rate or f.num_channels != channels:
                raise STTError(
                    f"mixed audio formats in one utterance ({f.sample_rate} Hz/"
                    f"{f.num_channels} ch after {rate} Hz/{channels} ch)",
                    recoverable=False,
                )
            w.writeframes(bytes(f.data))
    return buf.getvalue()


class STT(stt.STT):
    """Transcribes whole utterances with ``audio.transcriptions``.

    ``language`` is the default ISO-639-1 code (a ``recognize(language=...)`` argument wins);
    ``prompt`` biases the vocabulary. ``api_key``/``base_url``/``timeout``/``client`` as for
    :class:`voicetui.plugins.openai.LLM`."""

    def __init__(
        self,
        *,
        model: str = "whisper-1",
        language: str | None = "en",
        prompt: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self._model = model
        self._language = language
        self._prompt = prompt
        self._holder = ClientHolder(
            resolve_config(api_key, base_url), client=client, timeout=timeout
        )
        _ = self._holder.get().audio.transcriptions  # resolve the client's lazy resource now

    @property
    def model(self) -> str:
        return self._model

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        request_id = f"stt_{uuid.uuid4().hex[:12]}"
        lang = language or self._language
        frames = [f for f in buffer if f.samples_per_channel > 0]
        if not frames:
            return SpeechEvent(
                SpeechEventType.FINAL_TRANSCRIPT,
                alternatives=[SpeechData(text="", language=lang or "")],
                request_id=request_id,
            )
        wav = frames_to_wav(frames)
        args: dict[str, object] = {
            "file": ("audio.wav", wav, "audio/wav"),
            "model": self._model,
            "response_format": "json",
            "timeout": self._holder.request_timeout(conn_options.timeout),
        }
        if lang:
            args["language"] = lang
        if self._prompt:
            args["prompt"] = self._prompt
        try:
            result = await self._holder.get().audio.transcriptions.create(**args)  # type: ignore[call-overload]
        except Exception as e:
            mapped = map_error(e, STTError, self._holder.config)
            if mapped is None:
                raise
            raise mapped from e
        text = str(getattr(result, "text", "") or "").strip()
        end = sum(f.samples_per_channel / f.sample_rate for f in frames)
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[SpeechData(text=text, language=lang or "", end_time=end)],
            request_id=request_id,
        )

    async def aclose(self) -> None:
        await self._holder.aclose()
