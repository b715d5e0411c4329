"""LiveKit Agents' interrupt-walk scenarios (its tests/test_interrupt_protected_speech.py) on
voicetui's public API: ``session.interrupt()`` walks the speeches in playout order and stops at
the first one that does not allow interruptions; what plays after it is left alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession
from voicetui.agents.testing import FakeAudioOutput, FakeLLM, FakeTTS

pytestmark = pytest.mark.looptime


async def started() -> AgentSession[None]:
    session: AgentSession[None] = AgentSession(llm=FakeLLM(default="ok"), tts=FakeTTS())
    session.output.audio = FakeAudioOutput()
    await session.start(Agent(instructions="x"))
    return session


async def finish(session: AgentSession[None]) -> None:
    await session.drain()
    out = session.output.audio
    assert isinstance(out, FakeAudioOutput)
    await out.aclose()


def says(session: AgentSession[None], *allow: bool) -> list[Any]:
    return [
        session.say(f"speech number {i} is a sentence.", allow_interruptions=a)
        for i, a in enumerate(allow)
    ]


async def test_a_protected_current_speech_stops_the_walk() -> None:
    session = await started()
    current, queued = says(session, False, True)
    await asyncio.sleep(0.2)  # the first one plays
    await session.interrupt()
    assert not current.interrupted and not queued.interrupted
    await finish(session)
    assert current.done() and queued.done() and not queued.interrupted


async def test_the_walk_stops_at_the_first_protected_queued_speech() -> None:
    session = await started()
    current, first, protected, behind = says(session, True, True, False, True)
    await asyncio.sleep(0.2)
    assert session.current_speech is current
    session.interrupt()
    assert current.interrupted and first.interrupted
    assert not protected.interrupted and not behind.interrupted  # no gap after it
    await finish(session)
    texts = [m.text_content for m in session.history.messages() if m.role == "assistant"]
    assert texts[-2:] == ["speech number 2 is a sentence.", "speech number 3 is a sentence."]


async def test_force_interrupts_the_whole_chain() -> None:
    session = await started()
    current, queued = says(session, False, False)
    await asyncio.sleep(0.2)
    await session.interrupt(force=True)
    assert current.interrupted and queued.interrupted
    await finish(session)


async def test_an_interruptible_chain_is_interrupted_whole() -> None:
    session = await started()
    current, queued = says(session, True, True)
    await asyncio.sleep(0.2)
    await session.interrupt()
    assert current.interrupted and queued.interrupted
    await finish(session)
