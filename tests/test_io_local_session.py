"""End to end on virtual devices: a session hears a question spoken into the mic and answers
through the speaker; and the agent's own voice echoing back into the mic does not interrupt it
when echo cancellation is on."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.audio_fixtures import espeak_pcm, have_espeak
from tests.test_io_wav import FixedSTT, write_wav
from tests.virtual_audio import RATE, VirtualAudio, virtual_audio_fixture  # noqa: F401
from voicetui.agents import Agent, AgentSession
from voicetui.agents.audio import make_frame
from voicetui.agents.stt.stream_adapter import StreamAdapter
from voicetui.agents.testing import FakeLLM, FakeTTS, FakeVAD
from voicetui.agents.tts import TTS
from voicetui.agents.voice.io import PlaybackFinishedEvent
from voicetui.io.local import LocalAudio

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

QUESTION = "What time is it?"
ANSWER = "It is noon. The sun is high."


async def started(audio: LocalAudio) -> None:
    audio.start()
    async with asyncio.timeout(10):
        await audio.wait_open()


def make_session(stt: Any, tts: TTS, **kw: Any) -> AgentSession[None]:
    vad = FakeVAD()
    if not stt.capabilities.streaming:
        stt = StreamAdapter(stt=stt, vad=vad)
    return AgentSession(vad=vad, stt=stt, llm=FakeLLM(default=ANSWER), tts=tts, **kw)


def reply_done(session: AgentSession[None]) -> asyncio.Event:
    """Set when the agent stops speaking."""
    done = asyncio.Event()
    session.on("agent_state_changed", lambda ev: done.set() if ev.old_state == "speaking" else None)
    return done


@pytest.fixture
async def local_audio(virtual_audio: VirtualAudio) -> AsyncIterator[LocalAudio]:
    audio = LocalAudio(input_sample_rate=16000)
    await started(audio)
    yield audio
    await audio.aclose()


async def test_session_answers_a_spoken_question_through_the_speaker(
    virtual_audio: VirtualAudio, local_audio: LocalAudio, tmp_path: Path
) -> None:
    question = write_wav(tmp_path / "q.wav", espeak_pcm(QUESTION, sample_rate=22050), 22050)
    stt = FixedSTT("what time is it")
    tts = FakeTTS(seconds_per_char=0.05)
    session = make_session(stt, tts)
    session.input.audio, session.output.audio = local_audio.input, local_audio.output
    errors: list[Any] = []
    local_audio.events.on("error", errors.append)
    await session.start(Agent(instructions="Tell the time."))
    async with virtual_audio.record_speaker() as rec:
        await asyncio.sleep(0.3)
        done = reply_done(session)
        await virtual_audio.play_into_mic(question)
        async with asyncio.timeout(20):
            await done.wait()
    await session.aclose()
    assert not errors
    # the mic delivered the question: about its length of speech reached the STT
    assert stt.heard and 0.8 < stt.heard[0] < 2.5, stt.heard
    msgs = session.history.messages()
    assert [(m.role, m.text_content) for m in msgs] == [
        ("user", "what time is it"),
        ("assistant", ANSWER),
    ]
    assert not msgs[1].interrupted
    # the reply came out of the speaker, whole (a loaded machine may stretch it with an
    # underrun: what was played is counted, not the span)
    expected = len(ANSWER) * 0.05
    assert rec.loud_duration() == pytest.approx(expected, abs=0.06), rec.loud_duration()
    assert rec.loud_span() >= expected - 0.06


def _embedded_stack() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", "piper", "soxr"))


@pytest.mark.slow
@pytest.mark.skipif(not _embedded_stack(), reason="the embedded models are not installed")
async def test_embedded_stack_hears_and_answers_out_loud(
    virtual_audio: VirtualAudio, local_audio: LocalAudio, tmp_path: Path
) -> None:
    from voicetui.plugins.local.piper_tts import PiperTTS
    from voicetui.plugins.local.whisper_stt import WhisperSTT

    question = write_wav(tmp_path / "q.wav", espeak_pcm(QUESTION, sample_rate=22050), 22050)
    stt = WhisperSTT(model="tiny.en")
    tts = PiperTTS()
    session = make_session(stt, tts)
    session.input.audio, session.output.audio = local_audio.input, local_audio.output
    await session.start(Agent(instructions="Tell the time."))
    async with virtual_audio.record_speaker() as rec:
        await asyncio.sleep(0.3)
        done = reply_done(session)
        await virtual_audio.play_into_mic(question)
        async with asyncio.timeout(60):
            await done.wait()
    await session.aclose()
    msgs = session.history.messages()
    assert msgs[0].role == "user" and "time" in msgs[0].text_content.lower(), msgs[0]
    assert msgs[1].text_content == ANSWER and not msgs[1].interrupted
    span = rec.loud_span()
    assert 1.0 < span < 4.0, span
    # what the speaker played, transcribed back
    pcm = rec.samples
    frames = [make_frame(pcm[i : i + 480], RATE) for i in range(0, pcm.size, 480)]
    heard = (await stt.recognize(frames)).text.lower()
    # (tiny.en hears Piper's "noon" as "new" at times: check the words it always gets)
    assert "it is" in heard and "sun is high" in heard, heard


# --- echo at session level -----------------------------------------------------------------
AGENT_LINE = (
    "Here is the forecast for the whole week. Monday will be sunny and warm, Tuesday brings "
    "some clouds in the afternoon, and on Wednesday a light rain is expected in the evening."
)


async def agent_talks_over_its_echo(
    virtual_audio: VirtualAudio,
    *,
    echo_cancellation: bool,
    agent_gain: float = 1.0,
    user_line: Path | None = None,
    user_after: float = 2.5,
) -> tuple[bool, float, list[str]]:
    """The agent says a long line (its samples times ``agent_gain``) with the speaker looped
    back into the mic; ``user_line`` is played into the mic ``user_after`` s into it. Returns
    whether it was interrupted, the fraction of its audio played, and the user states seen."""
    audio = LocalAudio(
        input_sample_rate=16000,
        echo_cancellation=echo_cancellation,
        noise_suppression=echo_cancellation,
        auto_gain_control=echo_cancellation,
    )
    await started(audio)
    session = make_session(FixedSTT("stop"), FakeTTS())
    session.input.audio, session.output.audio = audio.input, audio.output
    user_states: list[str] = []
    session.on("user_state_changed", lambda ev: user_states.append(ev.new_state))
    played: list[PlaybackFinishedEvent] = []
    audio.output.on("playback_finished", played.append)
    voice = espeak_pcm(AGENT_LINE, sample_rate=24000, silence_before=0, silence_after=0)
    voice = (voice * agent_gain).astype(np.int16)

    async def speech() -> AsyncIterator[rtc.AudioFrame]:
        for i in range(0, voice.size, 480):
            yield make_frame(voice[i : i + 480], 24000)

    module = virtual_audio.loopback()
    try:
        await session.start(Agent(instructions="Forecast."))
        await asyncio.sleep(0.3)
        handle = session.say(AGENT_LINE, audio=speech())
        if user_line is not None:
            await asyncio.sleep(user_after)
            await virtual_audio.play_into_mic(user_line)
        async with asyncio.timeout(voice.size / 24000 + 15):
            await handle
    finally:
        virtual_audio.pactl("unload-module", module)
        await session.aclose()
        await audio.aclose()
    assert played, "the output reported no playback"
    ev = played[0]  # (the line said; a reply may follow an interruption)
    print(
        f"\nAEC {'on' if echo_cancellation else 'off'}: interrupted={handle.interrupted}, "
        f"played {ev.playback_position:.2f} of {voice.size / 24000:.2f} s, "
        f"user states {user_states}, xruns in/out {audio.input.xruns}/{audio.output.xruns}, "
        f"segments {[(round(e.playback_position, 2), e.interrupted) for e in played]}"
        + (
            f", echo: ERL {audio.echo.echo_return_loss_db:.1f} dB, "
            f"{audio.echo.suppressed_frames} frames gated, {audio.echo.render_resyncs} resyncs"
            if audio.echo is not None
            else ""
        )
    )
    return handle.interrupted, ev.playback_position / (voice.size / 24000), user_states


async def test_echo_does_not_interrupt_the_agent_with_aec(virtual_audio: VirtualAudio) -> None:
    interrupted, heard, user_states = await agent_talks_over_its_echo(
        virtual_audio, echo_cancellation=True
    )
    assert not interrupted and heard == pytest.approx(1.0)
    assert "speaking" not in user_states  # the echo was never taken for the user


async def test_the_user_interrupts_the_agent_over_its_echo_with_aec(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """Barge-in survives echo cancellation: the user, 6 dB louder at the mic than the
    agent's echo (a speaker looped straight back: the worst coupling there is), is heard."""
    stop = write_wav(
        tmp_path / "stop.wav",
        espeak_pcm("Stop, please stop talking now.", sample_rate=22050, silence_after=0),
        22050,
    )
    interrupted, heard, user_states = await agent_talks_over_its_echo(
        virtual_audio, echo_cancellation=True, agent_gain=0.5, user_line=stop
    )
    assert "speaking" in user_states
    assert interrupted and heard < 0.6


async def test_echo_interrupts_the_agent_without_aec(virtual_audio: VirtualAudio) -> None:
    interrupted, heard, user_states = await agent_talks_over_its_echo(
        virtual_audio, echo_cancellation=False
    )
    assert "speaking" in user_states  # its own voice was taken for the user's
    assert interrupted and heard < 0.3
