"""The model layer on its own: chat context, function tools, LLM streams, sentence splitting,
the TTS and STT stream adapters and audio re-chunking (no session involved)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from livekit import rtc
from pydantic import Field

from voicetui.agents import Agent, APIConnectOptions, RunContext, function_tool
from voicetui.agents.audio import AudioByteStream, as_array, frame_duration, frames_duration
from voicetui.agents.exceptions import LLMError, TTSError
from voicetui.agents.llm import (
    LLM,
    AgentHandoff,
    ChatChunk,
    ChatContext,
    ChatMessage,
    ChoiceDelta,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    LLMStream,
    ToolArgumentsError,
    ToolChoice,
    find_function_tools,
)
from voicetui.agents.metrics import LLMMetrics, STTMetrics, TTSMetrics
from voicetui.agents.stt import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    STTCapabilities,
)
from voicetui.agents.stt import StreamAdapter as STTStreamAdapter
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeLLM,
    FakeLLMResponse,
    FakeToolCall,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.tokenize import SentenceStream, split_sentences
from voicetui.agents.tts import TEXT_KEY, SynthesizedAudio
from voicetui.agents.tts import StreamAdapter as TTSStreamAdapter
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS
from voicetui.agents.utils.aio import now

# ------------------------------------------------------------------------------------------------
# ChatContext
# ------------------------------------------------------------------------------------------------


def _full_ctx() -> ChatContext:
    """One item of every type, with explicit, increasing timestamps."""
    ctx = ChatContext()
    ctx.add_message(role="system", content="You are helpful.", created_at=1.0)
    ctx.add_message(role="user", content="What's the weather?", created_at=2.0)
    ctx.insert(
        FunctionCall(
            call_id="call_1", name="get_weather", arguments='{"city": "Paris"}', created_at=3.0
        )
    )
    ctx.insert(
        FunctionCallOutput(
            call_id="call_1", name="get_weather", output="sunny", is_error=False, created_at=4.0
        )
    )
    ctx.add_message(role="assistant", content=["It is", "sunny."], interrupted=True, created_at=5.0)
    ctx.insert(AgentHandoff(old_agent_id="greeter", new_agent_id="weather", created_at=6.0))
    return ctx


def test_add_message_returns_the_message_and_appends_it() -> None:
    ctx = ChatContext.empty()
    msg = ctx.add_message(role="user", content="hello", id="item_custom")
    assert isinstance(msg, ChatMessage)
    assert ctx.items == [msg]
    assert msg.id == "item_custom"
    assert msg.content == ["hello"]
    assert msg.text_content == "hello"
    assert not msg.interrupted
    multi = ctx.add_message(role="assistant", content=["a", "", "b"], interrupted=True)
    assert multi.text_content == "a\nb"
    assert multi.interrupted
    assert ctx.get_by_id("item_custom") is msg
    assert ctx.index_by_id(multi.id) == 1
    assert ctx.get_by_id("nope") is None
    assert ctx.messages() == [msg, multi]
    assert len(ctx) == 2


def test_insert_keeps_items_ordered_by_created_at() -> None:
    ctx = ChatContext()
    c = ctx.add_message(role="user", content="c", created_at=30.0)
    a = ctx.add_message(role="user", content="a", created_at=10.0)
    b = ctx.add_message(role="assistant", content="b", created_at=20.0)
    # equal timestamps: the later insert goes after the earlier one (stable)
    b2 = ctx.add_message(role="assistant", content="b2", created_at=20.0)
    late = ctx.add_message(role="user", content="late", created_at=40.0)
    assert [it.id for it in ctx.items] == [a.id, b.id, b2.id, c.id, late.id]

    # a sequence is inserted item by item, each at its place
    fc = FunctionCall(call_id="c1", name="f", arguments="{}", created_at=15.0)
    out = FunctionCallOutput(call_id="c1", output="ok", is_error=False, created_at=35.0)
    ctx.insert([fc, out])
    assert [it.id for it in ctx.items] == [a.id, fc.id, b.id, b2.id, c.id, out.id, late.id]
    times = [it.created_at for it in ctx.items]
    assert times == sorted(times)


def test_copy_excludes_function_calls_and_instructions() -> None:
    ctx = _full_ctx()
    ctx.add_message(role="developer", content="Be brief.", created_at=7.0)

    full = ctx.copy()
    assert [it.id for it in full.items] == [it.id for it in ctx.items]
    assert full.items is not ctx.items
    full.add_message(role="user", content="extra")
    assert len(full) == len(ctx) + 1  # the copy's list is independent

    no_calls = ctx.copy(exclude_function_call=True)
    assert [it.type for it in no_calls.items] == [
        "message",
        "message",
        "message",
        "agent_handoff",
        "message",
    ]

    no_instr = ctx.copy(exclude_instructions=True)
    assert not any(
        isinstance(it, ChatMessage) and it.role in ("system", "developer") for it in no_instr.items
    )
    assert [it.type for it in no_instr.items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "agent_handoff",
    ]

    both = ctx.copy(exclude_function_call=True, exclude_instructions=True, exclude_handoff=True)
    assert [(m.role, m.text_content) for m in both.messages()] == [
        ("user", "What's the weather?"),
        ("assistant", "It is\nsunny."),
    ]
    assert len(both) == 2


def test_truncate_keeps_leading_instructions_and_skips_orphan_outputs() -> None:
    ctx = ChatContext()
    sys_msg = ctx.add_message(role="system", content="instructions", created_at=0.0)
    ctx.add_message(role="user", content="u1", created_at=1.0)
    ctx.insert(FunctionCall(call_id="c", name="f", arguments="{}", created_at=2.0))
    ctx.insert(FunctionCallOutput(call_id="c", output="r", is_error=False, created_at=3.0))
    u2 = ctx.add_message(role="user", content="u2", created_at=4.0)
    a2 = ctx.add_message(role="assistant", content="a2", created_at=5.0)

    # the last 3 non-instruction items start on the output of a call that was cut away
    res = ctx.truncate(max_items=3)
    assert res is ctx
    assert [it.id for it in ctx.items] == [sys_msg.id, u2.id, a2.id]

    # a window that starts on the function call itself keeps call + output
    ctx2 = ChatContext()
    dev = ctx2.add_message(role="developer", content="dev instructions", created_at=0.0)
    ctx2.add_message(role="user", content="u1", created_at=1.0)
    fc = FunctionCall(call_id="c", name="f", arguments="{}", created_at=2.0)
    fco = FunctionCallOutput(call_id="c", output="r", is_error=False, created_at=3.0)
    ctx2.insert([fc, fco])
    ctx2.truncate(max_items=2)
    assert [it.id for it in ctx2.items] == [dev.id, fc.id, fco.id]
    assert ctx2.items[1].type != "function_call_output"

    # no leading instructions: nothing special is kept
    ctx3 = ChatContext()
    ctx3.add_message(role="user", content="u1", created_at=1.0)
    ctx3.add_message(role="system", content="late system", created_at=2.0)
    last = ctx3.add_message(role="assistant", content="a", created_at=3.0)
    ctx3.truncate(max_items=1)
    assert [it.id for it in ctx3.items] == [last.id]

    # more room than items: unchanged
    ctx4 = _full_ctx()
    before = [it.id for it in ctx4.items]
    ctx4.truncate(max_items=100)
    assert [it.id for it in ctx4.items] == before

    with pytest.raises(ValueError):
        ChatContext().truncate(max_items=0)


def test_to_dict_from_dict_round_trips_every_item_type() -> None:
    ctx = _full_ctx()
    ctx.items[4].metrics.e2e_latency = 1.25  # type: ignore[union-attr]
    data = ctx.to_dict()
    # plain JSON data
    data = json.loads(json.dumps(data))
    assert [it["type"] for it in data["items"]] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
        "message",
        "agent_handoff",
    ]

    restored = ChatContext.from_dict(data)
    assert [type(it) for it in restored.items] == [type(it) for it in ctx.items]
    assert restored.items == ctx.items  # pydantic equality: every field, ids and times included
    assert restored.to_dict() == data

    fc = restored.items[2]
    assert isinstance(fc, FunctionCall)
    assert (fc.call_id, fc.name, json.loads(fc.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    fco = restored.items[3]
    assert isinstance(fco, FunctionCallOutput)
    assert (fco.output, fco.is_error) == ("sunny", False)
    handoff = restored.items[5]
    assert isinstance(handoff, AgentHandoff)
    assert (handoff.old_agent_id, handoff.new_agent_id) == ("greeter", "weather")
    msg = restored.items[4]
    assert isinstance(msg, ChatMessage)
    assert msg.interrupted and msg.content == ["It is", "sunny."]
    assert msg.metrics.e2e_latency == 1.25

    no_ts = ctx.to_dict(exclude_timestamp=True)
    assert all("created_at" not in it for it in no_ts["items"])
    assert [it.id for it in ChatContext.from_dict(no_ts).items] == [it.id for it in ctx.items]


# ------------------------------------------------------------------------------------------------
# @function_tool
# ------------------------------------------------------------------------------------------------

_seen_contexts: list[Any] = []


@function_tool
async def get_weather(
    ctx: RunContext[None],
    city: Annotated[str, Field(description="The city, e.g. Paris")],
    title: str,
    days: int = 3,
    unit: Literal["c", "f"] = "c",
) -> str:
    """Get the weather forecast.

    Uses the fake weather service.

    Args:
        city: not used: the Field description wins
        title: A heading for the forecast.
        days: How many days to forecast.
    """
    _seen_contexts.append(ctx)
    return f"{title}: {city} for {days} days in {unit}"


@function_tool(name="lookup_user", description="Find a user by id.")
def find_user(user_id: int) -> str:
    """This docstring is not the description."""
    return f"user-{user_id}"


City = Annotated[str, Field()]


@function_tool
async def tool_with_default_city(city: City = "Paris") -> str:
    """Default city.

    Args:
        city: The city for this tool.
    """
    return city


@function_tool
async def tool_with_required_city(city: City) -> str:
    return city


def test_function_tool_schema_from_hints_annotated_and_docstring() -> None:
    assert isinstance(get_weather, FunctionTool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather forecast.\n\nUses the fake weather service."
    schema = get_weather.parameters_schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    # the RunContext parameter is not part of what the LLM sees
    assert set(props) == {"city", "title", "days", "unit"}
    assert "ctx" not in schema["required"]
    assert sorted(schema["required"]) == ["city", "title"]
    assert props["city"] == {"type": "string", "description": "The city, e.g. Paris"}
    # a parameter *named* "title" survives the stripping of pydantic's titles
    assert props["title"] == {"type": "string", "description": "A heading for the forecast."}
    assert props["days"] == {
        "type": "integer",
        "default": 3,
        "description": "How many days to forecast.",
    }
    assert props["unit"]["enum"] == ["c", "f"]
    assert props["unit"]["default"] == "c"
    assert "title" not in schema


def test_to_openai_schema_shape_and_overrides() -> None:
    s = get_weather.to_openai_schema()
    assert set(s) == {"type", "function"}
    assert s["type"] == "function"
    assert set(s["function"]) == {"name", "description", "parameters"}
    assert s["function"]["name"] == "get_weather"
    assert s["function"]["parameters"] == get_weather.parameters_schema
    json.dumps(s)  # serializable as is

    assert find_user.name == "lookup_user"
    assert find_user.description == "Find a user by id."
    assert find_user.to_openai_schema() == {
        "type": "function",
        "function": {
            "name": "lookup_user",
            "description": "Find a user by id.",
            "parameters": {
                "type": "object",
                "properties": {"user_id": {"type": "integer"}},
                "required": ["user_id"],
                "additionalProperties": False,
            },
        },
    }


def test_shared_annotated_alias_is_not_mutated_across_tools() -> None:
    with_default = tool_with_default_city.parameters_schema
    assert with_default["required"] == []
    assert with_default["properties"]["city"] == {
        "type": "string",
        "default": "Paris",
        "description": "The city for this tool.",
    }
    # the same alias in another tool: still required, no borrowed default/description
    required = tool_with_required_city.parameters_schema
    assert required["required"] == ["city"]
    assert required["properties"]["city"] == {"type": "string"}
    with pytest.raises(ToolArgumentsError):
        tool_with_required_city.parse_arguments("{}")


def test_parse_arguments_applies_defaults_and_coerces() -> None:
    args = get_weather.parse_arguments('{"city": "Paris", "title": "Forecast"}')
    assert args == {"city": "Paris", "title": "Forecast", "days": 3, "unit": "c"}
    assert find_user.parse_arguments('{"user_id": 7}') == {"user_id": 7}


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ('{"city": "Paris", "title": ', "not valid JSON"),
        ('["Paris", "Forecast"]', "must be a JSON object"),
        ('"Paris"', "must be a JSON object"),
        ('{"title": "Forecast"}', "city"),  # missing required
        ('{"city": 5, "title": "Forecast"}', "city"),  # wrong type
        ('{"city": "Paris", "title": "t", "days": "many"}', "days"),  # wrong type
        ('{"city": "Paris", "title": "t", "unit": "kelvin"}', "unit"),  # not in the Literal
        ('{"city": "Paris", "title": "t", "country": "FR"}', "country"),  # extra
        ("", "city"),  # empty = {} = missing required args
    ],
)
def test_parse_arguments_rejects_invalid(raw: str, match: str) -> None:
    with pytest.raises(ToolArgumentsError, match=match):
        get_weather.parse_arguments(raw)
    assert issubclass(ToolArgumentsError, ValueError)


async def test_invoke_passes_run_context_and_arguments() -> None:
    _seen_contexts.clear()
    context = object()
    args = get_weather.parse_arguments('{"city": "Oslo", "title": "T", "days": 2}')
    result = await get_weather.invoke(context, args)
    assert result == "T: Oslo for 2 days in c"
    assert _seen_contexts == [context]
    # a sync function works too, and a tool without a context param ignores the context
    assert await find_user.invoke(context, {"user_id": 3}) == "user-3"
    # tools stay directly callable
    assert await find_user(4) == "user-4"


class _BaseAgent(Agent):
    @function_tool
    async def base_tool(self) -> str:
        """A tool from the base class."""
        return f"base:{self.id}"


class _WeatherAgent(_BaseAgent):
    def __init__(self, *, tools: Sequence[FunctionTool] = ()) -> None:
        super().__init__(instructions="You talk about the weather.", tools=tools, id="weather")
        self.calls: list[tuple[str, Any]] = []

    @function_tool
    async def forecast(self, ctx: RunContext[None], city: str) -> str:
        """Forecast for a city.

        Args:
            city: Where.
        """
        self.calls.append((city, ctx))
        return f"{self.id}:{city}"

    @function_tool(name="renamed")
    async def other(self, n: int = 1) -> int:
        return n * 2

    def not_a_tool(self) -> None: ...


async def test_agent_methods_are_found_and_bound() -> None:
    agent = _WeatherAgent(tools=[find_user])
    names = [t.name for t in agent.tools]
    assert names[0] == "base_tool"  # base classes first
    assert set(names) == {"base_tool", "forecast", "renamed", "lookup_user"}
    assert names[-1] == "lookup_user"  # explicit tools after the class's
    assert [t.name for t in find_function_tools(agent)] == names[:-1]

    forecast = next(t for t in agent.tools if t.name == "forecast")
    assert forecast.parameters_schema["properties"] == {
        "city": {"type": "string", "description": "Where."}
    }
    assert "self" not in forecast.parameters_schema["properties"]
    marker = object()
    assert (
        await forecast.invoke(marker, forecast.parse_arguments('{"city": "Rome"}'))
        == "weather:Rome"
    )
    assert agent.calls == [("Rome", marker)]

    renamed = next(t for t in agent.tools if t.name == "renamed")
    assert await renamed.invoke(None, renamed.parse_arguments("{}")) == 2
    base = next(t for t in agent.tools if t.name == "base_tool")
    assert await base.invoke(None, {}) == "base:weather"

    # accessed on the class, the tool is unbound; each instance gets its own binding
    assert isinstance(_WeatherAgent.forecast, FunctionTool)
    other_agent = _WeatherAgent()
    other_forecast = next(t for t in other_agent.tools if t.name == "forecast")
    await other_forecast.invoke(None, {"city": "Nice"})
    assert other_agent.calls == [("Nice", None)]
    assert agent.calls == [("Rome", marker)]


# ------------------------------------------------------------------------------------------------
# LLM streams
# ------------------------------------------------------------------------------------------------


def _user_ctx(text: str = "hello there") -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(role="system", content="be nice")
    ctx.add_message(role="user", content=text)
    return ctx


async def test_llm_collect_text_and_tool_calls() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(content="Hello there friend", tokens_per_second=20),
            FakeLLMResponse(
                content="Let me check.",
                tool_calls=[FakeToolCall("get_weather", {"city": "Paris", "title": "Now"})],
            ),
        ]
    )
    text, calls = await llm.chat(chat_ctx=_user_ctx()).collect()
    assert text == "Hello there friend"
    assert calls == []

    stream = llm.chat(chat_ctx=_user_ctx("weather?"), tools=[get_weather], tool_choice="auto")
    assert stream.tools == [get_weather]
    text, calls = await stream.collect()
    assert text == "Let me check."
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert call.call_id.startswith("call_")
    assert get_weather.parse_arguments(call.arguments) == {
        "city": "Paris",
        "title": "Now",
        "days": 3,
        "unit": "c",
    }
    assert llm.calls[1].tools == [get_weather]
    assert llm.calls[1].tool_choice == "auto"


async def test_llm_stream_yields_chunks_in_order() -> None:
    llm = FakeLLM([FakeLLMResponse(content="one two three", tokens_per_second=50)])
    chunks: list[ChatChunk] = []
    async with llm.chat(chat_ctx=_user_ctx()) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    contents = [c.delta.content for c in chunks if c.delta is not None and c.delta.content]
    assert contents == ["one", " two", " three"]
    assert chunks[-1].usage is not None  # usage comes last


@pytest.mark.looptime
async def test_llm_metrics_ttft_and_usage() -> None:
    llm = FakeLLM([FakeLLMResponse(content="Hello there friend", ttft=0.5, tokens_per_second=10)])
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    text, _ = await llm.chat(chat_ctx=_user_ctx("hello there")).collect()
    assert text == "Hello there friend"
    assert len(metrics) == 1
    m = metrics[0]
    assert isinstance(m, LLMMetrics)
    assert m.ttft == pytest.approx(0.5, abs=0.02)
    # ttft, then two more words at 10 tokens/s
    assert m.duration == pytest.approx(0.7, abs=0.02)
    assert not m.cancelled
    assert m.completion_tokens == 3
    assert m.prompt_tokens == 4  # "be nice" + "hello there"
    assert m.total_tokens == 7
    assert m.tokens_per_second == pytest.approx(3 / m.duration)
    assert m.label == llm.label
    assert m.request_id.startswith("llm_")


@pytest.mark.looptime
async def test_llm_metrics_report_cancellation() -> None:
    llm = FakeLLM([FakeLLMResponse(content="too late", ttft=1.0)])
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    stream = llm.chat(chat_ctx=_user_ctx())
    await asyncio.sleep(0.3)
    await stream.aclose()
    assert len(metrics) == 1
    assert metrics[0].cancelled
    assert metrics[0].ttft == -1.0
    assert metrics[0].completion_tokens == 0


class _FlakyLLM(LLM):
    """Fails ``failures`` times (raising ``error``), then answers "ok"."""

    def __init__(
        self, failures: int, *, error: Exception | None = None, emit_first: bool = False
    ) -> None:
        super().__init__()
        self.failures = failures
        self.error = error if error is not None else LLMError("flaky", recoverable=True)
        self.emit_first = emit_first
        self.attempt_times: list[float] = []

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        return _FlakyStream(
            self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice
        )


class _FlakyStream(LLMStream):
    async def _run(self) -> None:
        llm = self._llm
        assert isinstance(llm, _FlakyLLM)
        llm.attempt_times.append(now())
        if len(llm.attempt_times) <= llm.failures:
            if llm.emit_first:
                self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(content="partial")))
            raise llm.error
        self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(content="ok")))


_RETRY = APIConnectOptions(max_retry=2, retry_interval=0.1)


@pytest.mark.looptime
async def test_llm_recoverable_error_is_retried() -> None:
    llm = _FlakyLLM(failures=2)
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    text, _ = await llm.chat(chat_ctx=_user_ctx(), conn_options=_RETRY).collect()
    assert text == "ok"
    assert len(llm.attempt_times) == 3
    gaps = np.diff(llm.attempt_times)
    assert gaps == pytest.approx([0.1, 0.1], abs=0.01)  # backoff on the loop's (virtual) clock
    assert len(metrics) == 1 and not metrics[0].cancelled


@pytest.mark.looptime
async def test_llm_recoverable_error_gives_up_after_max_retry() -> None:
    llm = _FlakyLLM(failures=10)
    with pytest.raises(LLMError, match="flaky") as exc_info:
        await llm.chat(chat_ctx=_user_ctx(), conn_options=_RETRY).collect()
    assert exc_info.value.recoverable
    assert len(llm.attempt_times) == 3  # 1 + max_retry


@pytest.mark.looptime
async def test_llm_unrecoverable_error_is_raised_without_retry() -> None:
    llm = _FlakyLLM(failures=1, error=LLMError("bad api key", recoverable=False))
    with pytest.raises(LLMError, match="bad api key") as exc_info:
        await llm.chat(chat_ctx=_user_ctx(), conn_options=_RETRY).collect()
    assert not exc_info.value.recoverable
    assert len(llm.attempt_times) == 1

    # same through the scripted fake: the next response would have succeeded if retried
    fake = FakeLLM(
        [
            FakeLLMResponse(error=LLMError("quota exceeded", recoverable=False), ttft=0.2),
            FakeLLMResponse(content="should not be used"),
        ]
    )
    metrics: list[LLMMetrics] = []
    fake.on("metrics_collected", metrics.append)
    with pytest.raises(LLMError, match="quota exceeded"):
        await fake.chat(chat_ctx=_user_ctx(), conn_options=_RETRY).collect()
    assert fake.pending[0].content == "should not be used"  # not consumed by a retry
    assert len(metrics) == 1 and metrics[0].ttft == -1.0 and not metrics[0].cancelled


@pytest.mark.looptime
async def test_llm_fake_recoverable_error_then_success() -> None:
    fake = FakeLLM(
        [
            FakeLLMResponse(error=LLMError("overloaded", recoverable=True)),
            FakeLLMResponse(content="second try", ttft=0.3),
        ]
    )
    metrics: list[LLMMetrics] = []
    fake.on("metrics_collected", metrics.append)
    text, _ = await fake.chat(chat_ctx=_user_ctx(), conn_options=_RETRY).collect()
    assert text == "second try"
    assert len(fake.calls) == 1  # one chat() call, retried inside the stream
    assert metrics[0].ttft == pytest.approx(0.3, abs=0.02)  # measured from the successful attempt


@pytest.mark.looptime
async def test_llm_error_after_first_chunk_is_not_retried() -> None:
    llm = _FlakyLLM(failures=1, emit_first=True)
    received: list[str] = []
    with pytest.raises(LLMError, match="flaky"):
        async with llm.chat(chat_ctx=_user_ctx(), conn_options=_RETRY) as stream:
            async for chunk in stream:
                if chunk.delta is not None and chunk.delta.content:
                    received.append(chunk.delta.content)
    assert received == ["partial"]
    assert len(llm.attempt_times) == 1


@pytest.mark.looptime
async def test_llm_unexpected_exception_becomes_unrecoverable_llm_error() -> None:
    llm = _FlakyLLM(failures=1, error=RuntimeError("socket exploded"))
    with pytest.raises(LLMError, match="socket exploded") as exc_info:
        await llm.chat(chat_ctx=_user_ctx(), conn_options=_RETRY).collect()
    assert not exc_info.value.recoverable
    assert isinstance(exc_info.value.__cause__, RuntimeError)
    assert len(llm.attempt_times) == 1


# ------------------------------------------------------------------------------------------------
# Sentence splitting
# ------------------------------------------------------------------------------------------------


def _stream_sentences(chunks: Sequence[str], *, min_length: int) -> list[str]:
    s = SentenceStream(min_length=min_length)
    out: list[str] = []
    for c in chunks:
        out.extend(s.push(c))
    out.extend(s.flush())
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith arrived. He said hi.", ["Dr. Smith arrived.", "He said hi."]),
        ("See e.g. this one. And i.e. that one.", ["See e.g. this one.", "And i.e. that one."]),
        ("Pi is 3.14 today. Yes it is.", ["Pi is 3.14 today.", "Yes it is."]),
        ("I met J. Doe. He is nice.", ["I met J. Doe.", "He is nice."]),
        ("Hello world! How are you? Fine.", ["Hello world!", "How are you?", "Fine."]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("Wait... what? No.", ["Wait... what?", "No."]),
        ("The end. but lowercase continues. Next.", ["The end. but lowercase continues.", "Next."]),
        ("First line\nSecond line", ["First line", "Second line"]),
        ("(Dr. Who) is here. Ok.", ["(Dr. Who) is here.", "Ok."]),
        ("  no terminator  ", ["no terminator"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    # streaming the text word by word gives the same sentences
    words = text.split(" ")
    chunks = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
    assert _stream_sentences(chunks, min_length=1) == expected


def test_split_sentences_min_length_merges_short_ones() -> None:
    text = "Hi. Ok. Sure thing, my friend. Bye."
    assert split_sentences(text) == ["Hi.", "Ok.", "Sure thing, my friend.", "Bye."]
    # short sentences are merged into the next; a short tail is merged into the previous
    assert split_sentences(text, min_length=12) == ["Hi. Ok. Sure thing, my friend. Bye."]
    assert split_sentences(text, min_length=6) == ["Hi. Ok.", "Sure thing, my friend. Bye."]
    # the streaming splitter merges short ones forward the same way; flush releases the tail
    assert _stream_sentences([text], min_length=6) == ["Hi. Ok.", "Sure thing, my friend.", "Bye."]


def test_sentence_stream_releases_only_once_next_text_starts() -> None:
    s = SentenceStream(min_length=1)
    assert s.push("Dr") == []
    assert s.push(". Smith is here") == []  # "Dr." is not a sentence end
    assert s.push(". ") == []  # complete, but what follows is not known yet
    assert s.push("  ") == []
    assert s.push("He") == ["Dr. Smith is here."]
    assert s.push(" paid 3.") == []
    assert s.push("14 dollars. ") == []  # "3." followed by "14" is a number, not an end
    assert s.push("T") == ["He paid 3.14 dollars."]
    assert s.push("hen left") == []
    assert s.flush() == ["Then left"]
    assert s.flush() == []
    # after a flush the stream starts afresh
    assert s.push("New one. A") == ["New one."]


def test_sentence_stream_min_length_merges() -> None:
    s = SentenceStream(min_length=12)
    assert s.push("Hi. Yes. ") == []
    assert s.push("Sure") == []  # "Hi. Yes." is 8 chars: too short to be released alone
    assert s.push(" thing. Next") == ["Hi. Yes. Sure thing."]
    assert s.flush() == ["Next"]


def test_sentence_stream_first_clause() -> None:
    s = SentenceStream(min_length=12, first_clause_words=4)
    assert s.push("Well, yes") == []  # "Well," has 1 word: too short to be the first piece
    assert s.push(", to boil an egg") == []
    assert s.push(", ") == []  # the clause ends here, but what follows is not known yet
    assert s.push("place") == ["Well, yes, to boil an egg,"]
    # only the first piece may be a clause: later ones are whole sentences
    assert s.push(" it in water, then heat it. Wait") == ["place it in water, then heat it."]
    assert s.flush() == ["Wait"]
    # a flush starts a new segment, whose first piece may again be a clause
    assert s.push("Sure thing, my dear friend; here it is") == ["Sure thing, my dear friend;"]
    # a sentence that completes first wins over its clauses
    s = SentenceStream(min_length=1, first_clause_words=1)
    assert s.push("Yes, it is. And") == ["Yes, it is."]
    # numbers keep their commas; dashes end a clause
    s = SentenceStream(min_length=1, first_clause_words=3)
    assert s.push("It costs 1,000 dollars - or so") == ["It costs 1,000 dollars -"]
    with pytest.raises(ValueError):
        SentenceStream(first_clause_words=0)


def test_sentence_stream_first_words() -> None:
    s = SentenceStream(min_length=12, first_words=4, first_clause_words=4)
    assert s.push("The largest planet in") == []  # the 4th word may not be complete yet
    assert s.push(" our") == ["The largest planet in"]
    assert s.push(" solar system is Jupiter. It") == ["our solar system is Jupiter."]
    assert s.flush() == ["It"]
    # a clause or sentence that ends first is preferred
    s = SentenceStream(min_length=1, first_words=6, first_clause_words=2)
    assert s.push("Yes, of course I can help. Sure") == ["Yes, of course I can help."]
    s = SentenceStream(min_length=1, first_words=6, first_clause_words=2)
    assert s.push("Well now, of course I can help you") == ["Well now,"]


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab ,.;:-!?\n", max_size=60), data=st.data())
def test_sentence_stream_first_clause_loses_nothing(text: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8), label="cuts"))
    bounds = [0, *cuts, len(text)]
    s = SentenceStream(
        min_length=1,
        first_clause_words=data.draw(st.sampled_from([None, 1, 3])),
        first_words=data.draw(st.sampled_from([None, 1, 2])),
    )
    out: list[str] = []
    for a, b in itertools.pairwise(bounds):
        out.extend(s.push(text[a:b]))
    out.extend(s.flush())
    assert " ".join(out).split() == text.split()
    assert all(piece and piece == piece.strip() for piece in out)


_TOKENS = [
    "Hello", "world", "Dr.", "e.g.", "3.14", "J.", "ok", "a", "B", " ", "  ", "\n", "\n\n",
    ". ", "! ", "? ", "...", "…", '"', "'", "(", ")", ".", ",",
]  # fmt: skip
_texts = st.one_of(
    st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join),
    st.text(max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(text=_texts, data=st.data(), min_length=st.integers(1, 20))
def test_sentence_stream_property(text: str, data: st.DataObject, min_length: int) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=10), label="cuts"))
    bounds = [0, *cuts, len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    out = _stream_sentences(chunks, min_length=min_length)

    # nothing lost, nothing reordered, nothing added
    assert "".join("".join(out).split()) == "".join(text.split())
    assert " ".join(out).split() == text.split()
    assert all(s and s == s.strip() for s in out)
    # the same text as split_sentences, and the chunking does not change the sentences
    assert " ".join(out).split() == " ".join(split_sentences(text, min_length=min_length)).split()
    assert out == _stream_sentences([text], min_length=min_length)
    if min_length == 1:  # no merging: exactly split_sentences' sentences
        assert [" ".join(s.split()) for s in out] == [
            " ".join(s.split()) for s in split_sentences(text)
        ]


# ------------------------------------------------------------------------------------------------
# TTS StreamAdapter
# ------------------------------------------------------------------------------------------------

_SENTENCES = [
    "Hello there, my friend.",
    "The weather is lovely today.",
    "Shall we go out for a walk?",
]


def _deltas(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else f" {w}" for i, w in enumerate(words)]


def _group_by_request(audio: list[SynthesizedAudio]) -> list[list[SynthesizedAudio]]:
    groups: list[list[SynthesizedAudio]] = []
    for a in audio:
        if not groups or groups[-1][0].request_id != a.request_id:
            groups.append([])
        groups[-1].append(a)
    return groups


@pytest.mark.looptime
async def test_tts_stream_adapter_audio_per_sentence_in_order() -> None:
    fake = FakeTTS(ttfb=0.05, seconds_per_char=0.02, frame_duration=0.05)
    adapter = TTSStreamAdapter(tts=fake)
    assert adapter.capabilities.streaming
    assert adapter.sample_rate == fake.sample_rate
    metrics: list[TTSMetrics] = []
    fake.on("metrics_collected", metrics.append)

    async with adapter.stream() as stream:
        for d in _deltas(" ".join(_SENTENCES)):
            stream.push_text(d)
            await asyncio.sleep(0.01)
        stream.end_input()
        audio = [a async for a in stream]

    assert fake.requests == _SENTENCES
    groups = _group_by_request(audio)
    assert len(groups) == len(_SENTENCES)
    assert len({g[0].request_id for g in groups}) == len(_SENTENCES)  # not interleaved
    for sentence, group in zip(_SENTENCES, groups, strict=True):
        assert group[0].frame.userdata[TEXT_KEY] == sentence
        assert all(TEXT_KEY not in a.frame.userdata for a in group[1:])
        assert frames_duration([a.frame for a in group]) == pytest.approx(
            fake.duration_for(sentence), abs=1e-3
        )
    total = frames_duration([a.frame for a in audio])
    assert total == pytest.approx(sum(fake.duration_for(s) for s in _SENTENCES), abs=1e-3)
    assert all(a.frame.sample_rate == fake.sample_rate for a in audio)

    # the wrapped TTS reports one TTSMetrics per sentence
    assert [m.characters_count for m in metrics] == [len(s) for s in _SENTENCES]
    for m, s in zip(metrics, _SENTENCES, strict=True):
        assert isinstance(m, TTSMetrics)
        assert m.ttfb == pytest.approx(0.05, abs=0.01)
        assert m.audio_duration == pytest.approx(fake.duration_for(s), abs=1e-3)
        assert not m.cancelled
        assert m.label == fake.label


@pytest.mark.looptime
async def test_tts_stream_adapter_streams_before_end_of_input() -> None:
    fake = FakeTTS(ttfb=0.1)
    async with TTSStreamAdapter(tts=fake).stream() as stream:
        stream.push_text("Hello there, my friend. ")
        await asyncio.sleep(1.0)
        # the sentence looks complete, but what follows is unknown yet: nothing is synthesized
        assert fake.requests == []

        stream.push_text("How")
        first = await asyncio.wait_for(anext(stream), timeout=5.0)
        assert first.frame.userdata[TEXT_KEY] == "Hello there, my friend."
        assert fake.requests == ["Hello there, my friend."]

        stream.push_text(" are you?")
        stream.end_input()
        rest = [a async for a in stream]
    assert fake.requests == ["Hello there, my friend.", "How are you?"]
    texts = [a.frame.userdata[TEXT_KEY] for a in [first, *rest] if TEXT_KEY in a.frame.userdata]
    assert texts == ["Hello there, my friend.", "How are you?"]


@pytest.mark.looptime
async def test_tts_stream_adapter_speaks_the_first_clause_early() -> None:
    fake = FakeTTS(ttfb=0.05)
    text = "To boil an egg, put it in boiling water for eight minutes. Then cool it."
    async with TTSStreamAdapter(tts=fake).stream() as stream:
        for d in _deltas(text):
            stream.push_text(d)
            await asyncio.sleep(0.03)  # the LLM's pace
        stream.end_input()
        audio = [a async for a in stream]
    assert fake.requests == [
        "To boil an egg,",
        "put it in boiling water for eight minutes.",
        "Then cool it.",
    ]
    assert [a.frame.userdata[TEXT_KEY] for a in audio if TEXT_KEY in a.frame.userdata] == (
        fake.requests
    )
    # and without it, the first piece is the whole sentence
    fake = FakeTTS(ttfb=0.05)
    async with TTSStreamAdapter(tts=fake, first_clause_words=None).stream() as stream:
        stream.push_text(text)
        stream.end_input()
        _ = [a async for a in stream]
    assert fake.requests[0] == "To boil an egg, put it in boiling water for eight minutes."


@pytest.mark.looptime
async def test_tts_stream_adapter_flush_releases_pending_text() -> None:
    fake = FakeTTS()
    async with TTSStreamAdapter(tts=fake).stream() as stream:
        stream.push_text("No terminator here")
        stream.flush()
        first = await asyncio.wait_for(anext(stream), timeout=5.0)
        assert first.frame.userdata[TEXT_KEY] == "No terminator here"
        stream.end_input()
        rest = [a async for a in stream]
    assert fake.requests == ["No terminator here"]
    assert frames_duration([first.frame, *(a.frame for a in rest)]) == pytest.approx(
        fake.duration_for("No terminator here"), abs=1e-3
    )
    with pytest.raises(RuntimeError):
        stream.push_text("too late")


@pytest.mark.looptime
async def test_tts_stream_adapter_surfaces_tts_error() -> None:
    fake = FakeTTS(errors=[TTSError("boom", recoverable=False)])
    metrics: list[TTSMetrics] = []
    fake.on("metrics_collected", metrics.append)
    async with TTSStreamAdapter(tts=fake).stream() as stream:
        stream.push_text("First sentence is here. Second one follows.")
        stream.end_input()
        with pytest.raises(TTSError, match="boom") as exc_info:
            async for _ in stream:
                pass
    assert not exc_info.value.recoverable
    assert fake.requests[0] == "First sentence is here."
    assert metrics and metrics[0].ttfb == -1.0


@pytest.mark.looptime
async def test_tts_stream_adapter_error_with_input_still_open() -> None:
    fake = FakeTTS(errors=[TTSError("boom", recoverable=False)])
    stream = TTSStreamAdapter(tts=fake).stream()
    try:
        stream.push_text("First sentence is here. Second")
        with pytest.raises(TTSError, match="boom"):
            await asyncio.wait_for(anext(stream), timeout=5.0)
    finally:
        await asyncio.wait_for(stream.aclose(), timeout=5.0)


# ------------------------------------------------------------------------------------------------
# STT StreamAdapter
# ------------------------------------------------------------------------------------------------


class _BatchSTT(STT):
    """Non-streaming: recognizes any buffer as a fixed transcript."""

    def __init__(self, transcript: str) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self.transcript = transcript
        self.buffers: list[list[rtc.AudioFrame]] = []

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        self.buffers.append(buffer)
        await asyncio.sleep(0.1)
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT,
            [SpeechData(text=self.transcript, language=language or "en")],
            request_id="req_1",
        )


async def _run_stt_adapter(
    stt: STT, utterances: Sequence[Utterance], *, seconds: float
) -> list[SpeechEvent]:
    adapter = STTStreamAdapter(stt=stt, vad=FakeVAD())
    assert adapter.capabilities.streaming
    audio = FakeAudioInput(utterances)
    events: list[SpeechEvent] = []
    async with adapter.stream() as stream:

        async def feed() -> None:
            pushed = 0.0
            async for frame in audio:
                stream.push_frame(frame)
                pushed += frame_duration(frame)
                if pushed >= seconds:
                    break
            stream.end_input()

        feeder = asyncio.create_task(feed())
        async for ev in stream:
            events.append(ev)
        await feeder
    return events


@pytest.mark.looptime
async def test_stt_stream_adapter_with_vad() -> None:
    stt = _BatchSTT("hello there")
    with pytest.raises(TypeError):
        stt.stream()
    metrics: list[STTMetrics] = []
    stt.on("metrics_collected", metrics.append)
    events = await _run_stt_adapter(
        stt, [Utterance(speech=0.5, silence_before=0.2, transcript="hello there")], seconds=1.5
    )
    assert [e.type for e in events] == [
        SpeechEventType.START_OF_SPEECH,
        SpeechEventType.PREFLIGHT_TRANSCRIPT,  # the speculative result, before the end
        SpeechEventType.FINAL_TRANSCRIPT,
        SpeechEventType.END_OF_SPEECH,
    ]
    assert events[1].text == events[2].text == "hello there"
    assert events[2].request_id == "req_1"

    # the wrapped STT got the utterance: all its voice frames, not the leading silence
    assert len(stt.buffers) == 1
    buf = stt.buffers[0]
    voice = [f for f in buf if f.userdata.get("transcript") == "hello there"]
    assert frames_duration(voice) == pytest.approx(0.5, abs=0.011)
    assert frames_duration(buf) < 0.5 + 0.2 + 0.35  # not the whole 1.5 s of audio
    assert len(metrics) == 1
    assert metrics[0].audio_duration == pytest.approx(frames_duration(buf))
    assert not metrics[0].streamed


@pytest.mark.looptime
async def test_stt_stream_adapter_two_utterances_and_empty_transcript() -> None:
    stt = _BatchSTT("  ")  # recognized nothing: no final transcript, but the turn still ends
    events = await _run_stt_adapter(
        stt,
        [
            Utterance(speech=0.3, silence_before=0.1, transcript="one"),
            Utterance(speech=0.3, silence_before=0.6, transcript="two"),
        ],
        seconds=2.0,
    )
    assert [e.type for e in events] == [
        SpeechEventType.START_OF_SPEECH,
        SpeechEventType.END_OF_SPEECH,
        SpeechEventType.START_OF_SPEECH,
        SpeechEventType.END_OF_SPEECH,
    ]
    assert len(stt.buffers) == 2


# ------------------------------------------------------------------------------------------------
# AudioByteStream
# ------------------------------------------------------------------------------------------------


def test_audio_byte_stream_rechunks_and_flushes() -> None:
    sr, channels, spf = 16000, 2, 160
    bytes_per_frame = spf * channels * 2
    data = np.arange(4000, dtype=np.int16).tobytes()[: 2 * bytes_per_frame + 123]
    bs = AudioByteStream(sr, channels, samples_per_frame=spf)

    frames: list[rtc.AudioFrame] = []
    frames += bs.push(data[:100])
    assert frames == []  # not a whole frame yet
    frames += bs.push(data[100:700])
    assert len(frames) == 1
    frames += bs.push(memoryview(data)[700:])
    assert len(frames) == 2
    for f in frames:
        assert (f.sample_rate, f.num_channels, f.samples_per_channel) == (sr, channels, spf)
        assert frame_duration(f) == pytest.approx(0.01)

    tail = bs.flush()
    # 123 bytes left: 120 make 30 whole stereo samples, the 3 odd bytes are dropped
    assert len(tail) == 1
    assert (tail[0].samples_per_channel, tail[0].num_channels) == (30, channels)
    assert bs.flush() == []

    out = b"".join(as_array(f).tobytes() for f in [*frames, *tail])
    assert out == data[: 2 * bytes_per_frame + 120]

    # the default frame is 10 ms; a buffer shorter than one sample flushes to nothing
    mono = AudioByteStream(24000, 1)
    frames = mono.push(bytes(480 * 2 * 3 + 1))
    assert [f.samples_per_channel for f in frames] == [240] * 6
    assert mono.flush() == []
