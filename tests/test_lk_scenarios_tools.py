"""LiveKit Agents' scenarios of tools under interruption, slow hooks and failing models (its
tests/test_agent_session.py, test_tool_results_preserved_on_interruption.py and
test_run_input_errors.py), ported onto voicetui's timeline fakes, plus one test per conversation
behaviour of issue 14. Virtual time throughout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicetui.agents import Agent, LLMError, RunContext, function_tool
from voicetui.agents.llm import ChatContext, ChatMessage
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, ScriptedToolCall, Timeline
from voicetui.agents.types import APIConnectOptions
from voicetui.agents.voice import AgentSession, SessionConnectOptions
from voicetui.agents.voice.generation import TOOL_INTERRUPTION_TIMEOUT

from .test_lk_scenarios_session import Events, at, close_to, convo

pytestmark = pytest.mark.looptime

WEATHER = "The weather in Tokyo is sunny today."


class WeatherAgent(Agent):
    def __init__(self, *, tool_delay: float = 0.0, returns: str | None = WEATHER) -> None:
        super().__init__(instructions="You are a helpful assistant.")
        self.tool_delay = tool_delay
        self.returns = returns
        self.finished = 0

    @function_tool
    async def get_weather(self, location: str) -> str | None:
        """Called when the user asks about the weather.

        Args:
            location: The location to get the weather for
        """
        await asyncio.sleep(self.tool_delay)
        self.finished += 1
        return self.returns


def weather_turn(tl: Timeline, *, tts_duration: float, preamble: str = "Let me check.") -> None:
    tl.user_speech(0.5, 2.5, "What's the weather in Tokyo?")
    tl.llm(preamble, [ScriptedToolCall("get_weather", {"location": "Tokyo"}, call_id="1")])
    tl.tts(tts_duration)


def tool_items(items: list[Any]) -> list[tuple[str, ...]]:
    return [i for i in convo(items) if i[0] in ("call", "output")]


def assert_weather_tool_preserved(agent: Agent, session: AgentSession[Any]) -> None:
    for label, items in (("agent", agent.chat_ctx.items), ("history", session.history.items)):
        assert tool_items(items) == [("call", "get_weather"), ("output", WEATHER, "")], label


# --- 1. a tool that awaits a new reply -----------------------------------------------------
class GoodbyeAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful assistant.")
        self.close_task: asyncio.Task[None] | None = None

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="instructions:say hello to the user")

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        self.session.say("session.say from on_user_turn_completed")

    @function_tool
    async def goodbye(self) -> None:
        """Say goodbye and end the call."""
        await self.session.generate_reply(instructions="instructions:say goodbye to the user")
        self.close_task = asyncio.create_task(self.session.aclose())


async def test_generate_reply_awaited_inside_a_tool() -> None:
    tl = Timeline()
    tl.llm("What can I do for you!", input="instructions:say hello to the user")
    tl.tts(2.0)
    tl.llm("Goodbye! have a nice day!", input="instructions:say goodbye to the user")
    tl.tts(3.0)
    tl.tts(1.0, ttfb=0, input="session.say from on_user_turn_completed")
    tl.user_speech(3.0, 4.0, "bye")
    tl.llm("", [ScriptedToolCall("goodbye", call_id="1")])
    session = tl.session()
    ev = Events(session)
    agent = GoodbyeAgent()
    t0 = await tl.run(session, agent)
    assert agent.close_task is not None
    await agent.close_task

    assert [(p.interrupted, round(p.playback_position, 1)) for p in ev.playback] == [
        (False, 2.0),
        (False, 1.0),
        (False, 3.0),  # the reply the tool waited for was played, not deadlocked
    ]
    assert [e.function_calls[0].name for e in ev.of("function_tools_executed")] == ["goodbye"]
    items = ev.of("conversation_item_added")
    assert [convo([e.item])[0][:2] for e in items] == [
        ("handoff", "None"),
        ("assistant", "What can I do for you!"),
        ("user", "bye"),
        ("assistant", "session.say from on_user_turn_completed"),
        ("assistant", "Goodbye! have a nice day!"),
    ]
    assert close_to(at(items[1], t0), 2.5)
    assert close_to(at(items[2], t0), 4.5)
    assert close_to(at(items[3], t0), 5.5)
    assert close_to(at(items[4], t0), 9.0, tol=0.5)
    # voicetui keeps a call next to its output (OpenAI-style APIs reject a message between
    # them), so the reply said while the tool ran comes before both; LiveKit puts it between
    assert convo(agent.chat_ctx.items) == [
        ("assistant", "What can I do for you!", ""),
        ("user", "bye", ""),
        ("assistant", "session.say from on_user_turn_completed", ""),
        ("assistant", "Goodbye! have a nice day!", ""),
        ("call", "goodbye"),
        ("output", "", ""),
    ]


async def test_run_returns_when_a_tool_awaits_a_reply() -> None:
    class Narrator(Agent):
        @function_tool
        async def announce(self, ctx: RunContext[None]) -> str:
            """Announce, then carry on."""
            handle = ctx.session.generate_reply(instructions="announce the step")
            await handle
            return "announced"

    llm = FakeLLM()
    llm.add(
        FakeLLMResponse(input="go", content="", tool_calls=[_call("announce")]),
        FakeLLMResponse(content="Step one is done."),  # the reply the tool awaits
        FakeLLMResponse(content="All done."),  # the tool reply
    )
    session: AgentSession[None] = AgentSession(llm=llm)
    await session.start(Narrator(instructions="x"))
    result = await asyncio.wait_for(session.run(user_input="go"), 30)
    result.expect.next_event().is_message(role="assistant")  # "Step one is done."
    result.expect.next_event().is_function_call(name="announce")
    result.expect.next_event().is_function_call_output(output="announced")
    assert result.expect.next_event().is_message(role="assistant").item.text_content == "All done."
    result.expect.no_more_events()
    await session.aclose()


def _call(name: str, **arguments: Any) -> Any:
    from voicetui.agents.testing import FakeToolCall

    return FakeToolCall(name, arguments)


# --- 2. the state while a silent tool runs ---------------------------------------------------
async def test_silent_tool_after_a_preamble_thinks_then_listens() -> None:
    tl = Timeline()
    weather_turn(tl, tts_duration=2.0)  # "Let me check." plays 3.5 → 5.5
    session = tl.session()
    ev = Events(session)
    agent = WeatherAgent(tool_delay=8.0, returns=None)  # runs 3.4 → 11.4, nothing to say
    t0 = await tl.run(session, agent)

    states = ev.of("agent_state_changed")
    assert [s.new_state for s in states] == [
        "listening",
        "thinking",
        "speaking",
        "thinking",  # the preamble is over, the tool still runs
        "listening",  # the tool is done and has nothing to say
    ]
    assert close_to(at(states[3], t0), 5.5)
    assert close_to(at(states[4], t0), 11.4)
    preamble = [
        e
        for e in ev.of("conversation_item_added")
        if e.item.type == "message" and e.item.role == "assistant"
    ]
    assert len(preamble) == 1 and close_to(at(preamble[0], t0), 5.5)  # in history once heard
    assert agent.finished == 1


# --- 4, 5, 6. tools and interruptions --------------------------------------------------------
async def test_tool_results_preserved_when_the_tool_reply_is_interrupted() -> None:
    tl = Timeline()
    weather_turn(tl, tts_duration=1.0)  # playout 3.5 → 4.5
    tl.llm("It's sunny in Tokyo!", input=WEATHER, ttft=2.0, duration=2.5)
    tl.tts(2.0)
    session = tl.session()
    ev = Events(session)
    agent = WeatherAgent()

    def interrupt_tool_replies(created: Any) -> None:
        if created.source == "tool_response":
            created.speech_handle.interrupt()

    session.on("speech_created", interrupt_tool_replies)
    await tl.run(session, agent)
    assert_weather_tool_preserved(agent, session)
    assistant = [i[1] for i in convo(agent.chat_ctx.items) if i[0] == "assistant"]
    assert "It's sunny in Tokyo!" not in assistant
    assert len(ev.of("function_tools_executed")) == 1


async def test_interrupted_during_playout_keeps_results_and_asks_no_tool_reply() -> None:
    tl = Timeline()
    weather_turn(tl, tts_duration=10.0)  # playout 3.5 → 13.5; the tool is done at ~3.4
    tl.user_speech(5.0, 6.0, "Stop!", stt_delay=0.2)  # interrupts at 5.5
    tl.llm("Okay, stopping.")
    tl.tts(1.0)
    tl.llm("It's sunny.", input=WEATHER)  # must not be asked: the speech was interrupted
    tl.tts(1.0)
    session = tl.session()
    ev = Events(session)
    agent = WeatherAgent()
    await tl.run(session, agent)

    assert_weather_tool_preserved(agent, session)
    llm = session.llm
    assert llm is not None
    assert [c.input for c in llm.calls] == [  # type: ignore[attr-defined]
        "What's the weather in Tokyo?",
        "Stop!",
    ]
    spoken = [i[1] for i in convo(agent.chat_ctx.items) if i[0] == "assistant"]
    assert spoken[-1] == "Okay, stopping." and "It's sunny." not in spoken
    assert [p.interrupted for p in ev.playback] == [True, False]


async def test_a_tool_in_flight_at_the_interruption_keeps_its_result() -> None:
    tl = Timeline()
    weather_turn(tl, tts_duration=10.0)
    tl.user_speech(5.0, 6.0, "Stop!", stt_delay=0.2)  # interrupts at 5.5
    tl.llm("Okay, stopping.")
    tl.tts(1.0)
    session = tl.session()
    ev = Events(session)
    agent = WeatherAgent(tool_delay=4.0)  # runs 3.4 → 7.4, after the interruption
    await tl.run(session, agent)

    assert_weather_tool_preserved(agent, session)
    (executed,) = ev.of("function_tools_executed")
    assert not executed.executions[0].cancelled
    # history is in the order things happened: the result joined it when the tool finished
    # (7.4), while the answer to "Stop!" was being said (7.0 → 8.0)
    assert [i[0] for i in convo(agent.chat_ctx.items)] == [
        "user",
        "assistant",
        "user",
        "call",
        "output",
        "assistant",
    ]


async def test_a_tool_still_running_long_after_the_interruption_is_cancelled() -> None:
    tl = Timeline()
    weather_turn(tl, tts_duration=10.0)
    tl.user_speech(5.0, 6.0, "Stop!", stt_delay=0.2)  # interrupts at 5.5
    tl.llm("Okay, stopping.")
    tl.tts(1.0)
    session = tl.session()
    ev = Events(session)
    agent = WeatherAgent(tool_delay=60.0)
    t0 = await tl.run(session, agent)

    assert agent.finished == 0
    (executed,) = ev.of("function_tools_executed")
    (ex,) = executed.executions
    assert ex.cancelled and ex.output.is_error and "cancelled" in ex.output.output
    assert close_to(at(executed, t0), 5.5 + TOOL_INTERRUPTION_TIMEOUT)
    for items in (agent.chat_ctx.items, session.history.items):
        calls = tool_items(items)
        assert calls[0] == ("call", "get_weather")
        assert calls[1][0] == "output" and calls[1][2] == "error"
    # the interruption itself was not delayed by the running tool
    states = ev.of("agent_state_changed")
    assert close_to(at(next(s for s in states if s.old_state == "speaking"), t0), 5.5)


class TransferAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful assistant.")

    @function_tool
    async def transfer_to_billing(self) -> Agent:
        """Transfer the user to the billing department."""
        return Agent(instructions="You are the billing agent.")


async def test_a_handoff_of_an_interrupted_speech_is_not_applied() -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "I have a billing question.")
    tl.llm(
        "Transferring you to billing now.",
        [ScriptedToolCall("transfer_to_billing", call_id="1")],
    )
    tl.tts(10.0)  # playout 3.5 → 13.5
    tl.user_speech(5.0, 6.0, "Stop!", stt_delay=0.2)
    tl.llm("Okay, stopping.")
    tl.tts(1.0)
    session = tl.session()
    ev = Events(session)
    agent = TransferAgent()
    await tl.run(session, agent)

    assert session.current_agent is agent, "the handoff must not be applied"
    (executed,) = ev.of("function_tools_executed")
    out = executed.function_call_outputs[0]
    assert out.is_error and "not applied" in out.output and executed.executions[0].cancelled
    for items in (agent.chat_ctx.items, session.history.items):
        calls = [i for i in items if i.type == "function_call"]
        outs = [i for i in items if i.type == "function_call_output"]
        assert len(calls) == 1 and len(outs) == 1
        assert outs[0].call_id == calls[0].call_id and outs[0].is_error
    handoffs = [i for i in session.history.items if i.type == "agent_handoff"]
    assert len(handoffs) == 1  # only the first agent's announcement


# --- 7. noise while thinking ------------------------------------------------------------------
@pytest.mark.parametrize("can_pause_audio", [False, True])
async def test_noise_while_thinking_does_not_lose_the_reply(can_pause_audio: bool) -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me a story.")  # EOU at 3.0
    tl.llm("Once upon a time.", ttft=0.5, duration=1.5)
    tl.tts(2.0)
    tl.user_speech(3.2, 4.2, "")  # a second of voice with no words while the agent thinks
    session = tl.session(can_pause_audio=can_pause_audio)
    ev = Events(session)
    agent = WeatherAgent()
    t0 = await tl.run(session, agent)

    (fi,) = ev.of("agent_false_interruption")
    assert fi.resumed
    assert [p.interrupted for p in ev.playback] == [False]
    assert ev.playback[0].playback_position == pytest.approx(2.0, abs=0.05)
    speaking = [s for s in ev.of("agent_state_changed") if s.new_state == "speaking"]
    # held while the user made noise; let go false_interruption_timeout after its end
    assert len(speaking) == 1 and close_to(at(speaking[0], t0), 4.7 + 2.0, tol=0.15)
    assert convo(agent.chat_ctx.items)[-1] == ("assistant", "Once upon a time.", "")


# --- 8. a slow on_user_turn_completed ---------------------------------------------------------
class SlowHookAgent(Agent):
    def __init__(self, delay: float) -> None:
        super().__init__(instructions="You are a helpful assistant.")
        self.delay = delay

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        await asyncio.sleep(self.delay)


@pytest.mark.parametrize("preemptive_generation", [False, True])
@pytest.mark.parametrize("hook_delay", [0.0, 2.0])
async def test_interrupt_during_on_user_turn_completed(
    preemptive_generation: bool, hook_delay: float
) -> None:
    tl = Timeline()
    tl.user_speech(0.5, 2.0, "Tell me a story", stt_delay=0.2)
    tl.llm("Here is a story for you...", ttft=0.1, duration=0.3)
    tl.tts(10.0, ttfb=1.0)
    tl.user_speech(2.6, 3.2, "about a firefighter.")  # before the first reply is heard
    tl.llm("Here is a story about a firefighter...", ttft=0.1, duration=0.3)
    tl.tts(10.0, ttfb=0.3)
    session = tl.session(preemptive_generation=preemptive_generation)
    ev = Events(session)
    await tl.run(session, SlowHookAgent(hook_delay))

    if hook_delay == 0.0:  # the first reply was under way when the user went on
        assert ev.states() == [
            "listening",
            "thinking",
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
    else:  # the hook was still running: the stale turn is never answered
        assert ev.states() == ["listening", "thinking", "speaking", "listening"]
    items = [convo([e.item])[0][:2] for e in ev.of("conversation_item_added")]
    assert items == [
        ("handoff", "None"),
        ("user", "Tell me a story"),
        ("user", "about a firefighter."),
        ("assistant", "Here is a story about a firefighter..."),
    ]


# --- 9. a failing LLM fails the run -----------------------------------------------------------
class FailingLLM(FakeLLM):
    def __init__(self) -> None:
        super().__init__(default="never")
        self.attempts = 0

    def chat(self, **kwargs: Any) -> Any:
        self.attempts += 1
        return super().chat(**kwargs)

    def _next_response(self, chat_ctx: ChatContext) -> FakeLLMResponse:
        return FakeLLMResponse(error=LLMError("object cannot be found", recoverable=True))


@pytest.mark.parametrize("max_retry", [0, 1])
async def test_run_raises_when_the_llm_fails(max_retry: int) -> None:
    llm = FailingLLM()
    session: AgentSession[None] = AgentSession(
        conn_options=SessionConnectOptions(
            llm=APIConnectOptions(max_retry=max_retry, retry_interval=0.01)
        )
    )
    await session.start(Agent(instructions="test agent", llm=llm))
    with pytest.raises(LLMError, match="object cannot be found"):
        await asyncio.wait_for(session.run(user_input="hello"), 10)
    await session.aclose()


async def test_a_silent_turn_is_not_an_error() -> None:
    llm = FakeLLM([FakeLLMResponse(input="hello", content="")])
    session: AgentSession[None] = AgentSession(llm=llm)
    await session.start(Agent(instructions="test agent"))
    result = await session.run(user_input="hello")
    result.expect.no_more_events()
    assert result.error is None
    await session.aclose()


async def test_a_reply_cut_off_by_the_output_is_recorded_as_heard() -> None:
    """The speaker went away 1.5 s into a 4 s reply (the backend ends the segment as
    interrupted): the message says so, with only what was heard."""
    tl = Timeline()
    tl.user_speech(0.5, 2.5, "Tell me about the sea.")
    tl.llm("The sea is wide. It is deep. It is cold. It is old.")
    tl.tts(4.0)  # plays 3.5 → 7.5
    session = tl.session()
    agent = WeatherAgent()

    def unplugged() -> None:
        out = session.output.audio
        assert out is not None
        out.clear_buffer()  # what a backend does when its device disappears

    asyncio.get_running_loop().call_later(5.0, unplugged)
    await tl.run(session, agent)
    (said,) = [m for m in agent.chat_ctx.items if m.type == "message" and m.role == "assistant"]
    assert said.interrupted
    assert said.text_content and len(said.text_content) < len(
        "The sea is wide. It is deep. It is cold. It is old."
    )
