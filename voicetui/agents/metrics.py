"""Metrics emitted by models and the pipeline (``metrics_collected``), and a usage summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, Field


class _MetricsBase(BaseModel):
    timestamp: float = Field(default_factory=time.time)
    label: str = ""
    request_id: str = ""
    turn_id: str | None = None
    """The user turn this was part of (the same on every metric of one turn)."""


class LLMMetrics(_MetricsBase):
    type: Literal["llm_metrics"] = "llm_metrics"
    ttft: float = -1.0
    duration: float = 0.0
    cancelled: bool = False
    completion_tokens: int = 0
    prompt_tokens: int = 0
    prompt_cached_tokens: int = 0
    total_tokens: int = 0
    tokens_per_second: float = 0.0
    speech_id: str | None = None


class STTMetrics(_MetricsBase):
    type: Literal["stt_metrics"] = "stt_metrics"
    duration: float = 0.0
    audio_duration: float = 0.0
    streamed: bool = False


class TTSMetrics(_MetricsBase):
    type: Literal["tts_metrics"] = "tts_metrics"
    ttfb: float = -1.0
    duration: float = 0.0
    audio_duration: float = 0.0
    cancelled: bool = False
    characters_count: int = 0
    streamed: bool = False
    speech_id: str | None = None


class VADMetrics(_MetricsBase):
    type: Literal["vad_metrics"] = "vad_metrics"
    idle_time: float = 0.0
    inference_duration_total: float = 0.0
    inference_count: int = 0


class EOUMetrics(_MetricsBase):
    type: Literal["eou_metrics"] = "eou_metrics"
    end_of_utterance_delay: float = 0.0
    transcription_delay: float = 0.0
    on_user_turn_completed_delay: float = 0.0
    speech_id: str | None = None
    end_of_turn_probability: float | None = None
    """The end-of-turn model's P(done) at the last pause (None: no model in use)."""
    end_of_turn_threshold: float | None = None
    """At or above it the turn ended after ``min_endpointing_delay``, below it after up to
    ``max_endpointing_delay``."""


AgentMetrics: TypeAlias = Annotated[
    LLMMetrics | STTMetrics | TTSMetrics | VADMetrics | EOUMetrics, Field(discriminator="type")
]


@dataclass
class UsageSummary:
    llm_prompt_tokens: int = 0
    llm_prompt_cached_tokens: int = 0
    llm_completion_tokens: int = 0
    tts_characters_count: int = 0
    tts_audio_duration: float = 0.0
    stt_audio_duration: float = 0.0


class UsageCollector:
    """Sums tokens, characters and audio seconds over a session's metrics."""

    def __init__(self) -> None:
        self._summary = UsageSummary()

    def __call__(
        self, metrics: LLMMetrics | STTMetrics | TTSMetrics | VADMetrics | EOUMetrics
    ) -> None:
        self.collect(metrics)

    def collect(
        self, metrics: LLMMetrics | STTMetrics | TTSMetrics | VADMetrics | EOUMetrics
    ) -> None:
        s = self._summary
        if isinstance(metrics, LLMMetrics):
            s.llm_prompt_tokens += metrics.prompt_tokens
            s.llm_prompt_cached_tokens += metrics.prompt_cached_tokens
            s.llm_completion_tokens += metrics.completion_tokens
        elif isinstance(metrics, TTSMetrics):
            s.tts_characters_count += metrics.characters_count
            s.tts_audio_duration += metrics.audio_duration
        elif isinstance(metrics, STTMetrics):
            s.stt_audio_duration += metrics.audio_duration

    def get_summary(self) -> UsageSummary:
        return UsageSummary(**vars(self._summary))
