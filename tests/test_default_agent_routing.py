"""The default agent's deterministic parts around the model: which tool a request needs
(router), what the model is told to call (tool_choice), speakable replies, durations in words,
arithmetic in words."""

from __future__ import annotations

from typing import Any

import pytest

from voicetui.agents.llm import ChatContext, FunctionCall, FunctionCallOutput
from voicetui.default_agent.agent import EXAMPLES, tool_choice_for, with_examples
from voicetui.default_agent.calculator import evaluate, spoken_expression
from voicetui.default_agent.router import route
from voicetui.default_agent.speech_text import SpeakableText, speakable
from voicetui.default_agent.timers import parse_duration

TOOLS = {"get_time", "calculate", "set_timer", "cancel_timer", "list_timers", "remember", "recall"}


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("What time is it?", ("get_time",)),
        ("what's the date in Sydney", ("get_time",)),
        ("What day of the week is it?", ("get_time",)),
        ("What is 1234 times 5678?", ("calculate",)),
        ("What's a 20% tip on 45 dollars?", ("calculate",)),
        ("How many seconds are in 3 hours?", ("calculate",)),
        ("Set a timer for five minutes.", ("set_timer",)),
        ("How much time is left on my timer?", ("list_timers",)),
        ("Cancel the tea timer.", ("cancel_timer",)),
        ("Remember that my locker code is 4417.", ("remember",)),
        ("Take a note: call mom on Sunday.", ("remember",)),
        ("What did I ask you to remember about the dentist?", ("recall",)),
        ("What time is it in Tokyo and what is 12 times 9?", ("get_time", "calculate")),
        ("Set a timer for 2 minutes and remember that the tea is on.", ("set_timer", "remember")),
        ("Tell me a joke.", ()),
        ("What is the capital of France?", ()),
        ("What's the weather like tomorrow?", ()),
        ("Book me a flight to Rome.", ()),
    ],
)
def test_route(text: str, tools: tuple[str, ...]) -> None:
    assert route(text).tools == tools


def test_a_short_follow_up_reuses_the_tools_of_the_turn_before() -> None:
    assert route("And in Sydney?", ("get_time",)).tools == ("get_time",)
    assert route("And in Sydney?").tools == ()
    assert route("And then I went home and cooked dinner for everyone", ("get_time",)).tools == ()


def _ctx(*items: object) -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(role="system", content="instructions")
    for item in items:
        if isinstance(item, str):
            ctx.add_message(role="user", content=item)
        else:
            ctx.append(item)  # type: ignore[arg-type]
    return ctx


def test_tool_choice_names_each_needed_tool_then_none() -> None:
    ctx = _ctx("What time is it in Tokyo and what is 12 times 9?")
    assert tool_choice_for(ctx, TOOLS) == {"type": "function", "function": {"name": "get_time"}}
    ctx.append(FunctionCall(call_id="a", name="get_time", arguments="{}"))
    ctx.append(FunctionCallOutput(call_id="a", name="get_time", output="x", is_error=False))
    assert tool_choice_for(ctx, TOOLS) == {"type": "function", "function": {"name": "calculate"}}
    ctx.append(FunctionCall(call_id="b", name="calculate", arguments="{}"))
    ctx.append(FunctionCallOutput(call_id="b", name="calculate", output="108", is_error=False))
    assert tool_choice_for(ctx, TOOLS) == "none"
    assert tool_choice_for(_ctx("Tell me a joke."), TOOLS) == "none"
    assert tool_choice_for(_ctx("What time is it?"), TOOLS - {"get_time"}) == "none"


def test_examples_follow_the_instructions() -> None:
    ctx = _ctx("hi")
    items = with_examples(ctx).items
    assert items[0] is ctx.items[0]
    assert items[1 : 1 + len(EXAMPLES)] == EXAMPLES
    assert items[-1] is ctx.items[-1]


@pytest.mark.parametrize(
    ("reply", "spoken"),
    [
        (
            "Sure! Here's a joke for you:\n\nWhy did the tomato turn red? 😀",
            "Why did the tomato turn red?",
        ),
        (
            "You have these notes:\n\n- buy milk\n- call mom",
            "You have these notes: buy milk. call mom",
        ),
        ("The **answer** is `42`.", "The answer is 42."),
        ('{"name": "get_time", "arguments": {}}', ""),
        ('It is 14:05. {"name": "x"}', "It is 14:05."),
        ("Sure!", "Sure!"),
        ("The set {1, 2} is small.", "The set {1, 2} is small."),
    ],
)
def test_speakable_whatever_the_chunking(reply: str, spoken: str) -> None:
    assert speakable(reply) == spoken
    for size in (1, 2, 3, 7):
        text = SpeakableText()
        pieces = [text.feed(reply[i : i + size]) for i in range(0, len(reply), size)]
        assert ("".join(pieces) + text.flush()).strip() == spoken


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5 minutes", 300),
        ("five minutes", 300),
        ("1 hour 30 minutes", 5400),
        ("half an hour", 1800),
        ("90 seconds", 90),
        ("300", 300),
        ("2 mins", 120),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_refuses_what_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("square root of 169", 13),
        ("15 percent of 80", 12),
        ("20% of 45", 9),
        ("12 times 9", 108),
        ("2 to the power of 10", 1024),
        ("1000 minus 357", 643),
        ("10 % 3", 1),  # still the modulo
        ("seconds in 3 hours", 10800),
        ("How many hours are in a week?", 168),
        ("2 days in minutes", 2880),
        ("How many minutes are in two days?", 2880),
        ("seconds in five minutes", 300),
    ],
)
def test_calculator_takes_words(expression: str, value: float) -> None:
    assert evaluate(expression) == value


def test_spoken_expression() -> None:
    assert spoken_expression("12 * 7.5 / 2 + 1 - 3") == "12 times 7.5 divided by 2 plus 1 minus 3"


@pytest.mark.parametrize(
    ("request_text", "phrase"),
    [
        ("What's the square root of 169?", "the square root of 169"),
        ("What time is it in Tokyo and what is 12 times 9?", "12 times 9"),
        (
            "How much is a 15 percent tip on a 60 dollar bill?",
            "a 15 percent tip on a 60 dollar bill",
        ),
        ("How many hours are in a week?", "How many hours are in a week"),
        ("Blah the fizzbuzz over the thing.", None),
        ("What time is it?", None),
    ],
)
def test_arithmetic_in_a_request(request_text: str, phrase: str | None) -> None:
    from voicetui.default_agent.calculator import arithmetic_in

    assert arithmetic_in(request_text) == phrase


async def test_arithmetic_the_calculator_reads_is_called_without_the_model(tmp_path: Any) -> None:
    from voicetui.agents import AgentSession
    from voicetui.agents.testing import FakeLLM, FakeLLMResponse
    from voicetui.default_agent import DefaultAgent

    llm = FakeLLM([FakeLLMResponse(content="The answer is 13.")])  # only the answer is asked for
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    session: AgentSession[None] = AgentSession(llm=llm, user_away_timeout=None)
    await session.start(agent)
    result = await session.run(user_input="What's the square root of 169?")
    call = result.expect.next_event().is_function_call(name="calculate")
    assert call.item.arguments == '{"expression": "the square root of 169"}'
    result.expect.next_event().is_function_call_output(output="the square root of 169 is 13")
    result.expect.next_event().is_message(role="assistant")
    await session.aclose()
