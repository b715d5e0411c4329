"""A scriptable LLM: replies, tool calls, time to first token, token rate and errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import LLMError
from ..llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChatMessage,
    ChoiceDelta,
    CompletionUsage,
    FunctionTool,
    FunctionToolCall,
    LLMStream,
    ToolChoice,
)
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions


@dataclass
class FakeToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)

    def raw_arguments(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class FakeLLMResponse:
    """One scripted completion. ``input`` (optional) must equal the last user message's text."""

    content: str = ""
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    input: str | None = None
    ttft: float = 0.0
    tokens_per_second: float = 0.0
    """0 = all content at once; else one word-token every 1/tokens_per_second seconds."""
    error: LLMError | None = None
    """Raised after ``ttft`` (before any content)."""


@dataclass
class FakeLLMCall:
    chat_ctx: ChatContext
    tools: list[FunctionTool]
    tool_choice: ToolChoice | None


class FakeLLM(LLM):
    """Replies follow the script in order; a response with ``input`` set is used only when
    the last user message matches. Every call is recorded in :attr:`calls`."""

    def __init__(self, responses: Sequence[FakeLLMResponse] = (), *, default: str | None = None):
        super().__init__()
        self._script = list(responses)
        self._default = default
        self.calls: list[FakeLLMCall] = []

    @property
    def model(self) -> str:
        return "fake-llm"

    @property
    def provider(self) -> str:
        return "fake"

    def add(self, *responses: FakeLLMResponse) -> None:
        self._script.extend(responses)

    @property
    def pending(self) -> list[FakeLLMResponse]:
        """The scripted responses not used yet, in order."""
        return list(self._script)

    def _next_response(self, chat_ctx: ChatContext) -> FakeLLMResponse:
        last_user = next(
            (
                it
                for it in reversed(chat_ctx.items)
                if isinstance(it, ChatMessage) and it.role == "user"
            ),
            None,
        )
        text = last_user.text_content if last_user else None
        for i, r in enumerate(self._script):
            if r.input is None or r.input == text:
                return self._script.pop(i)
        if self._default is not None:
            return FakeLLMResponse(content=self._default)
        raise LLMError(f"FakeLLM has no scripted response for {text!r}", recoverable=False)

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        self.calls.append(FakeLLMCall(chat_ctx.copy(), list(tools or []), tool_choice))
        return _FakeLLMStream(
            self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice
        )


class _FakeLLMStream(LLMStream):
    async def _run(self) -> None:
        llm = self._llm
        assert isinstance(llm, FakeLLM)
        resp = llm._next_response(self._chat_ctx)
        if resp.ttft > 0:
            await asyncio.sleep(resp.ttft)
        if resp.error is not None:
            raise resp.error
        words = resp.content.split(" ") if resp.content else []
        if resp.tokens_per_second > 0:
            for i, w in enumerate(words):
                if i > 0:
                    await asyncio.sleep(1.0 / resp.tokens_per_second)
                self._emit(
                    ChatChunk(
                        id=self._request_id, delta=ChoiceDelta(content=w if i == 0 else f" {w}")
                    )
                )
        elif words:
            self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(content=resp.content)))
        if resp.tool_calls and self._tool_choice != "none":
            self._emit(
                ChatChunk(
                    id=self._request_id,
                    delta=ChoiceDelta(
                        tool_calls=[
                            FunctionToolCall(name=c.name, arguments=c.raw_arguments())
                            for c in resp.tool_calls
                        ]
                    ),
                )
            )
        prompt = sum(len((m.text_content or "").split()) for m in self._chat_ctx.messages())
        self._emit(
            ChatChunk(
                id=self._request_id,
                usage=CompletionUsage(
                    completion_tokens=len(words),
                    prompt_tokens=prompt,
                    total_tokens=prompt + len(words),
                ),
            )
        )
