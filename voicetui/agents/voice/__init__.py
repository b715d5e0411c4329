"""The voice pipeline: sessions, agents, speech handles, events and I/O."""

from __future__ import annotations

from .agent import Agent, ModelSettings
from .agent_activity import AgentActivity
from .agent_session import AgentSession, AgentSessionOptions, SessionConnectOptions
from .events import (
    AgentFalseInterruptionEvent,
    AgentState,
    AgentStateChangedEvent,
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    MetricsCollectedEvent,
    RunContext,
    SessionEvent,
    SpeechCreatedEvent,
    ToolExecution,
    UserInputTranscribedEvent,
    UserState,
    UserStateChangedEvent,
)
from .io import AgentInput, AgentOutput, AudioInput, AudioOutput, PlaybackFinishedEvent, TextOutput
from .run_result import RunResult
from .speech_handle import SpeechHandle

__all__ = [
    "Agent",
    "AgentActivity",
    "AgentFalseInterruptionEvent",
    "AgentInput",
    "AgentOutput",
    "AgentSession",
    "AgentSessionOptions",
    "AgentState",
    "AgentStateChangedEvent",
    "AudioInput",
    "AudioOutput",
    "CloseEvent",
    "CloseReason",
    "ConversationItemAddedEvent",
    "ErrorEvent",
    "FunctionToolsExecutedEvent",
    "MetricsCollectedEvent",
    "ModelSettings",
    "PlaybackFinishedEvent",
    "RunContext",
    "RunResult",
    "SessionConnectOptions",
    "SessionEvent",
    "SpeechCreatedEvent",
    "SpeechHandle",
    "TextOutput",
    "ToolExecution",
    "UserInputTranscribedEvent",
    "UserState",
    "UserStateChangedEvent",
]
