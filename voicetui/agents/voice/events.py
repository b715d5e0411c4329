"""Session events (pydantic models with a literal ``type`` and ``created_at``) and ``RunContext``."""

from __future__ import annotations

import time
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..llm.chat_context import AgentHandoff, ChatMessage, FunctionCall, FunctionCallOutput
from ..metrics import AgentMetrics
from ..utils.aio import now

if TYPE_CHECKING:
    from .agent_session import AgentSession
    from .speech_handle import SpeechHandle

Userdata_T = TypeVar("Userdata_T")

AgentState: TypeAlias = Literal["initializing", "idle", "listening", "thinking", "speaking"]
UserState: TypeAlias = Literal["listening", "speaking", "away"]

EventTypes: TypeAlias = Literal[
    "user_input_transcribed",
    "agent_state_changed",
    "user_state_changed",
    "conversation_item_added",
    "function_tools_started",
    "function_tools_executed",
    "speech_created",
    "metrics_collected",
    "agent_false_interruption",
    "error",
    "close",
]


class RunContext(Generic[Userdata_T]):
    """Given to tools that declare a parameter of this type: the session, the speech that made
    the call, and the call itself."""

    __voicetui_run_context__ = True

    def __init__(
        self,
        *,
        session: AgentSession[Userdata_T],
        speech_handle: SpeechHandle,
        function_call: FunctionCall,
    ) -> None:
        self._session = session
        self._speech_handle = speech_handle
        self._function_call = function_call

    @property
    def session(self) -> AgentSession[Userdata_T]:
        return self._session

    @property
    def speech_handle(self) -> SpeechHandle:
        return self._speech_handle

    @property
    def function_call(self) -> FunctionCall:
        return self._function_call

    @property
    def userdata(self) -> Userdata_T:
        return self._session.userdata


class _Event(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    created_at: float = Field(default_factory=time.time)
    """Wall-clock time (seconds since the epoch)."""
    loop_time: float = Field(default_factory=now)
    """The session loop's clock (``loop.time()``) at the same instant: differences between
    events are exact, and under a virtual clock (tests) they are the virtual ones."""


class UserInputTranscribedEvent(_Event):
    type: Literal["user_input_transcribed"] = "user_input_transcribed"
    transcript: str
    is_final: bool
    language: str | None = None
    speaker_id: str | None = None


class AgentStateChangedEvent(_Event):
    type: Literal["agent_state_changed"] = "agent_state_changed"
    old_state: AgentState
    new_state: AgentState


class UserStateChangedEvent(_Event):
    type: Literal["user_state_changed"] = "user_state_changed"
    old_state: UserState
    new_state: UserState


class ConversationItemAddedEvent(_Event):
    type: Literal["conversation_item_added"] = "conversation_item_added"
    item: Annotated[ChatMessage | AgentHandoff, Field(discriminator="type")]


class ToolExecution(BaseModel):
    """One tool call of a step: what was asked, what came back, how long it took."""

    call: FunctionCall
    output: FunctionCallOutput
    duration: float
    exception: str | None = None
    """The exception a tool raised (the LLM only sees a generic message for those)."""
    handoff_agent_id: str | None = None
    mocked: bool = False
    """The result was given by a tool-call interceptor (the tool did not run)."""
    cancelled: bool = False
    """The call was cut short (its speech was interrupted and it did not finish in time, or
    its handoff was not applied); ``output`` is an error saying so, for the LLM."""


class FunctionToolsStartedEvent(_Event):
    """A step's tool calls are about to run (a tool-running badge; break-on-tool-call)."""

    type: Literal["function_tools_started"] = "function_tools_started"
    function_calls: list[FunctionCall]
    speech_id: str


class FunctionToolsExecutedEvent(_Event):
    type: Literal["function_tools_executed"] = "function_tools_executed"
    executions: list[ToolExecution]
    speech_id: str

    @property
    def function_calls(self) -> list[FunctionCall]:
        return [e.call for e in self.executions]

    @property
    def function_call_outputs(self) -> list[FunctionCallOutput]:
        return [e.output for e in self.executions]

    def zipped(self) -> list[tuple[FunctionCall, FunctionCallOutput]]:
        return [(e.call, e.output) for e in self.executions]


SpeechSource: TypeAlias = Literal["say", "generate_reply", "tool_response"]


class SpeechCreatedEvent(_Event):
    type: Literal["speech_created"] = "speech_created"
    user_initiated: bool
    source: SpeechSource
    speech_handle: Any = Field(default=None, exclude=True)
    """(Not recorded: a recording's event has none.)"""
    speech_id: str


class MetricsCollectedEvent(_Event):
    type: Literal["metrics_collected"] = "metrics_collected"
    metrics: AgentMetrics


class AgentFalseInterruptionEvent(_Event):
    type: Literal["agent_false_interruption"] = "agent_false_interruption"
    resumed: bool


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    source: str
    """What failed: "llm", "stt", "tts", "vad", "tool", "audio_input", "audio_output", ..."""
    message: str
    recoverable: bool
    error: Any = Field(default=None, exclude=True)


class CloseReason(str, Enum):
    ERROR = "error"
    USER_INITIATED = "user_initiated"
    PARTICIPANT_DISCONNECTED = "participant_disconnected"
    TASK_COMPLETED = "task_completed"


class CloseEvent(_Event):
    type: Literal["close"] = "close"
    reason: CloseReason
    error: str | None = None


SessionEvent: TypeAlias = Annotated[
    UserInputTranscribedEvent
    | AgentStateChangedEvent
    | UserStateChangedEvent
    | ConversationItemAddedEvent
    | FunctionToolsStartedEvent
    | FunctionToolsExecutedEvent
    | SpeechCreatedEvent
    | MetricsCollectedEvent
    | AgentFalseInterruptionEvent
    | ErrorEvent
    | CloseEvent,
    Field(discriminator="type"),
]
