"""The thread that runs a local TTS model, shared by :mod:`.piper_tts` and :mod:`.hibari_tts`.

:class:`ModelWorker` loads a model once and runs its loading and then all its inference, in
order, on one thread of its own: the stream adapter's prefetch of the next sentence never
competes with the current one for the two cores. :class:`WorkerChunkedStream` is the
``ChunkedStream`` of one text made on such a worker, emitted in :data:`FRAME_MS` frames as each
chunk (a sentence, for Piper and Hibari) is ready. Workers are shared per voice
(:func:`acquire_worker` / :func:`release_worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar, cast

import numpy as np
import numpy.typing as npt

from voicetui.agents.audio import AudioByteStream
from voicetui.agents.exceptions import TTSError
from voicetui.agents.tts import TTS, ChunkedStream
from voicetui.agents.types import APIConnectOptions

__all__ = [
    "FRAME_MS",
    "ModelWorker",
    "PcmChunks",
    "WorkerChunkedStream",
    "acquire_worker",
    "release_worker",
]

M = TypeVar("M")
T = TypeVar("T")

PcmChunks = Callable[[M, str], Iterator[npt.NDArray[np.int16]]]
"""``chunks(model, text)``: the text's audio as int16 mono arrays, produced one by one."""

FRAME_MS = 50
"""Length of the frames the local TTSs emit."""


class ModelWorker(Generic[M]):
    """A model loaded once, and the one thread that runs its loading and then all its inference,
    in the order submitted. Usable from any event loop (its futures are thread futures)."""

    def __init__(self, name: str, load: Callable[[], M]) -> None:
        self._load = load
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._loaded: Future[M] | None = None
        self.load_time: float | None = None
        """Seconds the last successful load took (with its warm-up), once loaded."""

    def _timed_load(self) -> M:
        started = time.perf_counter()
        model = self._load()
        self.load_time = time.perf_counter() - started
        return model

    def _loading(self) -> Future[M]:
        with self._lock:
            fut = self._loaded
            # a load that failed or was cancelled is tried again by the next request
            if fut is None or fut.cancelled() or (fut.done() and fut.exception() is not None):
                fut = self._loaded = self._executor.submit(self._timed_load)
            return fut

    async def model(self) -> M:
        """The loaded model, loading it (on the worker thread) on first use."""
        return await asyncio.wrap_future(self._loading())

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Runs ``fn()`` on the worker thread, after the work submitted before it."""
        return self._executor.submit(fn)

    def close(self) -> None:
        """Stop the thread once its current job is done; queued jobs are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)


_workers: dict[Hashable, tuple[ModelWorker[Any], int]] = {}
_workers_lock = threading.Lock()


def acquire_worker(key: Hashable, name: str, load: Callable[[], M]) -> ModelWorker[M]:
    """The worker of ``key`` (one per voice), created on first use; pair with
    :func:`release_worker`, which frees the model when its last user is gone."""
    with _workers_lock:
        worker, users = _workers.get(key, (None, 0))
        if worker is None:
            worker = ModelWorker(name, load)
        _workers[key] = (worker, users + 1)
        return cast(ModelWorker[M], worker)


def release_worker(key: Hashable) -> None:
    with _workers_lock:
        worker, users = _workers.get(key, (None, 0))
        if worker is None:
            return
        if users > 1:
            _workers[key] = (worker, users - 1)
        else:
            del _workers[key]
            worker.close()


class WorkerChunkedStream(ChunkedStream, Generic[M]):
    """The audio of one text, made on a :class:`ModelWorker` in one job: the chunks of
    ``chunks(model, text)`` (one per sentence for Piper and Hibari) are emitted in
    :data:`FRAME_MS` frames as each is ready. A request waits for those submitted before it, and
    stops after its current chunk when it is cancelled."""

    def __init__(
        self,
        tts: TTS,
        text: str,
        *,
        conn_options: APIConnectOptions,
        worker: ModelWorker[M],
        chunks: PcmChunks[M],
    ) -> None:
        self._worker = worker
        self._chunks = chunks
        super().__init__(tts, text, conn_options=conn_options)

    async def _synthesize(self) -> None:
        chunks, text = self._chunks, self._text
        model = await self._worker.model()
        loop = asyncio.get_running_loop()
        ready: asyncio.Queue[npt.NDArray[np.int16] | None] = asyncio.Queue()
        stop = threading.Event()

        def send(piece: npt.NDArray[np.int16] | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(ready.put_nowait, piece)

        def produce() -> None:
            try:
                pieces = iter(chunks(model, text))
                while not stop.is_set() and (piece := next(pieces, None)) is not None:
                    send(piece)
            finally:
                send(None)

        job = self._worker.submit(produce)
        job.add_done_callback(lambda f: send(None) if f.cancelled() else None)
        try:
            rate = self._tts.sample_rate
            pcm = AudioByteStream(rate, 1, samples_per_frame=rate * FRAME_MS // 1000)
            while (piece := await ready.get()) is not None:
                for frame in pcm.push(piece.tobytes()):
                    self._emit_frame(frame)
            if job.cancelled():
                raise TTSError(
                    f"{self._tts.label} was closed during the request", recoverable=False
                )
            await asyncio.wrap_future(job)  # raises the model's error, if any
            for frame in pcm.flush():
                self._emit_frame(frame)
        finally:
            stop.set()
            job.cancel()  # if it has not started
