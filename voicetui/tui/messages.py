"""Textual messages the bridge posts to the app: one per kind of runtime event, plus the outcome
of user commands. They carry the runtime's (immutable) event objects as they came."""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message

from ..agents.metrics import EOUMetrics, LLMMetrics, STTMetrics, TTSMetrics, VADMetrics
from ..agents.voice.events import (
    AgentState,
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    UserInputTranscribedEvent,
    UserState,
)
from ..runtime.api import (
    AudioLevels,
    LogRecordEvent,
    ModeChanged,
    ModelLoading,
    Notice,
    RuntimeStatus,
    ToolBreak,
    ToolRerun,
)

AnyMetrics = LLMMetrics | STTMetrics | TTSMetrics | VADMetrics | EOUMetrics


class BridgeWakeup(Message):
    """Events are waiting in the bridge (at most one of these is in flight)."""


class RuntimeBatch(Message):
    """What the bridge had queued, in order: the app handles each message as if it had been
    posted alone (``on_<message>``), without a trip through the queue for each."""

    def __init__(self, messages: list[Message]) -> None:
        super().__init__()
        self.messages = messages


class UserTranscript(Message):
    def __init__(self, event: UserInputTranscribedEvent) -> None:
        super().__init__()
        self.event = event


class AgentTranscript(Message):
    """The agent's text so far for one speech (revealed as it is spoken)."""

    def __init__(self, speech_id: str, text: str, final: bool) -> None:
        super().__init__()
        self.speech_id = speech_id
        self.text = text
        self.final = final


class AgentStateUpdate(Message):
    def __init__(self, state: AgentState, at: float) -> None:
        super().__init__()
        self.state = state
        self.at = at
        """When it changed (wall clock)."""


class UserStateUpdate(Message):
    def __init__(self, state: UserState, at: float) -> None:
        super().__init__()
        self.state = state
        self.at = at
        """When it changed (wall clock; the VAD's start and end of the voice, back-dated)."""


class ConversationItem(Message):
    def __init__(self, event: ConversationItemAddedEvent) -> None:
        super().__init__()
        self.event = event


class ToolsStarted(Message):
    def __init__(self, event: FunctionToolsStartedEvent) -> None:
        super().__init__()
        self.event = event


class ToolsExecuted(Message):
    def __init__(self, event: FunctionToolsExecutedEvent) -> None:
        super().__init__()
        self.event = event


class MetricsUpdate(Message):
    def __init__(self, metrics: AnyMetrics) -> None:
        super().__init__()
        self.metrics = metrics


class FalseInterruption(Message):
    def __init__(self, resumed: bool, at: float) -> None:
        super().__init__()
        self.resumed = resumed
        self.at = at


class SessionError(Message):
    def __init__(self, event: ErrorEvent) -> None:
        super().__init__()
        self.event = event


class SessionClosed(Message):
    def __init__(self, event: CloseEvent) -> None:
        super().__init__()
        self.event = event


class ModeUpdate(Message):
    def __init__(self, event: ModeChanged) -> None:
        super().__init__()
        self.event = event


class StatusUpdate(Message):
    def __init__(self, status: RuntimeStatus) -> None:
        super().__init__()
        self.status = status


class LevelsUpdate(Message):
    def __init__(self, levels: AudioLevels) -> None:
        super().__init__()
        self.levels = levels


class LoadingUpdate(Message):
    def __init__(self, event: ModelLoading) -> None:
        super().__init__()
        self.event = event


class NoticePosted(Message):
    def __init__(self, notice: Notice) -> None:
        super().__init__()
        self.notice = notice


class ToolBreakRequested(Message):
    def __init__(self, event: ToolBreak) -> None:
        super().__init__()
        self.event = event


class ReplyWasCutOff(Message):
    """A reply was interrupted before any of it was heard."""


class ToolRerunDone(Message):
    def __init__(self, event: ToolRerun) -> None:
        super().__init__()
        self.event = event


class LogBatch(Message):
    """Log records in arrival order; ``dropped`` were left out because the UI fell behind."""

    def __init__(self, records: list[LogRecordEvent], dropped: int = 0) -> None:
        super().__init__()
        self.records = records
        self.dropped = dropped


class CommandFailed(Message):
    """A command sent to the runtime failed; ``error`` is the whole sentence to show."""

    def __init__(self, label: str, error: str) -> None:
        super().__init__()
        self.label = label
        self.error = error


class CommandDone(Message):
    """A command finished and its follow-up must run on the UI thread."""

    def __init__(self, label: str, then: Callable[[], None]) -> None:
        super().__init__()
        self.label = label
        self.then = then
