"""Speaking through an audio output: streaming TTS, playout, interruption truncation, fallbacks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession, TTSError
from voicetui.agents.audio import frames_duration
from voicetui.agents.testing import (
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeTextOutput,
    FakeTTS,
)

from .conftest import EventLog

pytestmark = pytest.mark.looptime

SENTENCES = "The first sentence is here. The second one follows it. And a third closes."


async def start(
    *responses: FakeLLMResponse, tts: FakeTTS | None = None, **kw: Any
) -> tuple[AgentSession[None], FakeAudioOutput, FakeTextOutput, EventLog]:
    session: AgentSession[None] = AgentSession(
        llm=FakeLLM(list(responses)), tts=tts or FakeTTS(), **kw
    )
    out = FakeAudioOutput()
    text = FakeTextOutput()
    session.output.audio = out
    session.output.transcription = text
    log = EventLog(session)
    await session.start(Agent(instructions="Be helpful."))
    return session, out, text, log


async def test_say_plays_audio_and_records_message() -> None:
    tts = FakeTTS(ttfb=0.2, seconds_per_char=0.05)
    session, out, text, log = await start(tts=tts)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    handle = session.say("Hello there, nice to meet you.")
    await handle
    elapsed = loop.time() - t0
    expected_audio = len("Hello there, nice to meet you.") * 0.05
    assert frames_duration(out.played_frames) == pytest.approx(expected_audio, abs=0.06)
    assert elapsed == pytest.approx(0.2 + expected_audio, abs=0.1)  # ttfb + real-time playout
    assert out.segments == [(pytest.approx(expected_audio, abs=0.06), False)]
    (msg,) = session.history.messages()
    assert (
        msg.role == "assistant"
        and msg.text_content == "Hello there, nice to meet you."
        and not msg.interrupted
    )
    assert msg.metrics.tts_node_ttfb == pytest.approx(0.2, abs=0.02)
    assert text.messages == ["Hello there, nice to meet you."]
    assert log.agent_states() == ["idle", "speaking", "idle"]
    assert log.of("speech_created")[0].source == "say"
    assert any(e.metrics.type == "tts_metrics" for e in log.of("metrics_collected"))
    await session.aclose()
    await out.aclose()


async def test_first_audio_before_the_llm_finishes() -> None:
    # 1 word per 0.1 s: the whole reply takes ~1.2 s to write; the first sentence is ready early
    session, out, _, log = await start(
        FakeLLMResponse(content=SENTENCES, ttft=0.3, tokens_per_second=10)
    )
    started: list[float] = []
    out.on("playback_started", lambda ev: started.append(ev.created_at))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await session.generate_reply(user_input="talk")
    assert started, "no audio was played"
    llm_done = 0.3 + (len(SENTENCES.split()) - 1) * 0.1
    assert started[0] - t0 < llm_done - 0.4
    msg = session.history.messages()[-1]
    assert msg.text_content == SENTENCES
    assert msg.metrics.llm_node_ttft == pytest.approx(0.3, abs=0.02)
    assert log.agent_states() == ["idle", "thinking", "speaking", "idle"]
    await session.aclose()
    await out.aclose()


async def test_interrupt_during_playout_truncates_history() -> None:
    tts = FakeTTS(seconds_per_char=0.05)  # each sentence ~1.3-1.5 s of audio
    session, out, text, log = await start(FakeLLMResponse(content=SENTENCES), tts=tts)
    handle = session.generate_reply(user_input="talk")
    first = "The first sentence is here."
    # interrupt half-way into the second sentence
    await asyncio.sleep(len(first) * 0.05 + 0.7)
    await session.interrupt()
    assert handle.interrupted and handle.done()
    msg = session.history.messages()[-1]
    assert msg.interrupted
    heard = msg.text_content or ""
    assert heard.startswith(first)
    assert "third" not in heard
    assert len(heard) < len(SENTENCES)
    played = out.segments[-1]
    assert played[1] is True
    assert played[0] == pytest.approx(len(first) * 0.05 + 0.7, abs=0.2)
    # buffered audio was dropped: nothing plays after the interruption
    await asyncio.sleep(2)
    assert frames_duration(out.played_frames) == pytest.approx(played[0], abs=0.01)
    assert session.agent_state == "idle"
    # the transcript output never showed the third sentence
    assert "third" not in "".join(text.messages)
    await session.aclose()
    await out.aclose()


async def test_interrupt_before_speaking() -> None:
    session, out, _, log = await start(FakeLLMResponse(content="A slow answer.", ttft=2.0))
    handle = session.generate_reply(user_input="question")
    await asyncio.sleep(0.5)
    await session.interrupt()
    assert handle.interrupted
    assert out.played_frames == []
    assert [m.role for m in session.history.messages()] == ["user"]
    assert "speaking" not in log.agent_states()
    await session.aclose()
    await out.aclose()


async def test_uninterruptible_speech_ignores_interrupt() -> None:
    session, out, _, _ = await start()
    handle = session.say("This must be heard in full.", allow_interruptions=False)
    await asyncio.sleep(0.3)
    with pytest.raises(RuntimeError):
        handle.interrupt()
    await session.interrupt()  # skips it
    await handle
    assert not handle.interrupted
    assert session.history.messages()[-1].text_content == "This must be heard in full."
    await session.aclose()
    await out.aclose()


async def test_queued_speeches_play_in_order() -> None:
    session, out, _, _ = await start()
    a = session.say("First thing to say.")
    b = session.say("Second thing to say.")
    await b
    assert a.done()
    assert [m.text_content for m in session.history.messages()] == [
        "First thing to say.",
        "Second thing to say.",
    ]
    assert len(out.segments) == 2
    await session.aclose()
    await out.aclose()


async def test_tts_failure_falls_back_to_text() -> None:
    tts = FakeTTS(errors=[TTSError("TTS server unreachable", recoverable=False)])
    session, out, text, log = await start(FakeLLMResponse(content="Here is the answer."), tts=tts)
    await session.generate_reply(user_input="question")
    (err,) = log.of("error")
    assert err.source == "tts" and "text only" in err.message
    assert text.messages == ["Here is the answer."]
    assert session.history.messages()[-1].text_content == "Here is the answer."
    await session.aclose()
    await out.aclose()


async def test_text_mode_skips_tts() -> None:
    tts = FakeTTS()
    session: AgentSession[None] = AgentSession(
        llm=FakeLLM([FakeLLMResponse(content="Just text.")]), tts=tts
    )
    text = FakeTextOutput()
    session.output.transcription = text
    await session.start(Agent(instructions="x"))
    result = await session.run(user_input="hello")
    assert result.final_output == "Just text."
    assert tts.requests == []
    assert text.messages == ["Just text."]
    await session.aclose()


async def test_output_swapped_between_turns_keeps_history() -> None:
    session, out, _, _ = await start(
        FakeLLMResponse(content="One."), FakeLLMResponse(content="Two.")
    )
    await session.generate_reply(user_input="a")
    out2 = FakeAudioOutput(sample_rate=48000)
    session.output.audio = out2
    await session.generate_reply(user_input="b")
    assert [m.text_content for m in session.history.messages()] == ["a", "One.", "b", "Two."]
    assert out2.played_frames and all(f.sample_rate == 48000 for f in out2.played_frames)
    assert len(out.segments) == 1
    await session.aclose()
    await out.aclose()
    await out2.aclose()
