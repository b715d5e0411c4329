"""A closed session is freed by reference counting: nothing it leaves behind points back at it
(a process that freezes old objects out of the garbage collector, ``utils.gc_freeze``, would
otherwise keep every closed session and its history). The scripted conversation covers speech,
a tool call and its reply, and an interruption."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from voicetui.agents import Agent, AgentSession, function_tool
from voicetui.agents.testing import ScriptedToolCall, Timeline

pytestmark = pytest.mark.looptime


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")

    @function_tool
    async def get_weather(self, location: str) -> str:
        """Get the weather for a location."""
        return f"sunny in {location}"


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _timeline() -> Timeline:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "What's the weather in Tokyo?")
    tl.llm("Let me check.", [ScriptedToolCall("get_weather", {"location": "Tokyo"})])
    tl.tts(2.0)
    tl.llm("It is sunny in Tokyo today, and tomorrow too.", input="sunny in Tokyo")
    tl.tts(4.0)
    tl.user_speech(7.0, 8.0, "Thanks!")  # cuts the tool reply off
    tl.llm("You're welcome.")
    tl.tts(1.0)
    return tl


async def test_a_closed_session_is_freed_without_the_garbage_collector(
    no_collector: None,
) -> None:
    tl = _timeline()
    session: AgentSession[None] | None = tl.session()
    agent = WeatherAgent()
    assert session is not None
    await tl.run(session, agent)  # plays the script, drains, closes
    assert len(agent.chat_ctx.messages()) >= 5
    gone = weakref.ref(session)
    history = weakref.ref(session.history)
    del session, tl
    assert gone() is None, _holders(gone)
    assert history() is None or history() is agent.chat_ctx


def _holders(ref: weakref.ref[AgentSession[None]]) -> str:
    obj = ref()
    return "still referenced by: " + ", ".join(
        type(r).__qualname__ for r in gc.get_referrers(obj) if r is not obj
    )
