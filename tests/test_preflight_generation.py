"""Preemptive generation on the preflight transcript (issue 21, item 1): with a speculative
``stt.StreamAdapter``, the reply starts when the speculative transcript is ready, inside the
VAD's silence window, not at its end of speech; the final transcript confirms it (no second
request), and a preflight withdrawn because the user went on drops the reply started on it.

Virtual time. FakeVAD ends speech after 0.3 s of silence; the STT answers 0.1 s after it is
asked; the adapter speculates after a 0.1 s pause, so the preflight comes 0.2 s after the voice,
the final 0.3 s after it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import rtc

from voicetui.agents import Agent, AgentSession
from voicetui.agents.stt import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    StreamAdapter,
    STTCapabilities,
)
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeLLM,
    FakeLLMResponse,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.types import APIConnectOptions

from .test_turn_taking import Rig, approx

pytestmark = pytest.mark.looptime


class _WordsSTT(STT):
    """Non-streaming: after ``delay``, the transcripts of the voiced frames it was given, in
    order (FakeAudioInput puts each utterance's transcript in its frames)."""

    def __init__(self, delay: float = 0.1) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self.delay = delay

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        words: list[str] = []
        for frame in buffer:
            text = frame.userdata.get("transcript", "")
            if text and (not words or words[-1] != text):
                words.append(text)
        await asyncio.sleep(self.delay)
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT,
            [SpeechData(text=" ".join(words), language="en", confidence=1.0)],
        )


async def _rig(
    utterances: list[Utterance],
    responses: list[FakeLLMResponse],
    *,
    preflight: bool,
    default: str | None = None,
    **opts: Any,
) -> Rig:
    vad = FakeVAD()
    llm = FakeLLM(responses, default=default)
    stt = StreamAdapter(stt=_WordsSTT(0.1), vad=vad, speculate_after=0.1, preflight=preflight)
    session: AgentSession[None] = AgentSession(
        vad=vad, stt=stt, llm=llm, tts=FakeTTS(ttfb=0.2), preemptive_generation=True, **opts
    )
    mic = FakeAudioInput(utterances)
    r = Rig(session, mic, llm)
    session.input.audio = mic
    await session.start(Agent(instructions="Be brief."))
    return r


@pytest.mark.parametrize("preflight", [False, True])
async def test_the_reply_starts_on_the_preflight_and_the_final_confirms_it(
    preflight: bool,
) -> None:
    r = await _rig(
        [Utterance(1.0, silence_before=0.5, transcript="what time is it")],
        [FakeLLMResponse(content="It is noon.", ttft=0.3)],
        preflight=preflight,
    )
    await asyncio.sleep(4)
    (call,) = r.llm.calls  # one request: the final did not start another
    assert call.chat_ctx.messages()[-1].text_content == "what time is it"
    (reply,) = r.assistant()
    # the LLM starts at the preflight (0.2 s after the voice) or at the final (0.3 s);
    # then 0.3 s to the first token and 0.2 s to the first audio
    assert reply.metrics.e2e_latency == approx(0.7 if preflight else 0.8, 0.03)
    assert r.user_messages() == ["what time is it"]
    assert len(r.log.of("speech_created")) == 1
    await r.aclose()


async def test_a_withdrawn_preflight_drops_its_reply() -> None:
    r = await _rig(
        [
            Utterance(0.8, silence_before=0.5, transcript="book a table"),
            # back after 0.25 s: after the first part's preflight (0.2 s), before the VAD's end
            Utterance(0.8, silence_before=0.25, transcript="for two"),
        ],
        [],
        preflight=True,
        default="Done.",
    )
    await asyncio.sleep(5)
    sent = [c.chat_ctx.messages()[-1].text_content for c in r.llm.calls]
    assert sent == ["book a table", "book a table for two"]
    assert r.user_messages() == ["book a table for two"]
    assert [m.text_content for m in r.assistant()] == ["Done."]
    assert len(r.log.of("speech_created")) == 1 and len(r.out.segments) == 1
    await r.aclose()


async def test_no_preflight_reply_without_preemptive_generation() -> None:
    vad = FakeVAD()
    llm = FakeLLM([FakeLLMResponse(content="It is noon.", ttft=0.3)])
    session: AgentSession[None] = AgentSession(
        vad=vad,
        stt=StreamAdapter(stt=_WordsSTT(0.1), vad=vad, speculate_after=0.1),
        llm=llm,
        tts=FakeTTS(ttfb=0.2),
        preemptive_generation=False,
    )
    mic = FakeAudioInput([Utterance(1.0, silence_before=0.5, transcript="what time is it")])
    r = Rig(session, mic, llm)
    session.input.audio = mic
    await session.start(Agent(instructions="Be brief."))
    await asyncio.sleep(4)
    (reply,) = r.assistant()
    # the request waits for the commit: the final (0.3 s) + endpointing (0.5 s from the voice)
    assert reply.metrics.e2e_latency == approx(0.5 + 0.3 + 0.2, 0.03)
    await r.aclose()
