"""The session history as a document (``export_transcript``), and the agent's words as they are
spoken."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..agents.llm import ChatItem
from ..agents.voice import TextOutput
from ..conversation import Handoff, Said, ToolCall, format_tool_call, history_entries
from .api import AgentTranscript


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def history_markdown(items: Sequence[ChatItem], *, title: str = "voicetui transcript") -> str:
    lines = [f"# {title}", "", f"_Exported {time.strftime('%Y-%m-%d %H:%M:%S')}_", ""]
    for entry in history_entries(items):
        match entry:
            case Said():
                who = "User" if entry.role == "user" else "Agent"
                mark = " _(interrupted)_" if entry.interrupted else ""
                lines.append(f"**{who}** ({_clock(entry.t)}): {entry.text.strip()}{mark}")
            case ToolCall():
                call = format_tool_call(entry.name, entry.arguments, entry.output, entry.is_error)
                lines.append(f"> 🔧 `{call}`")
            case Handoff():
                lines.append(f"_Handoff: {entry.old_agent_id or '(start)'} → {entry.new_agent_id}_")
        lines.append("")
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
