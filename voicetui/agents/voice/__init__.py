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
    FunctionToolsStartedEvent,
    MetricsCollectedEvent,
    RunContext,
    SessionEvent,
    SpeechCreatedEvent,
    ToolExecution,
    UserInputTranscribedEvent,
    UserState,
    UserStateChangedEvent,
)
from .generation import (
    MockToolError,
    MockToolResult,
    RunTool,
    ToolCallDecision,
    ToolCallInterceptor,
)
from .io import AgentInput, AgentOutput, AudioInput, AudioOutput, PlaybackFinishedEvent, TextOutput
from .run_result import RunResult
from .speech_handle import SpeechHandle
from .turn_options import TurnDetectionMode, TurnOptions, TurnOptionsError, TurnOverrides

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
    "FunctionToolsStartedEvent",
    "MetricsCollectedEvent",
    "MockToolError",
    "MockToolResult",
    "ModelSettings",
    "PlaybackFinishedEvent",
    "RunContext",
    "RunResult",
    "RunTool",
    "SessionConnectOptions",
    "SessionEvent",
    "SpeechCreatedEvent",
    "SpeechHandle",
    "TextOutput",
    "ToolCallDecision",
    "ToolCallInterceptor",
    "ToolExecution",
    "TurnDetectionMode",
    "TurnOptions",
    "TurnOptionsError",
    "TurnOverrides",
    "UserInputTranscribedEvent",
    "UserState",
    "UserStateChangedEvent",
]
