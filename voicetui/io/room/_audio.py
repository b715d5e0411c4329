"""Channel-count conversion for frames whose layout differs from the pipeline's."""

from __future__ import annotations

import numpy as np
from livekit import rtc


def remix(frame: rtc.AudioFrame, channels: int) -> rtc.AudioFrame:
    """Mix down to mono, or copy the first channel to ``channels``."""
    if frame.num_channels == channels:
        return frame
    data = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)
    if channels == 1:
        out = data.mean(axis=1).astype(np.int16)
    else:
        out = np.repeat(data[:, :1], channels, axis=1)
    return rtc.AudioFrame(out.tobytes(), frame.sample_rate, channels, frame.samples_per_channel)
