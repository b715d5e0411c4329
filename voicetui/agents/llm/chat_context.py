"""The conversation as data: messages, function calls and their outputs, agent handoffs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, Field, TypeAdapter

ChatRole: TypeAlias = Literal["developer", "system", "user", "assistant"]


def _short_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


LatencyStageName = Literal[
    "endpointing", "on_user_turn_completed", "llm", "tools", "handoff", "tts", "playout"
]
"""The stages of a turn's latency, in the order they happen:

- ``endpointing``: the user's voice ended → the turn was committed (the VAD's silence, the
  final transcript, the end-of-turn model, the endpointing delay)
- ``on_user_turn_completed``: the agent's hook
- ``llm``: → the LLM's first token (a round that called tools: → its last token)
- ``tools``: the round's tool calls ran (all of them, concurrently)
- ``handoff``: a tool handed over to another agent → its reply's LLM request
- ``tts``: the first token → the TTS's first audio (sentence aggregation and synthesis)
- ``playout``: → the first frame reached the device (or the text output, without audio)
"""


class LatencyStage(BaseModel):
    name: LatencyStageName
    seconds: float


class MetricsReport(BaseModel):
    """Per-turn latency report attached to messages (seconds; None when not measured): a user
    message says when the voice started and stopped and how its turn ended, an assistant
    message how long the answer took. Readable as LiveKit's ``MetricsReport`` dict too
    (``report["e2e_latency"]``, ``report.get(...)``, ``in``: only the measured keys)."""

    started_speaking_at: float | None = None
    stopped_speaking_at: float | None = None
    transcription_delay: float | None = None
    """The user's voice ended → the final transcript."""
    end_of_turn_delay: float | None = None
    on_user_turn_completed_delay: float | None = None
    """How long the agent's ``on_user_turn_completed`` took."""
    llm_node_ttft: float | None = None
    tts_node_ttfb: float | None = None
    e2e_latency: float | None = None
    """The user's turn ended → the agent's first audio (or first text without audio)."""
    typed_input: bool = False
    """The turn was typed: e2e counts from when the text was sent."""
    turn_id: str | None = None
    """The user turn this answers (every metric of the turn carries it)."""
    latency_stages: list[LatencyStage] = Field(default_factory=list)
    """Where ``e2e_latency`` went, stage by stage; they add up to it."""

    # --- LiveKit's dict view (a TypedDict there: only the keys that were measured) ---------
    def _measured(self) -> dict[str, Any]:
        return {
            k: v for k, v in self.model_dump(exclude={"latency_stages"}).items() if v is not None
        }

    def __getitem__(self, key: str) -> Any:
        value = self._measured().get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._measured()

    def get(self, key: str, default: Any = None) -> Any:
        return self._measured().get(key, default)

    def keys(self) -> list[str]:
        return list(self._measured())


class ChatMessage(BaseModel):
    type: Literal["message"] = "message"
    id: str = Field(default_factory=lambda: _short_id("item"))
    role: ChatRole
    content: list[str] = Field(default_factory=list)
    interrupted: bool = False
    created_at: float = Field(default_factory=time.time)
    metrics: MetricsReport = Field(default_factory=MetricsReport)

    @property
    def text_content(self) -> str | None:
        text = "\n".join(c for c in self.content if c)
        return text if text else None


class FunctionCall(BaseModel):
    type: Literal["function_call"] = "function_call"
    id: str = Field(default_factory=lambda: _short_id("item"))
    call_id: str
    name: str
    arguments: str
    created_at: float = Field(default_factory=time.time)


class FunctionCallOutput(BaseModel):
    type: Literal["function_call_output"] = "function_call_output"
    id: str = Field(default_factory=lambda: _short_id("item"))
    call_id: str
    name: str = ""
    output: str
    is_error: bool
    created_at: float = Field(default_factory=time.time)


