"""Makes any TTS stream sentence by sentence: the first sentence is spoken while the rest of the
text is still being written, and the next sentence is synthesized while the current one plays.

The first piece of a reply may be shorter than a sentence: its first clause (up to a comma,
semicolon, colon or dash) once it has ``first_clause_words`` words, so that speech starts before
the LLM has finished the first sentence; with ``first_words``, its first that many words even
without punctuation (off by default: the TTS says them as a phrase of their own).

The reply's first audio starts at its voice: TTS models put silence before each sentence (Hibari
~0.3 s, so the reply was heard 0.3 s after its first frame played); of the first piece's leading
silence only ``lead_silence`` seconds are kept (None: all of it). Later pieces keep theirs, which
is the pause between them."""

from __future__ import annotations

import asyncio
from typing import cast

import numpy as np
from livekit import rtc

from .._stream import FlushSentinel
from ..audio import as_array, make_frame
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
        lead_silence: float | None = 0.02,
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
        if lead_silence is not None and lead_silence < 0:
            raise ValueError("lead_silence must be None or >= 0")
        self._lead_silence = lead_silence
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
            lead = adapter._lead_silence
            trim = _LeadTrimmer(lead) if lead is not None else None
            while (p := await pending.get()) is not None:
                task, out = p
                last: SynthesizedAudio | None = None
                while (audio := await out.get()) is not None:
                    last = audio
                    if trim is not None and not trim.done:
                        if (frame := trim.push(audio.frame)) is None:
                            continue  # silence before the first voice
                        audio.frame = frame
                    self._emit(audio)
                if trim is not None and not trim.done and last is not None:
                    frame = trim.flush(last.frame.sample_rate, last.frame.num_channels)
                    if frame is not None:
                        last.frame = frame
                        self._emit(last)
                trim = None  # (only the first piece: the others' silence is a pause)
                ahead.release()
                await task  # surfaces the sentence's TTSError
            await launcher

        try:
            await asyncio.gather(read_input(), run_synthesis())
        finally:
            await tasks.aclose()


_VOICED = 0.01 * 32768  # -40 dBFS


class _LeadTrimmer:
    """Drops the silence before the first voiced sample, but for the last ``lead`` seconds.
    What the dropped frames carried (``userdata``: the piece's text) goes with the first frame
    kept."""

    def __init__(self, lead: float) -> None:
        self._lead = lead
        self._held = np.zeros(0, np.int16)  # the silence kept so far (interleaved samples)
        self._userdata: dict[str, object] = {}
        self.done = False

    def push(self, frame: rtc.AudioFrame) -> rtc.AudioFrame | None:
        samples = as_array(frame).reshape(-1)
        channels = frame.num_channels
        keep = round(self._lead * frame.sample_rate) * channels
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _VOICED)
        if loud.size == 0:
            held = np.concatenate([self._held, samples])
            self._held = held[max(0, len(held) - keep) :]
            self._userdata.update(frame.userdata)
            return None
        self.done = True
        start = int(loud[0]) // channels * channels
        lead = np.concatenate([self._held, samples[:start]])
        pcm = np.concatenate([lead[max(0, len(lead) - keep) :], samples[start:]])
        if pcm.size == samples.size and not self._userdata:
            return frame
        out = make_frame(pcm.reshape(-1, channels), frame.sample_rate, channels)
        out.userdata.update(self._userdata)
        out.userdata.update(frame.userdata)
        return out

    def flush(self, sample_rate: int, channels: int) -> rtc.AudioFrame | None:
        """A piece with no voice at all: what was kept of it (with its ``userdata``)."""
        self.done = True
        if not self._userdata and not self._held.size:
            return None
        out = make_frame(self._held.reshape(-1, channels), sample_rate, channels)
        out.userdata.update(self._userdata)
        return out
