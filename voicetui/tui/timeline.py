"""The speaking timeline's model (no UI here): who spoke when, what the STT heard, where the turn
ended and why, what the agent did, its tool calls, interruptions — as spans and marks on the
wall clock of the events (live, or as recorded for ``voicetui show``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Lane = Literal["user", "stt", "turn", "agent", "audio", "tools", "marks"]
LANES: tuple[Lane, ...] = ("user", "stt", "turn", "agent", "audio", "tools", "marks")
LANE_LABELS: dict[Lane, str] = {
    "user": "user voice",
    "stt": "transcript",
    "turn": "end of turn",
    "agent": "agent",
    "audio": "agent audio",
    "tools": "tools",
    "marks": "interrupts",
}
Kind = Literal[
    "voice",
    "interim",
    "final",
    "eot",
    "eot_unsure",
    "thinking",
    "speaking",
    "played",
    "tool",
    "tool_error",
    "interrupted",
    "false_interruption",
]


@dataclass
class Span:
    lane: Lane
    start: float
    end: float | None
    """None: still open (drawn to the right edge)."""
    kind: Kind
    label: str = ""


@dataclass
class Mark:
    lane: Lane
    at: float
    kind: Kind
    label: str = ""


@dataclass
class TimelineModel:
    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    origin: float | None = None
    """The first event's time: the ruler counts from it."""
    latest: float | None = None
    """The latest time anything happened (or was still going on)."""
    version: int = 0
    """Bumped on every change (the view redraws when it moved)."""
    _open: dict[tuple[Lane, str], Span] = field(default_factory=dict)

    # --- building ---------------------------------------------------------------------------
    def _saw(self, at: float) -> None:
        if self.origin is None or at < self.origin:
            self.origin = at
        if self.latest is None or at > self.latest:
            self.latest = at
        self.version += 1

    def _open_span(self, lane: Lane, key: str, at: float, kind: Kind, label: str = "") -> None:
        self._close_span(lane, key, at)
        span = Span(lane, at, None, kind, label)
        self.spans.append(span)
        self._open[(lane, key)] = span
        self._saw(at)

    def _close_span(self, lane: Lane, key: str, at: float) -> Span | None:
        span = self._open.pop((lane, key), None)
        if span is not None:
            span.end = max(at, span.start)
            self._saw(at)
        return span

    def user_state(self, state: str, at: float) -> None:
        if state == "speaking":
            self._open_span("user", "voice", at, "voice")
        else:
            self._close_span("user", "voice", at)

    def transcript(self, text: str, final: bool, at: float) -> None:
        self.marks.append(Mark("stt", at, "final" if final else "interim", text))
        self._saw(at)

    def end_of_turn(
        self, at: float, delay: float, probability: float | None, threshold: float | None
    ) -> None:
        """The turn was committed at ``at``, ``delay`` after the voice ended; with an
        end-of-turn model, what it said against its threshold."""
        unsure = probability is not None and threshold is not None and probability < threshold
        label = f"EOU {delay:.2f}s"
        if probability is not None:
            label += f" p={probability:.2f}" + (f"/{threshold:.2f}" if threshold else "")
        self.marks.append(Mark("turn", at, "eot_unsure" if unsure else "eot", label))
        self._saw(at)

    def agent_state(self, state: str, at: float) -> None:
        self._close_span("agent", "state", at)
        if state in ("thinking", "speaking"):
            self._open_span("agent", "state", at, "thinking" if state == "thinking" else "speaking")

    def reply(self, started: float | None, stopped: float | None, interrupted: bool) -> None:
        """An assistant message: its audio was heard from ``started`` to ``stopped``."""
        if started is None:
            return
        self.spans.append(Span("audio", started, stopped or started, "played"))
        self._saw(started)
        if stopped is not None:
            self._saw(stopped)
            if interrupted:
                self.marks.append(Mark("marks", stopped, "interrupted", "interrupted"))

    def tool_started(self, call_id: str, name: str, at: float) -> None:
        self._open_span("tools", call_id, at, "tool", name)

    def tool_finished(
        self, call_id: str, name: str, at: float, duration: float, error: bool
    ) -> None:
        span = self._close_span("tools", call_id, at)
        if span is None:  # (started before this view opened, or mocked)
            span = Span("tools", at - duration, at, "tool", name)
            self.spans.append(span)
            self._saw(at)
        if error:
            span.kind = "tool_error"

    def false_interruption(self, at: float, resumed: bool) -> None:
        label = "false interruption: resumed" if resumed else "false interruption"
        self.marks.append(Mark("marks", at, "false_interruption", label))
        self._saw(at)

    def clear(self) -> None:
        self.spans.clear()
        self.marks.clear()
        self._open.clear()
        self.origin = self.latest = None
        self.version += 1

    # --- reading ----------------------------------------------------------------------------
    def in_window(self, start: float, end: float) -> tuple[list[Span], list[Mark]]:
        """What shows between ``start`` and ``end`` (open spans reach ``end``)."""
        spans = [s for s in self.spans if s.start < end and (s.end is None or s.end >= start)]
        marks = [mk for mk in self.marks if start <= mk.at < end]
        return spans, marks
