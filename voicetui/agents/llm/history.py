"""What of the history one LLM request carries.

The session's history keeps everything; each request sends a bounded view of it
(:func:`request_context`): the instructions, then the last ``max_items`` items (starting at a
user message, so that no tool output is cut from its call), and every tool output cut to
``max_tool_output_chars`` characters with a note saying so. A long conversation's requests stop
growing, and one tool returning megabytes cannot blow the model's context.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chat_context import ChatContext, ChatItem, ChatMessage, FunctionCallOutput

DEFAULT_MAX_ITEMS = 100
DEFAULT_MAX_TOOL_OUTPUT_CHARS = 16_000


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    max_items: int | None = DEFAULT_MAX_ITEMS
    """Items after the instructions (messages, tool calls and outputs); None: all."""
    max_tool_output_chars: int | None = DEFAULT_MAX_TOOL_OUTPUT_CHARS
    """None: outputs are sent whole."""

    def __post_init__(self) -> None:
        if self.max_items is not None and self.max_items < 1:
            raise ValueError("max_items must be at least 1")
        if self.max_tool_output_chars is not None and self.max_tool_output_chars < 1:
            raise ValueError("max_tool_output_chars must be at least 1")


UNLIMITED = HistoryLimits(max_items=None, max_tool_output_chars=None)


def cut_output(output: str, limit: int) -> str:
    """``output`` cut to ``limit`` characters, with a note of what was left out."""
    if len(output) <= limit:
        return output
    return (
        f"{output[:limit]}\n[… {len(output) - limit} more characters cut: the output was too long]"
    )


def request_context(chat_ctx: ChatContext, limits: HistoryLimits) -> ChatContext:
    """The view of ``chat_ctx`` a request sends (``chat_ctx`` itself when within limits)."""
    items = chat_ctx.items
    window = _window(items, limits.max_items)
    limit = limits.max_tool_output_chars
    long_outputs = limit is not None and any(
        isinstance(it, FunctionCallOutput) and len(it.output) > limit for it in window
    )
    if window is items and not long_outputs:
        return chat_ctx
    if limit is not None and long_outputs:
        window = [
            it.model_copy(update={"output": cut_output(it.output, limit)})
            if isinstance(it, FunctionCallOutput) and len(it.output) > limit
            else it
            for it in window
        ]
    return ChatContext(window)


def _window(items: list[ChatItem], max_items: int | None) -> list[ChatItem]:
    n_head = 0
    while (
        n_head < len(items)
        and isinstance(items[n_head], ChatMessage)
        and items[n_head].role in ("system", "developer")  # type: ignore[union-attr]
    ):
        n_head += 1
    if max_items is None or len(items) - n_head <= max_items:
        return items
    tail = items[len(items) - max_items :]
    start = next(
        (i for i, it in enumerate(tail) if isinstance(it, ChatMessage) and it.role == "user"),
        None,
    )
    if start is None:  # no user message in the window: at least no orphaned tool output
        start = next((i for i, it in enumerate(tail) if it.type != "function_call_output"), 0)
    return items[:n_head] + tail[start:]
