"""ChatContext → OpenAI chat-completions ``messages``; ToolChoice → ``tool_choice``."""

from __future__ import annotations

from typing import Any

from ...agents.llm import ChatContext, ChatMessage, FunctionCall, FunctionCallOutput, ToolChoice


def to_messages(chat_ctx: ChatContext) -> list[dict[str, Any]]:
    """The chat context as OpenAI messages.

    - system/developer messages become ``system`` messages (local servers reject ``developer``);
    - consecutive function calls become one assistant message with ``tool_calls`` (joined to
      the assistant text message right before them, if any), followed by one ``tool`` message
      per output;
    - content is never null: an assistant message without text sends ``""`` (llama.cpp's server
      answers 500 to a null content);
    - a call without output or an output without call is dropped (the API rejects both);
    - agent handoffs are bookkeeping and are not sent.
    """
    items = chat_ctx.items
    call_ids = {it.call_id for it in items if isinstance(it, FunctionCall)}
    output_ids = {it.call_id for it in items if isinstance(it, FunctionCallOutput)}
    messages: list[dict[str, Any]] = []
    prev: object = None  # the previous item that was sent
    for it in items:
        if isinstance(it, ChatMessage):
            role = "system" if it.role in ("system", "developer") else it.role
            messages.append({"role": role, "content": it.text_content or ""})
        elif isinstance(it, FunctionCall):
            if it.call_id not in output_ids:
                continue
            tool_call = {
                "id": it.call_id,
                "type": "function",
                "function": {"name": it.name, "arguments": it.arguments or "{}"},
            }
            last = messages[-1] if messages else None
            joinable = (
                last is not None
                and last["role"] == "assistant"
                and (
                    isinstance(prev, FunctionCall)
                    or (isinstance(prev, ChatMessage) and "tool_calls" not in last)
                )
            )
            if joinable and last is not None:
                last.setdefault("tool_calls", []).append(tool_call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [tool_call]})
        elif isinstance(it, FunctionCallOutput):
            if it.call_id not in call_ids:
                continue
            messages.append({"role": "tool", "tool_call_id": it.call_id, "content": it.output})
        else:
            continue
        prev = it
    return messages


def to_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    """``"auto"``/``"required"``/``"none"`` as is; a dict naming a function (``{"name": ...}``,
    ``{"type": "function", "name": ...}`` or already in OpenAI form) as the OpenAI form."""
    if isinstance(choice, str):
        return choice
    if "function" in choice and isinstance(choice["function"], dict):
        return {"type": "function", "function": {"name": choice["function"]["name"]}}
    if "name" in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    return dict(choice)
