"""The conversation as text: the session history as a document (``export_transcript``), tool
calls as one line (shared with ``--headless``), and the agent's words as they are spoken."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..agents.llm import AgentHandoff, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from ..agents.voice import TextOutput
from .api import AgentTranscript

MAX_INLINE = 200


def _short(text: str, limit: int = MAX_INLINE) -> str:
    head = text[: limit * 4 + 16]  # (a 10 MB output: only its start is looked at)
    flat = " ".join(head.split())
    if len(flat) <= limit and len(head) == len(text):
        return flat
    return flat[: limit - 1] + "…"


def format_arguments(arguments: str) -> str:
    """``{"timezone": "Europe/Paris"}`` → ``timezone="Europe/Paris"``."""
    try:
        data = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return _short(arguments)
    if not isinstance(data, dict):
        return _short(arguments)
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in data.items())


def format_tool_call(name: str, arguments: str, output: str | None, is_error: bool) -> str:
    """``get_time(timezone="Europe/Paris") → 14:05 ...`` (``✗`` and the error for failures)."""
    call = f"{name}({format_arguments(arguments)})"
    if output is None:
        return call
    return f"{call} {'✗' if is_error else '→'} {_short(output)}"


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def history_markdown(items: Sequence[ChatItem], *, title: str = "voicetui transcript") -> str:
    outputs = {it.call_id: it for it in items if isinstance(it, FunctionCallOutput)}
    lines = [f"# {title}", "", f"_Exported {time.strftime('%Y-%m-%d %H:%M:%S')}_", ""]
    for it in items:
        if isinstance(it, ChatMessage):
            if it.role in ("system", "developer"):
                continue
            who = "User" if it.role == "user" else "Agent"
            text = (it.text_content or "").strip()
            mark = " _(interrupted)_" if it.interrupted else ""
            lines += [f"**{who}** ({_clock(it.created_at)}): {text}{mark}", ""]
        elif isinstance(it, FunctionCall):
            out = outputs.get(it.call_id)
            line = format_tool_call(
                it.name,
                it.arguments,
                out.output if out is not None else None,
                out.is_error if out is not None else False,
            )
            lines += [f"> 🔧 `{line}`", ""]
        elif isinstance(it, AgentHandoff):
            lines += [f"_Handoff: {it.old_agent_id or '(start)'} → {it.new_agent_id}_", ""]
    return "\n".join(lines).rstrip() + "\n"


def history_json(items: Sequence[ChatItem], **meta: Any) -> str:
    data = {
        **meta,
        "exported_at": time.time(),
        "items": [it.model_dump(mode="json") for it in items],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


class TranscriptSink(TextOutput):
    """The session's transcription output: passes the agent's words on as events.
    ``speech_id`` tells which speech is being spoken."""

    def __init__(
        self, emit: Callable[[AgentTranscript], None], speech_id: Callable[[], str]
    ) -> None:
        super().__init__(label="voicetui")
        self._emit = emit
        self._speech_id = speech_id
        self._current_id = ""
        self._text = ""

    async def capture_text(self, text: str) -> None:
        if not text:
            return
        if not self._text:
            self._current_id = self._speech_id()
        self._text += text
        self._emit(AgentTranscript(speech_id=self._current_id, text=self._text))

    def flush(self) -> None:
        if self._text:
            self._emit(AgentTranscript(speech_id=self._current_id, text=self._text, final=True))
        self._text = ""


def write_transcript(
    items: Sequence[ChatItem],
    path: str,
    *,
    agent: str,
    mode: str,
    sanitize: Callable[[str], str],
) -> str:
    """Write the history as Markdown, or JSON for a ``.json`` path (blocking), passed through
    ``sanitize`` (the runtime's: secrets masked, control sequences removed), readable by its
    owner only like a recording; returns the absolute path written."""
    target = Path(path).expanduser()
    if target.suffix.lower() == ".json":
        text = history_json(items, agent=agent, mode=mode)
    else:
        text = history_markdown(items, title=f"voicetui transcript — {agent}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, 0o600)  # (an existing file keeps its mode otherwise)
        f.write(sanitize(text))
    return str(target.resolve())
