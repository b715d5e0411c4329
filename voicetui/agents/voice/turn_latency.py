"""Where a turn's latency goes: the stages from the end of the user's voice to the agent's
first audio, measured on the loop clock and adding up to the end-to-end latency.

A :class:`TurnTiming` travels with the speeches that answer one user turn: a tool round that
said nothing hands it to the next round, a handoff to the next agent's first reply. Each round
notes when its stages ended; the round whose audio is heard first closes the report."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from ..llm.chat_context import LatencyStage, LatencyStageName

current_turn_id: ContextVar[str | None] = ContextVar("voicetui_turn_id", default=None)
"""The user turn the running reply answers: set in its task, so the model metrics emitted
from it (and from the tasks it starts) carry the turn's id."""


def _turn_id() -> str:
    return f"turn_{uuid.uuid4().hex[:12]}"


@dataclass
class TurnTiming:
    """When the user turn ended, and when each stage of the answer ended so far."""

    stopped_speaking_at: float | None
    """Loop time the user's voice ended (a typed turn: when the text was sent)."""
    end_of_turn_delay: float | None
    """None for a typed turn (no endpointing)."""
    typed: bool = False
    turn_id: str = field(default_factory=_turn_id)
    marks: list[tuple[LatencyStageName, float]] = field(default_factory=list)
    """(stage, loop time it ended), in the order they happened."""
    handed_off: bool = False
    """A tool handed over to another agent before anything was heard."""

    def mark(self, stage: LatencyStageName, at: float) -> None:
        self.marks.append((stage, at))

    def stages(
        self, final: list[tuple[LatencyStageName, float | None]], first_output_at: float
    ) -> list[LatencyStage]:
        """The stages up to ``first_output_at``: those marked so far, then the last round's
        ``final`` ones (a None time: not measured, folded into the next). Each ends no earlier
        than the one before and no later than the first output, so they add up to the
        end-to-end latency exactly (a preemptive reply's first token, ready before the turn
        ended, makes its ``llm`` stage 0)."""
        if self.stopped_speaking_at is None:
            return []
        start = self.stopped_speaking_at
        points = [*self.marks, *((name, t) for name, t in final if t is not None)]
        out: list[LatencyStage] = []
        prev = start
        for name, t in points:
            end = min(max(t, prev), first_output_at)
            out.append(LatencyStage(name=name, seconds=end - prev))
            prev = end
        if prev < first_output_at:  # (what no stage measured: on the way out)
            out.append(LatencyStage(name="playout", seconds=first_output_at - prev))
        return out
