"""Model failures during a conversation: retries, the session staying alive, closing after
repeated failures, and STT streams reconnecting without losing what the user said."""

from __future__ import annotations

import asyncio

import pytest

from voicetui.agents import Agent, AgentSession, LLMError
from voicetui.agents.testing import FakeLLMResponse, FakeSTT, Utterance
from voicetui.agents.types import APIConnectOptions
from voicetui.agents.voice.agent_session import SessionConnectOptions
from voicetui.agents.voice.events import CloseReason

from .test_turn_taking import rig

pytestmark = pytest.mark.looptime


def _fail(recoverable: bool) -> FakeLLMResponse:
    return FakeLLMResponse(error=LLMError("the model is overloaded", recoverable=recoverable))


async def test_recoverable_llm_error_is_retried_then_succeeds() -> None:
    r = await rig(
        responses=[_fail(True), _fail(True), FakeLLMResponse(content="Hello.")],
        conn_options=SessionConnectOptions(llm=APIConnectOptions(max_retry=3, retry_interval=0.5)),
    )
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await r.session.generate_reply(user_input="hi")
    assert not r.log.of("error")
    assert [m.text_content for m in r.assistant()] == ["Hello."]
    assert len(r.llm.calls) == 1  # one request, retried inside the stream
    # backoff 0.1 s then 0.5 s before the third attempt, then the audio
    assert loop.time() - t0 == pytest.approx(0.6 + len("Hello.") * 0.05, abs=0.06)
    await r.aclose()


async def test_exhausted_retries_report_one_error() -> None:
    r = await rig(
        responses=[_fail(True), _fail(True)],
        conn_options=SessionConnectOptions(llm=APIConnectOptions(max_retry=1, retry_interval=0.5)),
    )
    handle = r.session.generate_reply(user_input="hi")
    await handle
    assert handle.interrupted
    (err,) = r.log.of("error")
    assert err.source == "llm" and "overloaded" in err.message and not err.recoverable
    await r.aclose()


async def test_unrecoverable_llm_error_keeps_the_session_listening() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=1.0, transcript="are you still there")],
        [_fail(False), FakeLLMResponse(content="Yes, I am.")],
    )
    handle = r.session.generate_reply(user_input="hello")
    await handle
    assert handle.interrupted
    (err,) = r.log.of("error")
    assert err.source == "llm" and not err.recoverable
    assert r.session.agent_state == "listening" and r.session.running
    await asyncio.sleep(4)
    assert [m.text_content for m in r.assistant()] == ["Yes, I am."]
    assert not r.log.of("close")
    await r.aclose()


async def test_consecutive_unrecoverable_errors_close_the_session() -> None:
    r = await rig(
        responses=[
            _fail(False),
            _fail(False),
            FakeLLMResponse(content="Fine."),
            *[_fail(False)] * 3,
        ],
        conn_options=SessionConnectOptions(max_unrecoverable_errors=2),
    )
    for _ in range(2):
        await r.session.generate_reply(user_input="hi")
    await r.session.generate_reply(user_input="hi")  # a success resets the count
    assert not r.log.of("close")
    for _ in range(3):
        await r.session.generate_reply(user_input="hi")
    await asyncio.sleep(0.1)
    (close,) = r.log.of("close")
    assert close.reason == CloseReason.ERROR
    assert close.error is not None and "llm failed 3 times in a row" in close.error
    assert not r.session.running
    await r.out.aclose()


async def test_stt_stream_error_reconnects_and_keeps_the_audio() -> None:
    # the stream dies 0.3 s into the user's sentence; the new one hears it from the start
    stt = FakeSTT(final_delay=0.2, stream_failures=[0.8])
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="what time is it")],
        stt=stt,
        default="Noon.",
    )
    await asyncio.sleep(4)
    (err,) = r.log.of("error")
    assert err.source == "stt" and err.recoverable and "reconnecting" in err.message
    assert stt.streams_opened == 2
    assert r.user_messages() == ["what time is it"]
    assert [m.text_content for m in r.assistant()] == ["Noon."]
    await r.aclose()


async def test_stt_stream_reconnects_after_the_servers_retry_after() -> None:
    stt = FakeSTT(final_delay=0.2, stream_failures=[0.8], retry_after=3.0)
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="what time is it")],
        stt=stt,
        default="Noon.",
    )
    await asyncio.sleep(2.0)
    (err,) = r.log.of("error")
    assert "reconnecting in 3.0s" in err.message
    assert stt.streams_opened == 1  # still waiting, as the server asked
    await asyncio.sleep(4)
    assert stt.streams_opened == 2 and r.user_messages() == ["what time is it"]
    await r.aclose()


async def test_stt_gives_up_but_the_session_goes_on_by_text() -> None:
    stt = FakeSTT(stream_failures=[0.1] * 5)
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="hello")],
        stt=stt,
        default="Typed answer.",
        conn_options=SessionConnectOptions(stt=APIConnectOptions(max_retry=2, retry_interval=0.2)),
    )
    await asyncio.sleep(3)
    errors = r.log.of("error")
    assert [e.recoverable for e in errors] == [True, True, False]
    assert "gave up" in errors[-1].message
    assert stt.streams_opened == 3
    assert r.session.running
    await r.session.generate_reply(user_input="typed instead")
    assert [m.text_content for m in r.assistant()] == ["Typed answer."]
    await r.aclose()


async def test_agent_without_stt_has_no_listening_pipeline() -> None:
    session: AgentSession[None] = AgentSession()
    await session.start(Agent(instructions="x"))
    assert session.activity is not None and session.activity.recognition is None
    await session.aclose()
