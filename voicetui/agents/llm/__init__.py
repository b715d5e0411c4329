"""Chat models: chat context, function tools and the LLM interface."""

from __future__ import annotations

from ..exceptions import LLMError
from .chat_context import (
    AgentHandoff,
    ChatContext,
    ChatItem,
    ChatMessage,
    ChatRole,
    FunctionCall,
    FunctionCallOutput,
    LatencyStage,
    LatencyStageName,
    MetricsReport,
)
from .fallback_adapter import AvailabilityChangedEvent, FallbackAdapter, FallbackLLMStream
from .llm import LLM, ChatChunk, ChoiceDelta, CompletionUsage, FunctionToolCall, LLMStream
from .tool_context import (
    FunctionTool,
    StopResponse,
    ToolArgumentsError,
    ToolChoice,
    ToolError,
    find_function_tools,
    function_tool,
)

__all__ = [
    "LLM",
    "AgentHandoff",
    "AvailabilityChangedEvent",
    "ChatChunk",
    "ChatContext",
    "ChatItem",
    "ChatMessage",
    "ChatRole",
    "ChoiceDelta",
    "CompletionUsage",
    "FallbackAdapter",
    "FallbackLLMStream",
    "FunctionCall",
    "FunctionCallOutput",
    "FunctionTool",
    "FunctionToolCall",
    "LLMError",
    "LLMStream",
    "LatencyStage",
    "LatencyStageName",
    "MetricsReport",
    "StopResponse",
    "ToolArgumentsError",
    "ToolChoice",
    "ToolError",
    "find_function_tools",
    "function_tool",
]
