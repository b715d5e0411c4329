"""Makes a non-streaming STT stream: a VAD cuts utterances, each is recognized when it ends."""

from __future__ import annotations

import asyncio
from typing import cast

from livekit import rtc

from .._aio import TaskSet
from .._stream import FlushSentinel
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..vad import VAD, VADEventType
from .stt import STT, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities


class StreamAdapter(STT):
    def __init__(self, *, stt: STT, vad: VAD) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=False))
        self._wrapped = stt
        self._vad = vad
        self._label = f"StreamAdapter({stt.label})"

    @property
    def wrapped_stt(self) -> STT:
        return self._wrapped

    @property
    def model(self) -> str:
        return self._wrapped.model

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        return await self._wrapped.recognize(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        return _AdapterStream(self, language=language, conn_options=conn_options)


class _AdapterStream(SpeechStream):
    async def _run(self) -> None:
        adapter = cast(StreamAdapter, self._stt)
        vad_stream = adapter._vad.stream()
        tasks = TaskSet("stt.StreamAdapter")
        # utterances are recognized concurrently but their results are emitted in order
        order: asyncio.Queue[asyncio.Task[SpeechEvent] | None] = asyncio.Queue()

        async def forward_input() -> None:
            async for item in self._input:
                if isinstance(item, FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        async def read_vad() -> None:
            async for ev in vad_stream:
                if ev.type == VADEventType.START_OF_SPEECH:
                    self._emit(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                elif ev.type == VADEventType.END_OF_SPEECH:
                    order.put_nowait(
                        tasks.create(
                            adapter._wrapped.recognize(
                                ev.frames, language=self._language, conn_options=self._conn_options
                            )
                        )
                    )
            order.put_nowait(None)

        async def emit_results() -> None:
            while (task := await order.get()) is not None:
                result = await task
                if result.text.strip():
                    self._emit(
                        SpeechEvent(
                            SpeechEventType.FINAL_TRANSCRIPT,
                            alternatives=result.alternatives,
                            request_id=result.request_id,
                        )
                    )
                self._emit(SpeechEvent(SpeechEventType.END_OF_SPEECH))

        try:
            await asyncio.gather(forward_input(), read_vad(), emit_results())
        finally:
            await tasks.aclose()
            await vad_stream.aclose()
