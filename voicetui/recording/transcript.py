"""``transcript.md``: the conversation for humans, appended entry by entry (readable at any
moment, even after a crash), and a parser that reads it back.

Every entry is one list item: ``- `mm:ss.ss` **Who:** text``; an agent reply may have a nested
``- latency: ...`` line. Newlines inside a message are written as ``<br>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..agents.llm.history import cut_output

MAX_OUTPUT_CHARS = 2_000
"""A longer tool output is cut in ``transcript.md`` (``events.jsonl`` keeps it whole)."""
LATENCY_FIELDS: tuple[tuple[str, str], ...] = (
    ("e2e", "e2e_latency"),
    ("EOU", "end_of_turn_delay"),
    ("LLM TTFT", "llm_node_ttft"),
    ("TTS TTFB", "tts_node_ttfb"),
)


def fmt_time(t: float) -> str:
    t = max(0.0, t)
    m, s = divmod(t, 60.0)
    if m >= 60:
        h, m = divmod(m, 60)
        return f"{int(h)}:{int(m):02d}:{s:05.2f}"
    return f"{int(m):02d}:{s:05.2f}"


def parse_time(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def code(text: str) -> str:
    """An inline code span that survives backticks in ``text``."""
    text = text.replace("\n", " ")
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text} ``"


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "<br>")


def latency_line(metrics: dict[str, Any]) -> str:
    parts = [
        f"{label} {metrics[key]:.2f} s"
        for label, key in LATENCY_FIELDS
        if isinstance(metrics.get(key), int | float)
    ]
    return " · ".join(parts)


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

    def render(self, t: float, type_: str, ev: dict[str, Any]) -> str:
        ts = f"- `{fmt_time(t)}`"
        if type_ == "conversation_item_added":
            item = ev.get("item") or {}
            if item.get("type") == "agent_handoff":
                old = item.get("old_agent_id") or "(start)"
                return f"{ts} **Handoff:** {old} → {item.get('new_agent_id')}\n"
            if item.get("type") != "message":
                return ""
            text = _one_line("\n".join(c for c in item.get("content") or [] if c))
            role = item.get("role")
            if role == "user":
                return f"{ts} **User:** {text}\n"
            if role == "assistant":
                who = "Agent (interrupted)" if item.get("interrupted") else "Agent"
                out = f"{ts} **{who}:** {text}\n"
                lat = latency_line(item.get("metrics") or {})
                if lat:
                    out += f"  - latency: {lat}\n"
                return out
            return ""
        if type_ == "function_tools_executed":
            out = ""
            for ex in ev.get("executions") or []:
                call, output = ex.get("call") or {}, ex.get("output") or {}
                call_text = f"{call.get('name')}({_compact_json(call.get('arguments', ''))})"
                flags = []
                if output.get("is_error"):
                    flags.append("error")
                if ex.get("mocked"):
                    flags.append("mocked")
                if ex.get("cancelled"):
                    flags.append("cancelled")
                dur = ex.get("duration")
                if isinstance(dur, int | float):
                    flags.append(f"{dur:.2f} s")
                suffix = f" ({', '.join(flags)})" if flags else ""
                result = str(output.get("output", ""))
                result = (
                    cut_output(result, MAX_OUTPUT_CHARS)
                    if len(result) > MAX_OUTPUT_CHARS
                    else _compact_json(result)
                )
                out += f"{ts} **Tool call:** {code(call_text)} → {code(result)}{suffix}\n"
            return out
        if type_ == "error":
            return f"{ts} **Error:** ({ev.get('source')}) {_one_line(str(ev.get('message')))}\n"
        if type_ == "mode_changed":
            return f"{ts} **Mode:** {_one_line(str(ev.get('description') or ev.get('mode')))}\n"
        if type_ == "notice":
            return f"{ts} **Notice:** ({ev.get('level')}) {_one_line(str(ev.get('message')))}\n"
        if type_ == "agent_false_interruption":
            return f"{ts} **False interruption:** resumed={ev.get('resumed')}\n"
        if type_ == "close":
            return f"{ts} **Session closed:** {ev.get('reason')}\n"
        if type_ == "recording_gap":
            return f"{ts} **Recording gap:** {ev.get('duration', 0):.2f} s of audio dropped\n"
        if type_ == "recording_stopped":
            return f"{ts} **Recording stopped**\n"
        return ""


@dataclass
class TranscriptEntry:
    t: float
    who: str
    """"User", "Agent", "Agent (interrupted)", "Tool call", "Error", "Mode", ..."""
    text: str
    latency: dict[str, float] = field(default_factory=dict)
    """For agent replies: {"e2e": .., "EOU": .., "LLM TTFT": .., "TTS TTFB": ..} (those known)."""


_ENTRY = re.compile(r"^- `(?P<t>[\d:.]+)` \*\*(?P<who>[^*]+?):?\*\*:? ?(?P<text>.*)$")
_LATENCY = re.compile(r"^\s+- latency: (?P<body>.*)$")
_LAT_PART = re.compile(r"(?P<label>[A-Za-z0-9 ]+?) (?P<v>-?\d+(?:\.\d+)?) s")


def parse_transcript(text: str) -> list[TranscriptEntry]:
    """The entries of a ``transcript.md`` (lines that are not entries are skipped, so a
    torn last line is harmless)."""
    entries: list[TranscriptEntry] = []
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m:
            entries.append(
                TranscriptEntry(
                    t=parse_time(m["t"]),
                    who=m["who"],
                    text=m["text"].replace("<br>", "\n"),
                )
            )
            continue
        lm = _LATENCY.match(line)
        if lm and entries:
            for part in lm["body"].split(" · "):
                pm = _LAT_PART.fullmatch(part.strip())
                if pm:
                    entries[-1].latency[pm["label"].strip()] = float(pm["v"])
    return entries
