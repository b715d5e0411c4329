"""``transcript.md``: the conversation for humans, appended entry by entry (readable at any
moment, even after a crash). Nothing reads it back: ``events.jsonl`` is the data.

Every entry is one list item: ``- `mm:ss.ss` **Who:** text``; an agent reply may have a nested
``- latency: ...`` line. Newlines inside a message are written as ``<br>``.
"""

from __future__ import annotations

import json
from typing import Any

from ..agents.llm.history import cut_output
from ..agents.voice.events import (
    AgentFalseInterruptionEvent,
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
)
from ..conversation import Entry, Handoff, Said, ToolCall, event_entries
from ..events import ModeChanged, Notice, RoomUpdate
from .event_log import RecordedBody, RecordingGap, RecordingStopped, decode

MAX_OUTPUT_CHARS = 2_000
"""A longer tool output is cut in ``transcript.md`` (``events.jsonl`` keeps it whole)."""


def fmt_time(t: float) -> str:
    t = max(0.0, t)
    m, s = divmod(t, 60.0)
    if m >= 60:
        h, m = divmod(m, 60)
        return f"{int(h)}:{int(m):02d}:{s:05.2f}"
    return f"{int(m):02d}:{s:05.2f}"


def code(text: str) -> str:
    """An inline code span that survives backticks in ``text``."""
    text = text.replace("\n", " ")
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text} ``"


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "<br>")


def _compact_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(", ", ": "))
    except ValueError:
        return text


def _model_name(m: dict[str, Any]) -> str:
    model = m.get("model")
    if isinstance(model, str) and model and model != "unknown":
        return model
    return str(m.get("class", "?")).rsplit(".", 1)[-1]


class TranscriptRenderer:
    def header(self, info: dict[str, Any]) -> str:
        lines = [f"# voicetui recording {info.get('id', '')}", ""]
        lines.append(f"- started: {info.get('started_at', '?')}")
        agent = info.get("agent") or {}
        if agent:
            lines.append(f"- agent: {agent.get('label', '?')} ({agent.get('id', '?')})")
        models = info.get("models") or {}
        described = [
            f"{kind}: {_model_name(m)}" for kind, m in models.items() if isinstance(m, dict)
        ]
        if described:
            lines.append(f"- models: {', '.join(described)}")
        lines += ["", "## Conversation", ""]
        return "\n".join(lines) + "\n"

    def render(self, t: float, type_: str, data: dict[str, Any]) -> str:
        """The entries for one line of ``events.jsonl`` (none for most)."""
        try:
            body = decode(type_, data)
        except ValueError:
            return ""
        return self.render_event(t, body) if body is not None else ""

    def render_event(self, t: float, body: RecordedBody) -> str:
        ts = f"- `{fmt_time(t)}`"
        match body:
            case ConversationItemAddedEvent() | FunctionToolsExecutedEvent():
                return "".join(_entry(ts, entry) for entry in event_entries(body, t))
            case ErrorEvent():
                return f"{ts} **Error:** ({body.source}) {_one_line(body.message)}\n"
            case ModeChanged():
                return f"{ts} **Mode:** {_one_line(body.description or body.mode)}\n"
            case Notice():
                return f"{ts} **Notice:** ({body.level}) {_one_line(body.message)}\n"
            case RoomUpdate():
                return f"{ts} **Notice:** ({body.level}) {_one_line(body.event.message)}\n"
            case AgentFalseInterruptionEvent():
                return f"{ts} **False interruption:** resumed={body.resumed}\n"
            case CloseEvent():
                return f"{ts} **Session closed:** {body.reason.value}\n"
            case RecordingGap():
                return f"{ts} **Recording gap:** {body.duration:.2f} s of audio dropped\n"
            case RecordingStopped():
                return f"{ts} **Recording stopped**\n"
            case _:
                return ""


def _entry(ts: str, entry: Entry) -> str:
    match entry:
        case Handoff():
            return f"{ts} **Handoff:** {entry.old_agent_id or '(start)'} → {entry.new_agent_id}\n"
        case Said(role="user"):
            return f"{ts} **User:** {_one_line(entry.text)}\n"
        case Said():
            who = "Agent (interrupted)" if entry.interrupted else "Agent"
            out = f"{ts} **{who}:** {_one_line(entry.text)}\n"
            if parts := entry.latency.parts():
                out += f"  - latency: {' · '.join(f'{k} {v:.2f} s' for k, v in parts)}\n"
            return out
        case ToolCall():
            call_text = f"{entry.name}({_compact_json(entry.arguments)})"
            flags = [
                flag
                for flag, on in (
                    ("error", entry.is_error),
                    ("mocked", entry.mocked),
                    ("cancelled", entry.cancelled),
                )
                if on
            ]
            if entry.duration is not None:
                flags.append(f"{entry.duration:.2f} s")
            suffix = f" ({', '.join(flags)})" if flags else ""
            result = entry.output or ""
            result = (
                cut_output(result, MAX_OUTPUT_CHARS)
                if len(result) > MAX_OUTPUT_CHARS
                else _compact_json(result)
            )
            return f"{ts} **Tool call:** {code(call_text)} → {code(result)}{suffix}\n"
