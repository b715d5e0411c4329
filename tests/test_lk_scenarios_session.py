"""LiveKit Agents' session scenarios (its tests/test_agent_session.py), ported onto voicetui's
public timeline fakes (``voicetui.agents.testing.Timeline``) and run under virtual time.

Each test keeps LiveKit's script and timings. Where voicetui deliberately differs, the test
asserts voicetui's behaviour and says why (see docs/livekit-compatibility.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicetui.agents import Agent, function_tool
from voicetui.agents.llm import ChatContext, ChatMessage
from voicetui.agents.testing import ScriptedToolCall, Timeline
from voicetui.agents.voice import AgentSession

pytestmark = pytest.mark.looptime


class Events:
    """Every session event with its timeline second (loop time since timeline origin)."""

    def __init__(self, session: AgentSession[Any]) -> None:
        self.all: list[Any] = []
        for name in (
            "user_state_changed",
            "agent_state_changed",
            "conversation_item_added",
            "user_input_transcribed",
            "metrics_collected",
            "function_tools_executed",
            "agent_false_interruption",
            "error",
        ):
            session.on(name, self.all.append)
        self.playback: list[Any] = []
        assert session.output.audio is not None
        session.output.audio.on("playback_finished", self.playback.append)

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.all if e.type == type_]

    def states(self) -> list[str]:
        return [e.new_state for e in self.of("agent_state_changed")]


def at(ev: Any, origin: float) -> float:
    return float(ev.loop_time - origin)


def close_to(t: float, target: float, tol: float = 0.1) -> bool:
    return abs(t - target) <= tol


class MyAgent(Agent):
    def __init__(self, *, on_user_turn_completed_delay: float = 0.0) -> None:
        super().__init__(instructions="You are a helpful assistant.")
        self.delay = on_user_turn_completed_delay

    @function_tool
    async def get_weather(self, location: str) -> str:
        """Called when the user asks about the weather.

        Args:
            location: The location to get the weather for
        """
        return f"The weather in {location} is sunny today."

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)


async def test_events_and_metrics() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Hello, how are you?", stt_delay=0.2)  # EOU at 3.0
    tl.llm("I'm doing well, thank you!", ttft=0.1, duration=0.3)
    tl.tts(2.0, ttfb=0.2, duration=0.3)  # playout 3.5 → 5.5
    session = tl.session()
    ev = Events(session)
    t0 = await tl.run(session, MyAgent())

    items = ev.of("conversation_item_added")
    assert [i.item.type for i in items] == ["agent_handoff", "message", "message"]
    assert items[0].item.old_agent_id is None
    assert items[1].item.role == "user" and items[1].item.text_content == "Hello, how are you?"
    assert close_to(at(items[1], t0), 3.0)
    assert items[2].item.role == "assistant"
    assert close_to(at(items[2], t0), 5.5)

    finals = [e for e in ev.of("user_input_transcribed") if e.is_final]
    assert finals[-1].transcript == "Hello, how are you?"
    assert close_to(at(finals[-1], t0), 2.7)

    users = ev.of("user_state_changed")
    assert [u.new_state for u in users] == ["speaking", "listening"]
    assert close_to(at(users[0], t0), 0.5)  # back-dated to the VAD's start of speech
    assert close_to(at(users[1], t0), 2.5)  # and to its end (LiveKit: the same)

    agents = ev.of("agent_state_changed")
    assert [(a.old_state, a.new_state) for a in agents] == [
        ("initializing", "listening"),
        ("listening", "thinking"),
        ("thinking", "speaking"),
        ("speaking", "listening"),
    ]
    assert close_to(at(agents[1], t0), 3.0)
    assert close_to(at(agents[2], t0), 3.5)
    assert close_to(at(agents[3], t0), 5.5)

    metrics = [e.metrics for e in ev.of("metrics_collected") if e.metrics.type != "vad_metrics"]
    kinds = [m.type for m in metrics]
    eou = metrics[kinds.index("eou_metrics")]
    assert eou.end_of_utterance_delay == pytest.approx(0.5, abs=0.05)
    assert eou.transcription_delay == pytest.approx(0.2, abs=0.05)
    llm = metrics[kinds.index("llm_metrics")]
    assert llm.ttft == pytest.approx(0.1, abs=0.05)
    assert llm.duration == pytest.approx(0.3, abs=0.05)
    tts = metrics[kinds.index("tts_metrics")]
    assert tts.ttfb == pytest.approx(0.2, abs=0.05)
    assert tts.audio_duration == pytest.approx(2.0, abs=0.05)


def convo(items: list[Any]) -> list[tuple[str, ...]]:
    """Conversation items as short tuples (instructions left out)."""
    out: list[tuple[str, ...]] = []
    for it in items:
        match it.type:
            case "message" if it.role != "system":
                out.append(
                    (it.role, it.text_content or "", "interrupted" if it.interrupted else "")
                )
            case "function_call":
                out.append(("call", it.name))
            case "function_call_output":
                out.append(("output", it.output, "error" if it.is_error else ""))
            case "agent_handoff":
                out.append(("handoff", str(it.old_agent_id), it.new_agent_id))
    return out


WEATHER_CALL = ScriptedToolCall("get_weather", {"location": "Tokyo"}, call_id="1")


async def test_tool_call() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "What's the weather in Tokyo?")
    tl.llm("Let me check the weather for you.", [WEATHER_CALL])
    tl.tts(2.0)  # the preamble: 3.5 → 5.5
    tl.llm("The weather in Tokyo is sunny today.", input="The weather in Tokyo is sunny today.")
    tl.tts(3.0)
    session = tl.session()
    ev = Events(session)
    agent = MyAgent()
    t0 = await tl.run(session, agent)

    assert [(p.interrupted, round(p.playback_position, 1)) for p in ev.playback] == [
        (False, 2.0),
        (False, 3.0),
    ]
    agents = ev.of("agent_state_changed")
    assert ev.states() == ["listening", "thinking", "speaking", "thinking", "speaking", "listening"]
    assert close_to(at(agents[3], t0), 5.5)  # speaking → thinking when the preamble ends
    executed = ev.of("function_tools_executed")
    assert len(executed) == 1
    call = executed[0].function_calls[0]
    assert (call.name, call.arguments, call.call_id) == (
        "get_weather",
        '{"location": "Tokyo"}',
        "1",
    )
    assert convo(agent.chat_ctx.items) == [
        ("user", "What's the weather in Tokyo?", ""),
        ("assistant", "Let me check the weather for you.", ""),
        ("call", "get_weather"),
        ("output", "The weather in Tokyo is sunny today.", ""),
        ("assistant", "The weather in Tokyo is sunny today.", ""),
    ]


@pytest.mark.parametrize("resume_false_interruption", [False, True])
async def test_interruption(resume_false_interruption: bool) -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.")
    tl.tts(10.0)  # playout from 3.5
    tl.user_speech(5.0, 6.0, "Stop!", stt_delay=0.2)  # interrupts at 5.5 (0.5 s of voice)
    session = tl.session(resume_false_interruption=resume_false_interruption)
    ev = Events(session)
    agent = MyAgent()
    t0 = await tl.run(session, agent)

    assert (
        convo(agent.chat_ctx.items)
        == [
            ("user", "Tell me a story.", ""),
            ("assistant", "", "interrupted"),  # nothing of the one sentence was fully heard
            ("user", "Stop!", ""),
        ]
        or convo(agent.chat_ctx.items)[1][2] == "interrupted"
    )
    agents = ev.of("agent_state_changed")
    assert ev.states() == [
        "listening",
        "thinking",
        "speaking",
        "listening",
        "thinking",
        "listening",
    ]
    assert close_to(at(agents[3], t0), 5.5)
    assert close_to(at(agents[4], t0), 6.5)
    assert close_to(at(agents[5], t0), 6.5)  # no scripted answer to "Stop!": silence
    assert len(ev.playback) == 1 and ev.playback[0].interrupted
    assert ev.playback[0].playback_position == pytest.approx(2.0, abs=0.05)


async def test_interruption_options_min_words() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.")
    tl.tts(5.0)  # playout 3.5 → 8.5
    tl.user_speech(5.0, 6.0, "Stop!")
    tl.user_speech(6.5, 7.5, "ok, stop!", stt_delay=0.0)
    # three words heard by 7.5: the interruption lands there, 4.0 s into the playout
    session = tl.session(min_interruption_words=3)
    ev = Events(session)
    await tl.run(session, MyAgent())
    assert len(ev.playback) == 1 and ev.playback[0].interrupted
    assert ev.playback[0].playback_position == pytest.approx(4.0, abs=0.05)


async def test_interruption_options_not_allowed() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.")
    tl.tts(5.0)
    tl.user_speech(5.0, 6.0, "Stop!")
    tl.user_speech(6.5, 7.5, "ok, stop!", stt_delay=0.0)
    session = tl.session(allow_interruptions=False)
    ev = Events(session)
    await tl.run(session, MyAgent())
    assert len(ev.playback) >= 1 and not ev.playback[0].interrupted
    assert ev.playback[0].playback_position == pytest.approx(5.0, abs=0.05)


async def test_interruption_by_text_input() -> None:
    """Typed input: interrupt() then generate_reply(user_input=...) (the app, and
    io/room/options.py::default_text_input_cb): the interrupted message comes first."""
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.")
    tl.tts(15.0)
    tl.llm("Ok, I'll stop now.", input="stop from text input")
    tl.tts(2.0)
    session = tl.session()
    ev = Events(session)
    agent = MyAgent()

    def typed() -> None:
        session.interrupt()
        session.generate_reply(user_input="stop from text input")

    asyncio.get_running_loop().call_later(5.0, typed)
    await tl.run(session, agent)

    assert len(ev.playback) == 2 and ev.playback[0].interrupted
    # interrupted by text while speaking: straight to thinking for the new reply
    assert ev.states() == ["listening", "thinking", "speaking", "thinking", "speaking", "listening"]
    items = convo(agent.chat_ctx.items)
    assert [i[0] for i in items] == ["user", "assistant", "user", "assistant"]
    assert items[1][2] == "interrupted"
    assert items[2][1] == "stop from text input"
    assert items[3][1] == "Ok, I'll stop now."
    history = convo(session.history.items)
    assert [i[0] for i in history] == ["handoff", "user", "assistant", "user", "assistant"]


@pytest.mark.parametrize("resume_false_interruption", [False, True])
async def test_interruption_before_speaking(resume_false_interruption: bool) -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.", duration=1.0)
    tl.tts(10.0)
    tl.user_speech(3.0, 4.0, "Stop!", stt_delay=0.2)
    session = tl.session(resume_false_interruption=resume_false_interruption)
    ev = Events(session)
    agent = MyAgent()
    t0 = await tl.run(session, agent)

    agents = ev.of("agent_state_changed")
    assert ev.states() == ["listening", "thinking", "listening", "thinking", "listening"]
    assert close_to(at(agents[2], t0), 3.5)
    assert ev.playback == []  # nothing reached the speaker
    # the cut-off reply had no words out: no assistant message
    assert convo(agent.chat_ctx.items) == [
        ("user", "Tell me a story.", ""),
        ("user", "Stop!", ""),
    ]


async def test_interrupt_before_speaking_with_pausable_audio() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.", duration=1.0)
    tl.tts(10.0)
    tl.user_speech(3.0, 4.0, "Stop!", stt_delay=0.2)
    session = tl.session(can_pause_audio=True)
    ev = Events(session)
    agent = MyAgent()
    t0 = await tl.run(session, agent)

    assert "speaking" not in ev.states()  # the stale reply never started
    assert ev.states() == ["listening", "thinking", "listening", "thinking", "listening"]
    assert close_to(at(ev.of("agent_state_changed")[2], t0), 3.5)
    # LiveKit's paused output reports one interrupted segment at position 0; voicetui holds
    # the reply before its audio reaches the output, so the output never saw it
    assert all(p.playback_position == 0.0 for p in ev.playback)
    users = [m for m in agent.chat_ctx.items if m.type == "message" and m.role == "user"]
    assert [m.text_content for m in users] == ["Tell me a story.", "Stop!"]
    assert not any(m.type == "message" and m.role == "assistant" for m in agent.chat_ctx.items)


async def test_false_interruption_before_speaking_resumes() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a short reply.", ttft=0.05, duration=0.05)
    tl.tts(5.0, ttfb=0.05, duration=0.05)
    tl.user_speech(3.0, 3.3, "")  # a short noise with no words while the agent thinks
    session = tl.session(can_pause_audio=True)
    ev = Events(session)
    t0 = await tl.run(session, MyAgent())

    speaking = [e for e in ev.of("agent_state_changed") if e.new_state == "speaking"]
    assert len(speaking) == 1
    # the reply waits for the noise to end (VAD end of speech at 3.3 + 0.5)
    assert close_to(at(speaking[0], t0), 3.8)
    assert len(ev.playback) == 1 and not ev.playback[0].interrupted
    assert ev.playback[0].playback_position == pytest.approx(5.0, abs=0.05)


async def test_min_interruption_duration_applies_to_stt_transcripts() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")
    tl.llm("Here is a long story for you ... the end.")
    tl.tts(10.0)  # playout from 3.5
    # interims every 0.3 s from 5.3; min_interruption_duration (2.0) is reached at 7.0
    tl.user_speech(5.0, 9.0, "please stop talking right now", stt_delay=0.2, interim_interval=0.3)
    session = tl.session(min_interruption_duration=2.0)
    ev = Events(session)
    t0 = await tl.run(session, MyAgent())
    assert len(ev.playback) == 1 and ev.playback[0].interrupted
    assert ev.playback[0].playback_position == pytest.approx(3.5, abs=0.05)
    cut = next(
        e
        for e in ev.of("agent_state_changed")
        if e.old_state == "speaking" and e.new_state == "listening"
    )
    assert close_to(at(cut, t0), 7.0)


@pytest.mark.parametrize(("preemptive", "latency"), [(True, 0.7), (False, 1.1)])
async def test_preemptive_generation(preemptive: bool, latency: float) -> None:
    # preemptive: LLM and TTS start on the final transcript (2.1): 0.1 + 0.3 + 0.3 after the
    # end of speech, endpointing (0.5) hidden; without: 0.5 + 0.3 + 0.3
    tl = Timeline()
    tl.user_speech(0.5, 2.0, "Hello, how are you?", stt_delay=0.1)
    tl.llm("I'm doing great, thank you!", ttft=0.1, duration=0.3)
    tl.tts(3.0, ttfb=0.3)
    session = tl.session(preemptive_generation=preemptive)
    ev = Events(session)
    await tl.run(session, MyAgent())
    users = ev.of("user_state_changed")
    assert [u.new_state for u in users] == ["speaking", "listening"]
    agents = ev.of("agent_state_changed")
    assert ev.states() == ["listening", "thinking", "speaking", "listening"]
    assert agents[2].loop_time - users[1].loop_time == pytest.approx(latency, abs=0.05)


async def test_unknown_function_call() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Check the weather")
    tl.llm("", [ScriptedToolCall("nonexistent_tool", {"location": "Tokyo"}, call_id="1")])
    session = tl.session()
    ev = Events(session)
    agent = MyAgent()
    await tl.run(session, agent)
    (executed,) = ev.of("function_tools_executed")
    assert executed.function_calls[0].name == "nonexistent_tool"
    out = executed.function_call_outputs[0]
    assert out.is_error and "Unknown function" in out.output and "nonexistent_tool" in out.output
    assert "get_weather" in out.output  # voicetui also lists the functions that exist
    errors = [i for i in agent.chat_ctx.items if i.type == "function_call_output" and i.is_error]
    assert len(errors) == 1


async def test_invalid_tool_arguments_surface_as_tool_error() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "What's the weather?")
    tl.llm("", [ScriptedToolCall("get_weather", {}, call_id="1")])
    session = tl.session()
    ev = Events(session)
    agent = MyAgent()
    await tl.run(session, agent)
    (executed,) = ev.of("function_tools_executed")
    out = executed.function_call_outputs[0]
    assert out.is_error
    assert "An internal error occurred" not in out.output
    assert "get_weather" in out.output and "location" in out.output
    calls = [i for i in agent.chat_ctx.items if i.type == "function_call"]
    outs = [i for i in agent.chat_ctx.items if i.type == "function_call_output"]
    assert [c.call_id for c in calls] == ["1"] and [o.call_id for o in outs] == ["1"]


async def test_tool_internal_exception_returns_generic_error() -> None:
    class BrokenToolAgent(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You are a helpful assistant.")

        @function_tool
        async def get_weather(self, location: str) -> str:
            """Always blows up."""
            raise RuntimeError("kaboom: secret database password leaked")

    tl = Timeline()
    tl.user_speech(0.5, 2.5, "What's the weather in Tokyo?")
    tl.llm("", [ScriptedToolCall("get_weather", {"location": "Tokyo"}, call_id="1")])
    session = tl.session()
    ev = Events(session)
    await tl.run(session, BrokenToolAgent())
    (executed,) = ev.of("function_tools_executed")
    out = executed.function_call_outputs[0]
    assert out.is_error and out.output.startswith("An internal error occurred")
    assert "kaboom" not in out.output and "secret" not in out.output
    # the exception is kept for the developer (Tools tab), not for the LLM
    assert "kaboom" in (executed.executions[0].exception or "")


async def test_silent_tool_call_pause_state_does_not_leak_into_tool_reply() -> None:
    tl = Timeline()
    tl.user_speech(0.1, 0.2, "What's the weather in Tokyo?", stt_delay=0.05)
    # a silent tool-call step (no preamble) that takes 1 s to generate
    tl.llm(
        "",
        [ScriptedToolCall("get_weather", {"location": "Tokyo"}, call_id="1")],
        ttft=0.05,
        duration=1.0,
    )
    # a voice with no words starts during that step and lasts past the tool reply's start
    tl.user_speech(0.85, 2.0, "", stt_delay=0.05)
    tl.llm(
        "The weather in Tokyo is sunny today.",
        input="The weather in Tokyo is sunny today.",
        ttft=0.0,
        duration=0.0,
    )
    tl.tts(0.5, ttfb=0.0, duration=0.0)
    session = tl.session(can_pause_audio=True, false_interruption_timeout=0.2)
    ev = Events(session)
    await tl.run(session, MyAgent(), drain_delay=0.8)
    # the tool reply is held while the user's voice lasts, then plays whole
    assert [p.interrupted for p in ev.playback] == [False]
    assert ev.playback[0].playback_position == pytest.approx(0.5, abs=0.05)
    assert ev.states()[-2:] == ["speaking", "listening"]
    spoken = [
        e.item.text_content
        for e in ev.of("conversation_item_added")
        if e.item.type == "message" and e.item.role == "assistant"
    ]
    assert spoken == ["The weather in Tokyo is sunny today."]
