"""Hibari text to speech (``hibari-tts``): a 7.9 MB model, ~100x faster than real time on one
core, 24 kHz mono. The default embedded voice (Apache-2.0, first audio in ~30 ms); Piper
(``--tts piper``, the GPL ``voicetui[piper]`` extra) is the alternative.

Built like :mod:`voicetui.plugins.local.piper_tts`: ``Hibari.stream`` yields one audio array per
sentence, which :meth:`HibariTTS.synthesize` emits as soon as each is ready; the TTS reports
``streaming=False`` and a session wraps it in :class:`voicetui.agents.tts.StreamAdapter` for
sentence-by-sentence streaming. The model is loaded once per voice on a thread of its own.

Only the ``"heart"`` voice ships inside the package. Hibari would download its other voices on
first use; voicetui never does: they must already be in Hibari's cache directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from voicetui.agents.exceptions import TTSError
from voicetui.agents.tts import TTS, ChunkedStream, TTSCapabilities
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from ._worker_tts import ModelWorker, PcmChunks, WorkerChunkedStream, acquire_worker, release_worker

if TYPE_CHECKING:
    from hibari import Hibari  # type: ignore[import-untyped]

DEFAULT_VOICE = "heart"
SAMPLE_RATE = 24_000
_INSTALL = "pip install 'voicetui[local]'"
_WARMUP_TEXT = "Warm up."


def _resolve_voice(voice: str) -> tuple[Path, str]:
    """The model file of a voice name or ``.onnx`` path, and the voice whose G2P to use."""
    from hibari.voices import VOICES, cache_dir, voice_path  # type: ignore[import-untyped]

    if voice in VOICES:
        try:
            return Path(voice_path(voice, download_missing=False)), voice
        except FileNotFoundError:
            where = Path(cache_dir()) / VOICES[voice]["file"]
            raise TTSError(
                f"the Hibari voice {voice!r} is not installed: only {DEFAULT_VOICE!r} ships "
                f"with hibari-tts, and voicetui downloads no models; put its file at {where}",
                recoverable=False,
            ) from None
    path = Path(voice).expanduser()
    if path.suffix != ".onnx":
        names = ", ".join(repr(v) for v in VOICES)
        raise TTSError(
            f"unknown Hibari voice {voice!r}: use one of {names} or the path of a .onnx model",
            recoverable=False,
        )
    if not path.is_file():
        raise TTSError(f"Hibari voice file not found: {path}", recoverable=False)
    return path, DEFAULT_VOICE  # a model file of its own speaks American English


def _load_model(model_path: Path, g2p_voice: str) -> Hibari:
    try:
        from hibari import SAMPLE_RATE as HIBARI_RATE
        from hibari import Hibari
    except ImportError as e:
        raise TTSError(f"hibari-tts is not installed: {_INSTALL}", recoverable=False) from e
    if HIBARI_RATE != SAMPLE_RATE:
        raise TTSError(
            f"this hibari-tts makes {HIBARI_RATE} Hz audio, voicetui expects {SAMPLE_RATE} Hz",
            recoverable=False,
        )
    try:
        model = Hibari(voice=g2p_voice, model=str(model_path))
        model(_WARMUP_TEXT)  # loads the G2P (~1 s) and warms up the session
    except Exception as e:
        raise TTSError(
            f"could not load the Hibari voice {model_path}: {e}", recoverable=False
        ) from e
    return model


def _hibari_chunks(speed: float, model: Hibari, text: str) -> Iterator[npt.NDArray[np.int16]]:
    for wav in model.stream(text, speed=speed):
        yield (np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)


class HibariTTS(TTS):
    """Hibari TTS. ``voice``: a Hibari voice name (``"heart"`` is bundled) or the path of a
    Hibari ``.onnx`` model; ``speed``: 1.0 is the natural pace (0.5 slow .. 2.0 fast). Bad
    settings raise :class:`TTSError` here; the model is loaded by :meth:`prewarm` or the first
    request."""

    def __init__(self, *, voice: str = DEFAULT_VOICE, speed: float = 1.0) -> None:
        if find_spec("hibari") is None:
            raise TTSError(f"hibari-tts is not installed: {_INSTALL}", recoverable=False)
        if not 0.25 <= speed <= 4.0:
            raise ValueError("speed must be between 0.25 and 4.0")
        model_path, g2p_voice = _resolve_voice(voice)
        super().__init__(capabilities=TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE)
        self._voice_name = voice if g2p_voice == voice else model_path.stem
        self._chunks: PcmChunks[Hibari] = partial(_hibari_chunks, speed)
        self._key = ("hibari", str(model_path.resolve()), g2p_voice)
        self._worker: ModelWorker[Hibari] | None = acquire_worker(
            self._key, f"hibari-{voice}", partial(_load_model, model_path, g2p_voice)
        )

    @property
    def model(self) -> str:
        return f"hibari-{self._voice_name}"

    @property
    def load_time(self) -> float | None:
        """Seconds loading the model took (with a warm-up sentence), once it is loaded."""
        return self._worker.load_time if self._worker is not None else None

    def _get_worker(self) -> ModelWorker[Hibari]:
        if self._worker is None:
            raise TTSError(f"{self.label} is closed", recoverable=False)
        return self._worker

    async def prewarm(self) -> None:
        """Load the model now (in its thread) rather than on the first request."""
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
