"""Per-turn latency rows from the session's metrics (no UI here).

A row opens when an end-of-turn report arrives (``eou_metrics``: end-of-utterance delay and
transcription delay) or, for typed turns, with the first LLM/TTS metrics; the first LLM TTFT and
TTS TTFB after it fill the row; the assistant message closes it with its own per-turn report
(``end_of_turn_delay``, ``llm_node_ttft``, ``tts_node_ttfb``, ``e2e_latency`` and the stages it
adds up from), which wins. Metrics find their row by the turn id they all carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..agents.llm.chat_context import MetricsReport
from ..agents.metrics import EOUMetrics, LLMMetrics, STTMetrics, TTSMetrics, VADMetrics
from .format import percentile

COLUMNS: tuple[str, ...] = ("eou", "stt", "llm", "tools", "tts", "e2e")
LABELS: dict[str, str] = {
    "eou": "EOU",
    "stt": "STT",
    "llm": "LLM TTFT",
    "tools": "tools",
    "tts": "TTS TTFB",
    "e2e": "E2E",
}
STAGE_LABELS: dict[str, str] = {
    "endpointing": "EOU",
    "on_user_turn_completed": "hook",
    "llm": "LLM",
    "tools": "tools",
    "handoff": "handoff",
    "tts": "TTS",
    "playout": "out",
    "eou": "EOU",
    "other": "other",
}
"""The stacked bar's parts (the stages of ``MetricsReport.latency_stages``; rows of recordings
made before them: EOU, LLM, TTS and what is left of e2e as ``other``)."""


@dataclass(slots=True)
class TurnLatency:
    index: int
    eou: float | None = None
    """End-of-utterance delay: the user stopped speaking → the turn was committed."""
    stt: float | None = None
    """Transcription delay: the user stopped speaking → the final transcript."""
    llm: float | None = None
    tts: float | None = None
    e2e: float | None = None
    """The user stopped speaking → the agent's first audio."""
    speech_id: str | None = None
    turn_id: str | None = None
    closed: bool = False
    typed: bool = False
    """A typed turn: e2e counts from when the text was sent (no EOU, no STT)."""
    stages: list[tuple[str, float]] | None = None
    """Where e2e went (the reply's report), in order; None: not reported."""
    end_of_turn_probability: float | None = None

    @property
    def label(self) -> str:
        return f"{self.index}⌨" if self.typed else str(self.index)

    @property
    def tools(self) -> float | None:
        """Seconds the user waited on tools (and handoffs) in this turn."""
        if self.stages is None:
            return None
        waited = [s for name, s in self.stages if name in ("tools", "handoff")]
        return sum(waited) if waited else None

    def value(self, column: str) -> float | None:
        v: float | None = getattr(self, column)
        return v

    def segments(self) -> list[tuple[str, float]]:
        """The stacked-bar parts: the reported stages, else EOU, LLM, TTS and the rest."""
        if self.stages:
            return [(name, max(0.0, s)) for name, s in self.stages]
        parts = [(c, v) for c in ("eou", "llm", "tts") if (v := self.value(c)) is not None]
        parts = [(c, max(0.0, v)) for c, v in parts]
        if self.e2e is not None:
            rest = self.e2e - sum(v for _, v in parts)
            if rest > 0.005:
                parts.append(("other", rest))
        return parts

    def total(self) -> float:
        if self.e2e is not None:
            return max(self.e2e, sum(v for c, v in self.segments() if c != "other"))
        return sum(v for _, v in self.segments())


def _ok(v: float | None) -> float | None:
    return v if v is not None and v >= 0 else None


