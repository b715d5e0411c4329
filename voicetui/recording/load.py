"""Reading a recording back: its files, and the conversation (from ``events.jsonl``; the
``transcript.md`` next to it is for humans) as turns."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..conversation import Entry, ToolCall, Turn, build_turns, event_entries
from ..untrusted import clean_text, map_strings
from .event_log import RecorderNote, decode
from .files import NotARecordingFile, parse_json, read_bytes, read_json
from .repair import read_wav

CONVERSATION_TYPES = frozenset({"conversation_item_added", "function_tools_executed"})


@dataclass
class RecordedEvent:
    t: float
    """Seconds since the recording started (loop clock)."""
    wall: float
    type: str
    event: dict[str, Any]


@dataclass
class Recording:
    directory: Path
    session: dict[str, Any]
    events: list[RecordedEvent]
    turns: list[Turn]
    sample_rate: int
    audio: np.ndarray
    """Stereo int16 (frames, 2): left user, right agent."""
    user_audio: np.ndarray
    agent_audio: np.ndarray
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate if self.sample_rate else 0.0

    def of(self, type_: str) -> list[RecordedEvent]:
        return [e for e in self.events if e.type == type_]

    @property
    def user_turns(self) -> list[Turn]:
        """The turns that start with a user message (spoken or typed), in order."""
        return [t for t in self.turns if t.user is not None]

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for t in self.turns for c in t.tools]


def read_events(path: str | os.PathLike[str]) -> tuple[list[RecordedEvent], list[str]]:
    """Events of an ``events.jsonl``, their text cleaned of control sequences (a recording may
    come from anyone); lines that do not parse (a torn last line) are skipped and reported in
    the second list. NotARecordingFile if the file is a link, a FIFO, a device..."""
    events: list[RecordedEvent] = []
    warnings: list[str] = []
    lines = read_bytes(path).split(b"\n")
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = parse_json(raw, where=f"line {i}")
            event = obj.get("event") or {}
            if not isinstance(event, dict):
                raise TypeError("the event is not an object")
            events.append(
                RecordedEvent(
                    t=float(obj["t"]),
                    wall=float(obj.get("wall", 0.0)),
                    type=clean_text(str(obj["type"])),
                    event=map_strings(event, clean_text),
                )
            )
        except NotARecordingFile as e:
            warnings.append(f"events.jsonl line {i}: {str(e).partition(': ')[2]}")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            last = i == len(lines) or (i == len(lines) - 1 and not lines[-1])
            warnings.append(f"events.jsonl line {i}{' (last, torn)' if last else ''}: {e}")
    return events, warnings


def turns_of(events: list[RecordedEvent]) -> list[Turn]:
    return build_turns(conversation(events))


def conversation(events: list[RecordedEvent]) -> list[Entry]:
    """What was said, the tools that ran and the handoffs (lines that cannot be read are left
    out: the viewer reports them)."""
    entries: list[Entry] = []
    for ev in events:
        if ev.type not in CONVERSATION_TYPES:
            continue
        try:
            body = decode(ev.type, ev.event)
        except ValueError:
            continue
        if body is not None and not isinstance(body, RecorderNote):
            entries += event_entries(body, ev.t)
    return entries


def load_recording(directory: str | os.PathLike[str]) -> Recording:
    """Parse every file of a recording. Tolerates what a crash leaves (torn last event line,
    WAV headers that undercount or overcount, a missing ``session.json``); what was skipped is
    listed in ``warnings``. Text is cleaned of control sequences. Raises FileNotFoundError if
    there is no recording there, NotARecordingFile if its ``events.jsonl`` is a link, a FIFO..."""
    d = Path(directory)
    if not os.path.lexists(d / "events.jsonl"):
        raise FileNotFoundError(f"{d}: not a recording (no events.jsonl)")
    warnings: list[str] = []
    session: dict[str, Any] = {}
    try:
        loaded = map_strings(read_json(d / "session.json"), clean_text)
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        session = loaded
    except (OSError, ValueError) as e:
        warnings.append(f"session.json: {e}")
    events, w = read_events(d / "events.jsonl")
    warnings += w
    raw_rate = session.get("sample_rate")
    rate = int(raw_rate) if isinstance(raw_rate, int | float) and 0 < raw_rate < 1e7 else 0
    stereo = np.zeros((0, 2), dtype=np.int16)
    mono: dict[str, np.ndarray] = {}
    for name in ("audio.wav", "user.wav", "agent.wav"):
        try:
            pcm, r = read_wav(d / name)
        except (OSError, ValueError) as e:
            warnings.append(f"{name}: {e}")
            continue
        rate = rate or r
        if name == "audio.wav":
            stereo = pcm if pcm.shape[1] == 2 else np.repeat(pcm[:, :1], 2, axis=1)
        else:
            mono[name] = pcm[:, 0]
    user = mono.get("user.wav", stereo[:, 0].copy())
    agent = mono.get("agent.wav", stereo[:, 1].copy())
    return Recording(
        directory=d,
        session=session,
        events=events,
        turns=turns_of(events),
        sample_rate=rate,
        audio=stereo,
        user_audio=user,
        agent_audio=agent,
        warnings=warnings,
    )
