"""LiveKit's console protocol: the wire framing round-trips livekit-protocol's own messages, and
every session event the agent can send is mapped onto voicetui's events or deliberately
ignored; what this version does not know is logged once and skipped."""

from __future__ import annotations

import asyncio
import logging

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from livekit.protocol.agent_pb import agent_session as pb

from voicetui.agents.llm import ChatMessage
from voicetui.agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from voicetui.events import RUNTIME_EVENT
from voicetui.runtime.livekit import wire
from voicetui.runtime.livekit.mapping import IGNORED_EVENTS, MAPPED_EVENTS, EventMapper

T0 = 1_700_000_000.5


def stamp(t: float = T0) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def reader_with(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_every_kind_of_message_round_trips_through_the_framing() -> None:
    frame = pb.AgentSessionMessage.ConsoleIO.AudioFrame(
        data=b"\x01\x02" * 480, sample_rate=48000, num_channels=1, samples_per_channel=480
    )
    _, run = wire.request(run_input=pb.SessionRequest.RunInput(text="hello"))
    messages = [
        wire.audio_frame(b"\x00\x01" * 480),
        pb.AgentSessionMessage(audio_output=frame),
        pb.AgentSessionMessage(
            event=pb.AgentSessionEvent(
                created_at=stamp(),
                agent_state_changed=pb.AgentSessionEvent.AgentStateChanged(
                    old_state=pb.AS_LISTENING, new_state=pb.AS_THINKING
                ),
            )
        ),
        run,
        pb.AgentSessionMessage(response=pb.SessionResponse(request_id="r1", error="nope")),
        pb.AgentSessionMessage(
            audio_playback_flush=pb.AgentSessionMessage.ConsoleIO.AudioPlaybackFlush()
        ),
        pb.AgentSessionMessage(
            audio_playback_clear=pb.AgentSessionMessage.ConsoleIO.AudioPlaybackClear()
        ),
        wire.playback_finished(),
    ]
    stream = b"".join(wire.encode(m) for m in messages)
    assert stream[:4] == len(messages[0].SerializeToString()).to_bytes(4, "big")
    reader = reader_with(stream)
    got = [await wire.read_message(reader) for _ in messages]
    assert got == messages
    assert await wire.read_message(reader) is None  # the end of the stream
    assert run.request.request_id and run.request.run_input.text == "hello"


async def test_a_truncated_stream_ends_and_an_oversized_length_is_refused() -> None:
    data = wire.encode(wire.playback_finished())
    assert await wire.read_message(reader_with(data[:-1])) is None
    with pytest.raises(wire.WireError, match="limit"):
        await wire.read_message(reader_with((wire.MAX_MESSAGE_BYTES + 1).to_bytes(4, "big")))
    with pytest.raises(wire.WireError):
        wire.decode(b"\xff\xff\xff")


def event(**kw: object) -> pb.AgentSessionEvent:
    return pb.AgentSessionEvent(created_at=stamp(), **kw)  # type: ignore[arg-type]


def test_states_transcripts_and_errors_map_onto_session_events() -> None:
    mapper = EventMapper()
    (agent,) = mapper.map(
        event(
            agent_state_changed=pb.AgentSessionEvent.AgentStateChanged(
                old_state=pb.AS_THINKING, new_state=pb.AS_SPEAKING
            )
        )
    )
    assert isinstance(agent, AgentStateChangedEvent)
    assert (agent.old_state, agent.new_state, agent.created_at) == ("thinking", "speaking", T0)
    (user,) = mapper.map(
        event(
            user_state_changed=pb.AgentSessionEvent.UserStateChanged(
                old_state=pb.US_LISTENING, new_state=pb.US_SPEAKING
            )
        )
    )
    assert isinstance(user, UserStateChangedEvent) and user.new_state == "speaking"
    (heard,) = mapper.map(
        event(
            user_input_transcribed=pb.AgentSessionEvent.UserInputTranscribed(
                transcript="hi there", is_final=True, language="en"
            )
        )
    )
    assert isinstance(heard, UserInputTranscribedEvent)
    assert (heard.transcript, heard.is_final, heard.language) == ("hi there", True, "en")
    (err,) = mapper.map(event(error=pb.AgentSessionEvent.Error(message="tts failed")))
    assert isinstance(err, ErrorEvent) and err.message == "tts failed" and err.source == "agent"


def test_a_tool_call_maps_to_started_then_executed_with_its_duration() -> None:
    mapper = EventMapper()
    call = pb.FunctionCall(id="fc", call_id="c1", name="get_weather", arguments='{"city":"Oslo"}')
    update = pb.AgentSessionEvent.ToolExecutionUpdated
    (started,) = mapper.map(
        event(tool_execution_updated=update(started=update.Started(function_call=call)))
    )
    assert isinstance(started, FunctionToolsStartedEvent)
    assert [c.name for c in started.function_calls] == ["get_weather"]
    # the same call announced again (function_tools_started as well) is not doubled
    assert (
        mapper.map(
            event(
                function_tools_started=pb.AgentSessionEvent.FunctionToolsStarted(
                    function_calls=[call]
                )
            )
        )
        == []
    )
    out = pb.FunctionCallOutput(call_id="c1", name="get_weather", output="sunny", is_error=False)
    executed_event = pb.AgentSessionEvent(
        created_at=stamp(T0 + 0.25),
        function_tools_executed=pb.AgentSessionEvent.FunctionToolsExecuted(
            function_calls=[call], function_call_outputs=[out]
        ),
    )
    (executed,) = mapper.map(executed_event)
    assert isinstance(executed, FunctionToolsExecutedEvent)
    (ex,) = executed.executions
    assert (ex.call.arguments, ex.output.output, ex.output.is_error) == (
        '{"city":"Oslo"}',
        "sunny",
        False,
    )
    assert ex.duration == pytest.approx(0.25)
    # progress updates carry nothing the executed event does not
    ended = update(ended=update.Ended(id="fc", call_id="c1", status=pb.TC_DONE))
    assert mapper.map(event(tool_execution_updated=ended)) == []


def test_an_assistant_message_keeps_its_latency_report() -> None:
    metrics = pb.MetricsReport(
        started_speaking_at=stamp(T0 + 1),
        end_of_turn_delay=0.4,
        llm_node_ttft=0.3,
        tts_node_ttfb=0.2,
        e2e_latency=0.9,
    )
    msg = pb.ChatMessage(
        id="item_1",
        role=pb.ASSISTANT,
        content=[pb.ChatMessage.ChatContent(text="It is sunny.")],
        interrupted=True,
        metrics=metrics,
        created_at=stamp(),
    )
    item = pb.ChatContext.ChatItem(message=msg)
    (added,) = EventMapper().map(
        event(conversation_item_added=pb.AgentSessionEvent.ConversationItemAdded(item=item))
    )
    assert isinstance(added, ConversationItemAddedEvent)
    assert isinstance(added.item, ChatMessage)
    assert (added.item.role, added.item.content, added.item.interrupted) == (
        "assistant",
        ["It is sunny."],
        True,
    )
    m = added.item.metrics
    assert (m.end_of_turn_delay, m.llm_node_ttft, m.tts_node_ttfb, m.e2e_latency) == (
        0.4,
        pytest.approx(0.3),
        pytest.approx(0.2),
        pytest.approx(0.9),
    )
    assert m.started_speaking_at == pytest.approx(T0 + 1)
    assert m.stopped_speaking_at is None
    # what the recorder writes reads back the same
    assert RUNTIME_EVENT.validate_json(RUNTIME_EVENT.dump_json(added)) == added


def test_every_event_of_the_protocol_is_mapped_or_ignored_on_purpose() -> None:
    kinds = {f.name for f in pb.AgentSessionEvent.DESCRIPTOR.oneofs_by_name["event"].fields}
    assert kinds == MAPPED_EVENTS | IGNORED_EVENTS.keys()
    mapper = EventMapper()
    for kind in IGNORED_EVENTS:
        field = pb.AgentSessionEvent.DESCRIPTOR.fields_by_name[kind].message_type
        ev = pb.AgentSessionEvent()
        getattr(ev, kind).SetInParent()
        assert field is not None and mapper.map(ev) == []


def test_an_unknown_event_is_logged_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    future = pb.AgentSessionEvent()
    future.ParseFromString(b"\xfa\x06\x00")  # field 111, a message from a newer agent
    mapper = EventMapper()
    with caplog.at_level(logging.INFO, logger="voicetui.livekit"):
        assert mapper.map(future) == []
        assert mapper.map(future) == []
    assert len([r for r in caplog.records if "does not know" in r.message]) == 1
