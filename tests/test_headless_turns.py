"""``--headless`` ends a turn when the agent is back to listening without a reply (an empty
completion, ``max_tool_steps`` reached): the next lines are sent at once, no 120 s wait; a run
where every turn failed exits 1."""

from __future__ import annotations

import io
import time
from typing import Annotated

from pydantic import Field

from voicetui.agents import Agent, function_tool
from voicetui.agents.exceptions import LLMError
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall
from voicetui.config import Settings
from voicetui.headless import run_headless
from voicetui.plugins.selection import SessionModels
from voicetui.runtime.controller import SessionController

REPLY_TIMEOUT = 60.0
"""Far above what a turn takes here: a run that waited for it would be seen."""


class Looper(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")

    @function_tool
    async def again(self, n: Annotated[int, Field(description="n")]) -> str:
        """Call me again."""
        return "call me again"


def run(llm: FakeLLM, lines: str, **session: object) -> tuple[int, str, str, float]:
    """(exit code, the conversation lines, stderr, seconds)"""
    controller = SessionController(
        Settings(mode="text"),
        agent=Looper(),
        models=SessionModels(stt=None, vad=None, llm=llm, tts=None),
        session_options=dict(session),
    )
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = run_headless(
        controller,
        out=out,
        err=err,
        stdin=io.StringIO(lines),
        settle=0.3,
        reply_timeout=REPLY_TIMEOUT,
    )
    said = "".join(  # (the first agent's announcement is not part of the turns)
        f"{line}\n" for line in out.getvalue().splitlines() if not line.startswith("handoff:")
    )
    return code, said, err.getvalue(), time.monotonic() - started


def test_an_empty_completion_ends_the_turn() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(input="first", content=""),
            FakeLLMResponse(input="second", content="Hi!"),
        ]
    )
    code, out, err, elapsed = run(llm, "first\nsecond\n")
    assert code == 0, err
    assert out.splitlines() == ["user: first", "user: second", "agent: Hi!"]
    assert elapsed < REPLY_TIMEOUT / 2


def test_max_tool_steps_reached_ends_the_turn() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(input="loop", tool_calls=[FakeToolCall("again", {"n": i})])
            for i in range(6)
        ],
        default="fine.",
    )
    code, out, err, elapsed = run(llm, "loop\nthen\n", max_tool_steps=2)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "user: loop" and lines[-2:] == ["user: then", "agent: fine."]
    assert not any(line.startswith("agent:") for line in lines[:-1])
    assert elapsed < REPLY_TIMEOUT / 2


def test_every_turn_failed_exits_1() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(input="a", error=LLMError("quota exceeded", recoverable=False)),
            FakeLLMResponse(input="b", content=""),
        ]
    )
    code, out, err, elapsed = run(llm, "a\nb\n")
    assert code == 1
    assert "no reply to any of the 2 turns" in err
    assert "user: b" in out
    assert elapsed < REPLY_TIMEOUT / 2
