"""Voice activity detection with WebRTC's VAD (the ``webrtcvad-wheels`` package).

Each 30 ms window gets a binary decision; an exponential moving average of those decisions is the
speech probability compared to ``activation_threshold``. About 4 µs per window: it runs inline
on the event loop. Install with ``pip install 'voicetui[local]'``."""

from __future__ import annotations

from typing import Any

import numpy as np

from voicetui.agents.exceptions import VADError
from voicetui.agents.vad import VAD as _BaseVAD
from voicetui.agents.vad import VADCapabilities, VADStream

from ...agents.utils.windowed_vad import SegmenterOptions, WindowedVADStream

__all__ = ["VAD"]

_RATES = (8000, 16000, 32000, 48000)
_WINDOW_MS = 30
_SMOOTHING = 0.35
"""Weight of the newest decision in the moving average: two speech windows in a row from
silence reach 0.58, two silence windows from speech fall to 0.42."""


def _import_webrtcvad() -> Any:
    try:
        import webrtcvad  # type: ignore[import-untyped]
    except ImportError as e:
        raise VADError(
            "webrtcvad is not installed: pip install 'voicetui[local]'", recoverable=False
        ) from e
    return webrtcvad


class VAD(_BaseVAD):
    """``mode`` is WebRTC's aggressiveness, 0 (most speech kept) to 3 (fewest false alarms)."""

    def __init__(
        self,
        *,
        mode: int = 3,
        activation_threshold: float = 0.5,
        min_speech_duration: float = 0.1,
        min_silence_duration: float = 0.4,
        prefix_padding_duration: float = 0.3,
        sample_rate: int = 16000,
    ) -> None:
        if mode not in (0, 1, 2, 3):
            raise ValueError("mode must be 0, 1, 2 or 3")
        if sample_rate not in _RATES:
            raise ValueError(f"sample_rate must be one of {_RATES}")
        super().__init__(
            capabilities=VADCapabilities(update_interval=_WINDOW_MS / 1000, sample_rate=sample_rate)
        )
        self.mode = mode
        self.sample_rate = sample_rate
        self.opts = SegmenterOptions(
            activation_threshold=activation_threshold,
            deactivation_threshold=activation_threshold,
            min_speech_duration=min_speech_duration,
            min_silence_duration=min_silence_duration,
            prefix_padding_duration=prefix_padding_duration,
        )

    def stream(self) -> VADStream:
        return _WebRTCVADStream(self)


class _WebRTCVADStream(WindowedVADStream):
    def __init__(self, vad: VAD) -> None:
        self._detector = _import_webrtcvad().Vad(vad.mode)
        self._rate = vad.sample_rate
        self._ema = 0.0
        window = vad.sample_rate * _WINDOW_MS // 1000
        super().__init__(vad, opts=vad.opts, model_rate=vad.sample_rate, window=window)

    async def _infer(self, windows: np.ndarray) -> np.ndarray:
        return self._infer_sync(windows)

    def _infer_sync(self, windows: np.ndarray) -> np.ndarray:
        """Smoothed probabilities for ``windows``; cheap enough to run on the loop."""
        pcm = (np.clip(windows, -1.0, 1.0) * 32767.0).astype(np.int16)
        out = np.empty(len(pcm), dtype=np.float32)
        ema = self._ema
        is_speech = self._detector.is_speech
        for i, row in enumerate(pcm):
            decision = 1.0 if is_speech(row.tobytes(), self._rate) else 0.0
            ema += _SMOOTHING * (decision - ema)
            out[i] = ema
        self._ema = ema
        return out
