"""No framework: the benchmark's fakes wired together by hand, as the floor both frameworks
are measured against.

The same user audio, VAD, STT, LLM, TTS and sink logic as the framework adapters (core.py),
connected in the most direct way one could write it: every frame goes synchronously through
the VAD and STT logic; at the end of the turn (the end of the voice + ``endpointing``, once the
final transcript is in) one task runs the LLM (twice on a tool turn), streams its words into
the TTS logic and feeds the sink with back-pressure. Its CPU per turn is what the script itself
costs (pacing 50 frames/s, the fakes, the real-time sink, the event loop's wake-ups); a
framework's CPU per turn minus this is what the framework adds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from livekit import rtc

from .core import STT_FINAL, VAD_END, LlmLogic, Sink, SttLogic, Timings, TtsLogic, User, VadLogic

NAME = "null"


def version() -> str:
    return "hand-wired"


class BenchSession:
    def __init__(self, t: Timings) -> None:
        self._t = t
        self.user = User(t)
        self.sink = Sink(t, lambda _at: None, lambda _pos, _interrupted: None)
        self._llm = LlmLogic(t, self.user)
        self._tasks: set[asyncio.Task[None]] = set()
        self._voice_end: float | None = None
        self._final: str | None = None
        self._turn_at: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        self._spawn(self._listen())

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()

        def on_vad(kind: int, speech: float, silence: float, speaking: bool, voice: bool) -> None:
            if kind == VAD_END:
                self._voice_end = loop.time() - silence
                self._maybe_end_turn()

        def on_stt(kind: int, text: str) -> None:
            if kind == STT_FINAL:
                self._final = text
                self._maybe_end_turn()

        vad = VadLogic(self._t, on_vad)
        stt = SttLogic(self._t, self.user, on_stt)
        try:
            async for frame in self.user.frames():
                vad.push(frame)
                stt.push(frame)
        finally:
            stt.close()

    def _maybe_end_turn(self) -> None:
        if self._voice_end is None or self._final is None or self._turn_at is not None:
            return
        loop = asyncio.get_running_loop()
        at = max(self._voice_end + self._t.endpointing, loop.time())
        self._turn_at = loop.call_at(at, self._end_turn)

    def _end_turn(self) -> None:
        self._voice_end = self._final = self._turn_at = None
        self._spawn(self._reply())

    async def _reply(self) -> None:
        words: asyncio.Queue[str | None] = asyncio.Queue()
        audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        t = self._t

        async def think() -> None:
            called: list[bool] = []

            def on_tool(call_id: str, name: str, arguments: str) -> None:
                called.append(True)

            await self._llm.run(False, words.put_nowait, on_tool)
            if called:  # the tool "runs", then the LLM answers with its output
                await self._llm.run(True, words.put_nowait, on_tool)
            words.put_nowait(None)  # the end of the reply's text (a flush)

        async def texts() -> AsyncIterator[str | None]:
            while (w := await words.get()) is not None:
                yield w
            yield None

        async def speak() -> None:
            await TtsLogic(t).run(texts(), lambda pcm, first: audio.put_nowait(pcm))
            audio.put_nowait(None)

        async def play() -> None:
            n = t.tts_sample_rate * t.tts_chunk_ms // 1000
            while (pcm := await audio.get()) is not None:
                await self.sink.capture(rtc.AudioFrame(pcm, t.tts_sample_rate, 1, n))
            self.sink.flush()

        await asyncio.gather(think(), speak(), play())

    async def aclose(self) -> None:
        self.user.close()
        if self._turn_at is not None:
            self._turn_at.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sink.aclose()
