"""The latency panel's rows: metrics find their turn by its id (even when two turns' metrics
interleave), the reply's stages make the bar and the tools column, and the summary's per-stage
percentiles and worst turn come from them."""

from __future__ import annotations

from voicetui.agents.llm.chat_context import LatencyStage, MetricsReport
from voicetui.agents.metrics import EOUMetrics, LLMMetrics, TTSMetrics
from voicetui.tui.latency import LatencyBook


def report(turn_id: str, e2e: float, stages: list[tuple[str, float]]) -> MetricsReport:
    return MetricsReport(
        turn_id=turn_id,
        e2e_latency=e2e,
        latency_stages=[LatencyStage(name=n, seconds=s) for n, s in stages],  # type: ignore[arg-type]
    )


def test_metrics_find_their_turn_by_id() -> None:
    book = LatencyBook()
    book.add_metrics(EOUMetrics(end_of_utterance_delay=0.5, turn_id="turn_a"))
    book.add_metrics(EOUMetrics(end_of_utterance_delay=0.6, turn_id="turn_b"))
    # turn a's LLM answers after turn b began (a preemptive reply, a slow first round)
    book.add_metrics(LLMMetrics(ttft=0.3, turn_id="turn_a"))
    book.add_metrics(LLMMetrics(ttft=0.4, turn_id="turn_b"))
    book.add_metrics(TTSMetrics(ttfb=0.2, turn_id="turn_b"))
    a, b = book.rows
    assert (a.eou, a.llm, a.tts) == (0.5, 0.3, None)
    assert (b.eou, b.llm, b.tts) == (0.6, 0.4, 0.2)
    book.add_assistant_report(report("turn_a", 1.0, [("endpointing", 0.5), ("llm", 0.5)]))
    assert a.closed and a.e2e == 1.0 and not b.closed


def test_stages_make_the_bar_the_tools_column_and_the_summary() -> None:
    book = LatencyBook()
    turns = {
        "t1": (1.0, [("endpointing", 0.5), ("llm", 0.3), ("tts", 0.2)]),
        "t2": (
            2.5,
            [("endpointing", 0.5), ("llm", 0.3), ("tools", 1.0), ("llm", 0.5), ("tts", 0.2)],
        ),
        "t3": (1.2, [("endpointing", 0.6), ("llm", 0.4), ("tts", 0.2)]),
    }
    for turn_id, (e2e, stages) in turns.items():
        book.add_metrics(EOUMetrics(end_of_utterance_delay=stages[0][1], turn_id=turn_id))
        book.add_assistant_report(report(turn_id, e2e, stages))
    r1, r2, r3 = book.rows
    assert r2.segments() == turns["t2"][1]
    assert r2.tools == 1.0 and r1.tools is None
    assert sum(s for _, s in r2.segments()) == 2.5
    worst = book.worst()
    assert worst is r2
    p50 = book.stage_percentiles(50)
    # per turn, two LLM rounds count as their sum; tools only over the turns that had any
    assert list(p50) == ["endpointing", "llm", "tools", "tts"]
    assert p50["llm"] == 0.4 and p50["tools"] == 1.0 and p50["endpointing"] == 0.5
    assert book.percentiles(50)["tools"] == 1.0


def test_recordings_and_replay_diffs_read_the_same_stages() -> None:
    from voicetui.conversation import Latency
    from voicetui.recording.diff import _lat_text

    stages = [("endpointing", 0.5), ("llm", 0.3), ("tools", 1.0), ("llm", 0.5), ("tts", 0.2)]
    before = Latency.of(report("t", 2.5, stages))
    after = Latency.of(report("t", 1.9, [*stages[:2], ("tools", 0.4), *stages[3:]]))
    assert before.tools == 1.0 and before.stages == tuple(stages)
    assert ("tools", 1.0) in before.parts()
    assert "tools 0.40 (-0.60)" in _lat_text(after, before)
