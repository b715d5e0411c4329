"""Reading a recording back: every file parsed, and the conversation as turns."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..untrusted import clean_text, map_strings
from .files import NotARecordingFile, parse_json, read_bytes, read_json, read_text
from .repair import read_wav
from .transcript import TranscriptEntry, parse_transcript


@dataclass
class RecordedEvent:
    t: float
    """Seconds since the recording started (loop clock)."""
    wall: float
    type: str
    event: dict[str, Any]


@dataclass
class ToolCallRecord:
    name: str
    arguments: str
    output: str
    is_error: bool = False
    duration: float | None = None
    t: float = 0.0

    def key(self) -> tuple[str, str, str, bool]:
        """What must match for two calls to count as the same (arguments compared as JSON)."""
        return (self.name, _canonical(self.arguments), _canonical(self.output), self.is_error)


@dataclass
class Latency:
    e2e: float | None = None
    eou: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None

    @classmethod
    def from_metrics(cls, m: dict[str, Any]) -> Latency:
        def f(key: str) -> float | None:
            v = m.get(key)
            return float(v) if isinstance(v, int | float) else None

        return cls(
            e2e=f("e2e_latency"),
            eou=f("end_of_turn_delay"),
            llm_ttft=f("llm_node_ttft"),
            tts_ttfb=f("tts_node_ttfb"),
        )

    def known(self) -> bool:
        return any(v is not None for v in (self.e2e, self.eou, self.llm_ttft, self.tts_ttfb))


@dataclass
class AgentReply:
    t: float
    text: str
    interrupted: bool
    latency: Latency


@dataclass
class Turn:
    """A user message and everything the agent did until the next one (turn 0: before the
    user first spoke, e.g. a greeting)."""

    index: int
    t: float
    user: str | None
    typed: bool = False
    """The user typed the message (no audio: it has no end-of-turn report)."""
    replies: list[AgentReply] = field(default_factory=list)
    tools: list[ToolCallRecord] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)

    @property
    def agent_text(self) -> str:
        return " / ".join(r.text for r in self.replies if r.text)

    @property
    def latency(self) -> Latency:
        """The reply's latency report: the first reply that measured end-to-end latency."""
        for r in self.replies:
            if r.latency.e2e is not None:
                return r.latency
        for r in self.replies:
            if r.latency.known():
                return r.latency
        return Latency()


@dataclass
class Recording:
    directory: Path
    session: dict[str, Any]
    events: list[RecordedEvent]
    transcript: list[TranscriptEntry]
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
    def tool_calls(self) -> list[ToolCallRecord]:
        return [c for t in self.turns for c in t.tools]


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


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


def _typed(item: dict[str, Any]) -> bool:
    """A user message without an end-of-turn report was typed (spoken turns, push-to-talk
    included, always carry their end-of-utterance delay)."""
    metrics = item.get("metrics") or {}
    return metrics.get("end_of_turn_delay") is None and metrics.get("started_speaking_at") is None


def build_turns(events: list[RecordedEvent]) -> list[Turn]:
    turns = [Turn(index=0, t=0.0, user=None)]
    for ev in events:
        if ev.type == "conversation_item_added":
            item = ev.event.get("item") or {}
            kind = item.get("type")
            if kind == "message":
                text = "\n".join(c for c in item.get("content") or [] if isinstance(c, str))
                if item.get("role") == "user":
                    turns.append(Turn(len(turns), ev.t, text, typed=_typed(item)))
                elif item.get("role") == "assistant":
                    turns[-1].replies.append(
                        AgentReply(
                            t=ev.t,
                            text=text,
                            interrupted=bool(item.get("interrupted")),
                            latency=Latency.from_metrics(item.get("metrics") or {}),
                        )
                    )
            elif kind == "agent_handoff" and item.get("old_agent_id") is not None:
                # (the first agent's announcement, from no agent, is not a turn's handoff)
                turns[-1].handoffs.append(str(item.get("new_agent_id")))
        elif ev.type == "function_tools_executed":
            for ex in ev.event.get("executions") or []:
                call, out = ex.get("call") or {}, ex.get("output") or {}
                dur = ex.get("duration")
                turns[-1].tools.append(
                    ToolCallRecord(
                        name=str(call.get("name")),
                        arguments=str(call.get("arguments", "")),
                        output=str(out.get("output", "")),
                        is_error=bool(out.get("is_error")),
                        duration=float(dur) if isinstance(dur, int | float) else None,
                        t=ev.t,
                    )
                )
    first = turns[0]
    if not first.replies and not first.tools and not first.handoffs:
        turns.pop(0)
    return turns


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
    try:
        transcript = parse_transcript(clean_text(read_text(d / "transcript.md")))
    except (OSError, ValueError) as e:
        warnings.append(f"transcript.md: {e}")
        transcript = []
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
        transcript=transcript,
        turns=build_turns(events),
        sample_rate=rate,
        audio=stereo,
        user_audio=user,
        agent_audio=agent,
        warnings=warnings,
    )