class AgentHandoff(BaseModel):
    type: Literal["agent_handoff"] = "agent_handoff"
    id: str = Field(default_factory=lambda: _short_id("item"))
    old_agent_id: str | None
    new_agent_id: str
    created_at: float = Field(default_factory=time.time)


ChatItem: TypeAlias = Annotated[
    ChatMessage | FunctionCall | FunctionCallOutput | AgentHandoff, Field(discriminator="type")
]
_ITEM_ADAPTER: TypeAdapter[ChatItem] = TypeAdapter(ChatItem)

_INSTRUCTION_ROLES = ("system", "developer")

ChatItemType = Literal["message", "function_call", "function_call_output", "agent_handoff"]


class ChatContext:
    """An ordered list of chat items, the input of :meth:`LLM.chat` and the session's history."""

    def __init__(self, items: Iterable[ChatItem] | None = None) -> None:
        self._items: list[ChatItem] = list(items or [])

    @classmethod
    def empty(cls) -> ChatContext:
        return cls()

    @property
    def items(self) -> list[ChatItem]:
        return self._items

    @items.setter
    def items(self, items: list[ChatItem]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"ChatContext({len(self._items)} items)"

    def add_message(
        self,
        *,
        role: ChatRole,
        content: str | list[str],
        id: str | None = None,
        interrupted: bool = False,
        created_at: float | None = None,
    ) -> ChatMessage:
        kwargs: dict[str, Any] = {}
        if id is not None:
            kwargs["id"] = id
        if created_at is not None:
            kwargs["created_at"] = created_at
        msg = ChatMessage(
            role=role,
            content=[content] if isinstance(content, str) else list(content),
            interrupted=interrupted,
            **kwargs,
        )
        self.insert(msg)
        return msg

    def insert(self, item: ChatItem | Sequence[ChatItem]) -> None:
        """Insert items keeping the list ordered by ``created_at`` (stable for equal times)."""
        for it in [item] if not isinstance(item, Sequence) else item:
            idx = len(self._items)
            while idx > 0 and self._items[idx - 1].created_at > it.created_at:
                idx -= 1
            self._items.insert(idx, it)

    def append(self, item: ChatItem) -> None:
        self._items.append(item)

    def get_by_id(self, item_id: str) -> ChatItem | None:
        return next((it for it in self._items if it.id == item_id), None)

    def index_by_id(self, item_id: str) -> int | None:
        return next((i for i, it in enumerate(self._items) if it.id == item_id), None)

    def copy(
        self,
        *,
        exclude_function_call: bool = False,
        exclude_instructions: bool = False,
        exclude_handoff: bool = False,
    ) -> ChatContext:
        items: list[ChatItem] = []
        for it in self._items:
            if exclude_function_call and it.type in ("function_call", "function_call_output"):
                continue
            if exclude_instructions and it.type == "message" and it.role in _INSTRUCTION_ROLES:
                continue
            if exclude_handoff and it.type == "agent_handoff":
                continue
            items.append(it)
        return ChatContext(items)

    def truncate(self, *, max_items: int) -> ChatContext:
        """Keep the last ``max_items`` items (plus leading instructions), never starting the kept
        window on a function call output whose call was cut away."""
        if max_items <= 0:
            raise ValueError("max_items must be > 0")
        first = self._items[0] if self._items else None
        head = (
            [first] if isinstance(first, ChatMessage) and first.role in _INSTRUCTION_ROLES else []
        )
        tail = self._items[len(head) :][-max_items:]
        while tail and tail[0].type == "function_call_output":
            tail = tail[1:]
        self._items = head + tail
        return self

    def messages(self) -> list[ChatMessage]:
        return [it for it in self._items if isinstance(it, ChatMessage)]

    def to_dict(self, *, exclude_timestamp: bool = False) -> dict[str, Any]:
        exclude = {"created_at"} if exclude_timestamp else None
        return {"items": [it.model_dump(mode="json", exclude=exclude) for it in self._items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatContext:
        return cls(_ITEM_ADAPTER.validate_python(it) for it in data.get("items", []))
