"""Answers said straight from the tools' results (``voicetui.default_agent.direct``), and the
agent using them: the tool call and its result stay in the history, the LLM is not asked again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicetui.agents import AgentSession
from voicetui.agents.llm import ChatMessage, FunctionCall, FunctionCallOutput
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall
from voicetui.default_agent import DefaultAgent, current_time
from voicetui.default_agent.direct import ToolResult, direct_answer, spoken_time
from voicetui.default_agent.rule_calls import rule_arguments


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        (
            "Asia/Tokyo",
            datetime(2026, 11, 24, 5, 5, tzinfo=UTC),
            "In Tokyo it's 2:05 in the afternoon on Tuesday 24 November 2026.",
        ),
        (
            "America/New_York",
            datetime(2026, 11, 24, 5, 30, tzinfo=UTC),
            "In New York it's 12:30 at night on Tuesday 24 November 2026.",
        ),
        (
            "Europe/Paris",
            datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
            "In Paris it's 9:00 in the morning on Tuesday 24 November 2026.",
        ),
    ],
)
def test_spoken_time_of_a_zone(zone: str, moment: datetime, expected: str) -> None:
    assert spoken_time(current_time(zone, now=moment)) == expected


def test_spoken_time_here_names_no_place() -> None:
    assert spoken_time("19:45 on Thursday 3 December 2026 (CET, UTC+01:00)") == (
        "It's 7:45 in the evening on Thursday 3 December 2026."
    )
    assert spoken_time("not a time") is None


def test_direct_answers_of_each_tool() -> None:
    def say(name: str, output: str) -> str | None:
        return direct_answer([ToolResult(name, output)])

    assert say("calculate", "15 percent of 80 is 12") == "15 percent of 80 is 12."
    assert say("set_timer", "the tea timer is set for 4 minutes") == (
        "The tea timer is set for 4 minutes."
    )
    assert say("cancel_timer", "cancelled the tea timer") == "I cancelled the tea timer."
    assert say("cancel_timer", "no timer is running, so there was nothing to cancel") == (
        "No timer is running, so there was nothing to cancel."
    )
    assert say("list_timers", "no timers are running") == "No timers are running."
    assert say(
        "list_timers", "the eggs timer: 2 minutes left; the pasta timer: 30 seconds left"
    ) == ("The eggs timer has 2 minutes left, and the pasta timer has 30 seconds left.")
    assert say("remember", "saved the note: buy milk tomorrow") == (
        "I saved the note: buy milk tomorrow."
    )


def test_no_direct_answer_when_the_model_must_phrase_it() -> None:
    assert direct_answer([]) is None
    assert (
        direct_answer([ToolResult("recall", "- my locker code is 4417 (saved 2026-12-03)")]) is None
    )
    assert direct_answer([ToolResult("calculate", "division by zero", is_error=True)]) is None
    assert direct_answer([ToolResult("some_tool", "42")]) is None
    two = [ToolResult("calculate", "12 times 9 is 108"), ToolResult("recall", "- a note")]
    assert direct_answer(two) is None


def test_two_tools_give_two_sentences_in_order() -> None:
    results = [
        ToolResult("set_timer", "the 2 minute timer is set for 2 minutes"),
        ToolResult("remember", "saved the note: the tea is steeping"),
    ]
    assert direct_answer(results) == (
        "The 2 minute timer is set for 2 minutes. I saved the note: the tea is steeping."
    )


async def test_the_agent_says_the_result_without_a_second_llm_step(tmp_path: Path) -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(
                tool_calls=[FakeToolCall("set_timer", {"duration": "4 minutes", "label": "tea"})]
            )
        ]
    )
    agent = DefaultAgent(notes_path=tmp_path / "notes.json", rule_calls=False)
    async with AgentSession(llm=llm) as session:
        await session.start(agent)
        result = await session.run(user_input="Set a timer for 4 minutes for the tea.")
        items = [ev.item for ev in result.events]
        agent.timers.cancel("")
    assert len(llm.calls) == 1  # the call only: no second step to phrase the result
    assert [type(i).__name__ for i in items] == [
        "FunctionCall",
        "FunctionCallOutput",
        "ChatMessage",
    ]
    call, output, reply = items
    assert isinstance(call, FunctionCall) and call.name == "set_timer"
    assert isinstance(output, FunctionCallOutput) and output.call_id == call.call_id
    assert isinstance(reply, ChatMessage) and reply.role == "assistant"
    assert reply.text_content == "The tea timer is set for 4 minutes."


async def test_the_agent_asks_the_model_when_direct_answers_are_off(tmp_path: Path) -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(tool_calls=[FakeToolCall("remember", {"note": "buy milk"})]),
            FakeLLMResponse(content="Okay, I'll remember to buy milk."),
        ]
    )
    agent = DefaultAgent(notes_path=tmp_path / "notes.json", direct_answers=False, rule_calls=False)
    async with AgentSession(llm=llm) as session:
        await session.start(agent)
        result = await session.run(user_input="Remember to buy milk.")
    assert len(llm.calls) == 2
    replies = [
        ev.item.text_content
        for ev in result.events
        if isinstance(ev.item, ChatMessage) and ev.item.role == "assistant"
    ]
    assert replies == ["Okay, I'll remember to buy milk."]


def test_the_time_alone_does_not_answer_a_question_about_another_day() -> None:
    result = [ToolResult("get_time", "19:45 on Thursday 3 December 2026 (CET, UTC+01:00)")]
    assert direct_answer(result, "What day of the week is it?") is not None
    assert direct_answer(result, "What day is it tomorrow?") is None
    assert direct_answer(result, "How many days until Friday?") is None


@pytest.mark.parametrize(
    ("tool", "text", "arguments"),
    [
        ("get_time", "What time is it right now?", {}),
        ("get_time", "Is it night in Hong Kong?", {"timezone": "Asia/Hong_Kong"}),
        ("get_time", "what's the date in new york", {"timezone": "America/New_York"}),
        ("get_time", "And in Chicago?", {"timezone": "America/Chicago"}),
        ("get_time", "What time is it in the morning in Madrid?", {"timezone": "Europe/Madrid"}),
        ("get_time", "What about Paris?", {"timezone": "Europe/Paris"}),
        ("get_time", "and then Sydney", {"timezone": "Australia/Sydney"}),
        ("get_time", "And now?", None),  # a follow-up naming no known place: the model
        ("get_time", "What time is it in Narnia?", None),  # the model decides
        ("get_time", "What time is it in the UK?", None),
        ("calculate", "What's 12 percent of 75?", {"expression": "12 percent of 75"}),
        ("set_timer", "Set a timer for 15 minutes.", {"duration": "15 minutes", "label": ""}),
        (
            "set_timer",
            "Start a 7 minute timer for the rice.",
            {"duration": "7 minute", "label": "rice"},
        ),
        (
            "set_timer",
            "Set a timer for 1 hour 30 minutes for the roast and remember to baste it",
            {"duration": "1 hour 30 minutes", "label": "roast"},
        ),
        ("set_timer", "Set a timer for an hour and a half.", None),
        ("set_timer", "Set an alarm for 7 am.", None),
        ("cancel_timer", "Stop the rice timer.", {"label": "rice"}),
        ("cancel_timer", "Cancel all my timers.", {"label": ""}),
        ("cancel_timer", "Cancel my timer.", {"label": ""}),
        ("cancel_timer", "Cancel the 5 minute timer.", None),
        ("list_timers", "Which timers do I have?", {}),
        (
            "remember",
            "Remember that my wifi password is on the fridge.",
            {"note": "My wifi password is on the fridge."},
        ),
        ("remember", "Make a note to water the plants.", {"note": "Water the plants."}),
        ("remember", "Please remember my bike is blue", {"note": "My bike is blue."}),
        ("remember", "Write that down.", None),
        ("recall", "What notes do I have?", None),  # the model words the query
    ],
)
def test_rule_arguments(tool: str, text: str, arguments: dict[str, str] | None) -> None:
    assert rule_arguments(tool, text) == arguments


async def test_a_rule_call_needs_no_llm_at_all(tmp_path: Path) -> None:
    llm = FakeLLM([])
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    async with AgentSession(llm=llm) as session:
        await session.start(agent)
        result = await session.run(user_input="Set a timer for 3 minutes for the eggs.")
        items = [ev.item for ev in result.events]
        agent.timers.cancel("")
    assert llm.calls == []
    call, output, reply = items
    assert isinstance(call, FunctionCall) and call.name == "set_timer"
    assert call.arguments == '{"duration": "3 minutes", "label": "eggs"}'
    assert isinstance(output, FunctionCallOutput) and output.output == (
        "the eggs timer is set for 3 minutes"
    )
    assert isinstance(reply, ChatMessage) and reply.text_content == (
        "The eggs timer is set for 3 minutes."
    )
    # the history the model sees next turn holds the call, its result and the answer
    assert [type(i).__name__ for i in session.history.items][-3:] == [
        "FunctionCall",
        "FunctionCallOutput",
        "ChatMessage",
    ]


async def test_an_unlabelled_timer_is_named_by_its_duration(tmp_path: Path) -> None:
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    async with AgentSession(llm=FakeLLM([])) as session:
        await session.start(agent)
        result = await session.run(user_input="Set a timer for 5 minutes.")
        agent.timers.cancel("")
    assert result.final_output == "The 5 minute timer is set for 5 minutes."
