"""Speech to text: one-shot ``recognize(buffer)`` and streaming ``stream()``."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from livekit import rtc

from .._retry import with_retries
from .._stream import DuplexStream
from ..audio import frames_duration
from ..exceptions import STTError
from ..metrics import STTMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import now

logger = logging.getLogger("voicetui.agents.stt")

AudioBuffer = list[rtc.AudioFrame] | rtc.AudioFrame


class SpeechEventType(str, Enum):
    START_OF_SPEECH = "start_of_speech"
    INTERIM_TRANSCRIPT = "interim_transcript"
    FINAL_TRANSCRIPT = "final_transcript"
    PREFLIGHT_TRANSCRIPT = "preflight_transcript"
    """A likely final transcript, before the end of speech is certain (LiveKit's name): the
    session may start its reply on it (preemptive generation). A preflight with no text
    withdraws the previous one (the user went on speaking)."""
    RECOGNITION_USAGE = "recognition_usage"
    END_OF_SPEECH = "end_of_speech"


@dataclass
class SpeechData:
    text: str
    language: str = ""
    confidence: float = 0.0
    start_time: float = 0.0
    end_time: float = 0.0


@dataclass
class RecognitionUsage:
    audio_duration: float


@dataclass
class SpeechEvent:
    type: SpeechEventType
    alternatives: list[SpeechData] = field(default_factory=list)
    request_id: str = ""
    recognition_usage: RecognitionUsage | None = None

    @property
    def text(self) -> str:
        return self.alternatives[0].text if self.alternatives else ""


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool
    interim_results: bool


class STT(ABC, rtc.EventEmitter[Literal["metrics_collected", "error", "stt_availability_changed"]]):
    def __init__(self, *, capabilities: STTCapabilities) -> None:
        super().__init__()
        self._capabilities = capabilities
        self._label = f"{type(self).__module__}.{type(self).__name__}"

    @property
    def capabilities(self) -> STTCapabilities:
        return self._capabilities

    @property
    def label(self) -> str:
        return self._label

    @property
    def model(self) -> str:
        return "unknown"

    @abstractmethod
    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent: ...

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechEvent:
        """Transcribe a whole utterance. Recoverable errors are retried per ``conn_options``;
        an attempt taking more than ``conn_options.timeout`` seconds fails recoverably."""
        frames = [buffer] if isinstance(buffer, rtc.AudioFrame) else list(buffer)
        started = now()

        async def attempt() -> SpeechEvent:
            nonlocal started
            started = now()
            try:
                return await self._recognize_attempt(frames, language, conn_options)
            except STTError:
                raise
            except Exception as e:
                raise STTError(f"{self.label}: {e}", recoverable=False) from e

        ev = await with_retries(
            attempt, options=conn_options, error_type=STTError, label=self.label
        )
        self.emit(
            "metrics_collected",
            STTMetrics(
                label=self.label,
                request_id=ev.request_id,
                duration=now() - started,
                audio_duration=frames_duration(frames),
                streamed=False,
            ),
        )
        return ev

    async def _recognize_attempt(
        self, frames: list[rtc.AudioFrame], language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        deadline = asyncio.timeout(conn_options.timeout)
        try:
            async with deadline:
                return await self._recognize_impl(
                    frames, language=language, conn_options=conn_options
                )
        except TimeoutError:
            if not deadline.expired():
                raise  # the provider's own TimeoutError, not ours
            raise STTError(
                f"{self.label} timed out after {conn_options.timeout:g}s", recoverable=True
            ) from None

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        raise TypeError(
            f"{self.label} does not stream; wrap it: stt.StreamAdapter(stt=..., vad=...)"
        )

    async def aclose(self) -> None:
        """Release the model's resources."""


class SpeechStream(DuplexStream[rtc.AudioFrame, SpeechEvent]):
    """Streaming recognition: ``push_frame`` audio, iterate :class:`SpeechEvent`s."""

    def __init__(
        self, stt: STT, *, language: str | None = None, conn_options: APIConnectOptions
    ) -> None:
        self._stt = stt
        self._language = language
        self._conn_options = conn_options
        super().__init__()

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)
