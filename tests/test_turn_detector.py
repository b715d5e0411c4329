"""An end-of-turn model decides at the VAD's pauses (virtual time, scripted fakes): a pause the
model calls unfinished waits up to max_endpointing_delay, so the user can go on in the same
turn; a finished one ends after min_endpointing_delay; the probability is reported with the
turn; a failing model leaves turns to silence, said once.

FakeAudioInput frames are 10 ms; FakeVAD reports end of speech after 0.3 s of silence (and
subtracts it); FakeSTT's final comes 0.2 s after the voice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession
from voicetui.agents.metrics import EOUMetrics
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeTurnDetector,
    FakeVAD,
    Utterance,
)

pytestmark = pytest.mark.looptime

# "I'd like to book a table for" … 1.2 s thinking … "two people, please."
HESITANT = [
    Utterance(1.0, silence_before=0.5, transcript="I'd like to book a table for"),
    Utterance(0.8, silence_before=1.2, transcript="two people, please."),
]


async def run(detector: FakeTurnDetector | None, seconds: float = 8.0) -> dict[str, Any]:
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=0.2),
        llm=FakeLLM(default="Sure."),
        tts=FakeTTS(),
        turn_detection=detector,
        user_away_timeout=None,
    )
    metrics: list[EOUMetrics] = []
    errors: list[Any] = []
    session.on(
        "metrics_collected",
        lambda ev: metrics.append(ev.metrics) if isinstance(ev.metrics, EOUMetrics) else None,
    )
    session.on("error", errors.append)
    out = FakeAudioOutput()
    session.input.audio, session.output.audio = FakeAudioInput(HESITANT), out
    await session.start(Agent(instructions="Take bookings."))
    await asyncio.sleep(seconds)
    users = [m.text_content for m in session.history.messages() if m.role == "user"]
    await session.aclose()
    await out.aclose()
    return {"users": users, "eou": metrics, "errors": errors}


async def test_without_a_model_a_thinking_pause_ends_the_turn() -> None:
    result = await run(None)
    assert result["users"] == ["I'd like to book a table for", "two people, please."]
    assert result["eou"][0].end_of_turn_probability is None


async def test_a_pause_the_model_calls_unfinished_keeps_the_turn_open() -> None:
    detector = FakeTurnDetector([0.1, 0.9])
    result = await run(detector)
    assert result["users"] == ["I'd like to book a table for two people, please."]
    assert detector.prewarmed
    # asked at both pauses; the second time it heard the whole turn so far
    first, second = detector.calls
    assert first.loud_duration == pytest.approx(1.0, abs=0.02)
    assert second.loud_duration == pytest.approx(1.8, abs=0.02)
    # with a little audio before the voice (and the VAD's 0.3 s of silence after it)
    assert first.audio_duration == pytest.approx(0.5 + 1.0 + 0.3, abs=0.03)
    [eou] = result["eou"]
    assert eou.end_of_turn_probability == 0.9 and eou.end_of_turn_threshold == 0.5
    # finished: committed min_endpointing_delay (0.5 s) after the voice
    assert eou.end_of_utterance_delay == pytest.approx(0.5, abs=0.03)


async def test_an_unfinished_turn_still_ends_at_the_longest_delay() -> None:
    detector = FakeTurnDetector([0.1])  # never sure: the user really stopped after "for"
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=0.2),
        llm=FakeLLM(default="For how many?"),
        tts=FakeTTS(),
        turn_detection=detector,
        max_endpointing_delay=2.0,
        user_away_timeout=None,
    )
    metrics: list[EOUMetrics] = []
    session.on(
        "metrics_collected",
        lambda ev: metrics.append(ev.metrics) if isinstance(ev.metrics, EOUMetrics) else None,
    )
    out = FakeAudioOutput()
    session.input.audio, session.output.audio = FakeAudioInput(HESITANT[:1]), out
    await session.start(Agent(instructions="Take bookings."))
    await asyncio.sleep(1.5 + 1.9)  # voice ends at 1.5: not committed before 3.5
    assert not [m for m in session.history.messages() if m.role == "user"]
    await asyncio.sleep(0.2)
    assert [m.text_content for m in session.history.messages() if m.role == "user"] == [
        "I'd like to book a table for"
    ]
    assert metrics[0].end_of_utterance_delay == pytest.approx(2.0, abs=0.03)
    assert metrics[0].end_of_turn_probability == 0.1
    await session.aclose()
    await out.aclose()


async def test_a_failing_model_leaves_the_turn_to_silence_and_says_so_once() -> None:
    detector = FakeTurnDetector([0.1], errors=[0, 1])
    result = await run(detector)
    # as without a model: the pause ended the turn
    assert result["users"] == ["I'd like to book a table for", "two people, please."]
    assert len(result["errors"]) == 1
    assert result["errors"][0].source == "turn_detector"
    assert "turns end on silence alone" in result["errors"][0].message
    assert result["eou"][0].end_of_turn_probability is None


async def test_push_to_talk_does_not_ask_the_model() -> None:
    detector = FakeTurnDetector([0.1])
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=0.2),
        llm=FakeLLM(default="Sure."),
        tts=FakeTTS(),
        turn_detection=detector,
        user_away_timeout=None,
    )
    out = FakeAudioOutput()
    session.input.audio, session.output.audio = FakeAudioInput(HESITANT[:1]), out
    await session.start(Agent(instructions="Take bookings."))
    session.set_turn_detection("manual")
    await asyncio.sleep(2.0)
    await session.commit_user_turn()
    assert detector.calls == []
    session.set_turn_detection(None)  # back to the model
    assert [m.text_content for m in session.history.messages() if m.role == "user"] == [
        "I'd like to book a table for"
    ]
    await session.aclose()
    await out.aclose()
