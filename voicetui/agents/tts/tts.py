"""Text to speech: ``synthesize(text)`` (one request) and ``stream()`` (text pushed as it comes).

Frames produced for a piece of text carry that text in ``frame.userdata["text"]`` on the first
frame of the piece, which lets the pipeline know which words were heard when playback stops.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from livekit import rtc

from .._retry import with_retries
from .._stream import DuplexStream
from ..audio import frame_duration
from ..exceptions import TTSError
from ..metrics import TTSMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import now

logger = logging.getLogger("voicetui.agents.tts")

TEXT_KEY = "text"
"""``frame.userdata`` key holding the text whose audio starts with this frame."""


@dataclass
class SynthesizedAudio:
    frame: rtc.AudioFrame
    request_id: str
    is_final: bool = False
    segment_id: str = ""
    delta_text: str = ""


@dataclass(frozen=True)
class TTSCapabilities:
    streaming: bool


class TTS(ABC, rtc.EventEmitter[Literal["metrics_collected", "error", "tts_availability_changed"]]):
    def __init__(self, *, capabilities: TTSCapabilities, sample_rate: int, num_channels: int = 1):
        super().__init__()
        self._capabilities = capabilities
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._label = f"{type(self).__module__}.{type(self).__name__}"

    @property
    def capabilities(self) -> TTSCapabilities:
        return self._capabilities

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def label(self) -> str:
        return self._label

    @property
    def model(self) -> str:
        return "unknown"

    @abstractmethod
    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream: ...

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        raise TypeError(f"{self.label} does not stream; wrap it: tts.StreamAdapter(tts=...)")

    async def aclose(self) -> None:
        """Release the model's resources."""


class ChunkedStream(DuplexStream[None, SynthesizedAudio]):
    """The audio of one text. Providers implement :meth:`_synthesize`, calling
    :meth:`_emit_frame`; the base class retries recoverable errors that happen before the first
    frame, and reports :class:`TTSMetrics`. An attempt fails (recoverably) when no frame comes
    for ``conn_options.timeout`` seconds, before the first frame or between two."""

    def __init__(self, tts: TTS, text: str, *, conn_options: APIConnectOptions) -> None:
        self._tts = tts
        self._text = text
        self._conn_options = conn_options
        self._request_id = f"tts_{uuid.uuid4().hex[:12]}"
        self._ttfb: float | None = None
        self._audio_duration = 0.0
        self._started_at = now()
        self._first = True
        self._deadline: asyncio.Timeout | None = None
        super().__init__()

    @property
    def input_text(self) -> str:
        return self._text

    @abstractmethod
    async def _synthesize(self) -> None: ...

    def _emit_frame(self, frame: rtc.AudioFrame) -> None:
        if self._ttfb is None:
            self._ttfb = now() - self._started_at
        if self._first:
            self._first = False
            frame.userdata[TEXT_KEY] = self._text
        self._audio_duration += frame_duration(frame)
        deadline = self._deadline
        if deadline is not None and not deadline.expired():
            deadline.reschedule(asyncio.get_running_loop().time() + self._conn_options.timeout)
        self._emit(SynthesizedAudio(frame=frame, request_id=self._request_id))

    async def _synthesize_attempt(self) -> None:
        """One call of :meth:`_synthesize` under the per-attempt timeout."""
        timeout = self._conn_options.timeout
        deadline = asyncio.timeout(timeout)
        self._deadline = deadline
        try:
            async with deadline:
                await self._synthesize()
        except TimeoutError:
            if not deadline.expired():
                raise  # the provider's own TimeoutError, not ours
            when = "between two frames" if self._ttfb is not None else "before the first frame"
            raise TTSError(
                f"{self._tts.label} timed out after {timeout:g}s {when}", recoverable=True
            ) from None
        finally:
            self._deadline = None

    async def _run(self) -> None:
        opts = self._conn_options
        cancelled = True
        try:
            await with_retries(
                self._synthesize_attempt,
                options=opts,
                error_type=TTSError,
                label=self._tts.label,
                may_retry=lambda: self._ttfb is None,
            )
            cancelled = False
        except TTSError:
            cancelled = False
            raise
        except Exception as e:
            cancelled = False
            raise TTSError(f"{self._tts.label}: {e}", recoverable=False) from e
        finally:
            self._tts.emit(
                "metrics_collected",
                TTSMetrics(
                    label=self._tts.label,
                    request_id=self._request_id,
                    ttfb=self._ttfb if self._ttfb is not None else -1.0,
                    duration=now() - self._started_at,
                    audio_duration=self._audio_duration,
                    cancelled=cancelled,
                    characters_count=len(self._text),
                    streamed=False,
                ),
            )

    async def collect(self) -> rtc.AudioFrame:
        """All the audio as one frame."""
        frames = [ev.frame async for ev in self]
        if not frames:
            return rtc.AudioFrame(b"", self._tts.sample_rate, self._tts.num_channels, 0)
        return rtc.combine_audio_frames(frames)


class SynthesizeStream(DuplexStream[str, SynthesizedAudio]):
    """Streaming synthesis: ``push_text`` deltas, ``flush()`` at the end of a segment."""

    def __init__(self, tts: TTS, *, conn_options: APIConnectOptions) -> None:
        self._tts = tts
        self._conn_options = conn_options
        super().__init__()

    def push_text(self, text: str) -> None:
        if text:
            self._push(text)
