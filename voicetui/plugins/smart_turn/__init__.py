"""End-of-turn detection with Smart Turn v3 (Daily, BSD-2-Clause): an 8.7 MB ONNX audio model
that hears the last 8 s of the user's turn and says whether it sounds finished (intonation,
an unfinished phrase, a filler), run by onnxruntime on one CPU thread in ~20-60 ms.

The weights ship inside the ``pipecat-ai`` wheel on PyPI
(``pipecat/audio/turn/smart_turn/data/smart-turn-v3.*-cpu.onnx``); they are read from the
installed package without importing it. Install with ``pip install 'voicetui[smart-turn]'``.
Its input features are Whisper's log-mel spectrogram (80 bands, 8 s), computed with
faster-whisper's extractor (the ``local`` extra).

    session = AgentSession(vad=silero.VAD.load(), turn_detection=SmartTurn(), ...)
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from voicetui.agents.audio import resample, to_float32
from voicetui.agents.turn_detector import TurnDetector

__all__ = ["SmartTurn", "SmartTurnUnavailable", "bundled_model_path"]

_RATE = 16000
_SECONDS = 8
_INSTALL = "pip install 'voicetui[smart-turn]'"


class SmartTurnUnavailable(RuntimeError):
    """The model or what runs it is not installed."""


def bundled_model_path() -> Path:
    """The newest Smart Turn v3 CPU model in the installed ``pipecat-ai`` package."""
    spec = importlib.util.find_spec("pipecat")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    found = sorted(
        (
            p
            for root in roots
            for p in (Path(root) / "audio" / "turn" / "smart_turn" / "data").glob(
                "smart-turn-v3*-cpu.onnx"
            )
        ),
        key=lambda p: p.name,
    )
    if not found:
        raise SmartTurnUnavailable(
            f"the Smart Turn model ships in the pipecat-ai package, which is not installed: "
            f"{_INSTALL}"
        )
    return found[-1]


class SmartTurn(TurnDetector):
    """``threshold``: P(done) at or above it ends the turn after ``min_endpointing_delay``.
    ``model_path``: another Smart Turn v3 ONNX file instead of the bundled one."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        model_path: str | Path | None = None,
        cpu_threads: int = 1,
    ) -> None:
        super().__init__(threshold=threshold, context=float(_SECONDS))
        self._model_path = Path(model_path) if model_path is not None else None
        self._cpu_threads = cpu_threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._features: Any = None

    @property
    def model(self) -> str:
        path = self._model_path or bundled_model_path()
        return path.stem.removesuffix("-cpu")

    @property
    def provider(self) -> str:
        return "smart-turn"

    def prewarm(self) -> None:
        self._load()

    async def predict_end_of_turn(self, audio: np.ndarray, sample_rate: int) -> float:
        return await asyncio.to_thread(self.predict, audio, sample_rate)

    def predict(self, audio: np.ndarray, sample_rate: int) -> float:
        """Blocking :meth:`predict_end_of_turn` (for benchmarks and tools)."""
        session, features = self._load()
        x = resample(to_float32(np.asarray(audio).reshape(-1)), sample_rate, _RATE)
        n = _RATE * _SECONDS
        x = x[-n:] if len(x) >= n else np.pad(x, (n - len(x), 0))  # the latest 8 s, end-aligned
        # the model was trained on waveforms scaled to zero mean and unit variance
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        mel = features(x, padding=0)[:, : n // 160]
        (probability,) = session.run(None, {"input_features": mel[np.newaxis].astype(np.float32)})
        return float(np.asarray(probability).reshape(-1)[0])

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort  # type: ignore[import-untyped]
                    from faster_whisper.feature_extractor import (  # type: ignore[import-untyped]
                        FeatureExtractor,
                    )
                except ImportError as e:
                    raise SmartTurnUnavailable(
                        f"Smart Turn needs {e.name}: pip install 'voicetui[local,smart-turn]'"
                    ) from e
                path = self._model_path or bundled_model_path()
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._cpu_threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._features = FeatureExtractor(feature_size=80, chunk_length=_SECONDS)
            return self._session, self._features
