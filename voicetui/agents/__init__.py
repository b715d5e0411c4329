"""voicetui's voice-agent framework, modeled on LiveKit Agents' ``voice`` module."""

from __future__ import annotations

from . import llm, metrics, stt, tts, vad
from .exceptions import LLMError, ModelError, STTError, TTSError
from .llm import ChatContext, StopResponse, ToolError, function_tool
from .turn_detector import TurnDetector
from .types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions
from .voice import (
    Agent,
    AgentSession,
    ModelSettings,
    RunContext,
    RunResult,
    SpeechHandle,
)

__all__ = [
    "DEFAULT_API_CONNECT_OPTIONS",
    "NOT_GIVEN",
    "APIConnectOptions",
    "Agent",
    "AgentSession",
    "ChatContext",
    "LLMError",
    "ModelError",
    "ModelSettings",
    "RunContext",
    "RunResult",
    "STTError",
    "SpeechHandle",
    "StopResponse",
    "TTSError",
    "ToolError",
    "TurnDetector",
    "function_tool",
    "llm",
    "metrics",
    "stt",
    "tts",
    "vad",
]
