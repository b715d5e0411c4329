"""The default agent's tools: a calculator that cannot be abused, time zones, timers that speak
when they fire (on virtual time, in a session with fakes), notes kept as JSON."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from voicetui.agents import AgentSession, ToolError
from voicetui.agents.llm import ChatMessage
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeTextOutput, FakeToolCall
from voicetui.default_agent import (
    CalculatorError,
    DefaultAgent,
    NotesStore,
    TimeZoneError,
    current_time,
    default_notes_path,
    describe_duration,
    evaluate,
    find_zone,
    format_number,
)


# --- calculator -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("-3 ** 2", -9),
        ("2 ** -1", 0.5),
        ("7 // 2 + 7 % 2", 4),
        ("10 / 4", 2.5),
        ("--5", 5),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(pi, 2)", 3.14),
        ("log(100, 10)", 2.0),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("factorial(5)", 120),
        ("2 ** 64", 18446744073709551616),
        ("3 × 4 ÷ 2 − 1", 5.0),
        ("1e3 + 0.5", 1000.5),
    ],
)
def test_calculator_computes(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('ls')", "is not an allowed function"),
        ("os.system('ls')", "this call is not an allowed function"),
        ("(1).__class__", "Attribute is not allowed"),
        ("open('/etc/passwd')", "open is not an allowed function"),
        ("eval('1+1')", "eval is not an allowed function"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("[1, 2][0]", "Subscript is not allowed"),
        ("(lambda: 1)()", "this call is not an allowed function"),
        ("[i for i in range(9)]", "ListComp is not allowed"),
        ("sqrt(x=4)", "positional arguments only"),
        ("1 if 1 else 2", "IfExp is not allowed"),
        ("1 < 2", "Compare is not allowed"),
        ("2 ^ 3", "use \\*\\* for powers"),
        ("1 << 4", "the operator << is not allowed"),
        ("1j * 2", "only numbers are allowed"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("9 ** 9 ** 9", "exponents are limited"),
        ("2 ** 100000", "exponents are limited"),
        ("2 ** 5000", "too large"),
        ("10 ** 4000 * 10 ** 4000", "too large"),
        ("factorial(100000)", "factorial is limited"),
        ("exp(1000)", "too large"),
        ("1e308 * 10", "too large"),
        ("(-8) ** 0.5", "not a real number"),
        ("sqrt(-1)", "sqrt: math domain error"),
        ("", "empty"),
        ("1 +", "is not a valid calculation"),
        ("1" + " + 1" * 200, "limited to 300 characters"),
    ],
)
def test_calculator_refuses(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(CalculatorError, match=message):
        evaluate(expression)
    assert time.perf_counter() - started < 0.5


def test_format_number() -> None:
    assert format_number(4.0) == "4"
    assert format_number(1 / 3) == "0.3333333333"
    assert format_number(12) == "12"
    assert format_number(1e20) == "1e+20"


async def test_calculate_tool_reports_errors_to_the_llm(tmp_path: Path) -> None:
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    assert await agent.calculate(expression="6 * 7") == "6 times 7 is 42"
    with pytest.raises(ToolError, match="'import os' is not a valid calculation"):
        await agent.calculate(expression="import os")
    with pytest.raises(ToolError, match="unknown name 'y'"):
        await agent.calculate(expression="y")


# --- time ---------------------------------------------------------------------------------------
SUMMER = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
WINTER = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        ("Europe/Paris", SUMMER, "14:00 on Wednesday 1 July 2026 (Europe/Paris, UTC+02:00)"),
        ("Europe/Paris", WINTER, "13:00 on Thursday 15 January 2026 (Europe/Paris, UTC+01:00)"),
        (
            "america/new york",
            SUMMER,
            "08:00 on Wednesday 1 July 2026 (America/New_York, UTC-04:00)",
        ),
        ("Asia/Kolkata", WINTER, "17:30 on Thursday 15 January 2026 (Asia/Kolkata, UTC+05:30)"),
        ("Tokyo", WINTER, "21:00 on Thursday 15 January 2026 (Asia/Tokyo, UTC+09:00)"),
        ("utc", WINTER, "12:00 on Thursday 15 January 2026 (UTC, UTC+00:00)"),
    ],
)
def test_current_time_in_zones(zone: str, moment: datetime, expected: str) -> None:
    assert current_time(zone, now=moment) == expected


def test_current_time_here_and_unknown_zones() -> None:
    here = current_time()
    assert here[2] == ":" and "UTC" in here
    with pytest.raises(TimeZoneError, match="unknown time zone 'Mars/Olympus'; use an IANA name"):
        find_zone("Mars/Olympus")
    with pytest.raises(TimeZoneError, match="empty"):
        find_zone("  ")


async def test_get_time_tool(tmp_path: Path) -> None:
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    assert "(Europe/Paris, UTC+0" in await agent.get_time(timezone="Europe/Paris")
    with pytest.raises(ToolError, match="unknown time zone"):
        await agent.get_time(timezone="Nowhere/Land")


# --- timers ----------------------------------------------------------------------------------
def test_describe_duration() -> None:
    assert describe_duration(300) == "5 minutes"
    assert describe_duration(90) == "1 minute 30 seconds"
    assert describe_duration(3661) == "1 hour 1 minute 1 second"
    assert describe_duration(0) == "0 seconds"


def _assistant(session: AgentSession[Any]) -> list[str]:
    return [
        m.text_content or ""
        for m in session.history.items
        if isinstance(m, ChatMessage) and m.role == "assistant"
    ]


def timer_llm() -> FakeLLM:
    return FakeLLM(
        [
            FakeLLMResponse(
                input="tea timer please",
                tool_calls=[FakeToolCall("set_timer", {"duration": "5 minutes", "label": "tea"})],
            ),
            FakeLLMResponse(content="Your tea timer is set."),
            FakeLLMResponse(
                input="and an egg timer",
                tool_calls=[
                    FakeToolCall("set_timer", {"duration": "seven minutes", "label": "egg"})
                ],
            ),
            FakeLLMResponse(content="Egg timer set."),
        ]
    )


@pytest.mark.looptime
async def test_timer_fires_and_speaks(tmp_path: Path) -> None:
    session: AgentSession[Any] = AgentSession(llm=timer_llm())
    text = FakeTextOutput()
    session.output.transcription = text
    # the model phrases the answer (direct answers: tests/test_default_agent_direct.py)
    agent = DefaultAgent(notes_path=tmp_path / "notes.json", direct_answers=False, rule_calls=False)
    await session.start(agent)
    result = await session.run(user_input="tea timer please")
    assert result.final_output == "Your tea timer is set."
    assert [t.label for t in agent.timers.active()] == ["tea"]
    listed = await agent.list_timers()
    assert listed.startswith("the tea timer: ") and "minute" in listed
    loop = asyncio.get_running_loop()
    set_at = loop.time()
    await asyncio.sleep(299)
    assert _assistant(session) == ["Your tea timer is set."]
    await asyncio.sleep(2)
    assert _assistant(session)[-1] == "Your tea timer for 5 minutes is done."
    assert text.messages[-1] == "Your tea timer for 5 minutes is done."
    assert loop.time() - set_at == pytest.approx(301, abs=0.5)
    assert agent.timers.active() == []
    await session.aclose()


@pytest.mark.looptime
async def test_timers_are_cancelled_with_the_session(tmp_path: Path) -> None:
    session: AgentSession[Any] = AgentSession(llm=timer_llm())
    agent = DefaultAgent(notes_path=tmp_path / "notes.json", direct_answers=False, rule_calls=False)
    await session.start(agent)
    await session.run(user_input="tea timer please")
    await session.run(user_input="and an egg timer")
    assert [t.label for t in agent.timers.active()] == ["tea", "egg"]
    assert await agent.cancel_timer(label="egg") == "cancelled the egg timer"
    assert (
        await agent.cancel_timer(label="egg")
        == "no timer is running, so there was nothing to cancel"
    )
    tasks = [t.task for t in agent.timers.active()]
    await session.aclose()
    assert agent.timers.active() == []
    await asyncio.sleep(0)
    assert all(t is not None and t.done() for t in tasks)
    await asyncio.sleep(600)
    assert _assistant(session) == ["Your tea timer is set.", "Egg timer set."]


async def test_timer_limits(tmp_path: Path) -> None:
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    with pytest.raises(ValueError, match="above 0"):
        agent.timers.start(0)
    with pytest.raises(ValueError, match="24 hours"):
        agent.timers.start(2 * 86400)
    agent.timers.cancel_all()


# --- notes -----------------------------------------------------------------------------------
def test_notes_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "data" / "notes.json"
    store = NotesStore(path)
    assert store.recall() == []
    store.remember("The wifi password is   hunter2")
    store.remember("Parking spot is B12")
    store.remember("Mum's birthday is on 3 May")
    data = json.loads(path.read_text())
    assert [n["text"] for n in data["notes"]] == [
        "The wifi password is hunter2",
        "Parking spot is B12",
        "Mum's birthday is on 3 May",
    ]
    again = NotesStore(path)  # another process later
    assert [n.text for n in again.recall("wifi password")] == ["The wifi password is hunter2"]
    assert again.recall()[0].text == "Mum's birthday is on 3 May"
    assert again.recall("bicycle") == []
    assert again.forget("parking") == 1
    assert [n.text for n in NotesStore(path).recall(limit=5)] == [
        "Mum's birthday is on 3 May",
        "The wifi password is hunter2",
    ]
    with pytest.raises(ValueError, match="nothing to remember"):
        store.remember("   ")


def test_a_corrupt_notes_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text("{not json")
    store = NotesStore(path)
    assert store.recall() == []
    assert (tmp_path / "notes.json.corrupt").read_text() == "{not json"
    store.remember("fresh start")
    assert [n.text for n in store.recall()] == ["fresh start"]


async def test_note_tools(tmp_path: Path) -> None:
    agent = DefaultAgent(notes_path=tmp_path / "notes.json")
    assert (
        await agent.remember(note="The dentist is on Friday")
        == "saved the note: The dentist is on Friday"
    )
    found = await agent.recall(query="dentist")
    assert found.startswith("- The dentist is on Friday (saved ")
    assert await agent.recall(query="zebra") == "no matching notes"
    with pytest.raises(ToolError, match="nothing to remember"):
        await agent.remember(note="")


def test_default_notes_path() -> None:
    path = default_notes_path()
    assert path.name == "notes.json" and "voicetui" in str(path.parent)
