"""Voice activity detection with Silero VAD v6 (the ONNX model shipped inside faster-whisper),
run by onnxruntime on 32 ms windows at 16 kHz.

Inference (~60-180 µs a window) runs on a worker thread, in batches of whatever windows arrived
meanwhile, so the event loop never waits on it. A batch whose peak is below -70 dBFS (a muted or
idle mic, digital silence) is not inferred: its probabilities are 0. Install with ``pip install 'voicetui[local]'``.

    vad = silero.VAD.load()           # load the model now (once per process, shared)
    stream = vad.stream()
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from voicetui.agents.utils.windowed_vad import SegmenterOptions, WindowedVADStream
from voicetui.agents.vad import VAD as _BaseVAD
from voicetui.agents.vad import VADCapabilities, VADStream

from ._model import SAMPLE_RATE, WINDOW, SileroState, default_model_path, infer, load_session

__all__ = ["VAD"]

_HYSTERESIS = 0.15
_SILENCE_PEAK = 10**-3.5  # -70 dBFS: windows quieter than this are silence without inference


class VAD(_BaseVAD):
    """Speech starts when Silero's probability reaches ``activation_threshold`` for
    ``min_speech_duration``, and ends after ``min_silence_duration`` below
    ``activation_threshold - 0.15``. ``model_path`` overrides the bundled ONNX file."""

    def __init__(
        self,
        *,
        activation_threshold: float = 0.5,
        min_speech_duration: float = 0.1,
        min_silence_duration: float = 0.4,
        prefix_padding_duration: float = 0.3,
        sample_rate: int = SAMPLE_RATE,
        model_path: str | Path | None = None,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"the Silero v6 model runs at {SAMPLE_RATE} Hz only")
        super().__init__(
            capabilities=VADCapabilities(
                update_interval=WINDOW / SAMPLE_RATE, sample_rate=SAMPLE_RATE
            )
        )
        self.opts = SegmenterOptions(
            activation_threshold=activation_threshold,
            deactivation_threshold=max(activation_threshold - _HYSTERESIS, 0.01),
            min_speech_duration=min_speech_duration,
            min_silence_duration=min_silence_duration,
            prefix_padding_duration=prefix_padding_duration,
        )
        self._model_path = Path(model_path) if model_path is not None else None
        self._session: Any = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def load(
        cls,
        *,
        activation_threshold: float = 0.5,
        min_speech_duration: float = 0.1,
        min_silence_duration: float = 0.4,
        prefix_padding_duration: float = 0.3,
        sample_rate: int = SAMPLE_RATE,
        model_path: str | Path | None = None,
    ) -> VAD:
        """A VAD whose model is loaded now (tens of ms; the session is shared by every VAD and
        stream of the process). Raises VADError if onnxruntime or the model is missing.
        ``VAD(...)`` instead loads it on the worker thread at the first inference."""
        vad = cls(
            activation_threshold=activation_threshold,
            min_speech_duration=min_speech_duration,
            min_silence_duration=min_silence_duration,
            prefix_padding_duration=prefix_padding_duration,
            sample_rate=sample_rate,
            model_path=model_path,
        )
        vad._ensure_session()
        return vad

    def _ensure_session(self) -> Any:
        with self._lock:
            if self._session is None:
                path = self._model_path or default_model_path()
                self._session = load_session(path)
            return self._session

    def _get_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silero-vad")
        return self._executor

    def stream(self) -> VADStream:
        return _SileroStream(self)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class _SileroStream(WindowedVADStream):
    def __init__(self, vad: VAD) -> None:
        self._silero = vad
        self._state = SileroState.initial()
        super().__init__(vad, opts=vad.opts, model_rate=SAMPLE_RATE, window=WINDOW)

    async def _infer(self, windows: np.ndarray) -> np.ndarray:
        if windows.size and float(np.abs(windows).max()) < _SILENCE_PEAK:
            # (near-)digital silence: probability 0 without waking the worker thread; the
            # model's recurrent state carries on from the last inferred window
            return np.zeros(windows.shape[0], dtype=np.float32)
        loop = asyncio.get_running_loop()
        probs, self._state = await loop.run_in_executor(
            self._silero._get_executor(), self._infer_sync, windows, self._state
        )
        return probs

    def _infer_sync(
        self, windows: np.ndarray, state: SileroState
    ) -> tuple[np.ndarray, SileroState]:
        return infer(self._silero._ensure_session(), windows, state)
