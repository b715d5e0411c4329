"""One conversation model, many renderers: the same session gives the same conversation
whether it is read from its events (live, or a recording) or from its history, and every
renderer writes it from that model."""

from __future__ import annotations

from tests import fake_runtime as fr
from voicetui.agents.llm import ChatMessage, FunctionCall, FunctionCallOutput
from voicetui.conversation import (
    Handoff,
    Said,
    ToolCall,
    build_turns,
    event_entries,
    format_tool_call,
    history_entries,
    shorten,
)
from voicetui.headless import event_line
from voicetui.recording.transcript import TranscriptRenderer
from voicetui.runtime._transcript import history_markdown


def script_entries() -> list[Said | ToolCall | Handoff]:
    return [
        entry for i, ev in enumerate(fr.conversation_script()) for entry in event_entries(ev, i)
    ]


def test_events_become_the_conversation() -> None:
    entries = script_entries()
    assert [type(e).__name__ for e in entries] == ["Said", "Said", "ToolCall", "Said"]
    greeting, question, call, answer = entries
    assert isinstance(question, Said) and question.role == "user" and question.typed
    assert isinstance(call, ToolCall) and call.name == "get_time" and call.duration == 0.012
    assert isinstance(answer, Said) and answer.latency.e2e == 1.08
    turns = build_turns(entries)
    assert [(t.user, t.agent_text) for t in turns] == [
        (None, "Hi! I'm your assistant. Ask me anything."),
        ("What time is it in Paris?", "It's 3:42 PM in Paris."),
    ]
    assert turns[1].tools == [call] and turns[1].latency.parts()[0] == ("e2e", 1.08)


def test_a_history_is_the_same_conversation() -> None:
    items = [
        ChatMessage(role="system", content=["Be brief."]),
        ChatMessage(role="user", content=["weather in paris"]),
        FunctionCall(call_id="c1", name="get_weather", arguments='{"city": "Paris"}'),
        FunctionCallOutput(call_id="c1", output="sunny", is_error=False),
        ChatMessage(role="assistant", content=["Sunny."], interrupted=True),
    ]
    entries = history_entries(items)
    assert [(type(e).__name__, getattr(e, "text", None)) for e in entries] == [
        ("Said", "weather in paris"),
        ("ToolCall", None),
        ("Said", "Sunny."),
    ]
    markdown = history_markdown(items)
    assert '> 🔧 `get_weather(city="Paris") → sunny`' in markdown
    assert "Sunny. _(interrupted)_" in markdown and "Be brief" not in markdown


def test_every_renderer_writes_a_tool_call_from_the_model() -> None:
    c = fr.call("get_time", timezone="Europe/Paris")
    executed = fr.tools_executed(fr.execution(c, "15:42"))
    line = format_tool_call(c.name, c.arguments, "15:42", False)
    assert line == 'get_time(timezone="Europe/Paris") → 15:42'
    assert event_line(executed) == (f"tool: {line}", False)
    md = TranscriptRenderer().render_event(2.0, executed)
    assert md.startswith('- `00:02.00` **Tool call:** `get_time({"timezone": "Europe/Paris"})`')
    assert shorten("a  b\nc" * 100, 10) == "a b ca b …"
