"""An STT that falls back from one provider to the next when a provider fails.

``recognize()`` tries the providers in order. ``stream()`` runs one provider's stream at a time;
when it fails, the next provider's stream takes over and is first given again the audio pushed
since the last FINAL_TRANSCRIPT, so the utterance in progress is still transcribed. Failed
providers are skipped while they are probed in the background; every change of availability
emits ``stt_availability_changed`` (:class:`AvailabilityChangedEvent`). The providers'
``metrics_collected`` events are re-emitted by the adapter.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from livekit import rtc

from .._fallback import ProviderAvailability
from .._stream import FlushSentinel
from ..audio import frame_duration, silence
from ..exceptions import STTError
from ..metrics import STTMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import TaskSet, cancel_and_wait
from ..vad import VAD
from .stream_adapter import StreamAdapter
from .stt import STT, AudioBuffer, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities

logger = logging.getLogger("voicetui.agents.stt")

PROBE_DURATION = 0.5
"""Seconds of silence a recovery probe sends."""


@dataclass
class AvailabilityChangedEvent:
    """``stt_availability_changed``: ``stt`` became available again, or stopped being."""

    stt: STT
    available: bool


def _describe(label: str, error: BaseException) -> str:
    message = error.message if isinstance(error, STTError) else str(error) or type(error).__name__
    return message if message.startswith(label) else f"{label}: {message}"


class FallbackAdapter(STT):
    """Tries ``stt`` in order. Providers that do not stream are wrapped in
    :class:`StreamAdapter` with ``vad`` for ``stream()`` (a ``vad`` is then required).

    Each provider gets ``attempt_timeout`` seconds per recognition attempt and
    ``max_retry_per_stt`` retries of recoverable errors, ``retry_interval`` seconds apart
    (doubling). Failed providers are probed every ``recovery_interval`` seconds (doubling, up to
    :data:`MAX_RECOVERY_INTERVAL`) with :meth:`probe`. When none is available, all are tried
    anyway. A stream re-sends at most ``max_replay_duration`` seconds of audio to a replacement.

    The adapter does not own the providers: ``aclose()`` stops the probes and detaches from the
    providers, but does not close them.
    """

    def __init__(
        self,
        stt: Sequence[STT],
        *,
        vad: VAD | None = None,
        attempt_timeout: float = 10.0,
        max_retry_per_stt: int = 1,
        retry_interval: float = 5.0,
        recovery_interval: float = 5.0,
        max_replay_duration: float = 30.0,
    ) -> None:
        if not stt:
            raise ValueError("FallbackAdapter needs at least one STT")
        if recovery_interval <= 0:
            raise ValueError("recovery_interval must be > 0")
        batch_only = [s.label for s in stt if not s.capabilities.streaming]
        if batch_only and vad is None:
            raise ValueError(f"not streaming, a vad is needed to wrap: {', '.join(batch_only)}")
        super().__init__(
            capabilities=STTCapabilities(
                streaming=True, interim_results=all(s.capabilities.interim_results for s in stt)
            )
        )
        self._stts = list(stt)
        self._streaming = [
            s if s.capabilities.streaming or vad is None else StreamAdapter(stt=s, vad=vad)
            for s in self._stts
        ]
        self._vad = vad
        self._conn_options = APIConnectOptions(
            max_retry=max_retry_per_stt, retry_interval=retry_interval, timeout=attempt_timeout
        )
        self._recovery_interval = recovery_interval
        self._max_replay_duration = max_replay_duration
        self._tasks = TaskSet("stt.FallbackAdapter")
        self._availability: ProviderAvailability[STT] = ProviderAvailability(
            self._stts,
            name="stt.FallbackAdapter",
            tasks=self._tasks,
            recovery_interval=recovery_interval,
            probe=self.probe,
            on_change=lambda provider, up: self.emit(
                "stt_availability_changed", AvailabilityChangedEvent(provider, up)
            ),
        )
        self._label = f"FallbackAdapter({', '.join(s.label for s in self._stts)})"
        for s in self._stts:
            s.on("metrics_collected", self._forward_metrics)

    @property
    def stts(self) -> list[STT]:
        return list(self._stts)

    @property
    def model(self) -> str:
        """The model of the provider a new request would try first."""
        return self._stts[self._availability.candidates()[0]].model

    def available(self, stt: STT) -> bool:
        return self._availability.is_available(stt)

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechEvent:
        """``conn_options`` is not used: each provider gets the adapter's own options (and
        reports its own metrics)."""
        frames = [buffer] if isinstance(buffer, rtc.AudioFrame) else list(buffer)
        return await self._recognize_impl(frames, language=language, conn_options=conn_options)

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        failures: list[str] = []
        for index in self._availability.candidates():
            stt = self._stts[index]
            try:
                ev = await stt.recognize(buffer, language=language, conn_options=self._conn_options)
            except Exception as e:
                failures.append(_describe(stt.label, e))
                logger.warning("%s failed, falling back: %s", stt.label, failures[-1])
                self._availability.mark_unavailable(index)
                continue
            self._availability.mark_available(index)
            return ev
        raise STTError(f"all STTs failed: {'; '.join(failures)}", recoverable=False)

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        return FallbackSpeechStream(self, language=language, conn_options=conn_options)

    async def probe(self, stt: STT) -> None:
        """The recovery check of a failed provider: :data:`PROBE_DURATION` seconds of silence,
        recognized in one request (or streamed, for a streaming provider) within
        ``attempt_timeout``. Raises when the provider still fails."""
        audio = silence(PROBE_DURATION, 16000)
        opts = self._conn_options.with_(max_retry=0)
        if not stt.capabilities.streaming:
            await stt.recognize(audio, conn_options=opts)
            return
        async with asyncio.timeout(opts.timeout), stt.stream(conn_options=opts) as stream:
            stream.push_frame(audio)
            stream.end_input()
            async for _ in stream:
                pass

    async def aclose(self) -> None:
        self._availability.close()
        await self._tasks.aclose()
        for s in self._stts:
            s.off("metrics_collected", self._forward_metrics)

    # --- availability ---------------------------------------------------------------------
    def _forward_metrics(self, metrics: STTMetrics) -> None:
        self.emit("metrics_collected", metrics)


class FallbackSpeechStream(SpeechStream):
    """Runs one provider's stream at a time, replaying the audio since the last final
    transcript into the next one when it fails. A START_OF_SPEECH of the replacement for the
    utterance already started is not repeated."""

    def __init__(
        self, adapter: FallbackAdapter, *, language: str | None, conn_options: APIConnectOptions
    ) -> None:
        self._adapter = adapter
        self._replay: deque[rtc.AudioFrame | FlushSentinel] = deque()
        self._replay_duration = 0.0
        self._active: SpeechStream | None = None
        self._input_ended = False
        self._in_speech = False
        super().__init__(adapter, language=language, conn_options=conn_options)

    async def _run(self) -> None:
        forward = asyncio.create_task(self._forward_input(), name="stt.FallbackSpeechStream.input")
        try:
            await self._run_providers()
        finally:
            await cancel_and_wait(forward)

    async def _forward_input(self) -> None:
        async for item in self._input:
            self._remember(item)
            active = self._active
            if active is None:
                continue  # switching providers: the next one gets it from the replay buffer
            if isinstance(item, FlushSentinel):
                active.flush()
            else:
                active.push_frame(item)
        self._input_ended = True
        if self._active is not None:
            self._active.end_input()

    def _remember(self, item: rtc.AudioFrame | FlushSentinel) -> None:
        self._replay.append(item)
        if isinstance(item, FlushSentinel):
            return
        self._replay_duration += frame_duration(item)
        while self._replay_duration > self._adapter._max_replay_duration and self._replay:
            old = self._replay.popleft()
            if not isinstance(old, FlushSentinel):
                self._replay_duration -= frame_duration(old)

    async def _run_providers(self) -> None:
        adapter = self._adapter
        failures: list[str] = []
        for index in adapter._availability.candidates():
            stt = adapter._streaming[index]
            try:
                await self._run_one(stt)
            except Exception as e:
                failures.append(_describe(adapter._stts[index].label, e))
                adapter._availability.mark_unavailable(index)
                logger.warning(
                    "%s failed, falling back (replaying %.2fs of audio): %s",
                    stt.label,
                    self._replay_duration,
                    failures[-1],
                )
                continue
            adapter._availability.mark_available(index)
            return
        raise STTError(f"all STTs failed: {'; '.join(failures)}", recoverable=False)

    async def _run_one(self, stt: STT) -> None:
        stream = stt.stream(language=self._language, conn_options=self._adapter._conn_options)
        try:
            for item in self._replay:
                if isinstance(item, FlushSentinel):
                    stream.flush()
                else:
                    stream.push_frame(item)
            if self._input_ended:
                stream.end_input()
            self._active = stream
            async for ev in stream:
                self._on_event(ev)
            if not self._input_ended:
                raise STTError(f"{stt.label}: the stream ended before its input")
        finally:
            self._active = None
            await stream.aclose()

    def _on_event(self, ev: SpeechEvent) -> None:
        if ev.type == SpeechEventType.START_OF_SPEECH:
            if self._in_speech:
                return  # the replacement detected again the utterance already started
            self._in_speech = True
        elif ev.type == SpeechEventType.END_OF_SPEECH:
            self._in_speech = False
        elif ev.type == SpeechEventType.FINAL_TRANSCRIPT:
            self._replay.clear()
            self._replay_duration = 0.0
        self._emit(ev)
