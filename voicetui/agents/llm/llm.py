"""The LLM interface: ``LLM.chat(...)`` returns an :class:`LLMStream` of :class:`ChatChunk`s.

Providers implement :meth:`LLMStream._run`, which pushes chunks with :meth:`LLMStream._emit`.
The base class owns retries (per ``conn_options``), timing and :class:`LLMMetrics`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel, Field

from .._retry import with_retries
from ..exceptions import LLMError
from ..metrics import LLMMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import Chan, ChanClosed, EventEmitter, cancel_and_wait, now
from .chat_context import ChatContext
from .history import HistoryLimits, request_context
from .tool_context import FunctionTool, ToolChoice

logger = logging.getLogger("voicetui.agents.llm")


class FunctionToolCall(BaseModel):
    """A complete tool call as the LLM asked for it (``arguments`` is raw JSON text)."""

    type: Literal["function"] = "function"
    name: str
    arguments: str
    call_id: str = Field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


class CompletionUsage(BaseModel):
    completion_tokens: int
    prompt_tokens: int
    prompt_cached_tokens: int = 0
    total_tokens: int


class ChoiceDelta(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[FunctionToolCall] = Field(default_factory=list)


class ChatChunk(BaseModel):
    id: str
    delta: ChoiceDelta | None = None
    usage: CompletionUsage | None = None


class LLM(ABC, EventEmitter[Literal["metrics_collected", "error", "llm_availability_changed"]]):
    """A chat model. Emits ``metrics_collected`` (LLMMetrics) after each stream
    (``llm_availability_changed`` is only emitted by :class:`FallbackAdapter`)."""

    def __init__(self) -> None:
        super().__init__()
        self._label = f"{type(self).__module__}.{type(self).__name__}"
        self.history_limits = HistoryLimits()
        """What of the history each request carries (:mod:`.history`)."""

    @property
    def label(self) -> str:
        return self._label

    @property
    def model(self) -> str:
        return "unknown"

    @property
    def provider(self) -> str:
        return "unknown"

    @abstractmethod
    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream: ...

    async def aclose(self) -> None:
        """Release the model's resources (connections, worker processes)."""

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class LLMStream(ABC):
    """One streamed completion. Async-iterate for chunks; always ``aclose()`` (or use
    ``async with``). Recoverable errors before the first chunk are retried. An attempt fails
    (recoverably) when no chunk comes for ``conn_options.timeout`` seconds, before the first
    chunk or between two."""

    def __init__(
        self,
        llm: LLM,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None,
        conn_options: APIConnectOptions,
        tool_choice: ToolChoice | None = None,
    ) -> None:
        self._llm = llm
        self._chat_ctx = request_context(chat_ctx, llm.history_limits)
        self._tools = list(tools or [])
        self._tool_choice = tool_choice
        self._conn_options = conn_options
        self._chan: Chan[ChatChunk] = Chan()
        self._request_id = f"llm_{uuid.uuid4().hex[:12]}"
        self._started_at = now()
        self._attempts = 0
        self._ttft: float | None = None
        self._usage: CompletionUsage | None = None
        self._emitted_any = False
        self._text_chars = 0
        self._deadline: asyncio.Timeout | None = None
        self._task = asyncio.create_task(self._main(), name=f"{type(self).__name__}._main")

    @property
    def chat_ctx(self) -> ChatContext:
        """What this request sends: the history within the LLM's ``history_limits``."""
        return self._chat_ctx

    @property
    def tools(self) -> list[FunctionTool]:
        return self._tools

    @abstractmethod
    async def _run(self) -> None:
        """Produce the completion, calling :meth:`_emit` for each chunk. Raise :class:`LLMError`
        (with ``recoverable``) on failure."""

    def _emit(self, chunk: ChatChunk) -> None:
        if self._ttft is None and chunk.delta is not None:
            if chunk.delta.content or chunk.delta.tool_calls:
                self._ttft = now() - self._started_at
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.delta is not None and chunk.delta.content:
            self._text_chars += len(chunk.delta.content)
        self._emitted_any = True
        deadline = self._deadline
        if deadline is not None and not deadline.expired():
            deadline.reschedule(asyncio.get_running_loop().time() + self._conn_options.timeout)
        self._chan.send_nowait(chunk)

    async def _run_attempt(self) -> None:
        """One call of :meth:`_run` under the per-attempt timeout."""
        if self._attempts:  # a retry: its time to first token counts from now
            self._started_at = now()
        self._attempts += 1
        timeout = self._conn_options.timeout
        deadline = asyncio.timeout(timeout)
        self._deadline = deadline
        try:
            async with deadline:
                await self._run()
        except TimeoutError:
            if not deadline.expired():
                raise  # the provider's own TimeoutError, not ours
            when = "between two chunks" if self._emitted_any else "before the first chunk"
            raise LLMError(
                f"{self._llm.label} timed out after {timeout:g}s {when}", recoverable=True
            ) from None
        finally:
            self._deadline = None

    async def _main(self) -> None:
        opts = self._conn_options
        cancelled = True
        try:
            await with_retries(
                self._run_attempt,
                options=opts,
                error_type=LLMError,
                label=self._llm.label,
                may_retry=lambda: not self._emitted_any,
            )
            cancelled = False
        except LLMError:
            cancelled = False
            raise
        except Exception as e:
            cancelled = False
            raise LLMError(f"{self._llm.label}: {e}", recoverable=False) from e
        finally:
            self._chan.close()
            self._report_metrics(cancelled=cancelled)

    def _report_metrics(self, *, cancelled: bool) -> None:
        duration = now() - self._started_at
        usage = self._usage
        completion = usage.completion_tokens if usage else 0
        m = LLMMetrics(
            label=self._llm.label,
            request_id=self._request_id,
            timestamp=time.time(),
            ttft=self._ttft if self._ttft is not None else -1.0,
            duration=duration,
            cancelled=cancelled,
            completion_tokens=completion,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            prompt_cached_tokens=usage.prompt_cached_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
            tokens_per_second=completion / duration if duration > 0 else 0.0,
        )
        self._llm.emit("metrics_collected", m)

    async def __anext__(self) -> ChatChunk:
        try:
            return await self._chan.recv()
        except ChanClosed:
            pass
        # the producer is done: surface its error, if any
        await asyncio.wait({self._task})
        if not self._task.cancelled() and (exc := self._task.exception()) is not None:
            raise exc
        raise StopAsyncIteration

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)

    async def __aenter__(self) -> LLMStream:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def collect(self) -> tuple[str, list[FunctionToolCall]]:
        """Read the whole stream: the text and the tool calls."""
        text: list[str] = []
        calls: list[FunctionToolCall] = []
        async with self:
            async for chunk in self:
                if chunk.delta is not None:
                    if chunk.delta.content:
                        text.append(chunk.delta.content)
                    calls.extend(chunk.delta.tool_calls)
        return "".join(text), calls
