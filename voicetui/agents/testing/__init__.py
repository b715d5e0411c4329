"""Scriptable fakes of every model and of audio I/O, for tests and benchmarks."""

from __future__ import annotations

from .fake_io import FakeAudioInput, FakeAudioOutput, FakeTextOutput, Utterance
from .fake_llm import FakeLLM, FakeLLMCall, FakeLLMResponse, FakeToolCall
from .fake_tts import FakeTTS
from .fake_turn_detector import FakeTurnDetector, TurnDetectorCall
from .fake_vad_stt import FakeSTT, FakeVAD
from .timeline import (
    LLMReply,
    ScriptedToolCall,
    Timeline,
    TimelineAudioInput,
    TimelineLLM,
    TimelineSTT,
    TimelineTTS,
    TimelineVAD,
    TTSAudio,
    UserSpeech,
)

__all__ = [
    "FakeAudioInput",
    "FakeAudioOutput",
    "FakeLLM",
    "FakeLLMCall",
    "FakeLLMResponse",
    "FakeSTT",
    "FakeTTS",
    "FakeTextOutput",
    "FakeToolCall",
    "FakeTurnDetector",
    "FakeVAD",
    "LLMReply",
    "ScriptedToolCall",
    "TTSAudio",
    "Timeline",
    "TimelineAudioInput",
    "TimelineLLM",
    "TimelineSTT",
    "TimelineTTS",
    "TimelineVAD",
    "TurnDetectorCall",
    "UserSpeech",
    "Utterance",
]
