"""The Timeline tab: a turn's events drawn on their lanes at their times — the user's voice, the
final transcript, the end-of-turn decision with the model's probability, the agent thinking and
speaking, a tool call as a span, the interrupted reply and a false interruption; zoom and scroll
move the window, End follows again; a recording shows the same (not live)."""

from __future__ import annotations

from typing import Any

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from voicetui.agents.llm.chat_context import ChatMessage, MetricsReport
from voicetui.agents.metrics import EOUMetrics
from voicetui.agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    MetricsCollectedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.widgets.timeline import SCALES, TimelinePanel

T = fr.T0


def turn() -> list[Any]:
    weather = fr.call("get_weather", "call_9", city="Oslo")
    reply = ChatMessage(
        role="assistant",
        content=["It is sunny in"],
        interrupted=True,
        metrics=MetricsReport(started_speaking_at=T + 3.9, stopped_speaking_at=T + 5.0),
    )
    return [
        UserStateChangedEvent(old_state="listening", new_state="speaking", created_at=T + 1.0),
        UserStateChangedEvent(old_state="speaking", new_state="listening", created_at=T + 2.5),
        UserInputTranscribedEvent(transcript="weather in Oslo", is_final=True, created_at=T + 2.6),
        MetricsCollectedEvent(
            metrics=EOUMetrics(
                timestamp=T + 3.0,
                end_of_utterance_delay=0.5,
                end_of_turn_probability=0.91,
                end_of_turn_threshold=0.5,
            ),
            created_at=T + 3.0,
        ),
        AgentStateChangedEvent(old_state="listening", new_state="thinking", created_at=T + 3.0),
        FunctionToolsStartedEvent(function_calls=[weather], speech_id="s1", created_at=T + 3.1),
        FunctionToolsExecutedEvent(
            executions=[fr.execution(weather, "sunny", 0.5)], speech_id="s1", created_at=T + 3.6
        ),
        AgentStateChangedEvent(old_state="thinking", new_state="speaking", created_at=T + 3.9),
        AgentStateChangedEvent(old_state="speaking", new_state="listening", created_at=T + 5.0),
        ConversationItemAddedEvent(item=reply, created_at=T + 5.0),
        AgentFalseInterruptionEvent(resumed=True, created_at=T + 6.5),
    ]


async def test_a_turn_on_its_lanes() -> None:
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, clock=lambda: T + 65, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        rt.emit(*turn())
        await settle(pilot)
        panel = app.query_one("#timeline", TimelinePanel)
        panel.live = False  # (the window ends at the last event, not at the real clock)
        app.query_one("#tabs").active = "timeline-tab"  # type: ignore[attr-defined]
        await settle(pilot)
        model = panel.model
        spans = {
            (s.lane, s.kind): (round(s.start - T, 2), round((s.end or 0) - T, 2))
            for s in model.spans
        }
        assert spans[("user", "voice")] == (1.0, 2.5)
        assert spans[("agent", "thinking")] == (3.0, 3.9)
        assert spans[("agent", "speaking")] == (3.9, 5.0)
        assert spans[("tools", "tool")] == (3.1, 3.6)
        assert spans[("audio", "played")] == (3.9, 5.0)
        marks = {(mk.lane, mk.kind): mk.label for mk in model.marks}
        assert marks[("turn", "eot")] == "EOU 0.50s p=0.91/0.50"
        assert marks[("stt", "final")] == "weather in Oslo"
        assert ("marks", "interrupted") in marks and ("marks", "false_interruption") in marks

        text = panel.render().plain.splitlines()
        rows = {line[:13].strip(): line[14:] for line in text[2:]}
        assert set(rows) == {
            "user voice",
            "transcript",
            "end of turn",
            "agent",
            "agent audio",
            "tools",
            "interrupts",
        }
        # 0.1 s a cell, ending a cell after the last event (6.5 s): 1.0-2.5 s is 15 cells of voice
        assert rows["user voice"].count("█") == 16
        assert "▲EOU 0.50s p=0.91/0.50" in rows["end of turn"]
        assert "━get_weather" in rows["tools"]
        assert "✕interrupted" in rows["interrupts"] and "↺" in rows["interrupts"]
        assert "◆weather in Oslo" in rows["transcript"]

        # zoom in: fewer seconds on screen; scroll back: not following; End: following again
        panel.focus()
        await pilot.press("plus")
        assert panel.scale == SCALES[1]
        await pilot.press("left")
        assert not panel.follow
        start, end = panel.window()
        await pilot.press("end")
        assert panel.follow and panel.window()[1] > end
