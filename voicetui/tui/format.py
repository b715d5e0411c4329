"""Small text helpers shared by the widgets (a call and a shortened text are written as every
renderer writes them: ``format_call`` and ``shorten`` of :mod:`voicetui.conversation`)."""

from __future__ import annotations

import json
import math
from typing import Any


def format_duration(seconds: float | None) -> str:
    """``12 ms``, ``1.23 s``; ``—`` when unknown."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "—"
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def format_seconds(seconds: float | None) -> str:
    """A latency cell: ``0.42``; ``—`` when unknown."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "—"
    return f"{seconds:.2f}"


def parse_json(text: str) -> Any:
    """The JSON value of ``text``, or ``text`` itself when it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def pretty_json(text: str) -> str:
    """``text`` re-indented if it is JSON (objects and arrays), else as is."""
    value = parse_json(text)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return text


def format_elapsed(seconds: float) -> str:
    """``05:07`` or ``1:02:03``."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    mins, secs = divmod(rest, 60)
    return f"{h}:{mins:02d}:{secs:02d}" if h else f"{mins:02d}:{secs:02d}"


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank-interpolated percentile (``p`` in 0..100); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (p / 100.0) * (len(ordered) - 1)
    lo = math.floor(rank)
    hi = math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)
