"""Where a turn's latency goes (virtual time, scripted fakes of known timing): every stage's
duration, adding up to the e2e latency, on a plain turn, a tool turn, after a handoff and on a
typed turn; one turn id on the reply and on every metric of the turn.

FakeAudioInput frames are 10 ms; FakeVAD reports end of speech after 0.3 s of silence (and
subtracts it); FakeSTT's final comes 0.2 s after the voice; the endpointing delay is 0.5 s."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession, ChatContext, function_tool
from voicetui.agents.llm import ChatMessage
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeToolCall,
    FakeTTS,
    FakeVAD,
    Utterance,
)

pytestmark = pytest.mark.looptime

QUESTION = [Utterance(1.0, silence_before=0.5, transcript="what is the weather")]


class Forecaster(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Tell the weather.")

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        await asyncio.sleep(0.1)

    @function_tool
    async def lookup_weather(self) -> str:
        """Look the weather up."""
        await asyncio.sleep(1.0)
        return "sunny"

    @function_tool
    async def transfer(self) -> Agent:
        """Hand over to the specialist."""
        await asyncio.sleep(0.25)
        return Specialist()


class Specialist(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the specialist.")

    async def on_enter(self) -> None:
        self.session.generate_reply()


async def run(responses: list[FakeLLMResponse], *, typed: str | None = None) -> dict[str, Any]:
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=0.2),
        llm=FakeLLM(responses),
        tts=FakeTTS(ttfb=0.2),
        user_away_timeout=None,
    )
    metrics: list[Any] = []
    session.on("metrics_collected", lambda ev: metrics.append(ev.metrics))
    out = FakeAudioOutput()
    session.input.audio = FakeAudioInput([] if typed else QUESTION)
    session.output.audio = out
    await session.start(Forecaster())
    if typed is not None:
        await asyncio.sleep(1.0)
        session.generate_reply(user_input=typed)
    await asyncio.sleep(8)
    replies = [m for m in session.history.messages() if m.role == "assistant"]
    users = [m for m in session.history.messages() if m.role == "user"]
    await session.aclose()
    await out.aclose()
    return {"replies": replies, "users": users, "metrics": metrics}


def stages(reply: ChatMessage) -> list[tuple[str, float]]:
    return [(s.name, round(s.seconds, 2)) for s in reply.metrics.latency_stages]


def assert_adds_up(reply: ChatMessage) -> None:
    m = reply.metrics
    assert m.e2e_latency is not None
    assert sum(s.seconds for s in m.latency_stages) == pytest.approx(m.e2e_latency, abs=1e-9)


async def test_a_plain_turn() -> None:
    result = await run([FakeLLMResponse("Sunny all day.", ttft=0.3)])
    [reply] = result["replies"]
    assert_adds_up(reply)
    # voice ends 1.5 → committed 2.0 → hook 2.1 → first token 2.4 → TTS audio 2.6 → played
    assert stages(reply) == [
        ("endpointing", 0.5),
        ("on_user_turn_completed", 0.1),
        ("llm", 0.3),
        ("tts", 0.2),
        ("playout", 0.0),
    ]
    assert reply.metrics.e2e_latency == pytest.approx(1.1, abs=0.02)


async def test_a_tool_turn_counts_the_tools_and_the_second_llm_round() -> None:
    result = await run(
        [
            FakeLLMResponse(tool_calls=[FakeToolCall("lookup_weather")], ttft=0.3),
            FakeLLMResponse("It is sunny.", ttft=0.4),
        ]
    )
    [reply] = result["replies"]
    assert_adds_up(reply)
    assert stages(reply) == [
        ("endpointing", 0.5),
        ("on_user_turn_completed", 0.1),
        ("llm", 0.3),
        ("tools", 1.0),
        ("llm", 0.4),
        ("tts", 0.2),
        ("playout", 0.0),
    ]
    assert reply.metrics.e2e_latency == pytest.approx(2.5, abs=0.02)


async def test_after_a_handoff_the_next_agents_reply_answers_the_turn() -> None:
    result = await run(
        [
            FakeLLMResponse(tool_calls=[FakeToolCall("transfer")], ttft=0.3),
            FakeLLMResponse("Specialist here: it is sunny.", ttft=0.3),
        ]
    )
    [reply] = result["replies"]
    assert_adds_up(reply)
    names = [name for name, _ in stages(reply)]
    assert names == [
        "endpointing",
        "on_user_turn_completed",
        "llm",
        "tools",
        "handoff",
        "llm",
        "tts",
        "playout",
    ]
    durations = dict(zip(names[:4], [s for _, s in stages(reply)][:4], strict=True))
    assert durations == {
        "endpointing": 0.5,
        "on_user_turn_completed": 0.1,
        "llm": 0.3,
        "tools": 0.25,
    }
    assert stages(reply)[-3:] == [("llm", 0.3), ("tts", 0.2), ("playout", 0.0)]
    assert reply.metrics.e2e_latency == pytest.approx(1.65, abs=0.05)


async def test_a_typed_turn_starts_at_the_llm() -> None:
    result = await run([FakeLLMResponse("Sunny.", ttft=0.3)], typed="what is the weather")
    [reply] = result["replies"]
    assert_adds_up(reply)
    assert reply.metrics.typed_input
    assert stages(reply) == [("llm", 0.3), ("tts", 0.2), ("playout", 0.0)]


async def test_every_metric_of_a_turn_carries_its_id() -> None:
    result = await run(
        [
            FakeLLMResponse(tool_calls=[FakeToolCall("lookup_weather")], ttft=0.3),
            FakeLLMResponse("It is sunny.", ttft=0.4),
        ]
    )
    [reply] = result["replies"]
    turn_id = reply.metrics.turn_id
    assert turn_id is not None and turn_id.startswith("turn_")
    by_type: dict[str, set[str | None]] = {}
    for m in result["metrics"]:
        by_type.setdefault(m.type, set()).add(m.turn_id)
    assert by_type["eou_metrics"] == {turn_id}
    assert by_type["llm_metrics"] == {turn_id}  # both rounds
    assert by_type["tts_metrics"] == {turn_id}


async def test_the_reports_read_as_livekits_metrics_dicts() -> None:
    result = await run([FakeLLMResponse("Sunny all day.", ttft=0.3)])
    [user] = result["users"]
    [reply] = result["replies"]
    # the user's message: how its turn ended (LiveKit's keys)
    assert user.metrics["transcription_delay"] == pytest.approx(0.2, abs=0.02)
    assert user.metrics["end_of_turn_delay"] == pytest.approx(0.5, abs=0.02)
    assert user.metrics["on_user_turn_completed_delay"] == pytest.approx(0.1, abs=0.02)
    assert "e2e_latency" not in user.metrics
    # the reply's: how long the answer took
    assert reply.metrics["e2e_latency"] == reply.metrics.e2e_latency
    assert reply.metrics.get("llm_node_ttft") == pytest.approx(0.3, abs=0.02)
    assert "tts_node_ttfb" in reply.metrics and "transcription_delay" not in reply.metrics
    with pytest.raises(KeyError):
        reply.metrics["transcription_delay"]
