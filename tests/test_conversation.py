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
    format_call,
    format_tool_call,
    history_entries,
    pending_calls,
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


def test_a_tool_call_says_where_it_is() -> None:
    c = fr.call("get_time", call_id="c9", timezone="Europe/Paris")
    (running,) = pending_calls(fr.tools_started(c), 1.0)
    (waiting,) = pending_calls(fr.tool_break(c), 1.0)
    assert (running.status, running.call_id, running.output) == ("running", "c9", None)
    assert waiting.status == "waiting"

    def done(**kw: object) -> ToolCall:
        (entry,) = event_entries(fr.tools_executed(fr.execution(c, "out", **kw)), 2.0)
        assert isinstance(entry, ToolCall) and entry.call_id == "c9"
        return entry

    assert done().status == "ok"
    assert done(mocked=True).status == "mocked"
    cancelled = done(cancelled=True)
    assert cancelled.status == "cancelled" and cancelled.failed
    raised = done(exception="ValueError: no")
    assert raised.status == "error" and raised.error == "ValueError: no"
    mocked_error = ToolCall(2.0, "get_time", "{}", "no such zone", is_error=True, mocked=True)
    assert mocked_error.status == "error" and mocked_error.error == "no such zone (mocked)"


async def test_the_live_view_shows_the_models_entries() -> None:
    """The TUI's conversation view is fed the model's entries: the same script gives one
    line per entry, in the model's order, with the headless line's words."""
    from tests.test_tui_app import lines, running

    async with running() as (app, pilot, rt):
        fr.emit_all(rt, fr.conversation_script())
        await fr.settle(pilot)
        shown = lines(app)
    entries = script_entries()
    assert len(shown) == len(entries)
    for line, entry in zip(shown, entries, strict=True):
        match entry:
            case Said():
                assert line.split(maxsplit=1)[1] == entry.text
            case ToolCall():
                assert format_call(entry.name, entry.arguments) in line and "✓" in line
            case Handoff():
                assert entry.new_agent_id in line
