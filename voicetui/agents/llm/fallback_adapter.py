"""An LLM that falls back from one provider to the next when a provider fails.

Providers are tried in order. One that fails (an :class:`LLMError`, timeouts included) is marked
unavailable and skipped by later requests while it is probed in the background; it is used again
once a probe succeeds. Every change emits ``llm_availability_changed``
(:class:`AvailabilityChangedEvent`). The providers' ``metrics_collected`` events (each with the
label of the provider that really served the request) are re-emitted by the adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._fallback import ProviderAvailability
from ..exceptions import LLMError
from ..metrics import LLMMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import TaskSet
from .chat_context import ChatContext
from .llm import LLM, LLMStream
from .tool_context import FunctionTool, ToolChoice

logger = logging.getLogger("voicetui.agents.llm")


@dataclass
class AvailabilityChangedEvent:
    """``llm_availability_changed``: ``llm`` became available again, or stopped being."""

    llm: LLM
    available: bool


def _describe(label: str, error: BaseException) -> str:
    message = error.message if isinstance(error, LLMError) else str(error) or type(error).__name__
    return message if message.startswith(label) else f"{label}: {message}"


class FallbackAdapter(LLM):
    """Tries ``llms`` in order for each ``chat()``.

    Each provider gets ``attempt_timeout`` seconds per attempt (to the first chunk, and between
    two chunks) and ``max_retry_per_llm`` retries of recoverable errors, ``retry_interval``
    seconds apart (doubling). A provider that fails before sending any chunk is replaced by the
    next one with the same request; one that fails after chunks were sent is replaced only when
    ``retry_on_chunk_sent`` (the next provider's answer then follows what was already sent),
    otherwise the stream fails. When every provider failed the stream raises an unrecoverable
    :class:`LLMError` naming each failure. Failed providers are probed every
    ``recovery_interval`` seconds (doubling, up to :data:`MAX_RECOVERY_INTERVAL`) with
    :meth:`probe`. When none is available, all are tried anyway.

    The adapter does not own the providers: ``aclose()`` stops the probes and detaches from the
    providers, but does not close them.
    """

    def __init__(
        self,
        llms: Sequence[LLM],
        *,
        attempt_timeout: float = 5.0,
        max_retry_per_llm: int = 0,
        retry_interval: float = 0.5,
        retry_on_chunk_sent: bool = False,
        recovery_interval: float = 5.0,
    ) -> None:
        super().__init__()
        if not llms:
            raise ValueError("FallbackAdapter needs at least one LLM")
        if recovery_interval <= 0:
            raise ValueError("recovery_interval must be > 0")
        self._llms = list(llms)
        self._conn_options = APIConnectOptions(
            max_retry=max_retry_per_llm, retry_interval=retry_interval, timeout=attempt_timeout
        )
        self._retry_on_chunk_sent = retry_on_chunk_sent
        self._recovery_interval = recovery_interval
        self._tasks = TaskSet("llm.FallbackAdapter")
        self._availability: ProviderAvailability[LLM] = ProviderAvailability(
            self._llms,
            name="llm.FallbackAdapter",
            tasks=self._tasks,
            recovery_interval=recovery_interval,
            probe=self.probe,
            on_change=lambda provider, up: self.emit(
                "llm_availability_changed", AvailabilityChangedEvent(provider, up)
            ),
        )
        self._label = f"FallbackAdapter({', '.join(m.label for m in self._llms)})"
        for m in self._llms:
            m.on("metrics_collected", self._forward_metrics)

    @property
    def llms(self) -> list[LLM]:
        return list(self._llms)

    @property
    def model(self) -> str:
        """The model of the provider a new request would try first."""
        return self._llms[self._availability.candidates()[0]].model

    @property
    def provider(self) -> str:
        return self._llms[self._availability.candidates()[0]].provider

    def available(self, llm: LLM) -> bool:
        return self._availability.is_available(llm)

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        """``conn_options`` is not used: each provider gets the adapter's own options."""
        return FallbackLLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools,
            tool_choice=tool_choice,
            conn_options=conn_options,
            extra=extra,
        )

    async def probe(self, llm: LLM) -> None:
        """The recovery check of a failed provider: a one-word request whose first chunk must
        come within ``attempt_timeout``. Raises when the provider still fails."""
        ctx = ChatContext()
        ctx.add_message(role="user", content="ping")
        opts = self._conn_options.with_(max_retry=0)
        async with llm.chat(chat_ctx=ctx, conn_options=opts) as stream:
            async for _ in stream:
                break

    async def aclose(self) -> None:
        self._availability.close()
        await self._tasks.aclose()
        for m in self._llms:
            m.off("metrics_collected", self._forward_metrics)

    # --- availability ---------------------------------------------------------------------
    def _forward_metrics(self, metrics: LLMMetrics) -> None:
        self.emit("metrics_collected", metrics)


class FallbackLLMStream(LLMStream):
    """Forwards the chunks of the first provider that serves the request. Reports no metrics of
    its own: the serving provider's are re-emitted by the adapter."""

    def __init__(
        self,
        adapter: FallbackAdapter,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None,
        tool_choice: ToolChoice | None,
        conn_options: APIConnectOptions,
        extra: dict[str, Any] | None,
    ) -> None:
        self._adapter = adapter
        self._extra = extra
        super().__init__(
            adapter,
            chat_ctx=chat_ctx,
            tools=tools,
            conn_options=conn_options,
            tool_choice=tool_choice,
        )

    async def _main(self) -> None:
        try:
            await self._run()
        except LLMError:
            raise
        except Exception as e:
            raise LLMError(f"{self._adapter.label}: {e}", recoverable=False) from e
        finally:
            self._chan.close()

    async def _run(self) -> None:
        adapter = self._adapter
        failures: list[str] = []
        for index in adapter._availability.candidates():
            llm = adapter._llms[index]
            try:
                await self._forward(llm)
            except Exception as e:
                failures.append(_describe(llm.label, e))
                adapter._availability.mark_unavailable(index)
                if self._emitted_any and not adapter._retry_on_chunk_sent:
                    raise LLMError(
                        f"{_describe(llm.label, e)} (after the response started)",
                        recoverable=False,
                    ) from e
                logger.warning("%s failed, falling back: %s", llm.label, failures[-1])
                continue
            adapter._availability.mark_available(index)
            return
        raise LLMError(f"all LLMs failed: {'; '.join(failures)}", recoverable=False)

    async def _forward(self, llm: LLM) -> None:
        stream = llm.chat(
            chat_ctx=self._chat_ctx,
            tools=self._tools,
            tool_choice=self._tool_choice,
            conn_options=self._adapter._conn_options,
            extra=self._extra,
        )
        async with stream:
            async for chunk in stream:
                self._emit(chunk)
