"""OpenAI and OpenAI-compatible servers (llama.cpp's server, vLLM, Ollama, LM Studio,
speaches...) for the LLM, STT and TTS slots, on the official ``openai`` client.

``api_key`` / ``base_url`` default from OPENAI_API_KEY / OPENAI_BASE_URL; a local server
needs only ``base_url="http://127.0.0.1:8080/v1"``."""

from __future__ import annotations

from .llm import LLM
from .stt import STT
from .tts import TTS

__all__ = ["LLM", "STT", "TTS"]
