"""A closed session is freed by reference counting: nothing it leaves behind points back at it
(a process that freezes old objects out of the garbage collector, ``utils.gc_freeze``, would
otherwise keep every closed session and its history). Closed at every moment of a turn: listening,
the endpointing wait, the LLM, a tool call, the agent's hook, a reply paused or interrupted."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession, function_tool
from voicetui.agents.llm import ChatContext, ChatMessage
from voicetui.agents.testing import FakeAudioOutput, ScriptedToolCall, Timeline

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


class SlowWeather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")

    @function_tool
    async def get_weather(self, location: str) -> str:
        """Get the weather for a location."""
        await asyncio.sleep(20)
        return "sunny"


class SlowToAnswer(Agent):
    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        await asyncio.sleep(30)


async def _played(
    tl: Timeline, agent: Agent, close_at: float | None, **session_options: Any
) -> weakref.ref[AgentSession[None]]:
    """Plays ``tl`` to its end (``close_at`` None) or closes the session ``close_at`` seconds
    into it; returns a weak reference to the session, the only one left once this returns."""
    session: AgentSession[None] = tl.session(**session_options)
    if close_at is None:
        await tl.run(session, agent)  # plays the script, drains, closes
    else:
        await session.start(agent)
        origin = await tl.origin()
        await asyncio.sleep(origin + close_at - asyncio.get_running_loop().time())
        await session.aclose()
        out = session.output.audio
        assert isinstance(out, FakeAudioOutput)
        await out.aclose()
    return weakref.ref(session)


def _story(reply_seconds: float) -> Timeline:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Once upon a time there was a long story that goes on and on.")
    tl.tts(reply_seconds)
    return tl


# the user speaks 0.5-2.5 s; the turn ends 1 s later; the reply plays from about 3.7 s: a close
# while listening, in the endpointing wait, while the LLM answers, mid-reply and after it
@pytest.mark.parametrize("at", [0.3, 1.5, 2.7, 3.1, 3.6, 4.5, 6.0, 9.0])
async def test_a_session_closed_at_any_moment_of_a_turn_is_freed(
    no_collector: None, at: float
) -> None:
    gone = await _played(
        _story(4.0), Agent(instructions="Tell stories."), at, min_endpointing_delay=1.0
    )
    assert gone() is None, _holders(gone)


@pytest.mark.parametrize("at", [4.0, 6.0, 8.0])
async def test_a_session_closed_while_a_tool_runs_is_freed(no_collector: None, at: float) -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "What's the weather in Tokyo?")
    tl.llm("Let me check.", [ScriptedToolCall("get_weather", {"location": "Tokyo"})])
    tl.tts(2.0)
    gone = await _played(tl, SlowWeather(), at)
    assert gone() is None, _holders(gone)


async def test_a_session_closed_in_on_user_turn_completed_is_freed(no_collector: None) -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Hello.")
    gone = await _played(tl, SlowToAnswer(instructions="Greet."), 5.0)
    assert gone() is None, _holders(gone)


# a short voice over the reply pauses it (a possible false interruption) and its words come late
@pytest.mark.parametrize("at", [5.3, 5.8, 6.5])
async def test_a_session_closed_during_a_paused_reply_is_freed(
    no_collector: None, at: float
) -> None:
    tl = _story(6.0)
    tl.user_speech(5.0, 5.6, "hmm", stt_delay=3.0)
    gone = await _played(tl, Agent(instructions="Tell stories."), at, can_pause_audio=True)
    assert gone() is None, _holders(gone)


async def test_a_late_transcript_over_the_reply_leaves_nothing_behind(no_collector: None) -> None:
    tl = _story(6.0)
    tl.user_speech(5.0, 6.0, "Stop.", stt_delay=1.0)  # the words come after the voice ended
    tl.llm("Okay.")
    tl.tts(1.0)
    gone = await _played(tl, Agent(instructions="Tell stories."), None)
    assert gone() is None, _holders(gone)
