"""Reading ``transcript.md`` back, for tests that check what a recording wrote for humans (the
package itself never parses it: ``events.jsonl`` is the data)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def parse_time(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


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
