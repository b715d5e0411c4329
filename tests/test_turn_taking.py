"""Turn-taking under virtual time with scripted fakes of known timing: endpointing, user
state, interruptions, false interruptions, manual turns and the per-turn latency report.

Timeline conventions: FakeAudioInput frames are 10 ms; FakeVAD reports end of speech after
0.3 s of silence (and subtracts it); FakeSTT sends its final ``final_delay`` after the voice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession
from voicetui.agents.llm import ChatContext, ChatMessage
from voicetui.agents.metrics import UsageCollector
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeTextOutput,
    FakeTTS,
    FakeVAD,
    Utterance,
)

from .conftest import EventLog

pytestmark = pytest.mark.looptime

LONG = (
    "Let me tell you a long story about the sea. It begins on a grey morning in the harbour. "
    "The boats were all asleep and the gulls were loud. Nobody expected the storm to come."
)


class Rig:
    """A session wired to a scripted microphone, a real-time fake speaker and a transcript
    sink, with every event stamped on the loop clock."""

    def __init__(self, session: AgentSession[None], mic: FakeAudioInput, llm: FakeLLM) -> None:
        self.session = session
        self.mic = mic
        self.llm = llm
        self.out = FakeAudioOutput()
        self.text = FakeTextOutput()
        self.log = EventLog(session)
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.at: list[tuple[float, Any]] = []
        for name in ("user_state_changed", "agent_state_changed", "conversation_item_added"):
            session.on(name, lambda ev: self.at.append((self.t(), ev)))
        session.output.audio = self.out
        session.output.transcription = self.text

    def t(self) -> float:
        return self.loop.time() - self.t0

    def when(self, type_: str, pred: Any = lambda ev: True) -> list[float]:
        return [t for t, ev in self.at if ev.type == type_ and pred(ev)]

    def user_states(self) -> list[str]:
        return [e.new_state for e in self.log.of("user_state_changed")]

    def user_messages(self) -> list[str]:
        return [m.text_content or "" for m in self.session.history.messages() if m.role == "user"]

    def assistant(self) -> list[ChatMessage]:
        return [m for m in self.session.history.messages() if m.role == "assistant"]

    def metrics(self, type_: str) -> list[Any]:
        return [e.metrics for e in self.log.of("metrics_collected") if e.metrics.type == type_]

    async def aclose(self) -> None:
        await self.session.aclose()
        await self.out.aclose()


async def rig(
    utterances: Sequence[Utterance] = (),
    responses: Sequence[FakeLLMResponse] = (),
    *,
    stt: FakeSTT | None = None,
    tts: FakeTTS | None = None,
    agent: Agent | None = None,
    default: str | None = None,
    **opts: Any,
) -> Rig:
    llm = FakeLLM(list(responses), default=default)
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(), stt=stt or FakeSTT(final_delay=0.2), llm=llm, tts=tts or FakeTTS(), **opts
    )
    mic = FakeAudioInput(utterances)
    r = Rig(session, mic, llm)
    session.input.audio = mic
    await session.start(agent or Agent(instructions="Be brief."))
    return r


def approx(x: float, tol: float = 0.05) -> Any:
    return pytest.approx(x, abs=tol)


# --- latency report ---------------------------------------------------------------------------
class SlowHookAgent(Agent):
    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        await asyncio.sleep(0.1)


class LateVAD(FakeVAD):
    """A VAD whose events come ``lag`` seconds after the audio they are about (inference on a
    busy CPU), with the right ``samples_index``."""

    def __init__(self, lag: float) -> None:
        super().__init__()
        self.lag = lag

    def stream(self) -> Any:
        stream = super().stream()
        emit = stream._emit
        loop = asyncio.get_running_loop()
        stream._emit = lambda ev: loop.call_later(self.lag, emit, ev)  # type: ignore[method-assign]
        return stream


async def test_a_late_vad_does_not_shorten_the_measured_latency() -> None:
    # voice 0.5–1.5 s; the VAD's end of speech (0.3 s of silence) arrives 0.4 s late, at 2.2
    llm = FakeLLM([FakeLLMResponse(content="It is noon.", ttft=0.3)])
    session: AgentSession[None] = AgentSession(
        vad=LateVAD(0.4), stt=FakeSTT(final_delay=0.2), llm=llm, tts=FakeTTS(ttfb=0.2)
    )
    mic = FakeAudioInput([Utterance(1.0, silence_before=0.5, transcript="what time is it")])
    out = FakeAudioOutput()
    session.input.audio, session.output.audio = mic, out
    await session.start(Agent(instructions="Be brief."))
    await asyncio.sleep(5)
    (user,) = [m for m in session.history.messages() if m.role == "user"]
    (reply,) = [m for m in session.history.messages() if m.role == "assistant"]
    # committed as soon as the late end of speech came (its 0.5 s endpointing delay had
    # passed): EOU 0.7 s counted from the end of the voice at 1.5, not from when the VAD spoke
    assert reply.metrics.end_of_turn_delay == approx(0.7, 0.03)
    # first audio at 2.2 + 0.3 + 0.2 = 2.7: 1.2 s after the voice ended
    assert reply.metrics.e2e_latency == approx(1.2, 0.03)
    assert user.metrics.stopped_speaking_at is not None
    await session.aclose()
    await out.aclose()


async def test_a_typed_turn_measures_e2e_from_when_it_was_sent() -> None:
    # typed at 1.0 while nothing plays: LLM ttft 0.3, TTS ttfb 0.2 → first audio 0.5 s later
    r = await rig(
        [], [FakeLLMResponse(input="hello", content="Hi there.", ttft=0.3)], tts=FakeTTS(ttfb=0.2)
    )
    await asyncio.sleep(1.0)
    r.session.generate_reply(user_input="hello")
    await asyncio.sleep(3)
    (reply,) = r.assistant()
    assert reply.metrics.typed_input and reply.metrics.end_of_turn_delay is None
    assert reply.metrics.e2e_latency == approx(0.5, 0.05)
    await r.aclose()


async def test_latency_metrics_match_scripted_timings() -> None:
    # voice 0.5–1.5 s; STT final +0.2; endpointing 0.5 → commit 2.0; hook 0.1; LLM ttft 0.3;
    # TTS ttfb 0.2 → first audio at 2.6, i.e. 1.1 s after the user stopped speaking
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="what time is it")],
        [FakeLLMResponse(content="It is noon.", ttft=0.3)],
        tts=FakeTTS(ttfb=0.2),
        agent=SlowHookAgent(instructions="Be brief."),
    )
    usage = UsageCollector()
    r.session.on("metrics_collected", lambda ev: usage.collect(ev.metrics))
    await asyncio.sleep(5)
    assert r.user_states() == ["speaking", "listening"]
    transcripts = [(e.transcript, e.is_final) for e in r.log.of("user_input_transcribed")]
    assert transcripts == [("what time", False), ("what time is it", True)]
    assert r.when("user_state_changed", lambda e: e.new_state == "speaking") == [approx(0.56)]
    (eou,) = r.metrics("eou_metrics")
    assert eou.end_of_utterance_delay == approx(0.5, 0.02)
    assert eou.transcription_delay == approx(0.2, 0.02)
    assert eou.on_user_turn_completed_delay == approx(0.1, 0.01)
    (user,) = [m for m in r.session.history.messages() if m.role == "user"]
    assert user.text_content == "what time is it"
    assert user.metrics.stopped_speaking_at - user.metrics.started_speaking_at == approx(1.0)
    (reply,) = r.assistant()
    assert reply.text_content == "It is noon." and not reply.interrupted
    assert reply.metrics.end_of_turn_delay == approx(0.5, 0.02)
    assert reply.metrics.llm_node_ttft == approx(0.3, 0.02)
    assert reply.metrics.tts_node_ttfb == approx(0.2, 0.02)
    assert reply.metrics.e2e_latency == approx(1.1, 0.05)
    assert eou.speech_id == r.log.of("speech_created")[0].speech_id
    (llm_m,) = r.metrics("llm_metrics")
    assert llm_m.ttft == approx(0.3, 0.02) and not llm_m.cancelled
    (tts_m,) = r.metrics("tts_metrics")
    assert tts_m.ttfb == approx(0.2, 0.02) and tts_m.characters_count == len("It is noon.")
    stt_m = r.metrics("stt_metrics")
    assert stt_m and all(m.streamed for m in stt_m)
    assert stt_m[0].audio_duration == approx(1.7, 0.05)  # everything heard up to the final
    assert r.metrics("vad_metrics")
    summary = usage.get_summary()
    assert summary.llm_completion_tokens == 3
    assert summary.tts_characters_count == len("It is noon.")
    assert summary.tts_audio_duration == approx(len("It is noon.") * 0.05)
    assert summary.stt_audio_duration >= 1.7
    assert r.log.agent_states() == ["listening", "thinking", "speaking", "listening"]
    await r.aclose()


# --- endpointing ------------------------------------------------------------------------------
async def test_min_endpointing_delay() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="hello there")],
        default="Hi.",
        min_endpointing_delay=1.2,
    )
    await asyncio.sleep(4)
    assert r.when(
        "conversation_item_added", lambda e: e.item.type == "message" and e.item.role == "user"
    ) == [approx(2.7)]
    assert r.metrics("eou_metrics")[0].end_of_utterance_delay == approx(1.2, 0.02)
    await r.aclose()


async def test_late_final_commits_when_it_arrives() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="hello there")],
        stt=FakeSTT(final_delay=1.5),
        default="Hi.",
    )
    await asyncio.sleep(4)
    # the voice ended at 1.5; min delay would be 2.0 but the final only comes at 3.0
    assert r.when(
        "conversation_item_added", lambda e: e.item.type == "message" and e.item.role == "user"
    ) == [approx(3.0)]
    assert r.metrics("eou_metrics")[0].transcription_delay == approx(1.5, 0.02)
    await r.aclose()


async def test_max_endpointing_delay_commits_the_interim() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="book a table for two")],
        stt=FakeSTT(final_delay=5.0),
        default="Sure.",
        max_endpointing_delay=2.0,
    )
    await asyncio.sleep(3.8)
    # no final by 1.5 + 2.0: what the interim heard is the turn
    assert r.when(
        "conversation_item_added", lambda e: e.item.type == "message" and e.item.role == "user"
    ) == [approx(3.5)]
    assert r.user_messages() == ["book a"]
    await asyncio.sleep(3.5)
    assert r.user_messages() == ["book a", "book a table for two"]  # the late final: next turn
    await r.aclose()


async def test_user_going_on_after_a_pause_is_one_turn() -> None:
    r = await rig(
        [
            Utterance(0.8, silence_before=0.5, transcript="i would like"),
            Utterance(0.8, silence_before=0.35, transcript="a coffee please"),
        ],
        default="Coming up.",
    )
    await asyncio.sleep(5)
    assert r.user_messages() == ["i would like a coffee please"]
    assert r.user_states() == ["speaking", "listening", "speaking", "listening"]
    assert len(r.llm.calls) == 1
    await r.aclose()


async def test_stt_turn_detection_ends_on_the_stt_end_of_speech() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="hello")],
        stt=FakeSTT(final_delay=0.4),
        default="Hi.",
        turn_detection="stt",
    )
    await asyncio.sleep(4)
    # the STT says end of speech with its final at 1.9; endpointing delay 0.5 from there
    assert r.when(
        "conversation_item_added", lambda e: e.item.type == "message" and e.item.role == "user"
    ) == [approx(2.4)]
    await r.aclose()


async def test_manual_turn_detection() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.2, transcript="first try")],
        default="Okay.",
        turn_detection="manual",
    )
    await asyncio.sleep(3)
    assert r.user_messages() == []  # nothing happens without a commit
    r.session.clear_user_turn()
    r.mic.add(Utterance(1.0, silence_before=0.1, transcript="second try"))
    await asyncio.sleep(1.15)  # mid-sentence: the push-to-talk key is released
    await r.session.commit_user_turn()
    assert r.user_messages() == ["second try"]
    await asyncio.sleep(2)
    assert [m.text_content for m in r.assistant()] == ["Okay."]
    await r.aclose()


# --- interruptions ----------------------------------------------------------------------------
async def test_interruption_during_speech() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=2.0, transcript="stop please")],
        [FakeLLMResponse(content="Fine, stopping.", input="stop please")],
        tts=FakeTTS(seconds_per_char=0.05),
    )
    handle = r.session.say(LONG)
    await asyncio.sleep(6)
    assert handle.interrupted
    first = r.assistant()[0]
    assert first.interrupted
    heard = first.text_content or ""
    assert heard and LONG.startswith(heard) and len(heard) < len(LONG) / 2
    played, interrupted = r.out.segments[0]
    # the words arrive 0.2 s into the voice, before 0.5 s of speech: interrupted at once then
    assert interrupted and played == approx(2.5, 0.1)
    assert r.user_messages() == ["stop please"]
    assert r.assistant()[1].text_content == "Fine, stopping."
    assert not r.log.of("agent_false_interruption")
    await r.aclose()


async def test_interruption_before_the_agent_speaks() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="actually wait")],
        [
            FakeLLMResponse(content="A slow answer.", ttft=3.0),
            FakeLLMResponse(content="Sure, waiting.", input="actually wait"),
        ],
    )
    handle = r.session.generate_reply(user_input="tell me something")
    await asyncio.sleep(5)
    assert handle.interrupted
    assert r.out.segments[0] == (approx(len("Sure, waiting.") * 0.05, 0.06), False)
    assert [m.text_content for m in r.assistant()] == ["Sure, waiting."]
    assert r.metrics("llm_metrics")[0].cancelled
    await r.aclose()


async def test_too_short_speech_does_not_interrupt() -> None:
    r = await rig([Utterance(0.3, silence_before=1.0)])  # a cough: no words either
    handle = r.session.say("A sentence that takes a little while to say out loud.")
    await handle
    assert not handle.interrupted and r.out.segments == [(approx(2.7, 0.06), False)]
    assert r.user_states() == ["speaking", "listening"]
    assert r.user_messages() == []
    await r.aclose()


async def test_min_interruption_words() -> None:
    r = await rig(
        [
            Utterance(1.0, silence_before=1.0, transcript="okay"),
            Utterance(1.5, silence_before=1.0, transcript="no wait stop there"),
        ],
        default="Stopped.",
        min_interruption_words=3,
    )
    handle = r.session.say(LONG)
    await asyncio.sleep(8)
    assert handle.interrupted
    played, interrupted = r.out.segments[0]
    # "okay" (1 word, at 1–2 s) did not stop it; the second utterance (from 3 s) did, once the
    # turn's transcript ("okay" + its interim) had 3 words
    assert interrupted and played == approx(3.2, 0.06)
    assert r.user_messages() == ["okay no wait stop there"]
    await r.aclose()


@pytest.mark.parametrize("discard", [True, False])
async def test_uninterruptible_speech(discard: bool) -> None:
    r = await rig(
        [Utterance(1.0, silence_before=1.0, transcript="are you there")],
        default="Yes.",
        discard_audio_if_uninterruptible=discard,
    )
    handle = r.session.say(
        "This announcement cannot be interrupted by anyone.", allow_interruptions=False
    )
    await handle
    assert not handle.interrupted and r.out.segments[0][1] is False
    await asyncio.sleep(3)
    if discard:
        assert r.user_states() == [] and r.user_messages() == [] and not r.llm.calls
    else:
        assert r.user_messages() == ["are you there"]
        # the reply waited for the announcement to end
        (t_reply,) = r.when(
            "conversation_item_added", lambda e: e.item.type == "message" and e.item.role == "user"
        )
        assert t_reply == approx(2.5)
        assert [m.text_content for m in r.assistant()][-1] == "Yes."
    await r.aclose()


async def test_false_interruption_resumed() -> None:
    tts = FakeTTS()
    r = await rig([Utterance(0.8, silence_before=1.0)], tts=tts)  # a noise: no transcript
    handle = r.session.say(LONG)
    await asyncio.sleep(1.6)
    assert r.out.paused and r.session.agent_state == "listening"
    await handle
    assert not handle.interrupted
    full = sum(tts.duration_for(text) for text in tts.requests)
    # everything was played, nothing cut: paused at 1.5 (0.5 s of noise), resumed 2 s after
    # the end of the noise was reported (2.1) → 4.1
    assert r.out.segments == [(approx(full, 0.06), False)]
    (ev,) = r.log.of("agent_false_interruption")
    assert ev.resumed
    assert r.log.agent_states() == ["listening", "speaking", "listening", "speaking", "listening"]
    # (the window starts when the VAD reports the end of the noise: 1.8 + 0.3 s of silence)
    assert r.when("agent_state_changed", lambda e: e.new_state == "speaking")[1] == approx(4.1)
    assert r.assistant()[0].text_content == LONG and not r.assistant()[0].interrupted
    await r.aclose()


async def test_false_interruption_not_resumed() -> None:
    r = await rig([Utterance(0.8, silence_before=1.0)], resume_false_interruption=False)
    handle = r.session.say(LONG)
    await handle
    assert handle.interrupted
    assert r.out.segments[0] == (approx(1.5, 0.06), True)
    await asyncio.sleep(3)
    (ev,) = r.log.of("agent_false_interruption")
    assert not ev.resumed
    await r.aclose()


async def test_paused_speech_interrupted_when_words_arrive() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=1.0, transcript="hold on")],
        default="Holding.",
        stt=FakeSTT(final_delay=0.2, interim_delay=None),
    )
    handle = r.session.say(LONG)
    await asyncio.sleep(1.6)
    assert r.out.paused
    await handle
    assert handle.interrupted and not r.out.paused
    assert r.out.segments[0] == (approx(1.5, 0.06), True)  # cut where it was paused
    await asyncio.sleep(3)
    assert not r.log.of("agent_false_interruption")
    assert [m.text_content for m in r.assistant()][-1] == "Holding."
    await r.aclose()


async def test_min_consecutive_speech_delay() -> None:
    r = await rig(min_consecutive_speech_delay=1.0)
    starts: list[float] = []
    r.out.on("playback_started", lambda ev: starts.append(r.t()))
    first = r.session.say("One.")
    second = r.session.say("Two.")
    await second
    assert first.done()
    assert starts[1] - starts[0] == approx(len("One.") * 0.05 + 1.0)
    await r.aclose()


async def test_user_away_and_back() -> None:
    r = await rig(user_away_timeout=3.0)
    await asyncio.sleep(3.5)
    assert r.user_states() == ["away"]
    r.mic.add(Utterance(1.0, transcript="i am back"))
    await asyncio.sleep(0.2)
    assert r.session.user_state == "speaking"
    await asyncio.sleep(1.5)
    assert r.user_states()[:3] == ["away", "speaking", "listening"]
    await r.aclose()


async def test_agent_speaking_keeps_the_user_present() -> None:
    r = await rig(user_away_timeout=1.0)
    await r.session.say(LONG)  # ~9 s of speech
    assert r.user_states() == []
    await asyncio.sleep(1.1)
    assert r.user_states() == ["away"]
    await r.aclose()


# --- preemptive generation --------------------------------------------------------------------
async def test_preemptive_generation_hit_saves_the_endpointing_delay() -> None:
    # the same turn as the latency test, minus the hook: 1.0 s without preemption
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="what time is it")],
        [FakeLLMResponse(content="It is noon.", ttft=0.3)],
        tts=FakeTTS(ttfb=0.2),
        preemptive_generation=True,
    )
    await asyncio.sleep(4)
    (call,) = r.llm.calls
    assert call.chat_ctx.messages()[-1].text_content == "what time is it"
    (reply,) = r.assistant()
    # LLM from the final (1.7): text at 2.0, audio at 2.2 → 0.7 s after the voice ended
    assert reply.metrics.e2e_latency == approx(0.7, 0.05)
    assert [m.text_content for m in r.session.history.messages()] == [
        "what time is it",
        "It is noon.",
    ]
    assert len(r.log.of("speech_created")) == 1
    await r.aclose()


async def test_preemptive_generation_regenerates_when_the_user_goes_on() -> None:
    r = await rig(
        [
            Utterance(0.8, silence_before=0.5, transcript="book a table"),
            Utterance(0.8, silence_before=0.35, transcript="for two"),
        ],
        default="Done.",
        preemptive_generation=True,
    )
    await asyncio.sleep(5)
    sent = [c.chat_ctx.messages()[-1].text_content for c in r.llm.calls]
    assert sent == ["book a table", "book a table for two"]
    assert r.user_messages() == ["book a table for two"]
    assert [m.text_content for m in r.assistant()] == ["Done."]
    assert len(r.log.of("speech_created")) == 1 and len(r.out.segments) == 1
    await r.aclose()


class EditingAgent(Agent):
    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        new_message.content = [f"{new_message.text_content} (from the kitchen)"]


async def test_preemptive_generation_miss_when_the_hook_edits_the_turn() -> None:
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="what is for dinner")],
        default="Soup.",
        agent=EditingAgent(instructions="Be brief."),
        preemptive_generation=True,
    )
    await asyncio.sleep(4)
    sent = [c.chat_ctx.messages()[-1].text_content for c in r.llm.calls]
    assert sent == ["what is for dinner", "what is for dinner (from the kitchen)"]
    assert r.user_messages() == ["what is for dinner (from the kitchen)"]
    assert [m.text_content for m in r.assistant()] == ["Soup."]
    await r.aclose()


async def test_agent_options_override_the_session() -> None:
    agent = Agent(
        instructions="Be brief.", min_endpointing_delay=1.2, resume_false_interruption=False
    )
    r = await rig(
        [Utterance(1.0, silence_before=0.5, transcript="hello there")],
        default="Hi.",
        agent=agent,
        min_endpointing_delay=0.3,
    )
    await asyncio.sleep(4)
    assert r.when(
        "conversation_item_added", lambda e: e.item.type == "message" and e.item.role == "user"
    ) == [approx(2.7)]
    activity = r.session.activity
    assert activity is not None
    assert activity.options.resume_false_interruption is False
    assert activity.options.user_away_timeout == 15.0  # not overridden
    await r.aclose()


async def test_set_turn_detection_while_running() -> None:
    r = await rig([Utterance(1.0, silence_before=0.5, transcript="hold this")], default="Okay.")
    r.session.set_turn_detection("manual")  # push-to-talk: nothing commits by itself
    await asyncio.sleep(3)
    assert r.user_messages() == []
    await r.session.commit_user_turn()
    assert r.user_messages() == ["hold this"]
    r.session.set_turn_detection(None)  # back to the VAD
    r.mic.add(Utterance(1.0, silence_before=0.2, transcript="and this"))
    await asyncio.sleep(3)
    assert r.user_messages() == ["hold this", "and this"]
    await r.aclose()