class LatencyBook:
    def __init__(self) -> None:
        self.rows: list[TurnLatency] = []
        self._open: TurnLatency | None = None
        self._percentiles: dict[tuple[str, float], float | None] = {}
        """Computed percentiles by (column, p) until the next change (the sidebar asks for the
        e2e ones on every frame; the Latency tab for every column when it shows)."""

    def _new_row(self, speech_id: str | None = None, turn_id: str | None = None) -> TurnLatency:
        self._percentiles.clear()
        row = TurnLatency(index=len(self.rows) + 1, speech_id=speech_id, turn_id=turn_id)
        self.rows.append(row)
        self._open = row
        return row

    def _by_turn(self, turn_id: str | None) -> TurnLatency | None:
        if turn_id is not None:
            for row in reversed(self.rows[-16:]):
                if row.turn_id == turn_id:
                    return row
        return None

    def _target(self, speech_id: str | None, turn_id: str | None = None) -> TurnLatency:
        if (row := self._by_turn(turn_id)) is not None:
            return row
        if turn_id is not None:  # (a typed turn: its first metric opens its row)
            if self._open is not None and not self._open.closed and self._open.turn_id is None:
                self._open.turn_id = turn_id
                return self._open
            return self._new_row(speech_id, turn_id)
        if speech_id is not None:
            for row in reversed(self.rows[-8:]):
                if row.speech_id == speech_id and not row.closed:
                    return row
        if self._open is not None and not self._open.closed:
            return self._open
        return self._new_row(speech_id)

    def add_metrics(
        self, metrics: LLMMetrics | STTMetrics | TTSMetrics | VADMetrics | EOUMetrics
    ) -> TurnLatency | None:
        """Returns the row that changed, if any."""
        self._percentiles.clear()
        if isinstance(metrics, EOUMetrics):
            row = self._new_row(metrics.speech_id, metrics.turn_id)
            row.eou = _ok(metrics.end_of_utterance_delay)
            row.stt = _ok(metrics.transcription_delay)
            row.end_of_turn_probability = metrics.end_of_turn_probability
            return row
        if isinstance(metrics, LLMMetrics):
            ttft = _ok(metrics.ttft)
            if ttft is None:
                return None
            row = self._target(metrics.speech_id, metrics.turn_id)
            if row.llm is None:
                row.llm = ttft
                return row
            return None
        if isinstance(metrics, TTSMetrics):
            ttfb = _ok(metrics.ttfb)
            if ttfb is None:
                return None
            row = self._target(metrics.speech_id, metrics.turn_id)
            if row.tts is None:
                row.tts = ttfb
                return row
            return None
        return None

    def add_assistant_report(self, report: MetricsReport) -> TurnLatency | None:
        """The assistant message of a turn: fill the row with its report and close it."""
        self._percentiles.clear()
        values = {
            "eou": _ok(report.end_of_turn_delay),
            "llm": _ok(report.llm_node_ttft),
            "tts": _ok(report.tts_node_ttfb),
            "e2e": _ok(report.e2e_latency),
        }
        if all(v is None for v in values.values()):
            if self._open is not None:
                self._open.closed = True
                self._open = None
            return None
        row = self._by_turn(report.turn_id)
        if row is None:
            row = self._open if self._open is not None else self._new_row(turn_id=report.turn_id)
        for name, v in values.items():
            if v is not None:
                setattr(row, name, v)
        if report.latency_stages:
            row.stages = [(s.name, s.seconds) for s in report.latency_stages]
        row.typed = report.typed_input
        row.closed = True
        if row is self._open:
            self._open = None
        return row

    def worst(self) -> TurnLatency | None:
        """The turn with the longest e2e."""
        rows = [r for r in self.rows if r.e2e is not None]
        return max(rows, key=lambda r: r.e2e or 0.0) if rows else None

    def stage_percentiles(self, p: float) -> dict[str, float]:
        """Per stage, the ``p``-th percentile over the turns that went through it (a stage a
        turn went through twice, e.g. two LLM rounds around tools, counts as their sum), in
        the stages' order."""
        sums: dict[str, list[float]] = {}
        for r in self.rows:
            if not r.stages:
                continue
            per_turn: dict[str, float] = {}
            for name, s in r.stages:
                per_turn[name] = per_turn.get(name, 0.0) + s
            for name, total in per_turn.items():
                sums.setdefault(name, []).append(total)
        return {
            n: v for n in STAGE_LABELS if n in sums and (v := percentile(sums[n], p)) is not None
        }

    def percentiles(self, p: float) -> dict[str, float | None]:
        return {c: self.percentile(c, p) for c in COLUMNS}

    def percentile(self, column: str, p: float) -> float | None:
        """The ``p``-th percentile of one column (None: no turn measured it)."""
        key = (column, p)
        if key not in self._percentiles:
            self._percentiles[key] = percentile(self.values(column), p)
        return self._percentiles[key]

    def values(self, column: str) -> list[float]:
        return [v for r in self.rows if (v := r.value(column)) is not None]

    def clear(self) -> None:
        self.rows.clear()
        self._open = None
        self._percentiles.clear()
