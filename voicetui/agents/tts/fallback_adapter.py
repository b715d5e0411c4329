"""A TTS that falls back from one provider to the next when a provider fails.

``synthesize(text)`` tries the providers in order with the same text. ``stream()`` splits the
text into sentences (as :class:`StreamAdapter` does) and synthesizes each with fallback, so a
failure costs only the sentence it happened on, which the next provider speaks. All audio comes
out at one sample rate whatever provider made it. Failed providers are skipped while they are
probed in the background; every change of availability emits ``tts_availability_changed``
(:class:`AvailabilityChangedEvent`). The providers' ``metrics_collected`` events are re-emitted
by the adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from livekit import rtc

from .._fallback import ProviderAvailability
from ..audio import FrameResampler
from ..exceptions import TTSError
from ..metrics import TTSMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import TaskSet
from .stream_adapter import StreamAdapter
from .tts import TEXT_KEY, TTS, ChunkedStream, SynthesizeStream, TTSCapabilities

logger = logging.getLogger("voicetui.agents.tts")

PROBE_TEXT = "Hello."
"""What a recovery probe synthesizes."""


@dataclass
class AvailabilityChangedEvent:
    """``tts_availability_changed``: ``tts`` became available again, or stopped being."""

    tts: TTS
    available: bool


def _describe(label: str, error: BaseException) -> str:
    message = error.message if isinstance(error, TTSError) else str(error) or type(error).__name__
    return message if message.startswith(label) else f"{label}: {message}"


class FallbackAdapter(TTS):
    """Tries ``tts`` in order. Output is resampled to ``sample_rate`` (default: the highest rate
    of the providers); all providers must have the same number of channels.

    Each provider gets ``attempt_timeout`` seconds per attempt (to the first frame, and between
    two frames) and ``max_retry_per_tts`` retries of recoverable errors, ``retry_interval``
    seconds apart (doubling). A text whose provider fails is synthesized again by the next one,
    even when part of its audio was already produced (the listener then hears the text again
    from the start; ``frame.userdata[TEXT_KEY]`` marks the text only once). Failed providers are
    probed every ``recovery_interval`` seconds (doubling, up to :data:`MAX_RECOVERY_INTERVAL`)
    with :meth:`probe`. When none is available, all are tried anyway.

    The adapter does not own the providers: ``aclose()`` stops the probes and detaches from the
    providers, but does not close them.
    """

    def __init__(
        self,
        tts: Sequence[TTS],
        *,
        max_retry_per_tts: int = 2,
        sample_rate: int | None = None,
        attempt_timeout: float = 10.0,
        retry_interval: float = 0.5,
        recovery_interval: float = 5.0,
        min_sentence_length: int = 12,
    ) -> None:
        if not tts:
            raise ValueError("FallbackAdapter needs at least one TTS")
        if recovery_interval <= 0:
            raise ValueError("recovery_interval must be > 0")
        channels = {t.num_channels for t in tts}
        if len(channels) != 1:
            raise ValueError(f"the TTSs must have the same number of channels, not {channels}")
        super().__init__(
            capabilities=TTSCapabilities(streaming=True),
            sample_rate=sample_rate or max(t.sample_rate for t in tts),
            num_channels=channels.pop(),
        )
        self._ttss = list(tts)
        self._conn_options = APIConnectOptions(
            max_retry=max_retry_per_tts, retry_interval=retry_interval, timeout=attempt_timeout
        )
        self._recovery_interval = recovery_interval
        self._tasks = TaskSet("tts.FallbackAdapter")
        self._availability: ProviderAvailability[TTS] = ProviderAvailability(
            self._ttss,
            name="tts.FallbackAdapter",
            tasks=self._tasks,
            recovery_interval=recovery_interval,
            probe=self.probe,
            on_change=lambda provider, up: self.emit(
                "tts_availability_changed", AvailabilityChangedEvent(provider, up)
            ),
        )
        self._label = f"FallbackAdapter({', '.join(t.label for t in self._ttss)})"
        # streaming = sentence splitting over our own (falling back) synthesize()
        self._sentences = StreamAdapter(tts=self, min_sentence_length=min_sentence_length)
        for t in self._ttss:
            t.on("metrics_collected", self._forward_metrics)

    @property
    def ttss(self) -> list[TTS]:
        return list(self._ttss)

    @property
    def model(self) -> str:
        """The model of the provider a new request would try first."""
        return self._ttss[self._availability.candidates()[0]].model

    def available(self, tts: TTS) -> bool:
        return self._availability.is_available(tts)

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """``conn_options`` is not used: each provider gets the adapter's own options."""
        return FallbackChunkedStream(self, text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        return self._sentences.stream(conn_options=conn_options)

    async def probe(self, tts: TTS) -> None:
        """The recovery check of a failed provider: synthesizing :data:`PROBE_TEXT`, whose
        first frame must come within ``attempt_timeout``. Raises when it still fails."""
        opts = self._conn_options.with_(max_retry=0)
        async with tts.synthesize(PROBE_TEXT, conn_options=opts) as stream:
            async for _ in stream:
                break

    async def aclose(self) -> None:
        self._availability.close()
        await self._tasks.aclose()
        for t in self._ttss:
            t.off("metrics_collected", self._forward_metrics)

    # --- availability ---------------------------------------------------------------------
    def _forward_metrics(self, metrics: TTSMetrics) -> None:
        self.emit("metrics_collected", metrics)


class FallbackChunkedStream(ChunkedStream):
    """The audio of one text from the first provider that manages it, at the adapter's rate.
    Reports no metrics of its own: the serving provider's are re-emitted by the adapter."""

    def __init__(self, adapter: FallbackAdapter, text: str, *, conn_options: APIConnectOptions):
        self._adapter = adapter
        super().__init__(adapter, text, conn_options=conn_options)

    async def _run(self) -> None:
        adapter = self._adapter
        failures: list[str] = []
        for index in adapter._availability.candidates():
            tts = adapter._ttss[index]
            try:
                await self._forward(tts)
            except Exception as e:
                failures.append(_describe(tts.label, e))
                logger.warning("%s failed, falling back: %s", tts.label, failures[-1])
                adapter._availability.mark_unavailable(index)
                continue
            adapter._availability.mark_available(index)
            return
        raise TTSError(f"all TTSs failed: {'; '.join(failures)}", recoverable=False)

    async def _synthesize(self) -> None:
        raise NotImplementedError  # _run is overridden

    async def _forward(self, tts: TTS) -> None:
        rate = self._adapter.sample_rate
        resampler: FrameResampler | None = None
        async with tts.synthesize(self._text, conn_options=self._adapter._conn_options) as stream:
            async for audio in stream:
                frame = audio.frame
                if frame.sample_rate == rate and resampler is None:
                    self._emit_out(frame)
                    continue
                if resampler is None:
                    resampler = FrameResampler(
                        frame.sample_rate, rate, num_channels=frame.num_channels
                    )
                for f in resampler.push(frame):
                    self._emit_out(f)
        if resampler is not None:
            for f in resampler.flush():
                self._emit_out(f)

    def _emit_out(self, frame: rtc.AudioFrame) -> None:
        # the text is announced once, on the first frame out (_emit_frame), whatever provider
        # and however many attempts made it
        frame.userdata.pop(TEXT_KEY, None)
        self._emit_frame(frame)
