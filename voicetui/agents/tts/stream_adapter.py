"""Makes any TTS stream sentence by sentence: the first sentence is spoken while the rest of the
text is still being written, and the next sentence is synthesized while the current one plays.

The first piece of a reply may be shorter than a sentence: its first clause (up to a comma,
semicolon, colon or dash) once it has ``first_clause_words`` words, so that speech starts before
the LLM has finished the first sentence; with ``first_words``, its first that many words even
without punctuation (off by default: the TTS says them as a phrase of their own)."""

from __future__ import annotations

import asyncio
from typing import cast

from .._stream import FlushSentinel
from ..tokenize import SentenceStream
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import TaskSet
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities


class StreamAdapter(TTS):
    def __init__(
        self,
        *,
        tts: TTS,
        min_sentence_length: int = 12,
        prefetch: int = 1,
        first_clause_words: int | None = 4,
        first_words: int | None = None,
    ) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=True),
            sample_rate=tts.sample_rate,
            num_channels=tts.num_channels,
        )
        self._wrapped = tts
        self._min_sentence_length = min_sentence_length
        self._prefetch = prefetch
        self._first_clause_words = first_clause_words
        self._first_words = first_words
        self._label = f"StreamAdapter({tts.label})"

    @property
    def wrapped_tts(self) -> TTS:
        return self._wrapped

    @property
    def model(self) -> str:
        return self._wrapped.model

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        return self._wrapped.synthesize(text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        return _AdapterStream(self, conn_options=conn_options)


class _AdapterStream(SynthesizeStream):
    async def _run(self) -> None:
        adapter = cast(StreamAdapter, self._tts)
        splitter = SentenceStream(
            min_length=adapter._min_sentence_length,
            first_clause_words=adapter._first_clause_words,
            first_words=adapter._first_words,
        )
        tasks = TaskSet("tts.StreamAdapter")
        # one queue slot per sentence, in order; synthesis of up to `prefetch` sentences ahead
        sentences: asyncio.Queue[tuple[str, asyncio.Queue[SynthesizedAudio | None]] | None] = (
            asyncio.Queue()
        )
        ahead = asyncio.Semaphore(adapter._prefetch + 1)

        async def synthesize(text: str, out: asyncio.Queue[SynthesizedAudio | None]) -> None:
            try:
                async with adapter._wrapped.synthesize(
                    text, conn_options=self._conn_options
                ) as stream:
                    async for audio in stream:
                        out.put_nowait(audio)
            finally:
                out.put_nowait(None)

        def start(text: str) -> None:
            out: asyncio.Queue[SynthesizedAudio | None] = asyncio.Queue()
            sentences.put_nowait((text, out))

        async def read_input() -> None:
            async for item in self._input:
                if isinstance(item, FlushSentinel):
                    for s in splitter.flush():
                        start(s)
                else:
                    for s in splitter.push(item):
                        start(s)
            for s in splitter.flush():
                start(s)
            sentences.put_nowait(None)

        async def run_synthesis() -> None:
            # launches synthesis tasks in order, bounded by the prefetch window
            pending: asyncio.Queue[
                tuple[asyncio.Task[None], asyncio.Queue[SynthesizedAudio | None]] | None
            ] = asyncio.Queue()

            async def launch() -> None:
                while (item := await sentences.get()) is not None:
                    text, out = item
                    await ahead.acquire()
                    pending.put_nowait((tasks.create(synthesize(text, out)), out))
                pending.put_nowait(None)

            launcher = tasks.create(launch())
            while (p := await pending.get()) is not None:
                task, out = p
                while (audio := await out.get()) is not None:
                    self._emit(audio)
                ahead.release()
                await task  # surfaces the sentence's TTSError
            await launcher

        try:
            await asyncio.gather(read_input(), run_synthesis())
        finally:
            await tasks.aclose()
