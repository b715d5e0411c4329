"""voicetui: talk to, debug and measure voice agents from your terminal."""

from __future__ import annotations

__version__ = "0.1.0"
