"""Chat completions (streamed) from OpenAI or any OpenAI-compatible server (llama.cpp, vLLM,
Ollama, LM Studio...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ...agents import llm
from ...agents.exceptions import LLMError
from ...agents.llm import (
    ChatChunk,
    ChatContext,
    ChoiceDelta,
    CompletionUsage,
    FunctionTool,
    FunctionToolCall,
    ToolChoice,
)
from ...agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ._chat_format import to_messages, to_tool_choice
from ._client import ClientHolder, resolve_config
from ._errors import map_error

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionChunk


class LLM(llm.LLM):
    """An OpenAI chat model, streamed with usage reporting and parallel tool calls.

    ``api_key`` and ``base_url`` default from OPENAI_API_KEY / OPENAI_BASE_URL (then the OpenAI
    API). Without any key a placeholder is sent, which is what local servers expect. ``timeout``
    (seconds) overrides the HTTP timeout of each request, which otherwise follows the call's
    ``conn_options.timeout``. ``client`` shares an existing AsyncOpenAI client (not closed by
    :meth:`aclose`)."""

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        base_url: str | None = None,
        temperature: float | None = None,
        parallel_tool_calls: bool | None = None,
        max_completion_tokens: int | None = None,
        timeout: float | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        super().__init__()
        self._model = model
        self._temperature = temperature
        self._parallel_tool_calls = parallel_tool_calls
        self._max_completion_tokens = max_completion_tokens
        self._holder = ClientHolder(
            resolve_config(api_key, base_url), client=client, timeout=timeout
        )
        _ = self._holder.get().chat.completions  # resolve the client's lazy resource now

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        cfg = self._holder.config
        return "openai" if cfg.is_openai else (urlparse(cfg.base_url).netloc or cfg.base_url)

    @property
    def base_url(self) -> str:
        return self._holder.config.base_url

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> llm.LLMStream:
        return _OpenAILLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools,
            tool_choice=tool_choice,
            conn_options=conn_options,
            extra=extra,
        )

    def _request_args(
        self,
        chat_ctx: ChatContext,
        tools: list[FunctionTool],
        tool_choice: ToolChoice | None,
        extra: dict[str, Any] | None,
        conn_timeout: float,
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self._model,
            "messages": to_messages(chat_ctx),
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self._holder.request_timeout(conn_timeout),
        }
        if tools:
            args["tools"] = [t.to_openai_schema() for t in tools]
            if tool_choice is not None:
                args["tool_choice"] = to_tool_choice(tool_choice)
            if self._parallel_tool_calls is not None:
                args["parallel_tool_calls"] = self._parallel_tool_calls
        if self._temperature is not None:
            args["temperature"] = self._temperature
        if self._max_completion_tokens is not None:
            args["max_completion_tokens"] = self._max_completion_tokens
        if extra:
            args["extra_body"] = dict(extra)
        return args

    async def aclose(self) -> None:
        await self._holder.aclose()


@dataclass
class _PartialCall:
    call_id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def complete(self) -> FunctionToolCall:
        kwargs: dict[str, Any] = {"name": self.name, "arguments": "".join(self.arguments)}
        if self.call_id:
            kwargs["call_id"] = self.call_id
        return FunctionToolCall(**kwargs)


class _OpenAILLMStream(llm.LLMStream):
    def __init__(
        self,
        llm_: LLM,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None,
        tool_choice: ToolChoice | None,
        conn_options: APIConnectOptions,
        extra: dict[str, Any] | None,
    ) -> None:
        self._openai_llm = llm_
        self._extra = extra
        self._calls: dict[int, _PartialCall] = {}
        super().__init__(
            llm_, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice
        )

    async def _run(self) -> None:
        owner = self._openai_llm
        holder = owner._holder
        self._calls = {}
        args = owner._request_args(
            self._chat_ctx, self._tools, self._tool_choice, self._extra, self._conn_options.timeout
        )
        try:
            stream = await holder.get().chat.completions.create(**args)
            async with stream:
                async for chunk in stream:
                    self._on_chunk(chunk)
        except LLMError:
            raise
        except Exception as e:
            mapped = map_error(e, LLMError, holder.config)
            if mapped is None:
                raise
            raise mapped from e
        self._flush_calls()

    def _on_chunk(self, chunk: ChatCompletionChunk) -> None:
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    self._emit(ChatChunk(id=chunk.id, delta=ChoiceDelta(content=delta.content)))
                for tc in delta.tool_calls or []:
                    partial = self._calls.setdefault(tc.index, _PartialCall())
                    if tc.id:
                        partial.call_id = tc.id
                    if tc.function is not None:
                        if tc.function.name and not partial.name:
                            partial.name = tc.function.name
                        if tc.function.arguments:
                            partial.arguments.append(tc.function.arguments)
            if choice.finish_reason is not None:
                self._flush_calls(chunk.id)
        if chunk.usage is not None:
            u = chunk.usage
            details = u.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details is not None else 0
            self._emit(
                ChatChunk(
                    id=chunk.id,
                    usage=CompletionUsage(
                        completion_tokens=u.completion_tokens,
                        prompt_tokens=u.prompt_tokens,
                        prompt_cached_tokens=cached,
                        total_tokens=u.total_tokens,
                    ),
                )
            )

    def _flush_calls(self, chunk_id: str | None = None) -> None:
        """Emit the accumulated tool calls (in index order): the call list is complete."""
        if not self._calls:
            return
        calls = [self._calls[i].complete() for i in sorted(self._calls)]
        self._calls = {}
        self._emit(ChatChunk(id=chunk_id or self._request_id, delta=ChoiceDelta(tool_calls=calls)))
