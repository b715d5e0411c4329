"""The text-mode session: replies, tools (parallel, errors, steps), handoffs, run() assertions."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import pytest
from pydantic import Field

from voicetui.agents import Agent, AgentSession, RunContext, StopResponse, ToolError, function_tool
from voicetui.agents.llm import ChatMessage, FunctionCall, FunctionCallOutput
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeTextOutput, FakeToolCall

from .conftest import EventLog

pytestmark = pytest.mark.looptime


class Weather(Agent):
    def __init__(self, **kw: Any) -> None:
        super().__init__(instructions="You report the weather.", **kw)
        self.calls: list[tuple[str, float]] = []

    @function_tool
    async def get_weather(
        self, ctx: RunContext[None], city: Annotated[str, Field(description="the city")]
    ) -> dict[str, Any]:
        """Current weather in a city."""
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(1.0)
        self.calls.append((city, start))
        return {"city": city, "temp_c": 21}

    @function_tool
    async def fail_hard(self) -> str:
        """A tool with a bug."""
        raise ZeroDivisionError("division by zero")

    @function_tool
    async def refuse(self, reason: str) -> str:
        """A tool that reports a user-facing error."""
        raise ToolError(f"cannot do that: {reason}")

    @function_tool
    async def hang_up(self) -> None:
        """End the turn silently."""
        raise StopResponse()


async def start(
    agent: Agent, *responses: FakeLLMResponse, **kw: Any
) -> tuple[AgentSession[None], FakeLLM, EventLog]:
    llm = FakeLLM(list(responses))
    session: AgentSession[None] = AgentSession(llm=llm, **kw)
    session.output.transcription = FakeTextOutput()
    log = EventLog(session)
    await session.start(agent)
    return session, llm, log


async def test_plain_reply_events_and_history() -> None:
    session, llm, log = await start(
        Weather(), FakeLLMResponse(input="hi", content="Hello! How can I help?", ttft=0.3)
    )
    result = await session.run(user_input="hi")
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    assert result.final_output == "Hello! How can I help?"
    assert log.types() == [
        "conversation_item_added",  # the first agent is announced (handoff from none)
        "agent_state_changed",  # initializing -> idle
        "speech_created",
        "conversation_item_added",  # user
        "agent_state_changed",  # thinking
        "agent_state_changed",  # speaking (text shown)
        "conversation_item_added",  # assistant
        "agent_state_changed",  # idle
    ]
    assert log.agent_states() == ["idle", "thinking", "speaking", "idle"]
    roles = [m.role for m in session.history.messages()]
    assert roles == ["user", "assistant"]
    # the LLM saw the instructions first, then the user message
    sent = llm.calls[0].chat_ctx.messages()
    assert [m.role for m in sent] == ["system", "user"]
    assert sent[0].text_content == "You report the weather."
    msg = session.history.messages()[1]
    assert msg.metrics.llm_node_ttft == pytest.approx(0.3, abs=0.02)
    assert session.output.transcription.messages == ["Hello! How can I help?"]  # type: ignore[union-attr]
    created = log.of("speech_created")[0]
    assert created.source == "generate_reply" and created.user_initiated
    await session.aclose()
    assert log.types()[-1] == "close"


async def test_tool_call_then_reply() -> None:
    agent = Weather()
    session, llm, log = await start(
        agent,
        FakeLLMResponse(
            input="weather in Paris?", tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})]
        ),
        FakeLLMResponse(content="It is 21 degrees in Paris."),
    )
    result = await session.run(user_input="weather in Paris?")
    result.expect.next_event().is_function_call(name="get_weather", arguments={"city": "Paris"})
    out = result.expect.next_event().is_function_call_output(is_error=False)
    assert json.loads(out.item.output) == {"city": "Paris", "temp_c": 21}
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    # the second LLM call saw the call and its output
    second = llm.calls[1].chat_ctx.items
    assert isinstance(second[-2], FunctionCall) and isinstance(second[-1], FunctionCallOutput)
    (ev,) = log.of("function_tools_executed")
    assert ev.function_calls[0].name == "get_weather"
    assert ev.executions[0].duration == pytest.approx(1.0, abs=0.01)
    sources = [e.source for e in log.of("speech_created")]
    assert sources == ["generate_reply", "tool_response"]
    # the tool's RunContext-param is hidden from the LLM schema
    schema = llm.calls[0].tools[0].to_openai_schema()["function"]["parameters"]
    assert list(schema["properties"]) == ["city"]
    await session.aclose()


async def test_parallel_tool_calls_run_concurrently() -> None:
    agent = Weather()
    session, _, log = await start(
        agent,
        FakeLLMResponse(
            tool_calls=[
                FakeToolCall("get_weather", {"city": "Paris"}),
                FakeToolCall("get_weather", {"city": "Oslo"}),
            ]
        ),
        FakeLLMResponse(content="Paris 21, Oslo 21."),
    )
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await session.run(user_input="weather in Paris and Oslo?")
    assert loop.time() - t0 == pytest.approx(1.0, abs=0.05)  # not 2 s: both ran at once
    assert sorted(c for c, _ in agent.calls) == ["Oslo", "Paris"]
    assert agent.calls[0][1] == agent.calls[1][1]
    result.expect.next_event().is_function_call(arguments={"city": "Paris"})
    result.expect.next_event().is_function_call(arguments={"city": "Oslo"})
    result.expect.next_event().is_function_call_output()
    result.expect.next_event().is_function_call_output()
    result.expect.next_event().is_message(role="assistant")
    assert len(log.of("function_tools_executed")[0].executions) == 2
    await session.aclose()


async def test_max_tool_steps() -> None:
    always_call = FakeLLMResponse(
        tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})], content=""
    )
    agent = Weather()
    session, llm, _ = await start(
        agent,
        always_call,
        FakeLLMResponse(tool_calls=[FakeToolCall("get_weather", {"city": "Rome"})]),
        FakeLLMResponse(
            content="Done checking.", tool_calls=[FakeToolCall("get_weather", {"city": "Oslo"})]
        ),
        max_tool_steps=2,
    )
    result = await session.run(user_input="loop forever")
    assert [c for c, _ in agent.calls] == ["Paris", "Rome"]  # two tool steps, not three
    assert [c.tool_choice for c in llm.calls] == [None, None, "none"]
    assert result.final_output == "Done checking."
    calls = [e for e in result.events if e.type == "function_call"]
    assert len(calls) == 2
    await session.aclose()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (FakeToolCall("no_such_tool", {}), "Unknown function 'no_such_tool'"),
        (FakeToolCall("get_weather", "{not json"), "arguments are not valid JSON"),
        (FakeToolCall("get_weather", {"town": "Paris"}), "invalid arguments"),
        (FakeToolCall("fail_hard", {}), "An internal error occurred while running fail_hard"),
        (FakeToolCall("refuse", {"reason": "no way"}), "cannot do that: no way"),
    ],
)
async def test_tool_errors_reach_the_llm(call: FakeToolCall, expected: str) -> None:
    session, llm, log = await start(
        Weather(), FakeLLMResponse(tool_calls=[call]), FakeLLMResponse(content="Sorry.")
    )
    result = await session.run(user_input="do it")
    result.expect.next_event().is_function_call(name=call.name)
    out = result.expect.next_event().is_function_call_output(is_error=True)
    assert expected in out.item.output
    result.expect.next_event().is_message(role="assistant")
    # the LLM was called again and saw the error
    last = llm.calls[1].chat_ctx.items[-1]
    assert isinstance(last, FunctionCallOutput) and last.is_error
    (ev,) = log.of("function_tools_executed")
    if call.name == "fail_hard":
        assert ev.executions[0].exception == "ZeroDivisionError: division by zero"
    assert not log.of("error")  # a failing tool is not a session error
    assert session.agent_state == "idle"
    await session.aclose()


async def test_stop_response_ends_the_turn() -> None:
    session, llm, _ = await start(
        Weather(), FakeLLMResponse(tool_calls=[FakeToolCall("hang_up", {})])
    )
    result = await session.run(user_input="bye")
    result.expect.next_event().is_function_call(name="hang_up")
    result.expect.next_event().is_function_call_output()
    result.expect.no_more_events()
    assert len(llm.calls) == 1
    await session.aclose()


class Sales(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the sales agent.")
        self.entered = self.exited = 0

    async def on_enter(self) -> None:
        self.entered += 1
        self.session.generate_reply(instructions="Greet the user as sales.")

    async def on_exit(self) -> None:
        self.exited += 1


class Reception(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the receptionist.")
        self.sales = Sales()
        self.exited = 0

    async def on_exit(self) -> None:
        self.exited += 1

    @function_tool
    async def transfer_to_sales(self) -> Agent:
        """Transfer the user to sales."""
        return self.sales


async def test_handoff_by_tool_return() -> None:
    reception = Reception()
    session, llm, log = await start(
        reception,
        FakeLLMResponse(input="I want to buy", tool_calls=[FakeToolCall("transfer_to_sales", {})]),
        FakeLLMResponse(content="Hi, sales here. What would you like?"),
    )
    result = await session.run(user_input="I want to buy")
    result.expect.next_event().is_function_call(name="transfer_to_sales")
    result.expect.next_event().is_function_call_output()
    result.expect.next_event().is_agent_handoff(new_agent_type=Sales)
    msg = result.expect.next_event().is_message(role="assistant")
    assert msg.item.text_content == "Hi, sales here. What would you like?"
    result.expect.no_more_events()
    assert session.current_agent is reception.sales
    assert reception.exited == 1 and reception.sales.entered == 1
    # the new agent's LLM context: its own instructions, then the conversation so far
    ctx = llm.calls[1].chat_ctx.messages()
    assert ctx[0].text_content == "You are the sales agent."
    assert any(m.text_content == "I want to buy" for m in ctx)
    assert all("receptionist" not in (m.text_content or "") for m in ctx)
    # the first agent's announcement, then the handoff to sales
    assert [i.type for i in session.history.items].count("agent_handoff") == 2
    await session.aclose()
    assert reception.sales.exited == 1


async def test_update_agent_keeps_history() -> None:
    session, llm, log = await start(
        Reception(),
        FakeLLMResponse(input="hello", content="Welcome."),
        FakeLLMResponse(content="Sales here."),
    )
    await session.run(user_input="hello")
    sales = Sales()
    await session.update_agent(sales)
    await asyncio.sleep(1)
    assert session.current_agent is sales
    texts = [m.text_content for m in session.history.messages()]
    assert texts == ["hello", "Welcome.", "Sales here."]
    added = [e.item.type for e in log.of("conversation_item_added")]
    assert added == ["agent_handoff", "message", "message", "agent_handoff", "message"]
    await session.aclose()


async def test_llm_error_is_reported_and_session_goes_on() -> None:
    from voicetui.agents import LLMError

    session, _, log = await start(
        Weather(),
        FakeLLMResponse(input="one", error=LLMError("invalid API key", recoverable=False)),
        FakeLLMResponse(input="two", content="Back again."),
    )
    with pytest.raises(LLMError, match="invalid API key"):  # run() fails as the LLM did
        await session.run(user_input="one")
    (err,) = log.of("error")
    assert err.source == "llm" and "invalid API key" in err.message and not err.recoverable
    assert session.agent_state == "idle"
    result = await session.run(user_input="two")
    assert result.final_output == "Back again."
    await session.aclose()


async def test_expect_failure_messages_are_readable() -> None:
    session, _, _ = await start(Weather(), FakeLLMResponse(content="Hello."))
    result = await session.run(user_input="hi")
    with pytest.raises(
        AssertionError, match=r"(?s)expected a function call.*>> \[0\] message\(role='assistant'"
    ):
        result.expect.next_event().is_function_call(name="get_weather")
    with pytest.raises(AssertionError, match="no function call matching"):
        result.expect.contains_function_call(name="get_weather")
    await session.aclose()


async def test_user_message_edits_in_instructions_are_per_reply() -> None:
    session, llm, _ = await start(
        Weather(), FakeLLMResponse(content="A."), FakeLLMResponse(content="B.")
    )
    session.generate_reply(user_input="first", instructions="Be brief.")
    await asyncio.sleep(1)
    await session.run(user_input="second")
    first_ctx = [m.text_content for m in llm.calls[0].chat_ctx.messages()]
    second_ctx = [m.text_content for m in llm.calls[1].chat_ctx.messages()]
    assert first_ctx[-1] == "Be brief."
    assert "Be brief." not in second_ctx
    assert isinstance(session.history.items[1], ChatMessage)  # (after the first handoff)
    await session.aclose()


async def test_no_task_left_after_aclose(no_leaks: None) -> None:
    session, _, _ = await start(
        Weather(),
        FakeLLMResponse(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})]),
        FakeLLMResponse(content="It is warm."),
    )
    session.generate_reply(user_input="weather?")
    await asyncio.sleep(0.5)  # close in the middle of the tool call
    await session.aclose()
    with pytest.raises(RuntimeError):
        session.say("too late")


# --- debugging tools: interception, started events, re-runs ---------------------------------
async def test_tool_call_interceptor_edits_mocks_and_errors() -> None:
    from voicetui.agents.voice import MockToolError, MockToolResult, RunTool

    ran: list[str] = []

    @function_tool
    async def lookup(city: str) -> str:
        """Look up a city."""
        ran.append(city)
        return f"{city}: sunny"

    llm = FakeLLM(
        [
            FakeLLMResponse(tool_calls=[FakeToolCall("lookup", {"city": "Paris"})]),
            FakeLLMResponse(content="Edited."),
            FakeLLMResponse(tool_calls=[FakeToolCall("lookup", {"city": "Rome"})]),
            FakeLLMResponse(content="Mocked."),
            FakeLLMResponse(tool_calls=[FakeToolCall("lookup", {"city": "Oslo"})]),
            FakeLLMResponse(content="Failed."),
        ]
    )
    session: AgentSession[None] = AgentSession(llm=llm)
    decisions = iter(
        [
            RunTool(arguments='{"city": "Berlin"}'),
            MockToolResult(output="Rome: snowing (mocked)"),
            MockToolError(message="the weather service is down"),
        ]
    )
    seen: list[str] = []

    async def intercept(call: Any) -> Any:
        seen.append(call.arguments)
        return next(decisions)

    session.tool_call_interceptor = intercept
    log = EventLog(session)
    await session.start(Agent(instructions="x", tools=[lookup]))
    for q in ("weather in paris", "weather in rome", "weather in oslo"):
        await session.run(user_input=q)
    assert ran == ["Berlin"]  # only the edited call ran; the mocks never did
    started = log.of("function_tools_started")
    assert [ev.function_calls[0].name for ev in started] == ["lookup"] * 3
    executed = [ev.executions[0] for ev in log.of("function_tools_executed")]
    assert executed[0].output.output == "Berlin: sunny" and not executed[0].mocked
    assert executed[0].call.arguments == '{"city": "Berlin"}'
    assert executed[1].mocked and executed[1].output.output == "Rome: snowing (mocked)"
    assert executed[2].mocked and executed[2].output.is_error
    # what the LLM read back is what the interceptor decided
    assert llm.calls[3].chat_ctx.items[-1].output == "Rome: snowing (mocked)"  # type: ignore[union-attr]
    assert len(seen) == 3
    await session.aclose()


async def test_rerun_tool_outside_the_conversation() -> None:
    @function_tool
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    session: AgentSession[None] = AgentSession(llm=FakeLLM())
    await session.start(Agent(instructions="x", tools=[add]))
    ex = await session.rerun_tool("add", '{"a": 2, "b": 40}')
    assert ex.output.output == "42" and not ex.output.is_error
    bad = await session.rerun_tool("add", '{"a": "two"}')
    assert bad.output.is_error
    assert [i.type for i in session.history.items] == ["agent_handoff"]  # nothing of the re-runs
    await session.aclose()
