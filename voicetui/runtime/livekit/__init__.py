"""Hosting LiveKit Agents agents: voicetui as the console of ``python -m livekit.agents console``
(see docs/livekit-agents.md)."""

from __future__ import annotations

from .runtime import UNSUPPORTED, LiveKitAgentRuntime

__all__ = ["UNSUPPORTED", "LiveKitAgentRuntime"]
