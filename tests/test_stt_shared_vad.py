"""A session with a non-streaming STT (wrapped in ``stt.StreamAdapter``) and a VAD runs one VAD
stream, not two: the adapter listens to the session's VAD events (issue 21) — and hears the same
transcripts as an adapter that runs its own VAD. Virtual time, scripted fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Any

import pytest
from livekit import rtc

from voicetui.agents import Agent, AgentSession, ModelSettings
from voicetui.agents.audio import frames_duration
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
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.types import APIConnectOptions
from voicetui.agents.vad import SharedVADEvents, VADEvent, VADEventType

pytestmark = pytest.mark.looptime

UTTERANCES = [
    Utterance(speech=0.8, silence_before=0.5, transcript="what time is it"),
    Utterance(speech=1.2, silence_before=2.5, transcript="and in tokyo"),
]


class WholeUtteranceSTT(STT):
    """Non-streaming: the transcript the fake mic attached to the voice frames it is given, and
    how much audio that was."""

    def __init__(self) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self.heard: list[float] = []

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        self.heard.append(round(frames_duration(buffer), 3))
        text = next((t for f in buffer if (t := f.userdata.get("transcript"))), "")
        await asyncio.sleep(0.05)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, [SpeechData(text=str(text))])


class OwnSTTNode(Agent):
    """Overrides ``stt_node`` (here only to pass the audio on): the session cannot know the STT
    hears what the VAD hears, so the adapter runs its own VAD."""

    def stt_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[SpeechEvent]:
        return Agent.default.stt_node(self, audio, model_settings)


async def _listen(agent: Agent) -> tuple[list[str], FakeVAD, WholeUtteranceSTT, StreamAdapter]:
    vad = FakeVAD()
    stt = WholeUtteranceSTT()
    replies = [FakeLLMResponse(content="It is noon."), FakeLLMResponse(content="Nine.")]
    session: AgentSession[None] = AgentSession(
        vad=vad, stt=stt, llm=FakeLLM(replies), tts=FakeTTS()
    )
    mic = FakeAudioInput(UTTERANCES)
    out = FakeAudioOutput()
    session.input.audio = mic
    session.output.audio = out
    said: list[str] = []
    both = asyncio.Event()

    def on_item(ev: Any) -> None:
        if ev.item.role == "user":
            said.append(ev.item.text_content)
            if len(said) == 2:
                both.set()

    session.on("conversation_item_added", on_item)
    await session.start(agent)
    activity = agent._get_activity_or_raise()
    adapter = activity.streaming_stt
    assert isinstance(adapter, StreamAdapter)
    try:
        async with asyncio.timeout(30):
            await both.wait()
        return said, vad, stt, adapter
    finally:
        mic.close()
        await session.aclose()
        await out.aclose()


async def test_the_adapter_in_a_session_runs_no_second_vad_and_hears_the_same() -> None:
    shared_said, shared_vad, shared_stt, shared_adapter = await _listen(
        Agent(instructions="Be brief.")
    )
    own_said, own_vad, own_stt, own_adapter = await _listen(OwnSTTNode(instructions="Be brief."))
    assert shared_adapter.shares_vad_events and not own_adapter.shares_vad_events
    # the session's streams only (it opens a new one when the mic is attached); with its own
    # VAD the adapter opens one more and judges all the audio a second time
    assert own_vad.streams_opened == shared_vad.streams_opened + 1
    assert own_vad.audio_judged > 1.8 * shared_vad.audio_judged
    assert shared_said == own_said == ["what time is it", "and in tokyo"]
    # the same utterances, to the sample (speculative or not, the final is the VAD's utterance)
    assert shared_stt.heard[-2:] == own_stt.heard[-2:]


def test_a_failing_listener_is_dropped_and_the_others_still_hear() -> None:
    shared = SharedVADEvents()
    heard: list[VADEvent] = []

    def broken(ev: VADEvent) -> None:
        raise RuntimeError("a bug")

    shared.subscribe(broken)
    unsubscribe = shared.subscribe(heard.append)
    ev = VADEvent(VADEventType.INFERENCE_DONE, 160, 0.0, 0.0, 0.0)
    shared.publish(ev)  # (does not raise into the VAD's owner)
    shared.publish(ev)
    assert heard == [ev, ev]
    unsubscribe()
    assert not shared.listened
